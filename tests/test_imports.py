"""Importing actionzs changes nothing outside it, and `probe` runs where torch cannot be imported."""

from __future__ import annotations

import json
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
