"""One video's report page: player, zoomable timeline of every label, filmstrip, events by label.

The page is one HTML file that needs no network and no server: styles and script are inline, the
per-window values travel as one JSON blob of rounded integers that a small script draws on a
canvas (an hour at one window a second and ten labels is ~200 KB, where one SVG rectangle per cell
was 1.8 MB), and thumbnails are small JPEG data URIs. The `<video>` links to the source file by a
path relative to the page, so the page plays the footage where both are kept together.
"""

from __future__ import annotations

import html
import json
from importlib import resources

import numpy as np

from ..events import window_cells
from ..output import hms, threshold_text
from ..sampling import Span, merged_spans
from .thumbnails import filmstrip_times, keyframe_events, nearest, thumbnails

VALUE_SCALE = 10000  # values travel as round(value * VALUE_SCALE): four decimals
LANES_MAX = 50  # the timeline draws the clip's top labels (5,000 labels would be 150,000 pixels of lanes)
OPEN_EVENTS_MAX = 40  # with more events than this, each label's group starts folded (its count shows)


def asset(name: str) -> str:
    """The text of a stylesheet or script kept beside this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def script_json(data) -> str:
    """`data` as JSON that is safe inside a <script> element (no `</script>` or `<!--` can close it)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def timeline_of(record: dict, measure: str) -> dict | None:
    """The timeline's data: window edges (seconds; window w stands for edges[w]..edges[w+1]) and for
    each of the clip's top LANES_MAX labels its `measure` per window as integers (null where a
    window kept only its top labels, or held no frame: those windows' stretches are `frameless`);
    the other labels' rows are null (not drawn)."""
    segments = record.get("segments")
    if not segments:
        return None
    names = [item["label"] for item in record["labels"]]
    column = {name: m for m, name in enumerate(names)}
    values = np.full((min(len(names), LANES_MAX), len(segments)), np.nan)
    for w, segment in enumerate(segments):
        for item in segment["labels"]:
            if column[item["label"]] < LANES_MAX:
                values[column[item["label"]], w] = item[measure]
    cells = window_cells([Span(s["start"], s["end"]) for s in segments], record["duration"])
    edges = np.append(cells[:, 0], cells[-1, 1])
    scaled = np.rint(values * VALUE_SCALE)
    frameless = np.array([bool(s.get("frameless")) for s in segments])
    return {
        "edges": [round(float(t), 3) for t in edges],
        "scale": VALUE_SCALE,
        "values": [[None if np.isnan(v) else int(v) for v in row] for row in scaled] + [None] * (len(names) - len(values)),
        "partial": bool(np.isnan(values[:, ~frameless]).any()),
        "frameless": [[round(start, 3), round(end, 3)] for start, end in merged_spans(cells[frameless].tolist())],
    }


def _ranking(record: dict) -> str:
    return "".join(
        f'<tr><td>{html.escape(item["label"])}</td><td class="score">{item["score"]:.4f}</td>'
        f'<td class="score">{item["similarity"]:+.4f}</td>'
        f'<td><span class="bar" style="width:{max(item["score"] * 300, 1):.0f}px"></span></td></tr>'
        for item in record["labels"]
    )


def _event_groups(names: list[str], events: list[dict], thumb_of: list[int | None], rule: str) -> str:
    """Per label (most events first) a table of its events; each row seeks the player to its start."""
    by_label: dict[str, list[int]] = {name: [] for name in names}
    for k, event in enumerate(events):
        by_label[event["label"]].append(k)
    groups, fold = [], "" if len(events) > OPEN_EVENTS_MAX else " open"
    for name in sorted((n for n in names if by_label[n]), key=lambda n: (-len(by_label[n]), names.index(n))):
        rows, total = [], 0.0
        for k in by_label[name]:
            e, thumb = events[k], thumb_of[k]
            total += e["end"] - e["start"]
            image = "" if thumb is None else (
                f'<img class="thumb" data-thumb="{thumb}" alt="frame at {hms((e["start"] + e["end"]) / 2)}">')
            rows.append(
                f'<tr class="event"><td>{image}</td><td><a class="seek" href="#t={round(e["start"], 3)}" data-time="{round(e["start"], 3)}">'
                f'{hms(e["start"])}</a> &ndash; {hms(e["end"])}</td><td>{e["end"] - e["start"]:.1f} s</td>'
                f'<td class="score">{e["score"]:.3f}</td></tr>'
            )
        count = len(by_label[name])
        groups.append(
            f'<details class="group"{fold} data-label="{names.index(name)}"><summary><strong>{html.escape(name)}</strong> '
            f'&middot; {count} event{"s" if count != 1 else ""}, {hms(total)} in all</summary>'
            f'<table class="events"><tr><th>frame</th><th>time</th><th>length</th><th>score</th></tr>{"".join(rows)}</table>'
            f'</details>'
        )
    return "".join(groups) or f'<p class="none">No events: no window reached {html.escape(rule)}.</p>'


def _filter(names: list[str], events: list[dict]) -> str:
    counts = {name: 0 for name in names}
    for event in events:
        counts[event["label"]] += 1
    boxes = "".join(
        f'<label><input type="checkbox" value="{m}" checked> {html.escape(name)} <span class="count">({counts[name]})</span></label>'
        for m, name in enumerate(names)
    )
    return (f'<fieldset id="filter"><legend>Labels shown</legend>{boxes} '
            f'<button type="button" id="show-all">all</button> <button type="button" id="show-none">none</button></fieldset>')


def render_page(
    record: dict, *, video_src: str | None, measure: str = "score", threshold: float | None = None,
    backend: str = "auto", index_href: str | None = None,
) -> str:
    """The report page of one result record (`VideoResult.to_dict()`, as `classify` and `scan`
    write it). `video_src` is the URL of the video relative to the page (None: no player);
    `measure` and `threshold` are those the events were found with, drawn on the timeline, for a
    record that does not say itself (records say so in "thresholds", per label where a calibrated
    thresholds file gave a label its own)."""
    described = record.get("thresholds") or (None if threshold is None else {"measure": measure, "threshold": threshold})
    if described:
        measure, threshold = described["measure"], described["threshold"]
    label_thresholds = (described or {}).get("labels") or {}
    names = [item["label"] for item in record["labels"]]
    events = record.get("events") or []
    strip_times = filmstrip_times(record["duration"])
    middles = [(e["start"] + e["end"]) / 2 for e in events]
    keyed = keyframe_events(events)
    uris, unreadable = thumbnails(record["video"], strip_times + [middles[k] for k in keyed], backend)
    # each event's thumbnail: its own keyframe, else the filmstrip frame nearest its middle
    own = {k: len(strip_times) + position for position, k in enumerate(keyed)}
    thumb_of = [None if not uris else own.get(k, nearest(strip_times, middle)) for k, middle in enumerate(middles)]
    timeline = timeline_of(record, measure)
    data = {
        "duration": record["duration"], "labels": names, "measure": measure, "threshold": threshold,
        "thresholds": [label_thresholds.get(name, threshold) for name in names],
        "timeline": timeline, "events": [[names.index(e["label"]), e["start"], e["end"], round(e["score"], 4)] for e in events],
        "gaps": record.get("gaps") or [], "thumbs": uris,
    }
    filmstrip = "".join(
        f'<img class="frame" data-thumb="{k}" data-time="{round(t, 3)}" title="{hms(t)}" alt="frame at {hms(t)}">'
        for k, t in enumerate(strip_times)
    ) if uris else f'<p class="note">No thumbnails: {html.escape(unreadable or "the video gave no frames")}.</p>'
    windows = f"{len(record['segments'])} windows" if record.get("segments") else "no per-window scores (scored without segments)"
    rule = threshold_text(described)
    title = html.escape(record["video"])
    player = (f'<video id="video" controls preload="metadata" src="{html.escape(video_src)}"></video>'
              f'<p class="note" id="video-note" hidden></p>') if video_src else '<p class="note">No video linked.</p>'
    back = f'<p><a href="{html.escape(index_href)}">&larr; all videos</a></p>' if index_href else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src 'self' file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>actionzs report: {title}</title>
<style>{asset("report.css")}</style></head>
<body>
{back}<h1>{title}</h1>
<p class="meta">{hms(record["duration"])} &middot; {windows} &middot; model {html.escape(record["model"])}{" &middot; events where " + html.escape(rule) if described else ""}</p>
<div id="top"><div id="player">{player}</div>
<div id="clip"><h2>Whole clip</h2><table id="ranking"><tr><th>label</th><th>score</th><th>similarity</th><th></th></tr>{_ranking(record)}</table></div></div>
<h2>Timeline</h2>
<div class="controls"><label>view <select id="view"><option value="heatmap">heatmap</option><option value="curves">curves</option></select></label>
<button type="button" id="zoom-in" title="zoom in (or the mouse wheel)">+</button><button type="button" id="zoom-out" title="zoom out">&minus;</button>
<button type="button" id="zoom-fit">whole video</button> <span id="range"></span> <span id="hover"></span></div>
<canvas id="timeline" tabindex="0" aria-label="labels over time (+ and - zoom, the arrows scroll)"></canvas>
<input type="range" id="scroll" min="0" max="1000" value="0" aria-label="scroll the timeline">
<div id="legend"></div>
<div id="filmstrip">{filmstrip}</div>
<h2>Events</h2>
{_filter(names, events)}
<div id="groups">{_event_groups(names, events, thumb_of, rule)}</div>
<script type="application/json" id="data">{script_json(data)}</script>
<script>{asset("report.js")}</script>
</body></html>
"""
