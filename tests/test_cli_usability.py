"""The command line's errors and conveniences: inputs checked before the model loads (a folder points
at scan, a missing file fails alone), an unavailable device, a bad dtype and a missing model folder
said plainly, `-o -` on stdout, a missing scan folder leaving nothing behind, stored embeddings
re-scored from the command line by the model that made them, `--start/--end` with true times
(frame and clip encoders), `--help` with defaults and examples, and probe's record key."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from actionzs import FrameEmbeddings, InvalidInputError, ModelLoadError, RunOptions, load_encoder
from actionzs.errors import VideoOptionsError
from actionzs.schema import seconds_of
from actionzs.testing import write_clip
from helpers_cli import run_cli


@pytest.fixture(scope="module")
def clip10(tmp_path_factory):
    """10 s at 10 frames per second: frame i is shown from i/10 s."""
    return write_clip(tmp_path_factory.mktemp("usability") / "ten.mp4", 100, average_fps=10)


#: A model folder that does not exist: a command that got as far as loading it would say so.
NO_MODEL = "./no-such-model-folder"


# -- inputs checked before the model loads ------------------------------------------------------------


def test_classify_of_a_folder_points_at_scan_before_any_model_loads(capsys, tmp_path):
    code, out, err = run_cli(capsys, "classify", tmp_path, "-l", "cat", "--model", NO_MODEL, "--format", "json")
    [record] = json.loads(out)
    assert code == 1 and record["video"] == str(tmp_path) and record["error"] == err.split(": ", 2)[2].strip()
    assert err.startswith(f"error: {tmp_path}: is a directory") and f"`actionzs scan {tmp_path} -o" in err
    assert "no-such-model-folder" not in err and "Traceback" not in err


def test_a_missing_video_fails_alone_and_before_the_model_loads(capsys, tmp_path, clip_dir, clip10):
    code, out, err = run_cli(capsys, "classify", tmp_path / "gone.mp4", "-l", "cat", "--model", NO_MODEL)
    assert code == 1 and "gone.mp4: no such file" in err and "no-such-model-folder" not in err  # nothing left to load it for
    code, out, err = run_cli(capsys, "classify", tmp_path / "gone.mp4", clip10, "-l", "cat", "--model", clip_dir,
                             "--format", "json", "-q")
    records = json.loads(out)
    assert code == 1 and [r["video"] for r in records] == [str(tmp_path / "gone.mp4"), str(clip10)]
    assert records[0]["error"] == "no such file" and records[1]["labels"][0]["label"] == "cat"


def test_report_checks_its_video_before_the_model_loads(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", tmp_path / "gone.mp4", "-l", "cat", "--model", NO_MODEL, "-o", tmp_path / "r.html")
    assert code == 1 and "gone.mp4: no such file" in err and "no-such-model-folder" not in err
    assert not (tmp_path / "r.html").exists()


# -- device, dtype, model folder ----------------------------------------------------------------------


def test_an_unavailable_device_is_a_usage_error_before_the_model_is_looked_up(capsys, clip10):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    code, _, err = run_cli(capsys, "classify", clip10, "-l", "cat", "--model", NO_MODEL, "--device", "cuda")
    assert code == 2 and "device 'cuda': no CUDA device is available" in err
    assert "no-such-model-folder" not in err and "Traceback" not in err


def test_a_bad_dtype_from_python_is_an_invalid_input(clip_dir):
    with pytest.raises(InvalidInputError, match="dtype must be auto, float32, bfloat16 or float16; got 'fp8'"):
        load_encoder(str(clip_dir), dtype="fp8")


@pytest.mark.parametrize("name", ["clip-b32", "./clip-b32", "models/clip-b32", "a/b/c"])
def test_a_missing_model_folder_is_not_looked_up_on_the_hub(capsys, tmp_path, clip10, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # "models/clip-b32": its first part is a folder here, so a folder was meant
    code, _, err = run_cli(capsys, "classify", clip10, "-l", "cat", "--model", name)
    assert code == 1 and "no such folder" in err and str(tmp_path / name) in err
    assert "hf download" not in err and "cannot be reached" not in err


def test_an_owner_name_model_is_still_a_hub_id(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelLoadError, match="not in the local cache"):
        load_encoder("someone/no-such-model")


# -- outputs ------------------------------------------------------------------------------------------


def test_dash_output_writes_to_stdout_and_makes_no_file(capsys, tmp_path, clip_dir, clip10, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "classify", clip10, "-l", "cat", "--model", clip_dir, "--format", "jsonl", "-o", "-", "-q")
    assert code == 0 and json.loads(out)["video"] == str(clip10)
    code, out, err = run_cli(capsys, "scan", clip10, "-l", "cat", "--model", clip_dir, "-o", "-", "-q")
    assert code == 0 and json.loads(out)["video"] == str(clip10) and "-> stdout" in err
    assert not (tmp_path / "-").exists()
    code, _, err = run_cli(capsys, "scan", clip10, "-l", "cat", "--model", clip_dir, "-o", "-", "--resume")
    assert code == 2 and "--resume" in err


def test_search_writes_to_stdout_with_dash(capsys, tmp_path, clip_dir, clip10, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "index", clip10, "--index", "lib.actionzs", "--model", clip_dir, "-q")
    assert code == 0, err
    code, out, err = run_cli(capsys, "search", "a red ball", "--index", "lib.actionzs", "--format", "json", "-o", "-", "--top", "1")
    assert code == 0, err
    [moment] = json.loads(out)
    assert os.path.samefile(moment["video"], clip10) and moment["rank"] == 1
    assert not (tmp_path / "-").exists()
    code, _, err = run_cli(capsys, "classify", "--index", "lib.actionzs", "-l", "cat", "--end", "5")
    assert code == 2 and "lib.actionzs holds whole files" in err


def test_scan_of_a_missing_folder_leaves_no_output_behind(capsys, tmp_path):
    out = tmp_path / "results.jsonl"
    code, _, err = run_cli(capsys, "scan", tmp_path / "no-such-folder", "-l", "cat", "--model", NO_MODEL, "-o", out)
    assert code == 2 and "no-such-folder: no such folder or file" in err
    assert not out.exists()


# -- stored embeddings re-scored ------------------------------------------------------------------------


def test_stored_embeddings_are_rescored_by_the_model_that_made_them(capsys, tmp_path, clip_dir, siglip_dir, clip10):
    store = tmp_path / "store"
    argv = ["-l", "cat", "-l", "a red ball", "--segments", "--format", "json", "-q"]
    code, out, _ = run_cli(capsys, "classify", clip10, "--model", clip_dir, "--save-embeddings", store, *argv)
    assert code == 0
    [first] = json.loads(out)
    [saved] = sorted(store.glob("*.npz"))
    for given in ([saved], ["--embeddings", store]):  # no --model: the one recorded in them
        code, out, err = run_cli(capsys, "classify", *given, *argv)
        [again] = json.loads(out)
        assert code == 0, err
        assert again["video"] == str(clip10) and again["labels"] == first["labels"] and again["events"] == first["events"]
        assert again["segments"] == first["segments"]
    code, _, err = run_cli(capsys, "classify", saved, "--model", siglip_dir, *argv)
    assert code == 2 and f"embeddings are from {str(clip_dir)!r}" in err and "embed the video again" in err
    code, _, err = run_cli(capsys, "classify", saved, "--start", "2", *argv)
    assert code == 2 and "stored embeddings keep the part they were made of" in err


def test_a_file_that_is_no_stored_embeddings_is_refused_naming_it(capsys, tmp_path, clip_dir):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK not really")
    code, _, err = run_cli(capsys, "classify", bad, "-l", "cat", "--model", clip_dir)
    assert code == 2 and f"{bad}: not stored embeddings" in err
    code, _, err = run_cli(capsys, "classify", "--embeddings", tmp_path / "none", "-l", "cat", "--model", clip_dir)
    assert code == 2 and "no such folder" in err


# -- part of a video ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90.5", 90.5), ("01:30", 90.0), ("00:01:30.250", 90.25),
                                           ("1:02:03.5", 3723.5)])
def test_times_read_as_seconds_or_hh_mm_ss(text, seconds):
    assert seconds_of(text) == seconds


@pytest.mark.parametrize("text", ["", "a", "1:60", "1.5:00", ":30", "-1", "1:2:3:4"])
def test_bad_times_are_refused(text):
    with pytest.raises(ValueError, match="is not a time"):
        seconds_of(text)


def test_the_part_of_a_timeline_and_its_windows():
    from actionzs import sampling

    timeline = sampling.Timeline(np.arange(100) / 10, 10.0, keyframes=np.arange(0, 100, 25))
    assert sampling.part(timeline, 2.5, None) == (2.5, 10.0) and sampling.part(timeline, 0, 99) == (0, 10.0)
    with pytest.raises(VideoOptionsError, match="at or past the end of the video"):
        sampling.part(timeline, 10.0, None)
    shifted = sampling.windows(9.0, 2.0, 1.5, start=2.5)
    plain = sampling.windows(6.5, 2.0, 1.5)
    assert [(s.start_seconds, s.end_seconds) for s in shifted] == pytest.approx(
        [(2.5 + s.start_seconds, 2.5 + s.end_seconds) for s in plain])
    assert shifted[-1].end_seconds == 9.0
    inside = sampling.keyframes_in(timeline, 2.0, 7.6)
    assert inside.indices.tolist() == [25, 50, 75] and inside.pts_seconds.tolist() == [2.5, 5.0, 7.5]
    with pytest.raises(VideoOptionsError, match="no keyframe lies between 5.5 s and 7 s"):
        sampling.keyframes_in(timeline, 5.5, 7.0)


def test_start_and_end_checked_with_the_other_options():
    assert RunOptions(start="00:00:03", end="5.5").start == 3.0
    with pytest.raises(InvalidInputError, match=r"end \(2 s\) must be after start \(3 s\)"):
        RunOptions(start=3, end=2)
    with pytest.raises(InvalidInputError, match="start must be a number of seconds >= 0"):
        RunOptions(start=-1)


def test_part_of_a_video_is_sampled_and_windowed_inside_it_at_true_times(capsys, tmp_path, clip_dir, clip10):
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "classify", clip10, "-l", "cat", "-l", "dog", "--model", clip_dir, "--segments",
                             "--start", "00:00:03.2", "--end", "7", "--window", "2", "--stride", "1", "--threshold", "0",
                             "--save-embeddings", store, "--format", "json", "-q")
    assert code == 0, err
    [record] = json.loads(out)
    assert record["duration"] == 10.0  # the video's, not the part's
    spans = [(s["start"], s["end"]) for s in record["segments"]]
    assert spans[0] == (3.2, 5.2) and spans[-1][1] == 7.0
    assert all(3.2 <= a < b <= 7.0 for a, b in spans)
    assert record["events"] and all(3.2 <= e["start"] < e["end"] <= 7.0 for e in record["events"])
    [saved] = store.glob("*.npz")
    embeddings = FrameEmbeddings.load(saved)
    # One frame a second from 3.2 s: those on screen at the steps' centres 3.7, 4.7, 5.7 and 6.6 (the last step, cut at 7).
    assert embeddings.indices.tolist() == [37, 47, 57, 66]
    assert np.allclose(embeddings.pts_seconds, embeddings.indices / 10)  # each frame's own time
    assert embeddings.sampling == {"fps": 1.0, "start": 3.2, "end": 7.0}


def test_a_start_past_the_end_is_the_videos_error(capsys, clip_dir, clip10):
    code, out, err = run_cli(capsys, "classify", clip10, "-l", "cat", "--model", clip_dir, "--start", "12", "--format", "json")
    assert code == 2 and "--start 12 s is at or past the end of the video (10 s)" in err


def test_xclip_clips_lie_inside_the_part(xclip_dir, clip10):
    from actionzs import ZeroShotVideoClassifier

    classifier = ZeroShotVideoClassifier(load_encoder(str(xclip_dir), dtype="float32"), batch_size=8)
    embeddings = classifier.embed(str(clip10), segments=True, window=2.0, stride=2.0, start=4.0, end=8.5)
    spans = embeddings.spans.tolist()
    assert spans[0] == [4.0, 8.5] and spans[1:] == [[4.0, 6.0], [6.0, 8.0], [8.0, 8.5]]
    assert 40 <= embeddings.indices.min() and embeddings.indices.max() < 85
    result = classifier(embeddings, candidate_labels=["cat", "dog"], segments=True, window=2.0, stride=2.0)
    assert [(s["start"], s["end"]) for s in result["segments"]] == [(4.0, 6.0), (6.0, 8.0), (8.0, 8.5)]
    with pytest.raises(VideoOptionsError, match="at or past the end"):
        classifier.embed(str(clip10), segments=True, start=10.0)


# -- help and probe -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["probe", "classify", "scan", "report", "index", "search", "eval", "calibrate"])
def test_help_shows_examples_and_defaults(command):
    from test_docs import _subcommands

    text = _subcommands()[command].format_help()
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  actionzs {command} ") for line in examples if line.strip())
    if command in ("classify", "search"):
        assert "(default table)" in " ".join(text.split())
    if command == "search":
        assert "moments per query (default 20)" in text


def test_probe_names_the_file_as_classify_does(capsys, tmp_path, clip10):
    code, out, _ = run_cli(capsys, "probe", "--json", clip10, tmp_path / "gone.mp4")
    good, bad = json.loads(out)
    assert code == 1 and good["video"] == str(clip10) == good["path"] and bad["video"] == str(tmp_path / "gone.mp4")
    assert os.path.basename(good["video"]) == "ten.mp4"


def test_a_tables_last_record_ends_its_line_even_when_it_is_an_error():
    """In a log, what is printed next must not run into the table's last line."""
    from actionzs.output import render

    text = render([{"video": "a.mp4", "error": "no such file"}, {"video": "b.mp4", "error": "not a video"}], "table")
    assert text.endswith("\n")
    assert "no such file\n" in text and text.rstrip("\n").endswith("b.mp4: ERROR not a video")
