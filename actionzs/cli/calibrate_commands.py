"""calibrate: per-label thresholds fitted from labelled examples, for `--thresholds FILE`."""

from __future__ import annotations

import sys

from ..errors import InvalidInputError
from .arguments import HelpFormatter, examples, flag_of, progress_option
from .common import EXIT_FAILED, EXIT_OK, footage_of, from_index, make_classifier, outcomes, say, settings_of, validated


#: The options of a run that change what calibration fits: those that change a window's value.
RUN_OPTIONS = ("model", "device", "dtype", "backend", "batch_size", "decode_workers", "fps", "keyframes",
               "snap_to_keyframes", "window", "stride", "pooling", "hypothesis_template", "smooth", "measure", "labels_file")


def add_parsers(commands) -> None:
    """`calibrate`, with the options of a run that change a window's value (not the shared options
    of classify and scan: their thresholds and outputs mean nothing here)."""
    from ..schema import option

    calibrate = commands.add_parser(
        "calibrate", formatter_class=HelpFormatter,
        epilog=examples("actionzs calibrate --examples examples.csv -o thresholds.yaml",
                        "actionzs calibrate --examples examples/ --precision 0.9 --index lib.actionzs -o thresholds.yaml"),
        help="fit per-label thresholds from labelled example clips, for --thresholds",
        description="Score labelled examples (clips or moments where each label happens, and where it does not) as "
                    "classify scores windows, fit one threshold per label on the measure events are found on (--measure), "
                    "report each label's precision and recall on examples held out of the fit, and write a thresholds "
                    "file for classify, scan, report and search (--thresholds FILE). Labels default to those of the "
                    "examples; -l or --labels-file give their descriptions.")
    calibrate.add_argument("--examples", required=True, metavar="FILE|DIR",
                           help="a CSV (path,label,start,end,positive) or YAML list of examples, or a folder of <label>/ "
                                "folders of positive clips (with <label>/negatives/, and none/ for clips of no label)")
    calibrate.add_argument("--index", metavar="LIB",
                           help="score the examples from the frames stored in this index (each example's video must be "
                                "in it) instead of decoding them; its model and fps unless given")
    calibrate.add_argument("-o", "--output", metavar="FILE", help="write the thresholds file here (atomically); default stdout")
    calibrate.add_argument("--precision", type=float, metavar="P",
                           help="fit each threshold for this precision on the examples (0 < P <= 1), keeping the most "
                                "recall at it, instead of the best F1")
    calibrate.add_argument("--background", action="append", default=[], metavar="TEXT",
                           help='a "none of these" prompt scored with the labels, given no threshold (repeatable): with '
                                "--measure score it takes the probability of moments where no label happens")
    run = calibrate.add_argument_group("scoring (as classify and scan will score; defaults from the config)")
    run.add_argument("-l", "--label", dest="labels", action="append", metavar="LABEL",
                     help='a label to calibrate, repeatable; "name: description" embeds the description (default: the examples\' labels)')
    run.add_argument("--config", metavar="CFG", help="preset name (default, surveillance, sports) or YAML file; flags override it")
    for name in RUN_OPTIONS:
        run.add_argument(option(name).flag, **flag_of(option(name)))
    calibrate.add_argument("-q", "--quiet", action="store_true", help="no progress or info messages")
    progress_option(calibrate)
    calibrate.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    calibrate.set_defaults(thresholds=None, num_frames=None, save_embeddings=None)


def cmd_calibrate(args) -> int:
    from ..atomic import atomic_write
    from ..calibration import calibrate, read_examples
    from ..calibration.examples import NONE
    from ..prompts import parse_labels

    if args.precision is not None and not 0 < args.precision <= 1:
        raise InvalidInputError(f"--precision must be above 0 and at most 1, got {args.precision:g}")
    examples = read_examples(args.examples)
    if not args.labels and not args.labels_file and not settings_of(args)["labels_file"]:
        args.labels = list(dict.fromkeys(e.label for e in examples if e.label != NONE))
        if not args.labels:
            raise InvalidInputError(f"{args.examples}: every example is {NONE!r}; give examples of the labels to calibrate")
    settings, labels, run = validated(args, segments=True, top_k=None, **(from_index(args) if args.index else {}))
    if run.events.thresholds is not None:
        raise InvalidInputError(f"the config sets events.thresholds ({run.events.thresholds}); calibrate writes one")
    background = parse_labels(args.background) if args.background else []
    classifier = make_classifier(settings, run)
    with footage_of(args, classifier, list(dict.fromkeys(example.path for example in examples)), run):
        thresholds, reports, failed = calibrate(
            classifier, examples, labels, run, background=background, precision=args.precision,
            score_videos=lambda paths, names: outcomes(args, classifier, names, paths))
    for (path, start, end), reason in failed.items():
        say(f"error: {path}{'' if start is None else f' {start:g}-{end:g} s'}: {reason} (left out)")
    for line in report_table(reports, thresholds.measure):
        say(line)
    for report in reports:
        if not report.reached:
            say(f"warning: {report.label}: no threshold reaches precision {args.precision:g} on the examples; "
                f"the best, {report.precision:.3f}, is used")
    text = thresholds.to_yaml()
    if args.output:
        atomic_write(args.output, text)
        if not args.quiet:
            say(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_FAILED if failed else EXIT_OK


def report_table(reports, measure: str) -> list[str]:
    """Each label's threshold, examples, and precision and recall on them and held out."""
    def share(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    width = max([len("label")] + [len(r.label) for r in reports])
    lines = [f"{'label':<{width}}  {measure + ' >=':>12}  positives  negatives  precision  recall  "
             "held-out precision  recall  folds"]
    for r in reports:
        lines.append(
            f"{r.label:<{width}}  {r.threshold:12.4f}  {r.positives:9d}  {r.negatives:9d}  {r.precision:9.3f}  {r.recall:6.3f}  "
            f"{share(r.held_out_precision):>18}  {share(r.held_out_recall):>6}  {r.folds or '-':>5}"
        )
    return lines
