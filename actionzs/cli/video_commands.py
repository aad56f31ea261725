"""probe, classify, scan and report: the commands that read videos."""

from __future__ import annotations

import os
import sys

from ..errors import ActionzsError, InvalidInputError
from ..output import printable
from .arguments import HelpFormatter, engine_options, examples
from .common import (EXIT_FAILED, EXIT_OK, check_inputs, checked_inputs, embeddings_path, exit_status, failure, footage_of,
                     from_index, from_stored, make_classifier, make_executor, outcomes, provenance_of, record_of, say,
                     settings_of, to_stdout, validated, write_output)


def add_parsers(commands, shared) -> None:
    from ..schema import option

    probe = commands.add_parser("probe", formatter_class=HelpFormatter, help="print videos' true metadata",
                                description="Print each video's true metadata (frames that decode, fps, duration, size).",
                                epilog=examples("actionzs probe match.mp4 cam1.mkv", "actionzs probe --json footage/*.mp4 > info.json"))
    probe.add_argument("videos", nargs="+", metavar="VIDEO")
    probe.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    backend = option("backend")
    probe.add_argument("--backend", choices=backend.allowed, default=backend.default, help=backend.help)

    classify = commands.add_parser("classify", parents=[shared], formatter_class=HelpFormatter,
                                   help="rank labels for videos (and segments)",
                                   description="Rank candidate labels for each video; with --segments also per time window, with events.",
                                   epilog=examples(
                                       'actionzs classify match.mp4 -l "shooting a free throw" -l "dribbling" --segments',
                                       "actionzs classify cam1.mp4 --labels-file labels.txt --segments --start 01:00:00 --end 01:30:00 --format json -o -",
                                       'actionzs classify embeddings/cam1-3f2a9c01d4.npz -l "a person running" -l "a car parking"'))
    classify.add_argument("videos", nargs="*", metavar="VIDEO", help="video files or images (with --index: some of its files; default all)")
    classify.add_argument("--index", metavar="LIB", help="score the frames stored in this index instead of decoding the videos")
    classify.add_argument("--embeddings", metavar="DIR",
                          help="also score every .npz of stored embeddings under DIR (as --save-embeddings writes them), "
                               "with the model that made them; a VIDEO ending in .npz is read the same way")
    classify.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table", help="output format")
    classify.add_argument("-o", "--output", metavar="FILE", help="write here (atomically); - or none: stdout")

    scan = commands.add_parser("scan", parents=[shared], formatter_class=HelpFormatter,
                               help="classify every video under folders into a JSONL file",
                               description="Classify every video under folders or globs; one JSON line per video. "
                                           "A video that fails becomes an error record and the scan goes on.",
                               epilog=examples("actionzs scan /archive/cam3 --labels-file labels.txt -o cam3.jsonl --segments",
                                               "actionzs scan /archive/cam3 --labels-file labels.txt -o cam3.jsonl --segments --resume",
                                               "actionzs scan 'footage/**/*.mkv' --config surveillance -o - | jq .video"))
    scan.add_argument("inputs", nargs="*", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    scan.add_argument("--index", metavar="LIB", help="score every file stored in this index instead of decoding videos")
    scan.add_argument("-o", "--output", required=True, metavar="FILE", help="results, one JSON line per video")
    scan.add_argument("--resume", action="store_true",
                      help="continue into an existing output: skip videos with a record, retry failed ones; refused "
                           "(exit 2) when its records were made with other labels, model, sampling, windows, events or templates")
    scan.add_argument("--force-settings", action="store_true",
                      help="with --resume, continue even into records made with other settings (each record keeps its own)")
    engine_options(scan)

    report = commands.add_parser(
        "report", parents=[shared], formatter_class=HelpFormatter,
        help="write self-contained HTML reports: one video's, or a scan's or a library's with an index page",
        description="Write HTML pages that open from disk with no network: a video player, a zoomable timeline of "
                    "every label with the threshold and events, a filmstrip, events by label with a filter. "
                    "VIDEO -o FILE.html classifies one video into one page; SCAN.jsonl -o DIR draws a scan's "
                    "records (scanned with --segments for a timeline) into DIR/index.html and a page per video, "
                    "with no model; --index LIB -o DIR scores the index's stored frames with the labels first. "
                    "The player links to each video by a path relative to the page.",
        epilog=examples("actionzs report match.mp4 --labels-file plays.txt -o match.html",
                        'actionzs report cam1.mp4 -l "a person climbing a fence" --start 00:10:00 --end 00:20:00 -o cam1.html',
                        "actionzs report results.jsonl -o reports/"))
    report.add_argument("source", nargs="?", metavar="VIDEO|SCAN.jsonl",
                        help="a video to classify, or a scan's results (.jsonl) to draw")
    report.add_argument("--index", metavar="LIB", help="score every file stored in this index and report them all")
    report.add_argument("-o", "--output", required=True, metavar="FILE|DIR",
                        help="the HTML file to write (VIDEO; - for standard output), or the folder for index.html and the "
                             "pages (SCAN.jsonl, --index)")


def cmd_probe(args) -> int:
    from ..output import hms, render
    from ..stream import DECODE_TIMEOUT, bounded_call
    from ..video import open_video

    records, failed = [], 0
    for path in args.videos:
        try:
            with bounded_call(lambda: open_video(path, args.backend), path, DECODE_TIMEOUT) as video:
                info = video.info()
            # "video" names the file as in every other record (classify, scan, errors); "path", its
            # old name here, stays for the scripts that read it.
            records.append({"video": info["path"], **info})
        except ActionzsError as exc:
            records.append(failure(path, exc))
            failed += 1
    if args.json:
        sys.stdout.write(render(records, "json"))
    else:
        rows = [("video", "backend", "frames", "fps", "duration", "size", "keyframes")]
        rows += [
            (printable(r["video"]), r["backend"], str(r["num_frames"]), f"{r['fps']:.3f}", hms(r["duration"]),
             f"{r['width']}x{r['height']}", _keyframes(r))
            for r in records if "error" not in r
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_FAILED if failed else EXIT_OK


def _keyframes(record: dict) -> str:
    """A probe record's keyframes for the table: "30, every 2.000 s" (the median interval), "-" unknown."""
    if record["keyframes"] is None:
        return "-"
    interval = record["keyframe_interval_seconds"]
    return str(record["keyframes"]) + ("" if interval is None else f", every {interval:.3f} s")


def cmd_classify(args) -> int:
    from ..embed import source_name
    from ..output import render
    from ..provenance import settings_block, stamped

    # Inputs are looked at before any model loads: a folder is refused, a missing file fails alone.
    inputs = [] if args.index else checked_inputs(args.videos, args.embeddings)
    forced = from_index(args) or from_stored(args, inputs)
    settings, labels, run = validated(args, **forced)
    records = [failure(name, item) if isinstance(item, Exception) else None for name, item in inputs]
    invalid = any(isinstance(item, InvalidInputError) for _, item in inputs)
    todo = [k for k, record in enumerate(records) if record is None]
    made_with = settings_block(labels, run, settings["model"], None)  # while no model is loaded
    if todo or args.index:
        classifier = make_classifier(settings, run)
        made_with = provenance_of(classifier, labels, run)
        sources = args.videos if args.index else [inputs[k][1] for k in todo]
        with footage_of(args, classifier, sources, run) as footage:
            for position, (video, outcome) in enumerate(outcomes(args, classifier, labels, sources)):
                invalid = invalid or isinstance(outcome, InvalidInputError)
                name = video if args.index else inputs[todo[position]][0]
                record = record_of(name, outcome, args.save_embeddings, made_with)
                footage.finished(source_name(video), None if "error" in record else record["duration"])
                if args.index:
                    records.append(record)
                else:
                    records[todo[position]] = record
    records = [record if "schema_version" in record else stamped(record, made_with) for record in records]  # early failures
    write_output(args.output, render(records, args.format))
    return exit_status(any("error" in r for r in records), invalid)


def cmd_scan(args) -> int:
    from ..provenance import settings_block
    from ..scan import ResultsLog, find_videos

    if args.force_settings and not args.resume:
        raise InvalidInputError("--force-settings goes with --resume")
    settings, labels, run = validated(args, **from_index(args))
    if args.index:
        from ..library.store import LibraryStore

        with LibraryStore(args.index) as store:
            videos = [os.fspath(store.root / f.path) for f in store.files()]
        if args.inputs:
            raise InvalidInputError("give folders to scan or --index LIB, not both")
    else:
        check_inputs(args.inputs)
        videos, problems = find_videos(args.inputs)
        for problem in problems:
            say(f"warning: {problem}")
    if not videos:
        raise InvalidInputError(f"no videos found in {', '.join(args.inputs) or args.index}")
    if to_stdout(args.output) and args.resume:
        raise InvalidInputError("--resume reads the results back from a file: give -o FILE, not -o -")
    executor = None if args.index else make_executor(args, settings)
    expected = None if args.force_settings else settings_block(labels, run, settings["model"], None)  # all but the weights
    try:
        try:
            results = StdoutResults() if to_stdout(args.output) else ResultsLog(args.output, args.resume, expected)
        except FileExistsError as exc:
            raise InvalidInputError(str(exc)) from None
        return _scan(args, results, videos, settings, labels, run, executor)
    finally:
        if executor is not None:
            executor.close()


class StdoutResults:
    """A scan's records as JSON lines on standard output (`-o -`), each written whole and flushed."""

    done: frozenset[str] = frozenset()

    def check_settings(self, settings: dict) -> None:
        """Nothing to check: no records are read back (there is no --resume with -o -)."""

    def write(self, record: dict) -> None:
        from ..output import json_line

        sys.stdout.write(json_line(record))
        sys.stdout.flush()

    def __enter__(self) -> StdoutResults:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _scan(args, results, videos: list[str], settings: dict, labels, run, executor) -> int:
    with results:
        todo = [v for v in videos if v not in results.done]
        if not todo:
            say(f"nothing to do: all {len(videos)} videos are already in {args.output}")
            return EXIT_OK
        classifier = make_classifier(settings, run, executor)
        made_with = provenance_of(classifier, labels, run)
        if not args.force_settings:
            results.check_settings(made_with)  # the model's weights too, now that they are loaded
        ok = failed = 0
        invalid = False
        footage_seconds = 0.0
        with footage_of(args, classifier, todo, run) as footage:
            for video, outcome in outcomes(args, classifier, labels, todo):
                invalid = invalid or isinstance(outcome, InvalidInputError)
                record = record_of(video, outcome, args.save_embeddings, made_with)
                results.write(record)
                footage.finished(video, None if "error" in record else record["duration"])
                if "error" in record:
                    failed += 1
                else:
                    ok += 1
                    footage_seconds += record["duration"]
    skipped = len(videos) - len(todo)
    say(
        f"scanned {len(todo)} videos ({footage_seconds:.1f} s of footage): {ok} ok, {failed} failed"
        + (f", {skipped} already done" if skipped else "") + f" -> {'stdout' if to_stdout(args.output) else args.output}"
    )
    return exit_status(failed > 0, invalid)


def cmd_report(args) -> int:
    from ..report import write_report

    if args.index or (args.source or "").lower().endswith(".jsonl"):
        return _report_folder(args)
    if not args.source:
        raise InvalidInputError("nothing to report: give a VIDEO, a scan's SCAN.jsonl or --index LIB")
    settings, labels, run = validated(args, segments=True, top_k=None)
    [(_, checked)] = checked_inputs([args.source])  # progress and input check: before the model loads
    if isinstance(checked, Exception):
        failure(args.source, checked)
        return exit_status(True, isinstance(checked, InvalidInputError))
    classifier = make_classifier(settings, run)
    try:
        with footage_of(args, classifier, [checked], run) as footage:
            result = classifier.classify_prepared(checked, labels, run)
            footage.finished(result.video, result.duration)
        if args.save_embeddings:
            result.embeddings.save(embeddings_path(args.save_embeddings, args.source))
        if to_stdout(args.output):  # the page on stdout: its player linked relative to where it is run
            from ..report import render_report, video_url

            write_output(None, render_report(result, classifier.backend, video_src=video_url(result.video, os.getcwd())))
        else:
            write_report(result, args.output, classifier.backend)  # the result says what its events were found with
    except ActionzsError as exc:
        failure(args.source, exc)
        return exit_status(True, isinstance(exc, InvalidInputError))
    if not args.quiet and not to_stdout(args.output):
        say(f"wrote {args.output}")
    return EXIT_OK


def _event_rule(settings: dict) -> dict:
    """The measure and threshold events were found with, for records that do not say so themselves
    (scans written before records carried their thresholds)."""
    return {"measure": settings["events"]["measure"], "threshold": settings["events"]["threshold"]}


def _report_folder(args) -> int:
    """A scan's records, or every file of an index scored now, as a folder of pages and index.html."""
    import argparse

    from ..report import read_records, write_reports

    if args.index and args.source:
        raise InvalidInputError("give a scan's SCAN.jsonl or --index LIB, not both")
    if args.save_embeddings:
        raise InvalidInputError("--save-embeddings applies to a single VIDEO's report")
    if to_stdout(args.output):
        raise InvalidInputError("-o -: a scan's or an index's report is a folder of pages; give -o DIR")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise InvalidInputError(f"{args.output}: is a file; give a folder for the index page and the pages")
    if args.index:
        # the output is a folder, not the file `validated` checks
        settings, labels, run = validated(argparse.Namespace(**{**vars(args), "output": None}),
                                          segments=True, top_k=None, **from_index(args))
        classifier = make_classifier(settings, run)
        backend, title = classifier.backend, args.index
        records, invalid = [], False
        for video, outcome in outcomes(args, classifier, labels, []):
            invalid = invalid or isinstance(outcome, InvalidInputError)
            records.append(record_of(video, outcome))
    else:
        settings, invalid = settings_of(args), False
        backend, title = settings["backend"], os.path.basename(args.source)
        records = read_records(args.source)
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{args.output}: cannot create the folder ({exc.strerror or exc})") from None
    from tqdm.auto import tqdm

    with tqdm(total=len(records), unit="page", file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True) as bar:
        index, listed = write_reports(records, args.output, backend, title=title, progress=bar.update,
                                      **_event_rule(settings))
    failed = sum("error" in r for r in listed)
    if not args.quiet:
        say(f"wrote {index}: {len(listed) - failed} videos, {failed} failed")
    return exit_status(bool(args.index) and failed > 0, invalid)
