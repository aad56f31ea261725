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
            weights = AutoModel.from_pretrained(source, dtype=dtype, use_safetensors=True, **options)
            processor = AutoProcessor.from_pretrained(source, **options)
        except Exception as exc:
            raise ModelLoadError(f"model {ref.name!r} could not be loaded: {exc}") from exc
        if not cls.accepts(weights):
            raise ModelLoadError(f"model {ref.name!r} ({weights.config.model_type}) has no image and text features to compare")
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
