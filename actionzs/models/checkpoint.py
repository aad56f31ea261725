"""What encoders built on a transformers checkpoint share: the model, its tokenizer, the checkpoint's
own preprocessing, a fingerprint of its files, and the reference that loads it again elsewhere."""

from __future__ import annotations

import logging

import torch

from ..errors import ModelLoadError
from ..preprocess import FramePreprocessor
from .device import resolve_device, resolve_dtype
from .fingerprint import checkpoint_fingerprint, checkpoint_folder, model_fingerprint

log = logging.getLogger(__name__)


class CheckpointEncoder:
    """Mixed into a family (`FrameEncoder`, or an `Encoder` of its own) for transformers models.

    `ref` (a `ModelRef`) is how the encoder was loaded; with it, pickling the encoder sends only the
    reference and the receiving process loads the model once (`ModelRef.loaded`).
    """

    def __init__(self, name: str, model, tokenizer, image_processor, fingerprint: str | None = None, ref=None):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = FramePreprocessor(image_processor)
        self._fingerprint = fingerprint or model_fingerprint(model)
        self.ref = ref

    @classmethod
    def load(cls, source: str, ref, local_files_only: bool):
        """Load the checkpoint at `source` (a folder, or a hub id) as `ref` says: weights only from
        safetensors, remote code never run."""
        from transformers import AutoModel, AutoProcessor

        device = resolve_device(ref.device)
        dtype = resolve_dtype(ref.dtype, device)
        options = {"local_files_only": local_files_only, "trust_remote_code": False}
        try:
            weights, loading = AutoModel.from_pretrained(
                source, dtype=dtype, use_safetensors=True, output_loading_info=True, **options
            )
            processor = AutoProcessor.from_pretrained(source, **options)
        except Exception as exc:
            raise ModelLoadError(f"model {ref.name!r} could not be loaded: {exc}") from exc
        if not cls.accepts(weights):
            raise ModelLoadError(f"model {ref.name!r} ({weights.config.model_type}) has no image and text features to compare")
        _check_weights(ref.name, weights, loading)
        _check_tokenizer(ref.name, processor.tokenizer)
        weights.eval().to(device)
        log.info("loaded %s on %s in %s", ref.name, device, dtype)
        folder = checkpoint_folder(source)
        fingerprint = checkpoint_fingerprint(folder) if folder else None
        return cls(ref.name, weights, processor.tokenizer, processor.image_processor, fingerprint, ref)

    @classmethod
    def accepts(cls, model) -> bool:
        """Whether this family can run the loaded transformers `model`."""
        return True

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __reduce__(self):
        if self.ref is None:
            raise TypeError(
                f"{type(self).__name__}({self.name!r}) was built from objects in memory, so another process "
                "cannot load it again; load it with actionzs.load_encoder (or pass a ModelRef)"
            )
        return self.ref.loaded, ()


def _keys(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _check_weights(name: str, model, loading: dict) -> None:
    """A checkpoint whose weights do not fill the model (missing or renamed keys, other shapes)
    would run with random weights and score as if nothing were wrong; non-finite weights give NaN
    scores. Both are load errors naming the keys. Weights the model does not use are only logged."""
    for kind, what in (("missing_keys", "has no weights for"), ("mismatched_keys", "has weights of another shape for")):
        keys = [k if isinstance(k, str) else k[0] for k in loading.get(kind) or ()]
        if keys:
            raise ModelLoadError(f"model {name!r}: the checkpoint {what} {len(keys)} of the model's tensors ({_keys(keys)})")
    if loading.get("unexpected_keys"):
        log.warning("model %r: the checkpoint holds weights the model does not use (%s)", name, _keys(loading["unexpected_keys"]))
    with torch.no_grad():
        tensors = {key: t for key, t in model.state_dict().items() if t.is_floating_point()}
        # A sum is NaN or infinite wherever a weight is (a tenth of the time of isfinite on every
        # tensor, which this start-up path would otherwise pay); confirm each one it flags, since
        # a sum of large finite weights can overflow.
        sums = torch.stack([t.sum().float() for t in tensors.values()]) if tensors else torch.zeros(0)
        flagged = [key for key, finite in zip(tensors, torch.isfinite(sums).tolist()) if not finite]
        bad = [key for key in flagged if not torch.isfinite(tensors[key]).all()]
    if bad:
        raise ModelLoadError(f"model {name!r}: non-finite weights (NaN or infinity) in {_keys(bad)}")


def _check_tokenizer(name: str, tokenizer) -> None:
    """A folder without tokenizer files gets an empty tokenizer that reads every text as unknown
    tokens, so every label would tie: refuse one that cannot tell two words apart."""
    ids = tokenizer(["a cat", "a dog"])["input_ids"]
    if ids[0] == ids[1]:
        raise ModelLoadError(
            f"model {name!r}: its tokenizer reads different texts alike ({len(tokenizer)} tokens known); "
            "are the tokenizer files missing from the checkpoint?"
        )
