"""Bounded waits (revops/waits.py) and the runtime's answer guarantee: every IoRequest gets an IoResult
whatever is raised, every fan-out and cycle ends by its replies or by its deadline, every RPC answers.

The regression tests here reproduce issue 14's items 1 and 2 (each failed on the code before the fix)."""
from __future__ import annotations

import json

import pytest
from thespian.actors import ActorExitRequest

from actors.messages import Crash

from revops import simulate
from revops.node import MalformedReply, SocketRpc
from revops.sim.faults import FaultyRpc
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario
from revops.waits import Waits
from tests.test_socket_rpc import serve


# --- the pure part ------------------------------------------------------------------------------
def test_a_wait_completes_by_its_replies_and_ignores_late_or_unexpected_ones():
    w = Waits()
    w.start("k", "fan-out", ["a", "b"], now=100, timeout=30)
    assert w.reply("k", "x") is None                 # not expected
    assert not w.reply("k", "a").complete
    assert w.reply("k", "b").complete
    assert w.end("k") is not None and w.reply("k", "a") is None   # after the end: late
    assert w.expire(10**9) == []


def test_an_expired_wait_names_who_did_not_reply_and_is_counted():
    w = Waits()
    w.start(1, "status fan-out", ["c1", "c2", "c3"], now=100, timeout=30)
    w.start(2, "fee cycle", ["feerates"], now=110, timeout=60)
    w.reply(1, "c2")
    assert w.expire(129) == []
    [late] = w.expire(130)
    assert late.missing == ["c1", "c3"] and 1 not in w
    assert "no reply from c1, c3 after 30 s" in late.describe(130)
    assert w.expired == {"status fan-out": 1} and len(w) == 1
    assert [x.key for x in w.expire(170)] == [2] and w.expired["fee cycle"] == 1


def test_a_wait_with_nobody_to_wait_for_is_complete_at_once():
    w = Waits()
    assert w.start("k", "status fan-out", [], now=0, timeout=10).complete


# --- SocketRpc: malformed replies are named, never a stray exception ---------------------------
@pytest.mark.parametrize("reply", [b'{"jsonrpc": "2.0", "id": 1, "result": {"id": "02', b'\xff\xfe\n\n',
                                   b'{"jsonrpc": "2.0", "id": 1}\n\n', b'[1, 2]\n\n'])
def test_socket_rpc_names_a_cut_off_or_malformed_reply(tmp_path, reply):
    path = str(tmp_path / "rpc")
    server = serve(path, [reply])       # and close: a cut-off reply ends with the connection
    with pytest.raises(MalformedReply):
        SocketRpc(path, timeout=5).call("getinfo")
    server.close()


# --- item 1: an io call failing with anything still answers --------------------------------------
class RawFaults(FaultyRpc):
    """Raises what a raw JSON-RPC client raises on a garbled reply, once per listed method."""
    raw: dict = {}

    def call(self, method, params=None):
        make = self.raw.pop(method, None)
        if make is not None:
            self.node.call(method, params)
            raise make()
        return super().call(method, params)


@pytest.mark.parametrize("make", [lambda: json.JSONDecodeError("Unterminated string", '{"result": "', 11),
                                  lambda: KeyError("result"),
                                  lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")])
def test_one_garbled_reply_does_not_stop_fee_management(make):
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=1)
    rpc = RawFaults(node)
    sim = simulate.start(scenario, node=node, rpc=rpc, options={"revenue-ops-fee-interval": 600})
    sim.advance(1800)
    before = sim.rpc("revenue-status")["coordinator"]["fee_cycles"]
    rpc.raw = {"feerates": make}
    sim.advance(2 * 3600)
    after = sim.rpc("revenue-status")["coordinator"]
    assert after["fee_cycles"] >= before + 8, after
    sim.close()


# --- item 2: an actor whose stored state no longer structures -------------------------------------
def test_unreadable_stored_state_is_kept_aside_and_the_channel_starts_fresh(tmp_path):
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=4)
    db = str(tmp_path / "r.db")
    sim = simulate.start(scenario, node=node, db_path=db)
    sim.advance(6 * 3600)
    scids = [c["scid"] for c in sim.rpc("revenue-status")["channels"]]
    renamed, garbage = scids[0], scids[1]
    row = json.loads(sim.store.db.execute("SELECT state_json FROM channel_actors WHERE scid=?",
                                          (renamed,)).fetchone()[0])
    row["hill_v2"] = row.pop("hill")                     # an upgrade renamed a field
    sim.store.db.execute("UPDATE channel_actors SET state_json=? WHERE scid=?", (json.dumps(row), renamed))
    sim.store.db.execute("UPDATE channel_actors SET state_json='{not json' WHERE scid=?", (garbage,))
    sim2 = simulate.start(scenario, node=node, db_path=db)   # kill -9 and start again
    status = sim2.rpc("revenue-status")
    assert sorted(c["scid"] for c in status["channels"]) == sorted(scids)
    kept = {q["scid"]: q for q in sim2.store.quarantined_states()}
    assert set(kept) == {renamed, garbage} and "hill" in kept[renamed]["error"]
    assert json.loads(kept[renamed]["state_json"])["hill_v2"] == row["hill_v2"]
    assert status["counters"]["states_quarantined"] == 2
    assert sum("kept aside" in text for _, text in sim2.log_lines) == 2
    sim2.advance(3 * 3600)                               # and it is managed again, from a fresh state
    assert sim2.rpc("revenue-status")["coordinator"]["fee_cycles"] > 0
    assert not sim2.rpc("revenue-status")["unanswered"]
    sim2.close()


def test_persisted_actor_state_carries_a_version(tmp_path):
    sim = simulate.start(load_scenario("tiny"), seed=1)
    sim.advance(3600)
    states = sim.store.load_actor_states()
    assert states and all(s["version"] == 1 for s in states.values())
    sim.close()


def test_an_actor_that_cannot_start_answers_with_its_error(monkeypatch):
    from actors import channel
    scenario = load_scenario("tiny")
    boom = {"n": 0}
    real = channel.fees.initial_state

    def failing(view, now):
        boom["n"] += 1
        if boom["n"] == 1:
            raise RuntimeError("no initial state for this channel")
        return real(view, now)
    monkeypatch.setattr(channel.fees, "initial_state", failing)
    sim = simulate.start(scenario, seed=1)
    sim.advance(3600)
    status = sim.rpc("revenue-status")
    [bad] = status["degraded_channels"]
    assert "could not start" in bad["degraded"] and "no initial state" in bad["degraded"]
    with pytest.raises(Exception, match="could not start"):
        sim.rpc("revenue-set-fee", {"channel_id": bad["scid"], "fee_ppm": 100})
    assert bad["scid"] not in {c["scid"] for c in status["channels"]}
    rebalances = status["coordinator"]["rebalancing"]["cycles"]
    sim.advance(3 * 3600)      # it answers the econ query too, a separate one or the one in a FeeCycle
    assert sim.rpc("revenue-status")["coordinator"]["rebalancing"]["cycles"] > rebalances
    assert sim.runtime.waits_expired["rebalance cycle"] == 0
    sim.close()


# --- every fan-out has a deadline -----------------------------------------------------------------
def test_a_silent_channel_actor_gets_a_partial_status_naming_it():
    sim = simulate.start(load_scenario("tiny"), seed=2)
    sim.advance(3600)
    status = sim.rpc("revenue-status")
    victim = status["channels"][0]["scid"]
    sim.runtime.tell(Crash(victim, silent=True))          # the actor is gone, its address stays
    sim.runtime.run_until_idle()
    partial = sim.rpc("revenue-status")
    assert partial["unanswered"] == [victim]
    assert victim not in {c["scid"] for c in partial["channels"]}
    assert sim.rpc_waits[-1][1] <= 2 * sim.runtime.config.rpc_timeout_seconds
    assert any("status fan-out: no reply from " + victim in text for _, text in sim.log_lines)
    assert sim.runtime.waits_expired["status fan-out"] == 1
    sim.advance(3 * 3600)                                 # and both cycles go on without it
    after = sim.rpc("revenue-status")["coordinator"]
    assert after["fee_cycles"] > status["coordinator"]["fee_cycles"]
    assert after["last_rebalance_done_at"] > status["coordinator"]["last_rebalance_done_at"]
    sim.close()


def test_every_rpc_is_answered_even_when_the_coordinator_is_gone():
    sim = simulate.start(load_scenario("tiny"), seed=2)
    sim.advance(3600)
    sim.runtime.asys.tell(sim.runtime.coordinator, ActorExitRequest())
    sim.runtime.run_until_idle()
    for method in ("revenue-status", "revenue-rebalance-debug"):
        with pytest.raises(Exception, match="did not answer within 30 s"):
            sim.rpc(method)
        assert sim.rpc_waits[-1][1] <= 2 * sim.runtime.config.rpc_timeout_seconds
    sim.close()


def test_a_channel_started_fresh_keeps_its_gossip_budget():
    """Found by the random sequences: after its state was quarantined a channel started with no update
    history, and could broadcast more than max_fee_updates_per_day in 24 h."""
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=10)
    sim = simulate.start(scenario, node=node, options={"revenue-ops-fee-interval": 600})
    sim.advance(8 * 3600)
    chans = sim.rpc("revenue-status")["channels"]
    scid = max(chans, key=lambda c: len(c["hill_climb"]["update_times"]))["scid"]
    sent = sim.store.broadcast_times(scid, sim.runtime.now - 86400)
    assert sent
    sim.store.db.execute("UPDATE channel_actors SET state_json='{cut off' WHERE scid=?", (scid,))
    again = simulate.start(scenario, node=node, db_path=sim.store.path, options={"revenue-ops-fee-interval": 600})
    row = next(c for c in again.rpc("revenue-status")["channels"] if c["scid"] == scid)
    assert set(sent) <= set(row["hill_climb"]["update_times"])
    # and killed again at once (seeds 105, 455, 517, 663 of the 10,000: the rebuilt history was not persisted)
    third = simulate.start(scenario, node=node, db_path=sim.store.path, options={"revenue-ops-fee-interval": 600})
    row = next(c for c in third.rpc("revenue-status")["channels"] if c["scid"] == scid)
    assert set(sent) <= set(row["hill_climb"]["update_times"])
    third.close()
