"""eval: how accurate a model and its prompts are on labelled footage. Trimmed clips (a dataset in
one of four layouts) give top-1, top-5, mean class accuracy, per-class accuracy, a confusion matrix
and a prompt ablation; untrimmed videos with `--annotations` give temporal mAP (THUMOS14's tIoU
0.3-0.7) and event-level precision, recall and F1."""

from __future__ import annotations

import json
import math
import os

from ..errors import InvalidInputError
from .arguments import HelpFormatter, examples
from .common import (EXIT_FAILED, EXIT_OK, check_output, failure, footage_of, from_index, make_classifier, make_folder, say,
                     settings_of)

_EXIT_STATUS = ("Exit status: 0 every clip evaluated, 1 some clip failed or some input was left out (each is named; the "
           "rest is evaluated and written), 2 bad usage.")


def add_parsers(commands, shared) -> None:
    from ..evaluation.datasets import LAYOUTS

    parser = commands.add_parser(
        "eval", parents=[shared], formatter_class=HelpFormatter,
        epilog=examples("actionzs eval clips/ --layout folders --template clip_kinetics -o metrics.json",
                        "actionzs eval UCF-101 --layout ucf101 --split ucfTrainTestlist/testlist01.txt -o ucf101.json",
                        "actionzs eval recordings/ --annotations truth.csv --window 2 --threshold 0.3 -o temporal.json"),
        help="measure a model and its prompts on labelled clips or annotated videos",
        description="Measure accuracy on labelled trimmed clips (top-1, top-5, mean class accuracy, per-class accuracy, "
                    "confusion matrix, and a prompt ablation: each template alone, the ensemble, with and without label "
                    "descriptions), or with --annotations temporal detection on untrimmed videos (mAP at tIoU "
                    "0.3-0.7 and their average, event precision/recall/F1). Each clip is embedded once; every "
                    "prompt variant is scored from those embeddings, and --save-embeddings DIR keeps them for the "
                    "next run, which reads them back instead of decoding. A --template without {} names a shipped ensemble "
                    "(clip_ucf101, clip_kinetics). " + _EXIT_STATUS)
    parser.add_argument("dataset", metavar="DATASET",
                        help="the dataset's folder (folders, ucf101, hmdb51, and the videos of --annotations) or CSV file (csv)")
    parser.add_argument("--layout", choices=LAYOUTS, default="folders",
                        help="folders: one sub-folder per class; ucf101 / hmdb51: the official folders and split files; "
                             "csv: path,label rows (default folders)")
    parser.add_argument("--split", metavar="FILE",
                        help="ucf101: testlist0N.txt (classInd.txt beside it); hmdb51: the folder of <class>_test_splitN.txt "
                             "files (split 1) or a pattern such as 'splits/*_test_split2.txt' (default: every clip)")
    parser.add_argument("--descriptions", metavar="FILE",
                        help="'class: description' lines; the ablation adds the ensemble with these descriptions")
    parser.add_argument("--annotations", metavar="FILE",
                        help="temporal evaluation of the videos under DATASET: a THUMOS-style <Class>_<set>.txt file or folder "
                             "of them, or a CSV of video,label,start,end (seconds)")
    parser.add_argument("--tiou", type=float, default=0.5, metavar="T",
                        help="(with --annotations) the tIoU of the event-level precision, recall and F1 (default 0.5)")
    parser.add_argument("--index", metavar="LIB", help="read the clips' frames from this index (no decoding)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="metrics as JSON; the HTML page (and for clips the confusion PNG) go beside it")
    parser.add_argument("--html", metavar="FILE", help="the HTML page (default: the output's name with .html)")
    parser.add_argument("--confusion", metavar="FILE", help="the confusion matrix PNG (default: <output>-confusion.png)")


def _prompt_config(config: str | None) -> str | None:
    """`--config NAME` may name a shipped ensemble of configs/prompts/ as well as a preset."""
    from ..evaluation.ablation import ensemble_file

    if config and not os.path.exists(config) and (found := ensemble_file(config)) is not None:
        return os.fspath(found)
    return config


def _settings(args, temporal: bool):
    """(settings, run options): the config and flags, with the run this evaluation needs (segments
    for temporal, clip scores for trimmed; what an index holds with --index), checked before a model loads."""
    from ..evaluation.ablation import expand_templates
    from ..options import RunOptions
    from ..schema import options_of

    args.config = _prompt_config(args.config)
    args.hypothesis_template = expand_templates(args.hypothesis_template)
    forced = {"segments": temporal, "top_k": None, **(from_index(args) if args.index else {})}
    settings = {**settings_of(args), **forced}
    run = RunOptions(**{o.name: settings[o.name] for o in options_of("sampling")}, events=settings["events"])
    for option in options_of("loading"):
        option.check(settings[option.name])
    return settings, run


def _outputs(args, temporal: bool) -> tuple[str, str | None]:
    stem = os.path.splitext(args.output)[0]
    page = args.html or f"{stem}.html"
    png = None if temporal else args.confusion or f"{stem}-confusion.png"
    for path in (args.output, page, png):
        check_output(path)
    if len({os.path.abspath(p) for p in (args.output, page, png) if p}) < (3 if png else 2):
        raise InvalidInputError("-o, --html and --confusion must be three different files")
    return page, png


def cmd_eval(args) -> int:
    temporal = args.annotations is not None
    if not temporal and (args.labels or args.labels_file):
        raise InvalidInputError("the candidate labels of trimmed clips are the dataset's classes; -l/--labels-file "
                                "are for --annotations")
    if temporal and (args.layout != "folders" or args.split):
        raise InvalidInputError("--annotations reads the videos under DATASET: --layout and --split are for trimmed clips")
    if not 0 < args.tiou <= 1:
        raise InvalidInputError(f"--tiou must be in (0, 1], got {args.tiou:g}")
    settings, run = _settings(args, temporal)
    page_path, png_path = _outputs(args, temporal)
    make_folder(args.save_embeddings)
    templates = (run.hypothesis_template,) if isinstance(run.hypothesis_template, str) else tuple(run.hypothesis_template)
    metrics, png = (_temporal if temporal else _trimmed)(args, settings, run, templates)
    metrics = _write(args.output, page_path, png_path, metrics, png)
    _summary(metrics)
    if not args.quiet:
        written = [args.output, page_path] + ([png_path] if png_path else [])
        say(f"wrote {', '.join(written)}")
    return EXIT_FAILED if metrics["failures"] or metrics["problems"] else EXIT_OK


def _descriptions(args, classes: list[str], problems: list[str]) -> dict[str, str]:
    from ..evaluation.ablation import read_descriptions

    if not args.descriptions:
        return {}
    found, bad = read_descriptions(args.descriptions, classes)
    for problem in bad:
        say(f"warning: {problem}")
    problems += bad
    if not found:
        raise InvalidInputError(f"{args.descriptions}: describes none of the classes ({', '.join(classes[:5])}, ...)")
    return found


def _record(args, settings, kind: str, problems: list[str]) -> dict:
    return {"kind": kind, "dataset": args.dataset, "model": settings["model"], "problems": problems}


def _trimmed(args, settings, run, templates):
    import numpy as np

    from ..evaluation import datasets, page
    from ..evaluation.trimmed import evaluate_clips

    dataset = datasets.load_dataset(args.dataset, args.layout, args.split)
    problems = list(dataset.problems)
    for problem in problems:
        say(f"warning: {problem}")
    if not dataset.clips:
        raise InvalidInputError(f"{args.dataset}: no clips to evaluate" + (f" ({problems[0]})" if problems else ""))
    descriptions = _descriptions(args, dataset.classes, problems)
    classifier = make_classifier(settings, run)
    with footage_of(args, classifier, [path for path, _ in dataset.clips], run):
        found = evaluate_clips(classifier, dataset, templates, descriptions, index=args.index, store=args.save_embeddings,
                               on_failure=failure)
    metrics = {**_record(args, settings, "trimmed", problems), "layout": args.layout, "split": args.split, **found}
    return metrics, page.confusion_png(np.array(metrics["confusion"]), dataset.classes)


def _temporal(args, settings, run, templates):
    from ..evaluation import untrimmed
    from ..evaluation.annotations import read_annotations
    from ..scan import find_videos
    from .common import labels_of

    instances, problems, notes = read_annotations(args.annotations)
    given = labels_of(args, settings) if (args.labels or args.labels_file or settings["labels_file"]) else None
    labels, instances, left_out = untrimmed.candidates(instances, given)
    problems += left_out
    found, empty = find_videos([args.dataset])
    video_files, unmatched = untrimmed.match_videos(found, args.dataset, instances)
    problems += empty + unmatched
    video_of = untrimmed.names_of(found, args.dataset, video_files)
    unannotated = len(video_of) - len(set(video_files.values()))
    if unannotated:
        notes.append(f"{unannotated} of the {len(video_of)} videos under {args.dataset} have no annotations: "
                     "evaluated as showing none of the actions (what is detected there is a false positive)")
    for line in problems + notes:
        say(f"warning: {line}")
    truth = untrimmed.filed(instances, video_files, video_of)
    if not truth:
        raise InvalidInputError(f"{args.annotations}: no annotated video is in {args.dataset}"
                                + (f" ({problems[0]})" if problems else ""))
    descriptions = _descriptions(args, [label.name for label in labels], problems)
    classifier = make_classifier(settings, run)
    with footage_of(args, classifier, list(video_of), run):
        measured = untrimmed.evaluate_videos(
            classifier, truth, video_of, labels, templates, descriptions, event_tiou=args.tiou, index=args.index,
            store=args.save_embeddings, on_failure=failure)
    return {**_record(args, settings, "temporal", problems), "annotations": args.annotations, "notes": notes, **measured}, None


def _json_safe(value):
    """NaN (a class with no clips, recall with no ground truth) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _write(output: str, page_path: str, png_path: str | None, metrics: dict, png: bytes | None) -> dict:
    """Write the PNG, the page and the JSON (each atomically); the metrics as written."""
    from ..atomic import atomic_file, atomic_write
    from ..evaluation.page import render_page

    metrics = _json_safe(metrics)
    if png_path:
        with atomic_file(png_path, "wb") as handle:
            handle.write(png)
        metrics["confusion_png"] = png_path
    metrics["html"] = page_path
    atomic_write(page_path, render_page(metrics, png))
    atomic_write(output, json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
    return metrics


def _percent(value) -> str:
    return "    –" if value is None else f"{100 * value:5.1f}"


def _summary(metrics: dict) -> None:
    """The ablation table on stdout: one line per prompt variant."""
    if metrics["kind"] == "trimmed":
        print(f"{metrics['clips']} clips, {len(metrics['classes'])} classes ({metrics['model']})")
        print("top-1  top-5  mean-class  variant")
        for a in metrics["ablation"]:
            print(f"{_percent(a['top1'])}  {_percent(a['top5'])}  {_percent(a['mean_class_accuracy'])}       {a['variant']}")
    else:
        heads = "  ".join(f"@{t:g}" for t in metrics["thresholds"])
        print(f"{metrics['videos']} videos, {metrics['ground_truth']} instances, {len(metrics['candidates'])} labels "
              f"({metrics['model']}); mAP %")
        print(f"{heads}   avg  variant")
        for a in metrics["ablation"]:
            print("  ".join(_percent(v)[1:] for v in a["map"]) + f"  {_percent(a['average_map'])}  {a['variant']}")
        e = metrics["events"]
        print(f"events at tIoU {e['tiou']:g}: precision {_percent(e['precision'])} %, recall {_percent(e['recall'])} %, "
              f"F1 {_percent(e['f1'])} %")
