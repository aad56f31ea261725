"""Calibration without a model: fitting thresholds on synthetic values, held-out estimates,
reading examples (CSV, YAML, folders) and their mistakes, and `calibrate` over a stand-in
classifier whose window values are made up, so the threshold to find is known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from actionzs.calibration import Example, calibrate, example_values, fit_threshold, held_out, read_examples, read_thresholds
from actionzs.calibration.calibrate import scorer_of
from actionzs.calibration.examples import truth
from actionzs.errors import InvalidInputError
from actionzs.events import EventOptions, moving_average
from actionzs.options import RunOptions
from actionzs.prompts import Label
from actionzs.results import VideoResult

# -- fitting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("known", [0.23, 0.5, 0.81])
def test_fit_recovers_a_separating_threshold(known):
    rng = np.random.default_rng(1)
    positives, negatives = rng.uniform(known, known + 0.2, 80), rng.uniform(known - 0.2, known, 80)
    values = np.concatenate([positives, negatives])
    fitted = fit_threshold(values, np.arange(160) < 80)
    assert negatives.max() < fitted.threshold <= positives.min()  # halfway between the clusters
    assert fitted.threshold == pytest.approx(known, abs=0.01)
    assert (fitted.precision, fitted.recall, fitted.reached) == (1.0, 1.0, True)


def test_fit_on_overlapping_values_lands_near_the_crossing_and_a_precision_target_raises_it():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.4, 0.05, 400), rng.normal(0.2, 0.05, 400)])
    positive = np.arange(800) < 400
    best_f1 = fit_threshold(values, positive)
    assert best_f1.threshold == pytest.approx(0.3, abs=0.03)
    strict = fit_threshold(values, positive, precision=0.99)
    assert strict.threshold > best_f1.threshold and strict.precision >= 0.99 and strict.recall < best_f1.recall
    on = values >= strict.threshold
    assert (on & positive).sum() / on.sum() == pytest.approx(strict.precision)


def test_fit_reports_a_precision_it_cannot_reach():
    values = np.array([0.5, 0.5, 0.5, 0.5])  # a positive and a negative alike
    fitted = fit_threshold(values, np.array([True, False, True, False]), precision=0.9)
    assert not fitted.reached and fitted.precision == 0.5


def test_fit_needs_both_kinds_of_example():
    with pytest.raises(ValueError, match="positive and negative"):
        fit_threshold([0.1, 0.2], [True, True])


def test_held_out_holds_each_example_out_once():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(0.6, 0.9, 12), rng.uniform(0.1, 0.4, 20)])
    positive = np.arange(32) < 12
    estimate = held_out(values, positive)
    assert (estimate.precision, estimate.recall, estimate.folds) == (1.0, 1.0, 5)
    # a positive that looks like the negatives is missed when held out
    values[0] = 0.2
    assert held_out(values, positive).recall == pytest.approx(11 / 12)
    assert held_out(values[:3], np.array([True, True, False])) is None  # one negative: nothing to hold out
    assert held_out(values[10:15], positive[10:15]).folds == 2


# -- examples ------------------------------------------------------------------------------------


@pytest.fixture
def clips(tmp_path):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"not decoded here")
    return tmp_path


def test_examples_from_csv_moments_clips_defaults_and_relative_paths(clips):
    path = clips / "ex.csv"
    path.write_text("path,label,start,end,positive\na.mp4,fall,1.5,3,1\nb.mp4,fall,,,0\n\nc.mp4,none,,,\n" + f"{clips / 'a.mp4'},walk,0,1,\n")
    examples = read_examples(path)
    assert [(e.label, e.positive, e.start_seconds, e.end_seconds) for e in examples] == [
        ("fall", True, 1.5, 3.0), ("fall", False, None, None), ("none", True, None, None), ("walk", True, 0.0, 1.0),
    ]
    assert examples[0].path == str(clips / "a.mp4") and examples[0].where == f"{path} line 2"


def test_examples_from_yaml_and_from_a_folder(clips):
    path = clips / "ex.yaml"
    path.write_text("- {path: a.mp4, label: fall, start: 2, end: 4}\n- {path: b.mp4, label: fall, positive: 0}\n")
    assert [(e.label, e.positive, e.start_seconds) for e in read_examples(path)] == [("fall", True, 2.0), ("fall", False, None)]
    folder = clips / "examples"
    for where in ("fall", "fall/negatives", "none", "walk"):
        (folder / where).mkdir(parents=True)
        (folder / where / "x.mp4").write_bytes(b"")
    (folder / "fall" / "notes.txt").write_text("not a video")
    found = sorted((e.label, e.positive, e.path.removeprefix(str(folder))) for e in read_examples(folder))
    assert found == [("fall", False, "/fall/negatives/x.mp4"), ("fall", True, "/fall/x.mp4"), ("none", True, "/none/x.mp4"),
                     ("walk", True, "/walk/x.mp4")]


@pytest.mark.parametrize("text, words", [
    ("path,label,colour\na.mp4,fall,red\n", "unknown column(s) colour"),
    ("label,start\nfall,1\n", "at least path,label"),
    ("path,label,positive\na.mp4,fall,maybe\n", "line 2: positive must be 1 or 0"),
    ("path,label,start,end\na.mp4,fall,1,\n", "line 2: give both start and end"),
    ("path,label,start,end\na.mp4,fall,3,2\n", "end (2 s) must be after start (3 s)"),
    ("path,label,start,end\na.mp4,fall,-1,2\n", "start must be a number of seconds >= 0"),
    ("path,label\nmissing.mp4,fall\n", "missing.mp4: no such file"),
    ("path,label\n,fall\n", "needs a path and a label"),
    ("path,label\n", "holds no examples"),
])
def test_bad_examples_are_refused_naming_the_file_and_line(clips, text, words):
    path = clips / "ex.csv"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        read_examples(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_an_examples_file_that_is_missing_or_of_another_kind(clips):
    with pytest.raises(InvalidInputError, match="no such examples file or folder"):
        read_examples(clips / "nope.csv")
    (clips / "ex.txt").write_text("a.mp4 fall\n")
    with pytest.raises(InvalidInputError, match=r"must be a \.csv or \.yaml file or a folder"):
        read_examples(clips / "ex.txt")
    (clips / "ex.yaml").write_text("a: 1\n")
    with pytest.raises(InvalidInputError, match="must be a list of mappings"):
        read_examples(clips / "ex.yaml")


def test_truth_positives_negatives_and_what_counts_for_which_label():
    examples = [
        Example("a", "fall"), Example("b", "walk"), Example("c", "fall", positive=False), Example("d", "none"),
        Example("e", "fall"), Example("e", "walk"),  # one clip showing both
    ]
    moments, roles = truth(examples, ["fall", "walk"])
    assert [m[0] for m in moments] == ["a", "b", "c", "d", "e"]
    assert roles["fall"].tolist() == [1, 0, 0, 0, 1]
    assert roles["walk"].tolist() == [0, 1, -1, 0, 1]  # c is a negative of fall only


@pytest.mark.parametrize("examples, words", [
    ([Example("a", "fall"), Example("b", "none")], "'walk' has no positive examples"),
    ([Example("a", "fall"), Example("b", "walk"), Example("b", "fall", positive=False), Example("a", "walk", positive=False),
      Example("a", "fall", positive=False)], "both a positive and a negative of 'fall'"),
])
def test_truth_refuses_labels_it_cannot_calibrate(examples, words):
    with pytest.raises(InvalidInputError, match=words):
        truth(examples, ["fall", "walk"])
    with pytest.raises(InvalidInputError, match="'fall' has no negative examples"):
        truth([Example("a", "fall")], ["fall"])


# -- calibrate over a stand-in classifier --------------------------------------------------------


class MadeUpScores:
    """A classifier whose windows (1 s apart, 2 s long) have the values given per video."""

    def __init__(self, per_video: dict[str, np.ndarray]):
        self.per_video = per_video
        self.encoder = SimpleNamespace(name="made-up", fingerprint="sha256:made-up", head=SimpleNamespace(activation="softmax"))
        self.asked: list[list[str]] = []

    def classify_each(self, videos, labels, **options):
        self.asked.append(list(videos))
        for video in videos:
            if video not in self.per_video:
                yield video, InvalidInputError(f"{video}: cannot be read")
                continue
            values = self.per_video[video]
            starts = np.arange(len(values), dtype=float)
            spans = np.stack([starts, starts + 2.0], axis=1)
            yield video, VideoResult(video, float(len(values) + 1), "made-up", [], window_spans=spans,
                                     window_scores=values, window_similarity=values - 1.0, label_names=[l.name for l in labels])


def test_calibrate_recovers_known_thresholds_per_label():
    rng = np.random.default_rng(4)
    known = {"fall": 0.35, "walk": 0.6}
    per_video, examples = {}, []
    for k in range(120):
        label = ["fall", "walk", "none"][k % 3]
        values = np.zeros((4, 2))
        for m, name in enumerate(known):  # every window below the label's threshold ...
            values[:, m] = rng.uniform(known[name] - 0.25, known[name], 4)
            if name == label:  # ... but one window of its positives above it
                values[rng.integers(4), m] = rng.uniform(known[name], known[name] + 0.25)
        per_video[f"v{k}"] = values
        examples.append(Example(f"v{k}", label))
    classifier = MadeUpScores(per_video)
    run = RunOptions(segments=True, events=EventOptions(measure="score"))
    made, reports, failed = calibrate(classifier, examples, [Label("fall"), Label("walk")], run)
    assert failed == {} and classifier.asked == [list(per_video)]  # each video once
    for name, value in known.items():
        assert made.thresholds[name] == pytest.approx(value, abs=0.02)
    assert [(r.label, r.positives, r.negatives, r.precision, r.recall, r.folds) for r in reports] == [
        ("fall", 40, 80, 1.0, 1.0, 5), ("walk", 40, 80, 1.0, 1.0, 5)]
    # held out, an example near the threshold may land on the other side
    assert all(r.held_out_precision >= 0.95 and r.held_out_recall >= 0.95 for r in reports)
    assert (made.measure, made.labels, made.fingerprint) == ("score", ("fall", "walk"), "sha256:made-up")
    # on similarity (here the score - 1) the same examples give the same thresholds, shifted
    on_similarity = calibrate(classifier, examples, [Label("fall"), Label("walk")],
                              run.updated(events=EventOptions(measure="similarity")))[0]
    assert on_similarity.thresholds["fall"] == pytest.approx(made.thresholds["fall"] - 1.0)


def test_example_values_take_the_best_smoothed_window_inside_each_moment():
    values = np.array([[0.1], [0.9], [0.2], [0.3], [0.8], [0.1]])  # window k: [k, k+2), centre k+1; video 7 s
    classifier = MadeUpScores({"v": values})
    moments = [("v", None, None), ("v", 0.0, 2.5), ("v", 2.5, 4.5), ("v", 5.6, 5.9), ("v", 6.5, 9.0), ("gone", None, None)]
    run = RunOptions(segments=True)
    got, failed = example_values(scorer_of(classifier), moments, [Label("a")], run)
    np.testing.assert_allclose(got[:4, 0], [0.9, 0.9, 0.3, 0.1])  # 5.6-5.9 holds no centre: the nearest (6)
    assert np.isnan(got[4:, 0]).all()
    assert "not inside the video" in failed[("v", 6.5, 9.0)] and "cannot be read" in failed[("gone", None, None)]
    smoothed, _ = example_values(scorer_of(classifier), moments[:1], [Label("a")], run.updated(events=EventOptions(smooth=3)))
    # what find_events would compare: the best of 0.5 (edge: (0.1 + 0.9) / 2), 0.4, 0.467, ...
    assert smoothed[0, 0] == pytest.approx(moving_average(values, 3).max()) == pytest.approx(0.5)


def test_example_values_leave_frameless_windows_out_and_a_moment_with_no_other_is_not_scored():
    nan = np.nan
    values = np.array([[0.1], [0.9], [nan], [0.3], [nan], [0.1]])  # windows 2 and 4 held no keyframe
    classifier = MadeUpScores({"v": values})
    moments = [("v", None, None), ("v", 2.5, 4.5), ("v", 4.6, 5.4), ("v", 5.6, 5.9)]
    got, failed = example_values(scorer_of(classifier), moments, [Label("a")], RunOptions(segments=True))
    np.testing.assert_allclose(got[[0, 1, 3], 0], [0.9, 0.3, 0.1])  # 2.5-4.5: centres 3 (frameless) and 4
    assert np.isnan(got[2, 0]) and "no frame was sampled inside the moment 4.6-5.4 s" in failed[("v", 4.6, 5.4)]
    smoothed, _ = example_values(scorer_of(classifier), moments[:1], [Label("a")],
                                 RunOptions(segments=True).updated(events=EventOptions(smooth=3)))
    assert smoothed[0, 0] == pytest.approx(0.5)  # (0.1 + 0.9) / 2: the frameless window counts for nothing


def test_calibrate_leaves_failed_examples_out_and_refuses_unknown_labels():
    per_video = {f"v{k}": np.full((3, 1), 0.9 if k % 2 else 0.1) for k in range(6)}
    examples = [Example(f"v{k}", "fall" if k % 2 else "none") for k in range(6)] + [Example("broken", "fall")]
    made, reports, failed = calibrate(MadeUpScores(per_video), examples, [Label("fall")], RunOptions(segments=True))
    assert list(failed) == [("broken", None, None)] and reports[0].positives == 3
    assert made.thresholds["fall"] == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match=r"unknown label\(s\) 'walk'.*the labels are fall"):
        calibrate(MadeUpScores(per_video), examples + [Example("v0", "walk")], [Label("fall")], RunOptions(segments=True))
    with pytest.raises(InvalidInputError, match="'fall' has no positive examples.*once the 1 that failed are left out"):
        calibrate(MadeUpScores({"v0": per_video["v0"]}), examples[:2], [Label("fall")], RunOptions(segments=True))
    with pytest.raises(InvalidInputError, match="no example could be scored"):
        calibrate(MadeUpScores({}), examples[:2], [Label("fall")], RunOptions(segments=True))


def test_a_thresholds_file_reads_back_what_was_written_whatever_the_label_names(tmp_path):
    from actionzs.calibration import Thresholds

    names = ("yes", "no", "1", "null", "a person: falls", "café 🎉", "#hash")
    made = Thresholds("m", "sha256:1", "similarity", names + ("background",), {n: 0.1 * k for k, n in enumerate(names)},
                      ("a video of {}.",), {"yes": {"positives": 2, "negatives": 3, "folds": 0}})
    (tmp_path / "t.yaml").write_text(made.to_yaml(), encoding="utf-8")
    back = read_thresholds(tmp_path / "t.yaml")
    assert back == Thresholds(*[getattr(made, f) for f in ("model", "fingerprint", "measure", "labels", "thresholds", "templates",
                                                           "held_out")], source=str(tmp_path / "t.yaml"))


def test_a_config_names_its_thresholds_file_relative_to_itself(tmp_path, monkeypatch):
    from actionzs.config import load_config

    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "cam.yaml").write_text("events:\n  thresholds: calibrated/thresholds.yaml\n")
    monkeypatch.chdir(tmp_path)  # elsewhere: the path must not depend on the working directory
    settings = load_config(folder / "cam.yaml")
    assert settings["events"]["thresholds"] == str((folder / "calibrated" / "thresholds.yaml").resolve())
