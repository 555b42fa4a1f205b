"""The emulated `sling-once` against what sling's source does (daywalker90/sling, src/parse.rs
`parse_once_job`, src/rpc_sling.rs `slingonce` / `stop_job` / `slingdeletejob`, src/slings.rs, src/stats.rs;
facts in docs/rebalancing.md "What sling does with a once-job")."""
from __future__ import annotations

import pytest

from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario
from tests.test_rebalance_sim import REFILL


@pytest.fixture
def node():
    return SimNode(loads_scenario(REFILL), seed=1)


def chan(node, name):
    return next(c for c in node.open_channels() if c.name == name)


def once(node, dst, src, amount=10_000, onceamount=10_000, **kw):
    return node.call("sling-once", {"scid": dst.scid, "direction": "pull", "amount": amount, "maxppm": 5000,
                                    "onceamount": onceamount, "candidates": [src.scid], **kw})


def err(node, method, params):
    with pytest.raises(Exception) as e:
        node.call(method, params)
    return str(e.value)


@pytest.mark.parametrize("params,message", [
    ({"target": 0.5}, "`target` can not be used with `sling-once`"),
    ({"onceamount": 15_000}, "onceamount must be a multiple of amount. onceamount: 15000, amount: 10000"),
    ({"onceamount": 0}, "onceamount must be greater than 0"),
    ({"amount": 0}, "amount must be greater than 0"),
    ({"bogus": 1}, "Invalid argument: bogus"),
    ({"maxhops": 1}, "maxhops must be atleast 2"),
    ({"paralleljobs": 0}, "paralleljobs must be atleast 1"),
    ({"depleteuptopercent": 1.0}, "depleteuptopercent must be between 0.0 and <1.0"),
])
def test_sling_once_validates_like_parse_once_job(node, params, message):
    cold, big = chan(node, "cold"), chan(node, "big")
    base = {"scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000, "onceamount": 10_000,
            "candidates": [big.scid]}
    assert message in err(node, "sling-once", {**base, **params})
    base.pop("onceamount")
    assert "Missing onceamount" in err(node, "sling-once", base)
    assert "Expected an object" in err(node, "sling-once", [cold.scid, "pull", 10_000, 5000, 10_000])
    assert "Atleast one of outppm and candidatelist" in err(node, "sling-once", {
        "scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000, "onceamount": 10_000})


def test_sling_once_refuses_a_channel_that_has_a_job_or_cannot_receive(node):
    cold, big, hot = chan(node, "cold"), chan(node, "big"), chan(node, "hot")
    assert "not enough capacity to pull" in err(node, "sling-once", {
        "scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000,
        "onceamount": (node.receivable_msat(cold) // 10_000_000 + 1) * 10_000, "candidates": [big.scid]})
    node.call("sling-job", {"scid": hot.scid, "direction": "pull", "amount": 10_000, "maxppm": 10, "outppm": 10})
    assert "There is already a job for that scid!" in err(node, "sling-once", {
        "scid": hot.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000, "onceamount": 10_000,
        "candidates": [big.scid]})
    assert once(node, cold, big) == {"result": "started"}
    assert "There is already a job for that scid running!" in err(node, "sling-once", {
        "scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000, "onceamount": 10_000,
        "candidates": [big.scid]})
    # sling-job is refused on the channel while the once-job runs
    assert "Once-job is currently running for this channel" in err(node, "sling-job", {
        "scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 10, "outppm": 10})


def test_a_once_job_moves_onceamount_then_ends_whatever_the_channel_does(node):
    """The structural bound: however the channel is drained during and after, sling pulls onceamount and
    stops (state Balanced, no longer active); a continuous job refills chunk after chunk instead
    (test_rebalance_sim.py::test_emulated_sling_breaks_like_sling_once_balanced_and_refills_at_once_below_target)."""
    cold, big = chan(node, "cold"), chan(node, "big")
    assert once(node, cold, big, onceamount=20_000) == {"result": "started"}
    assert cold.scid not in node.call("sling-jobsettings", {})          # not a job: not persisted, not listed
    [row] = [r for r in node.call("sling-stats", {"json": True}) if r["scid"] == cold.scid]
    assert row["status"] == ["1:Starting"]
    for _ in range(24):
        node.advance_to(node.now + 300)
        cold.set_to_us(cold.to_us_msat - 10_000_000)                   # forwards keep draining it
        big.set_to_us(big.to_us_msat + 10_000_000)
    succ = node.sling.successes[cold.scid]
    assert [s["amount_msat"] for s in succ] == [10_000_000, 10_000_000]
    assert cold.scid not in node.sling.running and node.sling.status[cold.scid] == "Balanced"
    stats = node.call("sling-stats", {"scid": cold.scid, "json": True})["successes_in_time_window"]
    assert stats["total_amount_sats"] == 20_000 and stats["total_rebalances"] == 2
    assert stats["total_spent_sats"] <= 20_000 * 5000 // 1_000_000


def test_a_once_job_is_stopped_listed_and_forgotten_as_sling_does(node):
    cold, big = chan(node, "cold"), chan(node, "big")
    scid = cold.scid
    assert node.call("sling-stats", {"scid": scid, "json": True}) == {"successes_in_time_window": None,
                                                                      "failures_in_time_window": None}
    assert f"{scid}: No job running" in err(node, "sling-stop", {"scid": scid})
    once(node, cold, big)
    assert node.call("sling-stop", {"scid": scid}) == {"stopped_count": 1}
    assert scid not in node.sling.running and node.sling.status[scid] == "Stopped"
    [row] = [r for r in node.call("sling-stats", {"json": True}) if r["scid"] == scid]
    assert row["status"] == ["1:Stopped"]                               # listed until deleted or restarted
    assert node.call("sling-stop", {"scid": scid}) == {"stopped_count": 1}
    assert node.sling.status[scid] == "Stopping"                        # an ended task keeps this state
    once(node, cold, big)                                               # an ended once-task does not block
    node.sling.start_plugin()                                           # sling restarts: once-jobs are gone
    assert scid not in node.sling.running
    assert not [r for r in node.call("sling-stats", {"json": True}) if r["scid"] == scid]
    assert f"{scid}: No job running" in err(node, "sling-stop", {"scid": scid})
    once(node, cold, big)
    assert node.call("sling-deletejob", {"job": scid, "delete_stats": False}) == {"result": "success"}
    assert scid not in node.sling.running and scid not in node.sling.status


def test_a_once_job_without_a_route_retries_and_pulls_as_soon_as_a_source_can_pay(node):
    """No candidate: sling sleeps 1 s and its loop tries again (NoRoutes), so the chunk comes as soon as the
    source can pay; the simulator skips retries during which nothing in the node can change."""
    cold, big = chan(node, "cold"), chan(node, "big")
    full = big.to_us_msat
    big.set_to_us(big.capacity_msat // 10)                              # below sling's deplete floor
    once(node, cold, big)
    node.advance_to(node.now + 600)
    assert node.sling.status[cold.scid] == "NoRoutes" and cold.scid in node.sling.running
    assert not node.sling.successes.get(cold.scid)
    big.set_to_us(full)
    now = node.now
    node.advance_to(now + 3600)
    [s] = node.sling.successes[cold.scid]
    assert s["t"] <= now + 2 * 60 + node.scenario.rebalance.attempt_interval_s * 10
