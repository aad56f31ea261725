"""The transformers task: registered on request, same results as `actionzs.pipeline`, and a real
preprocess / _forward / postprocess split (decoding in preprocess, batch by batch)."""

from __future__ import annotations

import pytest
import torch

import actionzs
from actionzs.testing import write_clip

LABELS = ["running", "a red square", "cooking"]


@pytest.fixture(scope="module")
def task(clip_dir):
    import transformers

    actionzs.register_transformers_task()
    actionzs.register_transformers_task()  # idempotent
    return transformers.pipeline("zero-shot-video-classification", model=str(clip_dir), dtype=torch.float32)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(write_clip(tmp_path_factory.mktemp("hf") / "a.mp4", 50, average_fps=10, scenes=lambda i: i // 25))


@pytest.mark.parametrize("options", [{}, {"segments": True, "fps": 2, "window": 2, "stride": 1, "top_k": 2}])
def test_the_task_gives_what_actionzs_pipeline_gives(task, clip_dir, clip, options):
    ours = actionzs.pipeline(str(clip_dir), dtype="float32")
    assert task(clip, candidate_labels=LABELS, **options) == ours(clip, candidate_labels=LABELS, **options)
    assert task([clip, clip], candidate_labels=LABELS, **options) == ours([clip, clip], candidate_labels=LABELS, **options)


def test_preprocess_decodes_batch_by_batch_and_forward_only_encodes(task, clip):
    task.classifier.batch_size = 4
    try:
        items = list(task.preprocess(clip, candidate_labels=LABELS, options={"segments": True, "fps": 2}))
    finally:
        task.classifier.batch_size = 32
    head, batches = items[0], items[1:]
    assert "plan" in head and [b["is_last"] for b in batches] == [False, False, True]
    assert [len(b["pixels"]) for b in batches] == [4, 4, 2]  # 10 frames at 2 per second of 5 s
    outputs = [task._forward(item) for item in items]
    assert all(isinstance(o["encoded"], type(outputs[1]["encoded"])) for o in outputs[1:])
    assert task.postprocess(outputs) == task(clip, candidate_labels=LABELS, segments=True, fps=2)


def test_stored_embeddings_and_bad_labels(task, clip):
    embeddings = task.classifier.embed(clip)
    assert task(embeddings, candidate_labels=LABELS) == task(clip, candidate_labels=LABELS)
    with pytest.raises(actionzs.InvalidInputError, match="empty"):
        task(clip, candidate_labels=[])
