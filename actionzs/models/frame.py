"""The frame family: each sampled frame is embedded on its own, and a clip or window is the pool of
its frames' embeddings (CLIP, SigLIP and any image-text dual encoder)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .. import sampling
from ..embeddings import FrameEmbeddings
from ..errors import naming
from ..scoring import pooled_frames
from .base import Encoder, Features, Identity, Plan


@dataclass(frozen=True)
class FramePlan(Plan):
    """Frames sampled from the video's timeline, each decoded and embedded once: `sample` as the
    sampler chose them (a frame sampled twice counts twice), `unique` the frames read, `where`
    each sampled frame's row among them."""

    sample: sampling.Sample
    unique: np.ndarray
    where: np.ndarray
    duration_seconds: float
    sampling: dict
    identity: Identity
    gaps: tuple = ()

    def chunks(self, batch_size: int) -> list[np.ndarray]:
        return [self.unique[i : i + batch_size] for i in range(0, len(self.unique), batch_size)]

    def read(self, video, chunk: np.ndarray, preprocess) -> torch.Tensor:
        return preprocess(video.get_frames(chunk, preprocess.decode_size).data)

    def batches(self, video, preprocess, batch_size: int) -> Iterator[torch.Tensor]:
        for frames in video.iter_frames(self.unique, preprocess.decode_size, chunk=batch_size):
            yield preprocess(frames.data)

    def finish(self, encoded: list, source: str) -> FrameEmbeddings:
        return FrameEmbeddings(
            np.concatenate(encoded)[self.where], self.sample.indices, self.sample.pts_seconds, self.duration_seconds,
            self.identity.model, source, self.sampling, self.identity.fingerprint, [list(g) for g in self.gaps],
        )


class FrameEncoder(Encoder):
    """A family whose model embeds single frames; subclasses give `embed_frames` and `embed_texts`."""

    embeddings_type = FrameEmbeddings

    @abstractmethod
    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 embeddings [N, D] of preprocessed frames [N, 3, h, w]."""

    def sampling(self, run) -> dict:
        """The stream's keyframes when asked, else frames at `fps` per second with segments on (or
        no `num_frames`), else `num_frames` spread uniformly over the video, either snapped to
        keyframes within `snap_to_keyframes` seconds when that is set; with the part of the video
        a run covers (`start`, `end`) when it is not the whole."""
        if run.keyframes:
            chosen = {"keyframes": True}
        elif run.segments or run.num_frames is None:
            chosen = {"fps": float(run.fps)}
        else:
            chosen = {"uniform": int(run.num_frames)}
        snap = {"snap_to_keyframes": float(run.snap_to_keyframes)} if run.snap_to_keyframes else {}
        return {**chosen, **snap, **sampling.part_of(run)}

    def plan(self, timeline, run) -> FramePlan:
        """The frames to embed; too many frames or windows for the video's length are refused here,
        before any frame is read (the windows are laid out when the embeddings are scored)."""
        chosen = self.sampling(run)
        start, end = sampling.part(timeline, run.start, run.end)
        if run.segments:
            sampling.check_windows(end - start, run.window, run.stride)
        snap = chosen.get("snap_to_keyframes", 0.0)
        if "keyframes" in chosen:
            sample = sampling.keyframes_in(timeline, start, end)
        elif "fps" in chosen:
            sample = sampling.at_fps(timeline, chosen["fps"], start, end, snap)
        else:
            sample = sampling.uniform(timeline, chosen["uniform"], start, end, snap)
        unique, where = np.unique(sample.indices, return_inverse=True)
        return FramePlan(sample, unique, where, timeline.duration, chosen, self.identity, timeline.gaps)

    def encode(self, batch: torch.Tensor) -> np.ndarray:
        return self.embed_frames(batch).cpu().numpy()

    def features(self, embeddings: FrameEmbeddings, run) -> Features:
        with naming(embeddings.source):
            start = float(embeddings.sampling.get("start", 0.0))
            end = min(float(embeddings.sampling.get("end", embeddings.duration)), embeddings.duration)
            spans = sampling.windows(end, run.window, run.stride, start) if run.segments else None
        # Keyframes stand for no time around them: a window without one is frameless, not borrowed.
        whole, pooled = pooled_frames(embeddings, spans, run.pooling, borrow=not embeddings.sampling.get("keyframes"))
        return Features(whole, pooled, spans)

    def similarity(self, features: Features, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        windows = None if features.windows is None else features.windows @ texts.T
        return (features.clip @ texts.T)[0], windows
