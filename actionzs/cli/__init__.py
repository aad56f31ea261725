"""The `actionzs` command: probe, classify, scan, report, a library's index and search, eval and calibrate.

Exit status: 0 when everything was read and scored, 1 when any video failed (each is reported and
the others still done), 2 for bad usage (unknown option, bad labels or settings, or settings a video
cannot be sampled with; the others are still done), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings

from .. import __version__
from ..errors import ActionzsError, InvalidInputError, SingleLabelWarning
from ..output import printable
from . import calibrate_commands, eval_commands, library_commands, video_commands
from .arguments import model_options
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, say, to_stdout
from .progress import MessageHandler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actionzs",
        description="Zero-shot video action recognition: which free-text actions fit a video, and when.",
        epilog="Exit status: 0 all done, 1 some video failed, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"actionzs {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = model_options()
    video_commands.add_parsers(commands, shared)
    library_commands.add_parsers(commands)
    eval_commands.add_parsers(commands, shared)
    calibrate_commands.add_parsers(commands)
    return parser


COMMANDS = {"probe": video_commands.cmd_probe, "classify": video_commands.cmd_classify, "scan": video_commands.cmd_scan,
            "report": video_commands.cmd_report, "index": library_commands.cmd_index, "search": library_commands.cmd_search,
            "eval": eval_commands.cmd_eval, "calibrate": calibrate_commands.cmd_calibrate}


class _PrintableFormatter(logging.Formatter):
    """Log messages escaped like `say`'s (a traceback under --verbose stays as it is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def _configure_logging(args) -> None:
    level = logging.INFO if getattr(args, "verbose", False) else logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    handler = MessageHandler()  # lines above any progress bar, never over it
    handler.setFormatter(_PrintableFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if not getattr(args, "verbose", False) and args.command != "probe":
        _quiet_transformers()


def _quiet_transformers() -> None:
    """transformers' own warnings and progress bars off (the command says what matters in its own
    words), unless the user's TRANSFORMERS_VERBOSITY says otherwise. Through the environment while
    transformers is not imported yet, which it reads when it loads: importing it here would cost a
    command that ends before any model loads (bad options, unreadable files) seconds of imports."""
    if "TRANSFORMERS_VERBOSITY" in os.environ:
        return
    if sys.modules.get("transformers") or sys.modules.get("huggingface_hub"):  # called in a process that has loaded it
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    else:
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main(argv: list[str] | None = None) -> int:
    # The encoder's idle OpenMP threads would otherwise spin on the cores the decode thread needs
    # (10-30 % of a run's CPU on 2 cores). Read when torch loads; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    closed = _reopen_closed_standard_streams()
    stderr = sys.stderr
    sys.stderr = _messages_stream(stderr)
    try:
        return _run(argv, closed)
    finally:
        gc.unfreeze()  # what `make_classifier` froze, back in the collector's sight for a caller that goes on
        if sys.stderr is not stderr:
            sys.stderr.flush()
            sys.stderr = stderr


def _messages_stream(stderr):
    """Where the CLI's own messages go: the same place as stderr, through a descriptor of their
    own. Decoders print to file descriptor 2 directly, so while one runs (in a decoding thread)
    fd 2 points at a capture file (see `video.capture`); a message written to fd 2 meanwhile, say
    the previous file's error, would end up there and never be seen."""
    try:
        if stderr.fileno() != 2:
            return stderr
        stderr.flush()
        return os.fdopen(os.dup(2), "w", buffering=1, encoding=stderr.encoding, errors=stderr.errors)
    except (AttributeError, OSError, ValueError):  # not a real file (captured by a caller)
        return stderr


def _run(argv: list[str] | None, closed: set[int]) -> int:
    args = build_parser().parse_args(argv)
    if 1 in closed and (args.command == "probe" or args.command in ("classify", "scan", "search") and to_stdout(args.output)):
        say("error: standard output is closed, so the results have nowhere to go; give -o FILE")
        return EXIT_FAILED
    try:
        _configure_logging(args)
        with warnings.catch_warnings():  # the command says it itself, in its own words (its flags)
            warnings.simplefilter("ignore", SingleLabelWarning)
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as exc:
        if _raised_by_interrupt(exc):  # Ctrl-C inside an import or a library that wrapped it
            return _interrupted(args)
        if isinstance(exc, InvalidInputError):
            say(f"error: {exc}")
            return EXIT_USAGE
        if isinstance(exc, ActionzsError):
            say(f"error: {exc}")
            return EXIT_FAILED
        if isinstance(exc, BrokenPipeError):  # e.g. `actionzs classify ... | head`
            sys.stderr.close()
            return EXIT_OK
        if isinstance(exc, OSError):  # writing an output failed (disk full, permissions changed meanwhile, ...)
            where = f"{exc.filename}: " if exc.filename else ""
            say(f"error: {where}{exc.strerror or exc}")
            return EXIT_FAILED
        raise


def _reopen_closed_standard_streams() -> set[int]:
    """Open /dev/null on each of file descriptors 0-2 that the process was started without, and
    return which they were. Otherwise the next file opened (the results file of a scan) would get
    that number, and what is meant for the terminal (decoder output, caught on fd 2) would land
    in it."""
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one, or a lower closed one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            closed.add(fd)
    if sys.stderr is None:  # Python found fd 2 closed at start: messages go nowhere, as the caller chose
        sys.stderr = open(os.devnull, "w")
    return closed


def _raised_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies under `exc`: Python wraps one raised while a class body is
    set up (an import during the model load) in a RuntimeError, and libraries wrap it in their own
    errors ("model could not be loaded")."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupted(args) -> int:
    # CPython notes a KeyboardInterrupt raised inside exec() of a string (dataclasses and other
    # imports do that) as unhandled, even once caught here, and would then end the process by
    # SIGINT instead of this exit status; every exec() of a string clears that note again.
    exec("None")
    say("interrupted" + ("; run again with --resume to continue" if args.command == "scan" else ""))
    return EXIT_INTERRUPTED

