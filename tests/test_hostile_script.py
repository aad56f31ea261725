"""tests/hostile.py: every hostile input through the real command line, each one handled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")  # the script writes its inputs with PyAV

SCRIPT = Path(__file__).with_name("hostile.py")


def test_the_script_names_each_of_its_own_cases_once():
    import hostile

    names = [case.name for case in hostile.CLI_CASES]
    assert names and len(names) == len(set(names))


@pytest.mark.slow
def test_every_hostile_case_is_handled(tmp_path):
    """The script's last line is `N tried, M handled`; it exits 0 only when M == N. Its output
    (the cases not handled, one line each) is the message when it does not."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--keep", str(tmp_path / "inputs")], capture_output=True,
                         text=True, timeout=1800)
    lines = run.stdout.strip().splitlines()
    assert lines, run.stderr[-3000:]
    tried, _, handled, _ = lines[-1].split()
    assert run.returncode == 0 and tried == handled, run.stdout[-6000:] + run.stderr[-2000:]
