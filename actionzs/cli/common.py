"""What the commands share: settings from the config and flags, checked before a model loads; the
classifier; one record per video (a result or its error); messages for the person at the terminal."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ActionzsError, InvalidInputError
from ..output import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("actionzs")


def say(message: str) -> None:
    """One line for the person at the terminal, on stderr (above any progress bar): names and
    reasons in it come from files and users, so their control characters are shown escaped, never
    sent raw."""
    from .progress import write_line

    write_line(printable(message))


def make_executor(args, settings: dict):
    """The Ray engine's executor for `--engine ray` (Ray checked for before any model loads);
    None for the local engine."""
    ray_flags = [flag for flag, value in (("--ray-address", args.ray_address), ("--ray-num-cpus", args.ray_num_cpus),
                                          ("--ray-num-gpus", args.ray_num_gpus), ("--ray-actors", args.ray_actors))
                 if value is not None]
    if args.engine != "ray":
        if ray_flags:
            raise InvalidInputError(f"{', '.join(ray_flags)} needs --engine ray")
        return None
    from ..ray_executor import RayExecutor, import_ray

    import_ray()
    return RayExecutor(
        args.ray_address, num_cpus=1.0 if args.ray_num_cpus is None else args.ray_num_cpus,
        num_gpus=0.0 if args.ray_num_gpus is None else args.ray_num_gpus, actors=args.ray_actors,
        decode_workers=settings["decode_workers"],
    )


def settings_of(args) -> dict:
    """The config's settings with the flags that were given laid over them."""
    from ..config import load_config
    from ..schema import OPTIONS

    settings = load_config(args.config)
    for option in OPTIONS:
        value = getattr(args, option.name, None)
        if value is not None:
            option.section(settings)[option.name] = None if value == option.flag_none else value
    return settings


def labels_of(args, settings: dict):
    from ..prompts import parse_labels, read_labels_file

    if args.labels and args.labels_file:
        raise InvalidInputError("give labels with -l/--label or --labels-file, not both")
    if args.labels:
        return parse_labels(args.labels)
    if not settings["labels_file"]:
        raise InvalidInputError("no labels: give -l LABEL (repeatable) or --labels-file FILE")
    return read_labels_file(settings["labels_file"])


def validated(args, **forced):
    """(settings, labels, run options), all checked before any output is touched or model loaded."""
    from ..options import RunOptions
    from ..prompts import check_prompts
    from ..schema import options_of

    settings = {**settings_of(args), **forced}
    labels = labels_of(args, settings)
    # An option a config file does not set (one newer than the file) has default.yaml's value, the Python API's default.
    run = RunOptions(**{o.name: settings[o.name] for o in options_of("sampling")}, events=settings["events"])
    check_prompts(labels, run.hypothesis_template)
    for option in options_of("loading"):
        option.check(settings[option.name])
    check_output(getattr(args, "output", None))
    make_folder(args.save_embeddings)
    return settings, labels, run


def to_stdout(path: str | None) -> bool:
    """Whether an output goes to standard output: no -o, or `-o -`."""
    return not path or path == "-"


def write_output(path: str | None, text: str) -> None:
    """The whole output to the file `path` (atomically), or to standard output for None or "-"."""
    if to_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from ..atomic import atomic_write

        atomic_write(path, text)


def check_output(path: str | None) -> None:
    """An output path must be a file (new or existing) in a folder that exists; "-" is stdout."""
    if to_stdout(path):
        return
    if os.path.isdir(path):
        raise InvalidInputError(f"{path}: is a directory; give a file name for the output")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"{path}: the folder {folder} is not writable")


def check_inputs(inputs: list[str], images: bool = False) -> None:
    """A folder or file to scan or index that does not exist is bad usage, said before any output
    file is made or model loaded; a missing video (or, with `images`, image) named among others,
    told by its extension, gets an error record of its own."""
    import glob

    from ..video import IMAGE_SUFFIXES, video_suffixes

    suffixes = video_suffixes() | (IMAGE_SUFFIXES if images else frozenset())
    for item in inputs:
        if not glob.has_magic(item) and not os.path.lexists(item) and os.path.splitext(item)[1].lower() not in suffixes:
            raise InvalidInputError(f"{item}: no such folder or file")


def make_classifier(settings: dict, run, executor=None):
    from ..classifier import ZeroShotVideoClassifier
    from ..models import load_encoder

    encoder = load_encoder(settings["model"], settings["device"], settings["dtype"])
    # The model's objects live as long as the command: out of the collector's sight, they no longer
    # make each collection walk them (that took ~40 % of re-labelling stored frames).
    gc.freeze()
    return ZeroShotVideoClassifier(
        encoder, run, batch_size=settings["batch_size"], backend=settings["backend"], decode_workers=settings["decode_workers"],
        executor=executor,
    )


def checked_inputs(paths: list[str], embeddings_folder: str | None = None) -> list[tuple[str, object]]:
    """(name, what to classify) for each input, looked at before any model loads: a video's path as
    given, stored embeddings (`.npz`, and each `.npz` under `embeddings_folder`) loaded, and the
    error of a file that is missing, unreadable or a folder (a failure of its own, pointing at
    `scan`, the command for folders; the others go on)."""
    from ..embeddings import load_embeddings
    from ..errors import VideoDecodeError
    from ..video import check_path

    if embeddings_folder is not None:
        if not os.path.isdir(embeddings_folder):
            raise InvalidInputError(f"--embeddings {embeddings_folder}: no such folder")
        stored = sorted(str(p) for p in Path(embeddings_folder).rglob("*.npz") if p.is_file())
        if not stored:
            raise InvalidInputError(f"--embeddings {embeddings_folder}: holds no .npz files")
        paths = [*paths, *stored]
    checked = []
    for path in paths:
        try:
            if os.path.isdir(path):
                raise VideoDecodeError(path, (
                    f"is a directory, not a video file; `actionzs scan {path} -o results.jsonl ...` classifies the videos "
                    "under a folder" + ("" if embeddings_folder else ", `--embeddings DIR` the stored embeddings in one")))
            if path.lower().endswith(".npz"):
                checked.append((path, load_embeddings(path)))
                continue
            check_path(path)
            checked.append((path, path))
        except ActionzsError as exc:
            checked.append((path, exc))
    return checked


@contextmanager
def footage_of(args, classifier, sources: list, run) -> Iterator:
    """Progress in seconds of footage while `classifier` works through `sources` (as the command
    was asked: `--quiet`, `--[no-]progress`; nothing with `--index`, whose frames are scored, not
    decoded), fed by the classifier's progress hook. Yields the `Footage`, for the command to say
    when a video is done."""
    from .progress import Footage, shows_progress

    decoded = not getattr(args, "index", None)
    with Footage(show=decoded and shows_progress(args), part=(run.start, run.end)) as footage:
        footage.expect(expected_footage(sources if decoded else [], footage.shown))
        classifier.progress = footage
        try:
            yield footage
        finally:
            classifier.progress = None


def expected_footage(items: list, read: bool = True) -> list[tuple[str, float]]:
    """(name, seconds) of each input as far as it is known before decoding: a container's header
    for a video (0 when it says nothing, or without `read`: a header costs ~8 ms to open), the
    stored duration for embeddings; named as the classifier's progress hook names them (stored
    embeddings by the video they were made from)."""
    from ..embed import source_name
    from ..embeddings import StoredEmbeddings
    from ..video import header_seconds

    def seconds(item) -> float:
        if isinstance(item, StoredEmbeddings):
            return float(item.duration)
        return header_seconds(item) if read else 0.0

    return [(source_name(item), seconds(item)) for item in items]


def from_stored(args, inputs: list[tuple[str, object]]) -> dict:
    """What stored embeddings among `inputs` fix: the model that made them, unless --model is given
    (one model per run), and the part of each video (so no --start/--end)."""
    from ..embeddings import StoredEmbeddings

    models = {item.fingerprint: item.model for _, item in inputs if isinstance(item, StoredEmbeddings)}
    if models and (args.start is not None or args.end is not None):
        raise InvalidInputError("--start/--end choose the frames embedded; stored embeddings keep the part they were made of")
    if args.model or not models:
        return {}
    if len(models) > 1:
        raise InvalidInputError(
            f"the embeddings were made by {len(models)} models ({', '.join(sorted(set(models.values())))}); "
            "score each model's embeddings in a run of its own"
        )
    return {"model": next(iter(models.values()))}


def make_folder(folder: str | None) -> None:
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"{folder}: cannot create the embeddings folder ({exc.strerror or exc})") from None


def failure(video: str, exc: Exception) -> dict:
    if isinstance(exc, ActionzsError):
        reason = getattr(exc, "reason", None) or str(exc)
    else:  # unexpected: keep going, but say what it was
        log.debug("unexpected error on %s", video, exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
    say(f"error: {video}: {reason}")
    return {"video": video, "error": reason}


def exit_status(failed: bool, invalid: bool) -> int:
    """2 when a video was refused for its options (more windows or frames than its length allows),
    else 1 when any video failed, else 0."""
    return EXIT_USAGE if invalid else EXIT_FAILED if failed else EXIT_OK


def embeddings_path(folder: str, video: str) -> Path:
    """<folder>/<video name>-<hash of its full path>.npz: unique per video, readable by a person."""
    digest = hashlib.sha1(os.path.abspath(video).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return Path(folder) / f"{Path(video).stem[:80]}-{digest}.npz"


def record_of(video: str, outcome, embeddings_dir: str | None = None, settings: dict | None = None) -> dict:
    """The output record of one video: its result (embeddings saved if asked), or its error, with
    the schema version and `settings` (a `provenance.settings_block`) that made it."""
    from ..provenance import stamped

    try:
        if isinstance(outcome, Exception):
            raise outcome
        record = outcome.to_dict()
        if embeddings_dir:
            path = embeddings_path(embeddings_dir, video)
            outcome.embeddings.save(path)
            record["embeddings"] = str(path)
    except Exception as exc:  # this video failed; the batch goes on
        record = failure(video, exc)
    return stamped(record, settings)


def provenance_of(classifier, labels, run) -> dict:
    """The settings block of this run's records (see `provenance`), and, once, the warning that a
    single label under a softmax head always scores 1."""
    from ..prompts import single_label_warning
    from ..provenance import settings_block

    warning = single_label_warning(labels, classifier.encoder.head, run)
    if warning:
        say(f"warning: {warning}")
    return settings_block(labels, run, classifier.model, classifier.encoder.fingerprint)


def from_index(args) -> dict:
    """With --index: what the index fixes (its model unless --model is given, its fps, every
    stored frame for a clip score), checked against the flags given."""
    if not args.index:
        if not any(getattr(args, name, None) for name in ("videos", "inputs", "embeddings")):
            raise InvalidInputError("no videos: name some, or give --index LIB to score an index's files")
        return {}
    from ..library.store import LibraryStore

    with LibraryStore(args.index) as store:
        built = store.settings()
    if not built:
        raise InvalidInputError(f"{args.index}: the index holds no files yet; add some with `actionzs index`")
    sampling = built["sampling"]
    snap = float(sampling.get("snap_to_keyframes", 0.0))
    held = "keyframes" if sampling.get("keyframes") else f"frames at {sampling['fps']:g} per second" + (
        f" snapped to keyframes within {snap:g} s" if snap else "")
    if args.num_frames is not None:
        raise InvalidInputError(f"--num-frames needs the videos: {args.index} holds {held}")
    if args.fps is not None and args.fps != sampling.get("fps"):
        raise InvalidInputError(f"{args.index}: the index holds {held}, not --fps {args.fps:g}")
    if args.keyframes is not None and args.keyframes != bool(sampling.get("keyframes")):
        raise InvalidInputError(f"{args.index}: the index holds {held}, not {'' if args.keyframes else 'no '}keyframes")
    if args.snap_to_keyframes is not None and args.snap_to_keyframes != snap:
        raise InvalidInputError(f"{args.index}: the index holds {held}, not --snap-to-keyframes {args.snap_to_keyframes:g}")
    if getattr(args, "start", None) is not None or getattr(args, "end", None) is not None:
        raise InvalidInputError(f"--start/--end choose the frames embedded; {args.index} holds whole files")
    forced = {"num_frames": None, "keyframes": bool(sampling.get("keyframes")), "snap_to_keyframes": snap}
    forced.update({"fps": sampling["fps"]} if "fps" in sampling else {})
    return {**forced, **({} if args.model else {"model": built["model"]})}


def outcomes(args, classifier, labels, videos: list[str]):
    """(video, result or error) of classifying `videos`, or with --index of the index's files."""
    if not args.index:
        return classifier.classify_each(videos, labels)
    from ..library import Library

    return Library(args.index, classifier=classifier).classify(labels, videos or None)

