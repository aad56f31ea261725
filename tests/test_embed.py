"""The per-video step as a plain function: picklable arguments, the same result in another process
as in this one, and the same as the classifier's (which runs it through the local executor)."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.embed import Opener, embed_video
from actionzs.models import ModelRef, load_encoder
from actionzs.options import RunOptions
from actionzs.testing import write_clip

RUNS = {
    "segments": RunOptions(fps=2.0, window=2.0, stride=1.0, segments=True),
    "clip": RunOptions(num_frames=6),
}


def _embed_elsewhere(payload: bytes) -> dict:
    """Runs in a spawned process: unpickle the step's arguments, run it, send back plain arrays."""
    embeddings = embed_video(*pickle.loads(payload))
    return {name: getattr(embeddings, name) for name in embeddings._arrays + embeddings._meta}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(write_clip(tmp_path_factory.mktemp("embed") / "a.mp4", 60, average_fps=10, scenes=lambda i: i // 20))


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["clip_dir", "xclip_dir"])
def test_the_step_pickled_and_run_in_a_spawned_process_gives_the_in_process_result(request, clip, checkpoint):
    encoder = load_encoder(str(request.getfixturevalue(checkpoint)), dtype="float32")
    run = RUNS["segments"]
    arguments = (clip, encoder, run, Opener("auto"), 8)
    payload = pickle.dumps(arguments)
    assert len(payload) < 10_000  # the encoder travels as the reference that loads it, not as weights

    here = embed_video(*arguments)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.apply(_embed_elsewhere, (payload,))
    for name in here._arrays:
        np.testing.assert_array_equal(there[name], getattr(here, name), err_msg=name)
    assert {name: there[name] for name in here._meta} == {name: getattr(here, name) for name in here._meta}

    classifier = ZeroShotVideoClassifier(encoder, run, batch_size=8)
    through_executor = classifier.embed(clip)
    for name in here._arrays:
        np.testing.assert_array_equal(getattr(through_executor, name), getattr(here, name), err_msg=name)


@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS)
def test_split_reads_give_the_single_decoder_result(clip_dir, clip, run):
    encoder = load_encoder(str(clip_dir), dtype="float32")
    single = embed_video(clip, encoder, run, Opener(), batch_size=4)
    split = ZeroShotVideoClassifier(encoder, run, batch_size=4, decode_workers=3).embed(clip)
    np.testing.assert_array_equal(split.vectors, single.vectors)
    np.testing.assert_array_equal(split.indices, single.indices)


def test_a_model_ref_names_a_folder_absolutely_and_shows_it_as_typed(clip_dir, monkeypatch):
    monkeypatch.chdir(clip_dir.parent)
    ref = ModelRef.of(clip_dir.name)
    assert ref.model == str(clip_dir) and ref.name == clip_dir.name
    assert pickle.loads(pickle.dumps(ref)) == ref


def test_an_encoder_built_from_objects_in_memory_says_why_it_cannot_travel(clip_dir):
    from actionzs.models import encoder_for

    loaded = load_encoder(str(clip_dir), dtype="float32")
    in_memory = encoder_for("mine", loaded.model, loaded.tokenizer, _image_processor(clip_dir))
    with pytest.raises(TypeError, match="load_encoder"):
        pickle.dumps(in_memory)


def _image_processor(folder):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)
