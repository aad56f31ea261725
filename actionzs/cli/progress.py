"""Progress in seconds of footage for the commands that decode (classify, scan, report, index, eval,
calibrate), and the one way the CLI's messages reach stderr, so that they never tear a bar.

On a terminal a run shows two bars: the whole run's footage (with its rate and ETA) and the video
being decoded (its own seconds and ETA), fed by the classifier's `progress` hook as each batch is
encoded. In a log (stderr not a terminal) nothing is drawn unless `--progress` asks for it, and then
it is one plain line at most every `LINE_SECONDS`, never a carriage return. `--quiet` silences both.
Every message goes through `write_line`: printed above the bars while they show, and always a line
of its own.
"""

from __future__ import annotations

import logging
import sys
import time

from ..output import printable

#: In a log, `--progress` writes one line at most this often (and one at the end).
LINE_SECONDS = 30.0
#: On a terminal, the bars are drawn again at most this often (a GPU encodes hundreds of batches a second).
DRAW_SECONDS = 0.1

#: The bars showing now (at most one `Footage`): messages are written above them.
_showing: list[Footage] = []


def write_line(message: str) -> None:
    """One line on stderr, above the bars when they show (never over them, never glued to them)."""
    if _showing and _showing[-1].bars:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


class MessageHandler(logging.Handler):
    """Log records as lines through `write_line`, escaped like the CLI's own messages."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:  # a message that cannot be shown must not stop the run
            self.handleError(record)


def shows_progress(args) -> bool | None:
    """Whether a command draws progress: False with --quiet or --no-progress, True with --progress,
    None (the default) for "on a terminal only"."""
    if getattr(args, "quiet", False):
        return False
    return getattr(args, "progress", None)


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Footage:
    """The progress of a run in seconds of footage: the run's and the current video's.

    `expected` lists each video with its length as far as it is known before decoding (the
    container's header; 0 when unknown); the classifier reports the true one. Call the object as the
    classifier's `progress` hook (`video, done_seconds, total_seconds`), `finished` once each
    video's outcome is in (a video that failed counts as done), and use it as a context manager.
    `show`: True always, False never, None on a terminal only. `part` (start, end or None) is the
    part of each video a run works on (`--start/--end`): only it counts, from its start.
    """

    def __init__(self, expected: list[tuple[str, float]] = (), show: bool | None = None, what: str = "footage",
                 part: tuple[float, float | None] = (0.0, None)):
        terminal = _is_terminal(sys.stderr)
        wanted = terminal if show is None else show
        self.bars = wanted and terminal
        self.lines = wanted and not terminal
        self.what = what
        self.part = part
        self._run_bar = self._video_bar = None
        self.closed_seconds = 0.0  # footage of the videos finished
        self.videos_done = 0
        self.current: str | None = None
        self.current_done = self.current_total = 0.0
        self._drawn = 0.0
        self.expect(expected)

    @property
    def shown(self) -> bool:
        """Whether anything is drawn: lengths are worth reading from the files' headers only then."""
        return self.bars or self.lines

    def expect(self, expected: list[tuple[str, float]]) -> None:
        """The videos to come, with their expected lengths (once they are known)."""
        expected = [(video, self._in_part(seconds)) for video, seconds in expected]
        self.expected = dict(expected)
        self.videos = len(expected)
        self.total_seconds = float(sum(seconds for _, seconds in expected))
        self.started = self._last_line = time.monotonic()  # the work starts now: rates and ETAs count from here
        if self._run_bar is not None:
            self._run_bar.reset(total=max(self.total_seconds, 1e-9))
        self._show()

    # -- the classifier's hook ---------------------------------------------------------------------

    def __call__(self, video: str, done_seconds: float, total_seconds: float) -> None:
        done_seconds = min(max(done_seconds - self.part[0], 0.0), self._in_part(total_seconds))
        total_seconds = self._in_part(total_seconds)
        if video != self.current:
            if self.current is not None:  # its outcome was not reported: done as far as it went
                self.finished(self.current, self.current_done)
            self._start(video, total_seconds)
        elif total_seconds != self.current_total:
            self.total_seconds += total_seconds - self.current_total
            self.current_total = total_seconds
        self.current_done = min(max(done_seconds, self.current_done), total_seconds)
        self._show(force=False)

    def finished(self, video: str, seconds: float | None = None) -> None:
        """`video`'s outcome is in: its true length (`seconds`) counts as done; a failed one
        (None) counts the length it was expected to have."""
        if video != self.current:
            self._start(video, self.expected.get(video, 0.0))
        length = self.current_total if seconds is None else self._in_part(seconds)
        self.total_seconds += length - self.current_total
        self.closed_seconds += length
        self.videos_done += 1
        self.current, self.current_done, self.current_total = None, 0.0, 0.0
        if self._video_bar is not None:
            self._video_bar.set_description_str("", refresh=False)
            self._video_bar.reset(total=1)
        self._show()

    def _in_part(self, seconds: float) -> float:
        """How much of a video `seconds` long the run's part covers."""
        start, end = self.part
        return max(0.0, (seconds if end is None else min(seconds, end)) - start)

    def _start(self, video: str, total_seconds: float) -> None:
        self.total_seconds += total_seconds - self.expected.get(video, 0.0)
        self.expected[video] = total_seconds  # counted from now on as what it really is
        self.current, self.current_done, self.current_total = video, 0.0, total_seconds
        if self._video_bar is not None:
            self._video_bar.set_description_str(_short(video), refresh=False)
            self._video_bar.reset(total=max(total_seconds, 1e-9))

    # -- drawing -----------------------------------------------------------------------------------

    @property
    def done_seconds(self) -> float:
        return self.closed_seconds + self.current_done

    def _show(self, force: bool = True) -> None:
        now = time.monotonic()
        if self.lines and now - self._last_line >= LINE_SECONDS:
            self._line()
        if not force and now - self._drawn < DRAW_SECONDS:
            return
        self._drawn = now
        if self._run_bar is not None:
            self._run_bar.total = max(self.total_seconds, self.done_seconds, 1e-9)
            self._run_bar.n = self.done_seconds
            self._run_bar.set_postfix_str(f"{self.videos_done}/{self.videos} videos", refresh=False)
            self._run_bar.refresh()
        if self._video_bar is not None and self.current is not None:
            self._video_bar.n = self.current_done
            self._video_bar.refresh()

    def _line(self) -> None:
        self._last_line = time.monotonic()
        elapsed = self._last_line - self.started
        done, total = self.done_seconds, max(self.total_seconds, self.done_seconds)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {_hms((total - done) / rate)}" if rate > 0 and total > done else ""
        now = f"; now {printable(self.current)} {self.current_done:.0f}/{self.current_total:.0f} s" if self.current else ""
        share = f" ({100 * done / total:.0f}%)" if total > 0 else ""
        print(
            f"progress: {done:.0f}/{total:.0f} s of {self.what}{share}, {self.videos_done}/{self.videos} videos, "
            f"{rate:.2f}x real time, {_hms(elapsed)} elapsed{eta}{now}",
            file=sys.stderr, flush=True,
        )

    def __enter__(self) -> Footage:
        if self.bars:
            from tqdm.auto import tqdm

            form = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
            self._run_bar = tqdm(total=max(self.total_seconds, 1e-9), desc=self.what, unit="s", file=sys.stderr,
                                 dynamic_ncols=True, bar_format=form, position=0)
            self._video_bar = tqdm(total=1, desc="", unit="s", file=sys.stderr, dynamic_ncols=True, leave=False,
                                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]",
                                   position=1)
        _showing.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _showing.remove(self)
        if self._video_bar is not None:
            self._video_bar.close()
        if self._run_bar is not None:
            self._run_bar.close()
        if self.lines and self.videos_done:
            self._line()


def _short(video: str, width: int = 40) -> str:
    """A video's name for the bar: escaped, its end kept when long."""
    text = printable(video)
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
