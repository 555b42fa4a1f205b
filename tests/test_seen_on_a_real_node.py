"""Runtime defects seen on a real Core Lightning v25.12.1 node (issue 16): log lines in ASCII, a lowered
interval moving the cycle already scheduled, the real blockheight right after start, and revenue-status
refusing an unknown channel like revenue-analyze does."""
from __future__ import annotations

import pytest
from pyln.client import RpcException

from revops import simulate
from revops.plugin_main import ascii_log
from revops.sim.scenario import load_scenario


@pytest.fixture
def sim():
    s = simulate.start(load_scenario("tiny"), seed=1)
    yield s
    s.close()


def test_log_lines_reach_lightningd_in_ascii():
    line = ascii_log("fee 1x2x0 120→150 ppm: vegas: floor ×1.20 → 90 ppm, use ≤ 80% … ünïcode")
    assert line == "fee 1x2x0 120->150 ppm: vegas: floor x1.20 -> 90 ppm, use <= 80% ... \\xfcn\\xefcode"
    assert line.isascii()


def test_the_blockheight_is_the_nodes_right_after_start(sim):
    status = sim.rpc("revenue-status")
    assert status["coordinator"]["blockheight"] == sim.node.blockheight > 0


def test_lowering_an_interval_moves_the_cycle_already_scheduled(sim):
    sim.advance(3 * 3600)
    before = sim.rpc("revenue-status")["coordinator"]
    sim.rpc("revenue-config", {"action": "set", "key": "fee_interval", "value": 600})
    after = sim.rpc("revenue-status")["coordinator"]
    assert after["next_fee_cycle_at"] == before["next_fee_cycle_at"] - (1800 - 600)
    sim.rpc("revenue-config", {"action": "set", "key": "fee_interval", "value": 3600})   # longer: next cycle
    assert sim.rpc("revenue-status")["coordinator"]["next_fee_cycle_at"] == after["next_fee_cycle_at"]


def test_status_refuses_an_unknown_channel_like_analyze(sim):
    sim.advance(3600)
    for method in ("revenue-status", "revenue-analyze"):
        with pytest.raises(RpcException) as e:
            sim.rpc(method, {"channel_id": "999x9x9"})
        assert e.value.code == -32602 and "'channel_id'" in e.value.message and "999x9x9" in e.value.message
    known = sim.rpc("revenue-status")["channels"][0]["scid"]
    assert [c["scid"] for c in sim.rpc("revenue-status", {"channel_id": known})["channels"]] == [known]
