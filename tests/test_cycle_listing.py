"""The fee and rebalance cycles that fall in the same Tick read one listpeerchannels (13 MB at 5,000
channels, issue 15), the fee cycle first as before: the rebalance cycle gets it after the fee cycle used it."""
from __future__ import annotations

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


def test_a_failed_shared_listing_stops_both_cycles_closed():
    sim, rpc = start()
    while True:      # up to the Tick before one that runs both cycles
        fee0, rb0 = cycles(sim)
        status = sim.rpc("revenue-status")["coordinator"]
        now = status["now"]
        if status["next_fee_cycle_at"] <= now + sim.step_seconds and \
                sim.rpc("revenue-rebalance-debug")["next_cycle_at"] <= now + sim.step_seconds and fee0 > 0:
            break
        sim.advance(sim.step_seconds)
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
