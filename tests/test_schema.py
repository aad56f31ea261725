"""The option schema: the Python API follows it (fields, defaults, checks, stated bounds), and the
configs are checked against it as they are read."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import fields

import pytest

import actionzs
from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.config import load_config
from actionzs.errors import InvalidInputError
from actionzs.events import EventOptions
from actionzs.models import DEFAULT_MODEL, resolve_dtype
from actionzs.options import RunOptions, check_count
from actionzs.schema import OPTIONS, option, options_of


def test_option_names_and_flags_are_unique():
    assert len({o.name for o in OPTIONS}) == len({o.flag for o in OPTIONS}) == len(OPTIONS)


def test_the_dataclasses_hold_exactly_the_schema_options_in_order():
    assert [f.name for f in fields(RunOptions)] == [o.name for o in options_of("sampling")] + ["events"]
    assert [f.name for f in fields(EventOptions)] == [o.name for o in options_of("events")]


def test_the_python_defaults_are_the_schema_defaults():
    run, events = RunOptions(), EventOptions()
    for o in options_of("sampling"):
        assert getattr(run, o.name) == o.check(o.default), o.name
    for o in options_of("events"):
        assert getattr(events, o.name) == o.default, o.name
    loading = {o.name: o.default for o in options_of("loading")}
    assert loading["model"] == DEFAULT_MODEL
    for function in (actionzs.pipeline, ZeroShotVideoClassifier.__init__):
        parameters = inspect.signature(function).parameters
        given = {name: parameters[name].default for name in loading if name in parameters}
        assert given and given == {name: loading[name] for name in given}, function


def test_every_dtype_choice_is_one_the_loader_knows():
    import torch

    for choice in option("dtype").allowed:
        resolve_dtype(choice, torch.device("cpu"))


def test_the_schema_and_the_parser_load_without_torch():
    code = ("import sys, actionzs.schema; assert 'actionzs.video' not in sys.modules; "
            "import actionzs.cli; actionzs.cli.build_parser(); assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "make, name, bound",
    [
        (lambda: RunOptions(fps=1e9), "fps", "<= 1000"),
        (lambda: RunOptions(fps=0), "fps", "> 0"),
        (lambda: RunOptions(num_frames=10**9), "num_frames", "<= 10000"),
        (lambda: RunOptions(window=1e-6), "window", ">= 0.01"),
        (lambda: RunOptions(window=1e-6, stride=1e-6), "window", ">= 0.01"),
        (lambda: RunOptions(stride=1e-300), "stride", ">= 0.001"),
        (lambda: EventOptions(smooth=10**9), "events.smooth", "<= 10000"),
        (lambda: RunOptions(events={"smooth": 10**9}), "events.smooth", "<= 10000"),
        (lambda: check_count("decode_workers", 10**6), "decode_workers", "<= 64"),
        (lambda: check_count("batch_size", 10**6), "batch_size", "<= 4096"),
    ],
    ids=["fps-huge", "fps-zero", "num-frames", "window", "window-and-stride", "stride", "smooth", "smooth-mapping",
         "decode-workers", "batch-size"],
)
def test_values_past_the_stated_bounds_are_rejected_naming_the_option_and_the_bound(make, name, bound):
    with pytest.raises(InvalidInputError) as info:
        make()
    message = str(info.value)
    assert message.startswith(f"{name} must be ") and bound in message


def test_values_at_the_bounds_and_slow_motion_rates_are_accepted():
    run = RunOptions(fps=1000, num_frames=10_000, window=0.01, stride=0.001, events=EventOptions(smooth=10_000))
    assert (run.fps, run.num_frames, run.window, run.stride, run.events.smooth) == (1000, 10_000, 0.01, 0.001, 10_000)
    assert RunOptions(fps=240).fps == 240  # every frame of a 240 fps slow-motion video
    check_count("decode_workers", 64)
    check_count("batch_size", 4096)


@pytest.mark.parametrize("options", [dict(fps=1e9), dict(stride=1e-300), dict(num_frames=10**9), dict(decode_workers=10**6)],
                         ids=lambda o: next(iter(o)))
def test_the_pipeline_checks_the_bounds_before_loading_a_model(tmp_path, options):
    with pytest.raises(InvalidInputError, match=next(iter(options))):
        actionzs.pipeline(str(tmp_path / "no-model"), **options)


def test_whole_numbers_are_ints_not_floats_or_bools():
    for bad in (8.0, 2.5, True):
        with pytest.raises(InvalidInputError, match="num_frames must be a whole number"):
            RunOptions(num_frames=bad)
    with pytest.raises(InvalidInputError, match="segments must be true or false"):
        RunOptions(segments="yes")


# -- configs: the same checks as they are read ---------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ("stride: 0\n", ["stride must be a number of seconds >= 0.001", "got 0"]),
        ("fps: 1.0e+9\n", ["fps must be", "<= 1000"]),
        ("window: '2'\n", ["window must be a number", "got '2'"]),
        ("window: null\n", ["window must be"]),
        ("num_frames: 8.5\n", ["num_frames must be a whole number", "or null for sampling at fps"]),
        ("pooling: median\n", ["pooling must be one of mean, max", "'median'"]),
        ("backend: ffmpeg\n", ["backend must be one of auto, decord, pyav, opencv"]),
        ("events:\n  smooth: 0\n", ["events.smooth must be a whole number of windows >= 1"]),
        ("events:\n  thresold: 0.3\n", ["unknown config key(s) events.thresold"]),
        ("events: 3\n", ["events must be a mapping"]),
        ("hypothesis_template: [a video]\n", ["exactly one '{}'"]),
    ],
    ids=["stride", "fps", "window-string", "window-null", "num-frames-float", "pooling", "backend", "smooth",
         "event-typo", "events-not-a-mapping", "template"],
)
def test_a_config_value_the_schema_rejects_names_the_file_and_the_key(tmp_path, text, words):
    config = tmp_path / "mine.yaml"
    config.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        load_config(config)
    message = str(info.value)
    assert message.startswith(f"{config}: ") and all(w in message for w in words), message


def test_a_config_may_unset_the_options_that_take_none(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("num_frames: null\ntop_k: null\ndevice: null\nevents: null\n")
    settings = load_config(config)
    assert (settings["num_frames"], settings["top_k"], settings["device"]) == (None, None, None)
    assert settings["events"] == load_config()["events"]
