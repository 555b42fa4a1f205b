"""revenue-experiment and revenue-report uplift through the real plugin under the stand-in lightningd: bad
input is refused by name with nothing written, an experiment starts, shows in revenue-status, survives a
plugin restart, and stops."""
from __future__ import annotations

import sqlite3

import pytest
from pyln.client import RpcError

from tests.plugin_under_test import NAME, PLUGIN
from tests.test_plugin_standin import advance, node, running  # noqa: F401,F811 - the `node` fixture

BAD = [
    ({"action": "begin"}, "action"),
    ({"action": "start", "fraction": 0.95}, "fraction"),
    ({"action": "start", "fraction": "half"}, "fraction"),
    ({"action": "start", "days": 3}, "days"),
    ({"action": "start", "days": 400}, "days"),
    ({"action": "start", "design": "ab"}, "design"),
    ({"action": "start", "design": "split", "period_days": 2}, "period_days"),
    ({"action": "start", "days": 10, "period_days": 6}, "period_days"),
    ({"action": "start", "seed": -1}, "seed"),
    ({"action": "status", "fraction": 0.5}, "fraction"),
    ({"action": "start", "arms": 2}, "arms"),
]


def experiments_in(db: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]


def test_experiment_rpcs_through_the_plugin(node, tmp_path):
    db = str(tmp_path / "regtest" / "revenue_ops.db")
    rpc = node.rpc
    assert rpc.call("revenue-experiment", {"action": "status"})["state"] == "none"
    for params, field in BAD:
        with pytest.raises(RpcError) as e:
            rpc.call("revenue-experiment", params)
        assert e.value.error["code"] == -32602 and f"'{field}'" in e.value.error["message"], (params, e.value.error)
    with pytest.raises(RpcError) as e:
        rpc.call("revenue-report", {"report_type": "uplift"})
    assert e.value.error["code"] == -32602 and "revenue-experiment start" in e.value.error["message"]
    with pytest.raises(RpcError) as e:
        rpc.call("revenue-experiment", {"action": "stop"})
    assert e.value.error["code"] == -32000
    assert experiments_in(db) == 0, "nothing written by refused calls"

    started = rpc.call("revenue-experiment", ["start", 0.5, 14])         # positional, as lightning-cli sends
    assert started["state"] == "running" and started["design"] == "switchback" and started["days"] == 14
    assert started["channels_now"] == {"control": 3, "managed": 3}
    with pytest.raises(RpcError) as e:
        rpc.call("revenue-experiment", {"action": "start"})
    assert e.value.error["code"] == -32000 and "running" in e.value.error["message"]
    advance(node, 3600)
    assert rpc.call("revenue-status")["experiment"]["state"] == "running"
    report = rpc.call("revenue-report", ["uplift"])
    assert report["complete_days"] == 0 and not report["conclusive"] and report["verdict"].startswith("too early")

    rpc.call("plugin", {"subcommand": "stop", "plugin": NAME})
    rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
    st = running(node)
    assert st["experiment"]["id"] == started["id"] and st["experiment"]["state"] == "running"
    advance(node, 1800)
    control = {s for s, a in started["arms"].items() if a["arm_now"] == "control"}
    decided = {c["scid"]: (c["last_decision"] or {}).get("branch") for c in rpc.call("revenue-status")["channels"]}
    assert {s for s, b in decided.items() if b == "control"} <= control

    stopped = rpc.call("revenue-experiment", {"action": "stop"})
    assert stopped["state"] == "stopped" and stopped["stop_reason"] == "stopped by the operator"
    assert rpc.call("revenue-status")["experiment"]["state"] == "stopped"
    assert experiments_in(db) == 1
