"""Searching a library of 1,000 hours of frame embeddings: the faiss index against exact search.

    python benchmarks/library_search.py                  # 1,000 h at 1 frame/s: 3.6 M vectors, 512-d (~15 min)
    python benchmarks/library_search.py --hours 100 --dim 512 --queries 200

Vectors: tests/helpers_vectors.py's video-shaped generator (1,000 videos of an hour at 1 frame/s;
shots of ~60 s drawn from 200 scene kinds shared across videos; consecutive frames at cosine ~0.995),
float16, as the library stores them. Queries, half of each kind:
  * "moment": a stored frame moved to cosine 0.9 of itself (find more like this moment);
  * "text": a random direction mixed toward one scene, so that the best frames have cosine ~0.4
    (as a text query's best frames do); its top 20 is decided by small differences, the hard case.

Reported: the build (train + add), index memory (RSS growth, and the faiss index's own bytes), the
saved file's size and load time, top-20 latency of single queries (as a user searches: one at a
time; median and p95) for several nprobe, recall@20 of each against ExactIndex on a subset of the
queries, and the exact search's time per query beside it. Goals: < 50 ms per search with recall@20
>= 0.95. The saved file goes to benchmarks/out/ (deleted at the end unless --keep).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import _bench  # noqa: E402
import _models  # noqa: E402
import helpers_vectors  # noqa: E402

GOAL_MS = 50.0
GOAL_RECALL = 0.95
K = 20


def rss_mb() -> float:
    """This process's resident memory now (MiB)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recall(found, truth) -> float:
    return sum(len(set(a) & set(b)) for a, b in zip(found, truth)) / truth.size


def single_query_ms(index, queries) -> list[float]:
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query[None], K)
        times.append(1e3 * (time.perf_counter() - start))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1000, help="library length at 1 frame/s (videos of 1 h)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200, help="single queries timed per setting (half of each kind)")
    parser.add_argument("--recall-queries", type=int, default=100, help="queries whose recall is measured (half of each kind)")
    parser.add_argument("--exact-single", type=int, default=3, help="single queries timed on the exact index")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--keep", action="store_true", help="keep the saved index in benchmarks/out/")
    args = parser.parse_args(argv)

    import numpy as np

    import faiss
    from actionzs.library.neighbours import FAISS_THRESHOLD, ExactIndex, FaissIndex

    _models.start()
    print(f"numpy {np.__version__}, faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)")

    frames = 3600
    videos = max(1, int(round(args.hours)))
    start = time.perf_counter()
    library = helpers_vectors.video_library(videos, frames, args.dim)
    count = len(library.vectors)
    print(f"\nlibrary: {videos} videos x {frames} frames = {count:,} vectors, {args.dim}-d float16 "
          f"({library.vectors.nbytes / 2**30:.2f} GiB), generated in {time.perf_counter() - start:.0f} s")
    half = args.queries // 2
    queries = {"moment": helpers_vectors.moment_queries(library, half),
               "text": helpers_vectors.text_queries(library, args.queries - half)}
    rhalf = args.recall_queries // 2
    checked = {"moment": queries["moment"][:rhalf], "text": queries["text"][:args.recall_queries - rhalf]}
    ids = np.arange(count, dtype=np.int64)

    # The exact reference, then the generated array is let go (the index keeps its own copy).
    exact = ExactIndex.build(ids, library.vectors)
    del library
    with _bench.Stopwatch() as sw:
        truth = {kind: exact.search(q, K) for kind, q in checked.items()}
    batched_ms = 1e3 * sw.timing.wall / args.recall_queries
    singles = single_query_ms(exact, queries["text"][:args.exact_single])
    print(f"exact search: {np.median(singles):.0f} ms per single query (median of {len(singles)}), "
          f"{batched_ms:.0f} ms per query in a batch of {args.recall_queries} ({sw.timing.describe()})")

    before = rss_mb()
    with _bench.Stopwatch() as sw:
        index = FaissIndex.build(ids, exact._rows.vectors)
    grown = rss_mb() - before
    del exact  # its results are kept in `truth`; the saved index is loaded beside `index` below
    faiss_bytes = faiss.serialize_index(index._index).nbytes
    print(f"\nFaissIndex IVF{index.nlist},SQ8 + float16 re-rank of {index.rerank}: built in {sw.timing.describe()}")
    print(f"memory: RSS +{grown / 1024:.2f} GiB (float16 vectors {index._rows.vectors.nbytes / 2**30:.2f} GiB "
          f"+ faiss index {faiss_bytes / 2**30:.2f} GiB)")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / "library-search.index"
    with _bench.Stopwatch() as save_sw:
        index.save(path)
    with _bench.Stopwatch() as load_sw:
        loaded = FaissIndex.load(path)
    same = all(np.array_equal(index.search(q, K)[1], loaded.search(q, K)[1]) for q in checked.values())
    print(f"saved file: {path.stat().st_size / 2**30:.2f} GiB, save {save_sw.timing.wall:.1f} s, "
          f"load {load_sw.timing.wall:.1f} s; loaded index answers the same: {same}")
    del loaded
    if not args.keep:
        path.unlink()

    rows = []
    for nprobe in args.nprobe:
        index.nprobe = nprobe
        cells = [str(nprobe)]
        for kind in ("moment", "text"):
            times = single_query_ms(index, queries[kind])
            found = index.search(checked[kind], K)
            cells += [f"{np.median(times):.1f}", f"{np.percentile(times, 95):.1f}",
                      f"{recall(found[1], truth[kind][1]):.3f}"]
        both = single_query_ms(index, np.concatenate(list(queries.values())))
        all_found = np.concatenate([index.search(checked[k], K)[1] for k in checked])
        all_truth = np.concatenate([truth[k][1] for k in checked])
        cells += [f"{np.median(both):.1f}", f"{np.percentile(both, 95):.1f}", f"{recall(all_found, all_truth):.3f}"]
        rows.append(cells)
    print(f"\ntop-{K} search, single queries ({args.queries} timed, {args.recall_queries} checked against exact):")
    print(_bench.table(rows, ["nprobe", "moment ms", "p95", "recall@20", "text ms", "p95", "recall@20",
                              "all ms", "p95", "recall@20"]))

    index.nprobe = FaissIndex.DEFAULT_NPROBE
    both = single_query_ms(index, np.concatenate(list(queries.values())))
    all_found = np.concatenate([index.search(checked[k], K)[1] for k in checked])
    score_gap = 0.0  # |faiss - exact| similarity of each frame both returned for a query
    for kind, q in checked.items():
        for f_scores, f_ids, e_scores, e_ids in zip(*index.search(q, K), *truth[kind]):
            _, f_at, e_at = np.intersect1d(f_ids, e_ids, return_indices=True)
            score_gap = max(score_gap, float(np.abs(f_scores[f_at] - e_scores[e_at]).max(initial=0)))
    median, p95 = np.median(both), np.percentile(both, 95)
    rec = recall(all_found, np.concatenate([truth[k][1] for k in checked]))
    met = median < GOAL_MS and p95 < GOAL_MS and rec >= GOAL_RECALL
    print(f"\ndefault nprobe {index.nprobe}: {median:.1f} ms median, {p95:.1f} ms p95, recall@20 {rec:.3f} "
          f"(goal < {GOAL_MS:.0f} ms, >= {GOAL_RECALL}: {'MET' if met else 'NOT MET'}); exact search "
          f"{np.median(singles):.0f} ms per single query")
    print(f"largest difference between the faiss and the exact similarity of a frame both returned: {score_gap:.1e}")
    print(f"FAISS_THRESHOLD = {FAISS_THRESHOLD:,}; exact search scales as {np.median(singles) / count * 1e6:.2f} ms per million vectors")
    print(f"peak RSS {_bench.peak_rss_mb() / 1024:.1f} GiB; loadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
