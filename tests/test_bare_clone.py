"""What a bare clone needs: tests that need ../shared skip with a how-to (and fail when strict, as under CI),
and plugins run with the tests' interpreter, whatever `python3` is first on PATH."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from revops.sim.launcher import python_wrapper

ROOT = Path(__file__).resolve().parents[1]
ONE = "tests/test_costs.py::test_open_cost_is_our_share_of_the_funding_fee_and_only_for_channels_we_opened"


def run_one(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "REVOPS_SHARED_DIR": str(tmp_path / "nowhere"), "REVOPS_STRICT_TESTS": "1" if strict else ""}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsf", ONE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_shared_a_test_skips_saying_how_to_get_it(tmp_path):
    done = run_one(tmp_path, strict=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "REVOPS_SHARED_DIR" in done.stdout and "../shared" in done.stdout


def test_strict_turns_that_skip_into_a_failure(tmp_path):
    done = run_one(tmp_path, strict=True)
    assert done.returncode == 1 and "1 error" in done.stdout and "required here" in done.stdout, done.stdout


def test_a_wrapped_plugin_runs_with_this_interpreter_not_the_one_on_path(tmp_path):
    script = tmp_path / "src" / "show.py"
    script.parent.mkdir()
    script.write_text("#!/usr/bin/env python3\nimport sys\nprint(sys.executable)\n")
    (tmp_path / "bin").mkdir()
    wrapped = python_wrapper(str(script), str(tmp_path / "bin"))
    assert os.path.basename(wrapped) == "show.py"
    out = subprocess.run([wrapped], env={"PATH": "/nonexistent"}, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == sys.executable
