"""The HTML report in a real browser (headless Chromium driven by Playwright): clicking an event, a
filmstrip frame or the timeline seeks the player to that moment in a clip it really plays; the label
filter hides rows and lanes; the wheel zooms and dragging scrolls an hour; the index page's links lead to pages whose players
play; and no page requests anything but its own file, its video and data: URLs.

Skipped, saying why, only where Playwright or /usr/bin/chromium is missing (.ci/run installs both).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from actionzs.report import write_report
from helpers_browser import Visit, chromium, missing_browser, synthetic_result, without_frames, write_webm
from helpers_cli import FAST, run_cli

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"no browser: {missing_browser()}")

LABELS = ["running", "jumping", "sitting down", "waving"]
SECONDS = 12.0
EVENTS = [
    {"label": "running", "start": 2.0, "end": 3.5, "score": 0.55},
    {"label": "jumping", "start": 6.0, "end": 8.0, "score": 0.61},
    {"label": "running", "start": 9.0, "end": 10.0, "score": 0.52},
]
NAMES_PX = 190  # the timeline's label column (report.js)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_webm(tmp_path_factory.mktemp("browser-media") / "clip one.webm", SECONDS)


@pytest.fixture(scope="module")
def page_file(clip, tmp_path_factory):
    """A page of a made-up result of the clip, in a folder beside the clip's (its player links ../)."""
    target = tmp_path_factory.mktemp("browser-pages") / "pages" / "page.html"
    target.parent.mkdir()
    write_report(synthetic_result(clip, SECONDS, LABELS, events=EVENTS), target, threshold=0.5)
    return target


def _only_own_files(requests: list[str], *allowed) -> None:
    assert requests, "the page requested nothing, not even itself"
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert {url for url in requests if url.startswith("file:")} <= {path.as_uri() for path in allowed}


def _seeked_to(visit: Visit, seconds: float) -> None:
    """Wait until the player has finished a seek to `seconds` (a real seek: the clip plays here)."""
    visit.page.wait_for_function(
        "(seconds) => { const v = document.getElementById('video');"
        " return window.seeks > 0 && !v.seeking && Math.abs(v.currentTime - seconds) < 0.05; }", arg=seconds, timeout=10000)


def _count_seeks(visit: Visit) -> None:
    visit.page.evaluate("() => { window.seeks = 0; document.getElementById('video').addEventListener('seeked', () => window.seeks++); }")


def test_clicking_an_event_a_frame_or_the_timeline_seeks_the_player(browser, page_file, clip):
    visit = Visit(browser, page_file.as_uri())
    visit.video_ready()
    video = visit.page.locator("#video")
    assert visit.page.evaluate("() => document.getElementById('video').error") is None  # it really plays here
    assert video.evaluate("v => v.duration") == pytest.approx(SECONDS, abs=0.2)

    _count_seeks(visit)
    visit.page.locator("details.group", has_text="jumping").locator("tr.event").first.click()
    _seeked_to(visit, 6.0)
    assert visit.page.url.endswith("#t=6")  # the moment is the page's address too

    frame = visit.page.locator("#filmstrip img.frame").nth(4)
    moment = float(frame.get_attribute("data-time"))
    _count_seeks(visit)
    frame.click()
    _seeked_to(visit, moment)
    assert "now" in frame.get_attribute("class")  # the frame on screen is marked

    box = visit.page.locator("#timeline").bounding_box()
    x = NAMES_PX + 0.75 * (box["width"] - NAMES_PX)
    _count_seeks(visit)
    visit.page.mouse.click(box["x"] + x, box["y"] + 40)
    _seeked_to(visit, 0.75 * SECONDS)
    assert visit.errors == []
    visit.close()


def test_a_link_to_a_moment_opens_the_player_there(browser, page_file):
    visit = Visit(browser, page_file.as_uri() + "#t=9.5")
    visit.video_ready()
    visit.page.wait_for_function("() => Math.abs(document.getElementById('video').currentTime - 9.5) < 0.05")
    assert float(visit.page.locator("#filmstrip img.now").get_attribute("data-time")) == 9.5  # the frame at 9.5 s marked
    assert visit.errors == []
    visit.close()


def test_the_label_filter_hides_its_rows_and_lane(browser, page_file):
    visit = Visit(browser, page_file.as_uri())
    page = visit.page
    running = page.locator("details.group", has_text="running")
    jumping = page.locator("details.group", has_text="jumping")
    assert running.locator("tr.event").count() == 2 and jumping.locator("tr.event").count() == 1
    counts = [text.strip() for text in page.locator("#filter label").all_inner_texts()]
    assert "running (2)" in counts and "waving (0)" in counts
    height = page.locator("#timeline").bounding_box()["height"]

    page.locator("#filter label", has_text="running").locator("input").uncheck()
    assert not running.locator("tr.event").first.is_visible() and jumping.locator("tr.event").first.is_visible()
    lane = height - page.locator("#timeline").bounding_box()["height"]
    assert lane > 10  # one lane fewer

    page.locator("#show-none").click()
    assert page.locator("tr.event:visible").count() == 0
    page.locator("#show-all").click()
    assert page.locator("tr.event:visible").count() == len(EVENTS)
    assert page.locator("#timeline").bounding_box()["height"] == height
    assert visit.errors == []
    visit.close()


def test_nothing_but_the_page_and_its_video_is_requested(browser, page_file, clip):
    visit = Visit(browser, page_file.as_uri())
    visit.video_ready()
    page = visit.page
    page.locator("tr.event").first.click()
    page.locator("#view").select_option("curves")
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.mouse.wheel(0, -300)
    page.evaluate("() => { document.getElementById('video').play().catch(() => {}); }")
    page.wait_for_timeout(500)
    _only_own_files(visit.requests, page_file, clip)
    csp = page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content")
    assert "default-src 'none'" in csp  # and the browser itself would refuse anything else
    assert visit.errors == []
    visit.close()


def test_labels_with_markup_are_text_in_the_page(browser, clip, tmp_path):
    labels = ['</script><script>document.title="owned"</script>', '<img src=x onerror="document.title=1">']
    events = [{"label": labels[0], "start": 1.0, "end": 2.0, "score": 0.9}]
    target = tmp_path / "page.html"
    write_report(synthetic_result(clip, SECONDS, labels, events=events), target, threshold=0.5)
    visit = Visit(browser, target.as_uri())
    page = visit.page
    assert page.locator("script").count() == 2 and page.locator("#filter img, #groups img:not(.thumb)").count() == 0
    assert {text.strip() for text in page.locator("#filter label").all_inner_texts()} == {f"{labels[0]} (1)", f"{labels[1]} (0)"}
    assert page.title().startswith("actionzs report") and visit.errors == []
    visit.close()


def test_pages_without_a_timeline_or_with_many_labels_work(browser, clip, tmp_path):
    from actionzs.report.page import LANES_MAX, render_page

    unscored = {key: value for key, value in synthetic_result(clip, SECONDS, LABELS).to_dict().items()
                if key not in ("segments", "events")}
    (tmp_path / "unscored.html").write_text(render_page(unscored, video_src=None), encoding="utf-8")
    many = [f"label {k}" for k in range(LANES_MAX + 5)]
    write_report(synthetic_result(clip, SECONDS, many, events=[]), tmp_path / "many.html")
    visit = Visit(browser, (tmp_path / "unscored.html").as_uri())
    assert "No per-window scores" in visit.page.locator("#legend").inner_text() and visit.errors == []
    visit.page.locator("#filmstrip img.frame").first.click()  # seeks nothing, fails nothing
    assert visit.errors == []
    visit.close()
    visit = Visit(browser, (tmp_path / "many.html").as_uri())
    assert f"top {LANES_MAX} of {len(many)} labels" in visit.page.locator("#legend").inner_text()
    lanes = (visit.page.locator("#timeline").bounding_box()["height"] - 22) / 30  # axis, then 30 px a lane (report.js)
    assert round(lanes) == LANES_MAX and visit.errors == []
    visit.close()


def test_windows_without_a_keyframe_are_marked_and_named(browser, clip, tmp_path):
    result = without_frames(synthetic_result(clip, SECONDS, LABELS, events=[]), slice(4, 8))  # 4 s to 8 s
    write_report(result, tmp_path / "keyframes.html")
    visit = Visit(browser, (tmp_path / "keyframes.html").as_uri())
    page = visit.page
    assert "windows without a keyframe: not scored" in page.locator("#legend").inner_text()
    box = page.locator("#timeline").bounding_box()

    def hovered(seconds: float) -> str:
        page.mouse.move(box["x"] + NAMES_PX + (box["width"] - NAMES_PX) * seconds / SECONDS, box["y"] + 30)
        return page.locator("#hover").inner_text()

    assert "no keyframe in this window" in hovered(6.0)
    assert "score 0." in hovered(1.5) and "no keyframe" not in hovered(9.5)
    assert visit.errors == []
    visit.close()


def test_a_report_from_the_command_line_plays_and_draws(browser, capsys, clip, clip_dir, tmp_path):
    target = tmp_path / "report" / "clip.html"
    target.parent.mkdir()
    code, _, err = run_cli(capsys, "report", clip, "--model", clip_dir, *sum((["-l", x] for x in LABELS), []), *FAST,
                           "--measure", "similarity", "--threshold", "-1", "-o", target)
    assert code == 0, err
    visit = Visit(browser, target.as_uri())
    visit.video_ready()
    page = visit.page
    assert page.evaluate("() => [...document.querySelectorAll('img[data-thumb]')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#filmstrip img.frame").count() == round(SECONDS)  # one a second
    assert page.locator("tr.event").count() == len(LABELS)  # threshold -1: each label on all the way
    shot = page.locator("#timeline").screenshot()
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    assert pixels.std() > 20  # lanes drawn, not a blank canvas
    _only_own_files(visit.requests, target, clip)
    assert visit.errors == []
    visit.close()


def test_an_hour_zooms_and_scrolls(browser, tmp_path):
    labels = [f"label {k}" for k in range(10)]
    target = tmp_path / "hour.html"  # its video is not there: the timeline works without it
    write_report(synthetic_result(tmp_path / "gone.webm", 3600, labels), target, threshold=0.3)
    visit = Visit(browser, target.as_uri())
    page = visit.page
    whole = page.locator("#range").inner_text()
    assert whole == "00:00:00 – 01:00:00" and not page.locator("#scroll").is_visible()
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + NAMES_PX + (box["width"] - NAMES_PX) / 2, box["y"] + 40)
    for _ in range(10):
        page.mouse.wheel(0, -100)
    page.wait_for_timeout(200)
    zoomed = page.locator("#range").inner_text()
    assert zoomed != whole and page.locator("#scroll").is_visible()
    page.mouse.down()
    page.mouse.move(box["x"] + NAMES_PX + 50, box["y"] + 40, steps=5)
    page.mouse.up()
    assert page.locator("#range").inner_text() != zoomed  # dragged later in the video
    page.locator("#zoom-fit").click()
    assert page.locator("#range").inner_text() == whole
    page.locator("#timeline").focus()
    page.keyboard.press("+")
    half = page.locator("#range").inner_text()
    assert half == "00:15:00 – 00:45:00"  # zoomed on the middle
    page.keyboard.press("ArrowRight")
    assert page.locator("#range").inner_text() == "00:22:30 – 00:52:30"
    page.keyboard.press("0")
    assert page.locator("#range").inner_text() == whole
    page.wait_for_selector("#video-note:visible")  # the player says why it has nothing to play
    assert "cannot play" in page.locator("#video-note").inner_text()
    assert visit.errors == []
    visit.close()


def test_the_index_page_links_to_pages_that_play(browser, capsys, clip, clip_dir, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.webm").write_bytes(clip.read_bytes())
    (videos / "broken.mp4").write_bytes(b"\0" * 2048)
    scan = tmp_path / "scan.jsonl"
    code, _, err = run_cli(capsys, "scan", videos, "-o", scan, "--model", clip_dir, "-l", "running", "-l", "waving",
                           *FAST, "--segments", "--measure", "similarity", "--threshold", "-1")
    assert code == 1, err  # the broken file failed; the scan went on
    site = tmp_path / "site"
    code, _, err = run_cli(capsys, "report", scan, "-o", site, "--measure", "similarity", "--threshold", "-1")
    assert code == 0, err
    index = site / "index.html"

    visit = Visit(browser, index.as_uri())
    page = visit.page
    rows = page.locator("tr.video")
    assert rows.count() == 2
    failed = page.locator("tr.video.failed")
    assert failed.count() == 1 and "broken.mp4" in failed.inner_text() and "failed" in failed.inner_text()
    page.locator("#label-filter").select_option("running")
    assert page.locator("tr.video:visible").count() == 1 and not failed.is_visible()

    chip = page.locator("tr.video a.chip", has_text="running")
    assert chip.get_attribute("href").endswith("#t=0.0")  # its first event's start: the whole clip here
    page.locator("tr.video td:first-child a").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().endswith("a.webm")
    visit.video_ready()
    assert page.evaluate("() => document.getElementById('video').error") is None
    page.locator("text=all videos").click()
    page.wait_for_load_state()
    assert page.url == index.as_uri()
    pages = sorted(site.glob("*.html"))
    _only_own_files(visit.requests, *pages, videos / "a.webm")
    assert visit.errors == []
    visit.close()
    assert json.loads(scan.read_text().splitlines()[0])["video"]  # the scan's own records were read, not rewritten
