"""What every encoder offers, and how similarities become scores."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import torch

from ..preprocess import FramePreprocessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreHead:
    """The checkpoint's map from cosine similarity to scores.

    CLIP-style checkpoints: softmax over the candidates of `scale * cos` (scores sum to 1).
    SigLIP-style: `sigmoid(scale * cos + bias)` for each label on its own, as transformers does.
    """

    scale: float
    bias: float | None = None
    activation: str = "softmax"

    def logits(self, cosine: torch.Tensor) -> torch.Tensor:
        return cosine * self.scale + (self.bias or 0.0)

    def probabilities(self, cosine: torch.Tensor) -> torch.Tensor:
        logits = self.logits(cosine)
        return torch.sigmoid(logits) if self.activation == "sigmoid" else logits.softmax(dim=-1)


class Encoder(Protocol):
    """Common to all encoders: a name, input preprocessing, text embeddings and a score head."""

    name: str
    preprocessor: FramePreprocessor
    head: ScoreHead
    #: None for frame encoders (each frame embedded alone); the fixed clip length for clip encoders.
    frames_per_clip: int | None
    #: Whether `embed_texts` returns unit vectors (an ensemble of them is then re-normalised).
    texts_normalised: bool

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """float32 text embeddings [M, D] (unit length where `texts_normalised`)."""


class FrameEncoder(Encoder, Protocol):
    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 embeddings [N, D] of preprocessed frames [N, 3, h, w]."""


class ClipEncoder(Encoder, Protocol):
    def embed_clips(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of clips [B, T, 3, h, w] that `similarity` needs (float32)."""

    def similarity(self, features: dict[str, torch.Tensor], texts: torch.Tensor) -> torch.Tensor:
        """Cosine similarity [B, M] of each clip with each text, as the model's own forward scores it."""


class TransformersEncoder:
    """What encoders built on a transformers model share: the model, its tokenizer and the
    checkpoint's own preprocessing."""

    def __init__(self, name: str, model, tokenizer, image_processor):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = FramePreprocessor(image_processor)

    @property
    def device(self) -> torch.device:
        return self.model.device


def tokenize(tokenizer, texts: list[str], max_length: int, padding: str | bool) -> dict[str, torch.Tensor]:
    """Tokenise `texts`, warning about each one cut to the text encoder's context length."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    for text, length in zip(texts, lengths):
        if length > max_length:
            log.warning("text of %d tokens cut to the encoder's %d: %.80r", length, max_length, text)
    return tokenizer(texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt")


def projected(output) -> torch.Tensor:
    """The projected embedding of a `get_*_features` call: an output object's `pooler_output` in
    transformers 5, a plain tensor in 4."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def normalise(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
