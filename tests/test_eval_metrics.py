"""`actionzs.evaluation`'s pure parts against hand-computed answers: top-k, mean class accuracy
and the confusion matrix; temporal AP and mAP (duplicates, a class with no ground truth,
overlapping ground truth) and a transcription of ActivityNet's reference matcher on random cases;
the dataset layouts, annotation files and prompt variants, with their bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from actionzs.errors import InvalidInputError
from actionzs.evaluation import ablation, annotations, datasets, metrics, temporal
from actionzs.evaluation.temporal import Instance
from actionzs.testing import write_clip

# -- trimmed metrics ---------------------------------------------------------------------------------

#: 6 clips, 3 classes. Clip 4's scores tie classes 0 and 2 (its truth is 2): the first class wins.
SCORES = np.array([
    [0.9, 0.05, 0.05],   # truth 0 -> 0
    [0.2, 0.7, 0.1],     # truth 0 -> 1 (truth second)
    [0.1, 0.8, 0.1],     # truth 1 -> 1
    [0.1, 0.3, 0.6],     # truth 1 -> 2 (truth second)
    [0.4, 0.2, 0.4],     # truth 2 -> 0 (a tie: truth second)
    [0.5, 0.3, 0.2],     # truth 2 -> 0 (truth last)
])
TRUTH = np.array([0, 0, 1, 1, 2, 2])


def test_top_k_mean_class_and_confusion_equal_hand_computed():
    assert metrics.ranks(SCORES, TRUTH).tolist() == [0, 1, 0, 1, 1, 2]
    assert metrics.top_k_accuracy(SCORES, TRUTH, 1) == pytest.approx(2 / 6)
    assert metrics.top_k_accuracy(SCORES, TRUTH, 2) == pytest.approx(5 / 6)
    assert metrics.top_k_accuracy(SCORES, TRUTH, 3) == 1.0
    confusion = metrics.confusion_matrix(TRUTH, metrics.predictions(SCORES), 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 1], [2, 0, 0]]
    assert metrics.per_class_accuracy(confusion).tolist() == [0.5, 0.5, 0.0]
    assert metrics.mean_class_accuracy(confusion) == pytest.approx(1 / 3)
    summary = metrics.summary(SCORES, TRUTH)
    assert summary == pytest.approx({"top1": 2 / 6, "top5": 1.0, "mean_class_accuracy": 1 / 3})  # top-5 capped at 3 classes


def test_mean_class_accuracy_weighs_each_class_the_same_and_skips_classes_without_clips():
    truth = np.array([0, 0, 0, 1])
    predicted = np.array([0, 0, 0, 0])
    confusion = metrics.confusion_matrix(truth, predicted, 3)  # class 2 has no clips
    assert np.isnan(metrics.per_class_accuracy(confusion)[2])
    assert metrics.mean_class_accuracy(confusion) == pytest.approx(0.5)  # (1 + 0) / 2, not 3/4


# -- temporal metrics --------------------------------------------------------------------------------


def gt(video, label, start, end):
    return Instance(video, label, start, end)


def det(video, label, start, end, score):
    return Instance(video, label, start, end, score)


def test_tiou_and_interpolated_ap_by_hand():
    assert temporal.tiou(0, 10, np.array([5.0, 10, 0]), np.array([15.0, 20, 10])).tolist() == pytest.approx([1 / 3, 0, 1])
    # precision 1, 0.5, 2/3 at recall 1/2, 1/2, 1: the interpolated curve is 1 up to 1/2, then 2/3.
    assert temporal.interpolated_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_duplicate_detections_are_false_positives():
    truth = [gt("v", "a", 0, 10)]
    found = [det("v", "a", 0, 10, 0.9), det("v", "a", 1, 10, 0.8)]  # the second finds the same instance
    assert temporal.matches(temporal.by_score(found), truth, 0.5).tolist() == [True, False]
    assert temporal.average_precision(found, truth, 0.5) == pytest.approx(1.0)
    # A duplicate ranked above the good one: precision 0 at the first, 1/2 at recall 1.
    found = [det("v", "a", 1, 10, 0.95), det("v", "a", 0, 10, 0.9), det("v", "a", 30, 40, 0.99)]
    assert temporal.matches(temporal.by_score(found), truth, 0.5).tolist() == [False, True, False]
    assert temporal.average_precision(found, truth, 0.5) == pytest.approx(1 / 2)


def test_each_detection_takes_the_most_overlapping_free_instance():
    # Overlapping ground truth: two instances [0, 10] and [5, 15]; the best detection overlaps the
    # second most, takes it, and the next one still finds the first.
    truth = [gt("v", "a", 0, 10), gt("v", "a", 5, 15)]
    found = [det("v", "a", 6, 15, 0.9), det("v", "a", 4, 14, 0.8)]
    # [4, 14]: tIoU 6/14 with [0, 10] and 9/11 with [5, 15] (taken), so it gets [0, 10] at 0.4 but not at 0.5.
    assert temporal.matches(temporal.by_score(found), truth, 0.4).tolist() == [True, True]
    assert temporal.matches(temporal.by_score(found), truth, 0.5).tolist() == [True, False]
    assert temporal.average_precision(found, truth, 0.4) == pytest.approx(1.0)
    assert temporal.average_precision(found, truth, 0.5) == pytest.approx(0.5)


def test_mean_ap_over_classes_with_ground_truth_at_the_thumos_thresholds():
    truth = [gt("v1", "a", 0, 10), gt("v1", "b", 20, 30), gt("v2", "b", 0, 4)]
    found = [
        det("v1", "a", 0, 8, 0.9),      # a: tIoU 0.8
        det("v1", "b", 21, 31, 0.7),    # b: tIoU 9/11 = 0.818
        det("v2", "b", 1, 5, 0.8),      # b: tIoU 3/5 = 0.6, ranked first
        det("v2", "a", 0, 4, 0.95),     # a: a video with no "a": a false positive, ranked first
        det("v1", "c", 0, 10, 0.5),     # c has no ground truth: not in the mean
    ]
    result = temporal.mean_average_precision(found, truth)
    assert result["thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    # a: FP then TP -> precision 0, 1/2 at recall 0, 1 -> AP 1/2 at every threshold.
    assert result["per_class"]["a"] == pytest.approx([0.5] * 5)
    # b: at 0.6 and below both TP -> 1; at 0.7 the first (0.6) is an FP -> precision 0, 1/2 at recall 0, 1/2 -> 1/4.
    assert result["per_class"]["b"] == pytest.approx([1, 1, 1, 1, 0.25])
    assert result["map"] == pytest.approx([0.75, 0.75, 0.75, 0.75, 0.375])
    assert result["average_map"] == pytest.approx((4 * 0.75 + 0.375) / 5)
    assert result["classes_without_truth"] == ["c"]
    events = temporal.event_scores(found, truth, 0.5)
    assert (events["true_positives"], events["detections"], events["ground_truth"]) == (3, 5, 3)
    assert events["precision"] == pytest.approx(0.6) and events["recall"] == 1.0
    assert events["f1"] == pytest.approx(0.75)


def test_a_class_with_ground_truth_and_no_detection_scores_zero():
    result = temporal.mean_average_precision([det("v", "a", 0, 1, 0.5)], [gt("v", "a", 0, 1), gt("v", "b", 0, 1)], (0.5,))
    assert result["per_class"] == {"a": [1.0], "b": [0.0]}
    assert result["map"] == [0.5]


# ActivityNet's `compute_average_precision_detection` (Heilbron et al., the ActivityNet
# evaluation code, also mmaction2's `average_precision_at_temporal_iou`), transcribed step by step
# as the reference: predictions by decreasing score; per threshold, ground truth by decreasing tIoU;
# below the threshold -> FP; locked -> next; else TP and lock. VOC 2011 interpolation.
def reference_ap(truth: dict, predictions: list, thresholds) -> np.ndarray:
    ap = np.zeros(len(thresholds))
    if not predictions:
        return ap
    lock = {k: np.ones((len(thresholds), len(v))) * -1 for k, v in truth.items()}
    npos = float(sum(len(v) for v in truth.values()))
    order = np.argsort([-p[3] for p in predictions], kind="stable")
    tp = np.zeros((len(thresholds), len(predictions)))
    fp = np.zeros((len(thresholds), len(predictions)))
    for idx, k in enumerate(order):
        video, start, end, _ = predictions[k]
        if video not in truth:
            fp[:, idx] = 1
            continue
        segments = np.array(truth[video], dtype=float)
        inter = np.clip(np.minimum(end, segments[:, 1]) - np.maximum(start, segments[:, 0]), 0, None)
        union = (segments[:, 1] - segments[:, 0]) + (end - start) - inter
        t_iou = inter / union
        sorted_idx = t_iou.argsort(kind="stable")[::-1]
        for t, threshold in enumerate(thresholds):
            for jdx in sorted_idx:
                if t_iou[jdx] < threshold:
                    fp[t, idx] = 1
                    break
                if lock[video][t, jdx] >= 0:
                    continue
                tp[t, idx] = 1
                lock[video][t, jdx] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tp_c, fp_c = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    for t in range(len(thresholds)):
        precision, recall = tp_c[t] / (tp_c[t] + fp_c[t]), tp_c[t] / npos
        mprec, mrec = np.hstack([[0], precision, [0]]), np.hstack([[0], recall, [1]])
        for i in range(len(mprec) - 1)[::-1]:
            mprec[i] = max(mprec[i], mprec[i + 1])
        steps = np.where(mrec[1:] != mrec[:-1])[0] + 1
        ap[t] = np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps])
    return ap


def test_average_precision_matches_the_activitynet_reference_on_random_cases():
    rng = np.random.default_rng(7)
    thresholds = temporal.THUMOS_TIOUS
    for case in range(200):
        videos = [f"v{k}" for k in range(rng.integers(1, 4))]
        truth, truth_map = [], {}
        for video in videos:
            for _ in range(rng.integers(0, 4)):
                start = float(rng.uniform(0, 50))
                truth.append(gt(video, "a", start, start + float(rng.uniform(1, 15))))
                truth_map.setdefault(video, []).append((truth[-1].start_seconds, truth[-1].end_seconds))
        if not truth:
            continue
        found, predictions = [], []
        scores = rng.permutation(40)[: rng.integers(0, 25)] / 40 + 0.01  # distinct scores
        for score in scores:
            video = videos[rng.integers(len(videos))] if rng.random() > 0.1 else "elsewhere"
            base = truth[rng.integers(len(truth))]
            start = max(0.0, base.start_seconds + float(rng.normal(0, 3)))
            end = start + max(0.5, base.end_seconds - base.start_seconds + float(rng.normal(0, 3)))
            found.append(det(video, "a", start, end, float(score)))
            predictions.append((video, start, end, float(score)))
        ours = [temporal.average_precision(found, truth, t) for t in thresholds]
        assert ours == pytest.approx(reference_ap(truth_map, predictions, thresholds).tolist(), abs=1e-12), case


# -- dataset layouts ---------------------------------------------------------------------------------


def clip(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_clip(path, 3, average_fps=10)


@pytest.fixture(scope="module")
def one_clip(tmp_path_factory):
    return clip(tmp_path_factory.mktemp("one") / "c.mp4")


def copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def test_class_names_become_words_in_the_shipped_spelling():
    assert datasets.class_words("ApplyEyeMakeup") == "Apply Eye Makeup"
    assert datasets.class_words("brush_hair") == "brush hair"
    assert datasets.class_words("YoYo") == "Yo Yo"
    assert datasets.class_words("PlayingDaf") == "Playing Daf"
    assert datasets._spelled(["HandstandPushups", "YoYo", "Unknown_Class"], "ucf101") == ["Hand Stand Pushups", "Yo Yo", "Unknown Class"]


def test_shipped_class_lists_and_prompt_ensembles():
    assert [len(datasets.shipped_classes(n)) for n in ("ucf101", "hmdb51", "kinetics400")] == [101, 51, 400]
    assert ablation.ensemble_names() == ["clip_kinetics", "clip_ucf101"]
    ucf = ablation.named_ensemble("clip_ucf101")
    assert len(ucf) == 48 and ucf[0] == "a photo of a person {}." and all("{}" in t for t in ucf)
    assert len(ablation.named_ensemble("clip_kinetics")) == 28
    assert ablation.expand_templates(["a video of {}.", "clip_kinetics"])[:2] == ["a video of {}.", "a photo of {}."]
    with pytest.raises(InvalidInputError, match="names no shipped ensemble; ensembles: clip_kinetics, clip_ucf101"):
        ablation.expand_templates(["a video of"])


def test_folders_layout_reports_a_class_folder_with_no_videos(tmp_path, one_clip):
    copy(one_clip, tmp_path / "ds" / "JumpRope" / "a.mp4")
    copy(one_clip, tmp_path / "ds" / "JumpRope" / "deeper" / "b.mp4")
    copy(one_clip, tmp_path / "ds" / "sit_down" / "c.mp4")
    (tmp_path / "ds" / "sit_down" / "same.mp4").symlink_to(tmp_path / "ds" / "JumpRope" / "a.mp4")
    (tmp_path / "ds" / "Empty").mkdir()
    (tmp_path / "ds" / "Empty" / "notes.txt").write_text("no videos here")
    found = datasets.load_dataset(tmp_path / "ds", "folders")
    assert found.classes == ["Empty", "Jump Rope", "sit down"]
    assert sorted((p.split("/ds/")[1], k) for p, k in found.clips) == [
        ("JumpRope/a.mp4", 1), ("JumpRope/deeper/b.mp4", 1), ("sit_down/c.mp4", 2)]
    assert found.problems == [f"{tmp_path / 'ds' / 'Empty'}: class folder with no videos",
                              f"{tmp_path / 'ds' / 'sit_down' / 'same.mp4'}: the same file as "
                              f"{tmp_path / 'ds' / 'JumpRope' / 'a.mp4'}; counted once, as 'Jump Rope'"]
    with pytest.raises(InvalidInputError, match="no class folders"):
        datasets.load_dataset(tmp_path / "ds" / "sit_down", "folders")


def test_ucf101_split_and_class_index(tmp_path, one_clip):
    root = tmp_path / "UCF-101"
    copy(one_clip, root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    copy(one_clip, root / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi")
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
        "YoYo/v_YoYo_g01_c01.avi\r\n"          # named, not on disk
        "Nonsense/v_Nonsense_g01_c01.avi\r\n")  # no such class
    found = datasets.load_dataset(root, "ucf101", str(lists / "testlist01.txt"))
    assert found.classes == ["Apply Eye Makeup", "Hand Stand Pushups", "Yo Yo"]
    assert [(p.split("UCF-101/")[1], k) for p, k in found.clips] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0), ("HandstandPushups/v_HandStandPushups_g01_c01.avi", 1)]
    assert len(found.problems) == 2
    assert "Nonsense/v_Nonsense_g01_c01.avi is in no class" in found.problems[0]
    assert found.problems[1] == f"{lists / 'testlist01.txt'}: names YoYo/v_YoYo_g01_c01.avi, which is not in {root}"
    # trainlist lines carry a class number too
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n")
    assert len(datasets.load_dataset(root, "ucf101", str(lists / "trainlist01.txt")).clips) == 1
    (lists / "classInd.txt").unlink()
    with pytest.raises(InvalidInputError, match="no classInd.txt beside it"):
        datasets.load_dataset(root, "ucf101", str(lists / "testlist01.txt"))


def test_hmdb51_split_files_take_the_testing_clips(tmp_path, one_clip):
    root = tmp_path / "hmdb51"
    for name in ("brush_hair/a.avi", "brush_hair/b.avi", "sit/c.avi"):
        copy(one_clip, root / name)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 2 \nb.avi 1 \nmissing.avi 2 \n")
    (splits / "sit_test_split1.txt").write_text("c.avi 2\nbroken line\n")
    (splits / "sit_test_split2.txt").write_text("c.avi 0\n")
    found = datasets.load_dataset(root, "hmdb51", str(splits))
    assert found.classes == ["brush hair", "sit"]
    assert [(p.split("hmdb51/")[1], k) for p, k in found.clips] == [("brush_hair/a.avi", 0), ("sit/c.avi", 1)]
    assert any("'broken line' is not 'video.avi 0|1|2'" in p for p in found.problems)
    assert any("names brush_hair/missing.avi, which is not in" in p for p in found.problems)
    assert datasets.load_dataset(root, "hmdb51", str(splits / "*_test_split2.txt")).clips == []


def test_csv_layout(tmp_path, one_clip):
    copy(one_clip, tmp_path / "clips" / "x.mp4")
    (tmp_path / "list.csv").write_text("path,label\nclips/x.mp4,climbing\nclips/gone.mp4,falling\nonly-one-cell\n"
                                       "clips/x.mp4,falling\n")
    found = datasets.load_dataset(tmp_path / "list.csv", "csv")
    assert found.classes == ["climbing", "falling"]
    assert found.clips == [(str(tmp_path / "clips" / "x.mp4"), 0)]
    assert len(found.problems) == 3 and "line 4 is not 'path,label'" in found.problems[0]
    assert "line 5 lists clips/x.mp4 again (line 2 is kept)" in found.problems[1]
    assert "names clips/gone.mp4, which is not in" in found.problems[2]
    with pytest.raises(InvalidInputError, match="--split is for the ucf101 and hmdb51 layouts"):
        datasets.load_dataset(tmp_path / "list.csv", "csv", "x.txt")


# -- annotations -------------------------------------------------------------------------------------


def test_thumos_annotations_folder(tmp_path):
    folder = tmp_path / "annotation"
    folder.mkdir()
    (folder / "BaseballPitch_test.txt").write_text("video_test_0000004  1.6  3.9\nvideo_test_0000004 10.0 12.5\n")
    (folder / "Billiards_test.txt").write_text("video_test_0000007 5 4\nvideo_test_0000007 x 4\nvideo_test_0000007 1 2 3\n")
    (folder / "Ambiguous_test.txt").write_text("video_test_0000004 0 100\n")
    found, problems, notes = annotations.read_annotations(folder)
    assert found == [Instance("video_test_0000004", "BaseballPitch", 1.6, 3.9), Instance("video_test_0000004", "BaseballPitch", 10.0, 12.5)]
    assert len(problems) == 3
    assert "5-4 s ends before it starts; skipped" in problems[0]
    assert "must be numbers of seconds" in problems[1] and "not 'video start end'" in problems[2]
    assert notes == [f"{folder / 'Ambiguous_test.txt'}: Ambiguous stretches are not scored (as in THUMOS14); left out"]


def test_csv_annotations_note_overlaps(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("video,label,start,end\ncam1.mp4,fall,0,5\ncam1.mp4,fall,4,8\ncam1.mp4,run,4,8\ncam1.mp4,fall,-1,2\n")
    found, problems, notes = annotations.read_annotations(path)
    assert [(i.label, i.start_seconds, i.end_seconds) for i in found] == [("fall", 0, 5), ("fall", 4, 8), ("run", 4, 8)]
    assert problems == [f"{path}:5: times must be finite and not negative, got '-1', '2'; skipped"]
    assert notes == ["cam1.mp4: 'fall' instances 0-5 s and 4-8 s overlap; both kept"]
    path.write_text("video,label,start,end\ncam1.mp4,fall,3,3\n")
    with pytest.raises(InvalidInputError, match="no usable annotations .*ends before it starts"):
        annotations.read_annotations(path)


# -- prompt variants ---------------------------------------------------------------------------------


def test_variants_and_descriptions(tmp_path):
    names = [v.name for v in ablation.variants(("a video of {}.", "a photo of {}."), True)]
    assert names == ["template: a video of {}.", "template: a photo of {}.", "ensemble of 2 templates", "ensemble + descriptions"]
    assert [v.name for v in ablation.variants(("a video of {}.",), False)] == ["template: a video of {}."]
    path = tmp_path / "descriptions.txt"
    path.write_text("ApplyEyeMakeup: a person putting make-up on their eyes\nno_such_class: something\nYo Yo\n")
    found, problems = ablation.read_descriptions(str(path), ["Apply Eye Makeup", "Yo Yo"])
    assert found == {"Apply Eye Makeup": "a person putting make-up on their eyes"}
    assert "'no_such_class' is not a class of the dataset" in problems[0]
    assert "'Yo Yo' has no description" in problems[1]
