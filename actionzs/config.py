"""YAML presets: `default.yaml` under everything, a named preset or file over it, flags over both.

The keys are the options of `actionzs.schema`; `python -m actionzs.config` prints the keys table
of `configs/README.md` from them. Each value is checked
as it is read, type and range, and an unknown key is an error, so typos do not pass silently.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInputError
from .textfile import read_text_file
from .schema import API_STAGES, NOUNS, OPTIONS, Option

#: Where shipped presets live: inside the installed package, or at the top of a source checkout.
_PRESET_DIRS = (Path(__file__).parent / "configs", Path(__file__).parent.parent / "configs")

#: The top-level keys of a config file: one per option, and the `events` mapping.
KEYS = frozenset(o.key.partition(".")[0] for o in OPTIONS)


def preset_dir() -> Path:
    for folder in _PRESET_DIRS:
        if (folder / "default.yaml").is_file():
            return folder
    raise InvalidInputError("the shipped configs (default.yaml) are missing from this installation")


#: YAML files in the presets folder that are references, not presets.
_REFERENCES = frozenset({"models"})


def presets() -> list[str]:
    """Names of the shipped presets (usable as `--config NAME`)."""
    return sorted(p.stem for p in preset_dir().glob("*.yaml") if p.stem not in _REFERENCES)


#: The largest config file read, and the deepest nesting of mappings and lists in one.
CONFIG_BYTES = 2**20
CONFIG_DEPTH = 16


def read_yaml(path: str | Path, what: str, max_bytes: int):
    """The YAML document of a user's file (a config, a thresholds or examples file), read with
    bounds: at most `max_bytes`, no aliases (a few lines of them expand to millions of nodes), no
    nesting deeper than `CONFIG_DEPTH`; anything else an `InvalidInputError` naming the file."""
    import yaml

    text = read_text_file(path, what, max_bytes)
    try:
        _check_shape(path, yaml.parse(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML ({str(exc)[:500]})") from None


def _read(path: Path) -> dict:
    data = read_yaml(path, "config", CONFIG_BYTES) or {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: a config must be a mapping of keys to values")
    events = data.get("events")
    if events is not None and not isinstance(events, dict):
        raise InvalidInputError(f"{path}: events must be a mapping of event keys to values, got {events!r}")
    given = {str(k) for k in data if k != "events"} | {f"events.{k}" for k in events or {}}
    unknown = given - {o.key for o in OPTIONS}
    if unknown:
        raise InvalidInputError(f"{path}: unknown config key(s) {', '.join(sorted(unknown))}; see configs/README.md")
    for o in OPTIONS:
        section = (events or {}) if o.stage == "events" else data
        if o.name in section:
            try:
                o.check(section[o.name], none="null")
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}: {exc}") from None
    # Files a config names are relative to the config file.
    if data.get("labels_file"):
        data["labels_file"] = str((path.parent / data["labels_file"]).resolve())
    if events and events.get("thresholds"):
        events["thresholds"] = str((path.parent / events["thresholds"]).resolve())
    return data


def _check_shape(path: str | Path, events) -> None:
    """Refuse what no file of ours needs and what makes YAML expensive: aliases and nesting deeper
    than `CONFIG_DEPTH`."""
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise InvalidInputError(f"{path}: YAML aliases (*name) are not allowed here; write the values out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > CONFIG_DEPTH:
                raise InvalidInputError(f"{path}: nested more than {CONFIG_DEPTH} levels deep; these files are flat")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_config(config: str | Path | None = None) -> dict:
    """The settings of `config` (a preset name or a YAML path) laid over `default.yaml`."""
    settings = _read(preset_dir() / "default.yaml")
    if config is None:
        return settings
    path = Path(config)
    if not path.suffix and not path.exists():
        path = preset_dir() / f"{config}.yaml"
        if config in _REFERENCES or not path.is_file():
            raise InvalidInputError(f"no config preset {config!r}; presets: {', '.join(presets())}, or give a YAML file")
    override = _read(path)
    events = {**(settings.get("events") or {}), **(override.pop("events", None) or {})}
    return {**settings, **override, "events": events}


# -- the keys table of configs/README.md ------------------------------------------------------------

def _cell(value, kind: type, python: bool = False) -> str:
    """A value as the keys table shows it: YAML spelling (Python's with `python`), strings in
    backticks, ensembles counted."""
    if value is None or isinstance(value, bool):
        return f"`{value}`" if python else {None: "null", True: "true", False: "false"}[value]
    if kind is tuple and not isinstance(value, str):
        return f"{len(value)} templates"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _flag_cell(o: Option) -> str:
    if o.type is bool:
        return f"`{o.flag}` / `--no-{o.flag[2:]}`"
    if o.type is tuple:
        return f"`{o.flag}` (repeatable)"
    return f"`{o.flag}`" + (f" ({o.flag_none} = {o.none_means})" if o.flag_none is not None else "")


def markdown_table() -> str:
    """The keys table of configs/README.md: each config key's type, unit, range, default (from
    default.yaml, then the Python API's where it differs), meaning and flag."""
    config = load_config()
    rows = ["| key | type | unit | range | default | meaning | flag |", "|---|---|---|---|---|---|---|"]
    for o in OPTIONS:
        kind = NOUNS[o.type] + (" or null" if o.none_means else "")
        span = ", ".join(f"`{c}`" for c in o.allowed) or o.bounds() or "–"
        value = o.section(config).get(o.name)
        shown = _cell(value, o.type)
        if o.stage in API_STAGES and o.check(value) != o.check(o.default):  # compared normalised
            shown += f" (Python: {_cell(o.default, o.type, python=True)})"
        meaning = o.help + (f"; null = {o.none_means}" if o.none_means else "")
        rows.append(f"| `{o.key}` | {kind} | {o.unit or '–'} | {span} | {shown} | {meaning} | {_flag_cell(o)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
