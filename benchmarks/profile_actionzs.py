"""Where actionzs's time goes on the 60 s 720p clip (CLIP ViT-B/32 shapes, 20 labels x 5 templates),
decoding with decord (`backend="decord"`: its reads are what the timeline and the experiments hook;
decode_less.py compares it with PyAV, the default).

    python benchmarks/profile_actionzs.py            # timeline + op profile + experiments
    python benchmarks/profile_actionzs.py --no-experiments

1. Timeline: one `classify` call of the library as it is, with every decoder read, preprocess,
   image-encoder batch and text-encoder call time-stamped (wrappers that only record times), so the
   overlap of the decode thread ("actionzs-decode") and the main thread is visible.
2. cProfile of the main thread, and torch.profiler's operator table for one image-encoder batch.
3. Experiments: the same call with one change each, applied by monkeypatching in THIS process only
   (the library is not modified). They estimate what a change to the library would buy:
     as-is              the library unchanged
     decord-2threads    the decode reader opened with decord num_threads=0 (FFmpeg picks 2 threads)
                        instead of 1
     torch-1thread      torch.set_num_threads(1) for the call (the decode thread gets a core of its own)
     batch-16           batch_size=16 (smaller decode chunks: the pipeline fills sooner, shorter tail)
     opencv-backend     backend="opencv" (a documented library option, not a patch): OpenCV's FFmpeg
                        reads forward with its default decoder threads
   Each runs --repeat times, interleaved, best reported with the other processes' CPU share.
4. With --xclip: X-CLIP base/32 on the same clip (segments, window 8 s, stride 8 s): the decoder
   reads of one classify call, and its time.
   Before each measurement the script waits (up to --quiet-wait s) for other processes to go idle.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-experiments", action="store_true")
    parser.add_argument("--xclip", action="store_true", help="also section 4 (X-CLIP span order)")
    parser.add_argument("--quiet-wait", type=float, default=15,
                        help="before each measurement, wait up to this many seconds for other processes to go idle")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    import actionzs
    import actionzs.embed as embed_mod
    import actionzs.video as video_mod
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.config import load_config
    from actionzs.frames import resize_dims
    from actionzs.video.decord_reader import DecordReader

    _models.start()
    video = str(_models.clip(args.seconds))
    model_dir = str(_models.clip_b32())
    settings = load_config()
    labels = _models.LABELS_20
    clf = actionzs.pipeline(model_dir, hypothesis_template=tuple(settings["hypothesis_template"]),
                            top_k=settings["top_k"], segments=True, fps=1.0)
    encoder = clf.encoder
    fresh = lambda batch=32: ZeroShotVideoClassifier(encoder, clf.options, batch_size=batch, backend="decord")  # noqa: E731
    fresh().classify(video, labels)  # warm-up

    # -- 1. timeline ---------------------------------------------------------------------------------
    events: list[tuple[str, str, float, float]] = []
    origin = [0.0]

    def recorded(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                events.append((name, threading.current_thread().name.split(":")[0], start - origin[0],
                               time.perf_counter() - origin[0]))
        return wrapper

    originals = dict(read=DecordReader.read, pre=type(encoder.preprocessor).__call__,
                     frames=encoder.embed_frames, texts=encoder.embed_texts, open=embed_mod.open_video)
    DecordReader.read = recorded("decode batch", originals["read"])
    type(encoder.preprocessor).__call__ = recorded("preprocess", originals["pre"])
    encoder.embed_frames = recorded("image encoder", originals["frames"])
    encoder.embed_texts = recorded("text encoder", originals["texts"])
    embed_mod.open_video = recorded("open video", originals["open"])
    _bench.wait_quiet(args.quiet_wait)
    with _bench.Stopwatch() as sw:
        origin[0] = time.perf_counter()
        fresh().classify(video, labels)
    DecordReader.read = originals["read"]
    type(encoder.preprocessor).__call__ = originals["pre"]
    del encoder.embed_frames, encoder.embed_texts
    embed_mod.open_video = originals["open"]
    print(f"\n1. timeline of one classify call ({sw.timing.describe()}), seconds from the call:")
    for name, thread, start, end in sorted(events, key=lambda e: e[2]):
        bar = " " * int(start * 20) + "#" * max(1, int((end - start) * 20))
        print(f"  {name:14s} {thread:15s} {start:5.2f} -> {end:5.2f} ({end - start:4.2f})  |{bar}")
    busy = {}
    for name, _, start, end in events:
        busy[name] = busy.get(name, 0.0) + end - start
    print("  totals: " + ", ".join(f"{k} {v:.2f} s" for k, v in busy.items()))

    # -- 2. cProfile (main thread) and the encoder's operators ---------------------------------------
    profiler = cProfile.Profile()
    profiler.enable()
    fresh().classify(video, labels)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(14)
    print("\n2a. cProfile, main thread only (the decode thread's work shows up as waiting in queue.get):")
    print(_models.shown("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip())))

    from torch.profiler import ProfilerActivity, profile

    with video_mod.open_video(video) as v:
        from actionzs import sampling

        sample = sampling.at_fps(v.timeline, 1.0)
        pixels = encoder.preprocessor(v.get_frames(np.sort(sample.indices)[:32], encoder.preprocessor.decode_size).data)
    encoder.embed_frames(pixels)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        encoder.embed_frames(pixels)
    print("\n2b. torch.profiler, one image-encoder batch of 32 frames (library's embed_frames):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

    if args.no_experiments:
        return xclip_section(args, video) if args.xclip else 0

    # -- 3. experiments (monkeypatched here only) ---------------------------------------------------
    def decord_reader_2threads(self, size):
        dims = resize_dims(self.height, self.width, size)
        if dims not in self._readers:
            self._readers[dims] = self._decord.VideoReader(self._path, ctx=self._decord.cpu(0), width=dims[1],
                                                           height=dims[0], num_threads=0)
        return self._readers[dims]

    original_reader = DecordReader._reader

    def run(name: str):
        DecordReader._reader = decord_reader_2threads if name == "decord-2threads" else original_reader
        threads = torch.get_num_threads()
        if name == "torch-1thread":
            torch.set_num_threads(1)
        try:
            if name == "opencv-backend":
                clf_ = ZeroShotVideoClassifier(encoder, clf.options, batch_size=32, backend="opencv")
            else:
                clf_ = fresh(16 if name == "batch-16" else 32)
            with _bench.Stopwatch() as sw:
                result = clf_.classify(video, labels)
            assert result.segments
            return sw.timing
        finally:
            torch.set_num_threads(threads)
            DecordReader._reader = original_reader

    names = ["as-is", "decord-2threads", "torch-1thread", "batch-16", "opencv-backend"]
    series = {n: _bench.Series(n) for n in names}
    for name in names:
        run(name)  # warm-up of each variant
    for round_no in range(args.repeat):
        for name in names:
            _bench.wait_quiet(args.quiet_wait, window=1.0)
            series[name].add(run(name))
    base = series["as-is"].best.wall
    rows = [[n, f"{s.best.wall:.2f}", f"{s.best.wall / base:.2f}", f"{s.best.cpu:.2f}", f"{100 * s.best.others:.0f}%", s.walls()]
            for n, s in series.items()]
    print(f"\n3. experiments: classify on {Path(video).name}, best of {args.repeat} (monkeypatched in this process only)")
    print(_bench.table(rows, ["variant", "wall s", "vs as-is", "CPU s", "others", "all runs (wall s)"]))
    return xclip_section(args, video) if args.xclip else 0


def xclip_section(args, video: str) -> int:
    import actionzs
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.config import load_config
    from actionzs.video.decord_reader import DecordReader

    settings = load_config()
    labels = _models.LABELS_20
    clf = actionzs.pipeline(str(_models.xclip_b32()), hypothesis_template=tuple(settings["hypothesis_template"]),
                            top_k=settings["top_k"], segments=True, window=8.0, stride=8.0)
    ZeroShotVideoClassifier(clf.encoder, clf.options, backend="decord").classify(video, labels)  # warm-up
    reads: list[str] = []
    original = DecordReader.read

    def logged(self, indices, size):
        reads.append(f"{indices[0]}..{indices[-1]} ({len(indices)} frames)")
        return original(self, indices, size)

    DecordReader.read = logged
    try:
        ZeroShotVideoClassifier(clf.encoder, clf.options, backend="decord").classify(video, labels)
    finally:
        DecordReader.read = original
    print("\n4. X-CLIP base/32, segments window 8 s stride 8 s: decoder reads of one classify call")
    print("  " + ", ".join(reads))
    series = _bench.Series("library")
    for _ in range(args.repeat):
        _bench.wait_quiet(args.quiet_wait, window=1.0)
        with _bench.Stopwatch() as sw:
            ZeroShotVideoClassifier(clf.encoder, clf.options).classify(video, labels)
        series.add(sw.timing)
    print(f"  classify: best {series.best.wall:.2f} s wall, {series.best.cpu:.2f} CPU s, others "
          f"{100 * series.best.others:.0f}%; all runs {series.walls()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
