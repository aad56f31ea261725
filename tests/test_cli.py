"""The `actionzs` command end to end: probe, classify (every format, labels files, configs, exit
codes), scan (bad files, resume, kill, Ctrl-C), report (parsed back) and --help.

Most runs call `actionzs.cli.main` in this process with the tiny random CLIP checkpoint of
conftest.py; runs where a real process matters (kill, Ctrl-C, --help) start `python -m actionzs`.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from actionzs.cli import build_parser
from actionzs.testing import write_clip
from helpers_cli import (
    FAST,
    by_video,
    cli_command,
    read_jsonl,
    run_cli,
    start_cli,
    start_python,
    subprocess_env,
    tree,
    wait_for_lines,
)

LABELS = ["running", "jumping", "sitting down", "waving"]
HMS = re.compile(r"\b\d\d:\d\d:\d\d(\.\d)?\b")


def label_args(labels=LABELS) -> list[str]:
    return [arg for label in labels for arg in ("-l", label)]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Small clips made once: two good ones (H.264 and MJPEG) and a corrupt .mp4."""
    folder = tmp_path_factory.mktemp("cli-media")
    rng = np.random.default_rng(7)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(rng.bytes(4096))
    return {
        "a": write_clip(folder / "a.mp4", 30, average_fps=10, width=64, height=48, scenes=lambda i: i // 10),
        "b": write_clip(folder / "b.avi", 20, average_fps=10, width=64, height=48, codec="mjpeg", scenes=lambda i: 3),
        "corrupt": corrupt,
    }


@pytest.fixture(scope="module")
def model(clip_dir) -> list[str]:
    return ["--model", str(clip_dir)]


# -- probe -----------------------------------------------------------------------------------------


def test_probe_table_lists_each_good_file(capsys, media):
    code, out, err = run_cli(capsys, "probe", media["a"], media["b"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["video", "backend", "frames", "fps", "duration", "size", "keyframes"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[str(media["a"])][2:6] == ["30", "10.000", "00:00:03.000", "64x48"]
    assert rows[str(media["b"])][2:6] == ["20", "10.000", "00:00:02.000", "64x48"]
    code, out, _ = run_cli(capsys, "probe", "--json", media["a"])
    [record] = json.loads(out)
    interval = record["keyframe_interval_seconds"]
    assert " ".join(rows[str(media["a"])][6:]) == f"{record['keyframes']}" + ("" if interval is None else f", every {interval:.3f} s")


def test_probe_json_gives_true_metadata(capsys, media):
    code, out, err = run_cli(capsys, "probe", "--json", media["a"], media["b"])
    assert code == 0, err
    records = json.loads(out)
    assert [r["video"] for r in records] == [r["path"] for r in records] == [str(media["a"]), str(media["b"])]
    assert set(records[0]) == {"video", "path", "backend", "num_frames", "fps", "duration", "width", "height",
                               "keyframes", "keyframe_interval_seconds"}
    assert (records[0]["num_frames"], records[0]["fps"], records[0]["duration"]) == (30, 10.0, 3.0)
    assert (records[1]["num_frames"], records[1]["width"], records[1]["height"]) == (20, 64, 48)


def test_probe_counts_the_keyframes_a_full_decode_flags_and_their_median_interval(capsys, tmp_path):
    """What --keyframes and --snap-to-keyframes work with: a keyframe every 12 frames at 25 fps."""
    av = pytest.importorskip("av")
    from helpers_video import encode

    path = encode(tmp_path / "gop12.mp4", 60, options={"g": "12", "keyint_min": "12", "sc_threshold": "0", "bf": "2"})
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [float(frame.pts * stream.time_base) for frame in container.decode(stream) if frame.key_frame]
    code, out, err = run_cli(capsys, "probe", "--json", path)
    assert code == 0, err
    [record] = json.loads(out)
    assert record["keyframes"] == len(keys) == 5
    assert record["keyframe_interval_seconds"] == pytest.approx(float(np.median(np.diff(keys))), abs=1e-6)
    code, out, _ = run_cli(capsys, "probe", path)
    assert out.splitlines()[1].endswith("5, every 0.480 s")


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_probe_reports_a_bad_file_and_still_prints_the_good_ones(capsys, media, as_json):
    code, out, err = run_cli(capsys, "probe", *(["--json"] if as_json else []), media["a"], media["corrupt"], media["b"])
    assert code == 1
    assert f"error: {media['corrupt']}: " in err and "Traceback" not in err
    if as_json:
        records = json.loads(out)
        assert [r.get("path", r.get("video")) for r in records] == [str(media[k]) for k in ("a", "corrupt", "b")]
        assert records[1]["error"] and "num_frames" in records[0] and "num_frames" in records[2]
    else:
        assert str(media["a"]) in out and str(media["b"]) in out and str(media["corrupt"]) not in out


# -- classify: formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("segments", [False, True], ids=["clip", "segments"])
def test_classify_json(capsys, media, model, segments):
    extra = ["--segments", "--measure", "similarity", "--threshold", "-1"] if segments else []
    code, out, err = run_cli(capsys, "classify", media["a"], media["b"], *model, *label_args(), *FAST,
                             "--format", "json", *extra)
    assert code == 0, err
    records = json.loads(out)
    assert [r["video"] for r in records] == [str(media["a"]), str(media["b"])]
    keys = {"video", "duration", "model", "labels", "schema_version", "settings"} | ({"segments", "events", "thresholds"} if segments else set())
    for record in records:
        assert set(record) == keys
        assert record["model"] == model[1]
        assert sorted(item["label"] for item in record["labels"]) == sorted(LABELS)  # default top_k 5 >= 4 labels
        scores = [item["score"] for item in record["labels"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, abs=1e-4)
    assert [r["duration"] for r in records] == [3.0, 2.0]
    if segments:
        assert [(s["start"], s["end"]) for s in records[0]["segments"]] == [(0.0, 2.0), (1.0, 3.0)]
        assert {e["label"] for e in records[0]["events"]} == set(LABELS)  # threshold -1 on similarity: all on
        assert records[0]["thresholds"] == {"measure": "similarity", "threshold": -1.0}


def test_decode_workers_give_the_same_output(capsys, media, model):
    """Two decoders on one file, batches of 4 frames: the output is the single decoder's."""
    args = (media["a"], *model, *label_args(), *FAST, "--segments", "--fps", "10", "--batch-size", "4", "--format", "json")
    outputs = []
    for workers in ("1", "2"):
        code, out, err = run_cli(capsys, "classify", *args, "--decode-workers", workers)
        assert code == 0, err
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]["segments"]) == 2


def test_classify_jsonl_is_one_object_per_line(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], media["b"], *model, *label_args(), *FAST, "--format", "jsonl")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and out.endswith("\n")
    assert [json.loads(line)["video"] for line in lines] == [str(media["a"]), str(media["b"])]


def test_classify_csv(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], media["b"], *model, *label_args(), *FAST, "--format", "csv",
                             "--segments", "--measure", "similarity", "--threshold", "-1")
    assert code == 0, err
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == ["video", "kind", "start", "end", "label", "score", "similarity", "schema_version", "settings_hash"]
    made, *rows = list(reader)
    assert made["kind"] == "settings" and json.loads(made["label"])["hash"] == made["settings_hash"]
    assert all(row["settings_hash"] == made["settings_hash"] and row["schema_version"] == "1" for row in rows)
    kinds = {(row["video"], row["kind"]) for row in rows}
    assert kinds == {(str(media[k]), kind) for k in ("a", "b") for kind in ("clip", "segment", "event")}
    clip_rows = [row for row in rows if row["video"] == str(media["a"]) and row["kind"] == "clip"]
    assert sorted(row["label"] for row in clip_rows) == sorted(LABELS)
    assert all(float(row["end"]) == 3.0 and 0 <= float(row["score"]) <= 1 and -1 <= float(row["similarity"]) <= 1
               for row in clip_rows)
    segment_rows = [row for row in rows if row["video"] == str(media["a"]) and row["kind"] == "segment"]
    assert len(segment_rows) == 2 * len(LABELS)  # two windows of 2 s (stride 1) over 3 s
    assert all(row["similarity"] == "" for row in rows if row["kind"] == "event")  # events have a score only


def test_classify_table_shows_labels_and_events_with_hms_times(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), *FAST, "--segments",
                             "--measure", "similarity", "--threshold", "-1")
    assert code == 0, err
    assert out.startswith(f"{media['a']}  (00:00:03.000, ")
    for label in LABELS:
        assert re.search(rf"^\s+\d\.\d{{4}}\s+[+-]\d\.\d{{4}}\s+{label}$", out, re.M), label
    events = out[out.index("  events:") :].splitlines()[1:]
    event_lines = [line for line in events if line.strip()]
    assert len(event_lines) == len(LABELS)
    assert all(re.match(r"^\s+00:00:00\.000-00:00:03\.000\s+-?\d\.\d\d\s+\S", line) for line in event_lines), event_lines


def test_classify_table_without_segments_has_no_events(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), *FAST)
    assert code == 0, err
    assert "events" not in out and all(label in out for label in LABELS)


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_classify_output_file_gets_everything_and_stdout_nothing(capsys, tmp_path, media, model, fmt):
    args = ["classify", media["a"], *model, *label_args(), *FAST, "--format", fmt]
    _, expected, _ = run_cli(capsys, *args)
    target = tmp_path / f"out.{fmt}"
    code, out, err = run_cli(capsys, *args, "-o", target)
    assert code == 0, err
    assert out == ""
    assert target.read_text(encoding="utf-8") == expected
    assert tree(tmp_path) == {target.name}  # no temporary file left beside it


def test_top_k_limits_clip_and_window_labels(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), *FAST, "--format", "json",
                             "--segments", "--top-k", "2")
    assert code == 0, err
    record = json.loads(out)[0]
    assert len(record["labels"]) == 2
    assert all(len(segment["labels"]) == 2 for segment in record["segments"])
    code, out, _ = run_cli(capsys, "classify", media["a"], *model, *label_args(), *FAST, "--format", "json", "--top-k", "0")
    assert code == 0 and len(json.loads(out)[0]["labels"]) == len(LABELS)


def test_repeated_template_is_an_ensemble(capsys, media, model):
    common = ["classify", media["a"], *model, *label_args(), "--num-frames", "4", "--format", "json", "-q"]
    one = json.loads(run_cli(capsys, *common, "--template", "a video of {}.")[1])[0]["labels"]
    other = json.loads(run_cli(capsys, *common, "--template", "a photo of {}.")[1])[0]["labels"]
    code, out, err = run_cli(capsys, *common, "--template", "a video of {}.", "--template", "a photo of {}.")
    assert code == 0, err
    both = json.loads(out)[0]["labels"]
    sims = {name: {item["label"]: item["similarity"] for item in result} for name, result in
            (("one", one), ("other", other), ("both", both))}
    for label in LABELS:  # the ensemble is neither template alone
        assert sims["both"][label] != pytest.approx(sims["one"][label], abs=1e-6)
        assert sims["both"][label] != pytest.approx(sims["other"][label], abs=1e-6)
    code, _, err = run_cli(capsys, *common, "--template", "a video of something")  # no {}
    assert code == 2 and "exactly one '{}'" in err


# -- classify: configs -------------------------------------------------------------------------------


def test_config_preset_sports_and_flags_override_it(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", "sports", "--format", "json", "-q")
    assert code == 0, err
    record = json.loads(out)[0]
    assert len(record["labels"]) == 3  # sports: top_k 3
    assert [s["start"] for s in record["segments"]] == [0.0, 0.5, 1.0]  # segments on, window 2, stride 0.5
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", "sports", "--format", "json",
                             "-q", "--no-segments", "--top-k", "1")
    assert code == 0, err
    record = json.loads(out)[0]
    assert "segments" not in record and len(record["labels"]) == 1


def test_config_preset_surveillance_brings_its_labels_file(capsys, media, model):
    code, out, err = run_cli(capsys, "classify", media["a"], *model, "--config", "surveillance", "--format", "json",
                             "-q", "--top-k", "0")
    assert code == 0, err
    record = json.loads(out)[0]
    names = {item["label"] for item in record["labels"]}
    assert len(names) == 10 and {"climbing a fence", "running", "empty scene"} <= names  # names, not descriptions
    assert [(s["start"], s["end"]) for s in record["segments"]] == [(0.0, 3.0)]  # window 8 s > the 3 s video


def test_config_yaml_file_and_flags_over_it(capsys, tmp_path, media, model):
    config = tmp_path / "mine.yaml"
    config.write_text("segments: true\nwindow: 1.0\nstride: 1.0\ntop_k: 2\nnum_frames: 4\n"
                      "hypothesis_template: 'a clip of {}.'\nevents:\n  threshold: 0.0\n")
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", config, "--format", "json", "-q")
    assert code == 0, err
    record = json.loads(out)[0]
    assert [s["start"] for s in record["segments"]] == [0.0, 1.0, 2.0] and len(record["labels"]) == 2
    assert len(record["events"]) >= 1  # threshold 0: something is on
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", config, "--format", "json",
                             "-q", "--window", "1.5", "--stride", "1.5", "--top-k", "3")
    assert code == 0, err
    record = json.loads(out)[0]
    assert [(s["start"], s["end"]) for s in record["segments"]] == [(0.0, 1.5), (1.5, 3.0)] and len(record["labels"]) == 3


def test_unknown_config_key_is_a_usage_error(capsys, tmp_path, media, model):
    config = tmp_path / "typo.yaml"
    config.write_text("windw: 3\n")
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", config)
    assert code == 2 and out == ""
    assert "windw" in err and str(config) in err
    code, _, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", "no-such-preset")
    assert code == 2 and "no config preset 'no-such-preset'" in err


# -- classify: labels --------------------------------------------------------------------------------


def test_labels_file_with_bom_comments_blanks_and_descriptions(capsys, tmp_path, media, model):
    labels = tmp_path / "labels.txt"
    labels.write_bytes("\ufeff# actions to look for\n\nrun: a person running fast\n  jumping  \n\n# sitting\nsitting down\n"
                       .encode("utf-8"))
    code, out, err = run_cli(capsys, "classify", media["a"], *model, "--labels-file", labels, "--num-frames", "4", "-q",
                             "--format", "json", "--template", "{}", "--top-k", "0")
    assert code == 0, err
    result = {item["label"]: item for item in json.loads(out)[0]["labels"]}
    assert set(result) == {"run", "jumping", "sitting down"}  # BOM stripped, comments and blanks skipped
    # "name: description" embeds the description verbatim and reports the name
    code, out, err = run_cli(capsys, "classify", media["a"], *model, "-l", "a person running fast", "--num-frames", "4",
                             "-q", "--format", "json", "--template", "{}")
    assert code == 0, err
    plain = json.loads(out)[0]["labels"][0]
    assert result["run"]["similarity"] == pytest.approx(plain["similarity"], abs=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"caf\xe9\nrunning\n", "labels file is not UTF-8"),
        (b"", "labels file has no labels"),
        (b"# only a comment\n\n   \n", "labels file has no labels"),
        (b"running\njumping\nrunning\n", "duplicate candidate labels: 'running'"),
        (b"run: a person running\nrun: someone running\n", "duplicate candidate labels: 'run'"),
    ],
    ids=["not-utf8", "empty", "only-comments", "duplicates", "duplicate-names"],
)
def test_bad_labels_file_is_a_usage_error_naming_the_file(capsys, tmp_path, media, model, content, message):
    labels = tmp_path / "labels.txt"
    labels.write_bytes(content)
    code, out, err = run_cli(capsys, "classify", media["a"], *model, "--labels-file", labels)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {labels}: ") and message in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["-l", "running", "-l", "running"], "duplicate candidate labels"),
        ([], "no labels"),
        (["-l", "running", "--labels-file", "{labels}"], "not both"),
        (["--labels-file", "{missing}"], "cannot read labels file"),
        (["-l", "  "], "blank"),
    ],
    ids=["duplicate-flags", "no-labels", "both", "missing-file", "blank"],
)
def test_label_usage_errors(capsys, tmp_path, media, model, args, message):
    (tmp_path / "labels.txt").write_text("jumping\n")
    args = [a.format(labels=tmp_path / "labels.txt", missing=tmp_path / "nope.txt") for a in args]
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *args)
    assert code == 2 and out == "" and message in err


@pytest.mark.parametrize(
    "option, value, name",
    [("--stride", "0", "stride"), ("--stride", "-1", "stride"), ("--window", "0", "window"), ("--fps", "0", "fps"),
     ("--top-k", "-1", "top_k"), ("--num-frames", "0", "num_frames"), ("--batch-size", "0", "batch_size"),
     ("--decode-workers", "0", "decode_workers"), ("--smooth", "0", "smoothing"), ("--max-gap", "-1", "max_gap")],
)
def test_bad_options_are_rejected_before_the_model_loads(capsys, tmp_path, media, option, value, name):
    missing_model = tmp_path / "no-such-checkpoint"  # loading it would fail with exit 1
    code, out, err = run_cli(capsys, "classify", media["a"], "--model", missing_model, "-l", "running", option, value)
    assert code == 2, err
    assert name in err and "checkpoint" not in err and str(missing_model) not in err


@pytest.mark.parametrize(
    "options, name, bound",
    [(["--fps", "1e9"], "fps", "<= 1000"), (["--num-frames", "1000000000"], "num_frames", "<= 10000"),
     (["--window", "1e-6", "--stride", "1e-6"], "window", ">= 0.01"), (["--stride", "1e-300"], "stride", ">= 0.001"),
     (["--smooth", "1000000000"], "smooth", "<= 10000"), (["--decode-workers", "1000000"], "decode_workers", "<= 64"),
     (["--batch-size", "1000000"], "batch_size", "<= 4096")],
    ids=["fps", "num-frames", "window-and-stride", "stride", "smooth", "decode-workers", "batch-size"],
)
def test_values_past_the_stated_bounds_are_usage_errors_naming_the_option_and_the_bound(capsys, tmp_path, media, options,
                                                                                         name, bound):
    missing_model = tmp_path / "no-such-checkpoint"  # loading it would fail with exit 1
    code, out, err = run_cli(capsys, "classify", media["a"], "--model", missing_model, "-l", "running", "--segments",
                             *options)
    assert code == 2 and out == "", err
    assert f"{name} must be " in err and bound in err and str(missing_model) not in err and "Traceback" not in err


def test_a_config_value_out_of_range_is_a_usage_error_naming_the_file_and_key(capsys, tmp_path, media, model):
    config = tmp_path / "fast.yaml"
    config.write_text("segments: true\nstride: 0.0001\n")
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", config)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {config}: stride must be ") and ">= 0.001" in err


def test_missing_model_directory_is_exit_1_naming_it(capsys, tmp_path, media):
    missing_model = tmp_path / "no-such-checkpoint"
    code, out, err = run_cli(capsys, "classify", media["a"], "--model", missing_model, "-l", "running")
    assert code == 1 and out == ""
    assert str(missing_model) in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_good_and_corrupt_videos_mixed(capsys, media, model, fmt):
    code, out, err = run_cli(capsys, "classify", media["a"], media["corrupt"], media["b"], *model, *label_args(), *FAST,
                             "--format", fmt)
    assert code == 1
    assert err.count("error: ") == 1 and f"error: {media['corrupt']}: " in err and "Traceback" not in err
    if fmt == "json":
        records = json.loads(out)
        assert [r["video"] for r in records] == [str(media[k]) for k in ("a", "corrupt", "b")]
        assert "labels" in records[0] and "labels" in records[2] and set(records[1]) == {"video", "error", "schema_version", "settings"}
    else:
        assert f"{media['a']}  (00:00:03.000" in out and f"{media['b']}  (00:00:02.000" in out
        assert f"{media['corrupt']}: ERROR " in out


def test_save_embeddings_stores_one_file_per_good_video(capsys, tmp_path, media, model):
    from actionzs.embeddings import FrameEmbeddings

    folder = tmp_path / "embeddings"
    code, out, err = run_cli(capsys, "classify", media["a"], media["corrupt"], media["b"], *model, *label_args(), *FAST,
                             "--format", "json", "--save-embeddings", folder)
    assert code == 1
    records = json.loads(out)
    saved = {r["video"]: Path(r["embeddings"]) for r in records if "embeddings" in r}
    assert set(saved) == {str(media["a"]), str(media["b"])}
    assert {p.name for p in folder.iterdir()} == {p.name for p in saved.values()}
    for video, path in saved.items():
        stored = FrameEmbeddings.load(path)
        assert stored.source == video and stored.model == model[1] and len(stored.vectors) == len(stored.indices) > 0


@pytest.mark.parametrize("yaml_text", ["events: [1, 2]\n", "hypothesis_template: 5\n"], ids=["events-list", "template-int"])
def test_config_value_of_the_wrong_type_is_a_usage_error(capsys, tmp_path, media, model, yaml_text):
    config = tmp_path / "wrong.yaml"
    config.write_text(yaml_text)
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--config", config)
    assert code == 2 and err.startswith("error: ")


# -- scan --------------------------------------------------------------------------------------------


@pytest.fixture
def scan_tree(tmp_path, media) -> tuple[Path, dict[str, str]]:
    """A folder tree: good clips (one nested, names with spaces and non-ASCII), a corrupt file and a
    zero-byte .mp4, plus files scan must ignore. Returns (folder, {path: "ok" | "error"})."""
    root = tmp_path / "footage"
    (root / "day 1" / "caméra nord").mkdir(parents=True)
    shutil.copy(media["a"], root / "top.mp4")
    shutil.copy(media["b"], root / "day 1" / "clip with spaces.avi")
    shutil.copy(media["a"], root / "day 1" / "caméra nord" / "vidéo été 東京.mp4")
    shutil.copy(media["corrupt"], root / "day 1" / "corrupt.mp4")
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.txt").write_text("not a video")
    (root / "folder.mp4").mkdir()  # a folder with a video suffix is not a video
    expected = {
        str(root / "top.mp4"): "ok",
        str(root / "day 1" / "clip with spaces.avi"): "ok",
        str(root / "day 1" / "caméra nord" / "vidéo été 東京.mp4"): "ok",
        str(root / "day 1" / "corrupt.mp4"): "error",
        str(root / "empty.mp4"): "error",
    }
    return root, expected


def test_scan_folder_with_bad_files(capsys, tmp_path, scan_tree, model):
    root, expected = scan_tree
    out_file = tmp_path / "out.jsonl"
    code, out, err = run_cli(capsys, "scan", root, "-o", out_file, *model, *label_args(), *FAST)
    assert code == 1
    records = by_video(read_jsonl(out_file))
    assert set(records) == set(expected)
    for video, outcome in expected.items():
        if outcome == "ok":
            assert set(records[video]) == {"video", "duration", "model", "labels", "schema_version", "settings"}
        else:
            assert set(records[video]) == {"video", "error", "schema_version", "settings"} and records[video]["error"]
            assert f"error: {video}: {records[video]['error']}" in err
    assert records[str(root / "empty.mp4")]["error"] == "file is empty (0 bytes)"
    assert "scanned 5 videos" in err and "3 ok, 2 failed" in err and str(out_file) in err
    assert "Traceback" not in err and out == ""


def test_scan_refuses_an_existing_output_without_resume(capsys, tmp_path, scan_tree, model):
    root, _ = scan_tree
    out_file = tmp_path / "out.jsonl"
    out_file.write_text('{"video": "x", "error": "kept"}\n')
    before = out_file.stat()
    code, out, err = run_cli(capsys, "scan", root, "-o", out_file, *model, *label_args(), *FAST)
    assert code == 2 and "--resume" in err and str(out_file) in err
    assert out_file.read_text() == '{"video": "x", "error": "kept"}\n'
    assert out_file.stat().st_mtime_ns == before.st_mtime_ns


def test_scan_resume_after_a_complete_run_does_nothing(capsys, tmp_path, media, model):
    folder = tmp_path / "good"
    folder.mkdir()
    for name in ("one.mp4", "two.mp4"):
        shutil.copy(media["a"], folder / name)
    out_file = tmp_path / "out.jsonl"
    assert run_cli(capsys, "scan", folder, "-o", out_file, *model, *label_args(), *FAST)[0] == 0
    content = out_file.read_bytes()
    code, out, err = run_cli(capsys, "scan", folder, "-o", out_file, *model, *label_args(), *FAST, "--resume")
    assert code == 0 and "nothing to do" in err
    assert out_file.read_bytes() == content


def test_scan_resume_retries_failed_videos_without_duplicates(capsys, tmp_path, scan_tree, media, model):
    root, expected = scan_tree
    out_file = tmp_path / "out.jsonl"
    assert run_cli(capsys, "scan", root, "-o", out_file, *model, *label_args(), *FAST)[0] == 1
    first = by_video(read_jsonl(out_file))
    # the same bad files again: retried, still one record each
    code, _, err = run_cli(capsys, "scan", root, "-o", out_file, *model, *label_args(), *FAST, "--resume")
    assert code == 1 and "scanned 2 videos" in err and "3 already done" in err
    again = by_video(read_jsonl(out_file))
    assert set(again) == set(expected)
    assert all(again[v] == first[v] for v, outcome in expected.items() if outcome == "ok")
    # the corrupt file repaired: its retry succeeds
    shutil.copy(media["b"], root / "day 1" / "corrupt.mp4")
    code, _, err = run_cli(capsys, "scan", root, "-o", out_file, *model, *label_args(), *FAST, "--resume")
    assert code == 1 and "1 ok, 1 failed" in err
    final = by_video(read_jsonl(out_file))
    assert set(final) == set(expected)
    assert "labels" in final[str(root / "day 1" / "corrupt.mp4")] and "error" in final[str(root / "empty.mp4")]


def test_scan_glob_inputs(capsys, tmp_path, scan_tree, model):
    root, expected = scan_tree
    out_file = tmp_path / "glob.jsonl"
    code, _, err = run_cli(capsys, "scan", f"{root}/*.mp4", f"{root}/**/*.avi", "-o", out_file, *model, *label_args(), *FAST)
    assert code == 1  # empty.mp4 is among the matches
    records = by_video(read_jsonl(out_file))
    assert set(records) == {str(root / "top.mp4"), str(root / "empty.mp4"), str(root / "day 1" / "clip with spaces.avi")}
    code, _, err = run_cli(capsys, "scan", f"{root}/*.webm", f"{root}/top.mp4", "-o", tmp_path / "g2.jsonl", *model,
                           *label_args(), *FAST)
    assert code == 0 and f"warning: {root}/*.webm: no videos found" in err
    assert set(by_video(read_jsonl(tmp_path / "g2.jsonl"))) == {str(root / "top.mp4")}


def test_scan_file_deleted_after_listing_gets_an_error_record(capsys, tmp_path, media, model, monkeypatch):
    import actionzs.scan

    folder = tmp_path / "vanishing"
    folder.mkdir()
    keep, gone = folder / "keep.mp4", folder / "gone.mp4"
    shutil.copy(media["a"], keep)
    shutil.copy(media["a"], gone)
    listing = actionzs.scan.find_videos

    def find_then_delete(inputs):
        found = listing(inputs)
        gone.unlink()  # removed between listing and reading
        return found

    monkeypatch.setattr(actionzs.scan, "find_videos", find_then_delete)
    out_file = tmp_path / "out.jsonl"
    code, _, err = run_cli(capsys, "scan", folder, "-o", out_file, *model, *label_args(), *FAST)
    assert code == 1
    records = by_video(read_jsonl(out_file))
    assert records[str(gone)] == {"video": str(gone), "error": "no such file", "schema_version": 1,
                                  "settings": records[str(keep)]["settings"]}
    assert "labels" in records[str(keep)]
    assert f"error: {gone}: no such file" in err


@pytest.fixture(scope="module")
def twelve_clips(tmp_path_factory) -> Path:
    """Twelve 5-second clips: slow enough at --fps 6 --segments to stop a scan part-way."""
    folder = tmp_path_factory.mktemp("twelve")
    for i in range(12):
        write_clip(folder / f"clip{i:02d}.mp4", 50, average_fps=10, width=160, height=120, scenes=lambda j, i=i: (i + j // 20) % 6)
    return folder


@pytest.mark.slow
def test_scan_killed_mid_way_then_resumed(tmp_path, twelve_clips, clip_dir):
    out_file = tmp_path / "out.jsonl"
    args = ["scan", twelve_clips, "-o", out_file, "--model", clip_dir, "-l", "running", "-l", "jumping",
            "--fps", "6", "--segments", "-q"]
    proc = start_cli(*args)
    wait_for_lines(out_file, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed = read_jsonl(out_file)  # every line whole JSON, no partial last line
    assert 3 <= len(killed) < 12, "the scan finished before it could be killed; make the clips slower"
    by_video(killed)

    proc = start_cli(*args, "--resume")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and f"{len(killed)} already done" in err
    records = by_video(read_jsonl(out_file))
    assert set(records) == {str(p) for p in twelve_clips.glob("*.mp4")}
    assert all("labels" in r and len(r["segments"]) == 4 for r in records.values())
    assert read_jsonl(out_file)[: len(killed)] == killed  # finished records are kept as they were


def test_scan_resume_drops_a_torn_last_line_and_redoes_that_video(capsys, tmp_path, media, model):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        shutil.copy(media["a"], folder / name)
    out_file = tmp_path / "out.jsonl"
    assert run_cli(capsys, "scan", folder, "-o", out_file, *model, *label_args(), *FAST)[0] == 0
    lines = out_file.read_text(encoding="utf-8").splitlines(keepends=True)
    complete = lines[0] + lines[1]
    garbled_middle = '{"video": "' + str(folder / "c.mp4") + '", "dura\n'  # a damaged line with its newline
    torn = lines[3][: len(lines[3]) // 2]  # the last write cut short: no newline
    out_file.write_text(complete + garbled_middle + torn, encoding="utf-8")
    code, _, err = run_cli(capsys, "scan", folder, "-o", out_file, *model, *label_args(), *FAST, "--resume")
    assert code == 0, err
    assert "scanned 2 videos" in err and "2 already done" in err
    records = by_video(read_jsonl(out_file))
    assert set(records) == {str(folder / n) for n in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")}
    assert out_file.read_text(encoding="utf-8").startswith(complete)
    assert records[str(folder / "d.mp4")] == json.loads(lines[3])  # redone, same result


def test_ctrl_c_stops_a_scan_with_exit_130_and_a_resume_hint(tmp_path, twelve_clips, clip_dir):
    """SIGINT while the scan is starting up (loading the model), before any video is decoded."""
    out_file = tmp_path / "out.jsonl"
    proc = start_cli("scan", twelve_clips, "-o", out_file, "--model", clip_dir, "-l", "running", "-l", "jumping", "-q")
    wait_for_lines(out_file, 0, proc)  # the output exists: the scan has started
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    read_jsonl(out_file)


#: A command interrupted while Python runs exec() on a string, as dataclasses and other imports do
#: while the model loads. Run with `python -m`, CPython then notes the KeyboardInterrupt as unhandled
#: even once caught, and ends the process by SIGINT (-2) instead of its exit status.
INTERRUPTED_IN_EXEC = """
import sys
from actionzs import cli
def interrupted(args):
    exec("raise KeyboardInterrupt")
cli.COMMANDS["probe"] = interrupted
sys.exit(cli.main(["probe", "clip.mp4"]))
"""


def test_ctrl_c_during_an_exec_of_a_string_still_exits_130(tmp_path):
    (tmp_path / "interrupted_cli.py").write_text(INTERRUPTED_IN_EXEC)
    run = subprocess.run([sys.executable, "-m", "interrupted_cli"], cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 130, run.stderr
    assert "interrupted" in run.stderr and "Traceback" not in run.stderr



#: Ctrl-C while a class body is set up (an import during the model load): Python 3.11 wraps the
#: KeyboardInterrupt in a RuntimeError; a library may wrap it again in an error of its own.
INTERRUPTED_IN_A_CLASS_BODY = """
import sys
from actionzs import cli
from actionzs.errors import ModelLoadError
class Interrupting:
    def __set_name__(self, owner, name):
        raise KeyboardInterrupt
def interrupted(args):
    try:
        class Model:
            weights = Interrupting()
    except BaseException as exc:
        if sys.argv[1] == "wrapped":
            raise ModelLoadError("model could not be loaded") from exc
        raise
cli.COMMANDS["probe"] = interrupted
sys.exit(cli.main(["probe", "clip.mp4"]))
"""


@pytest.mark.parametrize("how", ["plain", "wrapped"])
def test_ctrl_c_wrapped_in_another_error_still_exits_130(tmp_path, how):
    script = tmp_path / "interrupted_class.py"
    script.write_text(INTERRUPTED_IN_A_CLASS_BODY)
    run = subprocess.run([sys.executable, str(script), how], cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 130, run.stderr
    assert "interrupted" in run.stderr and "Traceback" not in run.stderr and "error:" not in run.stderr

#: Runs the CLI with opening a video slowed by one second, so a SIGINT sent between videos lands
#: while the background thread opens the next one, as it often does on real footage. That thread
#: blocks SIGINT, so the kernel hands the signal to the main thread (as a terminal's Ctrl-C often
#: does). argv[1] is a file the hook creates, to prove it ran; the rest is the command line.
SLOW_OPEN = """
import signal, sys, time
from pathlib import Path
from actionzs.video.pyav_reader import PyAVReader
_init, _marker = PyAVReader.__init__, Path(sys.argv[1])
def slow_init(self, *args, **kwargs):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    _marker.touch()
    time.sleep(1.0)
    _init(self, *args, **kwargs)
PyAVReader.__init__ = slow_init
from actionzs.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_ctrl_c_while_decoding_exits_130_with_a_resume_hint(tmp_path, twelve_clips, clip_dir):
    out_file, marker = tmp_path / "out.jsonl", tmp_path / "hook-ran"
    proc = start_python(SLOW_OPEN, marker, "scan", twelve_clips, "-o", out_file, "--model", clip_dir,
                        "-l", "running", "-l", "jumping", "--num-frames", "2", "-q")
    wait_for_lines(out_file, 1, proc)
    time.sleep(0.3)  # the next video is being opened now (for one second)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if not marker.exists() or len(read_jsonl(out_file)) == 12:  # not an AssertionError: a real failure
        raise RuntimeError(f"the slow-open hook did not take effect; the test proves nothing:\n{err}")
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["classify", "report", "scan", "scan-resume-into-folder"])
def test_unwritable_output_is_an_error_message_not_a_traceback(capsys, tmp_path, media, model, command):
    target = tmp_path / "no-such-folder" / "out.txt"
    if command == "classify":
        argv = ["classify", media["a"], "-o", target]
    elif command == "report":
        argv = ["report", media["a"], "-o", target]
    elif command == "scan":
        argv = ["scan", media["a"], "-o", target]
    else:
        target = tmp_path / "a-folder"
        target.mkdir()
        argv = ["scan", media["a"], "-o", target, "--resume"]
    code, out, err = run_cli(capsys, *argv, *model, *label_args(), *FAST)
    assert code in (1, 2) and err.startswith("error: ") and str(target) in err


def test_scan_usage_error_creates_no_output(capsys, tmp_path, media):
    out_file = tmp_path / "out.jsonl"
    code, _, err = run_cli(capsys, "scan", media["a"], "-o", out_file, "--model", tmp_path / "no-model",
                           "-l", "running", "--stride", "0")
    assert code == 2 and "stride" in err
    assert not out_file.exists()


# -- report ------------------------------------------------------------------------------------------


class _ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: dict[str | None, str] = {}  # by id
        self.ranking_text: list[str] = []
        self.filter_text: list[str] = []
        self._within: list[str | None] = []  # ids of the open table, fieldset or script

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in ("table", "fieldset", "script"):
            self._within.append(attrs.get("id"))
        if tag == "script":
            self.scripts[attrs.get("id")] = ""

    def handle_endtag(self, tag):
        if tag in ("table", "fieldset", "script") and self._within:
            self._within.pop()

    def handle_data(self, data):
        where = self._within[-1] if self._within else None
        if self.tags and self.tags[-1][0] == "script" and where in self.scripts:
            self.scripts[where] += data
        elif data.strip() and where == "ranking":
            self.ranking_text.append(data.strip())
        elif data.strip() and where == "filter":
            self.filter_text.append(data.strip())

    def data(self) -> dict:
        """The JSON blob the page's script draws from."""
        return json.loads(self.scripts["data"])


def test_report_is_one_self_contained_html_file(capsys, tmp_path, media, model):
    from PIL import Image

    out_dir = tmp_path / "report"
    out_dir.mkdir()
    target = out_dir / "report.html"
    settings = ["--measure", "similarity", "--threshold", "-1", "--template", "a video of {}."]
    code, out, err = run_cli(capsys, "report", media["a"], *model, *label_args(), *settings, "-o", target)
    assert code == 0, err
    assert tree(out_dir) == {"report.html"}  # one file, nothing beside it
    html = target.read_text(encoding="utf-8")
    _, same, _ = run_cli(capsys, "classify", media["a"], *model, *label_args(), *settings, "--segments", "--top-k", "0",
                         "--format", "json")
    result = json.loads(same)[0]

    page = _ReportParser()
    page.feed(html)
    for tag, attrs in page.tags:  # nothing fetched from elsewhere; the player links the video beside it
        for key in ("src", "href"):
            if attrs.get(key) and tag != "video" and not attrs[key].startswith("#t="):
                assert attrs[key].startswith("data:"), (tag, key, attrs[key][:60])
        assert tag not in ("link", "iframe", "object", "embed"), tag
        assert not (tag == "script" and attrs.get("src")), attrs
    assert [attrs["src"] for tag, attrs in page.tags if tag == "video"] == [
        Path(os.path.relpath(media["a"], out_dir)).as_posix()]
    assert not re.search(r"url\(\s*['\"]?https?:", html) and "@import" not in html
    data = page.data()
    names = [item["label"] for item in result["labels"]]
    assert data["labels"] == names and data["measure"] == "similarity" and data["threshold"] == -1
    values = data["timeline"]["values"]
    assert len(values) == len(LABELS) and {len(row) for row in values} == {len(result["segments"])}
    for w, segment in enumerate(result["segments"]):
        for item in segment["labels"]:
            assert values[names.index(item["label"])][w] / data["timeline"]["scale"] == pytest.approx(item["similarity"], abs=1e-4)
    assert len(result["events"]) >= 1 and [[names[m], a, b] for m, a, b, _ in data["events"]] == [
        [e["label"], e["start"], e["end"]] for e in result["events"]]
    assert html.count('<tr class="event">') == len(result["events"])
    assert len(data["thumbs"]) >= 1
    for uri in data["thumbs"]:
        assert uri.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
            assert image.format == "JPEG" and image.size[1] == 96
    assert [text for text in page.ranking_text if text in LABELS] == names


def test_report_of_a_corrupt_video_fails_without_writing(capsys, tmp_path, media, model):
    target = tmp_path / "report.html"
    code, out, err = run_cli(capsys, "report", media["corrupt"], *model, *label_args(), "-o", target)
    assert code == 1 and f"error: {media['corrupt']}: " in err and "Traceback" not in err
    assert tree(tmp_path) == set()


def test_report_escapes_labels_and_paths(capsys, tmp_path, media, model):
    video = tmp_path / 'a <b>"quoted" & clip.mp4'
    shutil.copy(media["a"], video)
    labels = ['<img src=x onerror="alert(1)">', 'a "quoted" & <i>label</i>', "</script><b>out</b>"]
    target = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", video, *model, *label_args(labels), "--threshold", "0", "-o", target)
    assert code == 0, err
    page = _ReportParser()
    page.feed(target.read_text(encoding="utf-8"))
    assert [tag for tag, _ in page.tags if tag in ("b", "i")] == []
    assert all("src" not in attrs and attrs.get("data-thumb") for tag, attrs in page.tags if tag == "img")
    assert [tag for tag, _ in page.tags].count("script") == 2 and set(page.data()["labels"]) == set(labels)
    assert [text for text in page.ranking_text if text in labels] != []
    assert set(labels) <= set(page.filter_text)


# -- help --------------------------------------------------------------------------------------------


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **commands.choices}


@pytest.mark.parametrize("command", ["", "probe", "classify", "scan", "report"], ids=lambda c: c or "top")
def test_help_lists_every_option(command):
    parser = _parsers()[command]
    argv = [command, "--help"] if command else ["--help"]
    done = subprocess.run(cli_command(*argv), capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    text = done.stdout
    options = [s for action in parser._actions for s in action.option_strings]
    assert options and [s for s in options if s not in text] == []
    for action in parser._actions:
        if not action.option_strings and action.dest != "command":
            assert (action.metavar or action.dest) in text
    if not command:
        assert all(name in text for name in ("probe", "classify", "scan", "report"))


def test_version():
    done = subprocess.run(cli_command("--version"), capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 0 and re.fullmatch(r"actionzs \d+\.\d+\.\d+\S*\n", done.stdout)


_WAIT_POLICY_PROBE = """
import os, sys
from actionzs.cli import main
loaded = "torch" in sys.modules
main(["probe", sys.argv[1]])
import torch
print(loaded, os.environ.get("OMP_WAIT_POLICY"))
"""


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_keeps_idle_encoder_threads_from_spinning(media, preset, expected):
    """Set before torch loads (it reads the variable then); a value the user chose is kept."""
    env = {k: v for k, v in subprocess_env().items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    done = subprocess.run([sys.executable, "-c", _WAIT_POLICY_PROBE, str(media["a"])], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"False {expected}"


def test_unknown_option_is_a_usage_error(capsys, media):
    code, out, err = run_cli(capsys, "classify", media["a"], "-l", "x", "--no-such-option")
    assert code == 2 and "unrecognized arguments: --no-such-option" in err


def test_output_to_a_device_or_pipe_is_written_not_replaced(capsys, tmp_path, media, model):
    """`-o /dev/null` or a pipe must not be replaced by a regular file (the rename of an atomic write)."""
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.setdefault("text", fifo.read_text()))
    reader.start()
    code, out, err = run_cli(capsys, "classify", media["a"], *model, *label_args(), "--format", "json", "-o", fifo)
    reader.join(timeout=30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not a regular file put in its place
    assert json.loads(got["text"])[0]["video"] == str(media["a"])
