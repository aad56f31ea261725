"""YAML presets: `default.yaml` under everything, a named preset or file over it, flags over both.

Every key is documented in `configs/README.md`; an unknown key is an error, so typos do not pass
silently.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInputError

#: Where shipped presets live: inside the installed package, or at the top of a source checkout.
_PRESET_DIRS = (Path(__file__).parent / "configs", Path(__file__).parent.parent / "configs")

KEYS = frozenset({
    "model", "device", "dtype", "backend", "batch_size", "decode_workers", "fps", "num_frames", "window", "stride",
    "pooling", "hypothesis_template", "top_k", "segments", "events", "labels_file",
})


_NUMBER = (int, float)
_TYPES = {
    "model": str, "device": str, "dtype": str, "backend": str, "batch_size": int, "decode_workers": int, "fps": _NUMBER,
    "num_frames": int, "window": _NUMBER, "stride": _NUMBER, "pooling": str, "hypothesis_template": (str, list),
    "top_k": int, "segments": bool, "events": dict, "labels_file": str,
}
_TYPE_NAMES = {
    key: {str: "a string", int: "a whole number", _NUMBER: "a number", bool: "true or false", dict: "a mapping",
          (str, list): "a string or a list of strings"}[kind]
    for key, kind in _TYPES.items()
}
assert set(_TYPES) == KEYS


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


def _read(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: a config must be a mapping of keys to values")
    unknown = set(data) - KEYS
    if unknown:
        raise InvalidInputError(f"{path}: unknown config key(s) {', '.join(sorted(unknown))}; see configs/README.md")
    for key, value in data.items():
        if value is not None and not isinstance(value, _TYPES[key]) or isinstance(value, bool) and _TYPES[key] is not bool:
            raise InvalidInputError(f"{path}: {key} must be {_TYPE_NAMES[key]}, got {value!r}")
    if data.get("labels_file"):  # relative to the config file that names it
        data["labels_file"] = str((path.parent / data["labels_file"]).resolve())
    return data


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
