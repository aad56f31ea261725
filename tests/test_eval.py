"""`actionzs eval` end to end with an encoder whose answers are known, so every figure is checked
against a hand-computed one: trimmed clips (top-1, top-5, mean class accuracy, per-class accuracy,
the confusion matrix, the prompt ablation), temporal mAP on an untrimmed clip, embeddings made
once (stored, or from an index) whatever the prompts, the bad inputs, and the sample footage.

`WordFamily`, registered as a model family for these tests, embeds a frame as the basis vector
of its scene colour (`actionzs.testing`), "alpha"/"beta"/"gamma" as e0/e1/e2, "colour k" as e_k,
and anything else (an unknown word, any "a drawing of ..." prompt) as a vector orthogonal to every
scene, so a clip's similarity to each class is known exactly.
"""

from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.evaluation.datasets import load_dataset
from actionzs.evaluation.trimmed import evaluate_clips
from actionzs.models import FrameEncoder, ScoreHead, register_encoder, unregister_encoder
from actionzs.options import RunOptions
from actionzs.testing import read_scene, write_clip
from helpers_cli import run_cli

DIM, SCENES = 16, 8
WORDS = {"alpha": 0, "beta": 1, "gamma": 2}
TEMPLATES = ["--template", "a video of {}.", "--template", "a drawing of {}."]


class WordFamily(FrameEncoder):
    """Frames: e_(scene). Texts: "colour k" -> e_k; else a known word -> its vector, unless the
    prompt is "a drawing of ..."; else a fixed random vector in the dimensions no scene uses."""

    texts_normalised = True
    frames_embedded = 0  # over all instances: what the tests count decoding by

    class _PassThrough:
        decode_size = None

        def __call__(self, frames):
            return torch.from_numpy(np.ascontiguousarray(frames))

    def __init__(self, name: str):
        self.name = name
        self.preprocessor = self._PassThrough()
        self.head = ScoreHead(scale=10.0)

    @classmethod
    def load(cls, source, ref, local_files_only):
        return cls(ref.name)

    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(pixels), DIM)
        for row, frame in enumerate(pixels.numpy()):
            out[row, read_scene(frame)] = 1.0
        WordFamily.frames_embedded += len(pixels)
        return out

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self._text(t) for t in texts])

    @staticmethod
    def _text(text: str) -> torch.Tensor:
        vector = torch.zeros(DIM)
        colour = re.search(r"colour (\d)", text)
        word = next((k for w, k in WORDS.items() if w in text), None)
        if colour:
            vector[int(colour.group(1))] = 1.0
        elif word is not None and not text.startswith("a drawing of"):
            vector[word] = 1.0
        else:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            vector[SCENES:] = torch.from_numpy(rng.standard_normal(DIM - SCENES)).float()
        return vector / vector.norm()


@pytest.fixture(scope="module")
def words_model(tmp_path_factory):
    register_encoder("toy-words", WordFamily)
    model = tmp_path_factory.mktemp("words-model")
    (model / "config.json").write_text(json.dumps({"model_type": "toy-words"}))
    yield model
    unregister_encoder("toy-words")


#: class folder -> the scene of each of its clips. gamma's second clip shows beta's colour (a
#: confusion); "delta" is a word the model does not know (only its description helps).
CLIPS = {"alpha": [0, 0], "beta": [1, 1], "gamma": [2, 1], "delta": [3, 3]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trimmed")
    for name, scenes in CLIPS.items():
        (root / name).mkdir()
        for k, scene in enumerate(scenes):
            write_clip(root / name / f"{name}{k}.mp4", 8, average_fps=8, width=64, height=48, scenes=lambda i, s=scene: s)
    (root.parent / f"{root.name}-descriptions.txt").write_text("delta: a splash of colour 3\n")
    return root


def evaluate(capsys, tmp_path, *argv):
    out = tmp_path / "metrics.json"
    code, stdout, stderr = run_cli(capsys, "eval", *argv, "-o", out, "--num-frames", "4")
    return code, (json.loads(out.read_text()) if out.exists() else None), stdout, stderr


def by_variant(metrics: dict) -> dict:
    return {a["variant"]: (a["top1"], a["top5"], a["mean_class_accuracy"]) for a in metrics["ablation"]}


def test_trimmed_metrics_and_ablation_equal_hand_computed(capsys, tmp_path, words_model, dataset):
    descriptions = dataset.parent / f"{dataset.name}-descriptions.txt"
    code, metrics, stdout, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, *TEMPLATES,
                                             "--descriptions", descriptions)
    assert code == 0, stderr
    assert metrics["classes"] == ["alpha", "beta", "delta", "gamma"]
    # "a video of {}.": alpha, beta right; gamma 1 of 2 (its beta-coloured clip -> beta); delta's text
    # is orthogonal to every clip, so its clips tie at 0 over all classes and go to the first (alpha).
    # "a drawing of {}.": every class ties on every clip -> all alpha: 2/8, per class 1, 0, 0, 0.
    # The ensemble: each known class vector (e_k + noise)/sqrt(2): the same ranking as the first.
    # With "delta: a splash of colour 3" delta's clips are found too.
    # top-5 is capped at the 4 classes: always 1.
    assert by_variant(metrics) == pytest.approx({
        "template: a video of {}.": (5 / 8, 1.0, (1 + 1 + 0 + 0.5) / 4),
        "template: a drawing of {}.": (2 / 8, 1.0, (1 + 0 + 0 + 0) / 4),
        "ensemble of 2 templates": (5 / 8, 1.0, (1 + 1 + 0 + 0.5) / 4),
        "ensemble + descriptions": (7 / 8, 1.0, (1 + 1 + 1 + 0.5) / 4),
    })
    assert metrics["variant"] == "ensemble + descriptions"
    assert (metrics["top1"], metrics["mean_class_accuracy"]) == pytest.approx((7 / 8, 0.875))
    assert metrics["confusion"] == [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 1, 0, 1]]
    assert [(c["class"], c["clips"], c["accuracy"]) for c in metrics["per_class"]] == [
        ("alpha", 2, 1.0), ("beta", 2, 1.0), ("delta", 2, 1.0), ("gamma", 2, 0.5)]
    # gamma's beta-coloured clip: beta scores above gamma, alpha and delta tie with it and come first: rank 4.
    wrong = [p for p in metrics["predictions"] if p["class"] != p["predicted"]]
    assert [(p["video"].rsplit("/", 1)[1], p["predicted"], p["rank"]) for p in wrong] == [("gamma1.mp4", "beta", 4)]
    assert metrics["most_confused"] == [{"class": "gamma", "predicted": "beta", "clips": 1}]
    assert metrics["problems"] == [] and metrics["failures"] == []
    # the table on stdout, the page and the PNG
    assert " 87.5  100.0   87.5       ensemble + descriptions" in stdout
    page = (tmp_path / "metrics.html").read_text()
    assert "<td>gamma</td><td>beta</td><td class=\"n\">1</td>" in page  # most confused
    assert "<tr><td>gamma</td><td class=\"n\">0</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">1</td></tr>" in page
    assert "Prompt ablation" in page and "template: a drawing of {}." in page and "data:image/png;base64," in page
    png = Image.open(tmp_path / "metrics-confusion.png")
    assert png.format == "PNG"
    pixels = np.asarray(png.convert("RGB"))
    assert (pixels < 60).all(axis=-1).any() and (pixels == 255).all(axis=-1).any()  # full cells and empty ones


def test_each_clip_is_decoded_once_and_stored_embeddings_serve_other_prompts(capsys, tmp_path, words_model, dataset):
    store = tmp_path / "embeddings"
    WordFamily.frames_embedded = 0
    code, first, _, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, *TEMPLATES, "--save-embeddings", store)
    assert code == 0, stderr
    assert WordFamily.frames_embedded == 8 * 4  # 8 clips x 4 frames, for all 3 variants
    assert len(list(store.glob("*.npz"))) == 8
    WordFamily.frames_embedded = 0
    code, second, _, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, "--template", "a video of {}.",
                                       "--template", "a clip of {}.", "--save-embeddings", store)
    assert code == 0, stderr
    assert WordFamily.frames_embedded == 0
    assert by_variant(second)["template: a video of {}."] == by_variant(first)["template: a video of {}."]
    # other sampling is other embeddings, never stale ones
    code, _, _ = run_cli(capsys, "eval", dataset, "--model", words_model, "-o", tmp_path / "m.json", "--num-frames", "2",
                            "--template", "a video of {}.", "--save-embeddings", store, "-q")
    assert code == 0 and WordFamily.frames_embedded == 8 * 2


def test_clips_evaluated_from_an_index_are_not_decoded(capsys, tmp_path, words_model, dataset):
    index = tmp_path / "lib.actionzs"
    code, _, stderr = run_cli(capsys, "index", dataset, "--index", index, "--model", words_model, "-q")
    assert code == 0, stderr
    WordFamily.frames_embedded = 0
    out = tmp_path / "metrics.json"
    code, _, stderr = run_cli(capsys, "eval", dataset, "--index", index, *TEMPLATES, "-o", out, "-q")
    assert code == 0, stderr
    assert WordFamily.frames_embedded == 0
    assert by_variant(json.loads(out.read_text()))["template: a video of {}."] == pytest.approx((5 / 8, 1.0, 0.625))


def test_the_python_api_gives_the_command_s_figures(dataset):
    classifier = ZeroShotVideoClassifier(WordFamily("words"), RunOptions(num_frames=4))
    found = evaluate_clips(classifier, load_dataset(dataset, "folders"), ("a video of {}.", "a drawing of {}."),
                           {"delta": "a splash of colour 3"})
    assert (found["top1"], found["mean_class_accuracy"]) == pytest.approx((7 / 8, 0.875))
    assert [a["top1"] for a in found["ablation"]] == pytest.approx([5 / 8, 2 / 8, 5 / 8, 7 / 8])
    assert found["failures"] == []


def test_every_clip_failing_exits_1(capsys, tmp_path, words_model):
    (tmp_path / "ds" / "alpha").mkdir(parents=True)
    (tmp_path / "ds" / "alpha" / "bad.mp4").write_bytes(b"not a video")
    code, metrics, _, stderr = evaluate(capsys, tmp_path, tmp_path / "ds", "--model", words_model, "--template", "{}")
    assert code == 1 and metrics is None
    assert f"error: none of the 1 clips could be evaluated ({tmp_path / 'ds' / 'alpha' / 'bad.mp4'}:" in stderr
    assert "Traceback" not in stderr


# -- temporal ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    """cam1.mp4, 12 s at 10 fps: alpha's colour, beta's from 4.3 s (frame 43), alpha's again from 10.3 s."""
    root = tmp_path_factory.mktemp("untrimmed")
    (root / "videos").mkdir()
    write_clip(root / "videos" / "cam1.mp4", 120, average_fps=10, width=64, height=48,
               scenes=lambda i: 1 if 43 <= i < 103 else 0)
    return root


def test_temporal_map_equals_hand_computed(capsys, tmp_path, words_model, untrimmed):
    truth = tmp_path / "truth.csv"
    truth.write_text("video,label,start,end\n"
                     "cam1,alpha,0,4.25\ncam1,alpha,9.75,12\ncam1,beta,4.25,10.25\ncam1,gamma,6,8\n")
    out = tmp_path / "temporal.json"
    code, stdout, stderr = run_cli(capsys, "eval", untrimmed / "videos", "--annotations", truth, "--model", words_model,
                                   "-l", "alpha", "-l", "beta", "-l", "gamma", *TEMPLATES, "--fps", "2", "--window", "2",
                                   "--stride", "1", "-o", out)
    assert code == 0, stderr
    metrics = json.loads(out.read_text())
    # Windows [t, t+2) every 1 s, 4 frames each; a window is its label's when 3 of its 4 frames are.
    # Events (cells split overlaps at the middle): alpha [0, 4.5] and [10.5, 12], beta [4.5, 10.5].
    # tIoU: alpha 4.25/4.5 = 0.94 and 1.5/2.25 = 0.67 (the lower-scored one); beta 5.75/6.25 = 0.92.
    # So alpha's AP is 1 up to tIoU 0.6 and 1/2 at 0.7; beta's 1; gamma's (never detected) 0.
    assert metrics["per_class"] == pytest.approx({"alpha": [1, 1, 1, 1, 0.5], "beta": [1] * 5, "gamma": [0] * 5})
    assert metrics["map"] == pytest.approx([2 / 3] * 4 + [0.5])
    assert metrics["average_map"] == pytest.approx((4 * 2 / 3 + 0.5) / 5)
    assert metrics["events"] == pytest.approx({"tiou": 0.5, "true_positives": 3, "detections": 3, "ground_truth": 4,
                                               "precision": 1.0, "recall": 0.75, "f1": 6 / 7})
    ablation = {a["variant"]: a["average_map"] for a in metrics["ablation"]}
    assert ablation["template: a drawing of {}."] == 0.0  # every window ties at 1/3: no event
    assert ablation["ensemble of 2 templates"] == pytest.approx(metrics["average_map"])
    assert "@0.3  @0.4  @0.5  @0.6  @0.7   avg  variant" in stdout
    assert "Events at tIoU 0.5" in (tmp_path / "temporal.html").read_text()


def test_detections_in_a_video_without_annotations_are_false_positives(capsys, tmp_path, words_model, untrimmed):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "cam1.mp4").write_bytes((untrimmed / "videos" / "cam1.mp4").read_bytes())
    write_clip(videos / "quiet.mp4", 40, average_fps=10, width=64, height=48, scenes=lambda i: 0)  # 4 s of alpha's colour
    truth = tmp_path / "truth.csv"
    truth.write_text("video,label,start,end\ncam1,alpha,0,4.25\ncam1,alpha,9.75,12\ncam1,beta,4.25,10.25\n")
    out = tmp_path / "temporal.json"
    code, _, stderr = run_cli(capsys, "eval", videos, "--annotations", truth, "--model", words_model, "-l", "alpha",
                              "-l", "beta", "--template", "a video of {}.", "--fps", "2", "-o", out)
    assert code == 0, stderr
    assert "1 of the 2 videos under" in stderr
    metrics = json.loads(out.read_text())
    # quiet.mp4's alpha event [0, 4] (every window pure: the best score) is a false positive ranked
    # first; then cam1's two alpha events. Up to tIoU 0.6: precision 0, 1/2, 2/3 at recall 0, 1/2, 1
    # -> AP 2/3; at 0.7 the last is a false positive too: precision 1/2 at recall 1/2 -> AP 1/4.
    assert metrics["per_class"]["alpha"] == pytest.approx([2 / 3] * 4 + [1 / 4])
    assert metrics["per_class"]["beta"] == pytest.approx([1] * 5)
    assert metrics["events"]["precision"] == pytest.approx(3 / 4) and metrics["events"]["recall"] == 1.0


def test_thumos_style_annotation_files(capsys, tmp_path, words_model, untrimmed):
    folder = tmp_path / "annotation"
    folder.mkdir()
    (folder / "Alpha_test.txt").write_text("cam1 0 4.25\ncam1 9.75 12\n")
    (folder / "Beta_test.txt").write_text("cam1 4.25 10.25\n")
    (folder / "Ambiguous_test.txt").write_text("cam1 3 5\n")
    out = tmp_path / "t.json"
    code, _, stderr = run_cli(capsys, "eval", untrimmed / "videos", "--annotations", folder, "--model", words_model,
                              "-l", "alpha", "-l", "beta", "--template", "a video of {}.", "--fps", "2", "-o", out)
    assert code == 0, stderr
    assert "Ambiguous stretches are not scored (as in THUMOS14); left out" in stderr
    metrics = json.loads(out.read_text())  # "Alpha" in the file names is the candidate "alpha"
    assert metrics["per_class"] == pytest.approx({"alpha": [1, 1, 1, 1, 0.5], "beta": [1] * 5})


def test_temporal_bad_annotations_are_named_and_the_rest_evaluated(capsys, tmp_path, words_model, untrimmed):
    truth = tmp_path / "truth.csv"
    truth.write_text("video,label,start,end\n"
                     "cam1,alpha,0,4.25\n"
                     "cam1,beta,4.25,10.25\n"
                     "cam1,beta,9,10.5\n"          # overlaps the one before: kept, noted
                     "cam1,beta,8,3\n"             # inverted
                     "cam9,alpha,0,2\n"            # no such video
                     "cam1,omega,1,2\n")           # not a candidate
    out = tmp_path / "t.json"
    code, _, stderr = run_cli(capsys, "eval", untrimmed / "videos", "--annotations", truth, "--model", words_model,
                              "-l", "alpha", "-l", "beta", "--template", "a video of {}.", "--fps", "2", "-o", out)
    assert code == 1
    assert f"warning: {truth}:5: the interval 8-3 s ends before it starts; skipped" in stderr
    assert "warning: annotations name video 'cam9' (1 instances), which is not in" in stderr
    assert "warning: annotation label 'omega' (1 instances) is not a candidate label; left out" in stderr
    assert "warning: cam1: 'beta' instances 4.25-10.25 s and 9-10.5 s overlap; both kept" in stderr
    metrics = json.loads(out.read_text())
    assert metrics["ground_truth"] == 3 and metrics["videos"] == 1 and len(metrics["problems"]) == 3
    assert metrics["per_class"]["beta"][0] == pytest.approx(1 / 2)  # one of the two overlapping instances found
    assert "Traceback" not in stderr
    # without -l the annotations' labels are the candidates
    code, _, stderr = run_cli(capsys, "eval", untrimmed / "videos", "--annotations", truth, "--model", words_model,
                              "--template", "a video of {}.", "--fps", "2", "-o", out, "-q")
    assert json.loads(out.read_text())["candidates"] == ["alpha", "beta", "omega"]


# -- trimmed bad input -------------------------------------------------------------------------------


def test_an_empty_class_folder_is_named_and_the_rest_evaluated(capsys, tmp_path, words_model, dataset):
    root = tmp_path / "ds"
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
        for path in (dataset / name).iterdir():
            (root / name / path.name).write_bytes(path.read_bytes())
    (root / "gamma").mkdir()
    (root / "beta" / "broken.mp4").write_bytes(b"not a video")
    code, metrics, _, stderr = evaluate(capsys, tmp_path, root, "--model", words_model, "--template", "a video of {}.")
    assert code == 1
    assert f"warning: {root / 'gamma'}: class folder with no videos" in stderr
    assert f"error: {root / 'beta' / 'broken.mp4'}:" in stderr and "Traceback" not in stderr
    assert metrics["clips"] == 4 and metrics["top1"] == 1.0
    assert [c["accuracy"] for c in metrics["per_class"]] == [1.0, 1.0, None]
    assert [f["video"] for f in metrics["failures"]] == [str(root / "beta" / "broken.mp4")]


def test_a_split_naming_missing_files_is_named_and_the_rest_evaluated(capsys, tmp_path, words_model, dataset):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 alpha\n2 beta\n")
    (lists / "testlist01.txt").write_text("alpha/alpha0.mp4\nbeta/beta1.mp4\nbeta/beta7.mp4\n")
    code, metrics, _, stderr = evaluate(capsys, tmp_path, dataset, "--layout", "ucf101", "--split", lists / "testlist01.txt",
                                        "--model", words_model, "--template", "a video of {}.")
    assert code == 1
    assert f"warning: {lists / 'testlist01.txt'}: names beta/beta7.mp4, which is not in {dataset}" in stderr
    assert metrics["clips"] == 2 and metrics["top1"] == 1.0 and metrics["split"] == str(lists / "testlist01.txt")


@pytest.mark.parametrize("argv, message", [
    (["-l", "alpha"], "the candidate labels of trimmed clips are the dataset's classes"),
    (["--template", "no_such_ensemble"], "names no shipped ensemble"),
    (["--split", "x.txt"], "--split is for the ucf101 and hmdb51 layouts"),
    (["--tiou", "0"], "--tiou must be in (0, 1]"),
    (["--descriptions", "/nonexistent/d.txt"], "/nonexistent/d.txt: cannot read labels file"),
])
def test_usage_errors_exit_2_before_any_decoding(capsys, tmp_path, words_model, dataset, argv, message):
    WordFamily.frames_embedded = 0
    code, metrics, _, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, *argv)
    assert code == 2 and message in stderr and metrics is None
    assert WordFamily.frames_embedded == 0 and "Traceback" not in stderr


def test_named_ensembles_by_template_and_by_config(capsys, tmp_path, words_model, dataset):
    code, metrics, _, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, "--template", "clip_ucf101")
    assert code == 0, stderr
    assert len(metrics["ablation"]) == 48 + 1 and metrics["variant"] == "ensemble of 48 templates"
    code, metrics, _, stderr = evaluate(capsys, tmp_path, dataset, "--model", words_model, "--config", "clip_kinetics")
    assert code == 0, stderr
    assert metrics["variant"] == "ensemble of 28 templates"


# -- the sample footage (random weights: the numbers mean nothing, the pipeline must run) -------------


@pytest.mark.slow
def test_sample_footage_end_to_end(capsys, tmp_path, clip_dir, shared_videos):
    root = tmp_path / "footage"
    for name, folder in (("bikes.mp4", "street"), ("carphone_pristine.mp4", "talking"), ("Megamind.avi", "talking"),
                         ("bigbuckbunny.mp4", "cartoon")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).symlink_to(shared_videos / name)
    code, metrics, stdout, stderr = evaluate(capsys, tmp_path, root, "--model", clip_dir, "--template", "a video of {}.",
                                             "--template", "a photo of {}.")
    assert code == 0, stderr
    assert metrics["clips"] == 4 and np.array(metrics["confusion"]).sum() == 4 and len(metrics["ablation"]) == 2 + 1
    truth = tmp_path / "truth.csv"
    truth.write_text("video,label,start,end\n"
                     "bikes,a bicycle passing,0,4\nbikes,a car passing,5,10\n"
                     "Megamind,two people talking,0,11\nbigbuckbunny,a rabbit stretching,1,5\n")
    out = tmp_path / "temporal.json"
    code, _, stderr = run_cli(capsys, "eval", shared_videos, "--annotations", truth, "--model", clip_dir,
                              "--template", "a video of {}.", "--threshold", "0.2", "-o", out, "-q")
    assert code == 0, stderr
    temporal = json.loads(out.read_text())
    assert temporal["videos"] == 4 and temporal["ground_truth"] == 4 and len(temporal["map"]) == 5
    assert temporal["notes"] == [f"1 of the 4 videos under {shared_videos} have no annotations: evaluated as showing "
                                 "none of the actions (what is detected there is a false positive)"]
    assert all(0 <= v <= 1 for v in temporal["map"])
