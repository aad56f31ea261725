"""The `actionzs` command: probe, classify, scan and report.

Exit status: 0 when everything was read and scored, 1 when any video failed (each is reported and
the others still done), 2 for bad usage (unknown option, bad labels or settings, or settings a video
cannot be sampled with; the others are still done), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ActionzsError, InvalidInputError
from .output import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("actionzs")


# -- argument parsing -------------------------------------------------------------------------------

def _model_options() -> argparse.ArgumentParser:
    """Options shared by classify, scan and report, one flag per option of the schema; a None
    default means "from the config"."""
    from .schema import OPTIONS, STAGES

    parent = argparse.ArgumentParser(add_help=False)
    groups = {stage: parent.add_argument_group(title) for stage, title in STAGES.items()}
    groups["labels"].add_argument("-l", "--label", dest="labels", action="append", metavar="LABEL",
                                  help='a candidate label; repeat for more. "name: description" embeds the description')
    groups["loading"].add_argument("--config", metavar="CFG",
                                   help="preset name (default, surveillance, sports) or YAML file; flags override it")
    for option in OPTIONS:
        groups[option.stage].add_argument(option.flag, **_flag(option))
    parent.add_argument("--save-embeddings", metavar="DIR",
                        help="also store each video's embeddings (with timestamps) as DIR/<name>-<hash>.npz")
    parent.add_argument("-q", "--quiet", action="store_true", help="no progress or info messages")
    parent.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parent


def _flag(option) -> dict:
    """The `add_argument` keywords of an option's flag: its type or choices, metavar and help."""
    if option.type is bool:
        kind = {"action": argparse.BooleanOptionalAction}
    elif option.type is tuple:  # a template; repeated, an ensemble
        kind = {"action": "append", "metavar": option.metavar}
    elif option.allowed:
        kind = {"choices": option.allowed}
    else:
        kind = {"type": option.type, "metavar": option.metavar}
    return {"dest": option.name, "default": None, "help": option.help.replace("%", "%%"), **kind}


class _HelpFormatter(argparse.HelpFormatter):
    """Completes each option's help with its unit, range and the value the default config gives it
    (the config is read only when help is shown)."""

    _config: dict | None = None

    def _get_help_string(self, action) -> str | None:
        from .schema import OPTIONS

        option = {o.name: o for o in OPTIONS}.get(action.dest)
        if option is None:
            return action.help
        if self._config is None:
            from .config import load_config

            self._config = load_config()
        details = [
            option.unit and f"in {option.unit}",
            option.bounds(),
            option.flag_none is not None and f"{option.flag_none} = {option.none_means}",
            f"default from the config: {_shown(option, option.section(self._config).get(option.name))}",
        ]
        return action.help + f" ({'; '.join(filter(None, details))})".replace("%", "%%")  # help is escaped already


def _shown(option, value) -> str:
    """A config value as help shows it: None as what it means, templates quoted, YAML's true/false."""
    if value is None:
        return option.none_means
    if isinstance(value, list):
        return ", ".join(f'"{template}"' for template in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_parser() -> argparse.ArgumentParser:
    from .schema import option

    parser = argparse.ArgumentParser(
        prog="actionzs",
        description="Zero-shot video action recognition: which free-text actions fit a video, and when.",
        epilog="Exit status: 0 all done, 1 some video failed, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"actionzs {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = _model_options()

    probe = commands.add_parser("probe", help="print videos' true metadata",
                                description="Print each video's true metadata (frames that decode, fps, duration, size).")
    probe.add_argument("videos", nargs="+", metavar="VIDEO")
    probe.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    backend = option("backend")
    probe.add_argument("--backend", choices=backend.allowed, default=backend.default, help=backend.help)

    classify = commands.add_parser("classify", parents=[shared], formatter_class=_HelpFormatter,
                                   help="rank labels for videos (and segments)",
                                   description="Rank candidate labels for each video; with --segments also per time window, with events.")
    classify.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or images")
    classify.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table", help="output format")
    classify.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")

    scan = commands.add_parser("scan", parents=[shared], formatter_class=_HelpFormatter,
                               help="classify every video under folders into a JSONL file",
                               description="Classify every video under folders or globs; one JSON line per video. "
                                           "A video that fails becomes an error record and the scan goes on.")
    scan.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    scan.add_argument("-o", "--output", required=True, metavar="FILE", help="results, one JSON line per video")
    scan.add_argument("--resume", action="store_true",
                      help="continue into an existing output: skip videos with a record, retry failed ones")

    report = commands.add_parser("report", parents=[shared], formatter_class=_HelpFormatter,
                                 help="write a self-contained HTML report for one video",
                                 description="Write one self-contained HTML file: label x time heatmap, events with keyframes, clip ranking.")
    report.add_argument("video", metavar="VIDEO")
    report.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    return parser


# -- settings: config, then flags ----------------------------------------------------------------

def _settings(args) -> dict:
    """The config's settings with the flags that were given laid over them."""
    from .config import load_config
    from .schema import OPTIONS

    settings = load_config(args.config)
    for option in OPTIONS:
        value = getattr(args, option.name)
        if value is not None:
            option.section(settings)[option.name] = None if value == option.flag_none else value
    return settings


def _labels(args, settings: dict):
    from .prompts import parse_labels, read_labels_file

    if args.labels and args.labels_file:
        raise InvalidInputError("give labels with -l/--label or --labels-file, not both")
    if args.labels:
        return parse_labels(args.labels)
    if not settings["labels_file"]:
        raise InvalidInputError("no labels: give -l LABEL (repeatable) or --labels-file FILE")
    return read_labels_file(settings["labels_file"])


def _validated(args, **forced):
    """(settings, labels, run options), all checked before any output is touched or model loaded."""
    from .options import RunOptions
    from .schema import options_of

    settings = {**_settings(args), **forced}
    labels = _labels(args, settings)
    run = RunOptions(**{o.name: settings[o.name] for o in options_of("sampling")}, events=settings["events"])
    for option in options_of("loading"):
        option.check(settings[option.name])
    _check_output(getattr(args, "output", None))
    _make_folder(args.save_embeddings)
    return settings, labels, run


def _check_output(path: str | None) -> None:
    """An output path must be a file (new or existing) in a folder that exists."""
    if not path:
        return
    if os.path.isdir(path):
        raise InvalidInputError(f"{path}: is a directory; give a file name for the output")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"{path}: the folder {folder} is not writable")


def _classifier(settings: dict, run):
    from .classifier import ZeroShotVideoClassifier
    from .models import load_encoder

    encoder = load_encoder(settings["model"], settings["device"], settings["dtype"])
    return ZeroShotVideoClassifier(
        encoder, run, batch_size=settings["batch_size"], backend=settings["backend"], decode_workers=settings["decode_workers"]
    )


def _make_folder(folder: str | None) -> None:
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"{folder}: cannot create the embeddings folder ({exc.strerror or exc})") from None


def _failure(video: str, exc: Exception) -> dict:
    if isinstance(exc, ActionzsError):
        reason = getattr(exc, "reason", None) or str(exc)
    else:  # unexpected: keep going, but say what it was
        log.debug("unexpected error on %s", video, exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
    _say(f"error: {video}: {reason}")
    return {"video": video, "error": reason}


def _exit_status(failed: bool, invalid: bool) -> int:
    """2 when a video was refused for its options (more windows or frames than its length allows),
    else 1 when any video failed, else 0."""
    return EXIT_USAGE if invalid else EXIT_FAILED if failed else EXIT_OK


def _embeddings_path(folder: str, video: str) -> Path:
    """<folder>/<video name>-<hash of its full path>.npz: unique per video, readable by a person."""
    digest = hashlib.sha1(os.path.abspath(video).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return Path(folder) / f"{Path(video).stem[:80]}-{digest}.npz"


def _record(video: str, outcome, embeddings_dir: str | None = None) -> dict:
    """The output record of one video: its result (embeddings saved if asked), or its error."""
    try:
        if isinstance(outcome, Exception):
            raise outcome
        record = outcome.to_dict()
        if embeddings_dir:
            path = _embeddings_path(embeddings_dir, video)
            outcome.embeddings.save(path)
            record["embeddings"] = str(path)
        return record
    except Exception as exc:  # this video failed; the batch goes on
        return _failure(video, exc)


# -- commands ------------------------------------------------------------------------------------

def cmd_probe(args) -> int:
    from .output import hms, render
    from .stream import DECODE_TIMEOUT, bounded_call
    from .video import open_video

    records, failed = [], 0
    for path in args.videos:
        try:
            with bounded_call(lambda: open_video(path, args.backend), path, DECODE_TIMEOUT) as video:
                records.append(video.info())
        except ActionzsError as exc:
            records.append(_failure(path, exc))
            failed += 1
    if args.json:
        sys.stdout.write(render(records, "json"))
    else:
        rows = [("video", "backend", "frames", "fps", "duration", "size")]
        rows += [
            (printable(r["path"]), r["backend"], str(r["num_frames"]), f"{r['fps']:.3f}", hms(r["duration"]), f"{r['width']}x{r['height']}")
            for r in records if "error" not in r
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_FAILED if failed else EXIT_OK


def cmd_classify(args) -> int:
    from .atomic import atomic_write
    from .output import render

    settings, labels, run = _validated(args)
    classifier = _classifier(settings, run)
    records, invalid = [], False
    for video, outcome in classifier.classify_each(args.videos, labels):
        invalid = invalid or isinstance(outcome, InvalidInputError)
        records.append(_record(video, outcome, args.save_embeddings))
    text = render(records, args.format)
    if args.output:
        atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return _exit_status(any("error" in r for r in records), invalid)


def cmd_scan(args) -> int:
    from tqdm.auto import tqdm

    from .scan import ResultsLog, find_videos

    settings, labels, run = _validated(args)
    videos, problems = find_videos(args.inputs)
    for problem in problems:
        _say(f"warning: {problem}")
    if not videos:
        raise InvalidInputError(f"no videos found in {', '.join(args.inputs)}")
    try:
        results = ResultsLog(args.output, args.resume)
    except FileExistsError as exc:
        raise InvalidInputError(str(exc)) from None
    with results:
        todo = [v for v in videos if v not in results.done]
        if not todo:
            _say(f"nothing to do: all {len(videos)} videos are already in {args.output}")
            return EXIT_OK
        classifier = _classifier(settings, run)
        ok = failed = 0
        invalid = False
        footage, started = 0.0, time.monotonic()
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True)
        with bar:
            for video, outcome in classifier.classify_each(todo, labels):
                invalid = invalid or isinstance(outcome, InvalidInputError)
                record = _record(video, outcome, args.save_embeddings)
                results.write(record)
                if "error" in record:
                    failed += 1
                else:
                    ok += 1
                    footage += record["duration"]
                bar.set_postfix_str(f"{footage:.0f} s of footage, {footage / max(time.monotonic() - started, 1e-9):.1f}x real time")
                bar.update()
    skipped = len(videos) - len(todo)
    _say(
        f"scanned {len(todo)} videos ({footage:.1f} s of footage): {ok} ok, {failed} failed"
        + (f", {skipped} already done" if skipped else "") + f" -> {args.output}"
    )
    return _exit_status(failed > 0, invalid)


def cmd_report(args) -> int:
    from .atomic import atomic_write
    from .report import render_report

    settings, labels, run = _validated(args, segments=True, top_k=None)
    classifier = _classifier(settings, run)
    try:
        result = classifier.classify_prepared(args.video, labels, run)
        if args.save_embeddings:
            result.embeddings.save(_embeddings_path(args.save_embeddings, args.video))
        html = render_report(result, backend=classifier.backend)
    except ActionzsError as exc:
        _failure(args.video, exc)
        return _exit_status(True, isinstance(exc, InvalidInputError))
    atomic_write(args.output, html)
    if not args.quiet:
        _say(f"wrote {args.output}")
    return EXIT_OK


COMMANDS = {"probe": cmd_probe, "classify": cmd_classify, "scan": cmd_scan, "report": cmd_report}


def _say(message: str) -> None:
    """One line for the person at the terminal, on stderr: names and reasons in it come from files
    and users, so their control characters are shown escaped, never sent raw."""
    print(printable(message), file=sys.stderr)


class _PrintableFormatter(logging.Formatter):
    """Log messages escaped like `_say`'s (a traceback under --verbose stays as it is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def _configure_logging(args) -> None:
    level = logging.INFO if getattr(args, "verbose", False) else logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if not getattr(args, "verbose", False) and args.command != "probe":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


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
    if 1 in closed and (args.command == "probe" or args.command == "classify" and not args.output):
        _say("error: standard output is closed, so the results have nowhere to go; give -o FILE")
        return EXIT_FAILED
    try:
        _configure_logging(args)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as exc:
        if _raised_by_interrupt(exc):  # Ctrl-C inside an import or a library that wrapped it
            return _interrupted(args)
        if isinstance(exc, InvalidInputError):
            _say(f"error: {exc}")
            return EXIT_USAGE
        if isinstance(exc, ActionzsError):
            _say(f"error: {exc}")
            return EXIT_FAILED
        if isinstance(exc, BrokenPipeError):  # e.g. `actionzs classify ... | head`
            sys.stderr.close()
            return EXIT_OK
        if isinstance(exc, OSError):  # writing an output failed (disk full, permissions changed meanwhile, ...)
            where = f"{exc.filename}: " if exc.filename else ""
            _say(f"error: {where}{exc.strerror or exc}")
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
    _say("interrupted" + ("; run again with --resume to continue" if args.command == "scan" else ""))
    return EXIT_INTERRUPTED

if __name__ == "__main__":
    sys.exit(main())
