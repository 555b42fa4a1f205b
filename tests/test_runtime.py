"""The runtime in-process (stepped) on the simulated node: exactly-once ingestion, crash containment,
clboss hand-off, degraded dependencies, restart from the store."""
from __future__ import annotations

import pathlib

import pytest

from actors.messages import Crash
from revops import simulate
from revops.runtime import Continue
from revops.sim.scenario import load_scenario, loads_scenario
from revops.store import Store

SMALL = (pathlib.Path(simulate.__file__).parent / "sim" / "scenarios" / "small.toml").read_text()


def with_plugins(**flags: bool) -> str:
    text = SMALL
    for name, on in flags.items():
        text = text.replace(f"{name} = {'false' if on else 'true'}", f"{name} = {'true' if on else 'false'}")
    return text


def settled_node(sim):
    return {(f["in_channel"], f["in_htlc_id"]) for f in sim.node.call("listforwards", {"status": "settled"})["forwards"]}


def settled_store(store: Store):
    return {(r[0], r[1]) for r in store.db.execute("SELECT in_channel, in_htlc_id FROM forwards WHERE status='settled'")}


def test_every_settled_forward_is_stored_and_counted_once():
    sim = simulate.start(load_scenario("small"), seed=5)
    sim.advance(2 * 86400)
    assert settled_store(sim.store) == settled_node(sim)
    st = sim.rpc("revenue-status")
    earned = {c["scid"]: c["window_fees_msat"] for c in st["channels"]}
    for scid, fees in earned.items():   # each actor's window revenue equals the store's, to the msat
        hill = next(c["hill_climb"] for c in st["channels"] if c["scid"] == scid)
        assert fees == sim.store.channel_earnings(scid, hill["window_start"])[0]
    assert st["counters"]["forwards_duplicate"] == 0


def test_a_crashing_channel_actor_restarts_from_its_checkpoint_and_the_plugin_goes_on():
    sim = simulate.start(load_scenario("small"), seed=2)
    sim.advance(6 * 3600)
    before = sim.rpc("revenue-status")
    scid = before["channels"][0]["scid"]
    sim.runtime.tell(Crash(scid))
    sim.runtime.run_until_idle()
    after = sim.rpc("revenue-status")
    row = next(c for c in after["channels"] if c["scid"] == scid)
    assert row["restarts"] == 1 and after["counters"]["actor_restarts"] == 1
    assert row["hill_climb"] == next(c for c in before["channels"] if c["scid"] == scid)["hill_climb"]
    assert any("crashed and restarted" in text and scid in text for _, text in sim.log_lines)
    sim.runtime.tell(Crash(None))             # the coordinator too
    sim.runtime.run_until_idle()
    sim.advance(6 * 3600)
    final = sim.rpc("revenue-status")
    assert final["coordinator"]["restarts"] == 1 and final["coordinator"]["fee_cycles"] > after["coordinator"]["fee_cycles"]


def test_clboss_is_told_to_leave_fees_of_managed_peers_and_gets_passive_ones_back():
    sim = simulate.start(loads_scenario(with_plugins(clboss=True)), seed=1)
    sim.advance(3600)
    peers = {c["peer_id"] for c in sim.rpc("revenue-status")["channels"]}
    unmanaged = sim.node.call("clboss-status")["unmanaged"]
    assert {p for p, tags in unmanaged.items() if p != "comment" and "lnfee" in tags} == peers
    passive = sorted(peers)[0]
    sim.rpc("revenue-policy", {"action": "set", "peer_id": passive, "strategy": "passive"})
    sim.advance(600)
    assert passive not in sim.node.call("clboss-status")["unmanaged"]


def test_missing_optional_plugins_degrade_visibly_and_nothing_breaks():
    sim = simulate.start(loads_scenario(with_plugins(sling=False, clboss=False, bookkeeper=False)), seed=1)
    sim.advance(86400)
    st = sim.rpc("revenue-status")
    assert {k: st["health"][k]["status"] for k in ("sling", "clboss", "bookkeeper")} == dict.fromkeys(
        ("sling", "clboss", "bookkeeper"), "missing")
    assert st["coordinator"]["fee_cycles"] > 40 and st["counters"]["actor_restarts"] == 0


def test_restart_from_the_store_restores_actor_state_and_hydrates_missed_forwards(tmp_path):
    db = str(tmp_path / "revenue_ops.db")
    scenario = load_scenario("small")
    sim = simulate.start(scenario, seed=4, db_path=db)
    sim.advance(86400)
    hills = {c["scid"]: c["hill_climb"] for c in sim.rpc("revenue-status")["channels"]}
    node = sim.node
    sim.close()
    node.advance_to(node.now + 6 * 3600)          # the node goes on while the plugin is away
    sim2 = simulate.start(scenario, seed=4, db_path=db, node=node)
    assert {c["scid"]: c["hill_climb"] for c in sim2.rpc("revenue-status")["channels"]} == hills
    assert settled_store(sim2.store) == settled_node(sim2)


def test_store_refuses_a_database_from_the_future(tmp_path):
    db = tmp_path / "x.db"
    Store(str(db)).close()
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version=99")
    from revops.store import StoreError
    with pytest.raises(StoreError, match="newer"):
        Store(str(db))


def test_a_retired_channel_actor_is_told_to_exit():
    """Issue 14: retired channel actors were never told to exit (one stayed alive per closed channel)."""
    sim = simulate.start(load_scenario("tiny"), seed=1)
    sim.advance(3600)
    registry = sim.runtime.asys._systemBase.actorRegistry     # simpleSystemBase: address → ref, None once exited
    live = sum(ref is not None for ref in registry.values())
    sim.node.close_channel(sim.node.open_channels()[0].scid)
    sim.advance(3600)
    assert any("its actor is retired" in text for _, text in sim.log_lines)
    assert sum(ref is not None for ref in registry.values()) == live - 1
    sim.close()


def test_after_a_crash_the_forwards_counted_since_the_checkpoint_are_kept():
    """Issue 14 item 6: the restored checkpoint dropped the forwards counted since it (a lower rate for the
    climber than the store holds). Every channel actor crashes mid-window; their figures match the store."""
    sim = simulate.start(load_scenario("small"), seed=2, options={"revenue-ops-fee-interval": 7200})
    sim.advance(6 * 3600 + 5400)                       # 1.5 h of forwards since the last fee cycle
    before = {c["scid"]: c for c in sim.rpc("revenue-status")["channels"]}
    assert sum(c["window_forwards"] for c in before.values()) > 0
    for scid in before:                                # crashes happen on the loop, inside a message
        sim.runtime.post(Continue(lambda scid=scid: sim.runtime.tell(Crash(scid))))
    sim.runtime.run_until_idle()
    after = {c["scid"]: c for c in sim.rpc("revenue-status")["channels"]}
    for scid, c in after.items():
        assert c["restarts"] == 1
        start = c["hill_climb"]["window_start"]
        assert (c["window_fees_msat"], c["window_forwards"]) == sim.store.channel_earnings(scid, start)
        assert c["window_forwards"] == before[scid]["window_forwards"]
    sim.close()


def test_a_reconnect_storm_is_one_channel_refresh_per_tick():
    """Issue 14 item 7: every connect/disconnect asked for a full listpeerchannels (2,000 calls for 1,000
    peers reconnecting; bench/reconnect_storm.py measures that size)."""
    from revops.sim.faults import FaultyRpc
    from revops.sim.node import SimNode
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=1)
    rpc = FaultyRpc(node)
    sim = simulate.start(scenario, node=node, rpc=rpc)
    sim.advance(3600)
    before = rpc.calls["listpeerchannels"]
    peers = sorted({c.peer_id for c in node.open_channels()})
    for _ in range(10):
        for pid in peers:
            node.disconnect_peer(pid)
            node.connect_peer(pid)
    sim.runtime.run_until_idle()
    sim.advance(sim.step_seconds)                 # the next tick serves what came meanwhile
    # one at once, one at the next tick; the fee and rebalance cycles of that tick read one more between them
    assert rpc.calls["listpeerchannels"] - before <= 4, rpc.calls["listpeerchannels"] - before
    assert all(c["peer_connected"] for c in sim.rpc("revenue-status")["channels"])
    sim.close()
