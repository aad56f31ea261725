"""actionzs scores equal what plain transformers computes for the same frames, texts and checkpoint.

The first clips are generated at sizes the model's resize leaves alone (shortest side 224 for CLIP
and X-CLIP, 224x224 for SigLIP, which resizes to a fixed square). Then every other size: clips from
16x16 to 640x360 and 50x600 against the processor run on the frames PyAV decodes, still images of
every size and mode (tiny, very wide, palette, 16-bit, CMYK, transparency, EXIF orientations)
against the zero-shot-image pipeline, and the preprocessor against each processor setting. The
comparison is exact up to float rounding. Everything runs in float32 unless a test is about bfloat16.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import actionzs
from actionzs.testing import write_clip

LABELS = ["running", "jumping", "a cat sitting", "swimming in a lake", "playing the guitar"]
PHOTO = "a photo of {}."
TOL = 1e-4


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory) -> Path:
    """298x224: CLIP/X-CLIP resize the shortest side to 224, so no resize happens anywhere."""
    return write_clip(tmp_path_factory.mktemp("parity") / "wide.mp4", 40, average_fps=10, width=298, height=224,
                      scenes=lambda i: i // 10)


@pytest.fixture(scope="module")
def square_clip(tmp_path_factory) -> Path:
    """224x224: SigLIP resizes to exactly 224x224 (aspect not kept), so no resize happens anywhere."""
    return write_clip(tmp_path_factory.mktemp("parity") / "square.mp4", 40, average_fps=10, width=224, height=224,
                      scenes=lambda i: i // 10)


@pytest.fixture(scope="module")
def siglip_scaled_dir(siglip_dir, tmp_path_factory) -> Path:
    """The tiny SigLIP with a non-trivial logit scale and bias (a fresh SigLIP has scale 1, bias 0,
    which would not show whether the bias is applied)."""
    from transformers import AutoModel, AutoProcessor

    folder = tmp_path_factory.mktemp("tiny-siglip-scaled")
    model = AutoModel.from_pretrained(siglip_dir).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(3.5)  # tiny SigLIP cosines sit near -0.35: scores spread over 0.2..0.7
    model.save_pretrained(folder)
    AutoProcessor.from_pretrained(siglip_dir).save_pretrained(folder)
    return folder


@functools.lru_cache(maxsize=None)
def hf_model(model_dir: str):
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval(), AutoProcessor.from_pretrained(model_dir)


@functools.lru_cache(maxsize=None)
def classifier(model_dir: str, dtype: str = "float32", backend: str = "auto"):
    return actionzs.pipeline(model_dir, dtype=dtype, backend=backend)


@functools.lru_cache(maxsize=None)
def image_pipeline(model_dir: str):
    import transformers

    return transformers.pipeline("zero-shot-image-classification", model=model_dir, dtype=torch.float32)


DUAL = {
    # name: (checkpoint fixture, clip fixture, SigLIP-style head)
    "clip": ("clip_dir", "wide_clip", False),
    "siglip": ("siglip_dir", "square_clip", True),
    "siglip-scaled": ("siglip_scaled_dir", "square_clip", True),
}


@pytest.fixture(params=sorted(DUAL))
def dual(request):
    model_fixture, clip_fixture, siglip = DUAL[request.param]
    return str(request.getfixturevalue(model_fixture)), str(request.getfixturevalue(clip_fixture)), siglip


def decode(path: str, indices) -> np.ndarray:
    with actionzs.open_video(path) as video:
        return video.get_frames(np.asarray(indices)).data


def text_inputs(siglip: bool) -> dict:
    """How transformers' own zero-shot pipeline tokenises for each model family."""
    return {"padding": "max_length", "max_length": 64} if siglip else {"padding": True}


def by_label(results: list[dict], key: str = "score") -> np.ndarray:
    scores = {r["label"]: r[key] for r in results}
    assert sorted(scores) == sorted(LABELS)
    return np.array([scores[label] for label in LABELS])


def assert_sorted(results: list[dict]) -> None:
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


# -- CLIP and SigLIP: clip-level and single-frame scores -----------------------------------------


@torch.no_grad()
def test_clip_score_matches_transformers_forward(dual):
    model_dir, path, siglip = dual
    clf = classifier(model_dir)
    embeddings = clf.embed(path)
    assert isinstance(embeddings, actionzs.FrameEmbeddings)
    assert len(embeddings) == 8 and len(set(embeddings.indices.tolist())) == 8

    expected, cosine = frame_scores(model_dir, decode(path, embeddings.indices), siglip)

    results = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO)
    assert_sorted(results)
    np.testing.assert_allclose(by_label(results), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(by_label(results, "similarity"), cosine, atol=TOL, rtol=0)
    if not siglip:
        assert sum(r["score"] for r in results) == pytest.approx(1.0, abs=1e-5)


@torch.no_grad()
def test_single_frame_matches_logits_per_image(dual):
    model_dir, path, siglip = dual
    clf = classifier(model_dir)
    embeddings = clf.embed(path, num_frames=1)
    assert len(embeddings) == 1
    assert embeddings.indices.tolist() == [20]  # the frame at the centre of the 4 s clip

    model, processor = hf_model(model_dir)
    frames = decode(path, embeddings.indices)
    texts = [PHOTO.format(label) for label in LABELS]
    inputs = processor(images=list(frames), text=texts, return_tensors="pt", **text_inputs(siglip))
    logits = model(**inputs).logits_per_image[0]
    expected = torch.sigmoid(logits) if siglip else logits.softmax(dim=-1)

    results = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO, num_frames=1)
    np.testing.assert_allclose(by_label(results), expected.numpy(), atol=TOL, rtol=0)


def test_frames_are_preprocessed_exactly_like_the_image_processor(dual):
    """The tensors the encoder sees equal the image processor's, not only the final scores."""
    model_dir, path, _ = dual
    clf = classifier(model_dir)
    indices = clf.embed(path).indices
    _, processor = hf_model(model_dir)
    preprocess = clf.encoder.preprocessor
    with actionzs.open_video(path) as video:
        ours = preprocess(video.get_frames(indices, preprocess.decode_size).data)
    theirs = processor.image_processor(images=list(decode(path, indices)), return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


# -- X-CLIP: whole clip and one window ------------------------------------------------------------


@torch.no_grad()
def xclip_reference(model_dir: str, frames: np.ndarray, texts: list[str]) -> np.ndarray:
    model, processor = hf_model(model_dir)
    inputs = processor(videos=[list(frames)], text=texts, return_tensors="pt", padding=True)
    return model(**inputs).logits_per_video.softmax(dim=-1)[0].numpy()


def test_xclip_whole_clip_matches_transformers_forward(xclip_dir, wide_clip):
    model_dir, path = str(xclip_dir), str(wide_clip)
    clf = classifier(model_dir)
    embeddings = clf.embed(path)
    assert isinstance(embeddings, actionzs.ClipEmbeddings)
    assert embeddings.indices.shape == (1, 8)
    texts = [PHOTO.format(label) for label in LABELS]
    expected = xclip_reference(model_dir, decode(path, embeddings.indices[0]), texts)

    results = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO)
    assert_sorted(results)
    np.testing.assert_allclose(by_label(results), expected, atol=TOL, rtol=0)


def test_xclip_segments_match_transformers_forward_on_their_frames(xclip_dir, wide_clip):
    model_dir, path = str(xclip_dir), str(wide_clip)
    clf = classifier(model_dir)
    run = dict(segments=True, window=2.0, stride=1.0)
    embeddings = clf.embed(path, **run)
    output = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO, **run)
    segments = output["segments"]
    assert len(segments) == 3 and embeddings.indices.shape == (4, 8)
    texts = [PHOTO.format(label) for label in LABELS]
    # the clip score with segments on is still the whole clip's
    expected_clip = xclip_reference(model_dir, decode(path, embeddings.indices[0]), texts)
    np.testing.assert_allclose(by_label(output["labels"]), expected_clip, atol=TOL, rtol=0)
    for k in (0, 2):
        frames = embeddings.indices[k + 1]
        start, end = segments[k]["start"], segments[k]["end"]
        assert np.all((frames >= start * 10) & (frames < end * 10))  # the window's own frames (10 fps)
        expected = xclip_reference(model_dir, decode(path, frames), texts)
        np.testing.assert_allclose(by_label(segments[k]["labels"]), expected, atol=TOL, rtol=0)


# -- still images: the transformers zero-shot-image-classification pipeline -----------------------


@pytest.fixture(scope="module")
def pattern_image():
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:300]
    pixels = np.stack([xx * 255 // 299, yy * 255 // 239, ((xx + yy) % 64) * 4], axis=-1).astype(np.uint8)
    pixels[60:180, 80:220] = rng.integers(0, 256, (120, 140, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_image_matches_transformers_zero_shot_image_pipeline(dual, pattern_image, tmp_path):
    import transformers

    model_dir, _, _ = dual
    template = "This is a photo of {}."
    hf = transformers.pipeline("zero-shot-image-classification", model=model_dir, dtype=torch.float32)
    expected = {r["label"]: r["score"] for r in hf(pattern_image, candidate_labels=LABELS)}
    expected = np.array([expected[label] for label in LABELS])

    clf = classifier(model_dir)
    from_pil = clf(pattern_image, candidate_labels=LABELS, hypothesis_template=template)
    assert_sorted(from_pil)
    np.testing.assert_allclose(by_label(from_pil), expected, atol=TOL, rtol=0)

    png = tmp_path / "pattern.png"
    pattern_image.save(png)
    from_file = clf(str(png), candidate_labels=LABELS, hypothesis_template=template)
    np.testing.assert_allclose(by_label(from_file), expected, atol=TOL, rtol=0)
    from_array = clf(np.asarray(pattern_image), candidate_labels=LABELS, hypothesis_template=template)
    np.testing.assert_allclose(by_label(from_array), expected, atol=TOL, rtol=0)


# -- every image size and mode --------------------------------------------------------------------


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 RGB [height, width, 3]: gradients with a block of noise, so any resampling difference shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), ((xx + yy) % 64) * 4], axis=-1)
    pixels = pixels.astype(np.uint8)
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = rng.integers(
        0, 256, (3 * height // 4 - height // 4, 3 * width // 4 - width // 4, 3), dtype=np.uint8
    )
    return pixels


def _with_alpha(image, seed: int = 1):
    from PIL import Image

    alpha = np.random.default_rng(seed).integers(0, 256, image.size[::-1], dtype=np.uint8)
    image = image.copy()
    image.putalpha(Image.fromarray(alpha))
    return image


def write_image(case: str, folder: Path) -> Path:
    """The image file of `case`: "rgb-WxH", a PIL mode, or "exif-N" (a JPEG with orientation N)."""
    from PIL import Image

    base = Image.fromarray(texture(61, 47))  # not square: every EXIF rotation changes the shape
    path = folder / f"{case}.png"
    if case.startswith("rgb-"):
        width, height = map(int, case[4:].split("x"))
        Image.fromarray(texture(width, height)).save(path)
    elif case.startswith("exif-"):
        exif = Image.Exif()
        exif[0x0112] = int(case[5:])
        path = path.with_suffix(".jpg")
        base.save(path, quality=95, exif=exif.tobytes())
    elif case == "CMYK":
        path = path.with_suffix(".jpg")
        base.convert("CMYK").save(path, quality=95)
    elif case == "I;16":
        Image.fromarray(texture(61, 47)[..., 0].astype(np.uint16) * 257 + 3).save(path)  # 16-bit grey PNG
    elif case in ("RGBA", "LA"):
        _with_alpha(base.convert(case[:-1])).save(path)
    elif case.startswith("P"):
        palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        if case == "P-transparent":  # one palette entry transparent (tRNS): PIL reads it as an index
            palette.save(path, transparency=palette.getpixel((30, 23)))
        elif case == "P-alpha-palette":  # an alpha value for every palette entry
            palette.save(path, transparency=bytes(range(0, 256, 8)))
        else:
            palette.save(path)
    elif case == "L-transparent":
        grey = base.convert("L")
        grey.save(path, transparency=grey.getpixel((30, 23)))
    elif case == "RGB-transparent":
        base.save(path, transparency=base.getpixel((30, 23)))
    else:  # a plain mode: "L", "1"
        base.convert(case).save(path)
    return path


IMAGE_CASES = (
    [f"rgb-{w}x{h}" for w, h in [(300, 240), (1, 1), (3, 5), (5, 3), (1000, 7), (7, 1000), (50, 40), (223, 225), (161, 121)]]
    + ["L", "1", "LA", "RGBA", "P", "P-transparent", "P-alpha-palette", "L-transparent", "RGB-transparent", "I;16", "CMYK"]
    + [f"exif-{n}" for n in range(1, 9)]
)
#: The image pipeline's checkpoints: CLIP, and the SigLIP whose scores move most with the pixels.
IMAGE_MODELS = {"clip": "clip_dir", "siglip-scaled": "siglip_scaled_dir"}


@pytest.mark.filterwarnings("ignore:Palette images with Transparency expressed in bytes")  # PIL, on both sides
@pytest.mark.parametrize("case", IMAGE_CASES)
@pytest.mark.parametrize("model", sorted(IMAGE_MODELS))
def test_every_image_size_and_mode_matches_the_zero_shot_image_pipeline(model, case, tmp_path, request):
    """A path, the PIL image opened from it and its pixel array score as transformers' pipeline
    scores the same input (an array as the pipeline scores `Image.fromarray` of it), and the model
    sees the image processor's own tensor."""
    from PIL import Image
    from transformers.image_utils import load_image

    model_dir = str(request.getfixturevalue(IMAGE_MODELS[model]))
    path = write_image(case, tmp_path)
    template = "This is a photo of {}."
    hf, clf = image_pipeline(model_dir), classifier(model_dir)

    expected = by_label(hf(str(path), candidate_labels=LABELS))
    from_path = clf(str(path), candidate_labels=LABELS, hypothesis_template=template)
    np.testing.assert_allclose(by_label(from_path), expected, atol=TOL, rtol=0)
    with Image.open(path) as image:
        from_pil = clf(image, candidate_labels=LABELS, hypothesis_template=template)
        np.testing.assert_allclose(by_label(from_pil), expected, atol=TOL, rtol=0)
        array = np.asarray(image)
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] in (3, 4):  # RGB, RGBA: the arrays accepted
        from_array = clf(array, candidate_labels=LABELS, hypothesis_template=template)
        expected_array = by_label(hf(Image.fromarray(array), candidate_labels=LABELS))
        np.testing.assert_allclose(by_label(from_array), expected_array, atol=TOL, rtol=0)

    preprocess = clf.encoder.preprocessor
    with actionzs.open_video(path) as video:
        ours = preprocess(video.get_frames([0], preprocess.decode_size).data)
    theirs = hf.image_processor(images=[load_image(str(path))], return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


# -- video frames of every size -------------------------------------------------------------------


def write_textured_clip(path: Path, width: int, height: int, num_frames: int = 6, codec: str = "libx264",
                        pix_fmt: str = "yuv420p") -> Path:
    """A 10 fps clip whose frames are `texture`s (a new noise block each frame)."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(texture(width, height, seed=i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pyav_frames(path: str, indices) -> np.ndarray:
    """The frames at `indices` as PyAV decodes them (RGB), at the clip's own size."""
    import av

    with av.open(path) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack([frames[i] for i in np.asarray(indices)])


#: (width, height, codec, pixel format). The odd size is stored in 4:4:4, where every decoder turns
#: YUV into the same RGB as PyAV; in 4:2:0 an odd height makes FFmpeg's colour conversions differ.
CLIP_SIZES = [
    (16, 16, "libx264", "yuv420p"), (100, 60, "libx264", "yuv420p"), (161, 121, "libx264", "yuv444p"),
    (224, 224, "libx264", "yuv420p"), (640, 360, "libx264", "yuv420p"), (50, 600, "libx264", "yuv420p"),
]


@pytest.fixture(scope="module")
def sized_clips(tmp_path_factory) -> dict[tuple[int, int], str]:
    pytest.importorskip("av")
    folder = tmp_path_factory.mktemp("sized")
    return {(w, h): str(write_textured_clip(folder / f"{w}x{h}.mp4", w, h, codec=codec, pix_fmt=fmt))
            for w, h, codec, fmt in CLIP_SIZES}


@torch.no_grad()
def frame_scores(model_dir: str, frames: np.ndarray, siglip: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scores, cosines) of the mean frame embedding, with plain transformers on processor(frames)."""
    model, processor = hf_model(model_dir)
    texts = [PHOTO.format(label) for label in LABELS]
    inputs = processor(images=list(frames), text=texts, return_tensors="pt", **text_inputs(siglip))
    out = model(**inputs)
    images = out.image_embeds / out.image_embeds.norm(dim=-1, keepdim=True)
    clip = images.mean(dim=0)
    clip = clip / clip.norm()
    text = out.text_embeds / out.text_embeds.norm(dim=-1, keepdim=True)
    cosine = text @ clip
    logits = model.logit_scale.exp() * cosine
    scores = torch.sigmoid(logits + model.logit_bias) if siglip else logits.softmax(dim=-1)
    return scores.numpy(), cosine.numpy()


@pytest.mark.parametrize("size", [f"{w}x{h}" for w, h, _, _ in CLIP_SIZES])
@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_frames_of_every_size_are_preprocessed_like_the_image_processor(dual, sized_clips, backend, size):
    """Whatever the frame size, the classifier scores what plain transformers scores on
    processor(the frames PyAV decodes), and the model sees the processor's own tensor."""
    if backend == "decord":
        pytest.importorskip("decord")
    model_dir, _, siglip = dual
    path = sized_clips[tuple(map(int, size.split("x")))]
    clf = classifier(model_dir, backend=backend)
    try:
        indices = clf.embed(path, num_frames=4).indices
    except actionzs.VideoDecodeError as error:
        assert backend == "decord" and size == "16x16", error  # decord cannot copy frames this narrow
        return
    frames = pyav_frames(path, indices)

    preprocess = clf.encoder.preprocessor
    with actionzs.open_video(path, backend) as video:
        ours = preprocess(video.get_frames(indices, preprocess.decode_size).data)
    theirs = hf_model(model_dir)[1].image_processor(images=list(frames), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)

    expected, cosine = frame_scores(model_dir, frames, siglip)
    results = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO, num_frames=4)
    np.testing.assert_allclose(by_label(results), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(by_label(results, "similarity"), cosine, atol=TOL, rtol=0)


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_odd_sized_420_frames_are_preprocessed_like_the_image_processor(clip_dir, tmp_path, codec):
    """161x121 in 4:2:0 (decord, OpenCV and PyAV each turn its YUV into slightly other RGB): the
    tensors equal the image processor's on the frames each backend decodes at full size."""
    path = str(write_textured_clip(tmp_path / f"odd.{'avi' if codec == 'mpeg4' else 'mp4'}", 161, 121, codec=codec,
                                   pix_fmt="yuv420p" if codec == "mpeg4" else "yuv444p"))
    clf = classifier(str(clip_dir))
    preprocess = clf.encoder.preprocessor
    processor = hf_model(str(clip_dir))[1].image_processor
    for backend in ("decord", "opencv"):
        with actionzs.open_video(path, backend) as video:
            indices = np.arange(video.num_frames)
            full = video.get_frames(indices).data
            ours = preprocess(video.get_frames(indices, preprocess.decode_size).data)
        theirs = processor(images=list(full), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_xclip_resizes_with_its_processors_filter(xclip_dir, sized_clips):
    """X-CLIP's VideoMAE processor resizes bilinear (CLIP's bicubic): 640x360 frames, whole clip."""
    model_dir, path = str(xclip_dir), sized_clips[(640, 360)]
    clf = classifier(model_dir)
    embeddings = clf.embed(path)
    texts = [PHOTO.format(label) for label in LABELS]
    expected = xclip_reference(model_dir, pyav_frames(path, embeddings.indices[0]), texts)
    results = clf(path, candidate_labels=LABELS, hypothesis_template=PHOTO)
    np.testing.assert_allclose(by_label(results), expected, atol=TOL, rtol=0)


# -- the preprocessor against the image processor, for every processor setting ----------------------


def _processors() -> dict:
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    return {
        "clip": CLIPImageProcessorPil(),
        "clip-no-resize": CLIPImageProcessorPil(do_resize=False),  # small frames are padded to the crop
        "clip-short-201": CLIPImageProcessorPil(size={"shortest_edge": 201}),  # odd padding around 201
        "clip-lanczos": CLIPImageProcessorPil(resample=Image.Resampling.LANCZOS),
        "clip-nearest": CLIPImageProcessorPil(resample=Image.Resampling.NEAREST),
        "siglip": SiglipImageProcessorPil(),
        "videomae": VideoMAEImageProcessorPil(),
    }


FRAME_SIZES = [(1, 1), (3, 5), (5, 3), (5, 200), (200, 5), (121, 161), (223, 225), (224, 224), (360, 640)]


@pytest.mark.parametrize("name", sorted(_processors()))
def test_preprocessor_equals_the_image_processor_for_any_frame_size(name):
    from actionzs.preprocess import FramePreprocessor

    processor = _processors()[name]
    preprocess = FramePreprocessor(processor)
    for height, width in FRAME_SIZES:
        frames = np.stack([texture(width, height, seed) for seed in range(2)])
        theirs = processor(images=list(frames), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        theirs = theirs.flatten(0, -4)  # VideoMAE's processor makes a batch of one video
        ours = preprocess(frames)
        assert ours.shape == theirs.shape, (height, width)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0, msg=lambda m: f"{height}x{width}: {m}")


def test_preprocessor_equals_a_torchvision_image_processor():
    pytest.importorskip("torchvision")
    from transformers.models.clip.image_processing_clip import CLIPImageProcessor
    from transformers.models.siglip.image_processing_siglip import SiglipImageProcessor

    from actionzs.preprocess import FramePreprocessor

    for processor in (CLIPImageProcessor(), CLIPImageProcessor(do_resize=False), SiglipImageProcessor()):
        assert processor.backend == "torchvision"
        preprocess = FramePreprocessor(processor)
        for height, width in FRAME_SIZES:
            frames = np.stack([texture(width, height, seed) for seed in range(2)])
            theirs = processor(images=list(frames), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
            torch.testing.assert_close(preprocess(frames), theirs, atol=1e-5, rtol=0)


# -- bfloat16 against float32 ---------------------------------------------------------------------

BF16_LABELS = LABELS + ["a dog", "cooking dinner", "riding a horse"]
#: Largest score difference accepted between bfloat16 and float32 weights. X-CLIP passes its frames
#: through two more transformers (MIT and the prompt generator), so it drifts further.
BF16_TOL = {"clip": 0.02, "siglip-scaled": 0.02, "xclip": 0.05}


@pytest.mark.parametrize("name", sorted(BF16_TOL))
def test_bfloat16_ranks_and_scores_agree_with_float32(name, request):
    model_fixture, clip_fixture = {
        "clip": ("clip_dir", "wide_clip"), "siglip-scaled": ("siglip_scaled_dir", "square_clip"),
        "xclip": ("xclip_dir", "wide_clip"),
    }[name]
    model_dir, path = str(request.getfixturevalue(model_fixture)), str(request.getfixturevalue(clip_fixture))
    tol = BF16_TOL[name]
    full, half = classifier(model_dir, "float32"), classifier(model_dir, "bfloat16")
    assert full.encoder.model.dtype == torch.float32 and half.encoder.model.dtype == torch.bfloat16

    a = full(path, candidate_labels=BF16_LABELS)
    b = half(path, candidate_labels=BF16_LABELS)
    score_b = {r["label"]: r["score"] for r in b}
    sim_b = {r["label"]: r["similarity"] for r in b}
    for r in a:
        assert score_b[r["label"]] == pytest.approx(r["score"], abs=tol), r["label"]
        assert sim_b[r["label"]] == pytest.approx(r["similarity"], abs=tol), r["label"]

    # Where float32 separates two neighbouring labels by more than the tolerance, bfloat16 must
    # order them the same way (near-ties may swap). At least one such pair must exist, or this
    # checkpoint/label set would not test ranking at all.
    rank_b = {r["label"]: i for i, r in enumerate(b)}
    separated = [(hi, lo) for hi, lo in zip(a, a[1:]) if hi["score"] - lo["score"] > tol]
    assert separated, [round(r["score"], 4) for r in a]
    for hi, lo in separated:
        assert rank_b[hi["label"]] < rank_b[lo["label"]], (hi, lo, b)
    if a[0]["score"] - a[1]["score"] > tol:
        assert b[0]["label"] == a[0]["label"]
