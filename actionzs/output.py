"""Rendering results: a terminal table, JSON, JSON lines and CSV.

A result record is `VideoResult.to_dict()`; a failed video is `{"video": path, "error": reason}`;
the command line's records also carry `schema_version` and `settings` (see `provenance`).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata

FORMATS = ("table", "json", "jsonl", "csv")
CSV_COLUMNS = ("video", "kind", "start", "end", "label", "score", "similarity", "schema_version", "settings_hash")


def hms(seconds: float) -> str:
    """A time as `HH:MM:SS.mmm`, always that wide (00:12:04.500), so columns of times line up and
    sort as text; hours past 99 take more digits, and a time below zero (rounding) is 0."""
    millis = round(max(seconds, 0.0) * 1000)
    whole, milli = divmod(millis, 1000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{milli:03d}"


#: Characters that could make a terminal do something (escape sequences, line breaks that forge
#: lines of their own, text direction overrides) or that no terminal can print (lone surrogates of
#: a file name that is not UTF-8).
_UNPRINTABLE = frozenset({"Cc", "Cs"})
_DIRECTION = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` for a person's terminal: every control, direction and unprintable character written
    as its escape (`\\x1b`, `\\n`, `\\u202e`, `\\udcff`), everything else as it is."""
    return "".join(
        c.encode("unicode_escape", "backslashreplace").decode("ascii") if unicodedata.category(c) in _UNPRINTABLE
        or c in _DIRECTION else c
        for c in text
    )


#: What a spreadsheet takes as the start of a formula (OWASP, "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with `'`; numbers and other
    text as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _encodable(text: str) -> str:
    """`text` with each lone surrogate (from a file name that is not UTF-8) written as its escape
    `\\udcXX`, so that it can be written as UTF-8; inside JSON strings that escape is the JSON
    spelling of the same character, so the record still names the file exactly."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_line(record: dict) -> str:
    return _encodable(json.dumps(record, ensure_ascii=False)) + "\n"


def threshold_text(described: dict | None) -> str:
    """What events were thresholded with, as results record it (`EventOptions.described`), in
    words: "score >= 0.5", or "similarity >= 0.27 for fall, 0.5 for the other labels"."""
    if not described:
        return "the threshold"
    own = described.get("labels") or {}
    text = f"{described['measure']} >= " + ", ".join(f"{value:g} for {label}" for label, value in own.items())
    if not own:
        return text + f"{described['threshold']:g}"
    return text + f", {described['threshold']:g} for the other labels"


def table(records: list[dict]) -> str:
    """A readable view: per video its ranked labels, then its events with hh:mm:ss times."""
    out = []
    for record in records:
        video = printable(record["video"])
        if "error" in record:
            out.extend([f"{video}: ERROR {printable(record['error'])}", ""])  # every record's lines end with a newline
            continue
        out.append(f"{video}  ({hms(record['duration'])}, {printable(record['model'])})")
        out.append("    score  similarity  label")
        out.extend(
            f"  {item['score']:7.4f}  {item['similarity']:+10.4f}  {printable(item['label'])}" for item in record["labels"]
        )
        frameless = sum(1 for segment in record.get("segments") or [] if segment.get("frameless"))
        if frameless:
            out.append(f"  windows: {frameless} of {len(record['segments'])} hold no sampled frame (no keyframe): not scored")
        if record.get("events") is not None:
            if record["events"]:
                out.append("  events:")
                for event in record["events"]:
                    out.append(f"    {hms(event['start'])}-{hms(event['end'])}  {event['score']:.2f}  {printable(event['label'])}")
            else:
                out.append(f"  events: none reached {printable(threshold_text(record.get('thresholds')))}")
        out.append("")
    return "\n".join(out)


class _SafeWriter(csv.DictWriter):
    def writerow(self, row: dict):
        return super().writerow({key: spreadsheet_safe(value) for key, value in row.items()})


def csv_text(records: list[dict]) -> str:
    """One row per (video, clip label), per (segment, label) and per event; a segment that held no
    frame (keyframe sampling) is one `kind=frameless` row; errors as `kind=error` (the reason under
    `label`). Each row names the `schema_version` and `settings_hash` of its
    record, and each settings block is one `kind=settings` row (its JSON under `label`) before the
    first row made with it. Text cells that a spreadsheet would run as formulas start with `'`."""
    buffer = io.StringIO()
    writer = _SafeWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    written = set()
    for record in records:
        video, settings = record["video"], record.get("settings") or {}
        made = {"schema_version": record.get("schema_version"), "settings_hash": settings.get("hash")}
        if settings and settings.get("hash") not in written:
            written.add(settings.get("hash"))
            writer.writerow({"kind": "settings", "label": json.dumps(settings, ensure_ascii=False), **made})
        if "error" in record:
            writer.writerow({"video": video, "kind": "error", "label": record["error"], **made})
            continue
        for item in record["labels"]:
            writer.writerow({"video": video, "kind": "clip", "start": 0.0, "end": record["duration"], **item, **made})
        for segment in record.get("segments") or []:
            if segment.get("frameless"):
                writer.writerow({"video": video, "kind": "frameless", "start": segment["start"], "end": segment["end"], **made})
            for item in segment["labels"]:
                writer.writerow(
                    {"video": video, "kind": "segment", "start": segment["start"], "end": segment["end"], **item, **made}
                )
        for event in record.get("events") or []:
            writer.writerow({"video": video, "kind": "event", **event, **made})
    return buffer.getvalue()


MOMENT_COLUMNS = ("query", "rank", "video", "start", "end", "score", "similarity", "frame_time", "hits", "thumbnail")


def moments_table(records: list[dict]) -> str:
    """Search results for a person: per query its moments, best first, with hh:mm:ss times."""
    out = []
    for query in dict.fromkeys(r["query"] for r in records):
        out.append(f"{printable(query)}")
        out.append("  rank  start         end           similarity  score    frame at      video")
        for r in (r for r in records if r["query"] == query):
            out.append(
                f"  {r['rank']:4d}  {hms(r['start'])}  {hms(r['end'])}  {r['similarity']:+10.4f}  {r['score']:7.4f}  "
                f"{hms(r['frame_time'])}  {printable(r['video'])}" + (f"  [{printable(r['thumbnail'])}]" if r.get("thumbnail") else "")
            )
        out.append("")
    return "\n".join(out) if out else "no moments found\n"


def render_moments(records: list[dict], fmt: str) -> str:
    """Search results (`Moment.to_dict()` with a "rank") as a table, JSON, JSON lines or CSV."""
    if fmt == "table":
        return moments_table(records)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = _SafeWriter(buffer, MOMENT_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return _encodable(buffer.getvalue())
    return render(records, fmt)


def render(records: list[dict], fmt: str) -> str:
    """`records` in format `fmt`, as text that encodes as UTF-8 whatever the file names hold."""
    if fmt == "table":
        return table(records)
    if fmt == "json":
        return _encodable(json.dumps(records, indent=2, ensure_ascii=False)) + "\n"
    if fmt == "jsonl":
        return "".join(json_line(r) for r in records)
    if fmt == "csv":
        return _encodable(csv_text(records))
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
