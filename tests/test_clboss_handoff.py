"""The clboss hand-off in-process (stepped runtime on the simulated node and its emulated clboss): each case of
issue 19 and the dry-run case of issue 14 item 3. tests/test_clboss_standin.py runs the real plugin file."""
from __future__ import annotations

from revops import clboss_sync, simulate
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario
from tests.test_runtime import SMALL, with_plugins

CLBOSS = with_plugins(clboss=True)


def tags(sim, peer):
    """What clboss itself holds for a peer (its status, as an operator reads it)."""
    return clboss_sync.parse_unmanaged(sim.node.call("clboss-status")).get(peer, frozenset())


def start(options=None, clboss=True, **kwargs):
    """The plugin on a node whose clboss runs (or, clboss=False, is not started yet)."""
    return simulate.start(loads_scenario(CLBOSS if clboss else SMALL), seed=1, options=options, **kwargs)


def peers_of(sim):
    return sorted({ch.peer_id for ch in sim.node.channels.values() if ch.state == "CHANNELD_NORMAL"})


def unmanage(sim, peer, text):
    sim.node.call("clboss-unmanage", {"nodeid": peer, "tags": text})


def test_operator_tags_survive_the_take_and_the_hand_back():
    node = SimNode(loads_scenario(CLBOSS), seed=1)
    a, b, c = sorted({ch.peer_id for ch in node.channels.values() if ch.state == "CHANNELD_NORMAL"})[:3]
    for peer, text in ((a, "close,open"), (b, "balance"), (c, "lnfee")):   # the operator's, before we start
        node.call("clboss-unmanage", {"nodeid": peer, "tags": text})
    sim = simulate.start(loads_scenario(CLBOSS), seed=1, node=node)
    sim.advance(600)
    assert tags(sim, a) == {"close", "lnfee", "open"} and tags(sim, b) == {"balance", "lnfee"}
    st = sim.rpc("revenue-clboss-status")
    assert c in st["operator_lnfee"] and c not in st["unmanaged_lnfee"]
    for peer in (a, b, c):
        sim.rpc("revenue-remanage", {"peer_id": peer})
    sim.advance(600)
    assert tags(sim, a) == {"close", "open"} and tags(sim, b) == {"balance"}
    assert tags(sim, c) == {"lnfee"}, "the operator's own lnfee is never removed"


def test_clboss_restarting_during_a_policy_change_is_caught_up_when_it_is_back():
    sim = start()
    sim.advance(600)
    peer = peers_of(sim)[0]
    assert tags(sim, peer) == {"lnfee"}
    sim.node.set_plugin_installed("clboss", False)          # clboss restarts: first it is gone...
    sim.rpc("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "passive"})
    sim.advance(300)
    st = sim.rpc("revenue-clboss-status")
    assert st["clboss_available"] is False and peer in st["unmanaged_lnfee"]
    sim.node.set_plugin_installed("clboss", True)           # ...then back (plugin_started)
    sim.runtime.run_until_idle()
    assert tags(sim, peer) == set()
    st = sim.rpc("revenue-clboss-status")
    assert st["clboss_available"] is True and st["handed_back"] == [peer] and peer not in st["unmanaged_lnfee"]
    assert any("clboss stopped" in text for _, text in sim.log_lines)


def test_clboss_started_after_the_plugin_leaves_our_fees_alone():
    sim = start(clboss=False)
    sim.advance(2 * 3600)                                   # the plugin prices its channels without clboss
    st = sim.rpc("revenue-clboss-status")
    assert st["clboss_available"] is False and st["unmanaged_lnfee"] == []
    fees = {ch.scid: ch.fee_ppm for ch in sim.node.channels.values() if ch.state == "CHANNELD_NORMAL"}
    sim.node.set_plugin_installed("clboss", True)           # its survey comes 60 s after it starts
    sim.runtime.run_until_idle()
    assert all(tags(sim, p) == {"lnfee"} for p in peers_of(sim))
    sim.advance(120)
    assert {s: sim.node.channels[s].fee_ppm for s in fees} == fees, "clboss's survey reset fees we set"


def test_clboss_found_later_by_the_periodic_pass_without_a_notification():
    sim = start(clboss=False)
    sim.advance(600)
    sim.node.plugins["clboss"] = True                       # no plugin_started (e.g. it finished init late)
    sim.node.clboss.start_plugin()
    sim.advance(clboss_sync.RETRY_MAX_SECONDS + 300)
    assert all(tags(sim, p) == {"lnfee"} for p in peers_of(sim))


def test_someone_removing_our_tag_is_repaired_at_the_next_periodic_pass():
    sim = start()
    sim.advance(600)
    peer = peers_of(sim)[0]
    unmanage(sim, peer, "balance")                          # e.g. an operator's script resets the tag set
    sim.advance(clboss_sync.RESYNC_SECONDS + 300)
    assert tags(sim, peer) == {"balance", "lnfee"}


def test_a_closed_channel_hands_its_peer_back():
    sim = start()
    sim.advance(600)
    ch = next(c for c in sim.node.channels.values() if c.state == "CHANNELD_NORMAL"
              and sum(d.peer_id == c.peer_id for d in sim.node.channels.values()) == 1)
    assert tags(sim, ch.peer_id) == {"lnfee"}
    sim.node.close_channel(ch.scid)
    sim.advance(3600)
    assert tags(sim, ch.peer_id) == set()


def test_clboss_enabled_off_hands_everything_back_and_on_again_retakes():
    sim = start()
    sim.advance(600)
    peers = peers_of(sim)
    sim.rpc("revenue-config", {"action": "set", "key": "clboss_enabled", "value": False})
    assert all(tags(sim, p) == set() for p in peers)
    assert sim.rpc("revenue-clboss-status")["unmanaged_lnfee"] == []
    sim.rpc("revenue-config", {"action": "set", "key": "clboss_enabled", "value": True})
    assert all(tags(sim, p) == {"lnfee"} for p in peers)


def test_a_failed_unmanage_is_retried_with_backoff_logged_and_shown():
    from pyln.client import RpcError

    sim = start()
    sim.advance(600)
    peer = peers_of(sim)[0]
    real = sim.node.clboss.call
    failing = {"on": True}

    def flaky(method, params):
        if method == "clboss-unmanage" and failing["on"]:
            raise RpcError(method, params, {"code": -4, "message": "Plugin terminated before replying to RPC call."})
        return real(method, params)

    sim.node.clboss.call = flaky
    sim.rpc("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "passive"})
    st = sim.rpc("revenue-clboss-status")
    assert st["failures"] == 1 and "Plugin terminated" in st["last_error"]
    assert st["pending"] and st["pending"][0]["peer_id"] == peer and st["pending"][0]["action"] == "hand_back"
    assert st["next_sync_at"] == st["last_pass"]["at"] + clboss_sync.retry_delay(1)
    assert any("clboss-unmanage" in text and "retried in" in text for level, text in sim.log_lines
               if level == "unusual")
    failing["on"] = False
    sim.advance(clboss_sync.retry_delay(1) + 300)
    assert tags(sim, peer) == set()
    st = sim.rpc("revenue-clboss-status")
    assert st["failures"] == 0 and st["last_error"] is None and st["pending"] == []


def test_dry_run_sends_no_clboss_unmanage_and_shows_what_it_would_do():
    sent = []
    sim = start(options={"revenue-ops-dry-run": True})
    real = sim.node.clboss.call
    sim.node.clboss.call = lambda method, params: sent.append(method) or real(method, params)
    sim.advance(6 * 3600)
    assert all(tags(sim, p) == set() for p in peers_of(sim))
    assert "clboss-unmanage" not in sent and "clboss-status" in sent
    st = sim.rpc("revenue-clboss-status")
    assert st["dry_run"] is True and st["unmanaged_lnfee"] == []
    assert {a["peer_id"] for a in st["pending"]} == set(peers_of(sim))
