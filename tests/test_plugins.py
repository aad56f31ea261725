"""A decoder backend and an encoder family added from outside the package, with no edit to it:
both registered here, then a classify (Python and command line) runs through them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import actionzs
from actionzs.frames import FrameSize, resize_dims
from actionzs.models import FrameEncoder, ScoreHead, register_encoder, unregister_encoder
from actionzs.sampling import Timeline
from actionzs.testing import draw_frame, read_scene
from actionzs.video import AUTO_ORDER, AVAILABLE_BACKENDS, Reader, register_backend

from helpers_cli import run_cli

SCENES = ["scene 0", "scene 1", "scene 2"]


class SceneFileReader(Reader):
    """A `.scenes` file is JSON: frame rate, frame count and each frame's scene; frames are drawn."""

    def __init__(self, path: str, *, strict: bool = False):
        spec = json.loads(Path(path).read_text())
        self.scenes = spec["scenes"]
        self.average_fps = float(spec["fps"])
        self.width, self.height = 96, 72
        self.timeline = Timeline.constant_rate(len(self.scenes), self.average_fps)

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        return np.stack([draw_frame(int(i), width, height, self.scenes[i]) for i in indices])


class PassThrough:
    """The toy family's preprocessing: frames as they are decoded."""

    decode_size = None

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(frames))


class SceneFamily(FrameEncoder):
    """Not a transformers model: a frame is the basis vector of its scene, "scene k" is e_k."""

    texts_normalised = True

    def __init__(self, name: str, dim: int):
        self.name, self.dim = name, dim
        self.preprocessor = PassThrough()
        self.head = ScoreHead(scale=50.0)

    @classmethod
    def load(cls, source: str, ref, local_files_only: bool) -> SceneFamily:
        config = json.loads((Path(source) / "config.json").read_text())
        return cls(ref.name, config["dim"])

    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(pixels), self.dim)
        for row, frame in enumerate(pixels.numpy()):
            out[row, read_scene(frame)] = 1.0
        return out

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        out = torch.full((len(texts), self.dim), 1e-3)
        for row, text in enumerate(texts):
            found = re.search(r"scene (\d+)", text)
            if found:
                out[row, int(found.group(1))] = 1.0
        return out / out.norm(dim=-1, keepdim=True)


@pytest.fixture
def plugins(tmp_path):
    """Register both, and take them out again whatever the test does."""
    backends, order = dict(AVAILABLE_BACKENDS), {k: list(v) for k, v in AUTO_ORDER.items()}
    register_backend("scenefile", SceneFileReader, auto_suffixes=[".scenes"], auto_rank=0)
    register_encoder("toy-scenes", SceneFamily)
    model = tmp_path / "toy-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "toy-scenes", "dim": 8}))
    video = tmp_path / "match.scenes"
    video.write_text(json.dumps({"fps": 10, "scenes": [0] * 40 + [1] * 60 + [2] * 20}))  # 4 s, 6 s, 2 s
    yield model, video
    unregister_encoder("toy-scenes")
    AVAILABLE_BACKENDS.clear()
    AVAILABLE_BACKENDS.update(backends)
    AUTO_ORDER.clear()
    AUTO_ORDER.update(order)


def test_a_classify_runs_through_a_backend_and_a_family_registered_outside(plugins):
    model, video = plugins
    clf = actionzs.pipeline(str(model))
    assert isinstance(clf.encoder, SceneFamily) and clf.encoder.name == str(model)
    out = clf(str(video), candidate_labels=SCENES, segments=True, fps=2, window=2, stride=2)
    assert out["labels"][0]["label"] == "scene 1"  # the longest scene
    events = {(e["label"], e["start"], e["end"]) for e in out["events"]}
    assert events == {("scene 0", 0.0, 4.0), ("scene 1", 4.0, 10.0), ("scene 2", 10.0, 12.0)}
    assert clf.embed(str(video), segments=True, fps=2).fingerprint == f"name:{model}"


def test_the_command_line_offers_and_uses_them(plugins, capsys):
    model, video = plugins
    code, out, err = run_cli(capsys, "classify", video, "--model", model, "--backend", "scenefile", "--format", "json",
                             "--segments", "--fps", "2", "--window", "2", "--stride", "2", *sum((["-l", s] for s in SCENES), []))
    assert code == 0, err
    [record] = json.loads(out)
    assert record["labels"][0]["label"] == "scene 1" and len(record["events"]) == 3


def test_a_folder_scan_lists_files_of_the_new_backend(plugins, capsys, tmp_path):
    model, video = plugins
    out_file = tmp_path / "scan.jsonl"
    code, _, err = run_cli(capsys, "scan", video.parent, "-o", out_file, "--model", model, "-l", "scene 0", "-l", "scene 2", "-q")
    assert code == 0, err
    [record] = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert record["video"] == str(video)
