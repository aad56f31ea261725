"""Decoders' complaints turned into short reasons a user can act on."""

from __future__ import annotations

import os
import re
import struct

_DECODER_CLUES = {
    "cannot find video stream": "no video stream (audio only, or not a video)",
    "Error reading": "not a container the decoder recognises",
    "Failed to measure duration": "broken stream metadata (no duration or frame count)",
    "av_read_frame failed": "the file ends early or is damaged (truncated?)",
}


def decoder_message(exc: BaseException) -> str:
    """A decoder's error as one short line, without its source-file prefix."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    message = lines[-1] if lines else type(exc).__name__
    message = re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", message)
    for clue, meaning in _DECODER_CLUES.items():
        if clue in message:
            return meaning
    return message[:200]


def missing_mp4_index(path: str) -> bool:
    """An MP4/MOV file (its first box is `ftyp`) without a whole `moov` box, the index of its
    samples: a recording cut off before it was finished. Walks the top-level boxes by their sizes."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            offset, first = 0, True
            while offset + 8 <= size:
                handle.seek(offset)
                header = handle.read(16)
                length, kind = struct.unpack(">I4s", header[:8])
                if first and kind != b"ftyp":
                    return False
                if kind == b"moov":
                    return offset + max(length, 8) > size  # cut inside the index itself
                if length == 1 and len(header) == 16:
                    length = struct.unpack(">Q", header[8:16])[0]
                elif length == 0:  # the last box runs to the end of the file
                    break
                if length < 8:
                    return False  # not boxes after all
                offset, first = offset + length, False
            return not first
    except OSError:
        return False


def spans_text(spans, most: int = 5) -> str:
    """Stretches of time as a warning shows them: "1.000-2.500 s, ..." (the first `most`)."""
    shown = ", ".join(f"{a:.3f}-{b:.3f} s" for a, b in spans[:most])
    return shown + (f" and {len(spans) - most} more" if len(spans) > most else "")
