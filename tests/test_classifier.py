"""ZeroShotVideoClassifier end to end, mostly with a test encoder whose answers are known exactly.

`SceneEncoder` embeds a frame as the basis vector of the scene drawn in its bottom band
(`actionzs.testing`), and the text "... scene k ..." as the same basis vector, so a window's
similarity to "scene k" is the share of the window's frames showing scene k (after pooling) and the
right answers are known in advance. Real tiny checkpoints are used where the model matters
(truncation, threads, X-CLIP).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import zlib

import numpy as np
import pytest
import torch

import actionzs
import actionzs.embed as embed_module
from actionzs import sampling
from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.embeddings import FrameEmbeddings
from actionzs.errors import InvalidInputError, SingleLabelWarning, VideoDecodeError
from actionzs.events import EventOptions
from actionzs.models import FrameEncoder, ScoreHead, load_encoder
from actionzs.options import RunOptions
from actionzs.prompts import TEXT_BATCH, parse_labels
from actionzs.testing import SCENE_COLOURS, read_index, read_scene, write_clip
from actionzs.video import Video

NUM_SCENES = len(SCENE_COLOURS)
DIM = 32
SCENES = ["scene 0", "scene 1", "scene 2", "scene 3"]


# -- the test encoder ----------------------------------------------------------------------------


class CountingPreprocessor:
    """Hands the decoded uint8 frames through unchanged (decoded at their own size)."""

    decode_size = None

    def __init__(self):
        self.frames = 0

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        self.frames += len(frames)
        return torch.from_numpy(np.ascontiguousarray(frames))


def text_vector(text: str) -> torch.Tensor:
    """e_k for a text naming "scene k"; any other text a fixed random unit vector orthogonal to
    every scene (so it never competes with the scenes)."""
    found = re.search(r"\bscene (\d+)", text)
    vector = torch.zeros(DIM)
    if found:
        vector[int(found.group(1))] = 1.0
        return vector
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    vector[NUM_SCENES:] = torch.from_numpy(rng.standard_normal(DIM - NUM_SCENES)).float()
    return vector / vector.norm()


class SceneEncoder(FrameEncoder):
    """A FrameEncoder: frame -> e_(its scene), "scene k" -> e_k; records what it is asked."""

    texts_normalised = True

    def __init__(self, name: str = "scene-test"):
        self.name = name
        self.preprocessor = CountingPreprocessor()
        self.head = ScoreHead(scale=100.0)
        self.embedded_indices: list[int] = []
        self.text_calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def frames_embedded(self) -> int:
        return len(self.embedded_indices)

    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        frames = pixels.numpy()
        out = torch.zeros(len(frames), DIM)
        for row, frame in enumerate(frames):
            out[row, read_scene(frame)] = 1.0
        with self._lock:
            self.embedded_indices.extend(read_index(frame) for frame in frames)
        return out

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        with self._lock:
            self.text_calls.append(list(texts))
        return torch.stack([text_vector(t) for t in texts])


def scene_of_frame(i: int) -> int:
    """The scenes clip: scene 0 for [0, 4) s, scene 1 for [4, 10) s, scene 2 for [10, 12) s (10 fps)."""
    return 0 if i < 40 else 1 if i < 100 else 2


SCENE_TRUTH = {"scene 0": (0.0, 4.0), "scene 1": (4.0, 10.0), "scene 2": (10.0, 12.0)}
SEGMENTS = RunOptions(fps=2, window=2, stride=1, segments=True, events=EventOptions(threshold=0.5))


def make(options: RunOptions | None = None, **kw) -> ZeroShotVideoClassifier:
    return ZeroShotVideoClassifier(SceneEncoder(), options, **kw)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier-clips")
    return {
        "scenes": str(write_clip(folder / "scenes.mp4", 120, average_fps=10, scenes=scene_of_frame)),
        "red": str(write_clip(folder / "red.mp4", 30, average_fps=10, scenes=lambda i: 0)),
        "blue": str(write_clip(folder / "blue.mp4", 50, average_fps=10, scenes=lambda i: 2 if i < 30 else 3)),
    }


@pytest.fixture
def opens(monkeypatch):
    """Counts the videos the classifier opens (decoding starts with opening)."""
    calls = []
    real = embed_module.open_video

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(embed_module, "open_video", counting)
    return calls


def top(labels: list[dict]) -> str:
    return labels[0]["label"]


# -- segments, clip label and events -------------------------------------------------------------


def test_segments_follow_the_scenes(clips):
    out = make(SEGMENTS)(clips["scenes"], candidate_labels=SCENES)
    segments = out["segments"]
    assert [(s["start"], s["end"]) for s in segments] == [(float(s), float(s + 2)) for s in range(11)]
    pure = {0: "scene 0", 1: "scene 0", 2: "scene 0", 4: "scene 1", 5: "scene 1", 6: "scene 1", 7: "scene 1",
            8: "scene 1", 10: "scene 2"}
    for start, label in pure.items():
        seg = segments[start]
        assert top(seg["labels"]) == label, seg
        assert seg["labels"][0]["score"] > 0.999 and seg["labels"][0]["similarity"] == pytest.approx(1.0)
    for start, mixed in {3: {"scene 0", "scene 1"}, 9: {"scene 1", "scene 2"}}.items():
        first, second = segments[start]["labels"][:2]
        assert {first["label"], second["label"]} == mixed
        assert first["score"] == pytest.approx(0.5, abs=1e-3) and second["score"] == pytest.approx(0.5, abs=1e-3)
        assert first["similarity"] == pytest.approx(2**-0.5, abs=1e-6)
    # the clip: 8 frames of scene 0, 12 of scene 1, 4 of scene 2 at 2 fps
    assert top(out["labels"]) == "scene 1"
    assert out["labels"][0]["similarity"] == pytest.approx(12 / np.sqrt(8**2 + 12**2 + 4**2), abs=1e-6)


def test_clip_label_is_the_majority_scene_without_segments(clips):
    clf = make(RunOptions(num_frames=8))
    labels = clf(clips["scenes"], candidate_labels=SCENES)
    assert isinstance(labels, list) and top(labels) == "scene 1"
    # uniform 8 frames at 0.75, 2.25, ... 11.25 s: scenes 0,0,0,1,1,1,1,2
    assert sorted(read_scene_counts(clf.encoder).items()) == [(0, 3), (1, 4), (2, 1)]


def read_scene_counts(encoder: SceneEncoder) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in encoder.embedded_indices:
        counts[scene_of_frame(i)] = counts.get(scene_of_frame(i), 0) + 1
    return counts


def test_events_start_and_end_within_one_stride_of_the_scene_changes(clips):
    out = make(SEGMENTS)(clips["scenes"], candidate_labels=SCENES)
    events = out["events"]
    assert sorted(e["label"] for e in events) == ["scene 0", "scene 1", "scene 2"]  # one each, none for scene 3
    for event in events:
        start, end = SCENE_TRUTH[event["label"]]
        assert abs(event["start"] - start) <= SEGMENTS.stride + 1e-9, event
        assert abs(event["end"] - end) <= SEGMENTS.stride + 1e-9, event
        assert event["score"] >= SEGMENTS.events.threshold - 1e-6  # unsmoothed: every window in it is on
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)


def test_events_on_similarity_use_raw_cosines(clips):
    """Thresholding the similarity at 0.9 keeps only windows wholly inside one scene (mixed windows
    have cosine 0.707), which fixes the events exactly: cells are halfway between window centres."""
    run = SEGMENTS.updated(events=EventOptions(threshold=0.9, measure="similarity"))
    events = make(run)(clips["scenes"], candidate_labels=SCENES)["events"]
    assert [(e["label"], e["start"], e["end"]) for e in events] == [
        ("scene 0", 0.0, 3.5), ("scene 1", 4.5, 9.5), ("scene 2", 10.5, 12.0),
    ]
    assert all(e["score"] == pytest.approx(1.0) for e in events)


def test_events_options_can_be_given_per_call_as_a_mapping(clips):
    clf = make(SEGMENTS)
    none = clf(clips["scenes"], candidate_labels=SCENES, events={"threshold": 1.01})["events"]
    assert none == []
    long_only = clf(clips["scenes"], candidate_labels=SCENES, events={"threshold": 0.5, "min_duration": 5.0})["events"]
    assert [e["label"] for e in long_only] == ["scene 1"]
    with pytest.raises(InvalidInputError, match="unknown event option"):
        clf(clips["scenes"], candidate_labels=SCENES, events={"thresold": 0.5})


@pytest.mark.parametrize("window, stride", [(2.0, 1.0), (1.5, 0.5), (3.0, 2.0)])
@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_window_scores_use_only_the_frames_inside_the_window(clips, window, stride, pooling):
    clf = make(SEGMENTS)
    out = clf(clips["scenes"], candidate_labels=SCENES, window=window, stride=stride, pooling=pooling)
    embeddings = clf.embed(clips["scenes"])
    text = torch.stack([text_vector(f"a video of {label}.") for label in SCENES]).numpy()
    spans = sampling.windows(embeddings.duration, window, stride)
    assert len(out["segments"]) == len(spans)
    for span, segment in zip(spans, out["segments"]):
        inside = (embeddings.pts_seconds >= span.start_seconds) & (embeddings.pts_seconds < span.end_seconds)
        assert inside.any()
        vectors = embeddings.vectors[inside]
        pooled = vectors.mean(axis=0) if pooling == "mean" else vectors.max(axis=0)
        expected = text @ (pooled / np.linalg.norm(pooled))
        got = {r["label"]: r["similarity"] for r in segment["labels"]}
        np.testing.assert_allclose([got[label] for label in SCENES], expected, atol=1e-6)


def test_a_window_inside_one_scene_ignores_its_neighbours(clips):
    """[4, 6) lies wholly in scene 1 although [3, 5) before it is half scene 0."""
    segments = make(SEGMENTS)(clips["scenes"], candidate_labels=SCENES)["segments"]
    window = next(s for s in segments if (s["start"], s["end"]) == (4.0, 6.0))
    sims = {r["label"]: r["similarity"] for r in window["labels"]}
    assert sims == pytest.approx({"scene 0": 0.0, "scene 1": 1.0, "scene 2": 0.0, "scene 3": 0.0}, abs=1e-6)
    assert window["labels"][0]["score"] == pytest.approx(1.0, abs=1e-6)


# -- each frame decoded and embedded once ---------------------------------------------------------


def test_frames_are_embedded_once_and_reused_across_labels_and_windows(clips, opens):
    clf = make(SEGMENTS)
    path = clips["scenes"]
    clf(path, candidate_labels=SCENES, window=4, stride=1)  # 9 windows, each frame in up to 4
    sampled = sampling.at_fps(sampling.Timeline.constant_rate(120, 10.0), 2.0).indices
    assert len(sampled) == 24  # fps * duration
    encoder = clf.encoder
    assert encoder.frames_embedded == 24 and encoder.preprocessor.frames == 24
    assert sorted(encoder.embedded_indices) == sampled.tolist()  # the frames asked for, each once
    assert len(opens) == 1

    out = clf(path, candidate_labels=["scene 1", "scene 2", "something else"], window=3, stride=0.5)
    assert len(out["segments"]) == len(sampling.windows(12.0, 3, 0.5))
    clf(path, candidate_labels=SCENES, window=2, stride=2, pooling="max", top_k=1)
    assert encoder.frames_embedded == 24 and encoder.preprocessor.frames == 24
    assert len(opens) == 1  # nothing decoded again

    embeddings = clf.embed(path)
    assert embeddings.indices.tolist() == sampled.tolist()
    assert len(opens) == 1


class OrderedSceneEncoder(SceneEncoder):
    """Also records the order of text and frame encoding."""

    def __init__(self):
        super().__init__()
        self.order: list[str] = []

    def embed_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        self.order.append("frames")
        return super().embed_frames(pixels)

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        self.order.append("texts")
        return super().embed_texts(texts)


def test_labels_are_encoded_while_the_first_frames_decode(clips):
    encoder = OrderedSceneEncoder()
    clf = ZeroShotVideoClassifier(encoder, SEGMENTS, batch_size=8)
    first = clf(clips["scenes"], candidate_labels=SCENES)
    assert encoder.order == ["texts", "frames", "frames", "frames"]  # 24 frames in batches of 8
    assert first == make(SEGMENTS)(clips["scenes"], candidate_labels=SCENES)  # same result as before
    clf(clips["scenes"], candidate_labels=["scene 2", "a new label"])  # embedded already: a new text only
    assert encoder.order[4:] == ["texts"]


@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_several_decode_workers_give_the_same_result_and_read_each_frame_once(clips, opens, backend):
    if backend == "decord":
        pytest.importorskip("decord")
    serial = make(SEGMENTS, batch_size=4, backend=backend)
    expected = serial(clips["scenes"], candidate_labels=SCENES)
    parallel = make(SEGMENTS, batch_size=4, backend=backend, decode_workers=3)
    got = parallel(clips["scenes"], candidate_labels=SCENES)
    assert got == expected
    sampled = sampling.at_fps(sampling.Timeline.constant_rate(120, 10.0), 2.0).indices.tolist()
    assert parallel.encoder.embedded_indices == sampled  # in order, each frame once (24 frames, 6 batches)
    assert 2 < len(opens) <= 2 + 3  # each run opens the video once; each worker thread opens its own decoder


def test_decode_workers_must_be_a_whole_number_of_at_least_one():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="decode_workers must be a whole number >= 1"):
            make(SEGMENTS, decode_workers=bad)


def test_fps_above_the_video_rate_takes_each_frame_once(clips):
    clf = make(SEGMENTS)
    out = clf(clips["scenes"], candidate_labels=SCENES, fps=25)
    embeddings = clf.embed(clips["scenes"], fps=25)
    assert embeddings.indices.tolist() == list(range(120))  # all frames, no duplicates
    assert clf.encoder.frames_embedded == 120
    assert top(out["labels"]) == "scene 1"


def test_a_still_image_is_embedded_once():
    from actionzs.testing import draw_frame

    clf = make()  # num_frames=8 by default
    image = draw_frame(5, 160, 120, scene=2)
    results = clf(image, candidate_labels=SCENES)
    assert top(results) == "scene 2" and results[0]["similarity"] == pytest.approx(1.0)
    assert clf.encoder.frames_embedded == 1


def test_a_still_image_is_a_one_frame_video(clips):
    from actionzs.testing import draw_frame

    clf = make(SEGMENTS)
    out = clf(draw_frame(5, 160, 120, scene=3), candidate_labels=SCENES)
    assert top(out["labels"]) == "scene 3"
    assert [(s["start"], s["end"]) for s in out["segments"]] == [(0.0, 1.0)]
    assert [(e["label"], e["start"], e["end"]) for e in out["events"]] == [("scene 3", 0.0, 1.0)]
    assert clf.encoder.embedded_indices == [5]  # the drawn frame, read back from its pixels


# -- results: top_k, ordering, scores, lists, stored embeddings -----------------------------------


def test_results_are_sorted_softmax_scores_with_similarity(clips):
    clf = make()
    labels = clf(clips["scenes"], candidate_labels=SCENES + ["walking"])
    assert [set(r) for r in labels] == [{"label", "score", "similarity"}] * 5
    scores = [r["score"] for r in labels]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    assert {r["label"] for r in labels} == set(SCENES + ["walking"])


def test_top_k_is_honoured_for_clip_and_segments(clips):
    clf = make(SEGMENTS)
    full = clf(clips["scenes"], candidate_labels=SCENES)
    cut = clf(clips["scenes"], candidate_labels=SCENES, top_k=2)
    assert cut["labels"] == full["labels"][:2]
    assert all(len(s["labels"]) == 2 for s in cut["segments"])
    assert [s["labels"] for s in cut["segments"]] == [s["labels"][:2] for s in full["segments"]]
    assert cut["events"] == full["events"]  # events come from every label's scores, not the top k
    assert len(clf(clips["scenes"], candidate_labels=SCENES, segments=False, top_k=1)) == 1


def test_a_list_of_videos_gives_a_list_of_results(clips):
    clf = make()
    many = clf([clips["red"], clips["blue"], clips["scenes"]], candidate_labels=SCENES)
    assert isinstance(many, list) and len(many) == 3
    assert [top(r) for r in many] == ["scene 0", "scene 2", "scene 1"]
    assert many[1] == clf(clips["blue"], candidate_labels=SCENES)


def test_classify_each_goes_on_past_a_broken_video_and_keeps_the_order(clips, tmp_path, opens):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    videos = [clips["red"], str(bad), clips["blue"], str(tmp_path / "missing.mp4"), clips["scenes"]]
    clf = make()
    outcomes = list(clf.classify_each(videos, SCENES))
    assert [video for video, _ in outcomes] == videos
    errors = {video: outcome for video, outcome in outcomes if isinstance(outcome, Exception)}
    assert list(errors) == [str(bad), videos[3]]
    assert all(isinstance(e, VideoDecodeError) and e.path in (str(bad), videos[3]) for e in errors.values())
    results = [outcome for _, outcome in outcomes if not isinstance(outcome, Exception)]
    assert [top(r.labels) for r in results] == ["scene 0", "scene 2", "scene 1"]
    alone = make()
    assert [r.labels for r in results] == [alone.classify(v, SCENES).labels for v in (clips["red"], clips["blue"], clips["scenes"])]
    with pytest.raises(VideoDecodeError):  # classify_many stops at the first failure instead
        clf.classify_many(videos, SCENES)


def test_classify_each_checks_labels_and_options_before_decoding(clips, opens):
    clf = make()
    with pytest.raises(InvalidInputError):
        clf.classify_each([clips["red"]], [])
    with pytest.raises(InvalidInputError):
        clf.classify_each([clips["red"]], SCENES, stride=0)
    assert opens == []


def test_the_next_video_decodes_while_this_one_is_encoded(clips, monkeypatch):
    """The first video's only batch is encoded only once the second video has been opened: this
    could not finish if the videos were decoded one after the other's encoding."""
    second_opened = threading.Event()
    real = embed_module.open_video

    def opening(path, *args, **kwargs):
        video = real(path, *args, **kwargs)
        if path == clips["blue"]:
            second_opened.set()
        return video

    monkeypatch.setattr(embed_module, "open_video", opening)
    waited = []

    class WaitingEncoder(SceneEncoder):
        def embed_frames(self, pixels):
            if not waited:
                waited.append(second_opened.wait(timeout=10))
            return super().embed_frames(pixels)

    clf = ZeroShotVideoClassifier(WaitingEncoder())
    outcomes = list(clf.classify_each([clips["red"], clips["blue"]], SCENES, num_frames=4))
    assert waited == [True]
    assert [top(result.labels) for _, result in outcomes] == ["scene 0", "scene 2"]


def test_the_decoder_rests_while_a_slow_encoder_catches_up(clips, monkeypatch):
    rests = []
    real = Video.rest

    def counting(self):
        rests.append(self.path)
        real(self)

    monkeypatch.setattr(Video, "rest", counting)

    class SlowEncoder(SceneEncoder):
        def embed_frames(self, pixels):
            time.sleep(0.1)
            return super().embed_frames(pixels)

    slow = ZeroShotVideoClassifier(SlowEncoder(), SEGMENTS, batch_size=2)
    got = slow(clips["scenes"], candidate_labels=SCENES)
    assert rests and set(rests) == {clips["scenes"]}
    assert got == make(SEGMENTS, batch_size=2)(clips["scenes"], candidate_labels=SCENES)  # same frames, same result


def test_a_file_listed_twice_in_one_call_is_decoded_once(clips, opens):
    clf = make()
    videos = [clips["red"], clips["blue"], clips["red"], clips["red"]]
    results = clf.classify_many(videos, SCENES)
    assert opens == [clips["red"], clips["blue"]]
    assert results[0].labels == results[2].labels == results[3].labels
    assert results[2].embeddings is results[0].embeddings


def test_decode_workers_take_whole_videos_of_a_list(clips, opens):
    videos = [clips["red"], clips["scenes"], clips["blue"]]
    expected = make(SEGMENTS, batch_size=4).classify_many(videos, SCENES)
    opened = len(opens)
    got = make(SEGMENTS, batch_size=4, decode_workers=2).classify_many(videos, SCENES)
    assert [r.to_dict() for r in got] == [r.to_dict() for r in expected]
    assert sorted(opens[opened:]) == sorted(videos)  # one decoder per video: none split across workers


def test_a_broken_file_listed_twice_is_opened_once_and_fails_twice(tmp_path, clips, opens):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    outcomes = list(make().classify_each([str(bad), clips["red"], str(bad)], SCENES))
    assert opens == [str(bad), clips["red"]]
    assert isinstance(outcomes[0][1], VideoDecodeError) and outcomes[2][1] is outcomes[0][1]
    assert top(outcomes[1][1].labels) == "scene 0"


def test_an_encoder_failure_on_one_video_leaves_the_next_ones_alone(clips):
    class FailingOnScene2(SceneEncoder):
        def embed_frames(self, pixels):
            if any(read_scene(frame) == 2 for frame in pixels.numpy()):
                raise RuntimeError("out of memory")
            return super().embed_frames(pixels)

    clf = ZeroShotVideoClassifier(FailingOnScene2(), batch_size=2)
    outcomes = list(clf.classify_each([clips["blue"], clips["red"]], SCENES, num_frames=8))
    assert isinstance(outcomes[0][1], RuntimeError) and "out of memory" in str(outcomes[0][1])
    assert top(outcomes[1][1].labels) == "scene 0"
    assert len(clf.encoder.embedded_indices) == 8  # red's 8 frames; blue's later batches were dropped


def test_classify_each_mixes_paths_images_and_stored_embeddings(clips, opens):
    clf = make()
    stored = clf.embed(clips["red"])
    opened = len(opens)
    image = np.zeros((48, 64, 3), np.uint8)
    outcomes = list(clf.classify_each([stored, clips["blue"], image], SCENES))
    assert [type(o).__name__ for _, o in outcomes] == ["VideoResult"] * 3
    assert top(outcomes[0][1].labels) == "scene 0" and top(outcomes[1][1].labels) == "scene 2"
    assert outcomes[2][1].duration > 0
    assert opens[opened:] == [clips["blue"]]  # the stored embeddings and the image need no decoder


def test_a_hanging_video_in_a_batch_fails_alone(clips, monkeypatch):
    release = threading.Event()
    real = Video.iter_frames

    def iter_frames(self, *args, **kwargs):
        if self.path == clips["blue"]:
            release.wait(30)  # a decoder that hangs on this file only
        yield from real(self, *args, **kwargs)

    monkeypatch.setattr(Video, "iter_frames", iter_frames)
    clf = make(decode_timeout=0.5)
    try:
        outcomes = list(clf.classify_each([clips["red"], clips["blue"], clips["scenes"]], SCENES, num_frames=4))
    finally:
        release.set()
    assert [type(o).__name__ for _, o in outcomes] == ["VideoResult", "VideoDecodeError", "VideoResult"]
    assert outcomes[1][1].path == clips["blue"] and "stalled" in str(outcomes[1][1])
    assert top(outcomes[2][1].labels) == "scene 1"


def test_embeddings_save_load_and_rescore_without_decoding(clips, tmp_path, opens):
    clf = make(SEGMENTS)
    expected = clf(clips["scenes"], candidate_labels=SCENES)
    embeddings = clf.embed(clips["scenes"])
    assert isinstance(embeddings, FrameEmbeddings)
    assert embeddings.model == "scene-test" and embeddings.source == clips["scenes"]
    assert embeddings.duration == pytest.approx(12.0) and embeddings.sampling == {"fps": 2.0}

    embeddings.save(tmp_path / "scenes.npz")
    loaded = FrameEmbeddings.load(tmp_path / "scenes.npz")
    for name in ("vectors", "indices", "pts_seconds"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(embeddings, name))
    assert (loaded.duration, loaded.model, loaded.source, loaded.sampling) == (
        embeddings.duration, embeddings.model, embeddings.source, embeddings.sampling)

    opened = len(opens)
    fresh = make(SEGMENTS)  # no cache: only the stored embeddings
    assert fresh(loaded, candidate_labels=SCENES) == expected
    assert fresh.encoder.frames_embedded == 0 and len(opens) == opened
    other = fresh(loaded, candidate_labels=["scene 2", "scene 0"], window=3, stride=3)
    assert [(s["start"], s["end"]) for s in other["segments"]] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert len(opens) == opened

    with pytest.raises(InvalidInputError, match="scene-test"):
        ZeroShotVideoClassifier(SceneEncoder("another-model"))(loaded, candidate_labels=SCENES)


# -- validation happens before any decoding -------------------------------------------------------


@pytest.mark.parametrize(
    "labels, options, words",
    [
        ([], {}, "empty"),
        (["scene 1", "scene 1"], {}, "duplicate"),
        (["scene 1", " scene 1 "], {}, "duplicate"),
        (["scene 1", "   "], {}, "blank"),
        (["scene 1", 3], {}, "not a string"),
        (["scene 1", None], {}, "not a string"),
        (SCENES, {"window": 0}, "window"),
        (SCENES, {"window": -2}, "window"),
        (SCENES, {"stride": 0}, "stride"),
        (SCENES, {"stride": -1}, "stride"),
        (SCENES, {"fps": 0}, "fps"),
        (SCENES, {"fps": -1.5}, "fps"),
        (SCENES, {"fps": float("nan")}, "fps"),
        (SCENES, {"num_frames": 0}, "num_frames"),
        (SCENES, {"num_frames": 2.5}, "num_frames"),
        (SCENES, {"top_k": 0}, "top_k"),
        (SCENES, {"pooling": "median"}, "pooling"),
        (SCENES, {"hypothesis_template": "a video of a person"}, "{}"),
        (SCENES, {"hypothesis_template": ("a video of {}.", "{} and {}")}, "{}"),
        (SCENES, {"hypothesis_template": ()}, "template"),
        (SCENES, {"frame_rate": 2}, "unknown option"),
    ],
)
def test_invalid_input_is_rejected_before_decoding(clips, opens, labels, options, words):
    clf = make(SEGMENTS)
    with pytest.raises(InvalidInputError) as info:
        clf(clips["scenes"], candidate_labels=labels, **options)
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)
    with pytest.raises(InvalidInputError):
        clf([clips["red"], clips["scenes"]], candidate_labels=labels, **options)
    assert opens == [] and clf.encoder.frames_embedded == 0


def test_event_options_of_the_wrong_type_are_rejected_before_decoding(clips, opens):
    clf = make(SEGMENTS)
    with pytest.raises(InvalidInputError):
        clf(clips["scenes"], candidate_labels=SCENES, events={"threshold": "high"})
    assert opens == []


def test_missing_labels_and_bad_default_options_are_rejected(clips, opens):
    with pytest.raises(InvalidInputError, match="candidate_labels"):
        make()(clips["scenes"])
    with pytest.raises(InvalidInputError, match="window"):
        make(RunOptions(window=0))
    with pytest.raises(InvalidInputError, match="stride"):
        actionzs.pipeline("/nonexistent/model", stride=-1)  # options are checked before the model loads
    assert opens == []


def test_an_undecodable_video_raises_video_decode_error_naming_it(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    clf = make()
    with pytest.raises(VideoDecodeError) as info:
        clf(str(bad), candidate_labels=SCENES)
    assert info.value.path == str(bad) and str(bad) in str(info.value)
    with pytest.raises(VideoDecodeError, match="no such file"):
        clf(str(tmp_path / "missing.mp4"), candidate_labels=SCENES)


# -- labels: many, long, described, ensembles ----------------------------------------------------


def test_five_thousand_labels_are_scored_in_text_batches(clips):
    clf = make()
    labels = ["scene 0", "scene 1", "scene 2"] + [f"action {i}" for i in range(4997)]
    results = clf(clips["scenes"], candidate_labels=labels)
    assert len(results) == 5000 and {r["label"] for r in results} == set(labels)
    assert top(results) == "scene 1"
    assert sum(r["score"] for r in results) == pytest.approx(1.0, abs=1e-5)
    calls = clf.encoder.text_calls
    assert all(len(call) <= TEXT_BATCH for call in calls)
    assert len(calls) == -(-5000 // TEXT_BATCH) and clf.texts.encoded == 5000
    assert len(clf(clips["scenes"], candidate_labels=labels, top_k=5)) == 5
    assert clf.texts.encoded == 5000  # all cached


@pytest.fixture(scope="module")
def tiny_clip(clip_dir):
    return load_encoder(str(clip_dir), dtype="float32")


def test_long_descriptions_are_truncated_with_a_warning(tiny_clip, clips, caplog):
    clf = ZeroShotVideoClassifier(tiny_clip)
    shared = "x" * 120  # one token per character with the tiny byte-level tokenizer: past 77
    labels = ["short", f"long a: {shared} then a", f"long b: {shared} then b"]
    with caplog.at_level(logging.WARNING, logger="actionzs.models.base"):
        results = clf(clips["red"], candidate_labels=labels)
    warnings = [r for r in caplog.records if r.name == "actionzs.models.base" and r.levelno == logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in caplog.records]
    assert all("cut to the encoder's 77" in r.getMessage() for r in warnings)
    sims = {r["label"]: r["similarity"] for r in results}
    assert set(sims) == {"short", "long a", "long b"}
    assert sims["long a"] == sims["long b"]  # they differ only after the cut
    assert sims["short"] != sims["long a"]


def test_a_described_label_reports_its_name_and_embeds_its_description(clips):
    clf = make()
    results = clf(clips["red"], candidate_labels=["fall: a person falls down", "scene 0"])
    assert {r["label"] for r in results} == {"fall", "scene 0"}
    sent = [t for call in clf.encoder.text_calls for t in call]
    assert sorted(sent) == ["a person falls down", "a video of scene 0."]
    fall = next(r for r in results if r["label"] == "fall")
    assert fall["similarity"] == pytest.approx(0.0, abs=1e-6)  # the description's vector, orthogonal to scenes


def test_a_template_ensemble_averages_the_text_embeddings(clips):
    templates = ("a video of {}.", "a clip of {}.", "footage of {}.")
    clf = make(RunOptions(hypothesis_template=templates))
    labels = ["jump", "run", "scene 0"]
    results = clf(clips["red"], candidate_labels=labels)
    assert clf.texts.encoded == 9
    clf(clips["red"], candidate_labels=labels)
    with pytest.warns(SingleLabelWarning):  # one label under a softmax head
        clf(clips["red"], candidate_labels=["jump"], hypothesis_template="a clip of {}.")
    assert clf.texts.encoded == 9  # every text embedded once
    clf(clips["red"], candidate_labels=["jump", "fall: someone falls"])
    assert clf.texts.encoded == 10  # a description is one text, whatever the templates

    vectors = clf.texts.embed_labels(parse_labels(labels), templates)
    for label, vector in zip(labels, vectors):
        mean = torch.stack([text_vector(t.format(label)) for t in templates]).mean(dim=0)
        torch.testing.assert_close(vector, mean / mean.norm())
    assert not torch.allclose(vectors[0], text_vector("a video of jump."))  # really an average

    clip = clf.embed(clips["red"]).vectors.mean(axis=0)
    clip = torch.from_numpy(clip / np.linalg.norm(clip))
    sims = {r["label"]: r["similarity"] for r in results}
    for label, vector in zip(labels, vectors):
        assert sims[label] == pytest.approx(float(vector @ clip), abs=1e-6)
    assert top(results) == "scene 0"


# -- threads -------------------------------------------------------------------------------------


def test_one_classifier_used_from_four_threads_matches_serial_use(tiny_clip, clips):
    tasks = [
        (clips["scenes"], ("walking", "running", "cooking"), {}),
        (clips["red"], ("walking", "a red shirt"), {}),
        (clips["blue"], ("swimming", "running", "a blue sky"), {"segments": True, "fps": 2}),
        (clips["scenes"], ("jumping", "sitting"), {"segments": True, "fps": 1, "window": 3}),
    ]
    serial_clf = ZeroShotVideoClassifier(tiny_clip)
    serial = [serial_clf(path, candidate_labels=list(labels), **kw) for path, labels, kw in tasks]

    shared = ZeroShotVideoClassifier(tiny_clip)
    barrier = threading.Barrier(4)
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for step in range(len(tasks) * 2):
                k = (worker + step) % len(tasks)  # each thread its own order; all start on different tasks
                path, labels, kw = tasks[k]
                results[worker, step] = (k, shared(path, candidate_labels=list(labels), **kw))
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 4 * len(tasks) * 2
    for k, result in results.values():
        # Same labels in the same order, same segments and events. Values agree to float rounding
        # only: a text embedding depends slightly (~1e-7) on the other texts padded into its batch,
        # and which labels share the first batch depends on which thread gets there first.
        assert same_structure(result, serial[k]), (result, serial[k])
        assert flat_values(result) == pytest.approx(flat_values(serial[k]), abs=1e-6, rel=0)
    for path, _, kw in tasks:  # the video side has no such freedom: bit for bit the same
        ours, theirs = shared.embed(path, **kw), serial_clf.embed(path, **kw)
        assert ours is not theirs and np.array_equal(ours.vectors, theirs.vectors)
        assert np.array_equal(ours.indices, theirs.indices)


def same_structure(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_structure(x, y) for x, y in zip(a, b))
    return isinstance(a, float) or a == b  # strings, and times/values compared apart


def flat_values(result) -> list[float]:
    if isinstance(result, dict):
        return [v for key in sorted(result) for v in flat_values(result[key])]
    if isinstance(result, list):
        return [v for item in result for v in flat_values(item)]
    return [float(result)] if isinstance(result, (int, float)) else []


# -- X-CLIP ---------------------------------------------------------------------------------------


def test_xclip_segments_follow_the_windows_and_decode_each_frame_once(xclip_dir, clips, monkeypatch):
    requested: list[int] = []
    real = Video.iter_frames

    def recording(self, indices, *args, **kwargs):
        requested.extend(np.asarray(indices).tolist())
        return real(self, indices, *args, **kwargs)

    monkeypatch.setattr(Video, "iter_frames", recording)
    clf = ZeroShotVideoClassifier(load_encoder(str(xclip_dir), dtype="float32"), batch_size=8)  # one clip per batch
    path = clips["blue"]  # 5 s: windows [0,2) [1,3) [2,4) [3,5)
    out = clf(path, candidate_labels=["swimming", "running"], segments=True, window=2, stride=1)
    spans = sampling.windows(5.0, 2, 1)
    assert [(s["start"], s["end"]) for s in out["segments"]] == [(s.start_seconds, s.end_seconds) for s in spans]
    assert all(len(s["labels"]) == 2 for s in out["segments"])
    assert sum(r["score"] for r in out["labels"]) == pytest.approx(1.0, abs=1e-5)

    embeddings = clf.embed(path, segments=True, window=2, stride=1)
    assert embeddings.indices.shape == (1 + len(spans), 8)
    for span, row in zip(spans, embeddings.indices[1:]):
        assert np.all((row >= span.start_seconds * 10) & (row < span.end_seconds * 10))
    assert len(requested) == len(set(requested)), "a frame was decoded twice"
    assert requested == sorted(requested), "the decoder went back (spans not taken in decoder order)"
    assert set(requested) == set(embeddings.indices.ravel().tolist())
    assert len(requested) < embeddings.indices.size  # the overlap really was shared
