"""Re-scoring an already embedded video with a new label set (no decoding, no image encoder).

    python benchmarks/rescore.py

An hour of video at 1 fps is 3600 frame embeddings: here 3600 random unit vectors of dimension 512
(the CLIP ViT-B/32 projection size), frame times 0.5, 1.5, ... s, duration 3600 s, stored as an
actionzs FrameEmbeddings. The classifier is `actionzs.pipeline(DIR)` on the ViT-B/32-shaped random
checkpoint (see _models.py). `clf.score(embeddings, labels, run)` is timed with 100 labels the
classifier has never seen, segments on (window 2 s, stride 1 s: 3600 windows, each ranked):

(i)  first call: includes the text encoder on the 100 prompts (timed on its own by wrapping
     encoder.embed_texts);
(ii) second call with the same labels: the text cache answers, so this is scoring alone
     (similarities, window scores, events; the classifier also keeps the pooled window vectors per
     embeddings object). Goal: < 50 ms.
Also reported: (ii-b) the same vectors as a NEW FrameEmbeddings object (as if loaded from an .npz:
windows pooled again), and score + to_dict(), which also builds the per-window ranked dicts that the
CLI writes (VideoResult builds them lazily).

Both are run with top_k=None (all 100 labels ranked per window: actionzs.pipeline's default) and with
top_k=5 (the CLI's default.yaml). With --ensemble the text encoder is also timed on default.yaml's 5
templates (500 prompts).

To prove that no decoding and no image encoding happen, encoder.embed_frames,
actionzs.embed.open_video, actionzs.video.open_video and decord.VideoReader are wrapped with call
counters during the timed calls; all must stay at 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402

GOAL_MS = 50.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed scoring calls per setting (default 7)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--quiet-wait", type=float, default=10,
                        help="before each timed call, wait up to this many seconds for other processes to go idle")
    parser.add_argument("--ensemble", action="store_true", help="also time the text encoder on 5 templates x 100 labels")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    import actionzs
    import actionzs.embed as embed_mod
    import actionzs.video as video_mod
    from actionzs.config import load_config
    from actionzs.embeddings import FrameEmbeddings

    _models.start()
    clf = actionzs.pipeline(str(_models.clip_b32()))
    encoder = clf.encoder
    print(f"model: {_models.shown(encoder.name)} ({encoder.model.dtype}), text encoder: {encoder.model.config.text_config.num_hidden_layers} "
          f"layers x {encoder.model.config.text_config.hidden_size}")

    count = int(round(3600 * args.hours))
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, 512), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = FrameEmbeddings(vectors, np.arange(count) * 25 + 12, np.arange(count) + 0.5, float(count),
                                 clf.model, f"synthetic-{count}s", {"fps": 1.0})
    print(f"embeddings: {_models.shown(repr(embeddings))}, {vectors.nbytes / 2**20:.1f} MiB")

    # counters: anything that would decode or run the image encoder
    calls = {"embed_frames": 0, "embed_texts": 0, "embed.open_video": 0, "video.open_video": 0, "decord.VideoReader": 0}
    text_seconds = []

    def counted(name, fn, timed=False):
        def wrapper(*a, **k):
            calls[name] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if timed:
                    text_seconds.append(time.perf_counter() - start)
        return wrapper

    encoder.embed_frames = counted("embed_frames", encoder.embed_frames)
    encoder.embed_texts = counted("embed_texts", encoder.embed_texts, timed=True)
    embed_mod.open_video = counted("embed.open_video", embed_mod.open_video)
    video_mod.open_video = counted("video.open_video", video_mod.open_video)
    import decord

    decord.VideoReader = counted("decord.VideoReader", decord.VideoReader)

    encoder.embed_texts(["warm up the text encoder"])  # kernel creation is not what is measured
    calls["embed_texts"], text_seconds[:] = 0, []

    rows = []
    for top_k in (None, 5):
        # a fresh classifier (empty text and pooled-window caches) sharing the loaded encoder
        scorer = actionzs.ZeroShotVideoClassifier(encoder, clf.options)
        labels, run = scorer.prepare(_models.LABELS_100, segments=True, window=2.0, stride=1.0, top_k=top_k)
        texts_before = calls["embed_texts"]
        _bench.wait_quiet(args.quiet_wait, window=0.5)
        with _bench.Stopwatch() as first:
            result = scorer.score(embeddings, labels, run)
        text_time = sum(text_seconds)
        text_seconds.clear()
        assert calls["embed_texts"] > texts_before, "the first call should have run the text encoder"
        encoded = scorer.texts.encoded
        again_t, fresh_t, dict_t, cold_t = [], [], [], []
        texts_before = calls["embed_texts"]
        _bench.wait_quiet(args.quiet_wait, window=0.5)
        scorer.score(embeddings, labels, run)  # one untimed call: the timed ones below run back to back
        for _ in range(args.repeat):
            with _bench.Stopwatch() as sw:  # (ii) same labels, same embeddings object: text + pooled caches hit
                again = scorer.score(embeddings, labels, run)
            again_t.append(sw.timing)
        for _ in range(args.repeat):
            # (ii-b) the same vectors as a new FrameEmbeddings object (as if loaded from a .npz): text
            # cache hits, but the classifier has not pooled these windows before
            loaded = FrameEmbeddings(embeddings.vectors, embeddings.indices, embeddings.pts_seconds, embeddings.duration,
                                     embeddings.model, embeddings.source, embeddings.sampling)
            with _bench.Stopwatch() as sw:
                scorer.score(loaded, labels, run)
            fresh_t.append(sw.timing)
        for _ in range(args.repeat):
            with _bench.Stopwatch() as sw:  # the JSON-ready record (builds the per-window ranked dicts)
                record = scorer.score(embeddings, labels, run).to_dict()
            dict_t.append(sw.timing)
        for _ in range(3):  # (ii) again, each call after 1 s of idling (see the README: memory goes cold here)
            time.sleep(1.0)
            with _bench.Stopwatch() as sw:
                scorer.score(embeddings, labels, run)
            cold_t.append(sw.timing)
        assert calls["embed_texts"] == texts_before, "a repeated call ran the text encoder again"
        assert len(record["segments"]) == len(result.segments)
        best = min(t.wall for t in again_t)
        ms = lambda ts: f"{min(t.wall for t in ts) * 1000:.1f}"  # noqa: E731
        others = max(t.others for t in again_t + fresh_t + dict_t + cold_t)
        rows.append([f"top_k={top_k}", str(len(labels)), str(encoded), str(len(record["segments"])),
                     f"{first.timing.wall * 1000:.0f}", f"{text_time * 1000:.0f}", ms(again_t),
                     f"{statistics.median(t.wall for t in again_t) * 1000:.1f}", ms(cold_t), ms(fresh_t), ms(dict_t),
                     f"{100 * others:.0f}%", "MET" if best * 1000 < GOAL_MS else "NOT MET"])

    print()
    print(_bench.table(rows, ["setting", "labels", "texts encoded", "windows", "(i) 1st call ms", "text encoder ms",
                              "(ii) rescore best ms", "(ii) median ms", "(ii) after 1 s idle ms", "(ii-b) unseen embeddings ms",
                              "score+to_dict ms", "others max", f"(ii) < {GOAL_MS:g} ms"]))
    print(f"best of {args.repeat} back-to-back calls each (3 for 'after 1 s idle'). (i) includes the text encoder, "
          "pooling and scoring; (ii) repeats the call (text and pooled windows cached); (ii-b) the same vectors as a "
          "new FrameEmbeddings object, e.g. loaded from .npz (windows pooled again); score+to_dict also builds the "
          "per-window ranked dicts the CLI writes.")

    if args.ensemble:
        templates = tuple(load_config()["hypothesis_template"])
        scorer = actionzs.ZeroShotVideoClassifier(encoder, clf.options)
        labels, run = scorer.prepare(_models.LABELS_100, segments=True, window=2.0, stride=1.0, hypothesis_template=templates)
        with _bench.Stopwatch() as sw:
            scorer.score(embeddings, labels, run)
        print(f"with default.yaml's {len(templates)} templates: {scorer.texts.encoded} texts encoded, text encoder "
              f"{sum(text_seconds) * 1000:.0f} ms, first call {sw.timing.wall * 1000:.0f} ms")
        text_seconds.clear()

    print(f"\ncalls during all the scoring above: {calls}")
    ok = calls["embed_frames"] == 0 and calls["embed.open_video"] == 0 and calls["video.open_video"] == 0 \
        and calls["decord.VideoReader"] == 0
    print("no decoding and no image-encoder work: " + ("PROVEN (all counters 0)" if ok else "FAILED"))
    # machine check: the same memory-bound numpy work back to back and after idling (see README)
    data = rng.standard_normal((3600, 512))
    back, idle = [], []
    for _ in range(5):
        with _bench.Stopwatch() as sw:
            np.cumsum(data, axis=0)
        back.append(sw.timing.wall)
    for _ in range(3):
        time.sleep(1.0)
        with _bench.Stopwatch() as sw:
            np.cumsum(data, axis=0)
        idle.append(sw.timing.wall)
    print(f"machine check, np.cumsum over a 3600x512 float64 array: {min(back) * 1000:.1f} ms back to back, "
          f"{min(idle) * 1000:.1f} ms after 1 s idle (best of 5 / 3)")
    print(f"torch threads {torch.get_num_threads()}; loadavg at end {_bench.loadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
