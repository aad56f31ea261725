"""Decoding less: actionzs at 1 frame/s against a hand-written decord + CLIP peer, against its own
floors (decoding alone, the image encoder alone), and keyframe sampling (every keyframe, or the
frames at 1 frame/s snapped to keyframes within --snap seconds) against exact sampling.

    python benchmarks/decode_less.py [--repeat 3] [--naive-repeat 1 | --no-naive] [--snap 1] [--quiet-wait 5] [--long] [--only TEXT]

In one process, runs interleaved, with CLIP ViT-B/32 shapes (random weights; see _models.py), on
60 s 720p 25 fps clips: H.264 with GOP 250 without B-frames (`_models.clip(60)`, the throughput
clip), GOP 50 with 3 B-frames, GOP 25 (1 s) without B-frames, and MPEG-4 Part 2 in AVI (GOP 50);
with --long also a 10-minute H.264 clip (GOP 250). Rows:

naive       what a transformers-docs user writes (throughput.py's naive path, --naive-repeat runs):
            cv2.VideoCapture read through, every round(fps)-th frame through
            `transformers.pipeline("zero-shot-image-classification")` with the 20 labels (so it
            also encodes the label texts at every frame), float32 as the checkpoint is saved.
peer        `decord.VideoReader(path).get_batch(indices)` (decord's default threads) at the frames
            actionzs samples at 1 frame/s, then the checkpoint's processor and
            `CLIPModel.get_image_features` in batches of 32 under inference_mode, in the dtype
            actionzs's "auto" picks (bfloat16 where the CPU computes it natively, else float32):
            decode first, encode after.
actionzs    `ZeroShotVideoClassifier(encoder, fps=1, segments=True).embed(path)`, a fresh classifier
            (empty caches) sharing one warmed-up encoder: backend auto (exact; PyAV), --backend decord
            (auto's choice for MP4 before PyAV came first), keyframe sampling (auto), and the frames
            at 1 frame/s snapped to keyframes within --snap seconds (auto).
decode      the frames the 1 frame/s plan needs at the encoder's decode size, per backend, read
            through `Video` and nothing else; pyav also without skipping unwanted frames.
preprocess  the checkpoint's preprocessing alone (resize, crop, normalise) of those frames, decoded
            beforehand.
encoder     the image encoder alone on those frames, decoded and preprocessed beforehand.

On a machine with few cores the stages compete for the same cores, so the per-video step cannot run
faster than its CPU work over the cores: the "CPU-bound floor" line adds the CPU seconds of decoding
(the backend's decode-only row), preprocessing and the encoder, and divides by the cores.

Frames decoded per frame delivered: pyav's are counted by its reader (the decoder's output); for
decord and OpenCV, which cannot be asked, they are worked out from the container's packets as a
decoder that seeks to the keyframe before a wanted frame (when one lies past the last frame read)
and decodes every packet from there would decode them (what pyav without skipping does).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402
from _bench import Series  # noqa: E402
from throughput import naive_clip  # noqa: E402

GOAL_PEER = 0.6  # actionzs / peer at most
GOAL_FLOOR = 1.25  # actionzs / max(decode floor, encoder alone) at most
GOAL_KEYFRAMES = 3.0  # exact 1 frame/s / keyframe sampling at least

#: (label, `_models.clip` keywords) of the clips measured.
CLIPS = [
    ("GOP 250, no B-frames", dict(seconds=60, gop=250)),
    ("GOP 50, 3 B-frames", dict(seconds=60, gop=50, bframes=3)),
    ("GOP 25 (1 s), no B-frames", dict(seconds=60, gop=25)),
    ("MPEG-4 Part 2 in AVI, GOP 50", dict(seconds=60, gop=50, codec="mpeg4")),
]
LONG_CLIP = ("10 minutes, GOP 250, no B-frames", dict(seconds=600, gop=250))
BATCH = 32
CORES = os.cpu_count() or 1


def decodes_from_packets(path: str, wanted_pts: np.ndarray) -> int:
    """Frames a decoder decodes for the frames at `wanted_pts`, read in order, when it seeks to the
    keyframe before each wanted frame where one lies past the last packet it decoded, and
    otherwise decodes every packet on from there (in file order) through the wanted one."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
    position = {pts: i for i, (pts, _) in enumerate(packets)}
    keys = np.array([i for i, (_, key) in enumerate(packets) if key])
    done, last = 0, -1
    for pts in np.sort(wanted_pts).tolist():
        at = position[pts]
        if at <= last:
            continue  # decoded on the way to an earlier wanted frame
        key = int(keys[keys <= at][-1])
        start = key if key > last else last + 1
        done += at - start + 1
        last = at
    return done


def run_clip(label: str, path: str, encoder, args) -> str:
    import decord
    import torch
    import transformers

    from actionzs import sampling
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.options import RunOptions
    from actionzs.video import open_video
    from actionzs.video.pyav_reader import PyAVReader
    from actionzs.video.stream_index import index_stream
    from actionzs.video.video import Video

    index = index_stream(path)
    plan = sampling.at_fps(index.timeline, 1.0)
    keyframes = sampling.keyframes(index.timeline)
    snapped = sampling.at_fps(index.timeline, 1.0, snap_seconds=args.snap)
    pre = encoder.preprocessor
    dtype = encoder.model.dtype
    model_dir = str(_models.clip_b32())
    peer_model = transformers.CLIPModel.from_pretrained(model_dir, dtype=dtype).eval()
    processor = transformers.CLIPProcessor.from_pretrained(model_dir)
    options = RunOptions(fps=1.0, segments=True)
    naive_pipe = None if args.no_naive else transformers.pipeline("zero-shot-image-classification", model=model_dir)
    naive_frames: list[int] = []

    def naive() -> None:
        naive_frames.append(naive_clip(path, naive_pipe, _models.LABELS_20)[1])

    def peer() -> None:
        frames = decord.VideoReader(path).get_batch(plan.indices.tolist()).asnumpy()
        pixels = processor(images=list(frames), return_tensors="pt")["pixel_values"].to(dtype)
        with torch.inference_mode():
            for i in range(0, len(pixels), BATCH):
                peer_model.get_image_features(pixel_values=pixels[i : i + BATCH])

    def embed(backend: str, **run) -> None:
        ZeroShotVideoClassifier(encoder, options, backend=backend).embed(path, **run)

    counts: dict[str, int] = {}

    def decode(name: str) -> None:
        if name.startswith("pyav"):
            reader = PyAVReader(path, index=index, skip_unwanted=name == "pyav")
            video = Video(reader, path, "pyav", index=index)
        else:
            video = open_video(path, name)
        with video:
            for _ in video.iter_frames(plan.indices, pre.decode_size):
                pass
        if name.startswith("pyav"):
            counts[name] = reader.frames_decoded

    with open_video(path) as video:
        decoded = video.get_frames(plan.indices, pre.decode_size).data
    pixels = pre(decoded)

    def encode_alone() -> None:
        with torch.inference_mode():
            for i in range(0, len(pixels), BATCH):
                encoder.embed_frames(pixels[i : i + BATCH])

    floors = ["decord", "pyav", "pyav no skipping", "opencv"]
    paths = {
        **({} if args.no_naive else {"naive loop": naive}),
        "peer": peer,
        "actionzs auto (exact)": lambda: embed("auto"),
        "actionzs --backend decord": lambda: embed("decord"),
        "actionzs --keyframes": lambda: embed("auto", keyframes=True),
        f"actionzs --snap-to-keyframes {args.snap:g}": lambda: embed("auto", snap_to_keyframes=args.snap),
        **{f"decode only: {name}": (lambda name=name: decode(name)) for name in floors},
        "preprocess alone": lambda: pre(decoded),
        "image encoder alone": encode_alone,
    }
    series = {name: Series(name) for name in paths}
    peer()  # warm-up of the peer's model
    for round_no in range(args.repeat):
        _models.log(f"{label}: round {round_no + 1}/{args.repeat} (loadavg {_bench.loadavg()})")
        for name, fn in paths.items():
            if name != "naive loop" or round_no < args.naive_repeat:
                _bench.timed(series[name], fn, args.quiet_wait)

    n = len(plan)
    rows = []
    for name, s in series.items():
        frames = {"actionzs --keyframes": len(keyframes), f"actionzs --snap-to-keyframes {args.snap:g}": len(snapped),
                  "naive loop": naive_frames[-1] if naive_frames else n}.get(name, n)
        b = s.best
        rows.append([name, str(frames), f"{b.wall:.2f}", f"{frames / b.wall:.1f}", f"{b.cpu:.2f}", f"{100 * b.others:.0f}%", s.walls()])
    info = open_video(path).info()
    lines = [f"clip: {Path(path).name} ({label}; {info['width']}x{info['height']}, {info['num_frames']} frames, "
             f"{info['duration']:.0f} s; {n} frames at 1 frame/s, {len(keyframes)} keyframes, {len(snapped)} frames "
             f"snapped within {args.snap:g} s, {np.isin(snapped.indices, keyframes.indices).sum()} of them keyframes)  "
             "model: CLIP ViT-B/32 "
             f"shapes, {str(dtype).replace('torch.', '')}"]
    lines.append(_bench.table(rows, ["path", "frames", "wall s", "frames/s", "CPU s", "others", "all runs (wall s)"]))

    modelled = decodes_from_packets(path, index.pts[plan.indices])
    per = lambda decoded: f"{decoded / n:.1f}"  # noqa: E731
    lines.append("frames decoded per frame delivered at 1 frame/s: "
                 f"pyav {per(counts['pyav'])} (counted), pyav without skipping {per(counts['pyav no skipping'])} (counted), "
                 f"decord and opencv {per(modelled)} (worked out from the packets)")

    best = {name: s.best.wall for name, s in series.items()}
    exact = best["actionzs auto (exact)"]
    with open_video(path) as video:
        auto_backend = video.backend
    decode_floor = "decode only: " + auto_backend
    floor = max(best[decode_floor], best["image encoder alone"])
    verdict = lambda ok: "MET" if ok else "NOT MET"  # noqa: E731
    if "naive loop" in best:
        lines.append(f"naive loop / actionzs                     = {best['naive loop'] / exact:5.2f}x")
    ratio = exact / best["peer"]
    lines.append(f"actionzs / peer                           = {ratio:5.2f}   (goal <= {GOAL_PEER:g}: {verdict(ratio <= GOAL_PEER)})")
    ratio = exact / floor
    lines.append(f"actionzs / max(decode floor, encoder)     = {ratio:5.2f}   (goal <= {GOAL_FLOOR:g}: {verdict(ratio <= GOAL_FLOOR)}; "
                 f"floor: {auto_backend} {best[decode_floor]:.2f} s, encoder {best['image encoder alone']:.2f} s)")
    ratio = best["actionzs --backend decord"] / best["peer"]
    lines.append(f"actionzs --backend decord / peer          = {ratio:5.2f}")
    cpu = {name: s.best.cpu for name, s in series.items()}
    for row, floor_row in (("actionzs auto (exact)", decode_floor),
                           ("actionzs --backend decord", "decode only: decord")):
        work = cpu[floor_row] + cpu["preprocess alone"] + cpu["image encoder alone"]
        bound = max(best[floor_row], best["image encoder alone"], work / CORES)
        lines.append(f"CPU-bound floor of {row[9:]:<17}= {bound:5.2f} s ({floor_row[13:]} {cpu[floor_row]:.2f} + preprocess "
                     f"{cpu['preprocess alone']:.2f} + encoder {cpu['image encoder alone']:.2f} CPU s over {CORES} cores); "
                     f"actionzs / it = {best[row] / bound:.2f}")
    ratio = exact / best["actionzs --keyframes"]
    lines.append(f"exact 1 frame/s / keyframe sampling       = {ratio:5.2f}x  (goal >= {GOAL_KEYFRAMES:g}x: {verdict(ratio >= GOAL_KEYFRAMES)})")
    ratio = exact / best[f"actionzs --snap-to-keyframes {args.snap:g}"]
    lines.append(f"exact 1 frame/s / snapped within {args.snap:g} s     = {ratio:5.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (the fastest is reported)")
    parser.add_argument("--naive-repeat", type=int, default=1, help="runs of the naive loop (slow: one by default)")
    parser.add_argument("--no-naive", action="store_true", help="leave the naive loop out")
    parser.add_argument("--snap", type=float, default=1.0, help="the tolerance of the snapped row, seconds")
    parser.add_argument("--long", action="store_true", help="also the 10-minute clip (about 3 minutes to generate once)")
    parser.add_argument("--only", metavar="TEXT", help="only the clips whose label contains TEXT")
    parser.add_argument("--quiet-wait", type=float, default=5.0,
                        help="before each measurement, wait up to this many seconds for other processes to go idle")
    args = parser.parse_args(argv)
    import actionzs

    _models.start()
    encoder = actionzs.pipeline(str(_models.clip_b32())).encoder
    for label, shape in CLIPS + ([LONG_CLIP] if args.long else []):
        if args.only and args.only.lower() not in label.lower():
            continue
        path = str(_models.clip(**shape))
        encoder.embed_frames(encoder.preprocessor(np.zeros((BATCH, 224, 224, 3), np.uint8)))  # warm kernels
        print()
        print(run_clip(label, path, encoder, args), flush=True)
    print(f"\nloadavg at end: {_bench.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
