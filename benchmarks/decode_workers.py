"""Several decode workers: one classify call with 1, 2, ... decoders on the same file.

    python benchmarks/decode_workers.py                 # 60 s 720p clip; tiny model and ViT-B/32
    python benchmarks/decode_workers.py --workers 1 2 4 --repeat 5

`ZeroShotVideoClassifier(decode_workers=N)` reads batch k with worker k mod N, each worker with a
decoder of its own, so N batches decode at once. That pays when the encoder outruns one decoder: a
GPU, or (measured here) a model so small that decoding is nearly all the work, which is what the
tests' tiny CLIP stands in for. With ViT-B/32 on 2 cores the encoder already keeps both cores busy,
so extra decoders only compete with it. Settings as the CLI's (default.yaml: 5 templates, top_k 5)
plus --segments --fps 1; batch 32. Each setting runs --repeat times, interleaved; best and all runs
are printed, with the CPU share other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="clip length (720p, 25 fps)")
    parser.add_argument("--quiet-wait", type=float, default=10)
    args = parser.parse_args(argv)
    import actionzs
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.config import load_config

    _models.start()
    video = str(_models.clip(args.seconds))
    settings = load_config()
    labels = _models.LABELS_20
    for name, build in (("tiny CLIP", _models.tiny_clip), ("CLIP ViT-B/32", _models.clip_b32)):
        clf = actionzs.pipeline(str(build()), hypothesis_template=tuple(settings["hypothesis_template"]),
                                top_k=settings["top_k"], segments=True, fps=1.0)
        series = {n: _bench.Series(str(n)) for n in args.workers}
        results = {}
        for round_no in range(args.repeat + 1):  # round 0 warms up
            for workers in args.workers:
                fresh = ZeroShotVideoClassifier(clf.encoder, clf.options, decode_workers=workers)
                _bench.wait_quiet(args.quiet_wait, window=1.0)
                with _bench.Stopwatch() as sw:
                    results[workers] = fresh.classify(video, labels).to_dict()
                if round_no:
                    series[workers].add(sw.timing)
        same = all(results[w] == results[args.workers[0]] for w in args.workers)
        base = series[args.workers[0]].best.wall
        rows = [[str(w), f"{s.best.wall:.2f}", f"{base / s.best.wall:.2f}x", f"{s.best.cpu:.2f}",
                 f"{100 * s.best.others:.0f}%", s.walls()] for w, s in series.items()]
        print(f"\n{name}: classify {Path(video).name}, best of {args.repeat}; results identical: {same}")
        print(_bench.table(rows, ["decode workers", "wall s", "speed-up", "CPU s", "others", "all runs (wall s)"]))
    print(f"\nloadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
