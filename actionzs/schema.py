"""Every option of a run, declared once: its type, unit, range, default, meaning and flag.

`RunOptions`, `EventOptions`, the YAML configs, the command line's flags and the keys table of
configs/README.md are all made from `OPTIONS`, so they cannot disagree. Loading this module
imports neither torch nor the video decoders: the command line's help is built from it.

    python -m actionzs.config      # prints the keys table of configs/README.md, made from it
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import InvalidInputError

#: The stages of a run, in the order they happen, with the heading each has in `--help`.
STAGES = {
    "labels": "labels",
    "loading": "model and decoding",
    "sampling": "sampling and scoring",
    "events": "events (with segments)",
}
#: Stages that `actionzs.pipeline()` takes as keywords; "labels" is for the command line and configs.
API_STAGES = ("loading", "sampling", "events")


def backend_names() -> tuple[str, ...]:
    """The video decoders `backend` accepts: the one place their names are asked for (the video
    module knows them; imported only when they are needed)."""
    from .video import backend_names as registered

    return registered()


@dataclass(frozen=True)
class Option:
    """One option of a run, as the Python API, the configs, the command line and the docs know it.

    `name` is the keyword of `actionzs.pipeline()`, `RunOptions` and `EventOptions`, and the config
    key (under `events:` for the events stage); `flag` is its command-line flag. `default` is the
    Python API's default; the configs start from configs/default.yaml instead. `type` is the type
    of a value: int (a whole number), float (any finite number, ints too), str, bool, or tuple for a
    template ensemble. A number lies
    in [minimum, maximum], and above `exclusive_minimum`, for the bounds that are set. `none_means`
    is set for options that take None and says what None does; `flag_none` is the flag value that
    stands for None on the command line (`--top-k 0`). `parse` reads a value given as text (a
    flag, or a string in a config or call) into the type, e.g. "01:02:03.5" into 3723.5 seconds.
    """

    name: str
    stage: str
    type: type
    default: object
    flag: str
    help: str
    unit: str | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    none_means: str | None = None
    metavar: str | None = None
    flag_none: object = None
    parse: Callable[[str], object] | None = None

    @property
    def key(self) -> str:
        """The key in a config file, e.g. `window`, `events.threshold`."""
        return f"events.{self.name}" if self.stage == "events" else self.name

    @property
    def allowed(self) -> tuple[str, ...]:
        """The values a choice option takes; empty for the others."""
        return self.choices() if callable(self.choices) else self.choices

    def section(self, settings: dict) -> dict:
        """The mapping of config settings (as `load_config` gives them) that holds this option."""
        return settings["events"] if self.stage == "events" else settings

    def bounds(self) -> str:
        """The range of a number as text, e.g. "> 0 and <= 1000"; "" when it has none."""
        limits = (("> ", self.exclusive_minimum), (">= ", self.minimum), ("<= ", self.maximum))
        return " and ".join(f"{sign}{limit:g}" for sign, limit in limits if limit is not None)

    def rule(self, none: str = "None") -> str:
        """What a value must be, e.g. "a number of seconds >= 0.01"; `none` spells None ("null" in YAML)."""
        if self.allowed:
            text = f"one of {', '.join(self.allowed)}"
        else:
            noun = NOUNS[self.type]
            text = " ".join(filter(None, (
                noun if self.type is bool else f"a {noun}", self.unit and f"of {self.unit}", self.bounds(),
            )))
        return f"{text}, or {none} for {self.none_means}" if self.none_means else text

    def check(self, value, none: str = "None"):
        """`value` if this option takes it (a template ensemble as a tuple), else an InvalidInputError
        naming the option, what it must be, the value and what the option does."""
        if value is None and self.none_means:
            return None
        if self.type is tuple:
            return _check_templates(value)
        if self.parse is not None and isinstance(value, str):
            try:
                value = self.parse(value)
            except ValueError as exc:
                raise InvalidInputError(f"{self.key}: {exc}") from None
        if not (_has_type(value, self.type) and self._in_range(value) and self._is_choice(value)):
            raise InvalidInputError(f"{self.key} must be {self.rule(none)}, got {value!r} ({self.help})")
        return value

    def _in_range(self, value) -> bool:
        return (
            (self.exclusive_minimum is None or value > self.exclusive_minimum)
            and (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
        )

    def _is_choice(self, value) -> bool:
        return not self.allowed or value in self.allowed


#: How each type of value is named in messages and docs.
NOUNS = {
    int: "whole number", float: "number", str: "string", bool: "true or false", tuple: "string or list of strings",
}


def _has_type(value, kind: type) -> bool:
    """int: an int, not a bool. float: an int or a finite float, not a bool. Others: an instance."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int) or isinstance(value, float) and math.isfinite(value)
    return isinstance(value, kind)


def _check_templates(templates: str | Sequence[str]) -> tuple[str, ...]:
    """A template or ensemble as a tuple; each template must hold exactly one `{}`."""
    if isinstance(templates, str):
        templates = (templates,)
    elif isinstance(templates, (list, tuple)):
        templates = tuple(templates)
    else:
        raise InvalidInputError(f"hypothesis_template must be a string or a list of strings, got {templates!r}")
    if not templates:
        raise InvalidInputError("hypothesis_template: give at least one template")
    for template in templates:
        if not (isinstance(template, str) and _one_plain_field(template)):
            raise InvalidInputError(
                f"hypothesis_template {template!r} must contain exactly one '{{}}' (no name, format or "
                "conversion inside it; write a literal brace as '{{' or '}}')"
            )
    return templates


def _one_plain_field(template: str) -> bool:
    """Whether `template.format(label)` fills exactly one bare `{}` (escaped braces are text)."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template) if name is not None]
    except ValueError:  # a lone brace
        return False
    return fields == [("", "", None)]


_SECONDS = "seconds"


def seconds_of(text: str) -> float:
    """A time in the video as seconds: "90", "90.5", "01:30" (MM:SS) or "00:01:30.250" (HH:MM:SS.mmm)."""
    parts = text.strip().split(":")
    try:
        if len(parts) > 3 or not all(parts) or any(not p.replace(".", "", 1).isdigit() for p in parts):
            raise ValueError
        if len(parts) > 1 and any(float(p) >= 60 for p in parts[1:]) or any("." in p for p in parts[:-1]):
            raise ValueError
        value = sum(float(p) * 60**k for k, p in enumerate(reversed(parts)))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give seconds (90, 90.5) or HH:MM:SS(.mmm) (00:01:30.5)") from None
    return value

OPTIONS: tuple[Option, ...] = (
    # -- loading: the model and the decoders ---------------------------------------------------------
    Option("model", "loading", str, "openai/clip-vit-base-patch32", "--model",
           "hub id or local checkpoint directory", metavar="M"),
    Option("device", "loading", str, None, "--device",
           "where the model runs: cpu, cuda or cuda:N", none_means="cuda if available, else cpu", metavar="DEV"),
    Option("dtype", "loading", str, "auto", "--dtype",
           "model precision; auto is bfloat16 where the hardware computes it natively, float16 on older GPUs, "
           "else float32", choices=("auto", "float32", "bfloat16", "float16")),
    Option("backend", "loading", str, "auto", "--backend",
           "video decoder; auto is PyAV (FFmpeg: it decodes only the frames the sampling needs), then decord "
           "and OpenCV for a file PyAV cannot open or read", choices=backend_names),
    Option("batch_size", "loading", int, 32, "--batch-size",
           "frames per image-encoder call", unit="frames", minimum=1, maximum=4096, metavar="N"),
    Option("decode_workers", "loading", int, 1, "--decode-workers",
           "decoders at work at once, each its own: on videos of a list, or, for frame encoders, on the "
           "batches of a single video",
           minimum=1, maximum=64, metavar="N"),
    # -- sampling and scoring -------------------------------------------------------------------------
    Option("fps", "sampling", float, 1.0, "--fps",
           "sampling rate: frames embedded per second of video, with segments on or no num_frames; "
           "not the video's own frame rate", unit="frames per second", exclusive_minimum=0, maximum=1000,
           metavar="R"),
    Option("num_frames", "sampling", int, 8, "--num-frames",
           "frames spread uniformly over the video for a clip score, with segments off", unit="frames",
           minimum=1, maximum=10_000, none_means="sampling at fps", metavar="N"),
    Option("keyframes", "sampling", bool, False, "--keyframes",
           "embed the stream's keyframes at their own times instead of frames at fps or num_frames: hours of "
           "camera footage for a few hundred decodes; a window without a keyframe is reported frameless, "
           "not scored; frame encoders only"),
    Option("snap_to_keyframes", "sampling", float, 0.0, "--snap-to-keyframes",
           "for each frame sampled at fps or num_frames, take the keyframe nearest it instead (at the keyframe's "
           "own time) when one lies within this many seconds: a seek and one decode instead of decoding up to "
           "the frame; 0 = exact frames; frame encoders only", unit=_SECONDS, minimum=0, maximum=3600, metavar="S"),
    Option("start", "sampling", float, 0.0, "--start",
           "work on the part of each video from this time on (seconds or HH:MM:SS.mmm); results keep the video's "
           "own times", unit=_SECONDS, minimum=0, metavar="T", parse=seconds_of),
    Option("end", "sampling", float, None, "--end",
           "work on the part of each video before this time (seconds or HH:MM:SS.mmm); past the end is the end",
           unit=_SECONDS, exclusive_minimum=0, none_means="the end of the video", metavar="T", parse=seconds_of),
    Option("window", "sampling", float, 2.0, "--window",
           "window length; a video shorter than one window is one window", unit=_SECONDS, minimum=0.01,
           metavar="S"),
    Option("stride", "sampling", float, 1.0, "--stride",
           "step between window starts", unit=_SECONDS, minimum=0.001, metavar="S"),
    Option("pooling", "sampling", str, "mean", "--pooling",
           "pooling of the frame embeddings of a clip or window", choices=("mean", "max")),
    Option("hypothesis_template", "sampling", tuple, "a video of {}.", "--template",
           'prompt template with one {}, e.g. "a video of {}."; a list of them (--template repeated) is an '
           "ensemble, its text embeddings averaged", metavar="T"),
    Option("top_k", "sampling", int, None, "--top-k",
           "labels reported per clip and per window", minimum=1, none_means="all labels", metavar="K",
           flag_none=0),
    Option("segments", "sampling", bool, False, "--segments",
           "also score time windows and find events"),
    # -- events: how window scores become events ------------------------------------------------------
    Option("smooth", "events", int, 1, "--smooth",
           "moving average over this many windows before thresholding; 1 = no smoothing", unit="windows",
           minimum=1, maximum=10_000, metavar="N"),
    Option("threshold", "events", float, 0.5, "--threshold",
           "a window is on for a label when its smoothed value reaches this", metavar="T"),
    Option("measure", "events", str, "score", "--measure",
           "what the threshold applies to: score, the probability, or similarity, the raw cosine",
           choices=("score", "similarity")),
    Option("max_gap", "events", float, 0.0, "--max-gap",
           "runs at most this far apart merge into one event", unit=_SECONDS, minimum=0, metavar="S"),
    Option("min_duration", "events", float, 0.0, "--min-duration",
           "shorter events are dropped", unit=_SECONDS, minimum=0, metavar="S"),
    Option("thresholds", "events", str, None, "--thresholds",
           "a file written by `actionzs calibrate`: each label it names is on at its own threshold (on the "
           "measure it was made for, with the same model), the other labels at threshold; in a config, relative to it",
           none_means="threshold for every label", metavar="FILE"),
    # -- labels: the command line and configs only ----------------------------------------------------
    Option("labels_file", "labels", str, None, "--labels-file",
           "one label per line: 'name: description' lines, # comments, blank lines and a UTF-8 BOM are fine; "
           "in a config, relative to it and used when no labels are given", none_means="no labels file",
           metavar="FILE"),
)

_BY_NAME = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The option called `name` (its keyword, e.g. "window" or "threshold")."""
    return _BY_NAME[name]


def options_of(stage: str) -> tuple[Option, ...]:
    """The options of one stage ("loading", "sampling", "events" or "labels"), in order."""
    return tuple(o for o in OPTIONS if o.stage == stage)


def default(name: str):
    """The Python API's default of the option `name`."""
    return _BY_NAME[name].default


def check_fields(record, stage: str) -> None:
    """Check, and normalise in place, the fields of a frozen dataclass that holds a stage's options."""
    for o in options_of(stage):
        object.__setattr__(record, o.name, o.check(getattr(record, o.name)))
