"""The README, configs/README.md and --help stay true to the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from actionzs.cli import build_parser
from actionzs.config import KEYS, load_config, presets
from actionzs.options import RunOptions, events_from
from actionzs.config import markdown_table
from actionzs.schema import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIG_README = (ROOT / "configs" / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_is_in_the_readme():
    for name in _subcommands():
        assert f"actionzs {name}" in README, name


@pytest.mark.parametrize("command", ["probe", "classify", "scan", "report", "index", "search", "calibrate"])
def test_every_option_of_every_subcommand_is_in_the_readme(command):
    parser = _subcommands()[command]
    missing = [
        option
        for action in parser._actions
        for option in action.option_strings
        if option not in ("-h", "--help") and f"`{option}" not in README and f" {option}" not in README
    ]
    assert not missing, f"{command}: options missing from README.md: {missing}"


@pytest.mark.parametrize("command", ["probe", "classify", "scan", "report"])
def test_help_lists_every_option(command):
    parser = _subcommands()[command]
    text = parser.format_help()
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text


def test_every_config_key_is_documented():
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", CONFIG_README, flags=re.M))
    expected = (KEYS - {"events"}) | {f"events.{k}" for k in load_config()["events"]}
    assert expected <= documented, expected - documented


@pytest.mark.parametrize("name", presets())
def test_presets_are_valid_run_options(name):
    settings = load_config(name)
    assert set(settings) <= KEYS
    run = RunOptions(
        **{k: settings[k] for k in ("fps", "num_frames", "segments", "window", "stride", "pooling", "hypothesis_template", "top_k")},
        events=events_from(settings["events"]),
    )
    assert run.window > 0 and run.stride > 0
    if settings.get("labels_file"):
        assert Path(settings["labels_file"]).is_file()


def test_every_preset_is_in_the_config_readme():
    for name in presets():
        assert f"`{name}`" in CONFIG_README


def test_the_config_readme_keys_table_is_the_one_the_schema_makes():
    """Regenerate it with `python -m actionzs.config` after changing an option."""
    table = re.search(r"^\| key \| type \|.*?\n(?!\|)", CONFIG_README, flags=re.M | re.S)
    assert table, "configs/README.md has no keys table"
    assert table.group(0) == markdown_table()


def test_default_yaml_sets_every_schema_key_and_nothing_else():
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    keys = {k for k in raw if k != "events"} | {f"events.{k}" for k in raw["events"]}
    assert keys == {o.key for o in OPTIONS}
    settings = load_config()
    for o in OPTIONS:
        o.check(o.section(settings)[o.name])


def test_the_readme_shows_each_option_flag_as_help_does():
    """`--fps R`, `--dtype {auto,...}`: the metavar or the choices of every flag made from the schema."""
    for o in OPTIONS:
        if o.allowed:
            shown = f"`{o.flag} {{{','.join(o.allowed)}}}`"
        elif o.metavar:
            shown = f"`{o.flag} {o.metavar}`"
        else:
            shown = f"`{o.flag}`"
        assert shown in README, shown


@pytest.mark.parametrize("command", ["classify", "scan", "report"])
def test_help_shows_each_options_unit_range_and_config_default(command):
    text = " ".join(_subcommands()[command].format_help().split())
    assert "--window S window length; a video shorter than one window is one window (in seconds; >= 0.01; " \
           "default from the config: 2.0)" in text
    assert "(in frames per second; > 0 and <= 1000; default from the config: 1.0)" in text
    assert "--top-k K labels reported per clip and per window (>= 1; 0 = all labels; default from the config: 5)" in text
    assert "--device DEV where the model runs: cpu, cuda or cuda:N (default from the config: cuda if available, " \
           "else cpu)" in text
