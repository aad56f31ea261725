"""A self-contained HTML report of one video: label x time heatmap, events with keyframes, ranking.

Everything (styles, the SVG heatmap, JPEG thumbnails as data URIs) is inside the one file, so it can
be mailed or archived and opened offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from .results import VideoResult
from .events import window_cells
from .output import hms, threshold_text
from .sampling import Span
from .video import open_video

THUMB_SIZE = 144  # shortest side of event thumbnails, pixels
_CELL_H, _LABEL_W, _PLOT_W, _AXIS_H = 22, 220, 760, 28

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #57606a; } table { border-collapse: collapse; }
td, th { padding: 4px 10px; text-align: left; border-bottom: 1px solid #d0d7de; vertical-align: middle; }
.bar { background: #0969da; height: 12px; display: inline-block; vertical-align: middle; }
.score { font-variant-numeric: tabular-nums; }
img.thumb { display: block; border-radius: 3px; }
svg text { font: 12px system-ui, sans-serif; fill: #1b1f24; }
"""


def _colour(value: float) -> str:
    """White (0) to deep blue (1)."""
    v = float(np.clip(value, 0.0, 1.0))
    r, g, b = (int(round(255 + (t - 255) * v)) for t in (8, 48, 107))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(result: VideoResult, names: list[str]) -> str:
    spans = [Span(float(start), float(end)) for start, end in result.window_spans]
    cells = window_cells(spans, result.duration)
    scale = _PLOT_W / max(result.duration, 1e-9)
    width, height = _LABEL_W + _PLOT_W + 10, _CELL_H * len(names) + _AXIS_H
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="label by time heatmap">']
    for row, name in enumerate(names):
        y = row * _CELL_H
        scores = result.window_scores[:, result.label_names.index(name)].tolist()
        parts.append(f'<text x="{_LABEL_W - 8}" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>')
        for span, (start, end), score in zip(spans, cells, scores):
            x, w = _LABEL_W + start * scale, max((end - start) * scale, 0.5)
            tip = f"{name} {hms(span.start_seconds)}-{hms(span.end_seconds)}: {score:.3f}"
            parts.append(
                f'<rect class="cell" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{_CELL_H - 2}" '
                f'fill="{_colour(score)}" data-label="{html.escape(name)}" data-start="{round(span.start_seconds, 3)}" '
                f'data-score="{score:.4f}"><title>{html.escape(tip)}</title></rect>'
            )
    axis_y = _CELL_H * len(names) + 16
    for k in range(6):
        t = result.duration * k / 5
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        parts.append(f'<text x="{_LABEL_W + t * scale:.1f}" y="{axis_y}" text-anchor="{anchor}">{hms(t)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _thumbnails(path: str, times: list[float], backend: str) -> list[str]:
    """JPEG data URIs of the frames on screen at `times` (empty strings if the video cannot be read)."""
    from PIL import Image

    if not times:
        return []
    with open_video(path, backend) as video:
        indices = video.timeline.frame_at(np.asarray(times))
        frames = video.get_frames(indices, size=THUMB_SIZE).data
    uris = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return uris


def render_report(result: VideoResult, backend: str = "auto") -> str:
    """The report for a result scored with segments on (all labels kept per segment)."""
    if result.window_spans is None:
        raise ValueError("a report needs a result scored with segments=True")
    names = [item["label"] for item in result.labels]
    events = result.events or []
    thumbs = _thumbnails(result.video, [(e["start"] + e["end"]) / 2 for e in events], backend)
    ranking = "".join(
        f'<tr><td>{html.escape(item["label"])}</td><td class="score">{item["score"]:.4f}</td>'
        f'<td class="score">{item["similarity"]:+.4f}</td>'
        f'<td><span class="bar" style="width:{max(item["score"] * 300, 1):.0f}px"></span></td></tr>'
        for item in result.labels
    )
    event_rows = "".join(
        f'<tr class="event"><td><img class="thumb" src="{thumb}" alt="keyframe at {hms((e["start"] + e["end"]) / 2)}"></td>'
        f'<td>{html.escape(e["label"])}</td><td>{hms(e["start"])} &ndash; {hms(e["end"])}</td>'
        f'<td class="score">{e["score"]:.3f}</td></tr>'
        for e, thumb in zip(events, thumbs)
    ) or f'<tr><td colspan="4">No events: no window reached {html.escape(threshold_text(result.thresholds))}.</td></tr>'
    title = html.escape(result.video)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>actionzs report: {title}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p class="meta">{hms(result.duration)} &middot; {len(result.window_spans)} windows &middot; model {html.escape(result.model)}</p>
<h2>Timeline</h2>
<div id="heatmap">{_heatmap(result, names)}</div>
<h2>Events</h2>
<table id="events"><tr><th>keyframe</th><th>label</th><th>time</th><th>score</th></tr>{event_rows}</table>
<h2>Whole clip</h2>
<table id="ranking"><tr><th>label</th><th>score</th><th>similarity</th><th></th></tr>{ranking}</table>
</body></html>
"""
