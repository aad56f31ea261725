"""Self-contained HTML reports: one page per video (player, zoomable timeline, filmstrip, events by
label) and an index page of many videos, all opened from disk with no network and no server.

`render_report` is one result's page as text; `write_report` writes it beside nothing else;
`write_reports` writes a folder of pages and its index.html for the records of a scan.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..atomic import atomic_write
from ..errors import InvalidInputError
from ..output import _encodable
from ..scan import _is_record
from .index import render_index
from .page import render_page

if TYPE_CHECKING:  # a scan's records are drawn without torch, which results imports
    from ..results import VideoResult

__all__ = ["read_records", "render_report", "write_report", "write_reports", "video_url"]

INDEX_NAME = "index.html"


def video_url(video: str, page_folder: str | os.PathLike) -> str:
    """The URL of `video` as a page in `page_folder` links to it: a relative path (so the two can
    move together), or a file URL where no relative path exists (another drive)."""
    target = os.path.abspath(video)
    try:
        relative = os.path.relpath(target, os.path.abspath(page_folder))
    except ValueError:
        return Path(target).as_uri()
    return urllib.parse.quote(os.fsencode(Path(relative).as_posix()))  # a name's own bytes, even if not UTF-8


def render_report(
    result: VideoResult, backend: str = "auto", *, measure: str = "score", threshold: float | None = None,
    video_src: str | None = None,
) -> str:
    """The page of a result scored with segments on (all labels kept per segment); `measure` and
    `threshold` are what its events were found with; `video_src` the player's URL (None: none)."""
    if result.window_spans is None:
        raise ValueError("a report needs a result scored with segments=True")
    return render_page(result.to_dict(), video_src=video_src, measure=measure, threshold=threshold, backend=backend)


def write_report(
    result: VideoResult, path: str | os.PathLike, backend: str = "auto", *, measure: str = "score",
    threshold: float | None = None,
) -> None:
    """Write `result`'s page to `path` (atomically), its player linked to the video relative to it."""
    page = render_report(result, backend, measure=measure, threshold=threshold,
                         video_src=video_url(result.video, os.path.dirname(os.path.abspath(path))))
    atomic_write(path, _encodable(page))


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a scan's results (or `classify --format jsonl`): one per line, results and
    errors alike; a torn last line (a scan cut short) is left out, any other line that is not a
    record is an error naming the file and the line."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines(keepends=True)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or (number == len(lines) and not line.endswith("\n")):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}: line {number} is not JSON ({exc.msg})") from None
        if not _is_record(record):
            raise InvalidInputError(f"{path}: line {number} is not a result record (no video with labels or an error)")
        records.append(record)
    if not records:
        raise InvalidInputError(f"{path}: holds no records")
    return records


def page_name(position: int, video: str) -> str:
    """The file name of the `position`-th video's page: unique in its folder, readable by a person."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(video).stem)[:60]
    return f"{position + 1:04d}-{stem}.html"


def _write_page(record: dict, folder: Path, name: str, **options) -> tuple[dict, str | None]:
    """(record, its page's URL): the page written; or (an error record, None) for a record that
    cannot be drawn (edited by hand, or of another tool)."""
    try:
        page = render_page(record, video_src=video_url(record["video"], folder), index_href=INDEX_NAME, **options)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return {"video": record["video"], "error": f"its record cannot be drawn ({type(exc).__name__}: {exc})"}, None
    atomic_write(folder / name, _encodable(page))
    return record, urllib.parse.quote(name)


def write_reports(
    records: list[dict], folder: str | os.PathLike, backend: str = "auto", *, measure: str = "score",
    threshold: float | None = None, title: str = "videos", progress: Callable[[], None] | None = None,
) -> tuple[Path, list[dict]]:
    """Write a page per result record into `folder` and an index.html of them all (error records
    listed as failed); returns the index's path and the records as listed (a record that cannot be
    drawn becomes an error record there; `records` itself is left as it was). `progress` is called
    after each record."""
    folder, listed = Path(folder), list(records)
    folder.mkdir(parents=True, exist_ok=True)
    hrefs: list[str | None] = [None] * len(listed)
    for position, record in enumerate(listed):
        if "error" not in record:
            listed[position], hrefs[position] = _write_page(
                record, folder, page_name(position, record["video"]), measure=measure, threshold=threshold, backend=backend)
        if progress is not None:
            progress()
    index = folder / INDEX_NAME
    atomic_write(index, _encodable(render_index(listed, hrefs, title)))
    return index, listed
