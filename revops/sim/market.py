"""The market model: who wants to route through the node, at what price, and what the chain costs.

Every random draw comes from a ``random.Random`` seeded by (run seed, purpose): each demand stream has its
own (``Stream.rng``), so a run is reproducible from (scenario, seed) and every controller meets the same
payments (docs/simulator.md "Random streams"). See docs/simulator.md for the economics and its known limits.
"""
from __future__ import annotations

import math
import random

import attrs

from .scenario import DemandSpec, DrainSpec, MempoolSpec, RebalanceSpec, Scenario

DAY = 86400


@attrs.frozen
class Payment:
    """One payment's draws: its amount, its fee tolerance for our hop, and two uniforms in [0, 1): which
    counterpart channel a drain uses, and whether the HTLC fails downstream."""
    amount_msat: int
    tolerance_msat: int
    pick_u: float
    settle_u: float


@attrs.define
class Stream:
    """One Poisson stream of payments that want to go in via ``src`` and out via ``dst``.

    ``src``/``dst`` may be None for drains; then the counterpart channel is drawn per payment.
    """
    name: str
    src: str | None
    dst: str | None
    rate_per_hour: float
    amount_dist: str
    median_sat: float
    sigma: float
    min_sat: int
    max_sat: int
    market_ppm: float
    market_base_msat: int
    tolerance_sigma: float
    start: float
    end: float | None
    counterparts: tuple[str, ...] = ()
    drain_side: str | None = None  # "out"/"in" for drains
    generation: int = 0  # bumped when the rate changes; stale heap entries are ignored
    rate_factor: float = 1.0       # on-chain substitution: more payments while on-chain fees spike
    tolerance_factor: float = 1.0  # ... and a higher tolerance for off-chain fees
    # this stream's own draws (arrivals, amounts, tolerances, counterparts, downstream outcomes): what one
    # controller does never shifts the payments another meets (docs/simulator.md "Random streams")
    rng: random.Random = attrs.field(kw_only=True, eq=False, repr=False)

    def draw_payment(self) -> Payment:
        """The next payment's draws, all taken whatever happens to the payment, so the stream stays in step."""
        amount = self.draw_amount_msat()
        return Payment(amount, self.draw_tolerance_msat(amount), self.rng.random(), self.rng.random())

    def draw_amount_msat(self) -> int:
        if self.amount_dist == "fixed":
            sat = self.median_sat
        else:
            sat = self.median_sat * math.exp(self.sigma * self.rng.gauss(0.0, 1.0))
        sat = min(self.max_sat, max(self.min_sat, sat))
        return int(sat) * 1000

    def draw_tolerance_msat(self, amount_msat: int) -> int:
        """Max total fee (msat) this payment accepts for the hop through us.

        ppm tolerance ~ LogNormal(ln(market_ppm), tolerance_sigma) × tolerance_factor, plus the market
        base fee.
        """
        ppm = self.market_ppm * self.tolerance_factor * math.exp(self.tolerance_sigma * self.rng.gauss(0.0, 1.0))
        return self.market_base_msat + int(ppm * amount_msat // 1_000_000)

    def next_arrival(self, t: float) -> float | None:
        """Next arrival after t (exponential inter-arrival time), or None if the stream is over."""
        rate = self.rate_per_hour * self.rate_factor
        if rate <= 0:
            return None
        t = max(t, self.start)
        nxt = t + self.rng.expovariate(rate / 3600.0)
        if self.end is not None and nxt > self.end:
            return None
        return nxt


def demand_streams(sc: Scenario, seed: int) -> list[Stream]:
    """The scenario's demand and drains as streams, each drawing from ``Random("demand:<seed>:<name>")``."""
    t0 = sc.start_time
    out = []
    for d in sc.demand:
        out.append(Stream(
            name=d.name, src=d.src, dst=d.dst, rate_per_hour=d.rate_per_hour, amount_dist=d.amount_dist,
            median_sat=d.median_sat, sigma=d.sigma, min_sat=d.min_sat, max_sat=d.max_sat,
            market_ppm=d.market_ppm, market_base_msat=d.market_base_msat, tolerance_sigma=d.tolerance_sigma,
            start=t0 + d.start_day * DAY, end=None if d.end_day is None else t0 + d.end_day * DAY,
            rng=random.Random(f"demand:{seed}:{d.name}")))
    for i, dr in enumerate(sc.drains):
        out.append(Stream(
            name=f"drain{i}", src=dr.channel if dr.direction == "in" else None,
            dst=dr.channel if dr.direction == "out" else None,
            rate_per_hour=dr.rate_per_hour, amount_dist="fixed", median_sat=dr.amount_sat, sigma=0.0,
            min_sat=dr.amount_sat, max_sat=dr.amount_sat, market_ppm=dr.market_ppm, market_base_msat=1000,
            tolerance_sigma=dr.tolerance_sigma, start=t0 + dr.at_day * DAY,
            end=t0 + (dr.at_day + dr.duration_days) * DAY, counterparts=dr.counterpart, drain_side=dr.direction,
            rng=random.Random(f"demand:{seed}:drain{i}")))
    return out


class Mempool:
    """On-chain feerate (sat/vB) over virtual time: piecewise-linear baseline times active spikes."""

    def __init__(self, spec: MempoolSpec, start_time: int):
        self.spec = spec
        self.t0 = start_time

    def sat_per_vb(self, t: float) -> float:
        day = (t - self.t0) / DAY
        pts = self.spec.baseline
        if day <= pts[0][0]:
            v = pts[0][1]
        elif day >= pts[-1][0]:
            v = pts[-1][1]
        else:
            v = pts[-1][1]
            for (d0, v0), (d1, v1) in zip(pts, pts[1:]):
                if d0 <= day <= d1:
                    v = v0 + (v1 - v0) * (day - d0) / (d1 - d0) if d1 > d0 else v1
                    break
        return v * self.spike_multiplier(day)

    def spike_multiplier(self, day: float) -> float:
        """Product of the spikes active at `day` (days from the start): the feerate over its baseline."""
        m = 1.0
        for s in self.spec.spikes:
            if s.at_day <= day < s.at_day + s.duration_hours / 24.0:
                m *= s.multiplier
        return m

    def estimates_perkw(self, t: float) -> dict[int, int]:
        """Feerate estimates per confirmation target (blocks) in sat/kw, floored at 253 like CLN."""
        base = self.sat_per_vb(t) * 250.0
        return {2: max(253, int(base * 1.5)), 6: max(253, int(base)), 12: max(253, int(base * 0.8)),
                100: max(253, int(base * 0.5))}


def draw_rebalance_cost_ppm(rng: random.Random, spec: RebalanceSpec) -> float:
    return spec.cost_ppm_median * math.exp(spec.cost_ppm_sigma * rng.gauss(0.0, 1.0))


__all__ = ["Payment", "Stream", "demand_streams", "Mempool", "draw_rebalance_cost_ppm", "DAY",
           "DemandSpec", "DrainSpec"]
