"""Importing actionzs changes nothing outside it; `probe`, and a command refused for bad input, run
where torch cannot be imported."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from actionzs.testing import write_clip

from helpers_cli import subprocess_env

#: Imports actionzs and every module of it, recording what the imports did to the process (fork
#: hooks and import finders of actionzs's own; torch and transformers install some of theirs).
IMPORT_EVERYTHING = """
import json, os, pkgutil, sys, importlib, traceback
fork_hooks = []
real_register = os.register_at_fork
def register_at_fork(**hooks):
    caller = traceback.extract_stack(limit=2)[0].filename
    fork_hooks.append(caller)
    real_register(**hooks)
os.register_at_fork = register_at_fork
environ, meta_path = dict(os.environ), list(sys.meta_path)
import actionzs
torch_after_package = "torch" in sys.modules
changed = set(os.environ.items()) ^ set(environ.items())
# torch and transformers change the environment on import themselves (torch._dynamo sets
# TORCHINDUCTOR_CACHE_DIR): import them first, so that only what actionzs does is counted.
import torch, torch._dynamo, transformers
environ = dict(os.environ)
names = [m.name for m in pkgutil.walk_packages(actionzs.__path__, "actionzs.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "torch_after_package": torch_after_package,
    "ray": "ray" in sys.modules,
    "modules": len(names),
    "fork_hooks": [f for f in fork_hooks if os.sep + "actionzs" + os.sep in f],
    "environ": sorted(changed | (set(os.environ.items()) ^ set(environ.items()))),
    "meta_path": [repr(f) for f in sys.meta_path if f not in meta_path and type(f).__module__.startswith("actionzs")],
}))
"""


def test_import_has_no_side_effects():
    run = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True,
                         env=subprocess_env(), timeout=300, check=True)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["torch_after_package"] is False
    assert found["ray"] is False  # the Ray engine's module imports Ray only when it runs
    assert found["modules"] > 20  # every module was imported, the heavy ones too
    assert found["fork_hooks"] == [] and found["environ"] == [] and found["meta_path"] == []


#: `actionzs probe` with torch made unimportable (None in sys.modules makes `import torch` fail).
PROBE_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
from actionzs.cli import main
code = main(["probe", "--json", sys.argv[1]])
assert "torch" not in sys.modules or sys.modules["torch"] is None
sys.exit(code)
"""


def test_probe_runs_where_torch_cannot_be_imported(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", 30, average_fps=10)
    run = subprocess.run([sys.executable, "-c", PROBE_WITHOUT_TORCH, str(clip)], capture_output=True, text=True,
                         env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    [record] = json.loads(run.stdout)
    assert (record["num_frames"], record["duration"]) == (30, 3.0)


#: A command line given to `main` with torch and transformers made unimportable: what it says
#: (stderr) and its exit status, as JSON on stdout's last line.
WITHOUT_MODELS = """
import contextlib, io, json, sys
sys.modules["torch"] = sys.modules["transformers"] = None
from actionzs.cli import main
err = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "err": err.getvalue()}))
"""


def test_bad_input_is_refused_before_any_model_loads(tmp_path):
    """Options, labels and missing inputs are checked before torch and transformers are imported
    (seconds of imports, before a model even loads), so a mistyped command line fails at once and
    leaves nothing behind."""
    clip = write_clip(tmp_path / "a.mp4", 30, average_fps=10)
    cases = {  # argv: (exit status, what the error must say)
        ("classify", str(clip), "-l", "a", "--fps", "-1"): (2, "fps must be"),
        ("classify", str(clip), "-l", "a", "--template", "no placeholder"): (2, "{}"),
        ("classify", str(tmp_path / "missing.mp4"), "-l", "a", "-l", "b"): (1, "missing.mp4: no such file"),
        ("scan", str(tmp_path / "nowhere"), "-l", "a", "-o", str(tmp_path / "out.jsonl")): (2, "nowhere: no such"),
        ("index", "--index", str(tmp_path / "lib"), str(tmp_path / "nowhere")): (2, "nowhere: no such folder or file"),
        ("index", "--index", str(tmp_path / "lib"), str(clip), "--snap-to-keyframes", "-1"): (2, "snap_to_keyframes must be"),
        ("index", "--index", str(tmp_path / "lib"), str(clip), "--keyframes", "--snap-to-keyframes", "1"): (2, "give one of them"),
        ("search", "--index", str(tmp_path / "lib")): (2, "nothing to search for"),
        ("search", "a cat", "--index", str(tmp_path / "lib"), "--top", "0"): (2, "--top must be at least 1"),
    }
    for argv, (code, says) in cases.items():
        run = subprocess.run([sys.executable, "-c", WITHOUT_MODELS, *argv], capture_output=True, text=True,
                             env=subprocess_env(), timeout=120)
        assert run.returncode == 0, run.stderr  # an import of torch would have raised here
        found = json.loads(run.stdout.strip().splitlines()[-1])
        assert found["code"] == code and says in found["err"], (argv, found)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no output, and no index, was made


#: The CLI's logging set up for `classify`, then transformers imported: its verbosity and whether
#: its progress bars are on, as JSON.
TRANSFORMERS_AFTER_THE_CLI = """
import json, sys
from actionzs.cli import _configure_logging, build_parser
_configure_logging(build_parser().parse_args(["classify", "a.mp4", "-l", "a", *sys.argv[1:]]))
assert "transformers" not in sys.modules
from transformers.utils import logging
print(json.dumps({"verbosity": logging.get_verbosity(), "bars": logging.is_progress_bar_enabled()}))
"""


def test_transformers_imported_after_the_cli_set_up_stays_quiet_unless_asked():
    """The CLI silences transformers' own warnings and bars without importing it (through its
    environment variables), so they stay off when a model loads later; --verbose or the user's own
    TRANSFORMERS_VERBOSITY leave them as they are."""
    cases = {("", None): (logging.ERROR, False), ("--verbose", None): (logging.WARNING, True),
             ("", "info"): (logging.INFO, True)}
    runs = {}
    for (flag, verbosity), _ in cases.items():
        env = {k: v for k, v in subprocess_env().items()
               if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
        if verbosity:
            env["TRANSFORMERS_VERBOSITY"] = verbosity
        runs[flag, verbosity] = subprocess.Popen(
            [sys.executable, "-c", TRANSFORMERS_AFTER_THE_CLI, *filter(None, [flag])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for case, (verbosity, bars) in cases.items():
        out, err = runs[case].communicate(timeout=300)
        assert runs[case].returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"verbosity": verbosity, "bars": bars}, case
