"""What every encoder family offers, and the plan of one video's frames.

An encoder family owns everything that depends on what kind of model it is: which frames a video's
embeddings need (`plan`), how a batch of preprocessed frames is encoded (`encode`), what kind of
embeddings that makes, and how those embeddings meet the label texts (`features`, `similarity`).
The classifier and the executors only move plans, batches and embeddings between these methods,
so they never ask which family they hold.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from ..errors import InvalidInputError
from ..scoring import ScoreHead

if TYPE_CHECKING:
    from ..embeddings import ClipEmbeddings, FrameEmbeddings
    from ..options import RunOptions
    from ..preprocess import FramePreprocessor
    from ..sampling import Span, Timeline
    from ..video import Video

    Embeddings = FrameEmbeddings | ClipEmbeddings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who made a set of embeddings: the model as the user named it, and its content fingerprint."""

    model: str
    fingerprint: str


class Plan(ABC):
    """One video's work for one encoder: which frames to decode, in which batches, and how the
    encoded batches become that video's embeddings. Made from the video's timeline alone, holds
    plain arrays (picklable), and never touches the model."""

    @abstractmethod
    def batches(self, video: Video, preprocess: FramePreprocessor, batch_size: int) -> Iterator[torch.Tensor]:
        """The preprocessed batches `Encoder.encode` takes, decoded from `video` in order."""

    def chunks(self, batch_size: int) -> list[np.ndarray] | None:
        """Frame indices of reads that need nothing from each other, so that several decoders can
        share the work (see `read`); None when the batches must be made in order by one decoder."""
        return None

    def read(self, video: Video, chunk: np.ndarray, preprocess: FramePreprocessor) -> torch.Tensor:
        """The batch of one of `chunks`, decoded from `video` (a decoder of its own)."""
        raise NotImplementedError(f"{type(self).__name__} makes its batches in order only")

    @abstractmethod
    def finish(self, encoded: list, source: str) -> Embeddings:
        """The embeddings of the video at `source`, from what `Encoder.encode` returned per batch."""


@dataclass(frozen=True)
class Features:
    """What scoring needs of one video's embeddings under one set of windows, before any label is
    known: kept per video, so that a new label set costs only `Encoder.similarity`. `spans` are
    the windows (None with segments off)."""

    clip: object
    windows: object | None
    spans: list[Span] | None


class Encoder(ABC):
    """An encoder family: text embeddings, the plan of a video's frames, frame or clip encoding, and
    the similarity of what it encoded with texts.

    Subclasses set `name` (the model as the user named it), `preprocessor`, `head` and
    `texts_normalised`, and `embeddings_type`, the class of embeddings their plans make.
    """

    name: str
    preprocessor: FramePreprocessor
    head: ScoreHead
    #: Whether `embed_texts` returns unit vectors (an ensemble of them is then re-normalised).
    texts_normalised: bool
    embeddings_type: ClassVar[type]

    @property
    def fingerprint(self) -> str:
        """The model's identity, stored with every embedding: equal for the same weights however the
        model is named. Encoders loaded from a checkpoint hash its files; the default is the name."""
        return f"name:{self.name}"

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.fingerprint)

    @abstractmethod
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """float32 text embeddings [M, D] (unit length where `texts_normalised`)."""

    @abstractmethod
    def sampling(self, run: RunOptions) -> dict:
        """What of `run` this family's plan depends on (e.g. {"fps": 1.0}): two runs with the same
        sampling share a video's embeddings, which record it."""

    @abstractmethod
    def plan(self, timeline: Timeline, run: RunOptions) -> Plan:
        """The frames the embeddings of a video with this `timeline` need under `run`."""

    @abstractmethod
    def encode(self, batch: torch.Tensor) -> object:
        """One batch of `Plan.batches` encoded, on the CPU, ready for `Plan.finish`."""

    @abstractmethod
    def features(self, embeddings: Embeddings, run: RunOptions) -> Features:
        """The label-independent part of scoring `embeddings` under `run` (pooled windows, ...)."""

    @abstractmethod
    def similarity(self, features: Features, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cosine similarity of the whole clip [M] and of each window [S, M] with the label texts."""

    def check(self, embeddings) -> None:
        """Refuse stored embeddings this encoder did not make: another family, or another model."""
        if not isinstance(embeddings, self.embeddings_type):
            raise InvalidInputError(
                f"{embeddings.source}: {type(embeddings).__name__} cannot be scored by {type(self).__name__} "
                f"(it needs {self.embeddings_type.__name__})"
            )
        if embeddings.fingerprint != self.fingerprint:
            made_by = f"{embeddings.model!r} ({embeddings.fingerprint or 'no fingerprint'})"
            raise InvalidInputError(
                f"{embeddings.source}: embeddings are from {made_by}, not {self.name!r} ({self.fingerprint}); "
                "embed the video again with this model"
            )


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
