"""Throughput: a naive transformers loop vs actionzs vs the image encoder alone, on one video.

    python benchmarks/throughput.py                # 60 s 720p clip, CLIP ViT-B/32 shapes
    python benchmarks/throughput.py --long         # also a 10-minute 720p clip
    python benchmarks/throughput.py --xclip        # X-CLIP base/32 (8 frames) instead of CLIP

Paths compared, in one process, on the same clip and the same checkpoint (random weights, real shapes;
see _models.py):

naive     what a transformers-docs user writes: cv2.VideoCapture read sequentially, every round(fps)-th
          frame kept, `transformers.pipeline("zero-shot-image-classification")` called per frame with
          the 20 labels, scores averaged. The pipeline loads the checkpoint as saved (float32).
          X-CLIP: the same read, then per span (the whole clip and each 8 s window, 8 frames each, the
          same frames actionzs uses) XCLIPProcessor(text=labels, videos=frames) + XCLIPModel(**inputs)
          under torch.no_grad, as the model docs show.
actionzs  `clf.classify(video, labels)` on a fresh classifier (empty embedding and text caches) that
          shares an already loaded, warmed-up encoder, with the CLI's settings (default.yaml: 5 prompt
          templates, top_k 5) plus --segments --fps 1 (X-CLIP: --segments --window 8 --stride 8).
          This is the per-video cost; the model load is reported on its own row.
CLI       `actionzs.cli.main(["classify", VIDEO, "--model", DIR, "--segments", "--fps", "1", "-l", ...,
          "--format", "json", "-o", FILE])` in this process (includes the model load; imports and
          oneDNN kernels are already warm), and the same command in a fresh process (everything cold).
          The output goes to a file under benchmarks/out/. The `actionzs` command sets
          OMP_WAIT_POLICY=PASSIVE before torch loads; this process has loaded torch already, so run
          the script with OMP_WAIT_POLICY=PASSIVE set to measure the in-process rows the same way.
limit     the image encoder's forward alone on the same frames, already decoded and preprocessed:
          CLIPModel.get_image_features in batches of 32 under torch.inference_mode, in bfloat16 (what
          actionzs picks on a CPU with AVX512-BF16/AMX) and float32. X-CLIP: XCLIPModel.get_video_features
          (vision tower + projection + MIT) on clips [4, 8, 3, 224, 224] (32 frames, actionzs's batch).

Each path runs --repeat times (naive --naive-repeat times), interleaved; the table shows the fastest
run and lists all. Every row also reports this process's CPU seconds and the share of the machine's
CPU that OTHER processes used meanwhile, because a busy neighbour on a 2-core machine distorts
timings badly (torch's OpenMP threads stall whenever one of them is preempted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench  # noqa: E402
import _models  # noqa: E402
from _bench import Series, Stopwatch  # noqa: E402

GOAL_NAIVE = 5.0
GOAL_LIMIT = 1.25


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the 720p benchmark clip (default 60)")
    parser.add_argument("--long", action="store_true", help="also run a 10-minute 720p clip")
    parser.add_argument("--size", default="1280x720", help="clip size WxH (default 1280x720)")
    parser.add_argument("--xclip", action="store_true", help="X-CLIP base/32 shapes instead of CLIP ViT-B/32")
    parser.add_argument("--naive-repeat", type=int, default=1, help="runs of the naive path")
    _bench.add_run_options(parser, repeat=5, quiet_wait=15)
    return parser.parse_args(argv)


# -- the paths --------------------------------------------------------------------------------------

def naive_clip(path: str, pipe, labels: list[str]) -> tuple[dict, int]:
    """The transformers-docs loop: every round(fps)-th frame through the zero-shot image pipeline."""
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(path)
    step = max(1, round(cap.get(cv2.CAP_PROP_FPS)))
    totals, count, index = defaultdict(float), 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            for row in pipe(image, candidate_labels=labels):
                totals[row["label"]] += row["score"]
            count += 1
        index += 1
    cap.release()
    return {k: v / count for k, v in totals.items()}, count


def naive_xclip(path: str, model, processor, labels: list[str], spans_indices) -> tuple[list, int]:
    """Sequential cv2 read; each span's 8 frames through XCLIPProcessor + XCLIPModel (docs style)."""
    import cv2
    import torch

    wanted = defaultdict(list)  # frame index -> spans that need it
    for s, row in enumerate(spans_indices):
        for i in row:
            wanted[int(i)].append(s)
    last = {s: int(max(row)) for s, row in enumerate(spans_indices)}
    held: dict[int, object] = {}
    results, done = [None] * len(spans_indices), 0
    cap = cv2.VideoCapture(path)
    index = 0
    while done < len(spans_indices):
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            held[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            for s in wanted[index]:
                if last[s] == index:
                    video = [held[int(i)] for i in spans_indices[s]]
                    inputs = processor(text=labels, videos=video, return_tensors="pt", padding=True)
                    with torch.no_grad():
                        outputs = model(**inputs)
                    results[s] = outputs.logits_per_video.softmax(dim=1)[0].tolist()
                    done += 1
            needed = {int(i) for s in range(len(spans_indices)) if results[s] is None for i in spans_indices[s]}
            held = {i: f for i, f in held.items() if i in needed}
        index += 1
    cap.release()
    return results, sum(len(r) for r in spans_indices)


def cli_argv(video: str, model_dir: str, labels: list[str], xclip: bool, out: Path) -> list[str]:
    argv = ["classify", video, "--model", model_dir, "--segments"]
    argv += ["--window", "8", "--stride", "8"] if xclip else ["--fps", "1"]
    for label in labels:
        argv += ["-l", label]
    return argv + ["--format", "json", "-o", str(out)]


# -- one clip ---------------------------------------------------------------------------------------

def run_clip(video: str, args, xclip: bool) -> dict:
    import numpy as np
    import torch
    import transformers

    import actionzs
    import actionzs.cli
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.config import load_config

    labels = _models.LABELS_20
    model_dir = str(_models.xclip_b32() if xclip else _models.clip_b32())
    settings = load_config()
    templates = tuple(settings["hypothesis_template"])
    run_options = dict(segments=True, window=8.0, stride=8.0) if xclip else dict(segments=True, fps=1.0)
    out_json = HERE / "out" / "throughput-cli-result.json"

    with actionzs.open_video(video) as v:
        duration, info = v.duration, v.info()
    _bench_log(f"clip {video}: {info['num_frames']} frames, {info['width']}x{info['height']}, {duration:.1f} s")

    series = {k: Series(k) for k in ("naive", "actionzs", "cli", "cli_fresh", "limit_bf16", "limit_fp32",
                                     "load_actionzs", "load_naive", "decode", "preprocess", "text", "score")}

    # actionzs: load once (timed), warm the kernels, then fresh classifiers per run
    with Stopwatch() as sw:
        clf = actionzs.pipeline(model_dir, hypothesis_template=templates, top_k=settings["top_k"], **run_options)
    series["load_actionzs"].add(sw.timing)
    encoder = clf.encoder
    dtype = encoder.model.dtype
    warm = ZeroShotVideoClassifier(encoder, clf.options, batch_size=32).classify(video, labels)  # warm-up run
    embedded = warm.embeddings

    # the frames actionzs embeds, decoded and preprocessed once, for the limit rows
    pre = encoder.preprocessor
    with actionzs.open_video(video) as v:
        if xclip:
            per_span = embedded.indices  # [S, 8]
            unique = np.unique(per_span)
            frames = v.get_frames(unique, pre.decode_size)
            pixels_by_index = dict(zip(unique.tolist(), pre(frames.data)))
            pixels = torch.stack([torch.stack([pixels_by_index[i] for i in row]) for row in per_span.tolist()])
            del pixels_by_index
            batch = 4
        else:
            frame_indices = np.sort(embedded.indices)
            pixels = pre(v.get_frames(frame_indices, pre.decode_size).data)
            batch = 32
    n_frames = int(np.prod(pixels.shape[:2])) if xclip else len(pixels)
    _bench_log(f"actionzs embeds {n_frames} frames" + (f" in {len(pixels)} clips of 8" if xclip else ""))

    model_cls = transformers.XCLIPModel if xclip else transformers.CLIPModel
    fp32 = model_cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    bf16 = encoder.model  # the very module actionzs runs (bfloat16 here)

    def limit(model) -> None:
        with torch.inference_mode():
            for i in range(0, len(pixels), batch):
                x = pixels[i : i + batch].to(model.dtype)
                (model.get_video_features if xclip else model.get_image_features)(pixel_values=x)

    limit(fp32)  # warm-up
    limit(bf16)

    # naive: load (timed), no warm-up (a docs user has none; its first frame is in the timing)
    if not args.no_naive:
        with Stopwatch() as sw:
            if xclip:
                naive_model = transformers.XCLIPModel.from_pretrained(model_dir).eval()
                naive_processor = transformers.XCLIPProcessor.from_pretrained(model_dir)
            else:
                naive_pipe = transformers.pipeline("zero-shot-image-classification", model=model_dir)
        series["load_naive"].add(sw.timing)

    def stages() -> None:
        """The actionzs stages one after another (no overlap), for the breakdown."""
        texts = [t.format(label) for label in labels for t in templates]
        with Stopwatch() as sw:
            with actionzs.open_video(video) as v:
                if xclip:
                    decoded = [b.data for b in v.iter_frames(np.unique(embedded.indices), pre.decode_size, chunk=32)]
                else:
                    decoded = [b.data for b in v.iter_frames(np.sort(embedded.indices), pre.decode_size, chunk=32)]
        series["decode"].add(sw.timing)
        with Stopwatch() as sw:
            for d in decoded:
                pre(d)
        series["preprocess"].add(sw.timing)
        with Stopwatch() as sw:
            encoder.embed_texts(texts)
        series["text"].add(sw.timing)
        scorer = ZeroShotVideoClassifier(encoder, clf.options, batch_size=32)
        parsed, run = scorer.prepare(labels)
        scorer.score(embedded, parsed, run)  # fills the text cache
        with Stopwatch() as sw:
            scorer.score(embedded, parsed, run)
        series["score"].add(sw.timing)

    def measure(key: str, fn):
        return _bench.timed(series[key], fn, args.quiet_wait)

    def load_naive() -> None:
        if xclip:
            transformers.XCLIPModel.from_pretrained(model_dir).eval()
            transformers.XCLIPProcessor.from_pretrained(model_dir)
        else:
            transformers.pipeline("zero-shot-image-classification", model=model_dir)

    naive_frames = None
    for round_no in range(args.repeat):
        _bench_log(f"round {round_no + 1}/{args.repeat} (loadavg {_bench.loadavg()})")
        measure("limit_bf16", lambda: limit(bf16))
        result = measure("actionzs", lambda: ZeroShotVideoClassifier(encoder, clf.options, batch_size=32).classify(video, labels))
        assert result.segments, "actionzs returned no segments"
        measure("limit_fp32", lambda: limit(fp32))
        rc = measure("cli", lambda: actionzs.cli.main(cli_argv(video, model_dir, labels, xclip, out_json)))
        assert rc == 0, f"actionzs CLI exited with {rc}"
        # the loads again, now with imports warm (the first actionzs load above was cold)
        measure("load_actionzs", lambda: actionzs.pipeline(model_dir, hypothesis_template=templates, top_k=settings["top_k"], **run_options))
        if not args.no_naive:
            measure("load_naive", load_naive)
        if round_no == 0:  # a cold process is slow and noisy: once is enough
            command = [sys.executable, "-m", "actionzs", *cli_argv(video, model_dir, labels, xclip, out_json)]
            measure("cli_fresh", lambda: subprocess.run(command, check=True))
        _bench.wait_quiet(args.quiet_wait, window=1.0)
        stages()
        if not args.no_naive and round_no < args.naive_repeat:
            _bench_log("naive path ...")
            if xclip:
                _, naive_frames = measure("naive", lambda: naive_xclip(video, naive_model, naive_processor, labels, embedded.indices))
            else:
                _, naive_frames = measure("naive", lambda: naive_clip(video, naive_pipe, labels))
    records = json.loads(out_json.read_text())
    assert records and "segments" in records[0], "CLI output has no segments"

    return dict(video=video, info=info, duration=duration, n_frames=n_frames, dtype=str(dtype).replace("torch.", ""),
                naive_frames=naive_frames, series=series, xclip=xclip,
                spans=len(pixels) if xclip else None)


def _bench_log(message: str) -> None:
    _models.log(message)


# -- report -----------------------------------------------------------------------------------------

def report(r: dict) -> str:
    s = r["series"]
    n, dur = r["n_frames"], r["duration"]
    lines = []
    kind = "X-CLIP base/32 (8 frames)" if r["xclip"] else "CLIP ViT-B/32"
    info = r["info"]
    lines.append(f"clip: {Path(r['video']).name}  ({info['width']}x{info['height']}, {info['fps']:g} fps, "
                 f"{info['num_frames']} frames, {dur:.1f} s)  model: {kind} shapes, random weights")
    if r["xclip"]:
        lines.append(f"work: {r['spans']} spans (whole clip + 8 s windows, stride 8 s) x 8 frames = {n} frames")
    else:
        lines.append(f"work: {n} frames embedded (1 per second), 20 labels")

    def row(name: str, key: str, frames: int | None) -> list[str]:
        if not s[key].runs:
            return [name, "-", "-", "-", "-", "-", "-", "skipped"]
        b = s[key].best
        fps = f"{frames / b.wall:.1f}" if frames else "-"
        rt = f"{dur / b.wall:.1f}x" if frames else "-"
        return [name, str(frames or "-"), f"{b.wall:.2f}", fps, rt, f"{b.cpu:.2f}", f"{100 * b.others:.0f}%", s[key].walls()]

    naive_name = ("naive: cv2 + XCLIPModel per span (fp32)" if r["xclip"]
                  else "naive: cv2 + zero-shot-image pipeline/frame (fp32)")
    rows = [
        row(naive_name, "naive", r["naive_frames"]),
        row(f"actionzs classify (warm model, fresh caches, {r['dtype']})", "actionzs", n),
        row("actionzs CLI in-process (incl. model load)", "cli", n),
        row("actionzs CLI fresh process (incl. imports+load)", "cli_fresh", n),
        row(f"limit: encoder forward only, {r['dtype']}", "limit_bf16", n),
        row("limit: encoder forward only, float32", "limit_fp32", n),
        row("model load: actionzs.pipeline (1st = cold imports)", "load_actionzs", None),
        row("model load: naive (transformers, fp32)", "load_naive", None),
    ]
    lines.append(_bench.table(rows, ["path", "frames", "wall s", "frames/s", "realtime", "CPU s", "others", "all runs (wall s)"]))

    act = s["actionzs"].best.wall
    lim = s["limit_bf16"].best.wall
    lines.append("")
    if s["naive"].runs:
        ratio = s["naive"].best.wall / act
        lines.append(f"naive / actionzs          = {ratio:5.2f}x   (goal >= {GOAL_NAIVE:g}x: {'MET' if ratio >= GOAL_NAIVE else 'NOT MET'})")
    ratio = act / lim
    lines.append(f"actionzs / limit ({r['dtype']}) = {ratio:5.2f}x   (goal <= {GOAL_LIMIT:g}x: {'MET' if ratio <= GOAL_LIMIT else 'NOT MET'})")
    lines.append(f"actionzs / limit (float32)  = {act / s['limit_fp32'].best.wall:5.2f}x")
    lines.append(f"CLI in-process / actionzs   = {s['cli'].best.wall / act:5.2f}x  (model load, settings, JSON output)")

    stage_rows = []
    total = 0.0
    for name, key in (("decode (open + decord at decode size)", "decode"), ("preprocess (crop, normalise)", "preprocess"),
                      (f"image encoder ({r['dtype']}) = limit", "limit_bf16"), ("text encoder (20 labels x 5 templates)", "text"),
                      ("score + segments + events", "score")):
        b = s[key].best
        total += b.wall
        stage_rows.append([name, f"{b.wall:.2f}", f"{b.cpu:.2f}", f"{100 * b.others:.0f}%", s[key].walls()])
    stage_rows.append(["sum of stages (serial)", f"{total:.2f}", "", "", ""])
    stage_rows.append(["actionzs classify (overlapped)", f"{act:.2f}", f"{s['actionzs'].best.cpu:.2f}", "", ""])
    lines.append("")
    lines.append("where actionzs's time goes (each stage alone, best run):")
    lines.append(_bench.table(stage_rows, ["stage", "wall s", "CPU s", "others", "all runs"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    _models.start()
    width, height = (int(v) for v in args.size.lower().split("x"))
    clips = [str(_models.clip(args.seconds, width=width, height=height))]
    if args.long:
        clips.append(str(_models.clip(600, width=width, height=height)))
    outputs = []
    for video in clips:
        result = run_clip(video, args, args.xclip)
        text = report(result)
        outputs.append(text)
        print()
        print(text, flush=True)
    print(f"\nloadavg at end: {_bench.loadavg()}; torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
