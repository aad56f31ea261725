"""The `actionzs` command: probe, classify, scan, report, and a library's index and search.

Exit status: 0 when everything was read and scored, 1 when any video failed (each is reported and
the others still done), 2 for bad usage (unknown option, bad labels or settings, or settings a video
cannot be sampled with; the others are still done), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
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
    classify.add_argument("videos", nargs="*", metavar="VIDEO", help="video files or images (with --index: some of its files; default all)")
    classify.add_argument("--index", metavar="LIB", help="score the frames stored in this index instead of decoding the videos")
    classify.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table", help="output format")
    classify.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")

    scan = commands.add_parser("scan", parents=[shared], formatter_class=_HelpFormatter,
                               help="classify every video under folders into a JSONL file",
                               description="Classify every video under folders or globs; one JSON line per video. "
                                           "A video that fails becomes an error record and the scan goes on.")
    scan.add_argument("inputs", nargs="*", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    scan.add_argument("--index", metavar="LIB", help="score every file stored in this index instead of decoding videos")
    scan.add_argument("-o", "--output", required=True, metavar="FILE", help="results, one JSON line per video")
    scan.add_argument("--resume", action="store_true",
                      help="continue into an existing output: skip videos with a record, retry failed ones")
    _engine_options(scan)

    report = commands.add_parser("report", parents=[shared], formatter_class=_HelpFormatter,
                                 help="write a self-contained HTML report for one video",
                                 description="Write one self-contained HTML file: label x time heatmap, events with keyframes, clip ranking.")
    report.add_argument("video", metavar="VIDEO")
    report.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    _library_parsers(commands)
    return parser


def _library_parsers(commands) -> None:
    """`index` and `search`: a library embedded once, then searched."""
    from .schema import option

    index = commands.add_parser(
        "index", formatter_class=_HelpFormatter, help="embed a library of videos and images once, for search and re-labelling",
        description="Embed every video and image under folders or globs (frames at --fps) into an index file; a second "
                    "run embeds only new or changed files and retries failed ones. For an existing index, --model and "
                    "--fps default to those it was built with (the config's defaults are for a new one).")
    index.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB", help="folders (searched recursively), globs or files")
    index.add_argument("--index", required=True, metavar="LIB", help="the index file (made if missing); paths are stored relative to its folder")
    for name in ("model", "device", "dtype", "backend", "batch_size", "decode_workers", "fps", "keyframes"):
        index.add_argument(option(name).flag, **_flag(option(name)))
    index.add_argument("--config", metavar="CFG", help="preset name or YAML file for the options not given")
    index.add_argument("--prune", action="store_true", help="drop files that are no longer on disk")
    index.add_argument("--wait", action="store_true", help="wait for another run writing this index instead of failing")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    index.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    _engine_options(index)

    search = commands.add_parser(
        "search", formatter_class=_HelpFormatter, help="find the moments of an indexed library that match a text, an image or a moment",
        description="Rank the moments of an index by how well they match: a text, an image (--image) or a stored moment "
                    "(--like VIDEO@SECONDS). Several queries share one pass.")
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
    search.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    search.add_argument("--thumbnails", metavar="DIR", help="write the best frame of each moment as a JPEG here")
    search.add_argument("--exact", action="store_true", help="exact search over every stored frame, not the FAISS index")
    for name in ("model", "device", "dtype"):
        search.add_argument(option(name).flag, **_flag(option(name)))
    search.add_argument("--config", metavar="CFG", help="preset name or YAML file for the options not given")
    search.add_argument("--quiet", action="store_true", help="no info messages")
    search.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")


def _engine_options(parser) -> None:
    """Where the per-video step runs: here, or on Ray actors (this process still writes the output)."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="where videos are decoded and embedded: this process (local) or Ray actors (ray; "
                            'needs pip install "actionzs[ray]"); this process alone writes the output (default local)')
    group.add_argument("--ray-address", metavar="ADDR",
                       help="the Ray cluster to connect to (auto, ray://HEAD:10001, HEAD:6379); default: start a local Ray instance")
    group.add_argument("--ray-num-cpus", type=float, default=None, metavar="N",
                       help="CPUs each Ray actor reserves (default 1)")
    group.add_argument("--ray-num-gpus", type=float, default=None, metavar="N",
                       help="GPUs each Ray actor reserves; a fraction shares a GPU between actors (default 0)")
    group.add_argument("--ray-actors", type=int, default=None, metavar="N",
                       help="Ray actors, each loading the model once (default: as many as the cluster's resources "
                            "hold, at most one per video)")


def _executor(args, settings: dict):
    """The Ray engine's executor for `--engine ray` (Ray checked for before any model loads);
    None for the local engine."""
    ray_flags = [flag for flag, value in (("--ray-address", args.ray_address), ("--ray-num-cpus", args.ray_num_cpus),
                                          ("--ray-num-gpus", args.ray_num_gpus), ("--ray-actors", args.ray_actors))
                 if value is not None]
    if args.engine != "ray":
        if ray_flags:
            raise InvalidInputError(f"{', '.join(ray_flags)} needs --engine ray")
        return None
    from .ray_executor import RayExecutor, import_ray

    import_ray()
    return RayExecutor(
        args.ray_address, num_cpus=1.0 if args.ray_num_cpus is None else args.ray_num_cpus,
        num_gpus=0.0 if args.ray_num_gpus is None else args.ray_num_gpus, actors=args.ray_actors,
        decode_workers=settings["decode_workers"],
    )


# -- settings: config, then flags ----------------------------------------------------------------

def _settings(args) -> dict:
    """The config's settings with the flags that were given laid over them."""
    from .config import load_config
    from .schema import OPTIONS

    settings = load_config(args.config)
    for option in OPTIONS:
        value = getattr(args, option.name, None)
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


def _classifier(settings: dict, run, executor=None):
    from .classifier import ZeroShotVideoClassifier
    from .models import load_encoder

    encoder = load_encoder(settings["model"], settings["device"], settings["dtype"])
    # The model's objects live as long as the command: out of the collector's sight, they no longer
    # make each collection walk them (that took ~40 % of re-labelling stored frames).
    gc.freeze()
    return ZeroShotVideoClassifier(
        encoder, run, batch_size=settings["batch_size"], backend=settings["backend"], decode_workers=settings["decode_workers"],
        executor=executor,
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


def _from_index(args) -> dict:
    """With --index: what the index fixes (its model unless --model is given, its fps, every
    stored frame for a clip score), checked against the flags given."""
    if not args.index:
        if not getattr(args, "videos", None) and not getattr(args, "inputs", None):
            raise InvalidInputError("no videos: name some, or give --index LIB to score an index's files")
        return {}
    from .library.store import LibraryStore

    with LibraryStore(args.index) as store:
        built = store.settings()
    if not built:
        raise InvalidInputError(f"{args.index}: the index holds no files yet; add some with `actionzs index`")
    sampling = built["sampling"]
    held = "keyframes" if sampling.get("keyframes") else f"frames at {sampling['fps']:g} per second"
    if args.num_frames is not None:
        raise InvalidInputError(f"--num-frames needs the videos: {args.index} holds {held}")
    if args.fps is not None and args.fps != sampling.get("fps"):
        raise InvalidInputError(f"{args.index}: the index holds {held}, not --fps {args.fps:g}")
    if args.keyframes is not None and args.keyframes != bool(sampling.get("keyframes")):
        raise InvalidInputError(f"{args.index}: the index holds {held}, not {'' if args.keyframes else 'no '}keyframes")
    forced = {"num_frames": None, "keyframes": bool(sampling.get("keyframes"))}
    forced.update({"fps": sampling["fps"]} if "fps" in sampling else {})
    return {**forced, **({} if args.model else {"model": built["model"]})}


def _outcomes(args, classifier, labels, videos: list[str]):
    """(video, result or error) of classifying `videos`, or with --index of the index's files."""
    if not args.index:
        return classifier.classify_each(videos, labels)
    from .library import Library

    return Library(args.index, classifier=classifier).classify(labels, videos or None)


def cmd_classify(args) -> int:
    from .atomic import atomic_write
    from .output import render

    settings, labels, run = _validated(args, **_from_index(args))
    classifier = _classifier(settings, run)
    records, invalid = [], False
    for video, outcome in _outcomes(args, classifier, labels, args.videos):
        invalid = invalid or isinstance(outcome, InvalidInputError)
        records.append(_record(video, outcome, args.save_embeddings))
    text = render(records, args.format)
    if args.output:
        atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return _exit_status(any("error" in r for r in records), invalid)


def cmd_scan(args) -> int:
    from .scan import ResultsLog, find_videos

    settings, labels, run = _validated(args, **_from_index(args))
    if args.index:
        from .library.store import LibraryStore

        with LibraryStore(args.index) as store:
            videos = [os.fspath(store.root / f.path) for f in store.files()]
        if args.inputs:
            raise InvalidInputError("give folders to scan or --index LIB, not both")
    else:
        videos, problems = find_videos(args.inputs)
        for problem in problems:
            _say(f"warning: {problem}")
    if not videos:
        raise InvalidInputError(f"no videos found in {', '.join(args.inputs) or args.index}")
    executor = None if args.index else _executor(args, settings)
    try:
        results = ResultsLog(args.output, args.resume)
    except FileExistsError as exc:
        raise InvalidInputError(str(exc)) from None
    try:
        return _scan(args, results, videos, settings, labels, run, executor)
    finally:
        if executor is not None:
            executor.close()


def _scan(args, results, videos: list[str], settings: dict, labels, run, executor) -> int:
    from tqdm.auto import tqdm

    with results:
        todo = [v for v in videos if v not in results.done]
        if not todo:
            _say(f"nothing to do: all {len(videos)} videos are already in {args.output}")
            return EXIT_OK
        classifier = _classifier(settings, run, executor)
        ok = failed = 0
        invalid = False
        footage, started = 0.0, time.monotonic()
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True)
        with bar:
            for video, outcome in _outcomes(args, classifier, labels, todo):
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


def cmd_index(args) -> int:
    from .schema import option

    settings = _settings(args)
    for name in ("backend", "batch_size", "decode_workers", "device", "dtype", "fps", "model"):
        option(name).check(settings[name])
    executor = _executor(args, settings)
    try:
        return _index(args, settings, executor)
    finally:
        if executor is not None:
            executor.close()


def _index(args, settings: dict, executor) -> int:
    from tqdm.auto import tqdm

    from .library import Library
    from .video import header_seconds

    new = not os.path.exists(args.index)
    library = Library(
        args.index, args.model or (settings["model"] if new else None), fps=args.fps or (settings["fps"] if new else None),
        keyframes=args.keyframes if args.keyframes is not None else (settings["keyframes"] if new else None),
        backend=settings["backend"], decode_workers=settings["decode_workers"], batch_size=settings["batch_size"],
        device=settings["device"], dtype=settings["dtype"], executor=executor,
    )
    bar = tqdm(total=0, unit="s", unit_scale=True, file=sys.stderr, disable=args.quiet or None, dynamic_ncols=True,
               desc="footage", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}] {postfix}")
    expected: dict[str, float] = {}

    def planned(update) -> None:
        expected.update({path: header_seconds(path) for path, _ in update.embed})
        bar.reset(total=sum(expected.values()) or None)
        bar.set_postfix_str(f"{len(update.embed)} files to embed, {update.unchanged} unchanged")

    def progress(path: str, seconds: float, error: str | None) -> None:
        if error is not None:
            bar.write(printable(f"error: {path}: {error}"), file=sys.stderr)
        bar.update(expected.get(path, seconds))

    with bar:
        report = library.add(args.inputs, prune=args.prune, wait=args.wait, progress=progress, planned=planned)
    for path, reason in report.failed.items():
        if path not in expected:  # not reported as it happened: could not even be looked at
            _say(f"error: {path}: {reason}")
    if not args.quiet:
        gone = f", {report.pruned} pruned" if report.pruned else f", {report.gone} gone from disk (--prune drops them)" if report.gone else ""
        _say(
            f"indexed {len(report.embedded)} files ({report.footage_seconds:.1f} s of footage), {report.unchanged} unchanged, "
            f"{report.moved} moved, {report.copied} copied, {len(report.failed)} failed{gone} -> {args.index}"
        )
    return EXIT_FAILED if report.failed else EXIT_OK


def _moment_query(text: str):
    """A --like VIDEO@SECONDS as a query."""
    from .library import Query

    video, sep, seconds = text.rpartition("@")
    try:
        value = float(seconds)
    except ValueError:
        value = float("nan")
    if not sep or not video or not value == value:
        raise InvalidInputError(f"--like {text!r}: give VIDEO@SECONDS, e.g. cam1.mp4@12.5")
    return Query(like=(video, value))


def cmd_search(args) -> int:
    from .atomic import atomic_write
    from .library import Library, Query
    from .output import render_moments
    from .schema import option

    settings = _settings(args)
    queries = [Query(text=t) for t in ([args.text] if args.text is not None else []) + args.queries]
    queries += [Query(image=path) for path in args.images] + [_moment_query(text) for text in args.like]
    if not queries:
        raise InvalidInputError("nothing to search for: give a TEXT, -q TEXT, --image FILE or --like VIDEO@SECONDS")
    if args.top < 1:
        raise InvalidInputError(f"--top must be at least 1, got {args.top}")
    _check_output(args.output)
    _make_folder(args.thumbnails)
    option("hypothesis_template").check(settings["hypothesis_template"])
    library = Library(args.index, args.model, device=settings["device"], dtype=settings["dtype"])
    found = library.search(queries, top_k=args.top, window_seconds=args.window, videos=args.video,
                           hypothesis_template=settings["hypothesis_template"], exact=args.exact)
    records = []
    for number, moments in enumerate(found, 1):
        for rank, moment in enumerate(moments, 1):
            if args.thumbnails:
                name = f"q{number}-{rank:03d}-{Path(moment.video).stem[:60]}-{moment.frame_seconds:.1f}s.jpg"
                moment = library.thumbnail(moment, Path(args.thumbnails) / name)
            records.append({**moment.to_dict(), "rank": rank})
    text = render_moments(records, args.format)
    if args.output:
        atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS = {"probe": cmd_probe, "classify": cmd_classify, "scan": cmd_scan, "report": cmd_report,
            "index": cmd_index, "search": cmd_search}


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
        gc.unfreeze()  # what `_classifier` froze, back in the collector's sight for a caller that goes on
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
