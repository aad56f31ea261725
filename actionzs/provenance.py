"""What made a record: the schema version of its layout and the settings of the run.

Every record the command line writes (a JSON object, a JSON line, the rows of a CSV) carries
`schema_version` and a `settings` block, so that a record read months later says how it was made,
and `scan --resume` can refuse to mix records of other settings into one file:

    {"hash": "sha256:…",              # of the settings below that decide the scores (not version, name)
     "actionzs": "0.1.0",             # the version that wrote the record
     "model": "openai/clip-…",       # as it was named
     "fingerprint": "sha256:…",       # the model's weights (actionzs.models.fingerprint)
     "labels": {"count": 10, "hash": "sha256:…"},   # the label set and the texts the model reads
     "templates": ["a video of {}.", …],
     "sampling": {"fps": 1.0, "num_frames": 8, "keyframes": false, "snap_to_keyframes": 0.0, "start": 0.0,
                  "end": null, "window": 2.0, "stride": 1.0, "pooling": "mean", "top_k": 5, "segments": true},
     "events": {"smooth": 1, "threshold": 0.5, "measure": "score", "max_gap": 0.0, "min_duration": 0.0}}

The sampling and events keys are the options of those stages in `actionzs.schema`, so an option
added there is recorded (and compared) without a change here.
"""

from __future__ import annotations

import hashlib
import json

from . import __version__
from .schema import options_of

#: The layout of records, raised whenever a key changes meaning or goes away (records from before
#: records carried one have none).
SCHEMA_VERSION = 1

#: The settings that decide a record's scores: equal in these, two runs give the same records.
COMPARED = ("fingerprint", "labels", "templates", "sampling", "events")


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def labels_hash(labels, templates: tuple[str, ...]) -> str:
    """A hash of the label set (order aside) with the texts the model reads for each label: its
    description, or its name in each template as `prompts.fill_template` composes it."""
    from .prompts import label_texts

    return _digest(sorted([label.name, label_texts(label, templates)] for label in labels))


def settings_block(labels, run, model: str, fingerprint: str | None) -> dict:
    """The settings of a run with these labels (parsed `Label`s) and `RunOptions`, for the model
    named `model` with this fingerprint (None while the model is not loaded yet: then not compared)."""
    block = {
        "actionzs": __version__,
        "model": model,
        "fingerprint": fingerprint,
        "labels": {"count": len(labels), "hash": labels_hash(labels, run.hypothesis_template)},
        "templates": list(run.hypothesis_template),
        "sampling": {o.name: getattr(run, o.name) for o in options_of("sampling") if o.name != "hypothesis_template"},
        "events": {o.name: getattr(run.events, o.name) for o in options_of("events")},
    }
    return {"hash": _digest({key: block[key] for key in COMPARED}), **block}


def stamped(record: dict, settings: dict | None) -> dict:
    """`record` (a result's or an error's) with the schema version and the settings that made it;
    as it is without settings."""
    if settings is None:
        return record
    return {**record, "schema_version": SCHEMA_VERSION, "settings": settings}


def differences(held: dict | None, current: dict) -> list[str]:
    """What differs between the settings `held` (a record's; None for one written without) and
    `current`, one phrase per setting, e.g. "sampling.fps: 1.0 there, 2.0 now"; settings that
    `current` does not know yet (None) are not compared."""
    if not isinstance(held, dict):
        return ["no settings recorded there (records written before records carried them)"]
    found = []
    for key in COMPARED:
        now, then = current.get(key), held.get(key)
        if now is None or now == then:
            continue
        if key in ("sampling", "events") and isinstance(then, dict):
            found += [f"{key}.{name}: {_shown(then.get(name))} there, {_shown(value)} now"
                      for name, value in now.items() if then.get(name) != value]
        elif key == "fingerprint":
            found.append(f"model: {held.get('model')!r} ({then}) there, {current.get('model')!r} ({now}) now")
        elif key == "labels" and isinstance(then, dict):
            found.append(f"labels: {then.get('count')} labels ({then.get('hash')}) there, {now['count']} labels ({now['hash']}) now")
        else:
            found.append(f"{key}: {_shown(then)} there, {_shown(now)} now")
    return found


def _shown(value) -> str:
    return "none" if value is None else json.dumps(value, ensure_ascii=False)
