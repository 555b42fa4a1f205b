"""The clboss hand-off of the real plugin file, started by the stand-in lightningd beside the emulated clboss
(whole-tag-set replacement, its own tags across its restarts, surveys that reset the fees of peers it manages):
plugin stop, kill -9, clboss stopping and starting (plugin_started / plugin_stopped), dry-run, and the undo
hint of revenue-remanage pasted as printed."""
from __future__ import annotations

import os
import shlex
import signal

import pytest

from revops import clboss_sync
from revops.sim.lightningd import StandinLightningd
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario
from tests.test_plugin_standin import NAME, PLUGIN, advance, running, wait_for
from tests.test_runtime import SMALL, with_plugins


def clboss_tags(ld):
    with ld.locked_node() as node:
        return clboss_sync.parse_unmanaged(node.call("clboss-status"))


def normal_peers(ld):
    return sorted({c["peer_id"] for c in ld.rpc.call("listpeerchannels")["channels"] if c["state"] == "CHANNELD_NORMAL"})


def all_lnfee(ld):
    tags = clboss_tags(ld)
    return all("lnfee" in tags.get(p, ()) for p in normal_peers(ld))


@pytest.fixture(autouse=True)
def fast_ticks(monkeypatch):
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.2")


def standin(tmp_path, clboss=True, opts=None, node=None):
    node = node or SimNode(loads_scenario(with_plugins(clboss=True) if clboss else SMALL), seed=3,
                           lightning_dir=str(tmp_path))
    return StandinLightningd(node=node, lightning_dir=str(tmp_path), speed=0, plugins=[PLUGIN],
                             plugin_opts=opts or {}, log_stderr=False)


def test_plugin_stop_hands_every_peer_back_keeping_the_operators_tags_and_start_retakes_them(tmp_path):
    node = SimNode(loads_scenario(with_plugins(clboss=True)), seed=3, lightning_dir=str(tmp_path))
    a, b = sorted({ch.peer_id for ch in node.channels.values() if ch.state == "CHANNELD_NORMAL"})[:2]
    node.call("clboss-unmanage", {"nodeid": a, "tags": "close,open"})     # the operator's, before we start
    node.call("clboss-unmanage", {"nodeid": b, "tags": "lnfee"})
    with standin(tmp_path, node=node) as ld:
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        assert clboss_tags(ld)[a] == {"close", "lnfee", "open"}
        ld.rpc.call("plugin", {"subcommand": "stop", "plugin": NAME})
        tags = clboss_tags(ld)
        assert tags == {a: {"close", "open"}, b: {"lnfee"}}, "ours removed, the operator's tags and lnfee kept"
        assert any("handed back to clboss on stop" in line for line in ld.log_lines())
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        assert clboss_tags(ld)[a] == {"close", "lnfee", "open"}


def test_kill_9_leaves_the_tags_and_the_next_start_repairs_them(tmp_path):
    with standin(tmp_path) as ld:
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        peers = normal_peers(ld)
        os.kill(ld.plugin_pid(NAME), signal.SIGKILL)                     # a crash: no hand-back at all
        wait_for(lambda: NAME not in str(ld.rpc.call("plugin", {"subcommand": "list"})))
        assert all(clboss_tags(ld)[p] == {"lnfee"} for p in peers)
        # started again with the hand-off off: what we told clboss before the crash is taken back at once
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN, "revenue-ops-clboss-enabled": "false"})
        running(ld)
        wait_for(lambda: clboss_tags(ld) == {})


def test_handback_on_stop_off_keeps_the_peers_ours_across_a_restart(tmp_path):
    with standin(tmp_path, opts={"revenue-ops-clboss-handback-on-stop": "false"}) as ld:
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        peers = normal_peers(ld)
        ld.rpc.call("plugin", {"subcommand": "stop", "plugin": NAME})
        assert all(clboss_tags(ld)[p] == {"lnfee"} for p in peers)
        assert any("keep lnfee unmanaged in clboss (clboss-handback-on-stop is off)" in line
                   for line in ld.log_lines())
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
        running(ld)
        assert sorted(ld.rpc.call("revenue-clboss-status")["unmanaged_lnfee"]) == peers


def test_clboss_starting_and_stopping_after_the_plugin_is_noticed_at_once(tmp_path):
    with standin(tmp_path, clboss=False) as ld:
        running(ld)
        st = ld.rpc.call("revenue-clboss-status")
        assert st["clboss_available"] is False and st["unmanaged_lnfee"] == []
        advance(ld, 4200)            # our fee cycles at 60 s, 1,860 s and 3,660 s; the next one at 5,460 s
        fees = {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
                for c in ld.rpc.call("listpeerchannels")["channels"] if c["state"] == "CHANNELD_NORMAL"}
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": "clboss"})   # plugin_started
        wait_for(lambda: all_lnfee(ld))
        advance(ld, 120, settle=0.3)                                         # clboss's first survey: 60 s in
        after = {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
                 for c in ld.rpc.call("listpeerchannels")["channels"] if c["short_channel_id"] in fees}
        assert after == fees, "clboss reset fees we price"
        assert ld.rpc.call("revenue-clboss-status")["clboss_available"] is True
        ld.rpc.call("plugin", {"subcommand": "stop", "plugin": "clboss"})    # plugin_stopped
        st = ld.rpc.call("revenue-clboss-status")
        assert st["clboss_available"] is False, "available while clboss is stopped"
        peer = normal_peers(ld)[0]
        ld.rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "passive"})
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": "clboss"})
        wait_for(lambda: peer not in clboss_tags(ld))
        assert ld.rpc.call("revenue-clboss-status")["handed_back"] == [peer]


def test_dry_run_never_sends_clboss_unmanage(tmp_path):
    with standin(tmp_path, opts={"revenue-ops-dry-run": "true"}) as ld:
        sent = []
        with ld.locked_node() as node:
            real = node.clboss.call
            node.clboss.call = lambda method, params: sent.append(method) or real(method, params)
        running(ld)
        wait_for(lambda: len(ld.rpc.call("revenue-clboss-status")["pending"]) == len(normal_peers(ld)))
        advance(ld, 3 * 3600)
        assert clboss_tags(ld) == {} and "clboss-unmanage" not in sent
        ld.rpc.call("plugin", {"subcommand": "stop", "plugin": NAME})
        assert "clboss-unmanage" not in sent


def test_the_remanage_undo_hint_can_be_pasted(tmp_path):
    with standin(tmp_path) as ld:
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        peer = normal_peers(ld)[0]
        ld.rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "static", "fee_ppm": 321})
        reply = ld.rpc.call("revenue-remanage", {"peer_id": peer})
        wait_for(lambda: peer not in clboss_tags(ld))
        hint = reply["message"].split("undo with: ", 1)[1]
        argv = shlex.split(hint)
        assert argv[:3] == ["lightning-cli", "-k", "revenue-policy"] and f"peer_id={peer}" in argv
        ld.rpc.call(argv[2], dict(arg.split("=", 1) for arg in argv[3:]))   # what lightning-cli -k sends
        policy = ld.rpc.call("revenue-policy", {"action": "get", "peer_id": peer})["policy"]
        assert policy["strategy"] == "static" and policy["fee_ppm_target"] == 321
        wait_for(lambda: "lnfee" in clboss_tags(ld).get(peer, ()))


def test_a_node_shutdown_keeps_the_tags_for_the_next_start(tmp_path):
    """lightningd stops taking new RPC connections before it shuts its plugins down: the hand-back cannot run,
    the tags stay in clboss's database, and clboss leaves those fees alone until we are back."""
    with standin(tmp_path) as ld:
        running(ld)
        wait_for(lambda: all_lnfee(ld))
        peers = normal_peers(ld)
        node = ld.node
    tags = clboss_sync.parse_unmanaged(node.call("clboss-status"))
    assert all(tags[p] == {"lnfee"} for p in peers)
    assert any("keep lnfee unmanaged until the next start" in line for line in ld.log_lines())
