"""CLIP-family dual encoders (CLIP, SigLIP, SigLIP 2, any model with image and text features)."""

from __future__ import annotations

import torch

from .base import ScoreHead, normalise, projected, tokenize
from .checkpoint import CheckpointEncoder
from .frame import FrameEncoder


class DualEncoder(CheckpointEncoder, FrameEncoder):
    """Embeds frames and texts separately; a clip or window is a pooled set of frame embeddings."""

    texts_normalised = True

    def __init__(self, name: str, model, tokenizer, image_processor, fingerprint: str | None = None, ref=None):
        super().__init__(name, model, tokenizer, image_processor, fingerprint, ref)
        model_type = model.config.model_type
        self._siglip = "siglip" in model_type
        text_config = model.config.text_config
        self.max_length = 64 if self._siglip else int(text_config.max_position_embeddings)
        self._padding = "max_length" if self._siglip else True
        bias = getattr(model, "logit_bias", None)
        self.head = ScoreHead(
            scale=float(model.logit_scale.detach().float().exp()),
            bias=float(bias.detach().float()) if bias is not None else None,
            activation="sigmoid" if self._siglip else "softmax",
        )

    @classmethod
    def accepts(cls, model) -> bool:
        """Any model with image and text features to compare."""
        return all(hasattr(model, f) for f in ("get_image_features", "get_text_features"))

    @torch.inference_mode()
    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.device, self.model.dtype)
        return normalise(projected(self.model.get_image_features(pixel_values=pixels)))

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        inputs = tokenize(self.tokenizer, texts, self.max_length, self._padding).to(self.device)
        return normalise(projected(self.model.get_text_features(**inputs)))

    def __repr__(self) -> str:
        return f"DualEncoder({self.name!r}, {self.head})"
