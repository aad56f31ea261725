"""Screenshots of the HTML report for a person to look at: a 30 s clip's page and an hour's page.

    python tests/report_screenshots.py OUT_DIR [--docs docs/report.png]

Writes OUT_DIR/report-30s.png and OUT_DIR/report-1h.png (and the pages and clips they show), with
headless Chromium as the browser tests drive it. The scores are made up (no model runs): the 30 s
clip is the sample footage of ../shared/videos one after another (flat colours where it is absent)
and each scene's label scores highest while it is on; the hour is a clip of flat colours with slow
random curves. `--docs` also writes the 30 s screenshot as a small 128-colour PNG, as README shows.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actionzs.events import EventOptions, find_events  # noqa: E402
from actionzs.report import write_report  # noqa: E402
from actionzs.results import VideoResult  # noqa: E402
from actionzs.sampling import Span  # noqa: E402
from helpers_browser import Visit, chromium, synthetic_result, write_webm  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "videos"
#: (sample file, the label that describes it)
SCENES = [("Megamind.avi", "people talking at a table"), ("bikes.mp4", "bicycles in a street"),
          ("bigbuckbunny.mp4", "a rabbit in a meadow"), ("carphone_pristine.mp4", "a man driving a car")]
OTHER_LABELS = ["someone running", "a dog playing", "cooking"]
SIZE, FPS = (320, 180), 25


def samples_clip(path: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    """The sample videos one after another as a VP8 WebM; (path, [(label, start, end)])."""
    import av
    from PIL import Image

    scenes, written = [], 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "600k"}
        for name, label in SCENES:
            start = written / FPS
            with av.open(str(SAMPLES / name)) as source:
                for frame in source.decode(video=0):
                    picture = frame.to_image().convert("RGB").resize(SIZE, Image.BILINEAR)
                    for packet in stream.encode(av.VideoFrame.from_image(picture)):
                        out.mux(packet)
                    written += 1
            scenes.append((label, start, written / FPS))
        for packet in stream.encode():
            out.mux(packet)
    return path, scenes


def scene_result(video: Path, scenes: list[tuple[str, float, float]], labels: list[str]) -> VideoResult:
    """Made-up scores at one window a second: each scene's label leads while it is on."""
    rng = np.random.default_rng(3)
    duration = scenes[-1][2]
    spans = np.array([[t, min(t + 1.0, duration)] for t in np.arange(0, duration, 1.0)])
    middles = spans.mean(axis=1)
    similarity = 0.2 + rng.normal(0, 0.004, (len(spans), len(labels)))
    for label, start, end in scenes:
        on = (middles >= start) & (middles < end)
        similarity[on, labels.index(label)] += 0.03 + rng.normal(0, 0.005, on.sum())
    scores = np.exp(100 * (similarity - similarity.max(axis=1, keepdims=True)))
    scores /= scores.sum(axis=1, keepdims=True)
    events = find_events([Span(a, b) for a, b in spans], scores, labels, duration, EventOptions(threshold=0.5, smooth=3))
    ranking = sorted(({"label": n, "score": round(float(scores[:, m].mean()), 4),
                       "similarity": round(float(similarity[:, m].mean()), 4)} for m, n in enumerate(labels)),
                     key=lambda item: -item["score"])
    return VideoResult(video=str(video), duration=duration, model="made-up scores", labels=ranking, events=events,
                       label_names=labels, window_spans=spans, window_scores=scores.astype(np.float32),
                       window_similarity=similarity.astype(np.float32))


def screenshot(browser, page: Path, png: Path, seconds: float) -> None:
    """The top of `page` with its player at `seconds` (the playhead and the filmstrip follow)."""
    visit = Visit(browser, page.resolve().as_uri(), height=1100)
    visit.video_ready()
    visit.page.evaluate("(t) => { document.getElementById('video').currentTime = t; }", seconds)
    visit.page.wait_for_function("() => { const v = document.getElementById('video'); return !v.seeking && v.readyState >= 3; }")
    visit.page.wait_for_timeout(1000)  # the player's spinner fades
    visit.page.screenshot(path=str(png))
    if visit.errors:
        raise RuntimeError(f"{page}: script errors {visit.errors}")
    visit.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the screenshots, pages and clips")
    parser.add_argument("--docs", type=Path, help="also write the 30 s screenshot here, small")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    docs = args.docs.resolve() if args.docs else None
    os.chdir(args.out)  # the pages name their videos as given: short, relative names
    args.out = Path(".")

    if all((SAMPLES / name).exists() for name, _ in SCENES):
        clip, scenes = samples_clip(args.out / "samples.webm")
    else:
        clip = write_webm(args.out / "samples.webm", 30, fps=FPS, width=SIZE[0], height=SIZE[1])
        scenes = [(label, 7.5 * k, 7.5 * (k + 1)) for k, (_, label) in enumerate(SCENES)]
    short = scene_result(clip, scenes, [label for _, label in SCENES] + OTHER_LABELS)
    write_report(short, args.out / "report-30s.html", threshold=0.5)

    hour_clip = write_webm(args.out / "hour.webm", 3600, fps=1, width=160, height=90)
    labels = ["person walking", "person running", "car parking", "car driving past", "cyclist", "dog", "door opening",
              "crowd", "person sitting", "empty scene"]
    write_report(synthetic_result(hour_clip, 3600, labels), args.out / "report-1h.html", threshold=0.3)

    with chromium() as browser:
        for name, seconds in (("report-30s", 14.0), ("report-1h", 1500.0)):
            page = args.out / f"{name}.html"
            screenshot(browser, page, args.out / f"{name}.png", seconds)
            print(f"{Path(name).resolve()}.png  (page {page.stat().st_size / 1e3:.0f} KB)")
    if docs:
        from PIL import Image

        with Image.open("report-30s.png") as image:
            image.convert("RGB").quantize(128).save(docs, optimize=True)
        print(f"{docs}  ({docs.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
