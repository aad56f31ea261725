"""Records you can trust: every record names its schema version and the settings that made it,
`scan --resume` refuses to mix records of other settings into a file (exit 2, the file as it was)
unless `--force-settings`, CSV stays readable by `csv`, times print as HH:MM:SS.mmm, and one label
under a softmax head is warned about."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from actionzs.cli import main
from actionzs.options import RunOptions
from actionzs.output import hms
from actionzs.prompts import parse_labels
from actionzs.provenance import SCHEMA_VERSION, differences, settings_block
from actionzs.schema import options_of
from actionzs.testing import write_clip
from helpers_cli import FAST, by_video, read_jsonl, run_cli

LABELS = ["running", "jumping", "sitting down"]


def label_args(labels=LABELS) -> list[str]:
    return [arg for label in labels for arg in ("-l", label)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A folder of two short clips and a file that is no video."""
    folder = tmp_path_factory.mktemp("record-clips")
    write_clip(folder / "a.mp4", 20, average_fps=10, width=64, height=48, scenes=lambda i: i // 10)
    write_clip(folder / "b.mp4", 10, average_fps=10, width=64, height=48, scenes=lambda i: 2)
    (folder / "broken.mp4").write_bytes(b"\0" * 2048)
    return folder


def scan(capsys, clips, out, model_dir, *extra, labels=LABELS):
    return run_cli(capsys, "scan", clips, "-o", out, "--model", model_dir, *label_args(labels), *FAST, *extra)


# -- times -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "00:00:00.000"), (3, "00:00:03.000"), (2.5, "00:00:02.500"), (754.25, "00:12:34.250"),
    (0.0006, "00:00:00.001"), (3599.9996, "01:00:00.000"), (360000, "100:00:00.000"),
])
def test_times_print_as_fixed_hours_minutes_seconds_and_milliseconds(seconds, text):
    assert hms(seconds) == text


# -- the settings block ------------------------------------------------------------------------------

def block(labels=LABELS, **options):
    return settings_block(parse_labels(labels), RunOptions(**options), "M", "sha256:0")


def test_the_settings_block_holds_every_sampling_and_events_option_of_the_schema():
    made = block(segments=True)
    assert set(made["sampling"]) == {o.name for o in options_of("sampling")} - {"hypothesis_template"}
    assert set(made["events"]) == {o.name for o in options_of("events")}
    assert made["templates"] == ["a video of {}."] and made["labels"]["count"] == 3
    assert made["fingerprint"] == "sha256:0" and made["model"] == "M" and made["actionzs"]
    json.dumps(made)  # plain JSON


def test_the_settings_hash_follows_what_decides_the_scores():
    same = block()
    assert block(labels=list(reversed(LABELS)))["hash"] == same["hash"]  # a label set, order aside
    assert block()["hash"] == same["hash"]
    for other in (block(labels=LABELS[:2]), block(labels=["running", "jumping", "sitting: on a chair"]),
                  block(fps=2.0), block(window=4.0), block(hypothesis_template="a photo of {}."),
                  block(events={"threshold": 0.3})):
        assert other["hash"] != same["hash"]
    renamed = settings_block(parse_labels(LABELS), RunOptions(), "other/name", "sha256:0")
    assert renamed["hash"] == same["hash"]  # the same weights under another name


def test_differences_name_each_setting_that_differs():
    assert differences(block(), block()) == []
    found = differences(block(), block(labels=LABELS[:2], fps=2.0))
    assert any(f.startswith("labels: 3 labels (") and "there, 2 labels (" in f for f in found), found
    assert "sampling.fps: 1.0 there, 2.0 now" in found
    not_loaded = {**block(), "fingerprint": None}
    assert differences({**block(), "fingerprint": "sha256:1"}, not_loaded) == []  # not known yet: not compared
    assert any("model: 'M' (sha256:1) there" in f for f in differences({**block(), "fingerprint": "sha256:1"}, block()))
    assert "no settings recorded" in differences(None, block())[0]


# -- records of the command line ---------------------------------------------------------------------

def test_classify_records_and_error_records_carry_the_schema_and_settings(capsys, clips, clip_dir):
    from actionzs.models import load_encoder

    code, out, err = run_cli(capsys, "classify", clips / "a.mp4", clips / "broken.mp4", "--model", clip_dir,
                             *label_args(), *FAST, "--format", "json", "--segments")
    assert code == 1, err
    good, bad = json.loads(out)
    assert "error" in bad and "labels" in good
    for record in (good, bad):
        assert record["schema_version"] == SCHEMA_VERSION
        assert record["settings"] == good["settings"]
    settings = good["settings"]
    assert settings["fingerprint"] == load_encoder(str(clip_dir), "cpu", "float32").fingerprint
    assert settings["templates"] == ["a video of {}."] and settings["sampling"]["segments"] is True
    assert settings["sampling"]["num_frames"] == 4 and settings["labels"]["count"] == len(LABELS)

    import actionzs  # the same block from Python, as the README shows it

    clf = actionzs.pipeline(str(clip_dir), "cpu")
    run_as_cli = dict(hypothesis_template="a video of {}.", num_frames=4, top_k=5, segments=True)
    assert settings_block(*clf.prepare(LABELS, **run_as_cli), clf.model, clf.encoder.fingerprint) == settings


def test_csv_carries_the_settings_in_a_row_that_csv_reads(capsys, clips, clip_dir):
    code, out, err = run_cli(capsys, "classify", clips / "a.mp4", clips / "b.mp4", "--model", clip_dir,
                             *label_args(), *FAST, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    made = [row for row in rows if row["kind"] == "settings"]
    assert len(made) == 1 and rows[0] is made[0]  # once, before the rows made with it
    settings = json.loads(made[0]["label"])
    assert settings["hash"] == made[0]["settings_hash"] and settings["labels"]["count"] == len(LABELS)
    clip_rows = [row for row in rows if row["kind"] == "clip"]
    assert len(clip_rows) == 2 * len(LABELS)
    assert all(row["settings_hash"] == settings["hash"] and row["schema_version"] == str(SCHEMA_VERSION) for row in clip_rows)


def test_jsonl_scan_lines_each_carry_the_settings(capsys, tmp_path, clips, clip_dir):
    out = tmp_path / "out.jsonl"
    code, _, err = scan(capsys, clips, out, clip_dir)
    assert code == 1, err  # broken.mp4
    records = read_jsonl(out)
    assert len(records) == 3 and len({json.dumps(r["settings"], sort_keys=True) for r in records}) == 1
    assert all(r["schema_version"] == SCHEMA_VERSION for r in records)


# -- --resume with other settings ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def first_scan(tmp_path_factory, clips, clip_dir) -> Path:
    """A scan's results (made once), with a torn last line: resuming would rewrite them."""
    out = tmp_path_factory.mktemp("first-scan") / "out.jsonl"
    code = main([str(a) for a in ("scan", clips, "-o", out, "--model", clip_dir, *label_args(), *FAST)])
    assert code == 1  # broken.mp4
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"video": "torn')
    return out


@pytest.fixture
def scanned(tmp_path, first_scan) -> Path:
    """A copy of `first_scan` for one test to resume."""
    return Path(shutil.copy(first_scan, tmp_path / "out.jsonl"))


def whole_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.endswith("\n")]


@pytest.mark.parametrize(("change", "named"), [
    (["-l", "waving"], "labels: 3 labels"),
    (["--fps", "2", "--segments"], "sampling.fps: 1.0 there, 2.0 now"),
    (["--template", "a photo of {}."], "templates:"),
    (["--threshold", "0.3"], "events.threshold: 0.5 there, 0.3 now"),
])
def test_resume_with_other_settings_is_refused_before_the_model_loads(capsys, tmp_path, clips, scanned, change, named):
    before = scanned.read_bytes()
    missing_model = tmp_path / "no-such-model"  # refused before loading: the model is never looked at
    code, _, err = scan(capsys, clips, scanned, missing_model, "--resume", *change)
    assert code == 2, err
    assert named in err and "--force-settings" in err and str(scanned) in err and "Traceback" not in err
    assert scanned.read_bytes() == before


def test_resume_with_another_model_is_refused_once_its_weights_are_known(capsys, clips, scanned, siglip_dir):
    before = scanned.read_bytes()
    code, _, err = scan(capsys, clips, scanned, siglip_dir, "--resume")
    assert code == 2, err
    assert "model:" in err and str(siglip_dir) in err and "Traceback" not in err
    assert scanned.read_bytes() == before


def test_resume_with_the_same_settings_continues(capsys, clips, scanned, clip_dir):
    code, _, err = scan(capsys, clips, scanned, clip_dir, "--resume")
    assert code == 1, err  # broken.mp4 tried again
    records = read_jsonl(scanned)
    assert sorted(Path(r["video"]).name for r in records) == ["a.mp4", "b.mp4", "broken.mp4"]


def test_force_settings_continues_and_each_record_keeps_its_own(capsys, clips, scanned, clip_dir):
    first = by_video(whole_lines(scanned))
    code, _, err = scan(capsys, clips, scanned, clip_dir, "--resume", "--force-settings", "--threshold", "0.3")
    assert code == 1, err
    records = by_video(read_jsonl(scanned))
    kept, retried = str(clips / "a.mp4"), str(clips / "broken.mp4")
    assert records[kept] == first[kept]
    assert records[retried]["settings"]["events"]["threshold"] == 0.3 != first[kept]["settings"]["events"]["threshold"]


def test_force_settings_needs_resume(capsys, tmp_path, clips, clip_dir):
    code, _, err = scan(capsys, clips, tmp_path / "new.jsonl", clip_dir, "--force-settings")
    assert code == 2 and "--force-settings goes with --resume" in err
    assert not (tmp_path / "new.jsonl").exists()


def test_records_without_settings_are_refused_as_unknown(capsys, tmp_path, clips, clip_dir):
    out = tmp_path / "old.jsonl"
    old = {"video": str(clips / "a.mp4"), "duration": 2.0, "model": str(clip_dir), "labels": []}
    out.write_text(json.dumps(old) + "\n", encoding="utf-8")
    before = out.read_bytes()
    code, _, err = scan(capsys, clips, out, clip_dir, "--resume")
    assert code == 2 and "no settings recorded" in err
    assert out.read_bytes() == before
    code, _, err = scan(capsys, clips, out, clip_dir, "--resume", "--force-settings")
    assert code == 1, err
    assert len(read_jsonl(out)) == 3


def test_records_of_a_newer_schema_are_refused_even_with_force_settings(capsys, tmp_path, clips, clip_dir, first_scan):
    out = tmp_path / "newer.jsonl"
    record = whole_lines(first_scan)[0]
    out.write_text(json.dumps({**record, "schema_version": SCHEMA_VERSION + 1}) + "\n", encoding="utf-8")
    before = out.read_bytes()
    code, _, err = scan(capsys, clips, out, clip_dir, "--resume", "--force-settings")
    assert code == 2 and "newer actionzs" in err and f"schema {SCHEMA_VERSION + 1}" in err
    assert out.read_bytes() == before


# -- one label under a softmax head ------------------------------------------------------------------

@pytest.mark.parametrize(("model", "extra", "warned"), [
    ("clip", [], True), ("clip", ["--measure", "similarity"], False), ("siglip", [], False),
])
def test_a_single_label_under_a_softmax_head_is_warned_about_once(capsys, clips, clip_dir, siglip_dir, model, extra, warned):
    folder = clip_dir if model == "clip" else siglip_dir
    code, out, err = run_cli(capsys, "classify", clips / "a.mp4", clips / "b.mp4", "--model", folder, "-l", "running",
                             *FAST, "--format", "json", *extra)
    assert code == 0, err
    assert err.count("--measure similarity") == (1 if warned else 0), err
    assert "SingleLabelWarning" not in err and 'events={"measure"' not in err  # said once, in the CLI's words
    if warned:
        assert all(r["labels"][0]["score"] == 1.0 for r in json.loads(out))  # what the warning is about



def test_the_library_warns_a_caller_of_a_single_label_in_its_own_keywords(clips, clip_dir, siglip_dir):
    import warnings

    from actionzs import ZeroShotVideoClassifier
    from actionzs.errors import SingleLabelWarning
    from actionzs.models import load_encoder

    clip = ZeroShotVideoClassifier(load_encoder(str(clip_dir), dtype="float32"), RunOptions(num_frames=2))
    with pytest.warns(SingleLabelWarning, match=r'events=\{"measure": "similarity"') as caught:
        result = clip.classify(str(clips / "a.mp4"), ["running"])
    assert result.labels[0]["score"] == 1.0 and caught[0].filename == __file__  # the caller's line
    for call in (lambda: clip(str(clips / "a.mp4"), candidate_labels=["jumping"]),
                 lambda: clip.classify_many([str(clips / "a.mp4")], ["walking"])):
        with pytest.warns(SingleLabelWarning) as caught:
            call()
        assert caught[0].filename == __file__  # whichever entry point was called
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleLabelWarning)
        clip.classify(str(clips / "a.mp4"), ["running", "jumping"])
        clip.classify(str(clips / "a.mp4"), ["running"], events={"measure": "similarity", "threshold": 0.25})
        siglip = ZeroShotVideoClassifier(load_encoder(str(siglip_dir), dtype="float32"), RunOptions(num_frames=2))
        siglip.classify(str(clips / "a.mp4"), ["running"])  # a sigmoid head scores one label on its own
