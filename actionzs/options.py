"""The options of a run, validated together before any video is opened."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from .errors import InvalidInputError
from .events import EventOptions
from .prompts import check_templates
from .scoring import POOLINGS

#: Used when neither the call nor the config names a template.
DEFAULT_TEMPLATE = "a video of {}."


def _positive(name: str, value, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise InvalidInputError(f"{name} must be {kind} greater than 0, got {value!r}")


def check_count(name: str, value) -> None:
    """`value` must be an int >= 1: not a bool, not a float such as 2.0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class RunOptions:
    """How frames are sampled, windows laid out and scores reported.

    fps: frames per second embedded by frame encoders (CLIP, SigLIP) when segments are on, or when
    `num_frames` is None. num_frames: frames spread uniformly over the video for a clip-level score
    with segments off. window/stride: segment length and step in seconds. pooling: "mean" or "max"
    over frame embeddings. hypothesis_template: one template or an ensemble (each with one "{}").
    top_k: labels kept per result (None keeps all). events: how segment scores become events.
    """

    fps: float = 1.0
    num_frames: int | None = 8
    window: float = 2.0
    stride: float = 1.0
    pooling: str = "mean"
    hypothesis_template: str | tuple[str, ...] = DEFAULT_TEMPLATE
    top_k: int | None = None
    segments: bool = False
    events: EventOptions = field(default_factory=EventOptions)

    def __post_init__(self) -> None:
        _positive("fps", self.fps)
        if self.num_frames is not None:
            _positive("num_frames", self.num_frames, integer=True)
        _positive("window", self.window)
        _positive("stride", self.stride)
        if self.top_k is not None:
            _positive("top_k", self.top_k, integer=True)
        if self.pooling not in POOLINGS:
            raise InvalidInputError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        object.__setattr__(self, "hypothesis_template", check_templates(self.hypothesis_template))
        if isinstance(self.events, dict):
            object.__setattr__(self, "events", events_from(self.events))

    def updated(self, **changes) -> RunOptions:
        """A copy with the given options changed (None leaves an option as it is)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InvalidInputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def events_from(settings: dict | EventOptions | None) -> EventOptions:
    """EventOptions from a config mapping (keys: smooth, threshold, measure, max_gap, min_duration)."""
    if settings is None or isinstance(settings, EventOptions):
        return settings or EventOptions()
    known = {f.name for f in fields(EventOptions)}
    unknown = set(settings) - known
    if unknown:
        raise InvalidInputError(f"unknown event option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return EventOptions(**settings)
