"""Progress in seconds of footage: the classifier's hook as batches are encoded (true frame times,
one and several decoders, a list of videos), the CLI's `Footage` accounting, bars on a terminal that
messages never tear, plain lines in a log, and silence with --quiet."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import pytest

from actionzs import ZeroShotVideoClassifier, load_encoder
from actionzs.cli.progress import Footage
from actionzs.testing import write_clip
from helpers_cli import subprocess_env


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("progress")
    return [write_clip(folder / "a.mp4", 100, average_fps=10), write_clip(folder / "b.mp4", 60, average_fps=10)]


@pytest.fixture(scope="module")
def encoder(clip_dir):
    return load_encoder(str(clip_dir), dtype="float32")


def _heard(encoder, videos, **kwargs):
    calls = []
    classifier = ZeroShotVideoClassifier(encoder, batch_size=2, progress=lambda *call: calls.append(call), **kwargs)
    embedded = [e for _, e in classifier.embed_each(videos, segments=True, fps=1.0)]
    return calls, embedded


@pytest.mark.parametrize("decode_workers", [1, 2])
def test_the_hook_hears_each_batch_at_its_last_frames_true_time(encoder, clips, decode_workers):
    calls, [embeddings] = _heard(encoder, [str(clips[0])], decode_workers=decode_workers)
    video = str(clips[0])
    assert all(name == video and total == pytest.approx(10.0) for name, _, total in calls)
    done = [seconds for _, seconds, _ in calls]
    # One report per batch of two frames (at the time of its second frame, as decoded), then the end.
    pts = embeddings.pts_seconds
    expected = [float(pts[min(k + 1, len(pts) - 1)]) for k in range(0, len(pts), 2)] + [embeddings.duration]
    assert done == pytest.approx(expected)
    assert done == sorted(done)


def test_a_list_is_heard_video_by_video_in_order(encoder, clips):
    calls, embedded = _heard(encoder, [str(c) for c in clips])
    names = [name for name, _, _ in calls]
    first_b = names.index(str(clips[1]))
    assert set(names[:first_b]) == {str(clips[0])} and set(names[first_b:]) == {str(clips[1])}
    assert [c for c in calls if c[1] == c[2]] == [(str(clips[0]), 10.0, 10.0), (str(clips[1]), 6.0, 6.0)]


def test_cached_embeddings_are_reported_done_at_once(encoder, clips):
    calls = []
    classifier = ZeroShotVideoClassifier(encoder, batch_size=2)
    classifier.embed(str(clips[1]), segments=True)
    classifier.progress = lambda *call: calls.append(call)
    classifier.embed(str(clips[1]), segments=True)
    assert calls == [(str(clips[1]), 6.0, 6.0)]


def test_footage_counts_true_lengths_and_failed_videos_as_done():
    footage = Footage([("a", 100.0), ("b", 50.0), ("c", 10.0)], show=False)
    footage("a", 40.0, 90.0)  # the true length replaces the header's
    assert (footage.done_seconds, footage.total_seconds) == (40.0, 150.0)
    footage("a", 30.0, 90.0)  # never goes back
    assert footage.done_seconds == 40.0
    footage.finished("a", 90.0)
    footage.finished("b")  # failed before decoding: its expected length counts as done
    assert (footage.done_seconds, footage.total_seconds, footage.videos_done) == (140.0, 150.0, 2)
    footage("c", 5.0, 10.0)
    footage.finished("c", 10.0)
    assert footage.done_seconds == footage.total_seconds == 150.0


def _run_on_terminal(argv, cwd) -> tuple[int, str]:
    """`python -m actionzs ARGV` with stderr on a pseudo-terminal (stdout piped): (exit, what the terminal got)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # rows, columns: a terminal's size
    env = {**subprocess_env(), "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "actionzs", *map(str, argv)], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    proc.stdout.close()
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan")
    write_clip(root / "a.mp4", 120, average_fps=10)
    (root / "broken.mp4").write_bytes(b"not a video at all")
    write_clip(root / "c.mp4", 80, average_fps=10)
    return root


@pytest.mark.slow  # a real process per run, each loading the model
def test_on_a_terminal_bars_show_footage_and_messages_are_lines_of_their_own(clip_dir, folder, tmp_path):
    code, terminal = _run_on_terminal(
        ["scan", folder, "-l", "cat", "--model", clip_dir, "--segments", "--batch-size", "2", "-o", tmp_path / "out.jsonl"],
        tmp_path)
    assert code == 1, terminal
    assert "footage:" in terminal and "20/20 s" in terminal  # the run's bar, in seconds of footage
    assert "3/3 videos" in terminal
    error = f"error: {folder / 'broken.mp4'}:"
    # tqdm clears the bars' line before a message and draws them again after it.
    lines = terminal.split("\n")
    [line] = [ln for ln in lines if error in ln]
    assert line.lstrip("\r").replace("\x1b[A", "").strip().startswith(error), repr(line)
    assert any(ln.startswith("scanned 3 videos") for ln in lines)


@pytest.mark.slow  # a real process per run, each loading the model
def test_in_a_log_progress_is_plain_lines_only_when_asked(clip_dir, folder, tmp_path):
    base = [sys.executable, "-m", "actionzs", "scan", str(folder), "-l", "cat", "-l", "dog", "--model", str(clip_dir)]
    quiet_log = subprocess.run([*base, "-o", str(tmp_path / "one.jsonl")], capture_output=True, text=True,
                               env=subprocess_env(), timeout=300)
    assert "progress:" not in quiet_log.stderr and "\r" not in quiet_log.stderr
    asked = subprocess.run([*base, "-o", str(tmp_path / "two.jsonl"), "--progress"], capture_output=True, text=True,
                           env=subprocess_env(), timeout=300)
    assert "\r" not in asked.stderr
    lines = asked.stderr.splitlines()
    assert [ln for ln in lines if ln.startswith("progress: 20/20 s of footage (100%), 3/3 videos")], asked.stderr
    assert all(ln.startswith(("progress:", "error:", "scanned")) for ln in lines), asked.stderr


@pytest.mark.slow  # a real process per run, each loading the model
def test_quiet_draws_nothing_even_on_a_terminal(clip_dir, folder, tmp_path):
    code, terminal = _run_on_terminal(
        ["classify", folder / "a.mp4", "-l", "cat", "-l", "dog", "--model", clip_dir, "-q", "--progress", "-o", tmp_path / "r.json",
         "--format", "json"], tmp_path)
    assert code == 0 and terminal.strip() == "", terminal
    assert json.loads((tmp_path / "r.json").read_text())[0]["duration"] == pytest.approx(12.0)


def test_log_records_and_messages_go_above_the_bars_as_lines_of_their_own(monkeypatch):
    """A warning logged (or a message said) while the bars show: tqdm clears them, writes the line
    and draws them again, so the line is whole and the bars stay below it."""
    import io
    import logging

    import actionzs.cli.progress as progress
    from actionzs.cli.common import say

    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "_is_terminal", lambda stream: True)
    handler = progress.MessageHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("actionzs.test-progress")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with Footage([("a.mp4", 10.0)], show=None) as footage:
            footage("a.mp4", 4.0, 10.0)
            logger.warning("a warning mid-run")
            say("error: b.mp4: no such file")
            footage.finished("a.mp4", 10.0)
    finally:
        logger.removeHandler(handler)
    text = terminal.getvalue()
    for line in ("WARNING: a warning mid-run\n", "error: b.mp4: no such file\n"):
        at = text.index(line)
        # It starts a line of its own: after a line end, a return or the cursor moved up to a cleared line.
        assert text[:at].endswith(("\n", "\r", "\r\x1b[A")), repr(text[at - 20 : at])
    assert "footage: 100%" in text.rsplit("error: b.mp4", 1)[1]  # the bars drawn again below


def test_with_start_and_end_only_the_part_counts_from_its_start():
    footage = Footage([("a", 100.0), ("b", 20.0)], show=False, part=(30.0, 60.0))
    assert footage.total_seconds == 30.0  # b ends before the part begins
    footage("a", 45.0, 100.0)  # a frame at 45 s: half the part
    assert (footage.done_seconds, footage.total_seconds) == (15.0, 30.0)
    footage("a", 100.0, 100.0)
    footage.finished("a", 100.0)
    footage.finished("b", 20.0)
    assert (footage.done_seconds, footage.total_seconds, footage.videos_done) == (30.0, 30.0, 2)


@pytest.mark.slow  # a real process per command, each loading the model
@pytest.mark.parametrize("command", ["eval", "calibrate"])
def test_eval_and_calibrate_show_their_footage_too(clip_dir, folder, tmp_path, command):
    """Every command that decodes says how far it is, in seconds of footage."""
    good = ["a.mp4", "c.mp4"]
    if command == "eval":
        dataset = tmp_path / "dataset"
        for label, name in zip(("cat", "dog"), good):
            (dataset / label).mkdir(parents=True)
            (dataset / label / name).symlink_to(folder / name)
        argv = ["eval", str(dataset), "-o", str(tmp_path / "metrics.json")]
    else:
        examples = tmp_path / "examples.csv"
        examples.write_text("path,label,start,end,positive\n" + "".join(
            f"{folder / name},cat,,,{positive}\n" for name, positive in zip(good, (1, 0))))
        argv = ["calibrate", "--examples", str(examples), "-o", str(tmp_path / "thresholds.yaml")]
    run = subprocess.run([sys.executable, "-m", "actionzs", *argv, "--model", str(clip_dir), "--template", "a video of {}.",
                          "--progress"], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    finals = [line for line in run.stderr.splitlines() if line.startswith("progress: ")]
    assert finals and f"/{len(good)} videos" in finals[-1] and " s of footage (100%)" in finals[-1], run.stderr
