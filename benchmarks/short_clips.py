"""A batch of short clips: video by video vs one batched call vs the encoder alone.

    python benchmarks/short_clips.py                    # 12 clips of 10 s, 720p, CLIP ViT-B/32 shapes
    python benchmarks/short_clips.py --clips 6 --seconds 10 --repeat 3 --no-naive

A reviewer's footage is often many short files (camera events, sports plays). Paths compared, in one
process, on the same files and the same checkpoint (random weights, real shapes; see _models.py):

one by one  `classify(video, labels)` for each file in turn on one classifier: each call overlaps its
            own decoding with its own encoding, but file k+1 is opened only after file k is encoded
            (how `classify_many` and the CLI worked before they decoded ahead).
batched     `classify_many(videos, labels)`: one decoding thread works through the files in turn, so
            file k+1 opens and decodes while file k is still being encoded.
2 workers   the same with `decode_workers=2`: two files decode at once, each by its own decoder.
CLI         `actionzs.cli.main(["classify", *videos, ...])` in this process (includes the model load).
naive       the transformers-docs loop of throughput.py (cv2, one frame per second through the
            zero-shot image pipeline with the 20 labels), file after file.
limit       the image encoder's forward alone on all the frames actionzs embeds, already decoded and
            preprocessed, in batches of 32 across files, in the dtype actionzs runs (bfloat16 here).

Settings as the CLI's (default.yaml: 5 templates, top_k 5) plus --segments --fps 1, batch 32. Each
classifier starts with empty caches, the labels are encoded once per call. The files are copies of
one generated 720p H.264 clip (distinct paths, so nothing is cached between them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402
from _bench import Series  # noqa: E402
from throughput import naive_clip  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="number of files (default 12)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each file (default 10)")
    _bench.add_run_options(parser, repeat=3, quiet_wait=10)
    return parser.parse_args(argv)


def copies(seconds: int, count: int) -> list[str]:
    source = _models.clip(seconds)
    folder = _models.CLIPS / f"batch-{seconds}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip-{i:03d}.mp4"
        if not path.is_file() or path.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, path)
        paths.append(str(path))
    return paths


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch
    import transformers

    import actionzs
    import actionzs.cli
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.config import load_config

    _models.start()
    videos = copies(args.seconds, args.clips)
    labels = _models.LABELS_20
    model_dir = str(_models.clip_b32())
    settings = load_config()
    clf = actionzs.pipeline(model_dir, hypothesis_template=tuple(settings["hypothesis_template"]),
                            top_k=settings["top_k"], segments=True, fps=1.0)
    encoder = clf.encoder

    def fresh() -> ZeroShotVideoClassifier:
        return ZeroShotVideoClassifier(encoder, clf.options)

    def one_by_one():
        classifier = fresh()
        return [classifier.classify(video, labels) for video in videos]

    def batched(workers: int = 1):
        return ZeroShotVideoClassifier(encoder, clf.options, decode_workers=workers).classify_many(videos, labels)

    cli_out = HERE / "out" / "short-clips-cli-result.json"
    cli_argv = ["classify", *videos, "--model", model_dir, "--segments", "--fps", "1", "--format", "json",
                "-o", str(cli_out)] + [arg for label in labels for arg in ("-l", label)]

    warm = batched()  # warm-up; also the frames the limit row encodes
    pre = encoder.preprocessor
    pixels = []
    for video, result in zip(videos, warm):
        with actionzs.open_video(video) as v:
            pixels.append(pre(v.get_frames(np.sort(result.embeddings.indices), pre.decode_size).data))
    pixels = torch.cat(pixels)

    def limit() -> None:
        with torch.inference_mode():
            for i in range(0, len(pixels), 32):
                encoder.model.get_image_features(pixel_values=pixels[i : i + 32].to(encoder.model.dtype))

    limit()
    series = {k: Series(k) for k in ("one_by_one", "batched", "batched2", "cli", "limit", "naive")}

    def measure(key: str, fn):
        return _bench.timed(series[key], fn, args.quiet_wait)

    same = True
    for round_no in range(args.repeat):
        _models.log(f"round {round_no + 1}/{args.repeat} (loadavg {_bench.loadavg()})")
        measure("limit", limit)
        a = measure("one_by_one", one_by_one)
        b = measure("batched", batched)
        c = measure("batched2", lambda: batched(2))
        same &= [r.to_dict() for r in a] == [r.to_dict() for r in b] == [r.to_dict() for r in c] == [r.to_dict() for r in warm]
        assert measure("cli", lambda: actionzs.cli.main(cli_argv)) == 0
    if not args.no_naive:
        _models.log("naive path ...")
        pipe = transformers.pipeline("zero-shot-image-classification", model=model_dir)
        measure("naive", lambda: [naive_clip(video, pipe, labels) for video in videos])

    n_frames = len(pixels)
    footage = args.clips * args.seconds
    print(f"\nfiles: {args.clips} copies of {_models.clip(args.seconds).name} ({footage} s of footage); "
          f"model: CLIP ViT-B/32 shapes, random weights, {str(encoder.model.dtype).replace('torch.', '')}")
    print(f"work: {n_frames} frames embedded (1 per second), 20 labels x 5 templates; results of all paths identical: {same}")
    names = {
        "naive": "naive: cv2 + zero-shot-image pipeline/frame (fp32)",
        "one_by_one": "actionzs classify, file by file",
        "batched": "actionzs classify_many (decodes ahead)",
        "batched2": "actionzs classify_many, 2 decode workers",
        "cli": "actionzs CLI in-process (incl. model load)",
        "limit": "limit: encoder forward only, batches of 32",
    }
    rows = []
    for key, name in names.items():
        if not series[key].runs:
            continue
        best = series[key].best
        rows.append([name, f"{best.wall:.2f}", f"{best.wall / args.clips:.3f}", f"{footage / best.wall:.1f}x",
                     f"{best.cpu:.2f}", f"{100 * best.others:.0f}%", series[key].walls()])
    print(_bench.table(rows, ["path", "wall s", "s/file", "realtime", "CPU s", "others", "all runs (wall s)"]))
    one, many, lim = (series[k].best.wall for k in ("one_by_one", "batched", "limit"))
    print(f"\nfile by file / batched  = {one / many:.2f}x")
    print(f"batched / 2 workers     = {many / series['batched2'].best.wall:.2f}x")
    print(f"batched / limit         = {many / lim:.2f}x   (goal <= 1.25x)")
    print(f"file by file / limit    = {one / lim:.2f}x")
    if series["naive"].runs:
        print(f"naive / batched         = {series['naive'].best.wall / many:.2f}x   (goal >= 5x)")
    print(f"\nloadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
