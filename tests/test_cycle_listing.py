"""The fee and rebalance cycles that fall in the same Tick read one listpeerchannels (13 MB at 5,000
channels, issue 15), the fee cycle first as before: the rebalance cycle gets it after the fee cycle used it.
In that Tick the fee cycle's FeeCycle also carries the rebalance cycle's econ query: one message per channel,
not an EconQuery as well."""
from __future__ import annotations

from actors.channel import ChannelActor
from actors.messages import EconQuery, FeeCycle
from revops import simulate
from revops.sim.faults import FaultyRpc
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario


def start(seed: int = 3):
    scenario = load_scenario("small")
    node = SimNode(scenario, seed=seed)
    rpc = FaultyRpc(node)
    return simulate.start(scenario, node=node, rpc=rpc, seed=seed), rpc


def cycles(sim) -> tuple[int, int]:
    c = sim.rpc("revenue-status")["coordinator"]
    return c["fee_cycles"], c["rebalancing"]["cycles"]


def test_a_tick_running_both_cycles_lists_the_channels_once():
    sim, rpc = start()
    both = 0
    for _ in range(40):
        fee0, rb0 = cycles(sim)
        listed = rpc.calls["listpeerchannels"]
        sim.advance(sim.step_seconds)
        fee1, rb1 = cycles(sim)
        if fee1 > fee0 and rb1 > rb0:
            both += 1
            assert rpc.calls["listpeerchannels"] - listed == 1
        elif fee1 > fee0 or rb1 > rb0:
            assert rpc.calls["listpeerchannels"] - listed == 1     # each cycle alone lists once
    assert both >= 3
    debug = sim.rpc("revenue-rebalance-debug")
    assert not any(r["code"] == "channels_unknown" for r in debug["rejections"])
    sim.close()


def before_both_cycles(sim) -> None:
    """Advance up to the Tick before one that runs both cycles (after the first fee cycle)."""
    while True:
        status = sim.rpc("revenue-status")["coordinator"]
        now = status["now"]
        if status["next_fee_cycle_at"] <= now + sim.step_seconds and status["fee_cycles"] > 0 and \
                sim.rpc("revenue-rebalance-debug")["next_cycle_at"] <= now + sim.step_seconds:
            return
        sim.advance(sim.step_seconds)


def test_a_failed_shared_listing_stops_both_cycles_closed():
    sim, rpc = start()
    before_both_cycles(sim)
    fee0, rb0 = cycles(sim)
    decisions = sim.store.db.execute("SELECT COUNT(*) FROM fee_decisions").fetchone()[0]
    rpc.inject("error", "listpeerchannels", times=1)
    listed = rpc.calls["listpeerchannels"]
    sim.advance(sim.step_seconds)
    assert rpc.calls["listpeerchannels"] - listed == 1
    assert cycles(sim) == (fee0, rb0 + 1)       # a fee cycle without balances decides nothing (counts none)
    debug = sim.rpc("revenue-rebalance-debug")
    assert [r["code"] for r in debug["rejections"]] == ["channels_unknown"] and debug["candidates"] == []
    assert sim.store.db.execute("SELECT COUNT(*) FROM fee_decisions").fetchone()[0] == decisions
    sim.close()


def delivered(monkeypatch) -> list:
    """Every message the channel actors handle, in order (recorded, then handled as always)."""
    seen: list = []
    handle = ChannelActor.handle

    def recording(self, msg, sender):
        seen.append(msg)
        handle(self, msg, sender)
    monkeypatch.setattr(ChannelActor, "handle", recording)
    return seen


def rebalance_done_in(sim, seen: list, fee0: int, rb0: int) -> None:
    """The Tick ran both cycles, and the rebalance cycle reached its decision in it, no wait expired."""
    status = sim.rpc("revenue-status")["coordinator"]
    assert cycles(sim) == (fee0 + 1, rb0 + 1)
    assert status["last_rebalance_done_at"] == status["now"] and status["waits_expired"] == {}
    assert not any(isinstance(m, EconQuery) for m in seen)


def test_the_fee_cycle_carries_the_rebalance_cycles_econ_query(monkeypatch):
    sim, _ = start()
    before_both_cycles(sim)
    fee0, rb0 = cycles(sim)
    actors = len(sim.rpc("revenue-status")["channels"])
    seen = delivered(monkeypatch)
    sim.advance(sim.step_seconds)
    rebalance_done_in(sim, seen, fee0, rb0)
    asked = [m for m in seen if isinstance(m, FeeCycle)]
    assert len(asked) == actors and len({m.econ_req for m in asked}) == 1 and asked[0].econ_req is not None
    sim.close()


def test_a_channel_closed_just_before_both_cycles_does_not_hold_the_rebalance_cycle(monkeypatch):
    """Its actor was asked (the cycle began before the listing showed it closed) and then retired by the fee
    cycle, which never sends it a FeeCycle: it counts as answered, a closed channel is neither source nor
    destination."""
    sim, _ = start()
    before_both_cycles(sim)
    fee0, rb0 = cycles(sim)
    closed = sim.node.open_channels()[0].scid
    sim.node.close_channel(closed)
    seen = delivered(monkeypatch)
    sim.advance(sim.step_seconds)
    rebalance_done_in(sim, seen, fee0, rb0)
    assert closed not in {c["scid"] for c in sim.rpc("revenue-status")["channels"]}
    sim.close()
