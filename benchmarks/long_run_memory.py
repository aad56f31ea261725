"""Peak memory of an end-to-end run: 1-minute vs 1-hour clip (optionally 2 hours), each in a fresh process.

    python benchmarks/long_run_memory.py                 # 1 min and 1 h, CLIP ViT-B/32 shapes
    python benchmarks/long_run_memory.py --two-hours     # also a 2-hour clip
    python benchmarks/long_run_memory.py --ten-minutes   # also a 10-minute clip
    python benchmarks/long_run_memory.py --model tiny    # the tests' tiny CLIP (fast; same pipeline state)
    python benchmarks/long_run_memory.py --decode-workers 2   # two decoders per file

Each clip is processed by the actionzs command line, run in-process in a fresh child Python:
`actionzs classify CLIP --model DIR --segments --fps 1 -l ... (20 labels) --format json -o FILE`
(default.yaml settings otherwise: 5 prompt templates, top_k 5). The child reports its peak resident set
size (getrusage ru_maxrss), its RSS right after imports and after the model load, and its RSS sampled
every 0.25 s while it works. The difference of peaks between the long and the 1-minute clip is what
the length of the video costs (goal: <= +200 MB from 1 min to 1 h).

Clips are 320x240, 25 fps H.264 (ultrafast, GOP 250 = 10 s), simple moving content, generated once
and cached in benchmarks/out/clips/. Low resolution keeps decoding an hour feasible on 2 cores; the
decoded frames are resized to 224 on the short side anyway, and the state that grows with length is
the per-frame embeddings (512 floats = 2 KiB per frame, 7 MiB per hour at 1 fps) plus timeline,
windows and results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402

GOAL_MB = 200.0
WIDTH, HEIGHT, GOP = 320, 240, 250


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(video: str, model_dir: str, out: str, backend: str, workers: int) -> None:
    """Runs in the fresh process: the CLI in-process, with RSS sampling."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - start, _rss_mb()))
            stop.wait(0.25)

    threading.Thread(target=sample, daemon=True).start()
    import torch  # noqa: F401  (imports are part of the baseline)
    import transformers  # noqa: F401

    import actionzs.cli
    import actionzs.models

    after_imports = _rss_mb()
    loaded: dict[str, float] = {}
    load_encoder = actionzs.models.load_encoder

    def observed_load(*a, **k):  # only records RSS right after the CLI's own model load
        encoder = load_encoder(*a, **k)
        loaded["rss"] = _rss_mb()
        loaded["at"] = time.perf_counter() - start
        loaded["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return encoder

    actionzs.models.load_encoder = observed_load
    argv = ["classify", video, "--model", model_dir, "--segments", "--fps", "1"]
    for label in _models.LABELS_20:
        argv += ["-l", label]
    argv += ["--backend", backend, "--decode-workers", str(workers), "--format", "json", "-o", out, "-q"]
    t0 = time.perf_counter()
    rc = actionzs.cli.main(argv)
    seconds = time.perf_counter() - t0
    stop.set()
    record = json.loads(Path(out).read_text())[0]
    print(json.dumps({
        "rc": rc, "seconds": seconds, "after_imports_mb": after_imports, "after_load_mb": loaded["rss"],
        "peak_after_load_mb": loaded["peak"], "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "final_mb": _rss_mb(), "windows": len(record.get("segments") or []), "duration": record.get("duration"),
        "samples": samples, "loaded_at": loaded["at"],
        "work_peak_mb": max([mb for t, mb in samples if t > loaded["at"]], default=float("nan")),
    }))


def run_child(video: Path, model_dir: Path, backend: str, workers: int) -> dict:
    out = HERE / "out" / f"memory-{video.stem}.json"
    command = [sys.executable, __file__, "--child", str(video), "--model-dir", str(model_dir), "--out", str(out),
               "--backend", backend, "--decode-workers", str(workers)]
    with _bench.Stopwatch() as sw:
        proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed on {video}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["timing"] = sw.timing
    return result


def growth(samples: list, seconds: float) -> str:
    """RSS at 25 / 50 / 75 / 100 % of the classify call's duration (to show it does not climb)."""
    if not samples:
        return "-"
    end = samples[-1][0]
    start = end - seconds
    marks = []
    for frac in (0.25, 0.5, 0.75, 1.0):
        t = start + frac * seconds
        value = min(samples, key=lambda s: abs(s[0] - t))[1]
        marks.append(f"{value:.0f}")
    return "/".join(marks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("b32", "tiny"), default="b32", help="checkpoint shapes (default b32)")
    parser.add_argument("--two-hours", action="store_true", help="also a 2-hour clip")
    parser.add_argument("--ten-minutes", action="store_true", help="also a 10-minute clip (is a level reached early?)")
    parser.add_argument("--backend", choices=("auto", "decord", "pyav", "opencv"), default="auto",
                        help="the CLI's --backend (default auto: PyAV, as shipped)")
    parser.add_argument("--decode-workers", type=int, default=1, metavar="N", help="the CLI's --decode-workers (default 1)")
    parser.add_argument("--child", metavar="VIDEO", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.model_dir, args.out, args.backend, args.decode_workers)
        return 0
    _models.start()
    model_dir = _models.MODEL_BUILDERS[args.model]()
    lengths = [60] + ([600] if args.ten_minutes else []) + [3600] + ([7200] if args.two_hours else [])
    clips = [_models.clip(s, width=WIDTH, height=HEIGHT, gop=GOP) for s in lengths]
    rows, peaks, work_peaks = [], {}, {}
    for seconds, clip in zip(lengths, clips):
        _models.log(f"processing {clip.name} in a fresh process ...")
        r = run_child(clip, model_dir, args.backend, args.decode_workers)
        assert r["rc"] == 0, f"CLI exit status {r['rc']}"
        peaks[seconds] = r["peak_mb"]
        work_peaks[seconds] = r["work_peak_mb"]
        rows.append([f"{seconds // 60} min" if seconds < 3600 else f"{seconds / 3600:g} h", str(r["windows"]),
                     f"{r['seconds']:.0f}", f"{r['after_imports_mb']:.0f}", f"{r['after_load_mb']:.0f}",
                     f"{r['peak_mb']:.0f}", f"{r['peak_mb'] - r['peak_after_load_mb']:+.0f}",
                     f"{r['work_peak_mb']:.0f}", f"{r['final_mb']:.0f}",
                     growth(r["samples"], r["seconds"]), f"{100 * r['timing'].others:.0f}%"])
    print(f"\nclips: {WIDTH}x{HEIGHT} 25 fps H.264 GOP {GOP}; model: {args.model} ({Path(model_dir).name}); "
          f"CLI classify --segments --fps 1 --backend {args.backend} --decode-workers {args.decode_workers}, 20 labels x 5 templates, top_k 5")
    print(_bench.table(rows, ["clip", "windows", "run s", "RSS imports MB", "RSS +model MB", "peak RSS MB",
                              "peak - load peak", "max sampled RSS after load", "final RSS MB",
                              "RSS at 25/50/75/100% of run", "others"]))
    base = peaks[60]
    for seconds in lengths[1:]:
        diff = peaks[seconds] - base
        verdict = "MET" if diff <= GOAL_MB else "NOT MET"
        name = f"{seconds // 60} min" if seconds < 3600 else f"{seconds / 3600:g} h"
        print(f"peak RSS {name} - 1 min = {diff:+.0f} MB   (goal <= +{GOAL_MB:g} MB: {verdict})")
        work = work_peaks[seconds] - work_peaks[60]
        print(f"  after the model load only (max of RSS sampled every 0.25 s): {work:+.0f} MB"
              f"   ({'within' if work <= GOAL_MB else 'over'} +{GOAL_MB:g} MB)")
    print(f"loadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
