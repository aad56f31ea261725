"""Decoders' complaints turned into short reasons a user can act on."""

from __future__ import annotations

import re

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


def missing_mp4_index(path: str, said: str) -> bool:
    """An MP4/MOV file (it starts with an `ftyp` box) whose index the demuxer could not find: a
    recording cut off before it was finished. Any other file named .mp4 gets the same complaint."""
    if "moov atom not found" not in said:
        return False
    with open(path, "rb") as handle:
        return handle.read(12)[4:8] == b"ftyp"
