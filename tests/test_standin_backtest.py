"""revenue-backtest through the real plugin under the stand-in lightningd, and `revops backtest` on it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from pyln.client import RpcError

from revops.sim.lightningd import StandinLightningd
from tests.plugin_under_test import PLUGIN, wait_running

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "revops.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with StandinLightningd("small", lightning_dir=str(tmp_path_factory.mktemp("ln")), seed=3, speed=0,
                           plugins=[PLUGIN], log_stderr=False) as ld:
        wait_running(ld)
        yield ld


@pytest.mark.parametrize("params, field", [
    ({"seeds": 0}, "seeds"), ({"seeds": 21}, "seeds"), ({"days": "thirty"}, "days"), ({"days": 0}, "days"),
    ({"replay_days": 61}, "replay_days"), ({"seeds": True}, "seeds"), ({"window": 3}, "window")])
def test_bad_input_is_rejected_naming_the_field(node, params, field):
    with pytest.raises(RpcError) as e:
        node.rpc.call("revenue-backtest", params)
    assert e.value.error["code"] == -32602
    assert f"'{field}'" in e.value.error["message"]


def test_refuses_with_too_little_history_then_answers(node):
    first = node.rpc.call("revenue-backtest", {"seeds": 1})
    assert first["status"] == "refused" and "too little history" in first["reason"]
    assert first["history"]["days"] < 3
    out = cli("backtest", "--rpc-file", node.rpc_path, "--seeds", "1")
    assert out.returncode == 1 and "refused" in out.stdout and "too little history" in out.stdout

    for _ in range(4 * 8):                       # four days, in steps the plugin keeps up with
        node.rpc.call("dev-sim-advance", {"seconds": 3 * 3600})
        time.sleep(0.1)
    time.sleep(1.0)
    answer = node.rpc.call("revenue-backtest", {"days": 4, "seeds": 2, "replay_days": 2})
    assert answer["status"] == "ok", answer
    h = answer["history"]
    assert 3 <= h["days"] <= 4.01 and h["forwards"] >= 50 and h["channels"] == 6
    assert any("days of history" in w for w in h["warnings"])      # < 14 days: said so
    assert answer["seeds_run"] == 2 and answer["replay_days"] == 2
    for p in ("current", "ours", "best_static"):
        ci = answer["policies"][p]["net_profit_sat"]
        assert ci["n"] == 2 and ci["lo"] <= ci["mean"] <= ci["hi"]
    scids = {c["short_channel_id"] for c in node.rpc.listpeerchannels()["channels"]}
    assert {c["scid"] for c in answer["market"]["channels"]} <= scids
    assert set(answer["best_static_ppm"]) <= scids

    shown = cli("backtest", "--rpc-file", node.rpc_path, "--days", "4", "--seeds", "1", "--replay-days", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    again = json.loads(shown.stdout)
    assert again["status"] == "ok" and again["history"]["forwards"] >= h["forwards"]
    table = cli("backtest", "--rpc-file", node.rpc_path, "--days", "4", "--seeds", "1", "--replay-days", "1")
    assert table.returncode == 0, table.stderr
    for text in ("your current fees (static)", "cl-revenue-ops", "best static fee per channel", "Estimated market",
                 f"{again['history']['forwards']:,} forwards"):
        assert text in table.stdout, (text, table.stdout)
