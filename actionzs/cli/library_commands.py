"""index and search: a library embedded once, then searched and re-labelled."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInputError
from .arguments import HelpFormatter, engine_options, examples, flag_of, progress_option
from .common import (EXIT_FAILED, EXIT_OK, check_inputs, check_output, expected_footage, make_executor, make_folder, say,
                     settings_of, write_output)
from .progress import Footage, shows_progress


def add_parsers(commands) -> None:
    """`index` and `search`: a library embedded once, then searched."""
    from ..schema import option

    index = commands.add_parser(
        "index", formatter_class=HelpFormatter, help="embed a library of videos and images once, for search and re-labelling",
        description="Embed every video and image under folders or globs (frames at --fps) into an index file; a second "
                    "run embeds only new or changed files and retries failed ones. For an existing index, --model and "
                    "--fps default to those it was built with (the config's defaults are for a new one).",
        epilog=examples("actionzs index /data/footage --index /data/footage/lib.actionzs",
                        "actionzs index /data/footage --index /data/footage/lib.actionzs --prune   # later: only what changed"))
    index.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    index.add_argument("--index", required=True, metavar="LIB", help="the index file (made if missing); paths are stored relative to its folder")
    for name in ("model", "device", "dtype", "backend", "batch_size", "decode_workers", "fps", "keyframes", "snap_to_keyframes"):
        index.add_argument(option(name).flag, **flag_of(option(name)))
    index.add_argument("--config", metavar="CFG", help="preset name or YAML file for the options not given")
    index.add_argument("--prune", action="store_true", help="drop files that are no longer on disk")
    index.add_argument("--wait", action="store_true", help="wait for another run writing this index instead of failing")
    progress_option(index)
    index.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    index.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    engine_options(index)

    search = commands.add_parser(
        "search", formatter_class=HelpFormatter, help="find the moments of an indexed library that match a text, an image or a moment",
        description="Rank the moments of an index by how well they match: a text, an image (--image) or a stored moment "
                    "(--like VIDEO@SECONDS). Several queries share one pass.",
        epilog=examples('actionzs search "a person climbing a fence" --index lib.actionzs --top 10',
                        "actionzs search --like cam1.mp4@754.5 --image suspect.jpg --index lib.actionzs --format json -o -"))
    search.add_argument("text", nargs="?", metavar="TEXT", help="what to look for, in words")
    search.add_argument("--index", required=True, metavar="LIB", help="the index file")
    search.add_argument("-q", "--query", dest="queries", action="append", default=[], metavar="TEXT", help="another text query; repeatable")
    search.add_argument("--image", dest="images", action="append", default=[], metavar="FILE", help="an image to find moments like; repeatable")
    search.add_argument("--like", action="append", default=[], metavar="VIDEO@SECONDS",
                        help="a moment of an indexed video to find more like; repeatable")
    search.add_argument("--top", type=int, default=20, metavar="N", help="moments per query (default 20)")
    search.add_argument("--window", type=float, default=2.0, metavar="S",
                        help="hits of one video less than S seconds apart are one moment (default 2)")
    search.add_argument("--video", metavar="GLOB", help="search only the files whose stored path matches this glob")
    search.add_argument("--template", dest="hypothesis_template", action="append", metavar="T",
                        help="prompt template for text queries (repeat for an ensemble; default from the config)")
    search.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table", help="output format")
    search.add_argument("-o", "--output", metavar="FILE", help="write here (atomically); - or none: stdout")
    search.add_argument("--thumbnails", metavar="DIR", help="write the best frame of each moment as a JPEG here")
    search.add_argument("--exact", action="store_true", help="exact search over every stored frame, not the FAISS index")
    search.add_argument(option("thresholds").flag, **{**flag_of(option("thresholds")), "help": (
        "a file from `actionzs calibrate`: a text query named like a label in it keeps only the moments whose "
        "similarity (or score, for a file on scores) reaches that label's threshold")})
    for name in ("model", "device", "dtype"):
        search.add_argument(option(name).flag, **flag_of(option(name)))
    search.add_argument("--config", metavar="CFG", help="preset name or YAML file for the options not given")
    search.add_argument("--quiet", action="store_true", help="no info messages")
    search.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")


def cmd_index(args) -> int:
    from ..options import RunOptions
    from ..schema import option

    settings = settings_of(args)
    for name in ("backend", "batch_size", "decode_workers", "device", "dtype", "model"):
        option(name).check(settings[name])
    built = _built_as(args, settings)
    # Sampling a run cannot take is refused now, not after the model has loaded.
    RunOptions(**{name: value for name, value in built.items() if name != "model" and value is not None})
    check_inputs(args.inputs, images=True)
    executor = make_executor(args, settings)
    try:
        return _index(args, settings, built, executor)
    finally:
        if executor is not None:
            executor.close()


def _built_as(args, settings: dict) -> dict:
    """The model, fps, keyframes and snap_to_keyframes to build the index with: as given, else the
    config's for a new index and None (what the index was built with) for an existing one."""
    new = not os.path.exists(args.index)
    return {name: getattr(args, name) if getattr(args, name) is not None else (settings[name] if new else None)
            for name in ("model", "fps", "keyframes", "snap_to_keyframes")}


def _index(args, settings: dict, built: dict, executor) -> int:
    from ..library import Library

    library = Library(
        args.index, **built,
        backend=settings["backend"], decode_workers=settings["decode_workers"], batch_size=settings["batch_size"],
        device=settings["device"], dtype=settings["dtype"], executor=executor,
    )
    footage = Footage(show=shows_progress(args))
    planned_paths: set[str] = set()

    def planned(update) -> None:
        library.classifier.progress = footage  # loaded by now: the model is what the plan was checked against
        planned_paths.update(path for path, _ in update.embed)
        footage.expect(expected_footage([path for path, _ in update.embed], footage.shown))

    def progress(path: str, seconds: float, error: str | None) -> None:
        if error is not None:
            say(f"error: {path}: {error}")
        footage.finished(path, None if error is not None else seconds)

    with footage:
        report = library.add(args.inputs, prune=args.prune, wait=args.wait, progress=progress, planned=planned)
    for path, reason in report.failed.items():
        if path not in planned_paths:  # not reported as it happened: could not even be looked at
            say(f"error: {path}: {reason}")
    if not args.quiet:
        gone = f", {report.pruned} pruned" if report.pruned else f", {report.gone} gone from disk (--prune drops them)" if report.gone else ""
        say(
            f"indexed {len(report.embedded)} files ({report.footage_seconds:.1f} s of footage), {report.unchanged} unchanged, "
            f"{report.moved} moved, {report.copied} copied, {len(report.failed)} failed{gone} -> {args.index}"
        )
    return EXIT_FAILED if report.failed else EXIT_OK


def _moment_query(text: str):
    """A --like VIDEO@SECONDS as a query."""
    from ..library import Query

    video, sep, seconds = text.rpartition("@")
    try:
        value = float(seconds)
    except ValueError:
        value = float("nan")
    if not sep or not video or not value == value:
        raise InvalidInputError(f"--like {text!r}: give VIDEO@SECONDS, e.g. cam1.mp4@12.5")
    return Query(like=(video, value))


def cmd_search(args) -> int:
    texts = ([args.text] if args.text is not None else []) + args.queries
    if not (texts or args.images or args.like):  # said before the imports a search needs (seconds of them)
        raise InvalidInputError("nothing to search for: give a TEXT, -q TEXT, --image FILE or --like VIDEO@SECONDS")
    if args.top < 1:
        raise InvalidInputError(f"--top must be at least 1, got {args.top}")
    from ..calibration import read_thresholds
    from ..library import Library, Query
    from ..output import render_moments
    from ..schema import option

    settings = settings_of(args)
    queries = [Query(text=t) for t in texts]
    queries += [Query(image=path) for path in args.images] + [_moment_query(text) for text in args.like]
    check_output(args.output)
    make_folder(args.thumbnails)
    templates = option("hypothesis_template").check(settings["hypothesis_template"])
    calibrated = read_thresholds(args.thresholds) if args.thresholds else None
    library = Library(args.index, args.model, device=settings["device"], dtype=settings["dtype"])
    found = library.search(queries, top_k=args.top, window_seconds=args.window, videos=args.video,
                           hypothesis_template=settings["hypothesis_template"], exact=args.exact)
    if calibrated is not None:
        found = calibrated.kept_moments(library.classifier.encoder, queries, found, templates)
    records = []
    for number, moments in enumerate(found, 1):
        for rank, moment in enumerate(moments, 1):
            if args.thumbnails:
                name = f"q{number}-{rank:03d}-{Path(moment.video).stem[:60]}-{moment.frame_seconds:.1f}s.jpg"
                moment = library.thumbnail(moment, Path(args.thumbnails) / name)
            records.append({**moment.to_dict(), "rank": rank})
    write_output(args.output, render_moments(records, args.format))
    return EXIT_OK

