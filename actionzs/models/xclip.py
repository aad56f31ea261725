"""X-CLIP: a clip of exactly `frames_per_clip` frames becomes one video embedding, and each text is
conditioned on that clip's visual features by the model's prompt generator before scoring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .. import sampling
from ..embeddings import ClipEmbeddings
from ..errors import InvalidInputError, VideoOptionsError, naming
from ..mapped import mapped_empty
from .base import Encoder, Features, Identity, Plan, ScoreHead, normalise, projected, tokenize
from .checkpoint import CheckpointEncoder

#: Spans scored against the texts per prompt-generator call.
SIMILARITY_BATCH = 32


def clip_spans(start_seconds: float, end_seconds: float, run) -> list[sampling.Span]:
    """The whole part [start, end) of the video a run covers, then (segments on) each window in it:
    the spans a clip encoder embeds."""
    whole = [sampling.Span(start_seconds, end_seconds)]
    return whole + sampling.windows(end_seconds, run.window, run.stride, start_seconds) if run.segments else whole


@dataclass(frozen=True)
class ClipPlan(Plan):
    """Each span sampled to exactly `frames_per_clip` frames (`per_span` [S, T]). Spans are encoded
    in `order`, the order in which the decoder reaches their last frame, so the file is read once,
    front to back; a frame shared by overlapping spans is decoded and preprocessed once and held
    only while a later span needs it."""

    spans: list[sampling.Span]
    per_span: np.ndarray
    order: np.ndarray
    frames_per_clip: int
    duration_seconds: float
    identity: Identity
    gaps: tuple = ()

    def batches(self, video, preprocess, batch_size: int) -> Iterator[torch.Tensor]:
        per_span, order = self.per_span, self.order
        clips_per_batch = max(1, batch_size // self.frames_per_clip)
        held: dict[int, torch.Tensor] = {}
        for start in range(0, len(order), clips_per_batch):
            wanted = per_span[order[start : start + clips_per_batch]]
            remaining = per_span[order[start:]]
            new = np.unique(remaining[remaining <= wanted.max()])  # all the decoder passes on the way
            new = new[~np.isin(new, list(held))]
            for chunk in video.iter_frames(new, preprocess.decode_size, chunk=batch_size):
                held.update(zip(chunk.indices.tolist(), preprocess(chunk.data)))
            frame_shape = next(iter(held.values())).shape
            batch = mapped_empty((wanted.size, *frame_shape), torch.float32)  # handed to the encoding thread
            torch.stack([held[i] for i in wanted.ravel().tolist()], out=batch)
            yield batch.view(*wanted.shape, *frame_shape)
            needed = set(per_span[order[start + clips_per_batch :]].ravel().tolist())
            held = {i: x for i, x in held.items() if i in needed}

    def finish(self, encoded: list, source: str) -> ClipEmbeddings:
        back = np.argsort(self.order)  # encoded in decoder order, stored in span order
        return ClipEmbeddings(
            np.array([[s.start_seconds, s.end_seconds] for s in self.spans]),
            torch.cat([f["video"] for f in encoded]).cpu().numpy()[back],
            torch.cat([f["visual"] for f in encoded]).cpu().numpy()[back],
            self.per_span, self.duration_seconds, self.identity.model, source, self.identity.fingerprint,
            [list(g) for g in self.gaps],
        )


class XClipEncoder(CheckpointEncoder, Encoder):
    texts_normalised = False
    embeddings_type = ClipEmbeddings

    def __init__(self, name: str, model, tokenizer, image_processor, fingerprint: str | None = None, ref=None):
        super().__init__(name, model, tokenizer, image_processor, fingerprint, ref)
        self.frames_per_clip = int(model.config.vision_config.num_frames)
        self.max_length = int(model.config.text_config.max_position_embeddings)
        self.head = ScoreHead(scale=float(model.logit_scale.detach().float().exp()))

    @classmethod
    def accepts(cls, model) -> bool:
        return model.config.model_type == "xclip"

    def sampling(self, run) -> dict:
        """Exactly `frames_per_clip` frames per span; `fps`, `num_frames` and `pooling` do not apply,
        and keyframes (unevenly spaced, one every few seconds) are no clip of its frames."""
        if run.keyframes or run.snap_to_keyframes:
            asked = "keyframe sampling (--keyframes)" if run.keyframes else "snapping to keyframes (--snap-to-keyframes)"
            raise InvalidInputError(
                f"{self.name} embeds clips of {self.frames_per_clip} evenly spaced frames; {asked} is for frame "
                "encoders (CLIP, SigLIP)"
            )
        return {"frames_per_clip": self.frames_per_clip, "windows": [run.window, run.stride] if run.segments else None,
                **sampling.part_of(run)}

    def plan(self, timeline, run) -> ClipPlan:
        """Every span's frames; more spans x frames per clip than `sampling.MAX_FRAMES` (or windows
        than `sampling.MAX_WINDOWS`) are refused before any span is made or frame read."""
        start, end = sampling.part(timeline, run.start, run.end)
        windows = sampling.check_windows(end - start, run.window, run.stride) if run.segments else 0
        frames = (1 + windows) * self.frames_per_clip
        if frames > sampling.MAX_FRAMES:
            raise VideoOptionsError(
                f"{1 + windows:,} clips (the whole video, then window {run.window:g} s every {run.stride:g} s) of "
                f"{self.frames_per_clip} frames take {frames:,} frames over {end - start:g} s, more than the "
                f"{sampling.MAX_FRAMES:,} allowed; use a longer stride (--stride)"
            )
        spans = clip_spans(start, end, run)
        per_span = np.stack([
            sampling.uniform(timeline, self.frames_per_clip, s.start_seconds, s.end_seconds).indices for s in spans
        ])
        order = np.argsort(per_span.max(axis=1), kind="stable")
        return ClipPlan(spans, per_span, order, self.frames_per_clip, timeline.duration, self.identity, timeline.gaps)

    def encode(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self.embed_clips(batch).items()}

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Projected text embeddings, not yet conditioned on any video (so they can be cached).

        Unlike frame encoders these are not normalised: the prompt generator adds to the raw vector.
        """
        inputs = tokenize(self.tokenizer, texts, self.max_length, True).to(self.device)
        return projected(self.model.get_text_features(**inputs)).float()

    @torch.inference_mode()
    def embed_clips(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Video embedding and prompt-generator visual features, as `XCLIPModel.forward` computes them."""
        m = self.model
        batch, frames, channels, height, width = pixels.shape
        pixels = pixels.reshape(-1, channels, height, width).to(self.device, m.dtype)
        vision = m.vision_model(pixel_values=pixels)
        cls = m.visual_projection(vision[1]).view(batch, frames, -1)
        video = m.mit(cls)[1]
        visual = m.prompts_visual_layernorm(vision[0][:, 1:, :]) @ m.prompts_visual_projection
        visual = visual.view(batch, frames, -1, video.shape[-1]).mean(dim=1)
        return {"video": normalise(video), "visual": visual.float()}

    def features(self, embeddings: ClipEmbeddings, run) -> Features:
        stored = [sampling.Span(float(a), float(b)) for a, b in embeddings.spans]
        with naming(embeddings.source):
            spans = clip_spans(stored[0].start_seconds, stored[0].end_seconds, run)  # the part of the video embedded
        if stored != spans:
            raise InvalidInputError(
                f"{embeddings.source}: clip embeddings were made for other windows; embed again with these options"
            )
        rows = {"video": torch.from_numpy(embeddings.video), "visual": torch.from_numpy(embeddings.visual)}
        clip = {k: v[:1] for k, v in rows.items()}
        windows = {k: v[1:] for k, v in rows.items()} if run.segments else None
        return Features(clip, windows, spans[1:] if run.segments else None)

    def similarity(self, features: Features, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        clip = self.clip_similarity(features.clip, texts)[0]
        windows = None if features.windows is None else self.clip_similarity(features.windows, texts)
        return clip, windows

    def clip_similarity(self, features: dict[str, torch.Tensor], texts: torch.Tensor) -> torch.Tensor:
        """Cosine similarity [B, M] of each clip with each text, as the model's own forward scores it."""
        count = len(features["video"])
        return torch.cat([
            self._similarity({k: v[i : i + SIMILARITY_BATCH] for k, v in features.items()}, texts).cpu()
            for i in range(0, count, SIMILARITY_BATCH)
        ])

    @torch.inference_mode()
    def _similarity(self, features: dict[str, torch.Tensor], texts: torch.Tensor) -> torch.Tensor:
        m = self.model
        visual = features["visual"].to(self.device, m.dtype)
        text = texts.to(self.device, m.dtype).unsqueeze(0).expand(visual.shape[0], -1, -1)
        text = normalise(text + m.prompts_generator(text, visual))
        return torch.einsum("bd,bkd->bk", features["video"].to(self.device), text).float()

    def __repr__(self) -> str:
        return f"XClipEncoder({self.name!r}, frames_per_clip={self.frames_per_clip})"
