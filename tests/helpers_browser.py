"""A real browser for the report tests and screenshots: headless Chromium driven by Playwright,
every request it makes recorded; and clips it can play (VP8 in WebM: Chromium has no H.264)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def missing_browser() -> str | None:
    """Why no browser can run here (None when one can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; .ci/run does)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


@contextmanager
def chromium():
    """A headless Chromium (Playwright's sync API), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """A page open at `url`, with every URL it requested and every script error it raised."""

    def __init__(self, browser, url: str, width: int = 1400, height: int = 900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)

    def video_ready(self) -> None:
        """Wait until the player knows the video's length (it can seek then)."""
        self.page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=15000)

    def close(self) -> None:
        self.page.close()


def write_webm(path: str | os.PathLike, seconds: float, fps: int = 10, width: int = 64, height: int = 48) -> Path:
    """A VP8 WebM clip a browser can play: each second a different flat colour, a moving bar."""
    import av
    import numpy as np

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for i in range(round(seconds * fps)):
            picture = np.zeros((height, width, 3), np.uint8)
            picture[:] = ((i // fps) * 53 % 256, (i // fps) * 97 % 256, 160)
            picture[:, (i * 3) % width] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def without_frames(result, windows: slice):
    """`result` with the windows of `windows` frameless (held no keyframe: NaN rows), as keyframe
    sampling reports them."""
    import dataclasses

    import numpy as np

    scores, similarity = result.window_scores.copy(), result.window_similarity.copy()
    scores[windows] = similarity[windows] = np.nan
    return dataclasses.replace(result, window_scores=scores, window_similarity=similarity)


def synthetic_result(video: str | os.PathLike, duration_seconds: float, labels: list[str], *, window_seconds: float = 1.0,
                     events: list[dict] | None = None, threshold: float = 0.3, seed: int = 0):
    """A `VideoResult` of `video` with made-up per-window scores (a softmax over `labels` of slow
    random curves with bumps, as a real model's look: near 1/len(labels) most of the time), without
    running a model: an hour's result in milliseconds. Its events are `events`, or those the
    scores give at `threshold`."""
    import numpy as np

    from actionzs.events import EventOptions, find_events
    from actionzs.results import VideoResult
    from actionzs.sampling import Span

    rng = np.random.default_rng(seed)
    count = max(1, round(duration_seconds / window_seconds))
    starts = np.arange(count) * window_seconds
    spans = np.stack([starts, np.minimum(starts + window_seconds, duration_seconds)], axis=1)
    similarity = np.cumsum(rng.normal(0, 0.004, (count, len(labels))), axis=0) * 0.3 + 0.2
    for m in range(len(labels)):  # bumps: a label that clearly wins for a few windows
        for centre in rng.choice(count, size=max(1, count // 80), replace=True):
            width = rng.uniform(1, 6)
            similarity[:, m] += 0.03 * np.exp(-0.5 * ((np.arange(count) - centre) / width) ** 2)
    logits = similarity * 100
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    if events is None:
        events = find_events([Span(a, b) for a, b in spans], scores, labels, duration_seconds,
                             EventOptions(threshold=threshold, min_duration=window_seconds))
    order = np.argsort(-scores.mean(axis=0))
    ranking = [{"label": labels[m], "score": round(float(scores[:, m].mean()), 4),
                "similarity": round(float(similarity[:, m].mean()), 4)} for m in order]
    return VideoResult(
        video=str(video), duration=float(duration_seconds), model="synthetic", labels=ranking, events=events,
        label_names=list(labels), window_spans=spans, window_scores=scores.astype(np.float32),
        window_similarity=similarity.astype(np.float32),
    )
