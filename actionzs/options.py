"""The options of a run, validated together before any video is opened."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .errors import InvalidInputError
from .events import EventOptions
from .schema import check_fields, default, option


@dataclass(frozen=True)
class RunOptions:
    """How frames are sampled, windows laid out and scores reported.

    Each field's type, unit, range, default and meaning is declared once in `actionzs.schema` (and
    listed in configs/README.md): `fps` is the sampling rate in frames per second, `window` and
    `stride` are seconds, `num_frames` and `top_k` None mean sampling at fps and all labels;
    `keyframes` samples the stream's keyframes instead of either; `snap_to_keyframes` (seconds,
    0: exact) moves each frame sampled at fps or num_frames to a keyframe that near. `start` and
    `end` (seconds of the video's own time, or "HH:MM:SS.mmm"; `end` None is the video's end) limit
    the run to part of each video: only it is decoded, and every time in the results is still the
    video's.
    `events` (an EventOptions, or a mapping of its fields) says how segment scores become events.
    """

    fps: float = default("fps")
    num_frames: int | None = default("num_frames")
    keyframes: bool = default("keyframes")
    snap_to_keyframes: float = default("snap_to_keyframes")
    start: float = default("start")
    end: float | None = default("end")
    window: float = default("window")
    stride: float = default("stride")
    pooling: str = default("pooling")
    hypothesis_template: str | tuple[str, ...] = default("hypothesis_template")
    top_k: int | None = default("top_k")
    segments: bool = default("segments")
    events: EventOptions = field(default_factory=EventOptions)

    def __post_init__(self) -> None:
        check_fields(self, "sampling")
        if self.keyframes and self.snap_to_keyframes:
            raise InvalidInputError(
                "snap_to_keyframes moves the frames sampled at fps or num_frames to keyframes; with keyframes every "
                "keyframe is taken already: give one of them"
            )
        if self.end is not None and not self.end > self.start:
            raise InvalidInputError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
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


def check_count(name: str, value) -> None:
    """`value` must suit the loading option `name` (decode_workers, batch_size): a whole number in its range."""
    option(name).check(value)
