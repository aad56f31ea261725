"""The `actionzs` command: probe, classify, scan and report.

Exit status: 0 when everything was read and scored, 1 when any video failed (each is reported and
the others still done), 2 for bad usage (unknown option, bad labels or settings), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ActionzsError, InvalidInputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("actionzs")


# -- argument parsing -------------------------------------------------------------------------------

def _model_options() -> argparse.ArgumentParser:
    """Options shared by classify, scan and report; a None default means "from the config"."""
    parent = argparse.ArgumentParser(add_help=False)
    labels = parent.add_argument_group("labels")
    labels.add_argument("-l", "--label", dest="labels", action="append", metavar="LABEL",
                        help='a candidate label; repeat for more. "name: description" embeds the description')
    labels.add_argument("--labels-file", metavar="FILE",
                        help="one label per line (optional 'name: description'; # comments, blank lines, BOM ok)")
    model = parent.add_argument_group("model and decoding")
    model.add_argument("--config", metavar="CFG",
                       help="preset name (default, surveillance, sports) or YAML file; flags override it")
    model.add_argument("--model", metavar="M", help="hub id or local checkpoint directory")
    model.add_argument("--device", metavar="DEV", help="cpu, cuda or cuda:N (default: cuda if available)")
    model.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), help="model precision")
    model.add_argument("--backend", choices=("auto", "decord", "opencv"), help="video decoder")
    model.add_argument("--batch-size", type=int, metavar="N", help="frames per image-encoder call")
    model.add_argument("--decode-workers", type=int, metavar="N",
                       help="decoders at work at once: on videos of the list, or on the batches of a single video")
    sampling = parent.add_argument_group("sampling and scoring")
    sampling.add_argument("--fps", type=float, metavar="R", help="frames per second embedded (segments on)")
    sampling.add_argument("--num-frames", type=int, metavar="N", help="frames for the clip score (segments off)")
    sampling.add_argument("--segments", action=argparse.BooleanOptionalAction, default=None,
                          help="also score time windows and find events")
    sampling.add_argument("--window", type=float, metavar="S", help="window length in seconds")
    sampling.add_argument("--stride", type=float, metavar="S", help="step between windows in seconds")
    sampling.add_argument("--pooling", choices=("mean", "max"), help="pooling of frame embeddings")
    sampling.add_argument("--template", dest="hypothesis_template", action="append", metavar="T",
                          help='prompt template with one {} (repeat for an ensemble), e.g. "a video of {}."')
    sampling.add_argument("--top-k", type=int, metavar="K", help="labels reported per clip and window (0 = all)")
    events = parent.add_argument_group("events (with segments)")
    events.add_argument("--threshold", type=float, metavar="T", help="a window is on for a label at or above T")
    events.add_argument("--measure", choices=("score", "similarity"), help="threshold the probability or the raw cosine")
    events.add_argument("--smooth", type=int, metavar="N", help="moving average over N windows first")
    events.add_argument("--max-gap", type=float, metavar="S", help="merge events at most S seconds apart")
    events.add_argument("--min-duration", type=float, metavar="S", help="drop events shorter than S seconds")
    parent.add_argument("--save-embeddings", metavar="DIR",
                        help="also store each video's embeddings (with timestamps) as DIR/<name>-<hash>.npz")
    parent.add_argument("-q", "--quiet", action="store_true", help="no progress or info messages")
    parent.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parent


def build_parser() -> argparse.ArgumentParser:
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
    probe.add_argument("--backend", choices=("auto", "decord", "opencv"), default="auto", help="video decoder")

    classify = commands.add_parser("classify", parents=[shared], help="rank labels for videos (and segments)",
                                   description="Rank candidate labels for each video; with --segments also per time window, with events.")
    classify.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or images")
    classify.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table", help="output format")
    classify.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")

    scan = commands.add_parser("scan", parents=[shared], help="classify every video under folders into a JSONL file",
                               description="Classify every video under folders or globs; one JSON line per video. "
                                           "A video that fails becomes an error record and the scan goes on.")
    scan.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    scan.add_argument("-o", "--output", required=True, metavar="FILE", help="results, one JSON line per video")
    scan.add_argument("--resume", action="store_true",
                      help="continue into an existing output: skip videos with a record, retry failed ones")

    report = commands.add_parser("report", parents=[shared], help="write a self-contained HTML report for one video",
                                 description="Write one self-contained HTML file: label x time heatmap, events with keyframes, clip ranking.")
    report.add_argument("video", metavar="VIDEO")
    report.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    return parser


# -- settings: config, then flags ----------------------------------------------------------------

_RUN_KEYS = ("fps", "num_frames", "segments", "window", "stride", "pooling", "hypothesis_template", "top_k")
_EVENT_KEYS = ("threshold", "measure", "smooth", "max_gap", "min_duration")


def _settings(args) -> dict:
    from .config import load_config

    settings = load_config(args.config)
    for key in ("model", "device", "dtype", "backend", "batch_size", "decode_workers", *_RUN_KEYS):
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    settings["events"] = {**settings["events"], **{k: getattr(args, k) for k in _EVENT_KEYS if getattr(args, k) is not None}}
    if settings.get("top_k") == 0:
        settings["top_k"] = None
    return settings


def _labels(args, settings: dict):
    from .prompts import parse_labels, read_labels_file

    if args.labels and args.labels_file:
        raise InvalidInputError("give labels with -l/--label or --labels-file, not both")
    if args.labels:
        return parse_labels(args.labels)
    source = args.labels_file or settings.get("labels_file")
    if not source:
        raise InvalidInputError("no labels: give -l LABEL (repeatable) or --labels-file FILE")
    return read_labels_file(source)


def _validated(args, **forced):
    """(settings, labels, run options), all checked before any output is touched or model loaded."""
    from .options import RunOptions, check_count, events_from

    settings = {**_settings(args), **forced}
    labels = _labels(args, settings)
    run = RunOptions(**{k: settings[k] for k in _RUN_KEYS}, events=events_from(settings["events"]))
    if settings["backend"] not in ("auto", "decord", "opencv"):
        raise InvalidInputError(f"backend must be auto, decord or opencv; got {settings['backend']!r}")
    for key in ("batch_size", "decode_workers"):
        check_count(key, settings[key])
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
    print(f"error: {video}: {reason}", file=sys.stderr)
    return {"video": video, "error": reason}


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
    from .output import hms
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
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        rows = [("video", "backend", "frames", "fps", "duration", "size")]
        rows += [
            (r["path"], r["backend"], str(r["num_frames"]), f"{r['fps']:.3f}", hms(r["duration"]), f"{r['width']}x{r['height']}")
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
    outcomes = classifier.classify_each(args.videos, labels)
    records = [_record(video, outcome, args.save_embeddings) for video, outcome in outcomes]
    text = render(records, args.format)
    if args.output:
        atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_FAILED if any("error" in r for r in records) else EXIT_OK


def cmd_scan(args) -> int:
    from tqdm.auto import tqdm

    from .scan import ResultsLog, find_videos

    settings, labels, run = _validated(args)
    videos, problems = find_videos(args.inputs)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not videos:
        raise InvalidInputError(f"no videos found in {', '.join(args.inputs)}")
    try:
        results = ResultsLog(args.output, args.resume)
    except FileExistsError as exc:
        raise InvalidInputError(str(exc)) from None
    with results:
        todo = [v for v in videos if v not in results.done]
        if not todo:
            print(f"nothing to do: all {len(videos)} videos are already in {args.output}", file=sys.stderr)
            return EXIT_OK
        classifier = _classifier(settings, run)
        ok = failed = 0
        footage, started = 0.0, time.monotonic()
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True)
        with bar:
            for video, outcome in classifier.classify_each(todo, labels):
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
    print(
        f"scanned {len(todo)} videos ({footage:.1f} s of footage): {ok} ok, {failed} failed"
        + (f", {skipped} already done" if skipped else "") + f" -> {args.output}",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK


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
        return EXIT_FAILED
    atomic_write(args.output, html)
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"probe": cmd_probe, "classify": cmd_classify, "scan": cmd_scan, "report": cmd_report}


def _configure_logging(args) -> None:
    level = logging.INFO if getattr(args, "verbose", False) else logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "verbose", False) and args.command != "probe":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    # The encoder's idle OpenMP threads would otherwise spin on the cores the decode thread needs
    # (10-30 % of a run's CPU on 2 cores). Read when torch loads; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        _configure_logging(args)
        return COMMANDS[args.command](args)
    except InvalidInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ActionzsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # e.g. `actionzs classify ... | head`
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # writing an output failed (disk full, permissions changed meanwhile, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # CPython notes a KeyboardInterrupt raised inside exec() of a string (dataclasses and other
        # imports do that) as unhandled, even once caught here, and would then end the process by
        # SIGINT instead of this exit status; every exec() of a string clears that note again.
        exec("None")
        print("interrupted" + ("; run again with --resume to continue" if args.command == "scan" else ""), file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
