"""Every hostile input through the real command line, each judged against the truth.

    python tests/hostile.py [--keep DIR] [-v] [-j N]

Writes every hostile input of tests/README.md ("Hostile inputs and what they get") and of issue #11
into a temporary folder (DIR with --keep, left there), runs each through `python -m actionzs probe /
classify / scan / report` with a tiny random checkpoint built in code, and judges what came back:

* never a traceback, never a death by signal, never a hang;
* the exit status the case calls for: 0 for an input that should work, 1 for an unreadable video
  or model, 2 for invalid input (labels, options, files of settings);
* an error names the file (or the option) and gives the reason (`error: PATH: reason`);
* an input that should work gives the right answer: `probe --json`'s frame count, duration and
  size are what PyAV presents when it decodes the default video stream start to end; every frame's
  time (saved embeddings, sampled above the video's rate, so every frame once) is that frame's
  time; where it matters, each frame is the right picture (its embedding is nearest the embedding
  of the true frame, written as a PNG); JSON output parses strictly (no NaN).

With -v one line per case (`ok   name: what happened` / `FAIL name: expected X, got Y`); always
the failing cases, then `N tried, M handled` as the last line. Exit status 0 only when every case
tried was handled. Importable: `run_all(folder)` returns the outcomes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for _path in (str(TESTS), str(ROOT)):  # this checkout's actionzs and test helpers, before any installed one
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402

from actionzs.output import printable  # noqa: E402

LABELS = ["running", "jumping"]
LABEL_ARGS = ["-l", "running", "-l", "jumping"]
TEMPLATE = ["--template", "a video of {}."]
#: Classify options of the batches: "every" embeds every frame of a test clip once (an fps above
#: the clip's own rate), "sparse" a frame every 2/3 s (reads that seek).
SAMPLING = {"every": ["--segments", "--fps", "1000", "--format", "json"],
            "sparse": ["--segments", "--fps", "1.5", "--format", "json"]}
#: Words one of which a report of missing frames (damage) says.
GAP_WORDS = ("gap", "damaged", "missing", "corrupt", "skipped", "lost", "could not be decoded", "undecodable")
TIMEOUT = 180.0


# -- judging -------------------------------------------------------------------------------------------


class Unhandled(Exception):
    """A case not handled: what it called for and what happened."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"expected {expected}, got {got}")


class Skipped(Exception):
    """A case that cannot be tried here (the reason is printed)."""


def expect(condition: bool, expected: str, got: str | Callable[[], str]) -> None:
    if not condition:
        raise Unhandled(expected, got() if callable(got) else got)


def short(text: str, limit: int = 160) -> str:
    text = text.strip().replace("\n", " | ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def strict_json(text: str, what: str = "stdout"):
    """json.loads that refuses NaN and infinities (which are not JSON)."""

    def constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as exc:
        raise Unhandled(f"strict JSON on {what}", f"{exc}: {short(text, 80)!r}") from None


@dataclass
class Run:
    """One finished command line."""

    argv: list[str]
    code: int | None  # exit status; negative: killed by that signal; None: timed out (killed)
    out: str
    err: str
    seconds: float
    peak_mb: float

    def problem(self) -> str | None:
        """What makes this run a crash whatever the case: a hang, a signal, a traceback."""
        if self.code is None:
            return f"no exit within the time limit (killed after {self.seconds:.0f} s)"
        if self.code < 0:
            return f"death by signal {signal.Signals(-self.code).name}"
        if "Traceback (most recent call last)" in self.err:
            lines = [line for line in self.err.splitlines() if line.strip()]
            return f"a traceback ({short(lines[-1] if lines else '', 120)})"
        return None

    def sane(self) -> Run:
        problem = self.problem()
        expect(problem is None, "no crash", problem or "")
        return self

    def exit(self, code: int) -> Run:
        self.sane()
        expect(self.code == code, f"exit {code}", lambda: f"exit {self.code} ({short(self.err) or 'nothing on stderr'})")
        return self

    def error_line(self, name: str, reason: str) -> str:
        """The `error: NAME: ...` line on stderr (NAME as the terminal shows it) holding `reason`."""
        start = f"error: {printable(name)}: "
        lines = [line for line in self.err.splitlines() if line.startswith(start)]
        expect(bool(lines), f"a line `{start}...` on stderr", short(self.err) or "nothing on stderr")
        expect(any(reason in line for line in lines), f"{reason!r} in `{short(lines[0], 60)}`", short(lines[0]))
        return next(line for line in lines if reason in line)


class Runner:
    """Runs `python -m actionzs ...` (this checkout's), at most `jobs` at once."""

    def __init__(self, cwd: Path, jobs: int):
        from helpers_cli import subprocess_env

        self.cwd = cwd
        self.slots = threading.Semaphore(jobs)
        self.cpu_seconds: list[float] = []  # of each command line run
        self.env = subprocess_env()
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.env.setdefault("OMP_NUM_THREADS", "1")  # several runs share the cores

    def cli(self, *argv, shell: str | None = None, timeout: float = TIMEOUT, during: Callable | None = None) -> Run:
        """`python -m actionzs ARGV`; `shell` wraps it (`exec "$@" >&-` closes stdout); `during`
        is called with the process while it runs."""
        command = [sys.executable, "-m", "actionzs", *map(os.fspath, argv)]
        if shell:
            command = ["/bin/sh", "-c", shell, "sh", *command]
        return self.process(command, timeout=timeout, during=during)

    def python(self, code: str, *argv, timeout: float = TIMEOUT) -> Run:
        return self.process([sys.executable, "-c", code, *map(os.fspath, argv)], timeout=timeout)

    def process(self, command: list[str], *, timeout: float, during: Callable | None = None, slot: bool = True) -> Run:
        with self.slots if slot else contextlib.nullcontext():
            started = time.monotonic()
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=self.cwd, env=self.env, preexec_fn=_default_sigint)
            streams: dict[str, bytes] = {}
            readers = [threading.Thread(target=lambda n=n, f=f: streams.__setitem__(n, f.read()), daemon=True)
                       for n, f in (("out", proc.stdout), ("err", proc.stderr))]
            for reader in readers:
                reader.start()
            timed_out = threading.Event()

            def kill():  # not proc.kill(): its poll() could reap the child before wait4 below
                timed_out.set()
                os.kill(proc.pid, signal.SIGKILL)

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                if during:
                    during(proc)
            finally:
                _, status, usage = os.wait4(proc.pid, 0)  # the run's own peak memory, not its siblings'
                timer.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
            for reader in readers:
                reader.join(10)
            proc.stdout.close()
            proc.stderr.close()
            self.cpu_seconds.append(usage.ru_utime + usage.ru_stime)
            return Run(command, None if timed_out.is_set() else proc.returncode,
                       streams.get("out", b"").decode("utf-8", "replace"), streams.get("err", b"").decode("utf-8", "replace"),
                       time.monotonic() - started, usage.ru_maxrss / 1024)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# -- cases ------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    check: Callable[[World], str]  # says what happened; raises Unhandled (or Skipped)
    heavy: bool = False  # loads the model: started first


@dataclass
class Outcome:
    name: str
    handled: bool | None  # None: skipped
    text: str
    seconds: float = 0.0


# -- video cases: probe alone, and one classify of many (a batch) ------------------------------------


@dataclass
class VideoCase:
    """A file given to `probe --json` and, in a batch, to `classify`; judged on both."""

    name: str
    path: str
    expect: str  # "ok" or "error"
    reason: str = ""  # for an error: a piece of the reason
    classify_reason: str | None = None  # classify's, where it reads the file otherwise (a .npz: stored embeddings)
    backend: str = "auto"
    sampling: str = "every"  # or "sparse" (a key of SAMPLING)
    frames: bool = False  # also check each frame's picture against the true frame
    written: int | None = None  # frames written: a true frame showing another index is damage, not checked
    gap: bool = False  # damaged: where frames are missing, stderr must say so
    quarter_turns: int = 0  # the true pictures are shown turned (a rotation tag)
    image: tuple[np.ndarray, np.ndarray] | None = None  # a still image: (as a viewer shows it, a plain convert("RGB"))
    judge: str = "plain"  # or "not-silently-wrong" (an error, a warning or the right frames), "ok-or-named" (AV1)
    batch: bool = True
    max_mb: float | None = None  # the most memory a run may take
    truth: object = None  # helpers_hostile.Truth
    truth_vectors: np.ndarray | None = None  # the embeddings of the true pictures (of `frames`, or of `image`)


@dataclass
class Batch:
    """The records of one or more classify runs over many files, and what they said on stderr."""

    records: dict[str, dict]
    runs: list[Run]

    def lines_naming(self, path: str) -> list[str]:
        shown = printable(path)
        return [line for run in self.runs for line in run.err.splitlines() if shown in line]


def classify_batch(world: World, paths: list[str], backend: str, sampling: str, tag: str) -> Batch:
    """`classify` every path at once with `sampling`, the embeddings saved; a run that crashes is
    split in halves (down to single files), so one bad file cannot hide the others' results."""
    embeddings = world.path("embeddings", tag)
    run = world.cli("classify", *paths, "--model", world.model, *LABEL_ARGS, *TEMPLATE, *SAMPLING[sampling],
                    "--backend", backend, "--save-embeddings", embeddings, timeout=600)
    problem = run.problem()
    records = None
    if problem is None:
        try:
            records = {r["video"]: r for r in strict_json(run.out)}
        except (Unhandled, TypeError, KeyError) as exc:
            problem = f"no JSON list of records on stdout ({exc})"
    if records is not None and set(records) == set(paths):
        return Batch(records, [run])
    if len(paths) == 1:
        return Batch({paths[0]: {"video": paths[0], "crash": problem or f"no record of it in {short(run.out, 80)}"}}, [run])
    half = len(paths) // 2
    first = classify_batch(world, paths[:half], backend, sampling, tag + "a")
    second = classify_batch(world, paths[half:], backend, sampling, tag + "b")
    return Batch({**first.records, **second.records}, first.runs + second.runs)


def check_video(world: World, case: VideoCase) -> str:
    if case.judge == "not-silently-wrong":
        return _not_silently_wrong(world, case)
    probe = world.cli("probe", "--json", "--backend", case.backend, "--", case.path, timeout=120)
    if case.max_mb is not None:
        expect(probe.peak_mb <= case.max_mb, f"at most {case.max_mb:.0f} MB", f"{probe.peak_mb:.0f} MB")
    if case.expect == "error":
        return _error(world, case, probe)
    if case.judge == "ok-or-named":
        try:
            return _works(world, case, probe)
        except Unhandled:
            if probe.code != 1:
                raise
            named = "av1" in probe.err.lower() and "no video stream" not in probe.err
            expect(named, "the right frames, or an error that names the codec (AV1)", f"exit 1, {short(probe.err, 200)}")
            return f"a clear error: {short(probe.err, 100)}"
    return _works(world, case, probe)


def _record(world: World, case: VideoCase) -> dict:
    record = world.batch(case).records[case.path]
    expect("crash" not in record, "classify not to crash on it", record.get("crash", ""))
    return record


def _error(world: World, case: VideoCase, probe: Run) -> str:
    probe.exit(1)
    line = probe.error_line(case.path, case.reason)
    records = strict_json(probe.out)
    expect(isinstance(records, list) and len(records) == 1 and records[0].get("video") == case.path
           and case.reason in records[0].get("error", ""), f"probe's JSON [{{video, error: ...{case.reason}...}}]",
           short(probe.out, 100))
    if case.batch:
        record = _record(world, case)
        reason = case.reason if case.classify_reason is None else case.classify_reason
        expect(set(record) == {"video", "error", "schema_version", "settings"} and reason in record["error"],
               f"classify's record {{video, error: ...{reason}...}}", short(json.dumps(record), 100))
    return f"exit 1, {short(line[len('error: '):], 110)}"


def _works(world: World, case: VideoCase, probe: Run) -> str:
    truth = case.truth
    probe.exit(0)
    records = strict_json(probe.out)
    expect(isinstance(records, list) and len(records) == 1 and "error" not in records[0], "one probe record",
           short(probe.out, 100))
    info = records[0]
    expect(info.get("path") == case.path, f"the record to name {case.path!r}", repr(info.get("path")))
    expect(info["num_frames"] == truth.count, f"{truth.count} frames (as PyAV presents them)", f"{info['num_frames']}")
    low, high = truth.span, truth.span + truth.last_duration
    expect(low - 1e-6 < info["duration"] <= high + 1e-3, f"a duration in ({low:.3f}, {high:.3f}] s",
           f"{info['duration']} s (fps {info.get('fps')})")
    expect((info["width"], info["height"]) == (truth.width, truth.height), f"{truth.width}x{truth.height}",
           f"{info['width']}x{info['height']}")
    said = f"{truth.count} frames, {info['duration']} s, {truth.width}x{truth.height}"
    if not case.batch:
        return said
    record = _record(world, case)
    expect("error" not in record, "classify to give a result", f"error: {short(record.get('error', ''), 120)}")
    expect(sorted(item["label"] for item in record["labels"]) == sorted(LABELS), f"the labels {LABELS}",
           str(record["labels"]))
    expect(abs(record["duration"] - info["duration"]) < 1e-3, f"classify's duration {info['duration']}", str(record["duration"]))
    with np.load(record["embeddings"]) as stored:
        indices, times, vectors = stored["indices"], stored["pts_seconds"], stored["vectors"]
    if case.sampling == "every":
        expect(indices.tolist() == list(range(truth.count)), f"every frame embedded once (0..{truth.count - 1})",
               short(str(indices.tolist()), 80))
    else:
        expect(bool(np.all(np.diff(indices) > 0)) and 0 <= indices.min() and indices.max() < truth.count,
               f"increasing frame indices within 0..{truth.count - 1}", short(str(indices.tolist()), 80))
    true_times = np.asarray(truth.times)[indices]
    off = np.flatnonzero(np.abs(times - true_times) > 2e-3)
    expect(len(off) == 0, "each frame at its own time",
           lambda: f"frame {indices[off[0]]} at {times[off[0]]:.3f} s, PyAV shows it at {true_times[off[0]]:.3f} s "
                   f"({len(off)} frames off)")
    if case.frames:
        _right_pictures(world, case, indices, vectors)
        said += ", each frame the right picture"
    if case.image is not None:
        shown, plain = case.truth_vectors
        right, wrong = float(vectors[0] @ shown), float(vectors[0] @ plain)
        expect(right > wrong, "the picture as a viewer shows it", "the picture read another way (e.g. clipped or unturned)")
        said += ", the picture as shown"
    if case.gap and (truth.has_gap() or truth.count < (case.written or 0)):
        reports = [line for line in world.batch(case).lines_naming(case.path)
                   if any(word in line.lower() for word in GAP_WORDS)]
        expect(bool(reports), f"a report on stderr that frames are missing ({truth.count} of {case.written or truth.packets} decode)",
               short(" | ".join(world.batch(case).lines_naming(case.path))) or "nothing naming the file")
        said += f", gap reported ({short(reports[0], 60)})"
    return said


def _right_pictures(world: World, case: VideoCase, indices, vectors) -> None:
    """Each embedded frame must be nearest the true frame of its index (compared by the index
    drawn into the pictures, so a repeated picture is no error)."""
    truths = case.truth_vectors
    drawn = case.truth.indices
    for index, vector in zip(indices.tolist(), vectors):
        if (index >= len(truths) or index in case.truth.concealed
                or (case.written is not None and not 0 <= drawn[index] < case.written)):
            continue  # concealed damage: no clean picture to compare with
        nearest = int(np.argmax(truths @ vector))
        expect(drawn[nearest] == drawn[index], f"frame {index} to show index {drawn[index]}",
               f"the picture of frame {nearest} (index {drawn[nearest]})")


def _not_silently_wrong(world: World, case: VideoCase) -> str:
    record = _record(world, case)
    if "error" in record:
        return f"an error: {short(record['error'], 100)}"
    warnings = [line for line in world.batch(case).lines_naming(case.path) if "warning" in line.lower()]
    if warnings:
        return f"a warning: {short(warnings[0], 100)}"
    with np.load(record["embeddings"]) as stored:
        indices, vectors = stored["indices"], stored["vectors"]
    try:
        _right_pictures(world, case, indices, vectors)
    except Unhandled as exc:
        raise Unhandled("an error, a warning or the right frames", f"wrong frames, silently ({str(exc)[9:]})") from None
    return "the right frames"


# -- the world: files, model, batches, reference pictures ----------------------------------------------


class World:
    def __init__(self, folder: Path, jobs: int):
        self.folder = folder
        self.runner = Runner(folder, jobs)
        self.cli = self.runner.cli
        self.model = folder / "model"
        self.videos: list[VideoCase] = []
        self.skipped: list[tuple[str, str]] = []
        self.files: dict[str, Path] = {}
        self._batches: dict[tuple[str, str, str], concurrent.futures.Future] = {}

    def path(self, *parts) -> Path:
        return self.folder.joinpath(*map(str, parts))

    def start_batches(self, pool: concurrent.futures.Executor) -> None:
        """Submit the classify batches: one run over the files of each backend and sampling."""
        groups: dict[tuple[str, str], list[str]] = {}
        for case in self.videos:
            key = (case.backend, case.sampling)
            if case.batch and case.path not in groups.setdefault(key, []):
                groups[key].append(case.path)
        for (backend, sampling), paths in groups.items():
            future = pool.submit(classify_batch, self, paths, backend, sampling, f"{backend}-{sampling}")
            for path in paths:
                self._batches[(backend, sampling, path)] = future

    def batch(self, case: VideoCase) -> Batch:
        return self._batches[(case.backend, case.sampling, case.path)].result()


def embed_pictures(model: Path, pictures: Sequence[np.ndarray]) -> np.ndarray:
    """Unit-length image embeddings of RGB pictures, by the checkpoint through plain transformers
    (its own image processor): the reference each decoded frame is compared with."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel

    clip, processor = CLIPModel.from_pretrained(model).eval(), AutoImageProcessor.from_pretrained(model)
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(pictures), 64):
            images = [Image.fromarray(p) for p in pictures[start : start + 64]]
            out = clip.get_image_features(**processor(images=images, return_tensors="pt"))
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            vectors.append(torch.nn.functional.normalize(out.float(), dim=-1).numpy())
    return np.concatenate(vectors)


# -- building every input ----------------------------------------------------------------------------------


def build(world: World) -> None:
    """Write the checkpoints and every hostile input, and decode the truth of each."""
    import av
    from PIL import Image, ImageOps

    import test_reliability as reliability
    from actionzs.testing import write_clip
    from helpers_cli import write_audio_only
    from helpers_hostile import (
        claim_frame_rate_mkv,
        damage_middle,
        odd_images,
        remux_with_edit_list,
        truth,
        write_audio_with_cover,
        write_npz_bomb,
        write_png_bomb,
        write_two_video_streams,
    )
    from helpers_models import make_clip
    from helpers_video import encode

    folder, add, files = world.folder, world.videos.append, world.files
    make_clip(world.model)
    _bad_checkpoints(world)

    # The inputs of test_reliability.py, made by its own builder, with its expectations; where
    # tests/README.md gives the reason more exactly, that is asked for.
    hostile = folder / "hostile"
    hostile.mkdir()
    reliability._build(hostile)
    files["hostile"] = hostile
    sharper = {f"truncated-{p}": "moov atom" for p in (10, 50, 90)} | {"text-as-mp4": "not a readable video"}
    for case in reliability.CASES:
        rotated = case.id == "rotation-90"
        add(VideoCase(case.id, str(hostile / case.name), case.expect, sharper.get(case.id, case.detail),
                      quarter_turns=1 if rotated else 0, frames=rotated))

    new = folder / "new"
    new.mkdir()
    small = dict(width=64, height=48, fps=10)
    b_frames = {"g": "10", "bf": "3"}
    clip = dict(average_fps=10, width=64, height=48)

    os.mkfifo(new / "a pipe.mp4")
    add(VideoCase("fifo-named-mp4", str(new / "a pipe.mp4"), "error", "not a regular file"))
    (new / "fake.png").write_text("not a picture")
    add(VideoCase("text-named-png", str(new / "fake.png"), "error", "not a readable image"))
    write_audio_only(new / "audio only.m4a", "aac")
    add(VideoCase("audio-only-m4a", str(new / "audio only.m4a"), "error", "no video stream"))
    not_utf8 = os.fsdecode(os.fsencode(new) + b"/caf\xe9.mp4")
    shutil.copy(write_clip(folder / "plain.mp4", 5, **clip), os.fsencode(not_utf8))
    add(VideoCase("name-not-utf8", not_utf8, "error", "not valid UTF-8"))
    controls = str(new / "line\nbreak \x1b[31mred\u202e.mp4")
    files["controls"] = write_clip(controls, 5, **clip)
    add(VideoCase("control-characters-in-name", controls, "ok"))
    files["dash"] = write_clip(new / "-dash first.mp4", 5, **clip)
    files["good"] = write_clip(new / "good.mp4", 30, scenes=lambda i: i // 10, **clip)

    # B-frames outside MP4, read with seeks: exact frames with auto; with decord (which misplaces
    # them there) an error, a warning or exact frames
    for suffix, codec in (("avi", "mpeg4"), ("mkv", "libx264")):
        options = {"g": "12", "bf": "2", "qscale": "3"} if codec == "mpeg4" else {"g": "12", "bf": "3"}
        path = str(encode(new / f"b-frames.{suffix}", 100, codec=codec, options=options, width=160, height=120, fps=10))
        add(VideoCase(f"b-frames-{suffix}", path, "ok", sampling="sparse", frames=True))
        add(VideoCase(f"b-frames-{suffix}-decord", path, "ok", backend="decord", sampling="sparse", frames=True,
                      judge="not-silently-wrong"))

    # variable frame rate in Matroska and WebM: each frame's pts in a 1/1000 time base
    for suffix, codec in (("mkv", "libx264"), ("webm", "libvpx-vp9")):
        path = encode(new / f"vfr.{suffix}", len(reliability.VFR_TIMES), codec=codec, frame_times=reliability.VFR_TIMES, **small)
        add(VideoCase(f"variable-frame-rate-{suffix}", str(path), "ok"))

    # an MP4 whose edit list hides its first 5 frames (they are in the file, as references)
    source = encode(folder / "edit source.mp4", 30, options={"g": "30", "bf": "0"}, width=160, height=120, fps=10)
    path = remux_with_edit_list(source, new / "edit list.mp4", 5)
    add(VideoCase("mp4-edit-list", str(path), "ok", frames=True, written=30))

    # two video streams: the first small and not default, the second large and the default
    for suffix in ("mkv", "mp4"):
        path = str(write_two_video_streams(new / f"two streams.{suffix}"))
        add(VideoCase(f"two-video-streams-{suffix}", path, "ok", frames=True))
        for backend in ("decord", "opencv"):
            # a backend that cannot choose the stream must refuse (or warn), never read another one
            add(VideoCase(f"two-video-streams-{suffix}-{backend}", path, "ok", backend=backend, judge="not-silently-wrong"))

    # cover art in an audio file is not a video
    for suffix in ("mp3", "m4a"):
        path = write_audio_with_cover(new / f"song with cover.{suffix}")
        add(VideoCase(f"cover-art-{suffix}", str(path), "error", "no video stream"))

    # a Matroska header claiming a billion frames a second (each block keeps its true time)
    source = encode(folder / "rate source.mkv", 20, options={"bf": "0"}, **small)
    path = claim_frame_rate_mkv(source, new / "claims 1e9 fps.mkv", 1)
    add(VideoCase("absurd-frame-rate-mkv", str(path), "ok"))

    # 4 KB of random bytes over the middle of the media data
    for suffix, codec in (("mp4", "libx264"), ("mkv", "libx264"), ("avi", "mpeg4"), ("ts", "libx264")):
        options = {**b_frames, "qscale": "4"} if codec == "mpeg4" else b_frames
        source = encode(folder / f"clean.{suffix}", 60, codec=codec, options=options, width=160, height=120, fps=10, grain=40)
        path = damage_middle(source, new / f"damaged.{suffix}")
        add(VideoCase(f"damaged-middle-{suffix}", str(path), "ok", gap=True, frames=suffix == "ts", written=60))

    # AV1, where this PyAV can write it
    encoder = next((name for name in ("libsvtav1", "libaom-av1", "librav1e") if name in av.codecs_available), None)
    if encoder:
        for suffix in ("mp4", "mkv"):
            options = {"preset": "12"} if encoder == "libsvtav1" else {"cpu-used": "8"} if encoder == "libaom-av1" else {}
            path = encode(new / f"av1.{suffix}", 20, codec=encoder, options=options, width=160, height=120, fps=10)
            add(VideoCase(f"av1-{suffix}", str(path), "ok", frames=True, judge="ok-or-named"))
    else:
        world.skipped.append(("av1", "this PyAV has no AV1 encoder (libsvtav1, libaom-av1, librav1e)"))

    # bombs: a PNG of 400 million pixels in 50 KB (also named .mp4), an .npz that inflates to 1 GiB
    write_png_bomb(new / "bomb.png")
    shutil.copy(new / "bomb.png", new / "bomb png.mp4")
    add(VideoCase("decompression-bomb-png", str(new / "bomb.png"), "error", "pixels", max_mb=1024))
    add(VideoCase("decompression-bomb-png-named-mp4", str(new / "bomb png.mp4"), "error", "", max_mb=1024))
    files["npz bomb"] = write_npz_bomb(new / "embeddings bomb.npz")
    add(VideoCase("npz-bomb-as-video", str(files["npz bomb"]), "error", "not a readable video", max_mb=1024,
                  classify_reason="not reading a likely zip bomb"))

    # still images in odd modes and sizes
    images = new / "images"
    images.mkdir()
    for name, (path, shown) in odd_images(images).items():
        pair = None
        if shown is not None:
            with Image.open(path) as image:
                pair = (shown, np.asarray(image.convert("RGB")))
        add(VideoCase(f"image-{Path(name).stem.replace(' ', '-')}", str(path), "ok", image=pair))

    # the truth of every file that should work, and the embeddings of the true pictures
    truths, pictures, owners = {}, [], []
    for case in world.videos:
        if case.expect != "ok":
            continue
        if Path(case.path).suffix in (".png", ".jpg") and case.name.startswith("image-"):
            from helpers_hostile import Truth

            with Image.open(case.path) as image:
                width, height = ImageOps.exif_transpose(image).size
            case.truth = Truth([0.0], [0], 1, 0, width, height, 1.0, [])
            if case.image is not None:
                pictures += case.image
                owners += [case] * 2
            continue
        key = (case.path, case.quarter_turns)
        if key not in truths or case.frames and not truths[key].frames:
            truths[key] = truth(case.path, quarter_turns=case.quarter_turns, keep_frames=case.frames)
        case.truth = truths[key]
    for found in truths.values():
        pictures += found.frames
        owners += [found] * len(found.frames)
    vectors = embed_pictures(world.model, pictures)
    for case in world.videos:
        mine = [i for i, owner in enumerate(owners) if owner is case or owner is case.truth and case.frames]
        if mine:
            case.truth_vectors = vectors[mine]

    # six small clips for the scans
    clips = folder / "six"
    clips.mkdir()
    for i in range(6):
        write_clip(clips / f"clip{i}.mp4", 30, scenes=lambda j, i=i: (i + j // 10) % 6, **clip)
    files["six"] = clips


def _bad_checkpoints(world: World) -> None:
    """Copies of the tiny checkpoint that are not it (the changes of test_models.py)."""
    import torch
    from safetensors.torch import load_file

    import test_models
    import test_reliability as reliability

    bad = world.path("checkpoints")
    bad.mkdir()
    changes = {"no-tensors": lambda t: {}, "no-vision-tower": lambda t: {k: v for k, v in t.items() if not k.startswith("vision_model.")},
               "nan-weights": test_models._nan_in_one}
    for name, change in changes.items():
        test_models._crafted(world.model, bad / name, change)
    pickled = shutil.copytree(world.model, bad / "pickled-only")
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    untokened = shutil.copytree(world.model, bad / "no-tokenizer")
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (untokened / name).unlink(missing_ok=True)
    for model_type in ("clip", "evil-clip"):
        folder = shutil.copytree(world.model, bad / f"remote-code-{model_type}")
        (folder / "evil.py").write_text(reliability.EVIL_CODE.format(marker=str(bad / f"code ran {model_type}")))
        config = json.loads((folder / "config.json").read_text())
        config.update(auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}, model_type=model_type)
        (folder / "config.json").write_text(json.dumps(config))
        processor = json.loads((folder / "processor_config.json").read_text())
        processor["auto_map"] = {"AutoProcessor": "evil.EvilProcessor"}
        (folder / "processor_config.json").write_text(json.dumps(processor))


# -- cases of options, settings files, streams, scans and checkpoints --------------------------------------

CLI_CASES: list[Case] = []


def cli_case(name: str, heavy: bool = False):
    def register(check: Callable[[World], str]):
        CLI_CASES.append(Case(name, check, heavy))
        return check

    return register


def _refused(world: World, argv: Sequence, code: int, *words: str, timeout: float = 60, model: Path | None = None) -> str:
    """`classify` of a good clip with ARGV must exit `code` naming every word, at once."""
    run = world.cli("classify", world.files["good"], "--model", model or world.model, *argv, timeout=timeout)
    run.exit(code)
    for word in words:
        expect(word in run.err, f"{word!r} on stderr", short(run.err) or "nothing")
    return f"exit {code} in {run.seconds:.1f} s: {short(run.err, 110)}"


# option bounds: values that would allocate until the process is killed, and values that mean nothing
BOUNDS = [
    ("--fps", "1e9", "fps", "<= 1000"), ("--fps", "0", "fps", "> 0"), ("--num-frames", "1000000000", "num_frames", "<= 10000"),
    ("--num-frames", "0", "num_frames", ">= 1"), ("--window", "1e-6", "window", ">= 0.01"), ("--window", "-2", "window", ">= 0.01"),
    ("--stride", "1e-300", "stride", ">= 0.001"), ("--stride", "nan", "stride", ">= 0.001"),
    ("--smooth", "1000000000", "events.smooth", "<= 10000"), ("--batch-size", "1000000000", "batch_size", "<= 4096"),
    ("--decode-workers", "1000000", "decode_workers", "<= 64"),
]
for _flag, _value, _key, _bound in BOUNDS:
    cli_case(f"option {_flag} {_value}")(
        lambda w, f=_flag, v=_value, k=_key, b=_bound: _refused(w, [*LABEL_ARGS, "--segments", f, v], 2, f"{k} must be", b))
cli_case("option --pooling median")(lambda w: _refused(w, [*LABEL_ARGS, "--pooling", "median"], 2, "invalid choice"))

for _template in ("{:>10}", "{0.x}", "{0}", "a {} and {}", "a {"):
    cli_case(f"template {_template}")(lambda w, t=_template: _refused(w, [*LABEL_ARGS, "--template", t], 2, "exactly one"))

for _name, _labels, _words in (("duplicate", ["running", "running"], "duplicate"),
                              ("alike", ["Running", "running "], "same text"), ("blank", ["running", "  "], "blank")):
    cli_case(f"labels {_name}")(lambda w, l=_labels, x=_words: _refused(w, [a for label in l for a in ("-l", label)], 2, x))


@cli_case("device banana")
def _(w):
    return _refused(w, [*LABEL_ARGS, "--device", "banana"], 2, "banana", "not a device name")


@cli_case("device cuda:99")
def _(w):
    return _refused(w, [*LABEL_ARGS, "--device", "cuda:99"], 2, "cuda:99", "CUDA device")


@cli_case("device cuda without one")
def _(w):
    import torch

    if torch.cuda.is_available():
        raise Skipped("this machine has a CUDA device")
    return _refused(w, [*LABEL_ARGS, "--device", "cuda"], 2, "no CUDA device")


@cli_case("model a/b/c/d")
def _(w):
    return _refused(w, LABEL_ARGS, 1, "no such folder", "a hub id reads owner/name", model="a/b/c/d")


# labels files and configs that are not small regular UTF-8 files: refused at once, named
def _settings_file(w: World, flag: str, source: str) -> str:
    path = {"/dev/zero": Path("/dev/zero"), "fifo": w.path("settings", "pipe"), "folder": w.path("settings"),
            "8 MiB": w.path("settings", "huge.txt"), "latin-1": w.path("settings", "latin.txt")}[source]
    words = {"/dev/zero": "not a regular file", "fifo": "not a regular file", "folder": "not a regular file",
             "8 MiB": "larger than", "latin-1": "not UTF-8"}[source]
    labels = [] if flag == "--labels-file" else LABEL_ARGS
    return _refused(w, [flag, path, *labels], 2, str(path), words, timeout=30, model=w.path("no model needed"))


for _flag in ("--labels-file", "--config"):
    for _source in ("/dev/zero", "fifo", "folder", "8 MiB", "latin-1"):
        cli_case(f"{_flag} {_source}")(lambda w, f=_flag, s=_source: _settings_file(w, f, s))


def _yaml(w: World, name: str, text: str, words: str) -> str:
    path = w.path("settings", name)
    path.write_text(text)
    said = _refused(w, ["--config", path, *LABEL_ARGS], 2, str(path), words, timeout=30)
    return said


cli_case("config billion laughs")(lambda w: _yaml(w, "laughs.yaml", _reliability().BILLION_LAUGHS, "aliases"))
cli_case("config nested 100000 deep")(lambda w: _yaml(w, "deep.yaml", "fps: " + "[" * 100_000 + "]" * 100_000, "nested"))
cli_case("config alias")(lambda w: _yaml(w, "alias.yaml", "top_k: &k 3\nfps: *k\n", "aliases"))


def _reliability():
    import test_reliability

    return test_reliability


@cli_case("template {{}} {} (escaped braces)", heavy=True)
def _(w):
    run = w.cli("classify", w.files["good"], "--model", w.model, *LABEL_ARGS, "--template", "{{}} {}", "--format", "json")
    run.exit(0)
    [record] = strict_json(run.out)
    expect(sorted(i["label"] for i in record["labels"]) == sorted(LABELS), "both labels ranked", short(run.out))
    return "exit 0, both labels ranked"


# standard streams
@cli_case("scan >&- 2>&-", heavy=True)
def _(w):
    out = w.path("scans", "closed.jsonl")
    run = w.cli("scan", w.files["six"], "-o", out, "--model", w.model, *LABEL_ARGS, *_fast(), shell='exec "$@" >&- 2>&-')
    run.exit(0)
    records = _jsonl(out)
    want = {str(p) for p in Path(w.files["six"]).glob("*.mp4")}
    expect(sorted(r["video"] for r in records) == sorted(want) and all("labels" in r for r in records),
           f"one result for each of the {len(want)} clips", f"{len(records)} records")
    return f"exit 0, {len(records)} records"


def _fast() -> list[str]:
    from helpers_cli import FAST

    return FAST


def _jsonl(path: Path) -> list[dict]:
    expect(path.exists(), f"{path.name} written", "no file")
    text = path.read_text(encoding="utf-8")
    expect(text == "" or text.endswith("\n"), "whole lines", f"a cut last line {text[-40:]!r}")
    return [strict_json(line, path.name) for line in text.splitlines()]


for _command in ("probe", "classify"):
    @cli_case(f"{_command} >&- (stdout closed)")
    def _(w, command=_command):
        argv = [command, w.files["good"]] + (["--model", w.model, *LABEL_ARGS] if command == "classify" else [])
        run = w.cli(*argv, shell='exec "$@" >&-')
        run.exit(1)
        expect("standard output is closed" in run.err, "`standard output is closed` on stderr", short(run.err))
        return f"exit 1: {short(run.err, 100)}"


# scans
def _locked_by_other(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _alive(pid: int) -> bool:
    """Whether the child still runs (it is not reaped here: the runner waits for it)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is None


def _paused_once_it_holds(out: Path, action: Callable[[], None]) -> Callable:
    """A `during` that waits until the scan holds its results file (listing is done by then),
    stops it, runs `action`, and lets it go on."""

    def during(proc):
        deadline = time.monotonic() + 120
        while not _locked_by_other(out):
            if not _alive(proc.pid) or time.monotonic() > deadline:
                return
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            action()
        finally:
            os.kill(proc.pid, signal.SIGCONT)

    return during


@cli_case("two scans into one -o", heavy=True)
def _(w):
    out = w.path("scans", "shared.jsonl")
    second = {}
    argv = ["scan", w.files["six"], "-o", out, "--model", w.model, *LABEL_ARGS, *_fast()]
    first = w.cli(*argv, during=_paused_once_it_holds(out, lambda: second.setdefault(
        "run", w.runner.process([sys.executable, "-m", "actionzs", *map(str, argv)], timeout=60, slot=False))))
    expect("run" in second, "the first scan to lock its results file", f"exit {first.code} before it did")
    second["run"].exit(2)
    expect("another scan is writing this file" in second["run"].err, "`another scan is writing this file`", short(second["run"].err))
    first.exit(0)
    records = _jsonl(out)
    videos = [r["video"] for r in records]
    expect(len(videos) == len(set(videos)) == 6, "the first scan's 6 records, each once", f"{len(videos)} records")
    return "the second exits 2 (another scan is writing this file); the first writes its 6 records"


@cli_case("scan: a file deleted after listing", heavy=True)
def _(w):
    folder = w.path("scans", "vanishing")
    folder.mkdir()
    gone, stays = folder / "goes.mp4", folder / "stays.mp4"
    for attempt in range(3):
        for path in (stays, gone):
            shutil.copy(w.files["six"] / "clip0.mp4", path)
        out = w.path("scans", f"vanishing-{attempt}.jsonl")
        run = w.cli("scan", folder, "-o", out, "--model", w.model, *LABEL_ARGS, *_fast(),
                    during=_paused_once_it_holds(out, gone.unlink))
        expect(not gone.exists(), "the file deleted while the scan ran", "the scan ended first")
        records = {r["video"]: r for r in _jsonl(out)}
        # A file can only be scored if it was opened before it went: on a loaded machine the scan may
        # get that far before it is stopped, and the case runs again.
        if "labels" not in records.get(str(gone), {}):
            break
    run.exit(1)
    expect(set(records) == {str(gone), str(stays)} and "labels" in records[str(stays)]
           and "no such file" in records[str(gone)].get("error", ""),
           "a result for the file that stays and `no such file` for the other", short(json.dumps(records), 120))
    return "exit 1; the deleted file is an error record `no such file`, the other scored"


for _kind, _content in (("a classify JSON", b'[\n  {"video": "a.mp4", "labels": []}\n]\n'), ("a video", b"\x00\x00\x00\x18ftypmp42"),
                        ("notes", b"notes\n")):
    @cli_case(f"scan --resume into {_kind}")
    def _(w, kind=_kind, content=_content):
        out = w.path("scans", f"precious {kind}")
        out.write_bytes(content)
        run = w.cli("scan", w.files["six"], "-o", out, "--model", w.model, *LABEL_ARGS, *_fast(), "--resume")
        run.exit(2)
        expect("not a scan's results" in run.err, "`not a scan's results`", short(run.err))
        expect(out.read_bytes() == content, "the file untouched", "it changed")
        return "exit 2, not a scan's results; the file untouched"


@cli_case("scan onto a full disk", heavy=True)
def _(w):
    out = w.path("scans", "full.jsonl")
    run = w.runner.python(_reliability().SMALL_DISK, "1500", "scan", w.files["six"], "-o", out, "--model", w.model,
                          *LABEL_ARGS, *_fast())
    run.exit(1)
    expect(str(out) in run.err, "the results file named on stderr", short(run.err))
    records = _jsonl(out)
    expect(0 < len(records) < 6, "some whole records, then the stop", f"{len(records)} records")
    return f"exit 1 naming the file; {len(records)} whole records"


@cli_case("scan: link loop, a folder linked twice, a file named again, a ** glob", heavy=True)
def _(w):
    from actionzs.testing import write_clip

    root = w.path("scans", "cams")
    (root / "day").mkdir(parents=True)
    clip = write_clip(root / "day" / "a.mp4", 5, average_fps=10, width=32, height=32)
    (root / "day" / "back").symlink_to(root, target_is_directory=True)
    (root / "alias").symlink_to(root / "day", target_is_directory=True)
    out = w.path("scans", "loop.jsonl")
    run = w.cli("scan", root, clip, root / "**" / "*.mp4", "-o", out, "--model", w.model, *LABEL_ARGS, *_fast(), timeout=120)
    run.exit(0)
    records = _jsonl(out)
    expect([os.path.realpath(r["video"]) for r in records] == [str(clip.resolve())], "the one video, once",
           str([r["video"] for r in records]))
    return "exit 0, the one video once"


@cli_case("scan of the hostile folder", heavy=True)
def _(w):
    out = w.path("scans", "hostile.jsonl")
    run = w.cli("scan", w.files["hostile"], "-o", out, "--model", w.model, *LABEL_ARGS, *_fast(), timeout=300)
    run.exit(1)
    records = {r["video"]: r for r in _jsonl(out)}
    cases = [c for c in _reliability().CASES if c.id != "directory"]  # a folder is not a video, whatever its name
    listed = {str(w.files["hostile"] / c.name): c for c in cases}
    expect(set(records) == set(listed) and len(_jsonl(out)) == len(listed), f"one record for each of the {len(listed)} files",
           f"{len(records)} ({short(str(sorted(set(records) ^ set(listed))), 100)} differ)")
    for path, case in listed.items():
        good = "labels" in records[path] and "error" not in records[path]
        expect(good == (case.expect == "ok"), f"{case.id}: {case.expect}", short(json.dumps(records[path]), 100))
    return f"exit 1, {len(records)} records, each as expected"


def _each_failure_named(batches: list[Batch], command: str) -> int:
    """Every file with an error record has its `error: PATH: reason` line on stderr."""
    failed = [(b, path, r["error"]) for b in batches for path, r in b.records.items() if "error" in r]
    unnamed = [path for b, path, reason in failed
               if not any(line.startswith(f"error: {printable(path)}: ") for line in b.lines_naming(path))]
    expect(not unnamed, f"each of the {len(failed)} failed files named on {command}'s stderr",
           f"no line for {len(unnamed)}: {short(', '.join(Path(p).name for p in unnamed), 120)}")
    return len(failed)


for _command in ("classify", "scan"):
    @cli_case(f"{_command}: an unreadable file, then a good one", heavy=True)
    def _(w, command=_command):
        """The first file's error line must reach stderr while the second one decodes."""
        bad, good = str(w.files["hostile"] / "zero.mp4"), str(w.files["good"])
        out = w.path("scans", "then good.jsonl")
        argv = ["--format", "json"] if command == "classify" else ["-o", out]
        run = w.cli(command, bad, good, "--model", w.model, *LABEL_ARGS, *_fast(), *argv)
        run.exit(1)
        records = {r["video"]: r for r in (strict_json(run.out) if command == "classify" else _jsonl(out))}
        expect(set(records) == {bad, good} and "error" in records[bad] and "labels" in records[good],
               "an error record, then a result", short(json.dumps(records), 100))
        _each_failure_named([Batch(records, [run])], command)
        return "exit 1, the error named on stderr, the good file scored"


# names, labels and cells
@cli_case("control characters in labels (table)", heavy=True)
def _(w):
    forged = _reliability().FORGED
    run = w.cli("classify", w.files["good"], "--model", w.model, "-l", forged, "-l", "running", *_fast())
    run.exit(0)
    expect("\x1b" not in run.out and "\nERROR forged" not in run.out and r"x\x1b[31m\nERROR forged" in run.out,
           "the label shown escaped", short(repr(run.out), 100))
    return r"exit 0, the label shown as x\x1b[31m\nERROR forged"


@cli_case("control characters in a missing file's name (probe)")
def _(w):
    missing = w.path("cam\x1b]0;owned\x07\nerror: fake.mp4")
    run = w.cli("probe", missing)
    run.exit(1)
    expect("\x1b" not in run.out + run.err and "\x07" not in run.err and run.err.count("\n") == 1
           and r"\nerror: fake.mp4" in run.err, "one escaped error line", repr(run.err))
    return f"exit 1, {short(run.err, 100)}"


@cli_case("control characters in a file's name (probe table)")
def _(w):
    run = w.cli("probe", w.files["controls"])
    run.exit(0)
    expect("\x1b" not in run.out and "\u202e" not in run.out and printable(str(w.files["controls"])) in run.out,
           "the name shown escaped", repr(run.out[-120:]))
    return "exit 0, the name shown escaped"


@cli_case("a file without read permission")
def _(w):
    if os.geteuid() == 0:
        raise Skipped("running as root, which reads any file (test_video_errors.py covers the message)")
    path = w.path("private.mp4")
    shutil.copy(w.files["good"], path)
    path.chmod(0)
    run = w.cli("probe", "--json", path)
    run.exit(1)
    return f"exit 1, {short(run.error_line(str(path), 'permission denied'), 100)}"


@cli_case("a name starting with a dash, after --")
def _(w):
    run = w.cli("probe", "--json", "--", w.files["dash"])
    run.exit(0)
    [record] = strict_json(run.out)
    expect(record.get("path") == str(w.files["dash"]) and record.get("num_frames") == 5, "its 5 frames", short(run.out))
    return "exit 0, 5 frames"


@cli_case("CSV formula cells", heavy=True)
def _(w):
    import csv
    import io

    labels = ["=HYPERLINK(A1)", "+1", "@SUM(A1)", "-2", "running"]
    run = w.cli("classify", w.files["good"], "--model", w.model, "--format", "csv", *_fast(),
                *[a for label in labels for a in ("-l", label)])
    run.exit(0)
    rows = [row for row in csv.DictReader(io.StringIO(run.out)) if row["kind"] != "settings"]
    got = {row["label"] for row in rows}
    expect(got == {"'=HYPERLINK(A1)", "'+1", "'@SUM(A1)", "'-2", "running"}, "formula cells prefixed with '", str(got))
    for row in rows:
        float(row["similarity"])
    return "exit 0, formula cells prefixed, numbers plain"


@cli_case("a 250-byte output name", heavy=True)
def _(w):
    output = w.path("r" * 245 + ".json")
    run = w.cli("classify", w.files["good"], "--model", w.model, *LABEL_ARGS, "--format", "json", "-o", output, *_fast())
    run.exit(0)
    [record] = strict_json(output.read_text(encoding="utf-8"), output.name)
    expect(record.get("video") == str(w.files["good"]), "the result", short(json.dumps(record)))
    return "exit 0, written"


@cli_case("report of an audio-only file", heavy=True)
def _(w):
    path, target = str(w.files["hostile"] / "audio only.mp4"), w.path("report.html")
    run = w.cli("report", path, "--model", w.model, *LABEL_ARGS, "-o", target)
    run.exit(1)
    run.error_line(path, "no video stream")
    expect(not target.exists(), "no report written", "a report")
    return "exit 1, no video stream, nothing written"


# checkpoints that are not the model
for _name, _code, _words in (("pickled-only", 1, "safetensors"), ("no-tensors", 1, "has no weights for"),
                             ("no-vision-tower", 1, "vision_model."), ("nan-weights", 1, "non-finite weights"),
                             ("no-tokenizer", 1, "tokenizer reads different texts alike")):
    cli_case(f"checkpoint {_name}", heavy=True)(
        lambda w, n=_name, c=_code, x=_words: _refused(w, LABEL_ARGS, c, str(w.path("checkpoints", n)), x, timeout=120,
                                                      model=w.path("checkpoints", n)))

for _type in ("clip", "evil-clip"):
    @cli_case(f"checkpoint asking for remote code ({_type})", heavy=True)
    def _(w, model_type=_type):
        folder = w.path("checkpoints", f"remote-code-{model_type}")
        run = w.cli("classify", w.files["good"], "--model", folder, *LABEL_ARGS, *_fast(), timeout=120)
        run.exit(0 if model_type == "clip" else 1)
        expect(not w.path("checkpoints", f"code ran {model_type}").exists(), "its code never run", "it ran")
        return f"exit {run.code}, its code never ran"


# stored embeddings: the command line has no way in; the API's load is the door
API_LOAD = """
import sys
from actionzs.embeddings import FrameEmbeddings
try:
    FrameEmbeddings.load(sys.argv[1])
except Exception as exc:
    print(f"refused: {type(exc).__name__}: {exc}")
else:
    print("loaded")
# this process's own peak (VmHWM belongs to the memory image, which exec replaced; the rusage peak
# would still count the parent's memory at the fork)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak kB", hwm.split()[1])
"""


@cli_case("npz bomb as stored embeddings (FrameEmbeddings.load)")
def _(w):
    path = w.files["npz bomb"]
    run = w.runner.python(API_LOAD, path, timeout=60)
    run.sane()
    peak_mb = int(run.out.rsplit("peak kB", 1)[-1]) / 1024 if "peak kB" in run.out else float("inf")
    said = f"{short(run.out or run.err, 100)} at a peak of {peak_mb:.0f} MB"
    expect(run.out.startswith("refused: ") and "MemoryError" not in run.out and peak_mb < 256,
           "a refusal before inflating 1 GiB (under 256 MB)", said)
    expect(str(path) in run.out, "the refusal to name the file", said)
    return f"{short(run.out.splitlines()[0], 100)} (peak {peak_mb:.0f} MB)"


# -- running them all -------------------------------------------------------------------------------


@dataclass
class Summary:
    outcomes: list[Outcome]  # of the cases tried, in order
    skipped: list[tuple[str, str]]  # (case, why)
    build_seconds: float
    cpu_seconds: list[float]  # of each command line

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.handled]

    def line(self) -> str:
        return f"{len(self.outcomes)} tried, {len(self.outcomes) - len(self.failed)} handled"


def run_all(folder: Path, jobs: int = 0, only: str | None = None) -> Summary:
    """Build every input under `folder` (created) and judge every case (whose name holds `only`)."""
    jobs = jobs or max(2, os.cpu_count() or 2)
    os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder's banner, off
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    world = World(Path(folder), jobs)
    world.folder.mkdir(parents=True, exist_ok=True)
    for name in ("settings", "scans", "embeddings"):
        world.path(name).mkdir()
    os.mkfifo(world.path("settings", "pipe"))
    world.path("settings", "huge.txt").write_bytes(b"running\n" * (1 << 20))
    world.path("settings", "latin.txt").write_bytes(b"caf\xe9: running\n")
    started = time.monotonic()
    build(world)
    build_seconds = time.monotonic() - started
    cases = [Case(v.name, lambda w, v=v: check_video(w, v)) for v in world.videos] + CLI_CASES
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "two cases of one name"
    if only:
        cases = [c for c in cases if only in c.name]
        names = [c.name for c in cases]
    order = sorted(cases, key=lambda c: not c.heavy)  # the slow ones first
    with concurrent.futures.ThreadPoolExecutor(8) as batches, concurrent.futures.ThreadPoolExecutor(4 * jobs) as pool:
        world.start_batches(batches)
        futures = {case.name: pool.submit(_judge, world, case) for case in order}
        outcomes = [futures[name].result() for name in names]
    skipped = world.skipped + [(o.name, o.text) for o in outcomes if o.handled is None]
    return Summary([o for o in outcomes if o.handled is not None], skipped, build_seconds, world.runner.cpu_seconds)


def _judge(world: World, case: Case) -> Outcome:
    started = time.monotonic()
    try:
        text = case.check(world)
        handled = True
    except Unhandled as exc:
        text, handled = str(exc), False
    except Skipped as exc:
        text, handled = str(exc), None
    except Exception as exc:  # the script's own failure on this case: report it, go on
        import traceback

        text, handled = f"the check itself failed: {type(exc).__name__}: {exc} ({short(traceback.format_exc(), 300)})", False
    return Outcome(case.name, handled, text, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", help="write the inputs into DIR (created) and leave them there")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="command lines at once (default: the number of CPUs)")
    parser.add_argument("-k", metavar="TEXT", help="only the cases whose name holds TEXT (while fixing one)")
    args = parser.parse_args(argv)
    if args.keep:
        folder = Path(args.keep).resolve()
        if folder.exists():
            parser.error(f"--keep {args.keep}: it exists already; name a new folder")
    else:
        folder = Path(tempfile.mkdtemp(prefix="actionzs-hostile-"))
    started = time.monotonic()
    try:
        summary = run_all(folder, args.jobs, args.k)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if args.verbose:
        for o in summary.outcomes:
            print(printable(f"{'ok  ' if o.handled else 'FAIL'} {o.name}: {o.text}"))
    for name, why in summary.skipped:
        print(printable(f"skip {name}: {why}"))
    if summary.failed:
        print(f"\nnot handled ({len(summary.failed)}):")
        for o in summary.failed:
            print(printable(f"  {o.name}: {o.text}"))
    print(f"({time.monotonic() - started:.0f} s: {summary.build_seconds:.0f} s writing the inputs, then "
          f"{len(summary.cpu_seconds)} command lines using {sum(summary.cpu_seconds):.0f} s of CPU"
          + (f"; inputs kept in {folder})" if args.keep else ")"))
    print(summary.line())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
