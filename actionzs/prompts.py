"""Labels, prompt templates and ensembles, and a cache of text embeddings.

A label is reported by its name; what gets embedded is its description when it has one ("fall: a
person falls to the ground" embeds the sentence verbatim), else the name put into each template of
the prompt set, averaged over templates (an ensemble). A name is put into a template so that the
sentence reads right (`fill_template`): words the name already starts with are not repeated, and a
name with a subject of its own takes the place of the template's.
"""

from __future__ import annotations

import re
import string
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InvalidInputError
from .textfile import read_text_file

if TYPE_CHECKING:  # torch only where texts are embedded: checking labels must not wait seconds for its import
    import torch

#: Text-encoder calls are made in batches of this many texts (thousands of labels stay bounded).
TEXT_BATCH = 256
#: The largest labels file read (tens of thousands of labels).
LABELS_FILE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Label:
    """A candidate label: `name` is reported, `description` (if any) is what the model reads."""

    name: str
    description: str | None = None


def parse_label(text: str) -> Label:
    """"name: description" becomes a described label; any other string is a bare name."""
    name, sep, description = text.partition(":")
    if sep and name.strip() and description.strip():
        return Label(name.strip(), description.strip())
    return Label(text.strip())


def parse_labels(candidate_labels) -> list[Label]:
    """Validate candidate labels (strings, `Label`s, or a {name: description} mapping)."""
    if candidate_labels is None:
        raise InvalidInputError("candidate_labels is required: give at least one label")
    if isinstance(candidate_labels, str):
        candidate_labels = [candidate_labels]
    if isinstance(candidate_labels, Mapping):
        items = [Label(str(k).strip(), str(v).strip() if v else None) for k, v in candidate_labels.items()]
    elif isinstance(candidate_labels, Iterable):
        items = []
        for position, item in enumerate(candidate_labels):
            if isinstance(item, Label):
                items.append(item)
            elif isinstance(item, str):
                items.append(parse_label(item))
            else:
                raise InvalidInputError(f"candidate label #{position + 1} is {type(item).__name__}, not a string: {item!r}")
    else:
        raise InvalidInputError(f"candidate_labels must be a list of strings, got {type(candidate_labels).__name__}")
    if not items:
        raise InvalidInputError("candidate_labels is empty: give at least one label")
    blank = [i + 1 for i, label in enumerate(items) if not label.name]
    if blank:
        raise InvalidInputError(f"candidate labels #{', #'.join(map(str, blank))} are blank")
    seen, duplicates = set(), []
    for label in items:
        if label.name in seen and label.name not in duplicates:
            duplicates.append(label.name)
        seen.add(label.name)
    if duplicates:
        raise InvalidInputError(f"duplicate candidate labels: {', '.join(map(repr, duplicates))}")
    read: dict[str, Label] = {}
    for label in items:
        first = read.setdefault(_as_read(label), label)
        if first is not label:
            raise InvalidInputError(
                f"duplicate candidate labels: {first.name!r} and {label.name!r} give the model the same text "
                "(apart from case and spacing), so they would split one score; keep one"
            )
    return items


def _as_read(label: Label) -> str:
    """What the model reads of a label, as text encoders compare it: case and runs of spaces aside."""
    return " ".join((label.description or label.name).split()).casefold()


def read_labels_file(path: str | Path) -> list[Label]:
    """One label per line, optionally "label: description"; lines starting with `#`, blank lines and a
    UTF-8 byte-order mark are ignored."""
    text = read_text_file(path, "labels file", LABELS_FILE_BYTES)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise InvalidInputError(f"{path}: labels file has no labels")
    try:
        return parse_labels(lines)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None


#: Articles: "a video of a {}" with "an empty street" keeps the label's.
_ARTICLES = frozenset({"a", "an", "the"})
#: First words of a label that names its own subject ("two people fighting", "a timeout", "someone
#: running"): such a label replaces the subject a template gives ("a photo of a person {}.").
_SUBJECT_WORDS = _ARTICLES | frozenset(
    "one two three four five six seven eight nine ten some several many no every each this that these those "
    "his her their my our its someone somebody everyone everybody nobody people".split()
)


def fill_template(template: str, name: str) -> str:
    """`template` (one `{}`) with `name` in it, reading as one sentence: `template.format(name)`
    except where the words before `{}` and the name's first words would say something twice.

    Compared word by word, case aside, in this order:

    1. the name starts with the words that end the text before `{}`: those are not repeated
       ("a photo of a person {}." + "a person climbing a fence" -> "a photo of a person climbing a
       fence."; "a video of {}." + "a video of a dog" -> "a video of a dog");
    2. the name starts with a subject of its own (an article, a number, "someone", "people", ...)
       and the template ends with one (an article and a word: "a person {}", "an athlete {}"): the
       name's takes its place ("a photo of a person {}." + "two people fighting" -> "a photo of two
       people fighting.");
    3. the name starts with such a word and the template ends with an article: the template's is
       dropped ("a video of a {}" + "an empty street" -> "a video of an empty street").

    Any other name is put in as it is, so its prompt is exactly `template.format(name)`.
    """
    before, after = _around_field(template)
    words = list(re.finditer(r"\S+", before))
    if not name.split() or not before[-1:].isspace():
        return before + name + after
    cut = _words_to_drop([w.group().casefold() for w in words], [w.casefold() for w in name.split()])
    return (before[: words[-cut].start()] if cut else before) + name + after


def _words_to_drop(heads: list[str], starts: list[str]) -> int:
    """How many of the last words before a template's `{}` (`heads`) a name starting with `starts`
    replaces, by the rules of `fill_template`."""
    repeated = next((k for k in range(min(len(heads), len(starts)), 0, -1) if heads[-k:] == starts[:k]), 0)
    if repeated or not (starts[0] in _SUBJECT_WORDS or starts[0].isdigit()):
        return repeated
    if len(heads) >= 2 and heads[-2] in _ARTICLES and heads[-1].isalpha() and heads[-1] not in _ARTICLES:
        return 2  # the template's subject: "a person", "an athlete"
    return 1 if heads[-1] in _ARTICLES else 0


def _around_field(template: str) -> tuple[str, str]:
    """The text before and after the one `{}` of a checked template, escaped braces as braces."""
    before, after, seen = [], [], False
    for literal, field, _, _ in string.Formatter().parse(template):
        (after if seen else before).append(literal)
        seen = seen or field is not None
    return "".join(before), "".join(after)


def label_texts(label: Label, templates: tuple[str, ...]) -> list[str]:
    """What the text encoder reads for `label`: its description, else its name in each template."""
    return [label.description] if label.description else [fill_template(t, label.name) for t in templates]


def check_prompts(labels: list[Label], templates: tuple[str, ...]) -> None:
    """Refuse two labels whose prompts are the same text in every template (case and spacing aside):
    "running" and "a person running" in "a photo of a person {}." would split one score."""
    read: dict[tuple[str, ...], Label] = {}
    for label in labels:
        texts = label_texts(label, templates)
        first = read.setdefault(tuple(" ".join(t.split()).casefold() for t in texts), label)
        if first is not label:
            raise InvalidInputError(
                f"duplicate candidate labels: {first.name!r} and {label.name!r} give the model the same text "
                f"({texts[0]!r}{' and the others' if len(texts) > 1 else ''}), so they would split one score; keep one"
            )


class TextEmbeddingCache:
    """Text embeddings of one encoder, cached by text (LRU), and label embeddings built from them."""

    def __init__(self, encoder, max_texts: int = 100_000):
        self.encoder = encoder
        self.max_texts = max_texts
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = 0  # texts actually sent to the text encoder (for tests and stats)

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Embeddings [len(texts), D], encoding only the texts not seen before."""
        import torch

        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), TEXT_BATCH):
            batch = missing[start : start + TEXT_BATCH]
            for text, vector in zip(batch, self.encoder.embed_texts(batch).cpu()):
                self._cache[text] = vector
            self.encoded += len(batch)
        vectors = torch.stack([self._cache[t] for t in texts])
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > self.max_texts:
            self._cache.popitem(last=False)
        return vectors

    def embed_labels(self, labels: list[Label], templates: tuple[str, ...]) -> torch.Tensor:
        """One vector per label: the mean of its texts' embeddings (re-normalised for unit-vector encoders)."""
        import torch

        texts = [label_texts(label, templates) for label in labels]
        flat = self.embed([t for group in texts for t in group]).numpy()
        sizes = np.array([len(group) for group in texts])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        means = torch.from_numpy(np.add.reduceat(flat, starts, axis=0) / sizes[:, None].astype(np.float32))
        if self.encoder.texts_normalised:
            means = means / means.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return means


def single_label_warning(labels: list[Label], head, run, *, python: bool = False) -> str | None:
    """What to tell someone who gives one label to a model whose scores are a softmax over the
    labels (CLIP, X-CLIP): every score is then 1, whatever the video shows; None otherwise, or when
    events already threshold the similarity. Worded for the command line, or with `python` for a
    caller of the library (its keywords instead of flags)."""
    if len(labels) != 1 or head.activation != "softmax" or run.events.measure == "similarity":
        return None
    from .schema import option

    if python:
        how = 'events={"measure": "similarity", "threshold": ...}'
    else:
        how = f"{option('measure').flag} similarity and a {option('threshold').flag} on it"
    return (
        f"one label ({labels[0].name!r}) and this model's scores are a softmax over the labels, so every score is 1.0 "
        f"whatever the video shows: read the similarity (the cosine) instead, with {how} (about 0.2 to 0.3 for CLIP) "
        "for events, or add labels for it to compete with"
    )
