"""Rendering results: a terminal table, JSON, JSON lines and CSV.

A result record is `VideoResult.to_dict()`; a failed video is `{"video": path, "error": reason}`.
"""

from __future__ import annotations

import csv
import io
import json

FORMATS = ("table", "json", "jsonl", "csv")
CSV_COLUMNS = ("video", "kind", "start", "end", "label", "score", "similarity")


def hms(seconds: float) -> str:
    """00:12:04, or 00:12:04.5 when the time is not a whole second."""
    tenths = round(seconds * 10)
    whole, tenth = divmod(tenths, 10)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}.{tenth}" if tenth else text


def json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def table(records: list[dict]) -> str:
    """A readable view: per video its ranked labels, then its events with hh:mm:ss times."""
    out = []
    for record in records:
        if "error" in record:
            out.append(f"{record['video']}: ERROR {record['error']}")
            continue
        out.append(f"{record['video']}  ({hms(record['duration'])}, {record['model']})")
        out.append("    score  similarity  label")
        out.extend(f"  {item['score']:7.4f}  {item['similarity']:+10.4f}  {item['label']}" for item in record["labels"])
        if record.get("events") is not None:
            if record["events"]:
                out.append("  events:")
                for event in record["events"]:
                    out.append(f"    {hms(event['start'])}-{hms(event['end'])}  {event['score']:.2f}  {event['label']}")
            else:
                out.append("  events: none above the threshold")
        out.append("")
    return "\n".join(out)


def csv_text(records: list[dict]) -> str:
    """One row per (video, clip label), per (segment, label) and per event; errors as `kind=error`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        video = record["video"]
        if "error" in record:
            writer.writerow({"video": video, "kind": "error", "label": record["error"]})
            continue
        for item in record["labels"]:
            writer.writerow({"video": video, "kind": "clip", "start": 0.0, "end": record["duration"], **item})
        for segment in record.get("segments") or []:
            for item in segment["labels"]:
                writer.writerow({"video": video, "kind": "segment", "start": segment["start"], "end": segment["end"], **item})
        for event in record.get("events") or []:
            writer.writerow({"video": video, "kind": "event", **event})
    return buffer.getvalue()


def render(records: list[dict], fmt: str) -> str:
    if fmt == "table":
        return table(records)
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        return "".join(json_line(r) for r in records)
    if fmt == "csv":
        return csv_text(records)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
