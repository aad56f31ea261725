"""The library: `index` once, then `search` and re-label without decoding, and its faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import run_cli, start_cli, subprocess_env, write_h264
from PIL import Image

from actionzs import pipeline
from actionzs.errors import InvalidInputError, SingleLabelWarning
from actionzs.library import Library, Query
from actionzs.library.store import LibraryStore, WriterLock
from actionzs.scan import find_videos

LABELS = ["running", "jumping", "a person climbing a fence"]


def _picture(seed: int, size=(48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Three short videos of different lengths, two photos and a file that is not a video."""
    videos = tmp_path / "footage"
    (videos / "cam2").mkdir(parents=True)
    write_h264(videos / "a.mp4", 30)
    write_h264(videos / "cam2" / "b.mp4", 45)
    write_h264(videos / "cam2" / "c.mp4", 62, fps=10)
    Image.fromarray(_picture(1)).save(videos / "photo1.png")
    Image.fromarray(_picture(2)).save(videos / "cam2" / "photo2.jpg", quality=95)
    (videos / "broken.mp4").write_bytes(b"not a video at all" * 50)
    return videos


def _files(folder: Path) -> list[str]:
    return find_videos([str(folder)], images=True)[0]


def _library(tmp_path, clip_dir, **options) -> Library:
    return Library(tmp_path / "lib.actionzs", str(clip_dir), **options)


def _stored_vectors(path: Path) -> tuple[list[tuple[str, float]], np.ndarray]:
    """Every stored frame as (video, time) and its float16 vector as float32: the brute-force reference."""
    names, vectors = [], []
    with LibraryStore(path) as store:
        for stored, held in store.all_vectors():
            _, times = store.timeline(stored)
            names += [(os.fspath(store.root / stored.path), float(t)) for t in times]
            vectors.append(held.astype(np.float32))
    return names, np.concatenate(vectors)


# -- indexing and the catalog ---------------------------------------------------------------------


def test_index_stores_each_file_once_with_its_frames_and_failures(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    report = library.add(_files(folder))
    assert sorted(Path(p).name for p in report.embedded) == ["a.mp4", "b.mp4", "c.mp4", "photo1.png", "photo2.jpg"]
    assert list(report.failed) == [str(folder / "broken.mp4")] and "not a readable video" in report.failed[str(folder / "broken.mp4")]
    catalog = {f.path: f for f in library.files()}
    assert set(catalog) == {"footage/a.mp4", "footage/cam2/b.mp4", "footage/cam2/c.mp4", "footage/photo1.png",
                            "footage/cam2/photo2.jpg", "footage/broken.mp4"}  # relative to the index's folder
    assert catalog["footage/broken.mp4"].status == "failed"
    assert catalog["footage/photo1.png"].kind == "image" and catalog["footage/photo1.png"].frames == 1
    # frames at 1 per second, with their true times: 6.2 s at 10 fps gives 7 frames (0.5 s ... 6.5 s centred)
    with LibraryStore(tmp_path / "lib.actionzs") as store:
        indices, times = store.timeline(catalog["footage/cam2/c.mp4"])
        settings = store.settings()
    classifier = pipeline(str(clip_dir))
    direct = classifier.embed(str(folder / "cam2" / "c.mp4"), fps=1.0, segments=True)
    assert indices.tolist() == direct.indices.tolist() and np.allclose(times, direct.pts_seconds)
    assert settings["sampling"] == {"fps": 1.0} and settings["fingerprint"] == classifier.encoder.fingerprint
    assert settings["dim"] == direct.vectors.shape[1]


def test_a_second_run_embeds_only_what_changed(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(folder)  # a folder is searched for videos and images
    again = library.add(_files(folder))
    assert again.embedded == [] and again.unchanged == 5 and list(again.failed) == [str(folder / "broken.mp4")]  # retried

    shutil.copy(folder / "a.mp4", folder / "broken.mp4")  # the broken file is fixed: embedded now
    write_h264(folder / "cam2" / "b.mp4", 20)  # changed content
    (folder / "cam2" / "c.mp4").rename(folder / "c renamed.mp4")  # same content, new name
    shutil.copy(folder / "photo1.png", folder / "photo1 copy.png")  # a copy
    os.utime(folder / "a.mp4")  # only its time changed
    (folder / "cam2" / "photo2.jpg").unlink()  # gone
    report = library.add(_files(folder))
    assert sorted(Path(p).name for p in report.embedded) == ["b.mp4"]
    assert (report.moved, report.copied, report.gone, report.pruned, report.failed) == (1, 2, 1, 0, {})
    # the fixed file has a.mp4's content: copied from it, not embedded
    assert "footage/cam2/photo2.jpg" in {f.path for f in library.files()}  # gone, but kept without --prune
    pruned = library.add(_files(folder), prune=True)
    assert pruned.pruned == 1 and pruned.embedded == []
    catalog = {f.path: f for f in library.files()}
    assert "footage/cam2/photo2.jpg" not in catalog and "footage/cam2/c.mp4" not in catalog
    assert catalog["footage/c renamed.mp4"].frames == 7 and catalog["footage/cam2/b.mp4"].frames == 2
    assert catalog["footage/broken.mp4"].status == "ok"


def test_a_moved_library_folder_is_still_the_same_index(tmp_path, clip_dir, folder):
    _library(tmp_path, clip_dir).add(_files(folder))
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(tmp_path, moved)
    try:
        library = Library(moved / "lib.actionzs", str(clip_dir))
        report = library.add(_files(moved / "footage"))
        assert report.embedded == [] and report.unchanged == 5 and report.gone == 0
        [moments] = library.search(Query(like=(str(moved / "footage" / "a.mp4"), 1.5)), top_k=1, window_seconds=0)
        assert moments[0].video == str(moved / "footage" / "a.mp4")
    finally:
        shutil.move(moved, tmp_path)


def test_another_model_or_sampling_is_refused_by_name(tmp_path, clip_dir, siglip_dir, xclip_dir, folder):
    _library(tmp_path, clip_dir).add(_files(folder)[:2])
    with pytest.raises(InvalidInputError, match=r"built with the model .*tiny-clip"):
        Library(tmp_path / "lib.actionzs", str(siglip_dir)).add(_files(folder))
    with pytest.raises(InvalidInputError, match=r"samples frames with \{'fps': 1.0\}, not \{'fps': 2.0\}"):
        Library(tmp_path / "lib.actionzs", str(clip_dir), fps=2.0).add(_files(folder))
    with pytest.raises(InvalidInputError, match="clip encoder"):
        Library(tmp_path / "other.actionzs", str(xclip_dir)).add(_files(folder))


# -- search ------------------------------------------------------------------------------------------


def test_exact_search_is_the_brute_force_cosine_ranking(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(_files(folder))
    names, vectors = _stored_vectors(tmp_path / "lib.actionzs")
    queries = ["a person running", "an empty street at night"]
    found = library.search(queries, top_k=10, window_seconds=0)  # no merging: a moment per frame
    text = library.classifier.texts
    from actionzs.prompts import parse_labels

    for query, moments in zip(queries, found):
        vector = text.embed_labels(parse_labels([query]), ("a video of {}.",))[0].numpy()
        similarity = vectors @ vector
        order = np.argsort(-similarity, kind="stable")[:10]
        assert [round(m.similarity, 5) for m in moments] == [round(float(similarity[i]), 5) for i in order]
        got = {(m.video, round(m.frame_seconds, 3)) for m in moments}
        tied = {(names[i][0], round(names[i][1], 3)) for i in np.flatnonzero(similarity >= similarity[order[-1]] - 1e-6)}
        assert got <= tied


def test_hits_close_in_time_are_one_moment(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir, fps=4.0)
    library.add([str(folder / "cam2" / "c.mp4")])
    [moments] = library.search("a person", top_k=50, window_seconds=10)
    assert len(moments) == 1  # every frame of the one video matches, within 10 s of the next
    moment = moments[0]
    assert moment.hits == 25 and moment.start_seconds == pytest.approx(0.1) and moment.end_seconds == pytest.approx(6.2)
    [apart] = library.search("a person", top_k=50, window_seconds=0)
    assert len(apart) == 25 and all(m.hits == 1 for m in apart)


def test_search_by_image_and_by_example_moment(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(_files(folder))
    by_image, by_moment = library.search(
        [Query(image=str(folder / "photo1.png")), Query(like=(str(folder / "cam2" / "c.mp4"), 3.4))], top_k=3, window_seconds=0
    )
    assert by_image[0].video == str(folder / "photo1.png") and by_image[0].similarity > 0.999
    # the moment itself is among the best (the test videos repeat each other's pictures)
    assert by_moment[0].similarity > 0.999
    assert any(m.video.endswith("c.mp4") and m.frame_seconds == pytest.approx(3.5) for m in by_moment)
    # a picture in memory is a query too; a moment of a file the index lacks is a clear error
    [in_memory] = library.search(Query(image=Image.open(folder / "photo1.png")), top_k=1)
    assert in_memory[0].video == str(folder / "photo1.png")
    with pytest.raises(InvalidInputError, match="not in the index"):
        library.search(Query(like=(str(tmp_path / "elsewhere.mp4"), 1.0)))
    with pytest.raises(InvalidInputError, match="outside the video"):
        library.search(Query(like=(str(folder / "a.mp4"), 99.0)))


def test_search_only_some_videos(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(_files(folder))
    [moments] = library.search("a person", top_k=20, videos="footage/cam2/*.mp4")
    assert {Path(m.video).name for m in moments} == {"b.mp4", "c.mp4"}


def test_faiss_search_finds_what_exact_search_finds(tmp_path, clip_dir, folder, monkeypatch):
    import actionzs.library.neighbours as neighbours

    monkeypatch.setattr(neighbours, "FAISS_THRESHOLD", 100)
    library = _library(tmp_path, clip_dir, fps=30.0)
    library.add([str(folder / "cam2" / "c.mp4"), str(folder / "a.mp4"), str(folder / "cam2" / "b.mp4")])
    saved = Path(f"{tmp_path / 'lib.actionzs'}.neighbours")
    assert saved.exists()
    queries = ["a person running", "a dog", "a corner kick", "a red car"]
    approximate = Library(tmp_path / "lib.actionzs").search(queries, top_k=20, window_seconds=0)
    exact = library.search(queries, top_k=20, window_seconds=0, exact=True)
    for a, e in zip(approximate, exact):
        found = {(m.video, m.frame_index) for m in a}
        assert len(found & {(m.video, m.frame_index) for m in e}) / 20 >= 0.95
    # a run that changes nothing leaves the saved index alone; a new file is added to it
    written = saved.stat().st_mtime_ns
    library.add([str(folder / "a.mp4")])
    assert saved.stat().st_mtime_ns == written
    library.add([str(folder / "cam2" / "c.mp4"), str(folder / "photo1.png")])
    assert saved.stat().st_mtime_ns != written
    [found] = Library(tmp_path / "lib.actionzs").search(Query(image=str(folder / "photo1.png")), top_k=1)
    assert found[0].video == str(folder / "photo1.png")
    # a damaged saved index is built again, with a warning, never trusted
    saved.write_bytes(saved.read_bytes()[:-100] + b"x" * 100)
    again = Library(tmp_path / "lib.actionzs").search(queries[:1], top_k=5, window_seconds=0)
    assert [m.frame_index for m in again[0]] == [m.frame_index for m in approximate[0][:5]]


def test_search_while_an_index_run_writes(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(_files(folder))
    before = library.search("a person", top_k=3)
    assert len(before[0]) == 3
    with LibraryStore(tmp_path / "lib.actionzs", writable=True) as writer:
        with writer._write():  # a write in progress, not committed
            writer._db.execute("DELETE FROM files")
            assert Library(tmp_path / "lib.actionzs").search("a person", top_k=3) == before  # readers see the last commit


# -- re-labelling from the index ------------------------------------------------------------------


def test_relabelling_from_the_index_equals_classifying_the_videos(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    files = _files(folder)
    library.add(files)
    options = dict(segments=True, window=2.0, stride=1.0, events={"threshold": 0.3})
    stored = dict(library.classify(LABELS, **options))
    classifier = pipeline(str(clip_dir), fps=1.0)
    for video, direct in classifier.classify_each(files, LABELS, **options):
        from_index = stored[video]
        if isinstance(direct, Exception):
            assert isinstance(from_index, Exception) and "failed when indexed" in str(from_index)
            continue
        # the index stores float16: scoring the same embeddings rounded so gives the very same results
        rounded = type(direct.embeddings)(**{**direct.embeddings.__dict__,
                                             "vectors": direct.embeddings.vectors.astype(np.float16).astype(np.float32)})
        same = classifier.score(rounded, classifier.prepare(LABELS)[0], classifier.options.updated(**options))
        assert from_index.to_dict()["labels"] == same.to_dict()["labels"]
        assert from_index.to_dict()["events"] == same.to_dict()["events"]
        np.testing.assert_allclose(from_index.window_scores, same.window_scores, atol=1e-6)
        np.testing.assert_array_equal(from_index.window_spans, direct.window_spans)
        # and rounding to float16 moves a similarity by less than 1e-3
        np.testing.assert_allclose(from_index.window_similarity, direct.window_similarity, atol=1e-3)
        assert [x["label"] for x in from_index.labels] == [x["label"] for x in direct.labels] or \
            abs(direct.labels[0]["similarity"] - direct.labels[1]["similarity"]) < 1e-3


def test_a_keyframe_index_holds_the_keyframes_and_relabels_from_them(tmp_path, clip_dir, folder, capsys):
    index = tmp_path / "lib.actionzs"
    code, _, err = run_cli(capsys, "index", folder / "cam2" / "c.mp4", "--index", index, "--model", clip_dir, "--keyframes")
    assert code == 0, err
    with LibraryStore(index) as store:
        [stored] = store.files()
        indices, _ = store.timeline(stored)
        assert store.settings()["sampling"] == {"keyframes": True}
    import av

    with av.open(str(folder / "cam2" / "c.mp4")) as container:  # the truth: FFmpeg's full decode
        keys = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    assert indices.tolist() == keys and len(keys) >= 7
    code, out, err = run_cli(capsys, "classify", "--index", index, "-l", "running", "--segments", "--format", "json")
    assert code == 0, err
    with pytest.warns(SingleLabelWarning):  # one label under a softmax head, as the CLI call above
        direct = pipeline(str(clip_dir)).classify(str(folder / "cam2" / "c.mp4"), ["running"], keyframes=True, segments=True)
    relabelled = json.loads(out)[0]["segments"]
    assert [w["start"] for w in relabelled] == [w["start"] for w in direct.to_dict()["segments"]]
    assert [w.get("frameless", False) for w in relabelled] == direct.frameless.tolist()  # as classifying the video
    code, _, err = run_cli(capsys, "classify", "--index", index, "-l", "running", "--fps", "1")
    assert code == 2 and "the index holds keyframes, not --fps 1" in err


def test_an_index_snapped_to_keyframes_records_it_and_relabels_as_classifying_the_video(tmp_path, clip_dir, folder, capsys):
    index, video = tmp_path / "lib.actionzs", folder / "cam2" / "c.mp4"
    code, _, err = run_cli(capsys, "index", video, "--index", index, "--model", clip_dir, "--snap-to-keyframes", "0.5")
    assert code == 0, err
    direct = pipeline(str(clip_dir), fps=1.0, snap_to_keyframes=0.5)
    embedded = direct.embed(str(video), segments=True)
    with LibraryStore(index) as store:
        [stored] = store.files()
        indices, _ = store.timeline(stored)
        assert store.settings()["sampling"] == {"fps": 1.0, "snap_to_keyframes": 0.5}
    import av

    with av.open(str(video)) as container:  # the truth: FFmpeg's full decode
        keys = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    assert indices.tolist() == embedded.indices.tolist() and set(indices.tolist()) <= set(keys)
    asked = ["-l", "running", "-l", "jumping", "--segments", "--format", "json", "-q"]
    code, out, err = run_cli(capsys, "classify", "--index", index, *asked)
    assert code == 0, err
    relabelled = json.loads(out)[0]
    assert relabelled["settings"]["sampling"]["snap_to_keyframes"] == 0.5
    code, out, err = run_cli(capsys, "classify", video, "--model", clip_dir, "--snap-to-keyframes", "0.5", *asked)
    expected = json.loads(out)[0]["segments"]
    def scores(segments):
        return [x["score"] for w in segments for x in sorted(w["labels"], key=lambda x: x["label"])]

    # the index keeps float16 vectors: a cosine moves by < 1e-3
    assert len(relabelled["segments"]) == len(expected) and scores(relabelled["segments"]) == pytest.approx(scores(expected), abs=1e-3)
    code, _, err = run_cli(capsys, "classify", "--index", index, "-l", "running", "--snap-to-keyframes", "0")
    assert code == 2 and "snapped to keyframes within 0.5 s, not --snap-to-keyframes 0" in err
    code, _, err = run_cli(capsys, "index", video, "--index", index, "--snap-to-keyframes", "1")
    assert code == 2 and "'snap_to_keyframes': 0.5" in err


def test_sampling_an_index_cannot_take_is_refused_before_the_model_loads(tmp_path, clip_dir, folder):
    """A model that cannot load shows what comes first: the refusal of the sampling, not the
    model's error (and no index is made), for a new index and for one built with keyframes."""
    video = folder / "cam2" / "c.mp4"
    with pytest.raises(InvalidInputError, match="give one of them"):
        Library(tmp_path / "new.actionzs", str(tmp_path / "no model"), keyframes=True, snap_to_keyframes=1.0).add(video)
    assert not (tmp_path / "new.actionzs").exists()
    Library(tmp_path / "built.actionzs", str(clip_dir), keyframes=True).add(video)
    with pytest.raises(InvalidInputError, match="give one of them"):
        Library(tmp_path / "built.actionzs", str(tmp_path / "no model"), snap_to_keyframes=1.0).add(video)


def test_relabelling_needs_the_index_sampling(tmp_path, clip_dir, folder):
    library = _library(tmp_path, clip_dir)
    library.add(_files(folder)[:2])
    with pytest.raises(InvalidInputError, match=r"sampled with \{'fps': 1.0\}"):
        list(library.classify(LABELS, fps=2.0, segments=True))


# -- the command line ---------------------------------------------------------------------------------


def test_cli_index_search_classify_and_scan(tmp_path, clip_dir, folder, capsys):
    index = tmp_path / "lib.actionzs"
    code, out, err = run_cli(capsys, "index", folder, "--index", index, "--model", clip_dir)
    assert code == 1 and f"error: {folder / 'broken.mp4'}: not a readable video" in err
    assert "indexed 5 files" in err and "1 failed" in err
    code, out, err = run_cli(capsys, "index", folder, "--index", index)  # the index's own model
    assert code == 1 and "indexed 0 files" in err and "5 unchanged" in err

    code, out, err = run_cli(capsys, "search", "a person running", "-q", "a dog", "--index", index, "--top", "3",
                             "--format", "json", "--thumbnails", tmp_path / "thumbs")
    assert code == 0, err
    records = json.loads(out)
    assert [r["query"] for r in records] == ["a person running"] * 3 + ["a dog"] * 3
    assert [r["rank"] for r in records] == [1, 2, 3] * 2
    assert {"video", "start", "end", "score", "similarity", "frame_time"} <= set(records[0])
    for r in records:
        assert r["start"] <= r["frame_time"] < r["end"]
        assert Image.open(r["thumbnail"]).size in {(160, 120), (64, 48)}
    code, out, _ = run_cli(capsys, "search", "a person", "--index", index, "--format", "csv", "--top", "2")
    assert code == 0 and out.splitlines()[0] == "query,rank,video,start,end,score,similarity,frame_time,hits,thumbnail"
    code, out, _ = run_cli(capsys, "search", "--like", f"{folder / 'a.mp4'}@1.5", "--index", index, "--top", "1")
    assert code == 0 and "like " in out and "a.mp4" in out

    code, out, err = run_cli(capsys, "classify", "--index", index, *sum((["-l", x] for x in LABELS), []), "--segments",
                             "--format", "json")
    assert code == 1  # the broken file: an error record, the others scored
    records = {Path(r["video"]).name: r for r in json.loads(out)}
    assert "failed when indexed" in records["broken.mp4"]["error"] and records["a.mp4"]["segments"]
    code, out, err = run_cli(capsys, "classify", "--index", index, folder / "a.mp4", "-l", "running", "--format", "json")
    assert code == 0 and [Path(r["video"]).name for r in json.loads(out)] == ["a.mp4"]
    code, out, err = run_cli(capsys, "scan", "--index", index, "-o", tmp_path / "out.jsonl", "-l", "running", "-q")
    assert code == 1 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "", "--index", "{index}"], "an empty query"),
        (["search", "x", "--index", "{index}", "--top", "0"], "--top must be at least 1"),
        (["search", "--index", "{index}"], "nothing to search for"),
        (["search", "--like", "a.mp4:3", "--index", "{index}"], "give VIDEO@SECONDS"),
        (["search", "x", "--index", "{missing}"], "no such index"),
        (["classify", "--index", "{index}", "-l", "x", "--num-frames", "4"], "--num-frames needs the videos"),
        (["classify", "--index", "{index}", "-l", "x", "--fps", "3"], "not --fps 3"),
    ],
)
def test_cli_bad_requests_are_clear_errors(tmp_path, clip_dir, folder, capsys, argv, message):
    index = tmp_path / "lib.actionzs"
    Library(index, str(clip_dir)).add([str(folder / "a.mp4")])
    code, out, err = run_cli(capsys, *[a.format(index=index, missing=tmp_path / "none.actionzs") for a in argv])
    assert code == 2 and message in err and "Traceback" not in err


def test_a_query_longer_than_the_text_context_is_cut_with_a_warning(tmp_path, clip_dir, folder, caplog):
    library = _library(tmp_path, clip_dir)
    library.add([str(folder / "a.mp4")])
    [moments] = library.search(" ".join(["word"] * 500), top_k=1)
    assert moments and any("cut to the encoder's" in r.message for r in caplog.records)


# -- faults: other files, damage, two writers, a killed run ---------------------------------------------


def _sqlite_of_another_application(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")


@pytest.mark.parametrize("kind", ["random bytes", "other sqlite", "newer schema", "truncated", "folder", "empty"])
def test_a_file_that_is_not_a_readable_index_is_refused_and_left_alone(tmp_path, clip_dir, folder, capsys, kind):
    index = tmp_path / "lib.actionzs"
    if kind == "random bytes":
        index.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "other sqlite":
        _sqlite_of_another_application(index)
    elif kind in ("newer schema", "truncated"):
        Library(index, str(clip_dir)).add(_files(folder))
        with sqlite3.connect(index) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if kind == "newer schema":
                db.execute("PRAGMA user_version = 99")
        if kind == "truncated":
            index.write_bytes(index.read_bytes()[: index.stat().st_size // 3])
    elif kind == "folder":
        index.mkdir()
    else:
        index.write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir()), None if index.is_dir() else index.read_bytes()
    for argv in (["search", "x", "--index", index], ["classify", "--index", index, "-l", "x"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and str(index) in err and "Traceback" not in err, err
    code, out, err = run_cli(capsys, "index", folder / "a.mp4", "--index", index, "--model", clip_dir)
    assert code == 2 and str(index) in err and "Traceback" not in err, err
    expected = {"random bytes": "not a SQLite file", "other sqlite": "a SQLite database of something else",
                "newer schema": "made by a newer actionzs", "folder": "is a folder",
                "empty": "an empty file, not an actionzs index"}.get(kind, "cannot be read")
    assert expected in err
    after_files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith((".lock", "-shm", "-wal")))
    assert after_files == [n for n in before[0] if not n.endswith((".lock", "-shm", "-wal"))]
    if before[1] is not None:
        assert index.read_bytes() == before[1]


def test_two_index_runs_one_waits_or_fails_cleanly(tmp_path, clip_dir, folder, capsys):
    index = tmp_path / "lib.actionzs"
    with WriterLock(index):
        code, out, err = run_cli(capsys, "index", folder / "a.mp4", "--index", index, "--model", clip_dir)
        assert code == 2 and "another `actionzs index` run is writing this index" in err
        waiting = start_cli("index", folder / "a.mp4", "--index", index, "--model", clip_dir, "--wait")
        said = waiting.stderr.readline()  # it says so, and waits for the lock
        assert "another run is writing this index; waiting for it" in said
        time.sleep(1)
        assert waiting.poll() is None
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "indexed 1 files" in err


@pytest.mark.slow
def test_a_killed_index_run_loses_at_most_the_files_in_progress(tmp_path, clip_dir):
    footage = tmp_path / "many"
    footage.mkdir()
    for i in range(12):
        write_h264(footage / f"clip{i:02d}.mp4", 200 + i)  # each its own content
    index = tmp_path / "lib.actionzs"
    run = start_cli("index", footage, "--index", index, "--model", clip_dir, "--fps", "10")
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and stored < 2:
        time.sleep(0.2)
        if index.exists():
            try:
                with LibraryStore(index) as store:
                    stored = len(store.files())
            except InvalidInputError:
                stored = 0  # being created
    run.send_signal(signal.SIGKILL)
    run.communicate()
    assert 2 <= stored < 12, "the run ended before it could be killed mid-way"
    with LibraryStore(index) as store:  # readable, and each stored file whole
        files = store.files()
        assert all(f.status == "ok" and len(store.embeddings(f)) == f.frames >= 200 for f in files)
    done = len(files)
    again = subprocess.run([sys.executable, "-m", "actionzs", "index", str(footage), "--index", str(index)],
                           capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"indexed {12 - done} files" in again.stderr and f"{done} unchanged" in again.stderr
