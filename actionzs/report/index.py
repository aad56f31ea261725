"""The index page of many videos' reports: per video its length, events counted per label and top
clip labels, linking to its own page; videos that failed are listed with their reason."""

from __future__ import annotations

import html
from collections import Counter

from ..output import hms
from .page import asset

TOP_LABELS = 3  # clip labels shown per video


def _row(record: dict, href: str | None) -> str:
    name = html.escape(record["video"])
    if "error" in record:
        return (f'<tr class="video failed" data-labels=""><td>{name}</td><td colspan="4">failed: '
                f'{html.escape(record["error"])}</td></tr>')
    events = record.get("events") or []
    counts = Counter(e["label"] for e in events)
    first = {}  # label -> its first event's start: each label's chip links the page there
    for e in events:
        first.setdefault(e["label"], e["start"])
    chips = " ".join(
        f'<a class="chip" href="{html.escape(href)}#t={round(first[label], 3)}">{html.escape(label)} &times;{n}</a>' if href
        else f'<span class="chip">{html.escape(label)} &times;{n}</span>'
        for label, n in counts.most_common()
    )
    if record.get("events") is None:
        chips = '<span class="count">not scored per window</span>'
    top = ", ".join(f'{html.escape(item["label"])} {item["score"]:.2f}' for item in record["labels"][:TOP_LABELS])
    link = f'<a href="{html.escape(href)}">{name}</a>' if href else name
    labels = html.escape("\n".join(counts))
    return (f'<tr class="video" data-labels="{labels}"><td>{link}</td><td>{hms(record["duration"])}</td>'
            f'<td class="score">{sum(counts.values())}</td><td>{chips or "none"}</td><td>{top}</td></tr>')


def render_index(records: list[dict], hrefs: list[str | None], title: str) -> str:
    """The index of `records` (result or error records, as a scan writes them); `hrefs[k]` is the
    URL of record k's page relative to the index (None: no page)."""
    good = [r for r in records if "error" not in r]
    failed = len(records) - len(good)
    totals = Counter(e["label"] for r in good for e in r.get("events") or [])
    options = "".join(f'<option value="{html.escape(label)}">{html.escape(label)} ({n})</option>'
                      for label, n in totals.most_common())
    rows = "".join(_row(r, href) for r, href in zip(records, hrefs))
    footage = sum(r["duration"] for r in good)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>actionzs report: {html.escape(title)}</title>
<style>{asset("report.css")}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(records)} videos &middot; {hms(footage)} of footage &middot; {sum(totals.values())} events &middot; {failed} failed</p>
<p><label>videos with events of <select id="label-filter"><option value="">any label or none</option>{options}</select></label></p>
<table id="videos"><tr><th>video</th><th>length</th><th>events</th><th>events per label</th><th>top labels (clip score)</th></tr>{rows}</table>
<script>{asset("index.js")}</script>
</body></html>
"""
