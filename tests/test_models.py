"""Model loading: local directories, the offline paths, and the encoder chosen from the config."""

from __future__ import annotations

import time

import pytest

from actionzs.errors import ModelLoadError
from actionzs.models import DualEncoder, XClipEncoder, load_encoder


def test_the_encoder_is_chosen_from_the_config_not_the_name(tmp_path, clip_dir, xclip_dir):
    renamed = tmp_path / "xclip-looking-name"
    renamed.symlink_to(clip_dir, target_is_directory=True)
    assert isinstance(load_encoder(str(renamed), dtype="float32"), DualEncoder)
    assert isinstance(load_encoder(str(xclip_dir), dtype="float32"), XClipEncoder)


def test_offline_and_not_cached_fails_fast_naming_the_model(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="someone/no-such-model") as info:
        load_encoder("someone/no-such-model")
    assert time.monotonic() - started < 5
    assert "HF_HUB_OFFLINE" in str(info.value) and "--model DIR" in str(info.value)


def test_unreachable_hub_fails_within_seconds(monkeypatch):
    """No network and no cached copy: a message naming the model within seconds, not after retries."""
    import actionzs.models as models
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://10.255.255.1")  # unroutable: connects never answer
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="cannot be reached") as info:
        models._locate("someone/no-such-model")
    assert time.monotonic() - started < 6
    assert "someone/no-such-model" in str(info.value)


def test_a_path_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a checkpoint directory"):
        load_encoder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_encoder(str(tmp_path / "empty"))


def test_a_model_is_known_by_its_content_not_the_string_typed(tmp_path, clip_dir, monkeypatch):
    """`./clip` and `/abs/clip` are one model, a copy of its folder too; two folders with one name
    and other weights are two, and embeddings of one are refused by the other."""
    import shutil

    import torch

    import actionzs
    from actionzs.errors import InvalidInputError
    from actionzs.testing import write_clip

    monkeypatch.chdir(clip_dir.parent)
    relative = load_encoder(f"./{clip_dir.name}", dtype="float32")
    absolute = load_encoder(str(clip_dir), dtype="float32")
    copied = load_encoder(str(shutil.copytree(clip_dir, tmp_path / "copy")), dtype="float32")
    assert relative.fingerprint == absolute.fingerprint == copied.fingerprint
    assert relative.fingerprint.startswith("sha256:")

    one_dir, two_dir = tmp_path / "one" / "DIR", tmp_path / "two" / "DIR"
    shutil.copytree(clip_dir, one_dir)
    shutil.copytree(clip_dir, two_dir)
    retrained = absolute.model
    with torch.no_grad():
        for parameter in retrained.parameters():
            parameter.add_(0.01)
    retrained.save_pretrained(two_dir)  # same names and shapes, other weights
    one, two = load_encoder(str(one_dir), dtype="float32"), load_encoder(str(two_dir), dtype="float32")
    assert one.fingerprint != two.fingerprint

    video = str(write_clip(tmp_path / "v.mp4", 20, average_fps=10))
    stored = actionzs.ZeroShotVideoClassifier(one).embed(video)
    assert stored.fingerprint == one.fingerprint
    stored.save(tmp_path / "v.npz")
    loaded = actionzs.FrameEmbeddings.load(tmp_path / "v.npz")
    assert actionzs.ZeroShotVideoClassifier(copied)(loaded, candidate_labels=["a", "b"])  # same content: accepted
    with pytest.raises(InvalidInputError, match=r"embeddings are from .*one/DIR.* not .*two/DIR"):
        actionzs.ZeroShotVideoClassifier(two)(loaded, candidate_labels=["a", "b"])


def _crafted(clip_dir, folder, change):
    """A copy of the tiny checkpoint whose weights file `change` rewrites (a dict of tensors in, out)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(clip_dir, folder)
    weights = folder / "model.safetensors"
    save_file(change(load_file(weights)), weights, metadata={"format": "pt"})
    return folder


def _nan_in_one(tensors):
    import torch

    name = next(k for k in sorted(tensors) if k.startswith("vision_model.") and tensors[k].is_floating_point())
    return {**tensors, name: torch.full_like(tensors[name], float("nan"))}


@pytest.mark.parametrize("change, words", [
    (lambda t: {}, "has no weights for"),
    (lambda t: {k: v for k, v in t.items() if not k.startswith("vision_model.")}, "vision_model."),
    (lambda t: {"renamed." + k: v for k, v in t.items()}, "has no weights for"),
    (_nan_in_one, "non-finite weights"),
], ids=["no tensors", "no vision tower", "renamed keys", "NaN weights"])
def test_weights_that_are_not_the_model_are_a_load_error(tmp_path, clip_dir, change, words):
    folder = _crafted(clip_dir, tmp_path / "bad", change)
    with pytest.raises(ModelLoadError, match=words) as info:
        load_encoder(str(folder), dtype="float32")
    assert str(folder) in str(info.value)


def test_a_checkpoint_without_its_tokenizer_is_a_load_error(tmp_path, clip_dir):
    import shutil

    folder = tmp_path / "no-tokenizer"
    shutil.copytree(clip_dir, folder)
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="tokenizer reads different texts alike") as info:
        load_encoder(str(folder), dtype="float32")
    assert str(folder) in str(info.value)
