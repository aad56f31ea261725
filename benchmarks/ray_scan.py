"""A folder scan on the local engine against Ray with 1 and 2 workers, on this machine.

    python benchmarks/ray_scan.py [--files 8] [--seconds 10] [--model tiny|b32]

`--files` H.264 clips of `--seconds` s (640x360, 25 fps) are classified with 20 labels at 1 frame/s
three ways in one process, each after a warm-up call: the local engine (`LocalExecutor`: decoding in
a thread, encoding here), and `RayExecutor` with 1 and with 2 actors of 1 CPU each on a local Ray
instance started here. Reported per engine: wall time for the folder, videos per second, and for
Ray the start-up (ray.init, then the actors loading the model) timed on its own. The driver's own
cost per record (scoring the embeddings that come back, making the JSON record) is timed on the
results of the local run. "CPU s" is this process's (the driver's); the actors' CPU shows under
"others". All Ray numbers are from one 2-core machine: with 2 actors the two
encoders share the two cores that one local encoder (2 torch threads) already used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line does before torch loads

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", choices=("tiny", "b32"), default="b32")
    args = parser.parse_args(argv)

    import ray
    import actionzs
    from actionzs.ray_executor import RayExecutor

    _models.start(f"ray {ray.__version__}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    model = _models.clip_b32() if args.model == "b32" else _models.tiny_clip()
    source = _models.clip(args.seconds, width=640, height=360)
    folder = HERE / "out" / "ray_scan"
    folder.mkdir(parents=True, exist_ok=True)
    clips = []  # one file per video (the classifier caches embeddings per file)
    for k in range(args.files + 2):
        copy = folder / f"clip{k:02d}{source.suffix}"
        if not copy.exists():
            shutil.copy(source, copy)
        clips.append(str(copy))
    warm, clips = clips[:2], clips[2:]  # the warm-up videos: one per actor at most
    footage = args.files * args.seconds
    print(f"work: {args.files} clips of {args.seconds:g} s (640x360, 25 fps), 1 frame/s, 20 labels; model {args.model}")
    local = actionzs.pipeline(str(model))
    labels, run = local.prepare(_models.LABELS_20)
    list(local.classify_each(warm[:1], labels))  # warm-up: kernels, text cache

    rows = []
    with _bench.Stopwatch() as sw:
        results = [outcome for _, outcome in local.classify_each(clips, labels)]
    assert not any(isinstance(r, Exception) for r in results), results
    rows.append(("local engine", sw.timing))

    with _bench.Stopwatch() as sw:
        for result in results:
            local.score(result.embeddings, labels, run).to_dict()
    per_record_ms = sw.timing.wall / len(results) * 1000

    with _bench.Stopwatch() as started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init (a local instance): {started.timing.describe()}")
    try:
        for actors in (1, 2):
            executor = RayExecutor(actors=actors, num_cpus=1)
            clf = actionzs.ZeroShotVideoClassifier(local.encoder, local.options, executor=executor)
            with _bench.Stopwatch() as ready:
                list(clf.classify_each(warm[:actors], labels))  # the actors start and load the model
            print(f"ray, {actors} actor(s): start-up and a first video: {ready.timing.describe()}")
            with _bench.Stopwatch() as sw:
                outcomes = [outcome for _, outcome in clf.classify_each(clips, labels)]
            assert not any(isinstance(r, Exception) for r in outcomes), outcomes
            rows.append((f"ray, {actors} actor(s) x 1 CPU", sw.timing))
            executor.close()
    finally:
        ray.shutdown()
    header = ["engine", "wall s", "videos/s", "footage x real time", "CPU s", "others"]
    table = [[name, f"{t.wall:.2f}", f"{args.files / t.wall:.2f}", f"{footage / t.wall:.1f}x", f"{t.cpu:.2f}",
              f"{100 * t.others:.0f}%"] for name, t in rows]
    print(_bench.table(table, header))
    base = rows[0][1].wall
    for name, t in rows[1:]:
        print(f"{name} / local = {t.wall / base:.2f}")
    print(f"driver cost per record (score + JSON record, in this process): {per_record_ms:.1f} ms")
    print(f"loadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
