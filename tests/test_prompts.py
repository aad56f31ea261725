"""Prompts read right: a label put into a template never says its first words twice, on every
shipped ensemble and every label of the shipped labels files and the README; labels that do not
overlap get exactly `template.format(label)` (what the parity tests compare with transformers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from actionzs.errors import InvalidInputError
from actionzs.prompts import Label, TextEmbeddingCache, check_prompts, fill_template, label_texts, parse_labels, read_labels_file
from actionzs.schema import default

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Words that start a noun phrase: two in a row ("a a", "a the", "a person two people") misread.
ARTICLES = {"a", "an", "the"}


def shipped_templates() -> list[str]:
    """Every template of every shipped config and the Python API's default."""
    found = [default("hypothesis_template")]
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        templates = yaml.safe_load(path.read_text(encoding="utf-8")).get("hypothesis_template") or []
        found += [templates] if isinstance(templates, str) else templates
    return list(dict.fromkeys(found))


def shipped_labels() -> list[str]:
    """Label names and descriptions of configs/*.txt and the demo's labels (each as a bare label
    would be written), and the labels the README shows."""
    texts = []
    for path in sorted((ROOT / "configs").glob("*.txt")):
        for label in read_labels_file(path):
            texts += [label.name] + ([label.description] if label.description else [])
    demo = (ROOT / "videos" / "make_demo.py").read_text(encoding="utf-8")
    for line in re.search(r'LABELS = """\\\n(.*?)"""', demo, flags=re.S).group(1).splitlines():
        if line and not line.startswith("#"):
            texts += [part.strip() for part in line.split(":", 1)]
    texts += re.findall(r'-l "([^"]+)"', README)
    texts += re.findall(r'"([^"]+)"', README[: README.index("## Install")])  # the opening's examples
    texts += re.findall(r'search\("([^"]+)"', README)
    texts += ["a corner kick", "an empty street", "the goalkeeper diving", "someone running", "2 dogs fighting"]
    return list(dict.fromkeys(texts))


def words(text: str) -> list[str]:
    return [w.strip(".,:;!?\"'").casefold() for w in text.split()]


def test_the_shipped_ensembles_and_labels_are_found():
    templates, labels = shipped_templates(), shipped_labels()
    assert {"a photo of a person {}.", "a video of a player {}.", "a video of {}."} <= set(templates)
    assert "a person climbing a fence" in labels and "climbing a fence" in labels and "cooking" in labels
    assert "shooting a free throw" in labels and "a player shooting a free throw" in labels


@pytest.mark.parametrize("template", shipped_templates())
def test_no_shipped_label_repeats_words_in_any_shipped_template(template):
    for label in shipped_labels():
        prompt = fill_template(template, label)
        seen = words(prompt)
        assert label in prompt, (template, label, prompt)
        doubled = [(a, b) for a, b in zip(seen, seen[1:]) if a == b]
        assert not doubled, (template, label, prompt)
        articles = [(a, b) for a, b in zip(seen, seen[1:]) if a in ARTICLES and b in ARTICLES]
        assert not articles, (template, label, prompt)
        for n in range(2, 5):  # no phrase of 2-4 words said twice in a row ("a person a person")
            grams = [tuple(seen[i : i + n]) for i in range(len(seen) - n + 1)]
            assert not any(grams[i] == grams[i + n] for i in range(len(grams) - n)), (template, label, prompt)


@pytest.mark.parametrize(("template", "label", "prompt"), [
    ("a photo of a person {}.", "a person climbing a fence", "a photo of a person climbing a fence."),
    ("a photo of a person {}.", "A person climbing a fence", "a photo of A person climbing a fence."),
    ("a photo of a person {}.", "person running", "a photo of a person running."),
    ("a video of {}.", "a video of a dog", "a video of a dog."),
    ("a video of a player {}.", "a player shooting a free throw", "a video of a player shooting a free throw."),
    ("a photo of a person {}.", "two people fighting", "a photo of two people fighting."),
    ("a photo of an athlete {}.", "the goalkeeper diving", "a photo of the goalkeeper diving."),
    ("a demonstration of a person {}.", "someone cooking", "a demonstration of someone cooking."),
    ("a photo of a person {}.", "2 dogs fighting", "a photo of 2 dogs fighting."),
    ("a video of a {}", "a corner kick", "a video of a corner kick"),
    ("a video of a {}", "an empty street", "a video of an empty street"),
    ("{{a}} video of a {}!", "an empty street", "{a} video of an empty street!"),
])
def test_overlapping_words_and_subjects_are_said_once(template, label, prompt):
    assert fill_template(template, label) == prompt


@pytest.mark.parametrize(("template", "label"), [
    ("a photo of {}.", "a cat sitting"),  # the parity tests' template and labels
    ("This is a photo of {}.", "swimming in a lake"),
    ("a photo of a person {}.", "running"),
    ("a photo of a person {}.", "playing the guitar"),
    ("a video of {}.", "an empty street"),
    ("a photo of a person: {}", "a person waving"),  # no space before the label: a phrase of its own
    ("{} happening", "a timeout"),
    ("a video of a man {}.", "man-to-man marking"),
    ("{{literal}} a photo of {}", "dancing"),
])
def test_labels_that_do_not_overlap_get_the_plain_format(template, label):
    assert fill_template(template, label) == template.format(label)


def test_label_texts_fill_each_template_and_keep_descriptions_verbatim():
    templates = ("a video of {}.", "a photo of a person {}.")
    assert label_texts(Label("a person running"), templates) == ["a video of a person running.", "a photo of a person running."]
    assert label_texts(Label("fall", "a person falls to the ground"), templates) == ["a person falls to the ground"]


class _Recorder:
    """A text encoder that records what it was given."""

    texts_normalised = True

    def __init__(self):
        self.given: list[str] = []

    def embed_texts(self, texts):
        self.given += texts
        return torch.nn.functional.normalize(torch.randn(len(texts), 4), dim=-1)


def test_the_text_cache_encodes_and_keys_the_composed_prompts():
    encoder = _Recorder()
    cache = TextEmbeddingCache(encoder)
    templates = ("a photo of a person {}.",)
    first = cache.embed_labels([Label("a person climbing a fence"), Label("running")], templates)
    assert encoder.given == ["a photo of a person climbing a fence.", "a photo of a person running."]
    again = cache.embed_labels([Label("person climbing a fence")], templates)  # the same prompt: no new encoding
    assert cache.encoded == 2 and torch.equal(again[0], first[0])


def test_labels_whose_prompts_are_the_same_text_are_refused():
    labels = parse_labels(["running", "a person running"])
    with pytest.raises(InvalidInputError, match="'running' and 'a person running' give the model the same text"):
        check_prompts(labels, ("a photo of a person {}.",))
    check_prompts(labels, ("a photo of a person {}.", "a video of {}."))  # told apart by the second template
    check_prompts(parse_labels(["running", "jumping"]), ("a photo of a person {}.",))


def test_the_cli_refuses_them_before_any_model_loads(capsys, tmp_path):
    from helpers_cli import run_cli

    code, _, err = run_cli(capsys, "classify", tmp_path / "v.mp4", "--model", tmp_path / "none", "-l", "running",
                           "-l", "a person running", "--template", "a photo of a person {}.")
    assert code == 2 and "same text" in err and "Traceback" not in err
