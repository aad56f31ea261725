"""Bad input through every door: the Python API, `classify`, `scan` and `report`.

Hostile files are made once per module. Each is expected either to be read ("ok": the frames that
decode are used, headers that lie are corrected) or to fail cleanly ("error": VideoDecodeError naming
the file through the API; exit 1 with `error: <path>: <reason>` and no traceback from the CLI). The
table of observed behaviour is in tests/README.md.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import actionzs
from actionzs.errors import InvalidInputError, ModelLoadError, VideoDecodeError
from actionzs.output import hms
from actionzs.testing import read_index, write_clip
from actionzs.video import open_video
from helpers_cli import (
    FAST,
    avi_claiming_frames,
    by_video,
    decodable_frames,
    moov_before_mdat,
    read_jsonl,
    run_cli,
    start_cli,
    tree,
    truncated_copy,
    wait_for_lines,
    write_audio_only,
    write_h264,
)
from helpers_video import BACKENDS

LABELS = ["running", "jumping"]
LONG_NAME = "long " + "n" * 190 + ".mp4"  # 199 characters
VFR_TIMES = [0, 0.05, 0.1, 0.5, 0.55, 0.6, 1.2, 1.25, 1.3, 1.35, 1.4, 1.45, 2.0, 2.1, 2.2, 2.3, 2.4, 2.9, 3.0, 3.1]


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # file name inside the hostile folder
    expect: str  # "ok" or "error"
    detail: str  # for "ok": what is checked; for "error": a piece of the reason
    frames: int | None = None  # frames that really decode, where known up front


CASES = [
    Case("zero-byte", "zero.mp4", "error", "file is empty (0 bytes)"),
    Case("random-mp4", "random.mp4", "error", "not a readable video"),
    Case("random-avi", "random.avi", "error", "not a readable video"),
    Case("random-mkv", "random.mkv", "error", "not a readable video"),
    Case("text-as-mp4", "text.mp4", "error", "not a container the decoder recognises"),
    Case("png-as-mp4", "png as.mp4", "ok", "one frame, read by OpenCV's image demuxer", frames=1),
    Case("jpeg-as-mp4", "jpeg as.mp4", "ok", "one frame, read by OpenCV's image demuxer", frames=1),
    Case("audio-only-aac", "audio only.mp4", "error", "no video stream"),
    Case("audio-only-mp2", "audio only.mkv", "error", "no video stream"),
    Case("truncated-10", "truncated 10.mp4", "error", "the MP4 index (moov atom) is missing or cut short"),
    Case("truncated-50", "truncated 50.mp4", "error", "the MP4 index (moov atom) is missing or cut short"),
    Case("truncated-90", "truncated 90.mp4", "error", "the MP4 index (moov atom) is missing or cut short"),
    Case("faststart-truncated-10", "faststart truncated 10.mp4", "error", "not a readable video"),
    Case("faststart-truncated-50", "faststart truncated 50.mp4", "ok", "the frames before the cut"),
    Case("faststart-truncated-90", "faststart truncated 90.mp4", "ok", "the frames before the cut"),
    Case("avi-header-lies", "header claims 60.avi", "ok", "20 real frames, not the 60 claimed", frames=20),
    Case("one-frame", "one frame.mp4", "ok", "one frame, one window", frames=1),
    Case("shorter-than-window", "half second.mp4", "ok", "one window [0, 0.5)", frames=5),
    Case("3840x2160", "uhd.mp4", "ok", "two 4K frames", frames=2),
    Case("16x16", "tiny.mp4", "ok", "16x16 frames", frames=10),
    Case("portrait-120x160", "portrait.mp4", "ok", "120x160", frames=10),
    Case("odd-161x121-mjpeg", "odd mjpeg.avi", "ok", "161x121", frames=10),
    Case("odd-161x121-mpeg4", "odd mpeg4.avi", "ok", "161x121", frames=10),
    Case("variable-frame-rate", "vfr.mp4", "ok", "real frame times", frames=20),
    Case("rotation-90", "rotated.mp4", "ok", "frames turned upright (OpenCV after decord fails)", frames=20),
    Case("long-name", LONG_NAME, "ok", "199-character name", frames=20),
    Case("spaces-non-ascii", "dossier été/vidéo d'été 東京 №1.mp4", "ok", "spaces and non-ASCII", frames=20),
    Case("directory", "a folder.mp4", "error", "is a directory"),
    Case("broken-symlink", "broken link.mp4", "error", "broken symbolic link"),
]
OK = [c for c in CASES if c.expect == "ok"]


def _build(folder: Path) -> None:
    rng = np.random.default_rng(1)
    small = dict(average_fps=10, width=64, height=48)
    (folder / "zero.mp4").write_bytes(b"")
    for suffix in ("mp4", "avi", "mkv"):
        (folder / f"random.{suffix}").write_bytes(rng.bytes(20_000))
    (folder / "text.mp4").write_text("this is not a video\n" * 50)
    from PIL import Image

    picture = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    picture.save(folder / "png as.mp4", format="PNG")
    picture.save(folder / "jpeg as.mp4", format="JPEG")
    write_audio_only(folder / "audio only.mp4", "aac")
    write_audio_only(folder / "audio only.mkv", "mp2")
    scratch = folder.parent / f"{folder.name}-sources"
    scratch.mkdir()
    plain = write_h264(scratch / "plain.mp4", 50)
    faststart = write_h264(scratch / "faststart.mp4", 50, faststart=True)
    assert not moov_before_mdat(plain) and moov_before_mdat(faststart)
    for percent in (10, 50, 90):
        truncated_copy(plain, folder / f"truncated {percent}.mp4", percent / 100)
        truncated_copy(faststart, folder / f"faststart truncated {percent}.mp4", percent / 100)
    mjpeg = write_clip(scratch / "mjpeg.avi", 20, codec="mjpeg", **small)
    assert avi_claiming_frames(mjpeg, folder / "header claims 60.avi", 60) == 20
    write_clip(folder / "one frame.mp4", 1, **small)
    write_clip(folder / "half second.mp4", 5, **small)
    write_clip(folder / "uhd.mp4", 2, average_fps=10, width=3840, height=2160)
    write_clip(folder / "tiny.mp4", 10, average_fps=10, width=16, height=16)
    write_clip(folder / "portrait.mp4", 10, average_fps=10, width=120, height=160)
    write_clip(folder / "odd mjpeg.avi", 10, average_fps=10, width=161, height=121, codec="mjpeg")
    write_clip(folder / "odd mpeg4.avi", 10, average_fps=10, width=161, height=121, codec="mpeg4")
    write_clip(folder / "vfr.mp4", len(VFR_TIMES), frame_times=VFR_TIMES, **small)
    write_h264(folder / "rotated.mp4", 20, width=64, height=48, rotation=90)
    write_clip(folder / LONG_NAME, 20, **small)
    (folder / "dossier été").mkdir()
    write_clip(folder / "dossier été" / "vidéo d'été 東京 №1.mp4", 20, **small)
    (folder / "a folder.mp4").mkdir()
    (folder / "broken link.mp4").symlink_to(folder / "gone.mp4")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    _build(folder)
    return folder


@pytest.fixture(scope="module")
def clf(clip_dir):
    return actionzs.pipeline(str(clip_dir), dtype="float32")


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("good") / "good.mp4", 30, average_fps=10, width=64, height=48,
                      scenes=lambda i: i // 10)


def case_path(hostile: Path, case: Case) -> str:
    return str(hostile / case.name)


def test_the_odd_sizes_need_a_codec_other_than_h264(tmp_path):
    """Why the odd-size cases are MJPEG and MPEG-4: libx264 refuses 4:2:0 at odd sizes."""
    import av

    with pytest.raises(av.error.FFmpegError):
        write_clip(tmp_path / "odd.mp4", 2, width=161, height=121)


# -- (a) the Python API ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_api(clf, hostile, case):
    path = case_path(hostile, case)
    if case.expect == "error":
        with pytest.raises(VideoDecodeError) as caught:
            clf(path, candidate_labels=LABELS, segments=True)
        assert caught.value.path == path
        assert case.detail in caught.value.reason
        assert str(caught.value).startswith(f"{path}: ")
        return
    result = clf(path, candidate_labels=LABELS, segments=True)
    assert sorted(item["label"] for item in result["labels"]) == sorted(LABELS)
    assert sum(item["score"] for item in result["labels"]) == pytest.approx(1, abs=1e-4)
    assert result["segments"] and result["segments"][0]["start"] == 0.0
    if case.frames is not None:
        with open_video(path) as video:
            assert video.num_frames == case.frames


# -- (b) classify ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_classify(capsys, clip_dir, hostile, case):
    path = case_path(hostile, case)
    code, out, err = run_cli(capsys, "classify", path, "--model", clip_dir, *sum((["-l", x] for x in LABELS), []),
                             *FAST, "--segments", "--format", "json")
    assert "Traceback" not in err
    [record] = json.loads(out)
    assert record["video"] == path
    if case.expect == "error":
        assert code == 1
        assert err.startswith(f"error: {path}: ") and case.detail in err
        assert set(record) == {"video", "error", "schema_version", "settings"} and case.detail in record["error"]
    else:
        assert code == 0, err
        assert "error: " not in err and sorted(item["label"] for item in record["labels"]) == sorted(LABELS)


# -- (c) one scan over all of them -------------------------------------------------------------------


def test_scan_gives_every_file_exactly_one_record(capsys, tmp_path, clip_dir, hostile):
    out_file = tmp_path / "scan.jsonl"
    code, out, err = run_cli(capsys, "scan", hostile, "-o", out_file, "--model", clip_dir,
                             *sum((["-l", x] for x in LABELS), []), *FAST)
    assert code == 1 and "Traceback" not in err
    records = by_video(read_jsonl(out_file))
    listed = [c for c in CASES if c.id != "directory"]  # a folder is not a video, whatever its name
    assert set(records) == {case_path(hostile, c) for c in listed}
    for case in listed:
        record = records[case_path(hostile, case)]
        if case.expect == "ok":
            assert "labels" in record and "error" not in record, record
        else:
            assert set(record) == {"video", "error", "schema_version", "settings"} and case.detail in record["error"]
    failed = sum(c.expect == "error" for c in listed)
    assert f"{len(listed) - failed} ok, {failed} failed" in err


# -- (d) report ----------------------------------------------------------------------------------------


def test_report_of_a_truncated_file_uses_the_frames_that_decode(capsys, tmp_path, clip_dir, hostile):
    path = hostile / "faststart truncated 90.mp4"
    target = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", path, "--model", clip_dir, *sum((["-l", x] for x in LABELS), []),
                           "--measure", "similarity", "--threshold", "-1", "-o", target)
    assert code == 0, err
    html = target.read_text(encoding="utf-8")
    frames = len(decodable_frames(path))
    assert f'<p class="meta">{hms(frames / 10)} &middot;' in html  # the duration of the frames that decode
    assert html.count('<tr class="event">') >= 1 and html.count("data:image/jpeg;base64,") >= 1


def test_report_of_an_audio_only_file_fails_cleanly(capsys, tmp_path, clip_dir, hostile):
    path = hostile / "audio only.mp4"
    code, out, err = run_cli(capsys, "report", path, "--model", clip_dir, "-l", "running", "-o", tmp_path / "r.html")
    assert code == 1 and err.startswith(f"error: {path}: ") and "no video stream" in err and "Traceback" not in err
    assert tree(tmp_path) == set()


# -- what "ok" means for the odd ones --------------------------------------------------------------------


@pytest.mark.parametrize("percent", [50, 90])
def test_truncated_faststart_file_gives_exactly_the_frames_that_decode(hostile, clf, percent):
    path = hostile / f"faststart truncated {percent}.mp4"
    decodable = decodable_frames(path)
    assert 0 < len(decodable) < 50 and decodable == list(range(len(decodable)))
    with open_video(path) as video:
        assert video.num_frames == len(decodable)
        frames = video.get_frames(np.arange(video.num_frames)).data
    assert [read_index(f) for f in frames] == decodable
    assert clf.classify(str(path), LABELS).duration == pytest.approx(len(decodable) / 10)


def test_plain_mp4_cut_anywhere_has_no_index_left(hostile):
    """A non-faststart MP4 keeps its index (moov) at the end, so any cut loses every frame's position:
    an error is right (nothing can be read without rebuilding the index)."""
    for percent in (10, 50, 90):
        assert decodable_frames(hostile / f"truncated {percent}.mp4") == []


@pytest.mark.parametrize("backend", ["auto", "decord", "opencv"])
def test_avi_header_claiming_more_frames_is_corrected(hostile, backend):
    path = hostile / "header claims 60.avi"
    with open_video(path, backend) as video:
        assert (video.num_frames, video.duration) == (20, pytest.approx(2.0))
        assert read_index(video.get_frames([19]).data[0]) == 19


def test_variable_frame_rate_keeps_the_real_frame_times(hostile, clf):
    for backend in ("auto", *BACKENDS):
        with open_video(hostile / "vfr.mp4", backend) as video:
            np.testing.assert_allclose(video.timeline.pts_seconds, VFR_TIMES, atol=1e-3, err_msg=video.backend)
    result = clf(str(hostile / "vfr.mp4"), candidate_labels=LABELS, segments=True)
    # the last frame (3.1 s) lasts the frames' median gap, 0.1 s: the container says nothing of its end
    assert result["segments"][-1]["end"] == pytest.approx(3.2, abs=0.01)


def test_rotated_video_comes_out_upright(hostile, caplog):
    path = hostile / "rotated.mp4"
    with open_video(path) as video:
        assert (video.width, video.height) == (48, 64)
        frames = video.get_frames([3, 7]).data
        assert video.backend == "pyav"
    assert frames.shape[1:3] == (64, 48)
    assert [read_index(np.rot90(f, k=-1)) for f in frames] == [3, 7]  # turned 90 degrees from the stored picture
    with open_video(path, "decord") as video, pytest.raises(VideoDecodeError, match="decoding failed"):
        video.get_frames([0])


@pytest.mark.parametrize("name", ["tiny.mp4", "odd mjpeg.avi", "odd mpeg4.avi", "portrait.mp4", "uhd.mp4"])
def test_odd_sizes_give_the_right_frames_at_their_own_size(hostile, name):
    """decord cannot copy out frames narrower than its row alignment (16x16: 'DECORDArrayCopyFromTo: The
    size must exactly match'); auto falls back to OpenCV, so the frames still come back right."""
    with open_video(hostile / name) as video:
        frames = video.get_frames(np.arange(video.num_frames)).data
        size = (video.height, video.width)
    assert frames.shape[1:3] == size
    assert [read_index(f) for f in frames] == list(range(len(frames)))


def test_short_and_one_frame_videos_give_one_window(clf, hostile):
    for name, duration in (("one frame.mp4", 0.1), ("half second.mp4", 0.5)):
        result = clf(str(hostile / name), candidate_labels=LABELS, segments=True, window=2.0, stride=1.0)
        assert [(s["start"], s["end"]) for s in result["segments"]] == [(0.0, pytest.approx(duration))]


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: a file without read permission is still readable")
def test_unreadable_file(tmp_path, clf, capsys, clip_dir):
    path = write_clip(tmp_path / "locked.mp4", 5, average_fps=10, width=64, height=48)
    path.chmod(0)
    with pytest.raises(VideoDecodeError, match="permission denied"):
        clf(str(path), candidate_labels=LABELS)
    code, _, err = run_cli(capsys, "classify", path, "--model", clip_dir, "-l", "running")
    assert code == 1 and err.startswith(f"error: {path}: permission denied")


# -- labels and options, checked before any decoding ----------------------------------------------------


@pytest.mark.parametrize(
    "labels, message",
    [([], "empty"), (None, "required"), (["running", "jumping", "running"], "duplicate"), (["running", "  "], "blank"),
     ([""], "blank"), (["running", 3], "not a string"), (42, "must be a list")],
    ids=["empty", "none", "duplicates", "blank", "empty-string", "not-a-string", "not-a-list"],
)
def test_bad_labels_are_rejected_before_decoding(clf, tmp_path, labels, message):
    missing = str(tmp_path / "not-there.mp4")  # decoding it would raise VideoDecodeError instead
    with pytest.raises(InvalidInputError, match=message):
        clf(missing, candidate_labels=labels)


@pytest.mark.parametrize("option", [dict(stride=0), dict(stride=-1), dict(window=0), dict(window=-2), dict(fps=0),
                                    dict(num_frames=0), dict(top_k=0), dict(pooling="median"), dict(stride=float("nan"))],
                         ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_bad_options_are_rejected_before_decoding(clf, tmp_path, option):
    with pytest.raises(InvalidInputError):
        clf(str(tmp_path / "not-there.mp4"), candidate_labels=LABELS, segments=True, **option)
    with pytest.raises(InvalidInputError):  # and before a model is loaded
        actionzs.pipeline(str(tmp_path / "no-model"), **option)


def test_five_thousand_labels(clf, good_clip):
    labels = [f"action number {i}" for i in range(5000)]
    result = clf(str(good_clip), candidate_labels=labels)
    assert len(result) == 5000 and {item["label"] for item in result} == set(labels)
    assert sum(item["score"] for item in result) == pytest.approx(1, abs=1e-3)


def test_window_longer_than_the_video_gives_one_segment(clf, good_clip):
    result = clf(str(good_clip), candidate_labels=LABELS, segments=True, window=60, stride=30)
    assert [(s["start"], s["end"]) for s in result["segments"]] == [(0.0, 3.0)]


def test_fps_above_the_video_rate_repeats_no_frame(clf, good_clip):
    embeddings = clf.embed(str(good_clip), fps=100, segments=True)
    assert embeddings.indices.tolist() == list(range(30))  # every frame once, none twice
    assert np.all(np.diff(embeddings.pts_seconds) > 0)
    result = clf(str(good_clip), candidate_labels=LABELS, segments=True, fps=100)
    assert len(result["segments"]) == 2


# -- safety --------------------------------------------------------------------------------------------


def test_runs_write_nothing_but_the_requested_output(capsys, tmp_path, monkeypatch, clip_dir, good_clip, hostile):
    work, cwd, temp = tmp_path / "work", tmp_path / "cwd", tmp_path / "temp"
    for folder in (work, cwd, temp):
        folder.mkdir()
    shutil.copy(good_clip, work / "good.mp4")
    shutil.copy(hostile / "random.mp4", work / "bad.mp4")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where decoder chatter is caught
    labels = ["-l", "running", "-l", "jumping"]
    runs = [
        (["classify", work / "good.mp4", work / "bad.mp4", "--segments", "-o", work / "out.json", "--format", "json"], "out.json"),
        (["scan", work, "-o", work / "scan.jsonl"], "scan.jsonl"),
        (["scan", work, "-o", work / "scan.jsonl", "--resume"], None),
        (["report", work / "good.mp4", "-o", work / "report.html", "--threshold", "0"], "report.html"),
    ]
    for argv, created in runs:
        before = tree(tmp_path)
        code, _, err = run_cli(capsys, *argv, "--model", clip_dir, *labels, "-q")
        assert "Traceback" not in err
        after = tree(tmp_path)
        assert after - before == ({f"work/{created}"} if created else set()), argv[0]
        assert before - after == set()
        assert tree(cwd) == set() and tree(temp) == set()
        assert tree(Path(clip_dir)) == {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
                                        "tokenizer_config.json"}


def _checkpoint_copy(clip_dir: Path, target: Path) -> Path:
    shutil.copytree(clip_dir, target)
    return target


def test_weights_load_only_from_safetensors(tmp_path, clip_dir, monkeypatch, capsys):
    import torch
    from safetensors.torch import load_file

    pickled = _checkpoint_copy(clip_dir, tmp_path / "pickled")
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    unpickled = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: unpickled.append(a) or real_load(*a, **k))
    with pytest.raises(ModelLoadError, match="safetensors"):
        actionzs.pipeline(str(pickled))
    assert unpickled == []  # the pickle was never opened
    video = write_clip(tmp_path / "x.mp4", 10, average_fps=10)  # a real video: a missing one fails before any model loads
    code, _, err = run_cli(capsys, "classify", video, "--model", pickled, "-l", "running")
    assert code == 1 and str(pickled) in err and "safetensors" in err and unpickled == []


EVIL_CODE = """
from pathlib import Path
Path({marker!r}).write_text("custom code ran")
from transformers import CLIPConfig, CLIPModel, CLIPProcessor
class EvilConfig(CLIPConfig):
    model_type = "evil-clip"
class EvilModel(CLIPModel):
    config_class = EvilConfig
class EvilProcessor(CLIPProcessor):
    pass
"""


@pytest.mark.parametrize("model_type", ["clip", "evil-clip"], ids=["known-architecture", "unknown-architecture"])
def test_checkpoint_asking_for_remote_code_never_runs_it(tmp_path, clip_dir, model_type):
    marker = tmp_path / "custom-code-ran"
    folder = _checkpoint_copy(clip_dir, tmp_path / "remote")
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    config["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(config))
    processor = json.loads((folder / "processor_config.json").read_text())
    processor["auto_map"] = {"AutoProcessor": "evil.EvilProcessor"}
    (folder / "processor_config.json").write_text(json.dumps(processor))
    if model_type == "clip":  # known architecture: loads as the plain transformers class
        classifier = actionzs.pipeline(str(folder), dtype="float32")
        assert type(classifier.encoder.model).__module__.startswith("transformers.")
        assert type(classifier.encoder.model).__name__ == "CLIPModel"
    else:
        with pytest.raises(ModelLoadError):
            actionzs.pipeline(str(folder))
    assert not marker.exists()
    assert not any("evil" in name for name in sys.modules)


# -- concurrency ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def six_clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("six")
    for i in range(6):
        write_clip(folder / f"clip{i}.mp4", 30, average_fps=10, width=64, height=48, scenes=lambda j, i=i: (i + j // 10) % 6)
    return folder


def test_two_scans_at_once_over_the_same_folder(tmp_path, clip_dir, six_clips):
    common = ["--model", clip_dir, "-l", "running", "-l", "jumping", "--segments", "--fps", "2", "-q"]
    first = start_cli("scan", six_clips, "-o", tmp_path / "first.jsonl", *common)
    second = start_cli("scan", six_clips, "-o", tmp_path / "second.jsonl", *common)
    for proc in (first, second):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and "Traceback" not in err, err
    a = by_video(read_jsonl(tmp_path / "first.jsonl"))
    b = by_video(read_jsonl(tmp_path / "second.jsonl"))
    assert set(a) == {str(p) for p in six_clips.glob("*.mp4")}
    assert a == b


def test_one_classifier_from_four_threads_equals_serial(clip_dir, six_clips):
    videos = sorted(str(p) for p in six_clips.glob("*.mp4")) * 2
    serial = actionzs.pipeline(str(clip_dir), dtype="float32")
    expected = {v: serial.classify(v, LABELS, segments=True, fps=4).to_dict() for v in videos}
    shared = actionzs.pipeline(str(clip_dir), dtype="float32")  # a fresh one: nothing cached yet
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda v: shared.classify(v, LABELS, segments=True, fps=4).to_dict(), videos))
    for video, result in zip(videos, got):
        want = expected[video]
        assert result["video"] == video and result["duration"] == want["duration"]
        assert [i["label"] for i in result["labels"]] == [i["label"] for i in want["labels"]]
        np.testing.assert_allclose([i["similarity"] for i in result["labels"]],
                                   [i["similarity"] for i in want["labels"]], atol=1e-6)
        np.testing.assert_allclose([[i["score"] for i in s["labels"]] for s in result["segments"]],
                                   [[i["score"] for i in s["labels"]] for s in want["segments"]], atol=1e-6)


# -- a long scan: 200 files, some broken, killed and resumed ----------------------------------------------


@pytest.mark.slow
def test_scan_of_200_files_killed_and_resumed_records_each_file_once(tmp_path, clip_dir):
    import signal

    folder = tmp_path / "library"
    folder.mkdir()
    seeds = [write_clip(tmp_path / f"seed{i}.mp4", 20, average_fps=10, width=64, height=48, scenes=lambda j, i=i: i) for i in range(3)]
    good, bad = set(), set()
    rng = np.random.default_rng(0)
    for n in range(200):
        path = folder / f"cam{n // 50}" / f"rec{n:03d}.mp4"
        path.parent.mkdir(exist_ok=True)
        if n % 10 == 7:  # 20 broken files of three kinds
            kind = (n // 10) % 3
            if kind == 0:
                path.write_bytes(b"")
            elif kind == 1:
                path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
            else:
                data = seeds[0].read_bytes()
                path.write_bytes(data[: len(data) // 2])
            bad.add(str(path))
        else:
            shutil.copy(seeds[n % 3], path)
            good.add(str(path))

    out_file = tmp_path / "results.jsonl"
    args = ["scan", folder, "-o", out_file, "--model", clip_dir, "-l", "running", "-l", "jumping",
            "--segments", "--fps", "5", "-q"]
    proc = start_cli(*args)
    wait_for_lines(out_file, 40, proc, timeout=300)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed = read_jsonl(out_file)  # whole lines only
    assert 40 <= len(killed) < 200, "the scan finished before it could be killed"

    proc = start_cli(*args, "--resume")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err  # some files are broken
    assert "Traceback" not in err and "already done" in err
    records = read_jsonl(out_file)
    videos = [r["video"] for r in records]
    assert len(videos) == len(set(videos)) == 200  # none twice, none missing
    assert {r["video"] for r in records if "error" not in r} == good
    assert {r["video"] for r in records if "error" in r} == bad
    assert all(len(r["segments"]) == 1 for r in records if "error" not in r)


# -- names, labels and streams that could make the tool lie or lose data ----------------------------


FORGED = "x\x1b[31m\nERROR forged"  # no colon: "name: description" would split it
LABEL_ARGS = ["-l", "running", "-l", "jumping"]


def test_control_characters_reach_the_terminal_escaped(capsys, tmp_path, clip_dir, good_clip):
    """A label or file name with an escape sequence and a line break cannot colour the terminal or
    forge an `error:` line of its own: each shows as its escape, in the table and on stderr."""
    code, out, err = run_cli(capsys, "classify", good_clip, "--model", clip_dir, "-l", FORGED, "-l", "running", *FAST)
    assert code == 0, err
    assert "\x1b" not in out and "\nERROR forged" not in out and r"x\x1b[31m\nERROR forged" in out
    missing = tmp_path / "cam\x1b]0;owned\x07\nerror: fake.mp4"
    code, out, err = run_cli(capsys, "classify", missing, "--model", clip_dir, "-l", "running", "-l", "jumping", *FAST)
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1 and r"\nerror: fake.mp4" in err
    code, out, err = run_cli(capsys, "probe", missing)
    assert code == 1 and "\x1b" not in out + err and err.count("\n") == 1


def test_csv_cells_that_a_spreadsheet_would_run_are_prefixed(capsys, clip_dir, good_clip):
    code, out, _ = run_cli(capsys, "classify", good_clip, "--model", clip_dir, "--format", "csv", *FAST,
                           "-l", "=HYPERLINK(A1)", "-l", "+1", "-l", "@SUM(A1)", "-l", "-2", "-l", "running")
    assert code == 0
    import csv
    import io

    rows = [row for row in csv.DictReader(io.StringIO(out)) if row["kind"] != "settings"]
    labels = {row["label"] for row in rows}
    assert labels == {"'=HYPERLINK(A1)", "'+1", "'@SUM(A1)", "'-2", "running"}
    assert any(float(row["similarity"]) < 0 for row in rows)  # numbers stay numbers, minus sign and all


@pytest.mark.parametrize("labels", [["Running", "running "], ["a  dog", "A dog"], ["x: a person runs", "y: A person  runs"]])
def test_labels_the_model_reads_alike_are_refused(clf, good_clip, labels):
    with pytest.raises(InvalidInputError, match="duplicate candidate labels.*same text"):
        clf(str(good_clip), candidate_labels=labels)


@pytest.mark.parametrize("template", ["{:>10}", "{0.x}", "{0}", "{!r}", "a {} and {}", "a {", "no field"])
def test_templates_with_more_than_one_plain_field_are_refused(clf, good_clip, template, capsys, clip_dir):
    with pytest.raises(InvalidInputError, match="exactly one"):
        clf(str(good_clip), candidate_labels=LABELS, hypothesis_template=template)
    code, _, err = run_cli(capsys, "classify", good_clip, "--model", clip_dir, "-l", "a", "-l", "b", "--template", template)
    assert code == 2 and "exactly one" in err and "Traceback" not in err


def test_a_template_with_escaped_braces_is_a_template(clf, good_clip):
    braces = clf(str(good_clip), candidate_labels=LABELS, hypothesis_template="{{}} {}")
    assert [r["label"] for r in braces] and clf.texts.encoded > 0
    assert "{} running" in clf.texts._cache


@pytest.mark.parametrize("device, words", [("banana", "not a device name"), ("cuda", "no CUDA device"),
                                           ("cuda:99", "CUDA device"), ("hpu", "not supported")])
def test_a_device_this_machine_lacks_is_a_clear_error(capsys, clip_dir, good_clip, device, words):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    code, _, err = run_cli(capsys, "classify", good_clip, "--model", clip_dir, "-l", "a", "-l", "b", "--device", device)
    assert code == 2 and words in err and "Traceback" not in err


def test_a_hub_id_with_too_many_slashes_is_a_clear_error(capsys, good_clip):
    code, _, err = run_cli(capsys, "classify", good_clip, "--model", "a/b/c/d", "-l", "a", "-l", "b")
    assert code == 1 and "no such folder" in err and "a hub id reads owner/name" in err and "Traceback" not in err


def test_a_legal_250_byte_output_name_is_written(capsys, tmp_path, clip_dir, good_clip):
    output = tmp_path / ("r" * 245 + ".json")
    code, _, err = run_cli(capsys, "classify", good_clip, "--model", clip_dir, "-l", "a", "-l", "b", "--format", "json",
                           "-o", output, *FAST)
    assert code == 0, err
    assert json.loads(output.read_text())[0]["video"] == str(good_clip)


#: Runs the CLI with the given standard file descriptors closed, as `actionzs ... >&- 2>&-` does;
#: argv[1] names them, argv[2] is where the exit status is written, the rest is the command line.
CLOSED_STREAMS = """
import os, sys
for fd in map(int, sys.argv[1].split(",")):
    os.close(fd)
from actionzs.cli import main
code = main(sys.argv[3:])
os.write(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644), str(code).encode())
"""


def test_a_scan_with_stdout_and_stderr_closed_keeps_every_record(tmp_path, clip_dir, six_clips):
    out_file = tmp_path / "out.jsonl"
    import subprocess

    from helpers_cli import subprocess_env

    status = tmp_path / "status"
    subprocess.run([sys.executable, "-c", CLOSED_STREAMS, "1,2", str(status), "scan", str(six_clips), "-o", str(out_file),
                    "--model", str(clip_dir), *LABEL_ARGS, *FAST], env=subprocess_env(), timeout=300, stdin=subprocess.DEVNULL)
    assert status.read_text() == "0"
    assert len(read_jsonl(out_file)) == len(list(six_clips.glob("*.mp4")))


@pytest.mark.parametrize("command", ["probe", "classify"])
def test_results_for_a_closed_stdout_are_a_failure_not_a_silent_success(tmp_path, clip_dir, good_clip, command):
    import subprocess

    from helpers_cli import subprocess_env

    status = tmp_path / "status"
    argv = ["probe", str(good_clip)] if command == "probe" else ["classify", str(good_clip), "--model", str(clip_dir), *LABEL_ARGS]
    run = subprocess.run([sys.executable, "-c", CLOSED_STREAMS, "1", str(status), *argv], env=subprocess_env(),
                         timeout=300, stderr=subprocess.PIPE, text=True)
    assert status.read_text() == "1"
    assert "standard output is closed" in run.stderr


def test_a_second_scan_into_the_same_results_file_fails_cleanly(capsys, tmp_path, clip_dir, six_clips):
    """While one scan holds the results file, another into it exits 2 and leaves it alone."""
    import fcntl

    out_file = tmp_path / "out.jsonl"
    with open(out_file, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for resume in ((), ("--resume",)):
            code, _, err = run_cli(capsys, "scan", six_clips, "-o", out_file, "--model", clip_dir, *LABEL_ARGS, *FAST, *resume)
            assert code == 2 and "another scan is writing" in err and "Traceback" not in err
    assert out_file.read_text() == ""
    code, _, err = run_cli(capsys, "scan", six_clips, "-o", out_file, "--model", clip_dir, *LABEL_ARGS, *FAST)
    assert code == 0, err  # once the other has let go


@pytest.mark.parametrize("content", [b'[\n  {"video": "a.mp4", "labels": []}\n]\n', b"\x00\x00\x00\x18ftypmp42", b"notes\n"])
def test_resume_refuses_a_file_that_is_not_a_scans_results(capsys, tmp_path, clip_dir, six_clips, content):
    out_file = tmp_path / "precious"
    out_file.write_bytes(content)
    code, _, err = run_cli(capsys, "scan", six_clips, "-o", out_file, "--model", clip_dir, *LABEL_ARGS, *FAST, "--resume")
    assert code == 2 and "not a scan's results" in err and "Traceback" not in err
    assert out_file.read_bytes() == content


#: A scan whose output may grow to argv[1] bytes only (as a full disk would stop it); SIGXFSZ is
#: ignored, so the kernel answers a write past the limit as a short write, then EFBIG.
SMALL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from actionzs.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_leaves_only_whole_records_and_names_the_file(tmp_path, clip_dir, six_clips):
    import subprocess

    from helpers_cli import subprocess_env

    out_file = tmp_path / "out.jsonl"
    run = subprocess.run([sys.executable, "-c", SMALL_DISK, "1500", "scan", str(six_clips), "-o", str(out_file),
                          "--model", str(clip_dir), *LABEL_ARGS, *FAST], env=subprocess_env(), timeout=300,
                         capture_output=True, text=True)
    assert run.returncode == 1 and str(out_file) in run.stderr and "Traceback" not in run.stderr, run.stderr
    text = out_file.read_text()
    assert 0 < len(text) <= 1500 and text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line whole
    assert 0 < len(records) < 6


def test_a_folder_with_a_link_loop_lists_each_video_once(tmp_path):
    from actionzs.scan import find_videos

    root = tmp_path / "cams"
    (root / "day").mkdir(parents=True)
    clip = write_clip(root / "day" / "a.mp4", 5, average_fps=10, width=32, height=32)
    (root / "day" / "back").symlink_to(root, target_is_directory=True)  # a loop
    (root / "alias").symlink_to(root / "day", target_is_directory=True)  # the same folder twice
    videos, problems = find_videos([str(root), str(clip), str(root / "**" / "*.mp4")])
    assert videos == [str(clip)] and problems == []


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("flag", ["--labels-file", "--config"])
@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "huge", "folder", "latin-1"])
def test_labels_and_configs_are_read_only_from_small_regular_files(capsys, tmp_path, clip_dir, good_clip, fifo, flag, source):
    """/dev/zero would be read until memory is gone, a FIFO would block forever: each is a clear
    error naming the file, at once, before the model loads."""
    path = {"/dev/zero": Path("/dev/zero"), "fifo": fifo, "huge": tmp_path / "huge.txt", "folder": tmp_path,
            "latin-1": tmp_path / "latin.txt"}[source]
    if source == "huge":
        path.write_bytes(b"running\n" * (1 << 20))  # 8 MiB
    if source == "latin-1":
        path.write_bytes(b"caf\xe9: running\n")
    labels = [] if flag == "--labels-file" else ["-l", "running", "-l", "jumping"]
    code, _, err = run_cli(capsys, "classify", good_clip, "--model", tmp_path / "no-model-needed", flag, path, *labels)
    assert code == 2 and str(path) in err and "Traceback" not in err
    assert {"/dev/zero": "not a regular file", "fifo": "not a regular file", "folder": "not a regular file",
            "huge": "larger than", "latin-1": "not UTF-8"}[source] in err


@pytest.mark.parametrize("text, words", [(BILLION_LAUGHS, "aliases"), ("fps: " + "[" * 100_000 + "]" * 100_000, "nested"),
                                         ("top_k: &k 3\nfps: *k\n", "aliases")])
def test_configs_with_aliases_or_deep_nesting_are_refused_at_once(tmp_path, text, words):
    import time

    path = tmp_path / "evil.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(InvalidInputError, match=words) as info:
        actionzs.load_config(path)
    assert time.monotonic() - started < 2 and len(str(info.value)) < 300 and str(path) in str(info.value)


def test_a_file_name_that_is_not_utf8_fails_alone_and_is_reported_exactly(capsys, tmp_path, clip_dir, good_clip):
    """OpenCV would crash the whole process on such a name: it is an error record, the scan goes
    on, and every output names the file exactly (JSON escapes) or escaped (the terminal)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(good_clip, folder / "good.mp4")
    bad = os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.mp4")
    shutil.copy(good_clip, os.fsencode(bad))
    out_file = tmp_path / "out.jsonl"
    code, _, err = run_cli(capsys, "scan", folder, "-o", out_file, "--model", clip_dir, *LABEL_ARGS, *FAST, "--backend", "opencv")
    assert code == 1 and "not valid UTF-8" in err and r"caf\udce9.mp4" in err and "Traceback" not in err
    records = by_video(read_jsonl(out_file))
    assert set(records) == {str(folder / "good.mp4"), bad} and "labels" in records[str(folder / "good.mp4")]
    for fmt in ("json", "csv", "table"):
        code, out, err = run_cli(capsys, "classify", bad, "--model", clip_dir, *LABEL_ARGS, *FAST, "--format", fmt)
        assert code == 1 and "Traceback" not in err
    code, out, _ = run_cli(capsys, "probe", "--json", bad)
    assert code == 1 and json.loads(out)[0]["video"] == bad
