"""The prompt ablation: which wording separates the classes. Each template alone, the whole
ensemble, and the ensemble with label descriptions are scored from the same clip embeddings (only
the text side changes, so each variant costs a few matrix products, no decoding).

Named ensembles are the YAML files of configs/prompts/ (`clip_ucf101`, `clip_kinetics`): a
`--template` value without `{}` names one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError
from ..prompts import Label, read_labels_file
from .datasets import letters


@dataclass(frozen=True)
class Variant:
    """One way of writing the prompts: `templates` (an ensemble when several), and whether labels
    that have a description are read by it (`descriptions`)."""

    name: str
    templates: tuple[str, ...]
    descriptions: bool = False


def _prompts_dir() -> Path:
    from ..config import preset_dir

    return preset_dir() / "prompts"


def ensemble_names() -> list[str]:
    """The named ensembles shipped in configs/prompts/."""
    return sorted(p.stem for p in _prompts_dir().glob("*.yaml"))


def ensemble_file(name: str) -> Path | None:
    """The shipped file of the named ensemble `name`, or None when there is none."""
    path = _prompts_dir() / f"{name}.yaml"
    return path if re.fullmatch(r"[\w-]+", name) and path.is_file() else None


def named_ensemble(name: str) -> tuple[str, ...]:
    """The templates of a shipped ensemble, e.g. `clip_ucf101` (the CLIP paper's 48 for UCF101)."""
    from ..config import load_config

    path = ensemble_file(name)
    if path is None:
        raise InvalidInputError(f"--template {name!r} has no {{}} and names no shipped ensemble; "
                                f"ensembles: {', '.join(ensemble_names())}")
    return tuple(load_config(path)["hypothesis_template"])


def expand_templates(values: list[str] | None) -> list[str] | None:
    """`--template` values with each ensemble name replaced by its templates (order kept, repeats dropped)."""
    if values is None:
        return None
    out: list[str] = []
    for value in values:
        out += [value] if "{}" in value else list(named_ensemble(value))
    return list(dict.fromkeys(out))


def variants(templates: tuple[str, ...], with_descriptions: bool) -> list[Variant]:
    """Each template alone, then the ensemble (when there are several), then the ensemble with the
    descriptions (when there are some). The last is the headline variant."""
    out = [Variant(f"template: {t}", (t,)) for t in templates]
    if len(templates) > 1:
        out.append(Variant(f"ensemble of {len(templates)} templates", tuple(templates)))
    if with_descriptions:
        out.append(Variant(f"{'ensemble' if len(templates) > 1 else 'template'} + descriptions", tuple(templates), True))
    return out


def read_descriptions(path: str, classes: list[str]) -> tuple[dict[str, str], list[str]]:
    """({class: description}, problems) from a labels file of `name: description` lines; a name
    matches a class by its letters and digits (`ApplyEyeMakeup`, `apply eye makeup`). Names that
    are no class, and lines with no description, are problems."""
    by_key = {letters(c): c for c in classes}
    found, problems = {}, []
    for label in read_labels_file(path):
        target = by_key.get(letters(label.name))
        if not label.description:
            problems.append(f"{path}: {label.name!r} has no description (write 'name: description'); skipped")
        elif target is None:
            problems.append(f"{path}: {label.name!r} is not a class of the dataset; skipped")
        else:
            found[target] = label.description
    return found, problems


def labels_for(classes: list[str], descriptions: dict[str, str], variant: Variant) -> list[Label]:
    """The candidate labels of `variant`: class names, described where it reads descriptions."""
    return [Label(c, descriptions.get(c) if variant.descriptions else None) for c in classes]
