"""Reading the small text files a user names (labels, configs) without trusting them to be small.

A path may name a FIFO (which blocks forever), a device such as /dev/zero (which never ends) or a
huge file: only regular files are read, and only up to a stated size.
"""

from __future__ import annotations

import os
import stat
from .errors import InvalidInputError


def read_text_file(path: str | os.PathLike, what: str, max_bytes: int) -> str:
    """The UTF-8 text (a byte-order mark dropped) of the regular file `path`, at most `max_bytes`
    long; anything else is an `InvalidInputError` naming the file, `what` it was meant to be, and why."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInputError(f"{path}: {what} is not a regular file (a folder, pipe or device cannot be read as one)")
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise InvalidInputError(f"{path}: {what} is larger than {max_bytes // 2**20} MiB; is it the right file?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path}: {what} is not UTF-8 (bad byte at offset {exc.start})") from None
