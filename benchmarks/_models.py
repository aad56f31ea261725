"""Benchmark fixtures: full-size random checkpoints and generated clips, built once and cached.

Everything lands in benchmarks/out/ (git-ignored); delete a folder there to rebuild it.

Checkpoints have the real shapes (so compute and memory are real) and random weights (so scores are
meaningless). Nothing is downloaded:

* ``clip_b32()``  -- CLIP ViT-B/32: ``CLIPConfig()`` defaults (vision 768 wide, 12 layers, patch 32,
  224 px; text 512 wide, 12 layers, 77 positions; projection 512), saved with
  ``CLIPProcessor(CLIPImageProcessorPil(), tokenizer)``.
* ``xclip_b32()`` -- X-CLIP base/32: ``XCLIPConfig()`` defaults with 8 frames, saved with
  ``XCLIPProcessor(VideoMAEImageProcessorPil(), tokenizer)``.
* ``tiny_clip()`` -- the test suite's tiny CLIP (32 wide, 2 layers) for quick runs.

The tokenizer is a CLIPTokenizer built in code: 256 byte tokens, 256 end-of-word byte tokens,
<|startoftext|> = 512, <|endoftext|> = 513 (as in tests/conftest.py), plus BPE merges that spell every
word of the benchmark labels and prompt templates as ONE token, the way the real CLIP vocabulary does
for common English words. Without those merges every character would be a token and a prompt such as
"a video of a person playing guitar." would be 31 tokens instead of the real 10, making the text
encoder about 3x slower than with the real checkpoint. The text config's vocab_size is set to the
tokenizer's size (bos 512, eos 513, pad 513); every other text shape is the ViT-B/32 default.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
MODELS = OUT / "models"
CLIPS = OUT / "clips"

#: The 20 labels of the throughput benchmark.
LABELS_20 = [
    "playing guitar", "riding a bike", "cooking", "swimming", "running", "dancing", "playing basketball",
    "playing soccer", "typing on a keyboard", "reading a book", "walking the dog", "brushing teeth",
    "juggling balls", "doing push ups", "skateboarding", "painting a wall", "washing dishes",
    "climbing a rock wall", "playing the piano", "lifting weights",
]

#: 100 other labels (no overlap with LABELS_20) for the re-scoring benchmark.
LABELS_100 = [
    "archery", "arm wrestling", "baking cookies", "balloon blowing", "bandaging", "barbequing", "bartending",
    "beatboxing", "bee keeping", "belly dancing", "bench pressing", "bending back", "biking through snow",
    "blasting sand", "blowing glass", "blowing leaves", "blowing nose", "bobsledding", "bookbinding",
    "bouncing on trampoline", "bowling", "braiding hair", "breakdancing", "building cabinet",
    "building shed", "bungee jumping", "busking", "canoeing", "capoeira", "carrying baby",
    "cartwheeling", "carving pumpkin", "catching fish", "celebrating", "changing oil", "changing wheel",
    "checking tires", "cheerleading", "chopping wood", "clapping", "cleaning floor", "cleaning gutters",
    "cleaning pool", "cleaning shoes", "cleaning toilet", "cleaning windows", "climbing ladder",
    "climbing tree", "contact juggling", "cooking chicken", "cooking egg", "counting money",
    "country line dancing", "cracking neck", "crawling baby", "crossing river", "crying", "curling hair",
    "cutting nails", "cutting pineapple", "cutting watermelon", "dancing ballet", "dancing gangnam style",
    "decorating the christmas tree", "digging", "dining", "disc golfing", "diving cliff", "dodgeball",
    "doing aerobics", "doing laundry", "doing nails", "drawing", "dribbling basketball", "drinking",
    "drinking beer", "driving car", "driving tractor", "drop kicking", "drumming fingers", "dunking basketball",
    "dying hair", "eating burger", "eating cake", "eating carrots", "eating chips", "eating doughnuts",
    "eating hotdog", "eating ice cream", "eating spaghetti", "eating watermelon", "egg hunting",
    "exercising arm", "exercising with an exercise ball", "extinguishing fire", "faceplanting",
    "feeding birds", "feeding fish", "feeding goats", "filling eyebrows",
]

#: Prompt templates the benchmarks may use: actionzs's default and its default.yaml ensemble, and the
#: template transformers' zero-shot image pipeline applies.
TEMPLATES = [
    "a video of {}.", "a photo of a person {}.", "a video of a person {}.", "an example of a person {}.",
    "a demonstration of a person {}.", "This is a photo of {}.",
]

_TEXT = dict(max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# -- tokenizer ------------------------------------------------------------------------------------

def _words() -> list[str]:
    text = " ".join(LABELS_20 + LABELS_100 + TEMPLATES).lower().replace("{}", " ")
    return sorted(set(re.findall(r"[a-z]+", text)), key=lambda w: (len(w), w))


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: merge the best-ranked adjacent pair until none is known."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(ranks.get(pair, len(ranks) + 1), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank > len(ranks):
            break
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def build_tokenizer(folder: Path):
    """A CLIPTokenizer whose vocabulary holds the byte tokens plus one token per benchmark word."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    words = [list(w[:-1]) + [w[-1] + "</w>"] for w in _words()]
    for _ in range(20):  # add merges until every word encodes as one token (later merges rank lower)
        pending = [pieces for pieces in (_bpe(w, ranks) for w in words) if len(pieces) > 1]
        if not pending:
            break
        for pieces in pending:
            left = pieces[0]
            for right in pieces[1:]:
                if (left, right) not in ranks:
                    ranks[(left, right)] = len(merges)
                    merges.append((left, right))
                left = left + right
                vocab.setdefault(left, len(vocab))
    merges_text = "\n".join(f"{a} {b}" for a, b in merges)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges_text + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def _done(folder: Path) -> bool:
    return (folder / ".complete").is_file()


def _build(folder: Path, make) -> Path:
    if _done(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    make(tmp)
    (tmp / ".complete").write_text("ok\n")
    os.replace(tmp, folder)
    log(f"built {folder} in {time.perf_counter() - started:.1f} s")
    return folder


# -- checkpoints -------------------------------------------------------------------------------------

def _random_checkpoint(name: str, build) -> Path:
    """A checkpoint with random weights (seed 0), float32 safetensors, and this file's tokenizer:
    `build(tokenizer)` returns the (model, processor) to save."""

    def make(folder: Path) -> None:
        import torch

        tokenizer = build_tokenizer(folder / "_tokenizer_src")
        torch.manual_seed(0)
        model, processor = build(tokenizer)
        model.eval().save_pretrained(folder)
        processor.save_pretrained(folder)
        shutil.rmtree(folder / "_tokenizer_src")

    return _build(MODELS / name, make)


def clip_b32() -> Path:
    """CLIP ViT-B/32 shapes."""

    def build(tokenizer):
        from transformers import CLIPConfig, CLIPModel, CLIPProcessor
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        config = CLIPConfig(text_config=dict(_TEXT, vocab_size=len(tokenizer)))
        return CLIPModel(config), CLIPProcessor(CLIPImageProcessorPil(), tokenizer)

    return _random_checkpoint("clip-vit-b32-random", build)


def xclip_b32() -> Path:
    """X-CLIP base/32 shapes (8 frames)."""

    def build(tokenizer):
        from transformers import XCLIPConfig, XCLIPModel, XCLIPProcessor
        from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

        config = XCLIPConfig(text_config=dict(_TEXT, vocab_size=len(tokenizer)), vision_config=dict(num_frames=8))
        return XCLIPModel(config), XCLIPProcessor(VideoMAEImageProcessorPil(), tokenizer)

    return _random_checkpoint("xclip-b32-8f-random", build)


def tiny_clip() -> Path:
    """The test suite's tiny CLIP shapes (32 wide, 2 layers, projection 16)."""

    def build(tokenizer):
        from transformers import CLIPConfig, CLIPModel, CLIPProcessor
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        text = dict(_TEXT, vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      image_size=224, patch_size=32)
        config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        return CLIPModel(config), CLIPProcessor(CLIPImageProcessorPil(), tokenizer)

    return _random_checkpoint("clip-tiny-random", build)


MODEL_BUILDERS = {"b32": clip_b32, "xclip": xclip_b32, "tiny": tiny_clip}


# -- clips ---------------------------------------------------------------------------------------------

def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture (blobs of a few tens of pixels), twice the frame size for scrolling."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)  # a little grain, like a real camera
    return np.clip(smooth.astype(np.int16) + fine, 0, 255).astype(np.uint8)


def write_moving_clip(
    path: Path, seconds: float, *, width: int = 1280, height: int = 720, fps: int = 25, gop: int = 250,
    preset: str = "ultrafast", crf: int = 23, seed: int = 0, bframes: int = 0, codec: str = "h264",
) -> Path:
    """H.264 (yuv420p) clip: a textured background panning diagonally, a bright square crossing it, and a
    scene change (new texture) every 20 s so the content is not one static shot; `bframes` B-frames
    between references (the preset's own, 0 for ultrafast, when 0). `codec="mpeg4"`: MPEG-4 Part 2 at
    4 Mbit/s instead (for an AVI, as older camera recorders write). Written with PyAV."""
    import av

    frames = int(round(seconds * fps))
    scenes = [_texture(2 * height, 2 * width, seed + k) for k in range(4)]
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    started = time.perf_counter()
    with av.open(str(tmp), "w") as container:
        if codec == "mpeg4":
            stream = container.add_stream("mpeg4", rate=Fraction(fps))
            stream.bit_rate = 4_000_000
            stream.options = {"g": str(gop), "bf": str(bframes)}
        else:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.options = {"preset": preset, "crf": str(crf), "g": str(gop), "keyint_min": str(min(gop, 25)),
                              **({"bf": str(bframes)} if bframes else {})}
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        box = max(8, height // 6)
        for i in range(frames):
            scene = scenes[(i // (20 * fps)) % len(scenes)]
            step = i % (20 * fps)
            y, x = (2 * step) % height, (3 * step) % width  # pan 2 px down, 3 px right per frame
            frame = scene[y : y + height, x : x + width].copy()
            by = int((height - box) * (0.5 + 0.4 * np.sin(i / 17)))
            bx = (7 * i) % (width - box)
            frame[by : by + box, bx : bx + box] = (250, 250, 240)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    size = path.stat().st_size
    log(f"wrote {path.name}: {frames} frames {width}x{height} @ {fps} fps, GOP {gop}, {bframes} B-frames, "
        f"{size / 2**20:.1f} MiB ({8 * size / seconds / 1e6:.2f} Mbit/s) in {time.perf_counter() - started:.1f} s")
    return path


def clip(
    seconds: float, *, width: int = 1280, height: int = 720, fps: int = 25, gop: int = 250, bframes: int = 0,
    codec: str = "h264",
) -> Path:
    """The cached benchmark clip of this length, size, GOP, B-frames and codec (generated on first use):
    H.264 in MP4, or MPEG-4 Part 2 in AVI."""
    CLIPS.mkdir(parents=True, exist_ok=True)
    tail = f"-b{bframes}" if bframes else ""
    kind = "-mpeg4.avi" if codec == "mpeg4" else ".mp4"
    path = CLIPS / f"moving-{width}x{height}-{fps}fps-g{gop}{tail}-{int(seconds)}s{kind}"
    if not path.is_file():
        log(f"generating {path.name} (cached for later runs) ...")
        write_moving_clip(path, seconds, width=width, height=height, fps=fps, gop=gop, bframes=bframes, codec=codec)
    return path


def shown(text: str) -> str:
    """`text` with this checkout's path and the site-packages folder shortened, for printed output."""
    import sysconfig

    root = str(Path(__file__).resolve().parents[1]) + "/"
    return text.replace(root, "").replace(sysconfig.get_paths()["purelib"] + "/", "site-packages/")


def code_version() -> str:
    """The repository commit the benchmark measured (with "+dirty" when actionzs/ has local changes)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "actionzs"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start(note: str = "") -> None:
    """What every benchmark does first: transformers' progress bars and warnings off, then the
    header its figures are read against (date and time, the machine and `note`, the load)."""
    import _bench

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    print(f"date: {datetime.datetime.now():%Y-%m-%d  %H:%M:%S}")
    print(f"machine: {machine()}" + (f"; {note}" if note else ""))
    print(f"loadavg at start: {_bench.loadavg()}; others' CPU now: {100 * _bench.others_load(1.0):.0f}%")


def machine() -> str:
    """CPU model, cores, torch version and thread count, as one line."""
    import platform

    import torch

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        isa = ",".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "no native bf16"
    except OSError:
        isa = "?"
    try:
        import transformers

        tf = transformers.__version__
    except ImportError:
        tf = "?"
    return (f"{model} ({isa}), {os.cpu_count()} logical CPUs, python {platform.python_version()}, torch "
            f"{torch.__version__}, transformers {tf}, torch.get_num_threads()={torch.get_num_threads()}; "
            f"actionzs at commit {code_version()}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Build the cached benchmark checkpoints and clips.")
    parser.add_argument("what", nargs="*", default=["b32", "xclip", "tiny", "clip60"],
                        help="b32, xclip, tiny, clip60, clip600")
    for item in parser.parse_args().what:
        if item in MODEL_BUILDERS:
            print(MODEL_BUILDERS[item]())
        elif item.startswith("clip"):
            print(clip(float(item[4:])))
        else:
            parser.error(f"unknown item {item!r}")
