"""The real plugin file, started by the stand-in lightningd exactly as lightningd starts it.

Covers the runtime contract: manifest, one live actor per normal channel, channels opening and closing
mid-run, state kept across `plugin stop`/`plugin start` and across kill -9, and clear errors for bad
options and bad RPC parameters.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
from pyln.client import RpcError

from revops import config as cfgmod
from revops import rpc as rpcmod
from revops.sim.lightningd import StandinLightningd

from tests.plugin_under_test import NAME, PLUGIN


def wait_for(fn, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {fn}")
        time.sleep(interval)


def status(ld):
    return ld.rpc.call("revenue-status")


def running(ld):
    return wait_for(lambda: (s := status(ld))["status"] == "running" and s)


def normal_scids(ld):
    return {c["short_channel_id"] for c in ld.rpc.call("listpeerchannels")["channels"]
            if c["state"] == "CHANNELD_NORMAL"}


def advance(ld, seconds, settle=1.5):
    """Move virtual time, then give the plugin's clock (1 s ticks) time to see it and act."""
    ld.rpc.call("dev-sim-advance", {"seconds": seconds})
    time.sleep(settle)


def settled_in_node(ld):
    return {(f["in_channel"], f["in_htlc_id"]) for f in ld.rpc.call("listforwards", {"status": "settled"})["forwards"]}


def settled_in_db(db_path):
    with sqlite3.connect(db_path) as db:
        return {(r[0], r[1]) for r in db.execute("SELECT in_channel, in_htlc_id FROM forwards WHERE status='settled'")}


@pytest.fixture
def node(tmp_path):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        running(ld)
        yield ld


def test_manifest_lists_every_rpc_and_option(tmp_path):
    trace: list = []
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[PLUGIN],
                           trace=trace, log_stderr=False):
        manifest = next(m["msg"]["result"] for m in trace
                        if m["dir"] == "from" and "result" in m["msg"] and "rpcmethods" in m["msg"]["result"])
    methods = {m["name"] for m in manifest["rpcmethods"]}
    assert methods == {spec.name for spec in rpcmod.METHODS}
    options = {o["name"] for o in manifest["options"]}
    assert options == {o.name for o in cfgmod.OPTIONS} | set(cfgmod.RETIRED)
    dynamic = {o["name"] for o in manifest["options"] if o.get("dynamic")}
    assert dynamic == {o.name for o in cfgmod.OPTIONS if o.mutable}
    assert {o["name"] for o in manifest["options"] if o.get("deprecated")} == set(cfgmod.RETIRED)
    assert {"forward_event", "channel_state_changed", "connect", "disconnect", "block_added", "shutdown"} <= set(
        manifest["subscriptions"])
    assert not manifest.get("hooks"), "no hook: the plugin must never sit in the path of an HTLC"


def test_status_shows_one_live_actor_per_normal_channel(node):
    advance(node, 3600)
    st = status(node)
    assert st["version"] >= "1.4.0" and st["config"]["fee_range_ppm"] == [10, 5000]
    assert {c["scid"] for c in st["channels"]} == normal_scids(node)
    for c in st["channels"]:
        assert c["flow_class"] in ("source", "sink", "balanced", "congested", "unknown")
        assert c["last_message_at"] >= st["coordinator"]["now"] - 3600
        assert c["restarts"] == 0 and "ladder" in c["hill_climb"] and "search" in c
    assert st["health"]["lightningd"]["status"] == "ok"
    assert st["health"]["sling"]["status"] in ("ok", "missing")


def test_channel_opened_mid_run_gets_an_actor_and_a_closed_one_loses_it(node):
    before = {c["scid"] for c in status(node)["channels"]}
    scid = node.rpc.call("dev-sim-openchannel", {"capacity_sat": 3_000_000, "local_sat": 0,
                                                 "opener": "remote"})["short_channel_id"]
    advance(node, 3 * 3600)
    assert scid in normal_scids(node)
    wait_for(lambda: {c["scid"] for c in status(node)["channels"]} == before | {scid})
    victim = sorted(before)[0]
    node.rpc.call("dev-sim-closechannel", {"short_channel_id": victim})
    advance(node, 600)
    wait_for(lambda: victim not in {c["scid"] for c in status(node)["channels"]})
    assert any(f"channel {victim} left CHANNELD_NORMAL" in line for line in node.log_lines())


def test_plugin_stop_start_keeps_policies_config_and_actor_state(node, tmp_path):
    advance(node, 2 * 3600)
    peer = status(node)["channels"][0]["peer_id"]
    node.rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "static", "fee_ppm": 321})
    node.rpc.call("revenue-config", {"action": "set", "key": "max_fee_ppm", "value": 4000})
    advance(node, 2 * 3600)
    hills = {c["scid"]: c["hill_climb"] for c in status(node)["channels"]}
    node.rpc.call("plugin", {"subcommand": "stop", "plugin": NAME})
    assert NAME not in str(node.rpc.call("plugin", {"subcommand": "list"}))
    node.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
    st = running(node)
    assert st["config"]["fee_range_ppm"] == [10, 4000]
    assert node.rpc.call("revenue-policy", {"action": "get", "peer_id": peer})["policy"]["fee_ppm_target"] == 321
    assert {c["scid"]: c["hill_climb"] for c in st["channels"]} == hills


def test_kill_9_then_start_loses_no_forward_and_counts_none_twice(node, tmp_path):
    db = str(tmp_path / "regtest" / "revenue_ops.db")
    advance(node, 6 * 3600)
    pid = node.plugin_pid(NAME)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: NAME not in str(node.rpc.call("plugin", {"subcommand": "list"})))
    advance(node, 6 * 3600, settle=0.1)          # forwards happen while the plugin is down
    node.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
    running(node)
    expected = settled_in_node(node)
    assert len(expected) > 10
    wait_for(lambda: settled_in_db(db) == expected)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM forwards").fetchone()[0] == len(
            node.rpc.call("listforwards")["forwards"]) - sum(
            1 for f in node.rpc.call("listforwards")["forwards"] if f["status"] == "offered")


def test_bad_option_stops_the_plugin_with_a_message_naming_it(tmp_path):
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=1, speed=0, log_stderr=False) as ld:
        for option, value in [("revenue-ops-max-fee-ppm", "0"), ("revenue-ops-scarcity-threshold", "1.5"),
                              ("revenue-ops-dry-run", "maybe"), ("revenue-ops-min-fee-ppm", "6000"),
                              ("revenue-ops-prometheus-port", "99999")]:
            with pytest.raises(RpcError) as err:
                ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN, option: value})
            message = err.value.error["message"]
            if message.endswith(f"Invalid argument '{value}'"):   # a bool: lightningd itself refuses it
                assert option not in message                           # ... naming no option, as lightningd
            else:
                assert "disabled itself" in message and option in message, message
            assert NAME not in str(ld.rpc.call("plugin", {"subcommand": "list"}))


@pytest.mark.parametrize("method,params,field", [
    ("revenue-config", {"action": "set", "key": "max_fee_ppm", "value": -1}, "max_fee_ppm"),
    ("revenue-config", {"action": "set", "key": "min_fee_ppm", "value": 9999}, "min_fee_ppm"),
    ("revenue-config", {"action": "explode"}, "action"),
    ("revenue-config", {"action": "get", "key": "nosuchkey"}, "key"),
    ("revenue-config", {"action": "set", "key": "enable_prometheus", "value": "true"}, "key"),
    ("revenue-policy", {"action": "set", "peer_id": "02deadbeef", "strategy": "static"}, "peer_id"),
    ("revenue-policy", {"action": "set", "peer_id": "02" + "ab" * 32, "strategy": "turbo"}, "strategy"),
    ("revenue-policy", {"action": "set", "peer_id": "02" + "ab" * 32, "fee_ppm": "abc"}, "fee_ppm"),
    ("revenue-policy", {"action": "frobnicate"}, "action"),
    ("revenue-status", {"channel_id": "not-a-scid"}, "channel_id"),
    ("revenue-fee-debug", {"limit": 0}, "limit"),
    ("revenue-analyze", {"bogus": 1}, "bogus"),
])
def test_bad_rpc_input_gets_an_error_naming_the_field_and_changes_nothing(node, method, params, field):
    before_cfg = node.rpc.call("revenue-config", {"action": "get"})
    before_pol = node.rpc.call("revenue-policy", {"action": "list"})
    with pytest.raises(RpcError) as err:
        node.rpc.call(method, params)
    assert f"'{field}'" in err.value.error["message"]
    assert err.value.error["code"] == -32602
    assert node.rpc.call("revenue-config", {"action": "get"}) == before_cfg
    assert node.rpc.call("revenue-policy", {"action": "list"}) == before_pol


def test_positional_policy_forms_bind(node):
    peer = status(node)["channels"][0]["peer_id"]
    node.rpc.call("revenue-policy", ["set", peer, "static", "enabled", 150])
    node.rpc.call("revenue-policy", ["tag", peer, "whale"])
    assert node.rpc.call("revenue-policy", ["find", "whale"])["peers"] == [peer]
    assert node.rpc.call("revenue-policy", ["get", peer])["policy"]["tags"] == ["whale"]
