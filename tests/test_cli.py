"""`revops` on the command line: --help shows defaults and every bundled scenario, bad arguments and bad
scenario files end with one line (simulate and node alike), the demo is quiet, stops cleanly on Ctrl-C and
leaves nothing behind, and `revops report` renders a running node's tables."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revops.sim.lightningd import StandinLightningd
from revops.sim.scenario import SCENARIO_DIR
from tests.plugin_under_test import PLUGIN
from tests.test_plugin_standin import advance, running

ROOT = Path(__file__).resolve().parents[1]
TINY = (SCENARIO_DIR / "tiny.toml").read_text()


def revops(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kwargs)


def one_line_error(done: subprocess.CompletedProcess, prefix: str, *words: str) -> None:
    assert done.returncode == 2 and done.stdout == "", done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix) and "Traceback" not in done.stderr, done.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_help_shows_defaults_and_every_bundled_scenario():
    text = revops("simulate", "--help", env={**os.environ, "COLUMNS": "200"}).stdout
    assert "(default: 30.0)" in text and "(default: revops)" in text
    for toml in SCENARIO_DIR.glob("*.toml"):
        assert f"  {toml.stem} " in text, toml.stem
    assert "(default: unusual)" in " ".join(revops("demo", "--help").stdout.split())


@pytest.mark.parametrize("args,words", [
    (("--days", "-1"), ("--days", "'-1'", "> 0")), (("--days", "nan"), ("--days", "'nan'")),
    (("--days", "inf"), ("--days",)), (("--days", "0"), ("> 0",)), (("--seed", "١٢٣"), ("--seed",)),
])
def test_bad_arguments_are_one_line(args, words):
    one_line_error(revops("simulate", "tiny", *args), "revops simulate: ", *words)


@pytest.mark.parametrize("edit,words", [
    (lambda t: t.replace("rate_per_hour = ", "rate_per_hour = inf # ", 1), ("rate_per_hour", "finite")),
    (lambda t: t.replace("rate_per_hour = ", "rate_per_hour = nan # ", 1), ("rate_per_hour", "finite")),
    (lambda t: t.replace("fee_ppm = ", "fee_ppm = -inf # ", 1), ("finite",)),
    (lambda t: t + "\n# \xff\n", ("not UTF-8",)),
])
def test_bad_scenario_files_are_the_same_one_line_in_simulate_and_node(tmp_path, edit, words):
    bad = tmp_path / "bad.toml"
    text = edit(TINY)
    bad.write_bytes(text.encode("utf-8").replace("\xff".encode(), b"\xff"))
    sim = revops("simulate", str(bad), "--days", "1", timeout=30)
    one_line_error(sim, "revops simulate: ", *words)
    node = revops("node", str(bad), "--lightning-dir", str(tmp_path / "ld"), timeout=30)
    one_line_error(node, "revops node: ", *words)
    assert sim.stderr.split(": ", 1)[1] == node.stderr.split(": ", 1)[1]


def test_simulate_json_is_clean_json():
    import json
    done = revops("simulate", "tiny", "--days", "0.5", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["days"] == 0.5


def test_demo_is_quiet_stops_cleanly_on_ctrl_c_and_leaves_nothing(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "revops.cli", "demo", "--days", "0.25"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while not any("Press Ctrl-C" in line for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        lines.append(proc.stdout.readline())
    time.sleep(8)                              # eight simulated hours of the running node
    os.killpg(proc.pid, signal.SIGINT)         # as a terminal's Ctrl-C: the whole foreground group
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode in (0, 130), rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert len(rest.strip().splitlines()) <= 10, rest       # INFO fee decisions are not on the terminal
    assert not list(tmp_path.glob("revops-demo-*")), list(tmp_path.iterdir())


def test_report_renders_a_running_nodes_tables(tmp_path):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        running(ld)
        advance(ld, 6 * 3600)
        done = revops("report", "--rpc-file", ld.rpc_path, "--decisions", "3", env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    for title in ("P&L, last 30 days", "Channels (by net earnings)", "Recent fee decisions", "net profit, sat"):
        assert title in done.stdout
    missing = revops("report", "--rpc-file", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
