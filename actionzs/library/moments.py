"""From frames that match a query to moments: the hits of one file close in time, merged.

A search finds frames; a person wants moments. Hits of one file less than `window_seconds` apart
(from one hit's time to the next's) are one moment, from its first hit to the end of its last
(the next stored frame's time, or the file's end); its similarity is its best frame's, which is
also the frame shown for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One matching frame: which file (its id in the store), which stored row, its time and the
    cosine similarity of its embedding with the query."""

    file_id: int
    row: int
    pts_seconds: float
    similarity: float


@dataclass(frozen=True)
class Moment:
    """A stretch of one file that matches a query. `frame_seconds` is the time of its best
    frame, `frame_index` that frame's index in the video, `hits` how many frames matched."""

    query: str
    video: str
    start_seconds: float
    end_seconds: float
    similarity: float
    score: float
    frame_seconds: float
    frame_index: int
    hits: int
    thumbnail: str | None = None

    def to_dict(self) -> dict:
        return {
            "query": self.query, "video": self.video, "start": round(self.start_seconds, 3), "end": round(self.end_seconds, 3),
            "score": round(self.score, 6), "similarity": round(self.similarity, 6), "frame_time": round(self.frame_seconds, 3),
            "frame_index": self.frame_index, "hits": self.hits, **({"thumbnail": self.thumbnail} if self.thumbnail else {}),
        }


@dataclass(frozen=True)
class Stretch:
    """Hits merged into one moment of a file, before it is named and scored."""

    file_id: int
    start_seconds: float
    last_hit_seconds: float
    best: Hit
    hits: int


def merge_hits(hits: list[Hit], window_seconds: float) -> list[Stretch]:
    """The hits grouped into stretches (each file's hits in time order, a new stretch wherever two
    are `window_seconds` or more apart), best stretch first."""
    if window_seconds < 0:
        raise ValueError(f"window_seconds must be >= 0, got {window_seconds}")
    stretches: list[Stretch] = []
    ordered = sorted(hits, key=lambda h: (h.file_id, h.pts_seconds))
    for hit in ordered:
        last = stretches[-1] if stretches else None
        if last is not None and last.file_id == hit.file_id and hit.pts_seconds - last.last_hit_seconds < window_seconds:
            best = hit if hit.similarity > last.best.similarity else last.best
            stretches[-1] = Stretch(hit.file_id, last.start_seconds, hit.pts_seconds, best, last.hits + 1)
        else:
            stretches.append(Stretch(hit.file_id, hit.pts_seconds, hit.pts_seconds, hit, 1))
    stretches.sort(key=lambda s: (-s.best.similarity, s.file_id, s.start_seconds))
    return stretches


def end_of(last_hit_seconds: float, pts_seconds: np.ndarray, duration_seconds: float) -> float:
    """Where a stretch whose last hit is at `last_hit_seconds` ends: at the file's next stored
    frame, or at its end."""
    later = pts_seconds[pts_seconds > last_hit_seconds]
    return float(later[0]) if len(later) else float(duration_seconds)
