"""Controller (f): the hindsight-best static fee per channel — the limit for any static policy.

Found by search with full knowledge: every candidate is a complete run of the very scenario and seed it
is judged on (same demand draws). Exhaustive search over 50 channels × a ppm grid is out of reach, so it
is a parallel coordinate search:
1. uniform runs: every channel at the same grid fee, for each grid fee;
2. each channel takes the grid fee under which it earned the most (as outgoing channel);
3. knowledge starts: every channel at k × the rate-weighted median market price of the demand leaving
   through it (known from the scenario), for a few k;
4. refinement rounds from the best assignment so far: runs with every channel's fee scaled by each
   factor; each channel keeps the factor under which it earned the most; the new assignment is kept
   only if the whole node's net profit rose, else the factors shrink toward 1.
The answer is the best complete run seen (uniform or per-channel), so (f) is never below its best
uniform static fee. Fees are base 0 + ppm, no rebalancing.
"""
from __future__ import annotations

from bench.controllers import StaticFees
from revops.sim.scenario import Scenario

GRID = (10, 25, 50, 100, 150, 200, 300, 400, 600, 900, 1400, 2000)
KNOWLEDGE = (0.5, 0.7, 1.0, 1.4)
FACTORS = (0.7, 0.85, 1.2, 1.45)
ROUNDS = 4


def _evaluate(sc: Scenario, seed: int, days: float, ppm: dict[str, int], uniform: int = 100) -> dict:
    from bench.economic import run_baseline

    return run_baseline(sc, seed, StaticFees("hindsight", 0, uniform, per_channel_ppm=ppm), days)


def _earned(res: dict) -> dict[str, int]:
    return {c["scid"]: c["fees_earned_msat"] for c in res["per_channel"]}


def market_ppm(sc: Scenario) -> dict[str, float]:
    """Per channel name: the rate-weighted median market price of the demand leaving through it."""
    flows: dict[str, list[tuple[float, float]]] = {}
    for d in sc.demand:
        flows.setdefault(d.dst, []).append((d.market_ppm, d.rate_per_hour))
    out = {}
    for name, xs in flows.items():
        xs.sort()
        half, acc = sum(r for _, r in xs) / 2, 0.0
        for ppm, r in xs:
            acc += r
            if acc >= half:
                out[name] = ppm
                break
    return out


def search(sc: Scenario, seed: int, days: float) -> tuple[dict[str, int], dict, int]:
    """(per-channel ppm, result of that run, number of full runs evaluated)."""
    runs = {g: _evaluate(sc, seed, days, {}, uniform=g) for g in GRID}
    evals = len(runs)
    chans = {c["scid"]: c["name"] for c in runs[GRID[0]]["per_channel"]}
    scids = list(chans)
    earned = {g: _earned(r) for g, r in runs.items()}
    best_g = max(GRID, key=lambda g: runs[g]["net_profit_msat"])
    best_ppm, best = {s: best_g for s in scids}, runs[best_g]
    market = market_ppm(sc)
    starts = [{s: max(GRID, key=lambda g: (earned[g].get(s, 0), -abs(g - best_g))) for s in scids}]
    starts += [{s: max(1, round(k * market.get(chans[s], best_g))) for s in scids} for k in KNOWLEDGE]
    for x in starts:
        res = _evaluate(sc, seed, days, x)
        evals += 1
        if res["net_profit_msat"] > best["net_profit_msat"]:
            best_ppm, best = x, res
    factors = FACTORS
    for _ in range(ROUNDS):
        base_earned = _earned(best)
        trials = {f: _earned(_evaluate(sc, seed, days, {s: max(1, round(best_ppm[s] * f)) for s in scids}))
                  for f in factors}
        evals += len(trials)
        choice = {s: max([1.0, *factors], key=lambda f: (trials[f].get(s, 0) if f != 1.0 else base_earned.get(s, 0),
                                                         f == 1.0)) for s in scids}
        x = {s: max(1, round(best_ppm[s] * choice[s])) for s in scids}
        res = _evaluate(sc, seed, days, x)
        evals += 1
        if res["net_profit_msat"] > best["net_profit_msat"]:
            best_ppm, best = x, res
        else:
            factors = tuple(f ** 0.5 for f in factors)
    return best_ppm, best, evals
