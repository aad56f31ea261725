"""The HTML report's contents without a browser: the timeline's data is the result's, an hour's page
stays small, thumbnails are bounded, and `report` over a scan's JSONL or a library index writes an
index page and a page per video, listing failed records, refusing bad input with exit 2.

What the pages do when clicked is test_report_browser.py's.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actionzs.events import window_cells
from actionzs.report import read_records, render_report, video_url, write_report, write_reports
from actionzs.report.page import LANES_MAX
from actionzs.report.thumbnails import FILMSTRIP_MAX, KEYFRAMES_MAX, THUMB_HEIGHT
from actionzs.sampling import Span
from actionzs.testing import write_clip
from helpers_browser import synthetic_result, without_frames
from helpers_cli import run_cli, subprocess_env, tree

LABELS = ["running", "jumping", "sitting down", "waving"]
HOUR_LABELS = [f"label number {k}" for k in range(10)]


def page_data(html: str) -> dict:
    """The JSON blob a page draws from."""
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def jpeg_heights(uris: list[str]) -> set[int]:
    from PIL import Image

    heights = set()
    for uri in uris:
        assert uri.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
            assert image.format == "JPEG"
            heights.add(image.size[1])
    return heights


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("report-media") / "clip.mp4", 60, average_fps=10, width=64, height=48,
                      scenes=lambda i: i // 10)


@pytest.mark.parametrize("measure", ["score", "similarity"])
def test_the_timeline_is_the_results_windows_and_events(clip, measure):
    result = synthetic_result(clip, 6.0, LABELS, window_seconds=0.5, threshold=0.26)
    data = page_data(render_report(result, measure=measure, threshold=0.26))
    names = [item["label"] for item in result.labels]
    assert data["labels"] == names and data["measure"] == measure and data["threshold"] == 0.26
    cells = window_cells([Span(a, b) for a, b in result.window_spans], result.duration)
    assert data["timeline"]["edges"] == pytest.approx(np.append(cells[:, 0], cells[-1, 1]).tolist(), abs=1e-3)
    values = np.asarray(data["timeline"]["values"], float) / data["timeline"]["scale"]
    arrays = result.window_scores if measure == "score" else result.window_similarity
    expected = arrays[:, [result.label_names.index(n) for n in names]].T
    np.testing.assert_allclose(values, expected, atol=0.6 / data["timeline"]["scale"])
    assert result.events and [[names[m], a, b] for m, a, b, _ in data["events"]] == [
        [e["label"], e["start"], e["end"]] for e in result.events]


def test_frameless_windows_are_drawn_as_such_and_not_as_partial_rankings(clip):
    result = without_frames(synthetic_result(clip, 6.0, LABELS, window_seconds=0.5, events=[]), slice(4, 8))
    record = result.to_dict()
    assert [bool(s.get("frameless")) for s in record["segments"]] == [4 <= w < 8 for w in range(12)]
    data = page_data(render_report(result))["timeline"]
    assert data["frameless"] == [[2.0, 4.0]] and data["partial"] is False  # windows 4-7 joined into one stretch
    assert all(row[w] is None for row in data["values"] for w in range(4, 8))
    assert all(row[w] is not None for row in data["values"] for w in (*range(4), *range(8, 12)))


def test_the_timeline_draws_the_clips_top_labels_only(clip):
    labels = [f"label {k}" for k in range(LANES_MAX + 10)]
    result = synthetic_result(clip, 6.0, labels)
    data = page_data(render_report(result))
    rows = data["timeline"]["values"]
    assert len(rows) == len(labels) == len(data["labels"])
    assert all(row is not None for row in rows[:LANES_MAX]) and rows[LANES_MAX:] == [None] * 10
    assert data["labels"][:LANES_MAX] == [item["label"] for item in result.labels[:LANES_MAX]]  # the clip's best


def test_a_results_own_thresholds_are_drawn_per_label_and_named_when_nothing_reached_them(clip):
    import dataclasses

    result = synthetic_result(clip, 6.0, LABELS, events=[])
    own = {LABELS[0]: 0.42}
    result = dataclasses.replace(result, thresholds={"measure": "similarity", "threshold": 0.3, "labels": own})
    html = render_report(result, measure="score", threshold=0.9)  # the record's own win over the caller's
    data = page_data(html)
    assert data["measure"] == "similarity" and data["threshold"] == 0.3
    assert data["thresholds"] == [own.get(name, 0.3) for name in data["labels"]]
    assert f"No events: no window reached similarity &gt;= 0.42 for {LABELS[0]}, 0.3 for the other labels." in html


def test_events_are_grouped_by_label_most_first(clip):
    events = [{"label": "waving", "start": t, "end": t + 0.5, "score": 0.6} for t in (1.0, 2.0, 4.0)]
    events.insert(1, {"label": "running", "start": 1.5, "end": 2.5, "score": 0.7})
    html = render_report(synthetic_result(clip, 6.0, LABELS, events=events), threshold=0.5)
    groups = re.findall(r'<details class="group" open data-label="\d+"><summary><strong>([^<]*)</strong> &middot; (\d+) events?', html)
    assert groups == [("waving", "3"), ("running", "1")]
    assert html.count('<tr class="event">') == len(events)


def test_an_hours_page_is_small_and_its_thumbnails_are_bounded(clip, tmp_path):
    # an hour at one window a second, ten labels, hundreds of events; its video is not there, so
    # the page has no thumbnails and its size is the timeline's and the events'
    result = synthetic_result(tmp_path / "gone.mp4", 3600, HOUR_LABELS, threshold=0.3)
    assert len(result.events) > 100
    html = render_report(result, threshold=0.3)
    assert len(html.encode()) < 400_000, len(html.encode())  # the SVG of one rect per cell was 1.8 MB
    assert "No thumbnails" in html and page_data(html)["thumbs"] == []
    # the same result over a real clip (times past its end show its last frame): thumbnails bounded
    # in number however many events, small JPEGs, and the page within a megabyte
    html = render_report(synthetic_result(clip, 3600, HOUR_LABELS, threshold=0.3), threshold=0.3)
    thumbs = page_data(html)["thumbs"]
    assert len(thumbs) == FILMSTRIP_MAX + KEYFRAMES_MAX and jpeg_heights(thumbs) == {THUMB_HEIGHT}
    assert len(html.encode()) < 1_000_000


def test_a_page_links_its_video_relative_to_itself(clip, tmp_path):
    folder = tmp_path / "a folder" / "pages"
    folder.mkdir(parents=True)
    video = tmp_path / "a folder" / "my clip #1.mp4"
    video.write_bytes(clip.read_bytes())
    write_report(synthetic_result(video, 6.0, LABELS), folder / "page.html")
    html = (folder / "page.html").read_text(encoding="utf-8")
    assert '<video id="video" controls preload="metadata" src="../my%20clip%20%231.mp4">' in html
    assert video_url(video, folder) == "../my%20clip%20%231.mp4"
    assert tree(folder) == {"page.html"}


def _write_jsonl(path: Path, records: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def test_a_scans_records_become_an_index_and_a_page_each(capsys, clip, tmp_path):
    good = synthetic_result(clip, 6.0, LABELS).to_dict()
    partial = synthetic_result(clip, 6.0, LABELS, seed=1).to_dict()
    for segment in partial["segments"]:  # as a scan with --top-k 2 keeps them
        segment["labels"] = sorted(segment["labels"], key=lambda item: -item["score"])[:2]
    unscored = {key: value for key, value in good.items() if key not in ("segments", "events")}
    unscored["video"] = str(tmp_path / "moved away.mp4")
    broken = {**good, "video": "odd.mp4", "segments": [{"start": 0, "end": 1, "labels": [{"label": "not a label", "score": 1}]}]}
    scan = _write_jsonl(tmp_path / "scan.jsonl", [good, {"video": "bad.mp4", "error": "no video stream"}, partial, unscored, broken],
                        tail='{"video": "torn')  # a scan cut short mid-line
    code, _, err = run_cli(capsys, "report", scan, "-o", tmp_path / "site")
    assert code == 0, err
    assert "wrote" in err and "3 videos, 2 failed" in err
    site = tree(tmp_path / "site")
    assert site == {"index.html", "0001-clip.html", "0003-clip.html", "0004-moved_away.html"}
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', index)
    assert links == ["0001-clip.html", "0003-clip.html", "0004-moved_away.html"]
    assert index.count('<tr class="video failed"') == 2 and "no video stream" in index and "cannot be drawn" in index
    assert "not scored per window" in index
    partial_data = page_data((tmp_path / "site" / "0003-clip.html").read_text(encoding="utf-8"))
    assert partial_data["timeline"]["partial"] and any(v is None for row in partial_data["timeline"]["values"] for v in row)
    moved = (tmp_path / "site" / "0004-moved_away.html").read_text(encoding="utf-8")
    assert "No thumbnails" in moved and page_data(moved)["timeline"] is None
    assert '<a href="index.html">' in moved


@pytest.mark.parametrize("content, reason", [
    ('{"video": "a.mp4", "error": "x"}\nnot json\n{"video": "b.mp4", "error": "y"}\n', "line 2 is not JSON"),
    ('{"video": "a.mp4", "error": "x"}\n[1, 2]\n', "line 2 is not a result record"),
    ("", "holds no records"),
])
def test_a_bad_scan_file_is_refused_naming_it(capsys, tmp_path, content, reason):
    scan = tmp_path / "scan.jsonl"
    scan.write_text(content, encoding="utf-8")
    code, _, err = run_cli(capsys, "report", scan, "-o", tmp_path / "site")
    assert code == 2 and err.startswith(f"error: {scan}: {reason}") and "Traceback" not in err
    assert tree(tmp_path) == {"scan.jsonl"}


@pytest.mark.parametrize("argv, message", [
    (["-o", "out.html"], "nothing to report"),
    (["missing.jsonl", "-o", "site"], "missing.jsonl: cannot read it"),
    (["scan.jsonl", "-o", "scan.jsonl"], "is a file; give a folder"),
    (["scan.jsonl", "--index", "lib.db", "-o", "site"], "not both"),
    (["scan.jsonl", "-o", "-"], "give -o DIR"),
])
def test_report_usage_errors_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    _write_jsonl(tmp_path / "scan.jsonl", [{"video": "a.mp4", "error": "x"}])
    code, _, err = run_cli(capsys, "report", *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert tree(tmp_path) == {"scan.jsonl"}


def test_write_reports_leaves_the_callers_records_alone(clip, tmp_path):
    records = [{"video": "odd.mp4", "duration": 1.0, "model": "m", "labels": [], "segments": [{"start": 0, "end": 1, "labels": [{"label": "x"}]}]}]
    index, listed = write_reports(records, tmp_path)
    assert "error" not in records[0] and "cannot be drawn" in listed[0]["error"]
    assert "cannot be drawn" in index.read_text(encoding="utf-8")


def test_read_records_keeps_errors_and_skips_a_torn_last_line(tmp_path):
    scan = _write_jsonl(tmp_path / "scan.jsonl", [{"video": "a.mp4", "error": "x"}], tail='{"video": "b.mp')
    assert read_records(scan) == [{"video": "a.mp4", "error": "x"}]


def test_a_librarys_report_scores_its_stored_frames(capsys, clip, clip_dir, tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    (library / "cam").mkdir()
    (library / "cam" / "a.mp4").write_bytes(clip.read_bytes())
    index = library / "lib.db"
    code, _, err = run_cli(capsys, "index", library / "cam", "--index", index, "--model", clip_dir, "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "report", "--index", index, "-o", tmp_path / "site", *sum((["-l", x] for x in LABELS), []),
                           "--template", "a video of {}.", "-q", "--measure", "similarity", "--threshold", "-1")
    assert code == 0, err
    assert tree(tmp_path / "site") == {"index.html", "0001-a.html"}
    html = (tmp_path / "site" / "0001-a.html").read_text(encoding="utf-8")
    data = page_data(html)
    assert sorted(data["labels"]) == sorted(LABELS) and data["timeline"] and len(data["events"]) == len(LABELS)
    assert 'src="../lib/cam/a.mp4"' in html and len(data["thumbs"]) > 0


#: `actionzs report SCAN.jsonl` with torch made unimportable: drawing records needs no model.
REPORT_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
from actionzs.cli import main
sys.exit(main(["report", sys.argv[1], "-o", sys.argv[2], "-q"]))
"""


def test_a_scans_report_runs_where_torch_cannot_be_imported(clip, tmp_path):
    scan = _write_jsonl(tmp_path / "scan.jsonl", [synthetic_result(clip, 6.0, LABELS).to_dict()])
    run = subprocess.run([sys.executable, "-c", REPORT_WITHOUT_TORCH, str(scan), str(tmp_path / "site")],
                         capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "site") == {"index.html", "0001-clip.html"}


def test_a_videos_report_to_standard_output_links_its_video_from_where_it_is_run(capsys, clip, clip_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(clip.parent)
    code, out, err = run_cli(capsys, "report", clip, "-o", "-", "--model", clip_dir, "-l", "running", "-l", "waving",
                             "--template", "a video of {}.", "--fps", "2", "-q")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and f'src="{clip.name}"' in out
    assert not (clip.parent / "-").exists()
