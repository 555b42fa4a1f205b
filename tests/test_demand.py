"""The backtest's estimator on synthetic forwards drawn from a known market (revops/demand.py)."""
from __future__ import annotations

import math
import random

import attrs
import pytest

from revops import demand

DAY = 86400.0


def synthetic(rng: random.Random, scid: str, rate_per_hour: float, median_ppm: float, sigma: float,
              levels: list[int], days_each: float, src: str = "in1") -> tuple[list[demand.Arrival], list]:
    """Poisson payments wanting to leave through `scid`; one reaches us when its tolerance ≥ the fee."""
    arrivals, changes, t = [], [], 0.0
    for i, fee in enumerate(levels):
        if i:
            changes.append((i * days_each * DAY, fee))
        end = (i + 1) * days_each * DAY
        while True:
            t += rng.expovariate(rate_per_hour / 3600)
            if t >= end:
                t = end
                break
            believed = levels[i - 1] if i and t < i * days_each * DAY + demand.GOSSIP_LAG_S else fee
            if median_ppm * math.exp(sigma * rng.gauss(0, 1)) >= believed:
                arrivals.append(demand.Arrival(src, scid, t, 50_000_000, "settled"))
    epochs = demand.fee_epochs(changes, levels[0], 0.0, len(levels) * days_each * DAY)
    return arrivals, epochs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recovers_a_known_market_when_fees_varied(seed):
    rng = random.Random(seed)
    arr, ep = synthetic(rng, "a", 6.0, 400.0, 0.5, [100, 250, 500, 900], 4.0)
    arr2, ep2 = synthetic(rng, "b", 3.0, 150.0, 0.5, [60, 120, 250, 400], 4.0)
    est = demand.estimate(arr + arr2, {"a": ep, "b": ep2}, {"a": 0, "b": 0}, {"a": 600.0, "b": 100.0})
    a, b = est.channel("a"), est.channel("b")
    # stated error: rate within 20 %, median tolerance within 25 %, σ within 0.2 (16 days, ~1,000 forwards)
    assert a.identified and b.identified
    assert a.rate_per_hour == pytest.approx(6.0, rel=0.2)
    assert b.rate_per_hour == pytest.approx(3.0, rel=0.2)
    assert a.tolerance_ppm == pytest.approx(400.0, rel=0.25)
    assert b.tolerance_ppm == pytest.approx(150.0, rel=0.25)
    assert abs(est.sigma - 0.5) <= 0.2


def test_one_fee_level_leaves_the_tolerance_to_the_prior():
    rng = random.Random(7)
    arr, ep = synthetic(rng, "a", 6.0, 400.0, 0.5, [100], 14.0)
    est = demand.estimate(arr, {"a": ep}, {"a": 0}, {"a": 350.0})
    a = est.channel("a")
    assert not a.identified and a.fee_levels == 1
    assert a.tolerance_ppm == pytest.approx(350.0, rel=0.3)      # the anchor, not the data
    assert a.rate_per_hour == pytest.approx(6.0, rel=0.2)        # at a fee far below tolerance, the rate is seen


def test_payments_that_could_not_reach_us_are_counted_through_the_weights():
    rng = random.Random(3)
    arr, ep = synthetic(rng, "a", 6.0, 400.0, 0.5, [100, 500], 7.0)
    full = demand.estimate(arr, {"a": ep}, {"a": 0}, {"a": 400.0}).channel("a")
    half = demand.estimate([attrs.evolve(a, weight=2.0) for a in arr], {"a": ep}, {"a": 0}, {"a": 400.0}).channel("a")
    assert half.rate_per_hour == pytest.approx(2 * full.rate_per_hour, rel=0.1)   # the prior weighs less
    assert half.tolerance_ppm == pytest.approx(full.tolerance_ppm, rel=0.06)
    assert dict(half.sources) == {"in1": pytest.approx(half.rate_per_hour)}


def test_fee_insufficient_failure_and_its_retry_count_once():
    ep = demand.fee_epochs([(1000.0, 500)], 100, 0.0, 10_000.0)
    arr = [demand.Arrival("i", "a", 1100.0, None, "local_failed", demand.FEE_INSUFFICIENT),
           demand.Arrival("i", "a", 1100.5, 50_000_000, "settled"),
           demand.Arrival("i", "a", 1200.0, None, "local_failed", demand.FEE_INSUFFICIENT)]
    est = demand.estimate(arr, {"a": ep}, {"a": 0}, {"a": 300.0})
    assert est.channel("a").arrivals == 2 and est.channel("a").fee_insufficient == 2


def test_fee_epochs_follow_gossip():
    ep = demand.fee_epochs([(1000.0, 300)], 100, 0.0, 5000.0, lag=900)
    assert [(e.start, e.end, e.believed_ppm, e.actual_ppm) for e in ep] == [
        (0.0, 1000.0, 100, 100), (1000.0, 1900.0, 100, 300), (1900.0, 5000.0, 300, 300)]
