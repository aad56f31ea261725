"""The command line's shared options: the model and sampling options of classify, scan and report
(one flag per option of the schema), help that shows each option's default, and the engine options."""

from __future__ import annotations

import argparse


def model_options() -> argparse.ArgumentParser:
    """Options shared by classify, scan and report, one flag per option of the schema; a None
    default means "from the config"."""
    from ..schema import OPTIONS, STAGES

    parent = argparse.ArgumentParser(add_help=False)
    groups = {stage: parent.add_argument_group(title) for stage, title in STAGES.items()}
    groups["labels"].add_argument("-l", "--label", dest="labels", action="append", metavar="LABEL",
                                  help='a candidate label; repeat for more. "name: description" embeds the description')
    groups["loading"].add_argument("--config", metavar="CFG",
                                   help="preset name (default, surveillance, sports) or YAML file; flags override it")
    for option in OPTIONS:
        groups[option.stage].add_argument(option.flag, **flag_of(option))
    parent.add_argument("--save-embeddings", metavar="DIR",
                        help="also store each video's embeddings (with timestamps) as DIR/<name>-<hash>.npz")
    progress_option(parent)
    parent.add_argument("-q", "--quiet", action="store_true", help="no progress or info messages")
    parent.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr")
    return parent


def progress_option(parser) -> None:
    """--progress / --no-progress: bars on a terminal by default; in a log, plain lines only when asked."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress in seconds of footage, per video and for the run, with ETA (default: bars "
                             "when stderr is a terminal; --progress in a log writes a plain line every 30 s)")


def flag_of(option) -> dict:
    """The `add_argument` keywords of an option's flag: its type or choices, metavar and help."""
    if option.type is bool:
        kind = {"action": argparse.BooleanOptionalAction}
    elif option.type is tuple:  # a template; repeated, an ensemble
        kind = {"action": "append", "metavar": option.metavar}
    elif option.allowed:
        kind = {"choices": option.allowed}
    elif option.parse is not None:
        kind = {"type": _argument_type(option.parse), "metavar": option.metavar}
    else:
        kind = {"type": option.type, "metavar": option.metavar}
    return {"dest": option.name, "default": None, "help": option.help.replace("%", "%%"), **kind}


def _argument_type(parse):
    """`parse` as an argparse type: its message, not argparse's "invalid value", on bad text."""
    def parsed(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parsed.__name__ = parse.__name__
    return parsed


class HelpFormatter(argparse.HelpFormatter):
    """Completes each option's help with its default: for an option of the schema its unit, range
    and the value the default config gives it (the config is read only when help is shown), for
    the others the parser's default where there is one to show. An epilog of `examples` keeps its
    lines as written."""

    _config: dict | None = None

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES):
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action) -> str | None:
        from ..schema import OPTIONS

        option = {o.name: o for o in OPTIONS}.get(action.dest)
        if option is None or action.help != flag_of(option)["help"]:  # not a flag made from the schema (search's --window)
            return _with_default(action)
        if self._config is None:
            from ..config import load_config

            self._config = load_config()
        details = [
            option.unit and f"in {option.unit}",
            option.bounds(),
            option.flag_none is not None and f"{option.flag_none} = {option.none_means}",
            f"default from the config: {_shown(option, option.section(self._config).get(option.name))}",
        ]
        return action.help + f" ({'; '.join(filter(None, details))})".replace("%", "%%")  # help is escaped already


#: How an epilog of example command lines begins (see `examples`).
EXAMPLES = "examples:"


def examples(*lines: str) -> str:
    """An epilog of example command lines, shown as written."""
    return "\n".join([EXAMPLES, *(f"  {line}" for line in lines)])


def _with_default(action) -> str | None:
    """An option's help with "(default X)" added, unless it says its default already or has none
    worth showing (None, a flag that is off, an empty list)."""
    text = action.help
    if text is None or text == argparse.SUPPRESS or "default" in text or not action.option_strings:
        return text
    if action.default in (None, False, [], argparse.SUPPRESS) or isinstance(action, argparse._StoreTrueAction):
        return text
    return f"{text} (default %(default)s)"


def _shown(option, value) -> str:
    """A config value as help shows it: None as what it means, templates quoted, YAML's true/false."""
    if value is None:
        return option.none_means
    if isinstance(value, list):
        return ", ".join(f'"{template}"' for template in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def engine_options(parser) -> None:
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

