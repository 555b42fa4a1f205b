"""The backtest: the node's own history → an estimated market → three fee policies replayed on it.

1. `history_from_store` reads what the plugin stored (forwards of every status, fee decisions, rebalances)
   and what lightningd says now (channels, capacities, balances, fees, the gossip anchor per peer).
2. `revops.demand.estimate` turns it into demand streams and fee tolerances (the censored-data estimator).
3. `scenario_of` writes that market as a simulator Scenario, starting from the balances the channels had
   when the history began (rebuilt from the stored flows).
4. `backtest` replays it for several demand seeds under: the operator's current fees (static), ours (the
   plugin's controller, in-process), and the best static fee per channel found on the estimated market
   (`best_static`, a bounded search), and reports each policy's mean and 95 % interval over the seeds,
   with how much history the answer rests on and warnings (or a refusal) when that is too little.

docs/backtest.md explains the method and its assumptions; docs/benchmarks.md how well it recovers a known truth.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from revops import anchor, demand, simulate
from revops import node as nodeio
from revops.model import converter
from revops.sim.node import SimNode
from revops.sim.scenario import Scenario, parse_scenario
from revops.store import Store

DAY = 86400
MIN_DAYS = 3.0                  # below this the backtest refuses
MIN_ARRIVALS_TOTAL = 50         # ... or with fewer forwards (of any status) than this
WARN_DAYS = 14.0                # below this, or with fewer arrivals, or few identified channels, it warns
WARN_ARRIVALS_TOTAL = 300
SEEDS_DEFAULT = 5
SEEDS_MAX = 20
BUDGET_S = 900.0                # wall seconds of replay; seeds not started by then are skipped
BUDGET_GRACE_S = 120.0          # past budget + this, the worker is killed and the answer is "expired"
POLICIES = ("current", "ours", "best_static")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
# best_static: the analytic optimum per channel, then uniform scalings and per-channel refinement rounds
SCALES = (0.5, 0.7, 0.85, 1.0, 1.2, 1.45, 2.0)
CURRENT_SCALES = (0.85, 1.0, 1.2)
REFINE = (0.8, 1.25)
REFINE_ROUNDS = 2


class BacktestRefused(ValueError):
    """Too little history for an answer; the message says what is missing."""


@attrs.frozen
class Channel:
    scid: str
    peer_id: str
    opener: str
    capacity_msat: int
    local_msat: int
    fee_base_msat: int
    fee_ppm: int
    anchor_ppm: float | None = None


@attrs.frozen
class FeeChange:
    scid: str
    at: float
    old_ppm: int
    new_ppm: int


@attrs.frozen
class Rebalance:
    to_channel: str
    from_channels: tuple[str, ...]
    moved_msat: int
    fee_msat: int
    status: str
    at: float


@attrs.frozen
class History:
    """Everything the backtest reads, as plain data (it crosses a process boundary as JSON)."""
    start: float
    end: float
    channels: tuple[Channel, ...]
    arrivals: tuple[demand.Arrival, ...]
    settled_in: tuple[tuple[str, str, int, int, float], ...]   # (in, out, in_msat, out_msat, time) of settled forwards
    fee_changes: tuple[FeeChange, ...]
    rebalances: tuple[Rebalance, ...]
    feerate_sat_vb: float | None = None

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY

    def to_json(self) -> str:
        return json.dumps(converter.unstructure(self))

    @classmethod
    def from_json(cls, text: str) -> "History":
        return converter.structure(json.loads(text), cls)


# --------------------------------------------------------------------------- reading the history
def channels_from(peerchannels: Mapping, surveys: Mapping[str, Mapping | None], our_id: str) -> list[Channel]:
    """The open channels of a `listpeerchannels` answer, each with the gossip anchor of its peer
    (`surveys`: peer id → its `listchannels destination=peer` answer, None when that call failed)."""
    out = []
    for raw in peerchannels.get("channels", []):
        v = nodeio.parse_channel(raw)
        if v["state"] != "CHANNELD_NORMAL" or not v["scid"]:
            continue
        survey = surveys.get(v["peer_id"])
        ppm = anchor.competitor_anchor(survey.get("channels", []), our_id, v["peer_id"]) if survey else None
        out.append(Channel(v["scid"], v["peer_id"], v["opener"], v["capacity_msat"], v["local_msat"],
                           v["fee_base_msat"], v["fee_ppm"], None if ppm is None else float(ppm)))
    return out


def history_from_store(store: Store, channels: Iterable[Channel], now: float, days: float) -> History:
    """The last `days` of stored history (never before the first stored forward) for the open `channels`."""
    since = now - days * DAY
    first = store.db.execute("SELECT MIN(received_time) FROM forwards").fetchone()[0]
    start = max(since, float(first)) if first is not None else float(now)
    arrivals, settled = [], []
    for r in store.db.execute("SELECT in_channel, out_channel, in_msat, out_msat, status, received_time, failcode "
                              "FROM forwards WHERE received_time >= ? AND received_time < ? ORDER BY received_time",
                              (start, now)):
        if r[1] is None:
            continue          # a local failure before an outgoing channel was chosen says nothing of one
        amount = r[3] if r[3] is not None else r[2]
        arrivals.append(demand.Arrival(r[0], r[1], float(r[5]), amount, r[4], r[6]))
        if r[4] == "settled":
            settled.append((r[0], r[1], int(r[2]), int(r[3]), float(r[5])))
    changes = tuple(FeeChange(r[0], float(r[1]), int(r[2]), int(r[3])) for r in store.db.execute(
        "SELECT scid, at, old_fee_ppm, new_fee_ppm FROM fee_decisions WHERE outcome='applied' AND broadcast=1 "
        "AND at < ? ORDER BY at", (now,)))
    rebalances = tuple(Rebalance(r[0], tuple(json.loads(r[1])), int(r[2] or 0), int(r[3] or 0), r[4], float(r[5]))
                       for r in store.db.execute(
        "SELECT to_channel, from_channels, moved_msat, fee_msat, status, created_at FROM rebalances "
        "WHERE created_at >= ? AND created_at < ?", (start, now)))
    row = store.db.execute("SELECT sat_per_vb FROM feerate_samples ORDER BY at DESC LIMIT 1").fetchone()
    return History(start=start, end=float(now), channels=tuple(channels), arrivals=tuple(arrivals),
                   settled_in=tuple(settled), fee_changes=changes, rebalances=rebalances,
                   feerate_sat_vb=float(row[0]) if row else None)


# --------------------------------------------------------------------------- the market
def estimate(h: History) -> demand.MarketEstimate:
    epochs = {}
    for c in h.channels:
        changes = [(f.at, f.new_ppm) for f in h.fee_changes if f.scid == c.scid]
        before = [f for f in h.fee_changes if f.scid == c.scid]
        initial = before[0].old_ppm if before else c.fee_ppm
        epochs[c.scid] = demand.fee_epochs(changes, initial, h.start, h.end)
    return demand.estimate(reach_weights(h), epochs, {c.scid: c.fee_base_msat for c in h.channels},
                           {c.scid: c.anchor_ppm for c in h.channels})


def start_balances(h: History) -> dict[str, int]:
    """Each channel's local balance when the history began: today's, minus the stored flows since (settled
    forwards both ways; rebalances: the destination gained what moved, the fee and amount left the candidate
    sources in equal parts, since the store does not say which one paid). Clamped to the capacity."""
    bal = {c.scid: c.local_msat for c in h.channels}
    for src, dst, in_msat, out_msat, _t in h.settled_in:
        if src in bal:
            bal[src] -= in_msat
        if dst in bal:
            bal[dst] += out_msat
    for r in h.rebalances:
        if r.moved_msat <= 0:
            continue
        if r.to_channel in bal:
            bal[r.to_channel] -= r.moved_msat
        srcs = [s for s in r.from_channels if s in bal]
        for s in srcs:
            bal[s] += (r.moved_msat + r.fee_msat) // len(srcs)
    return {c.scid: min(c.capacity_msat, max(0, bal[c.scid])) for c in h.channels}


def reach_weights(h: History) -> tuple[demand.Arrival, ...]:
    """The arrivals, each weighted by 1 / the share of the history during which its incoming channel could have
    received its amount (receivable = capacity − local − 1 % reserve, from the balances rebuilt in order from
    the start balances; at most 1 / demand.MIN_REACH). A payment whose incoming channel could not receive it
    never reached us and left no trace: each one seen stands for the ones lost (inverse-probability weighting)."""
    bal = start_balances(h)
    cap = {c.scid: c.capacity_msat for c in h.channels}
    moves = [(t, src, in_msat) for src, _d, in_msat, _o, t in h.settled_in]
    moves += [(t, dst, -out_msat) for _s, dst, _i, out_msat, t in h.settled_in]
    moves += [(r.at, r.to_channel, r.moved_msat) for r in h.rebalances if r.moved_msat > 0]
    moves.sort()
    spans: dict[str, dict[int, float]] = {s: {} for s in bal}   # channel -> receivable msat -> seconds
    last = h.start

    def accrue(until: float) -> None:
        for s, b in bal.items():
            room = cap[s] - b - cap[s] // 100
            spans[s][room] = spans[s].get(room, 0.0) + (until - last)
    for t, scid, delta in moves:
        if scid in bal and t > last:
            accrue(t)
            last = t
        if scid in bal:
            bal[scid] = min(cap[scid], max(0, bal[scid] + delta))
    accrue(h.end)
    span = max(h.end - h.start, 1.0)
    table = {}
    for s, by_room in spans.items():
        rooms = sorted(by_room)
        tail, acc = [0.0] * len(rooms), 0.0
        for i in range(len(rooms) - 1, -1, -1):
            acc += by_room[rooms[i]]
            tail[i] = acc / span
        table[s] = (rooms, tail)

    def reach(scid: str, amount: int | None) -> float:
        if scid not in table or not amount:
            return 1.0
        rooms, tail = table[scid]
        i = bisect.bisect_left(rooms, amount)
        return tail[i] if i < len(rooms) else 0.0
    return tuple(attrs.evolve(a, weight=1.0 / max(demand.MIN_REACH, reach(a.in_channel, a.amount_msat)))
                 for a in h.arrivals)


def rebalance_market(h: History) -> dict:
    """The simulator's rebalance cost model, from the node's own rebalances (its defaults when there are none)."""
    done = [r for r in h.rebalances if r.moved_msat > 0]
    tried = [r for r in h.rebalances if r.status not in ("pending", "running")]
    out: dict[str, Any] = {}
    ppms = [math.log(max(r.fee_msat, 1) * 1e6 / r.moved_msat) for r in done]
    if len(ppms) >= 3:
        out["cost_ppm_median"] = round(math.exp(statistics.median(ppms)), 1)
        out["cost_ppm_sigma"] = round(statistics.pstdev(ppms), 3)
    if len(tried) >= 5:
        out["failure_probability"] = round(1 - len(done) / len(tried), 3)
    return out


def scenario_of(h: History, est: demand.MarketEstimate, days: float) -> Scenario:
    """The estimated market as a scenario: the channels at their start balances and current fees, one demand
    stream per (incoming, outgoing) channel pair seen, with the outgoing channel's tolerance and amounts."""
    bal = start_balances(h)
    chans = [{"name": c.scid, "peer_id": c.peer_id, "capacity_sat": c.capacity_msat // 1000,
              "local_sat": bal[c.scid] // 1000, "opener": c.opener if c.opener in ("local", "remote") else "local",
              "fee_base_msat": c.fee_base_msat, "fee_ppm": c.fee_ppm}
             for c in h.channels if c.capacity_msat >= 20_000_000]
    names = {c["name"] for c in chans}
    flows = []
    for d in est.channels:
        if d.scid not in names or d.rate_per_hour <= 0:
            continue
        for src, rate in d.sources:
            if src in names and src != d.scid:
                flows.append({"name": f"{src}>{d.scid}", "from": src, "to": d.scid,
                              "rate_per_hour": rate, "median_sat": round(d.amount_median_sat, 3),
                              "sigma": round(d.amount_sigma, 4), "market_ppm": round(d.tolerance_ppm, 3),
                              "market_base_msat": 0, "tolerance_sigma": est.sigma})
    data = {"name": "backtest", "duration_days": days, "node": {"alias": "BACKTEST", "start_time": int(h.start)},
            "channels": chans, "demand": flows, "rebalance": rebalance_market(h),
            "mempool": {"baseline_sat_vb": h.feerate_sat_vb or 10.0},
            "plugins": {"sling": True, "clboss": False, "bookkeeper": True}}
    return parse_scenario(data, name="backtest")


# --------------------------------------------------------------------------- the policies
def with_fees(sc: Scenario, fees: Mapping[str, tuple[int, int]]) -> Scenario:
    """The scenario with channels' (base msat, ppm) replaced where given."""
    return attrs.evolve(sc, channels=tuple(
        attrs.evolve(c, fee_base_msat=fees[c.name][0], fee_ppm=fees[c.name][1]) if c.name in fees else c
        for c in sc.channels))


def run_static(sc: Scenario, seed: int, days: float) -> dict:
    """The scenario's own fees, never changed, no rebalancing: one run's summary."""
    node = SimNode(sc, seed=seed)
    node.advance_to(int(sc.start_time + days * DAY))
    return simulate.summary(simulate.Simulation(node, None, None), days)


def run_ours(sc: Scenario, seed: int, days: float, options: Mapping[str, Any] | None = None) -> dict:
    """The plugin's controller (the real runtime and actors, in-process) on the scenario."""
    with tempfile.TemporaryDirectory(prefix="revops-backtest-") as tmp:
        return simulate.run(sc, days, seed=seed, controller="revops", options=options,
                            db_path=os.path.join(tmp, "revenue_ops.db"))


def analytic_best(streams: Iterable[tuple[str, float, float, float]]) -> dict[str, int]:
    """Per outgoing channel, the ppm f maximising Σ rate × f × S(f) over its streams (name, rate, ln median
    tolerance, σ): the best static fee when liquidity never runs out."""
    by: dict[str, list[tuple[float, float, float]]] = {}
    for ch, rate, mu, sigma in streams:
        by.setdefault(ch, []).append((rate, mu, sigma))
    grid = [round(math.exp(x * 0.05)) for x in range(0, 200)]
    return {ch: max(grid, key=lambda f: sum(r * f * demand.survival(f, mu, s) for r, mu, s in xs))
            for ch, xs in by.items()}


def scenario_streams(sc: Scenario) -> list[tuple[str, float, float, float]]:
    return [(d.dst, d.rate_per_hour, math.log(max(d.market_ppm, 1e-9)), d.tolerance_sigma) for d in sc.demand]


def best_static(sc: Scenario, seeds: Sequence[int], days: float,
                current: Mapping[str, int] | None = None) -> tuple[dict[str, int], int]:
    """A bounded search for the best static ppm per channel (base 0) in expectation over `seeds`: the
    analytic optimum scaled uniformly by each of SCALES, the `current` fees scaled by CURRENT_SCALES, then
    REFINE_ROUNDS rounds in which every channel keeps the factor of REFINE under which it earned most, the
    new assignment kept only if the node's net profit rose. (bench/hindsight.py's full search needs ~37 runs
    per seed; this one at most 10 + 3 × REFINE_ROUNDS.) Returns (ppm per channel, runs per seed)."""
    analytic = analytic_best(scenario_streams(sc))
    names = [c.name for c in sc.channels]
    runs = 0

    def evaluate(ppm: Mapping[str, int]) -> tuple[float, dict[str, float]]:
        nonlocal runs
        runs += 1
        fees = {n: (0, max(1, ppm.get(n, 1))) for n in names}
        res = [run_static(with_fees(sc, fees), s, days) for s in seeds]
        per: dict[str, float] = {}
        for r in res:
            for c in r["per_channel"]:
                per[c["name"]] = per.get(c["name"], 0.0) + c["fees_earned_msat"]
        return statistics.fmean(r["net_profit_msat"] for r in res), per

    candidates = [{n: max(1, round(analytic.get(n, 1000) * k)) for n in names} for k in SCALES]
    if current:
        candidates += [{n: max(1, round(current.get(n, 1000) * k)) for n in names} for k in CURRENT_SCALES]
    best, best_val, best_per = candidates[0], -math.inf, {}
    for ppm in candidates:
        val, per = evaluate(ppm)
        if val > best_val:
            best, best_val, best_per = ppm, val, per
    for _ in range(REFINE_ROUNDS):
        trials = {f: evaluate({n: max(1, round(best[n] * f)) for n in names})[1] for f in REFINE}
        choice = {n: max([1.0, *REFINE], key=lambda f: (trials[f].get(n, 0.0) if f != 1.0 else best_per.get(n, 0.0),
                                                        f == 1.0)) for n in names}
        ppm = {n: max(1, round(best[n] * choice[n])) for n in names}
        val, per = evaluate(ppm)
        if val > best_val:
            best, best_val, best_per = ppm, val, per
    return best, runs


def mean_ci(xs: Sequence[float]) -> dict:
    """Mean and 95 % interval (Student t) over seeds."""
    m = statistics.fmean(xs)
    half = T95.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return {"mean": m, "lo": m - half, "hi": m + half, "n": len(xs)}


# --------------------------------------------------------------------------- the answer
def basis(h: History, est: demand.MarketEstimate | None = None) -> dict:
    """How much history the answer rests on, and the warnings that follow from it (the per-channel counts
    and identification need the estimate; without one only the totals are given)."""
    out: dict[str, Any] = {
        "days": round(h.days, 2), "forwards": len(h.arrivals),
        "settled": sum(1 for a in h.arrivals if a.status == "settled"),
        "failed": sum(1 for a in h.arrivals if a.status == "failed"),
        "local_failed": sum(1 for a in h.arrivals if a.status == "local_failed"),
        "fee_insufficient": sum(1 for a in h.arrivals if a.failcode == demand.FEE_INSUFFICIENT),
        "channels": len(h.channels), "fee_changes": len(h.fee_changes), "rebalances": len(h.rebalances)}
    warnings = []
    if round(h.days) < WARN_DAYS:
        warnings.append(f"only {h.days:.1f} days of history (≥ {WARN_DAYS:g} advised): a weekly cycle is not covered")
    if len(h.arrivals) < WARN_ARRIVALS_TOTAL:
        warnings.append(f"only {len(h.arrivals)} forwards (≥ {WARN_ARRIVALS_TOTAL} advised): rates are rough")
    if est is not None:
        enough = [c for c in est.channels if c.arrivals >= demand.MIN_ARRIVALS]
        ident = [c for c in est.channels if c.identified]
        out["channels_with_enough_data"] = len(enough)
        out["channels_tolerance_identified"] = len(ident)
        if len(ident) < max(1, len(enough) // 2):
            warnings.append(f"fee tolerance identified by the data on {len(ident)} of {len(enough)} channels with "
                            "enough forwards; elsewhere it rests on the gossip prior (a channel needs forwards at "
                            "≥ 2 fee levels)")
    if not any(c.anchor_ppm for c in h.channels):
        warnings.append("no gossip anchor for any peer: unidentified tolerances fall back to 2 × the median fee")
    out["warnings"] = warnings
    return out


def refusal(h: History) -> str | None:
    """Why there is too little history for an answer (None: enough). Cheap: no estimate needed."""
    if h.days < MIN_DAYS or len(h.arrivals) < MIN_ARRIVALS_TOTAL:
        return (f"too little history: {h.days:.2f} days and {len(h.arrivals)} forwards stored; the backtest needs "
                f"≥ {MIN_DAYS:g} days and ≥ {MIN_ARRIVALS_TOTAL} forwards")
    return None


def market_report(est: demand.MarketEstimate) -> dict:
    return {"tolerance_sigma": est.sigma, "tolerance_sigma_interval": [est.sigma_lo, est.sigma_hi],
            "channels": [{"scid": c.scid, "forwards": c.arrivals, "rate_per_day": round(c.rate_per_hour * 24, 2),
                          "tolerance_median_ppm": round(c.tolerance_ppm),
                          "tolerance_interval_ppm": [round(c.tolerance_ppm_lo), round(c.tolerance_ppm_hi)],
                          "identified": c.identified, "fee_levels": c.fee_levels,
                          "prior_ppm": None if c.prior_ppm is None else round(c.prior_ppm),
                          "amount_median_sat": round(c.amount_median_sat)} for c in est.channels]}


def backtest(h: History, seeds: int = SEEDS_DEFAULT, days: float | None = None, deadline: float | None = None,
             options: Mapping[str, Any] | None = None, clock: Callable[[], float] = time.monotonic) -> dict:
    """The whole answer as a JSON-able dict. Refuses (BacktestRefused) on too little history. `deadline`
    (a `clock` value): seeds not started by then are skipped and the answer says so (`seeds_run`)."""
    why = refusal(h)
    if why is not None:
        raise BacktestRefused(why)
    est = estimate(h)
    b = basis(h, est)
    days = days or h.days
    sc = scenario_of(h, est, days)
    seed_list = list(range(1, seeds + 1))
    if not sc.demand:
        raise BacktestRefused("no channel with forwards among the open channels: nothing to replay")
    started = clock()
    current = {c.name: (c.fee_base_msat, c.fee_ppm) for c in sc.channels}
    best_ppm, runs_per_seed = best_static(sc, seed_list[:max(1, min(3, seeds))], days,
                                          {n: p for n, (_b, p) in current.items()})
    results: dict[str, list[dict]] = {p: [] for p in POLICIES}
    for seed in seed_list:
        if deadline is not None and results["ours"] and clock() > deadline:
            break
        results["current"].append(run_static(with_fees(sc, current), seed, days))
        results["ours"].append(run_ours(sc, seed, days, options))
        results["best_static"].append(run_static(with_fees(sc, {n: (0, p) for n, p in best_ppm.items()}), seed, days))
    policies = {p: {k[:-5] + "_sat": _rounded(mean_ci([r[k] / 1000 for r in rs]))
                    for k in ("net_profit_msat", "fees_earned_msat", "rebalance_cost_msat")}
                for p, rs in results.items()}
    ratios = {}
    for p in ("ours", "best_static"):
        xs = [a["net_profit_msat"] / c["net_profit_msat"] for a, c in zip(results[p], results["current"])
              if c["net_profit_msat"] > 0]
        ratios[f"{p}_over_current"] = _rounded(mean_ci(xs), 3) if xs else None
    return {"history": b, "replay_days": round(days, 2), "seeds_asked": seeds, "seeds_run": len(results["ours"]),
            "seconds": round(clock() - started, 1), "best_static_runs_per_seed": runs_per_seed,
            "policies": policies, **ratios, "best_static_ppm": best_ppm, "market": market_report(est)}


def _rounded(ci: dict, digits: int = 0) -> dict:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in ci.items()}


# --------------------------------------------------------------------------- the worker process
def answer(h: History, seeds: int, days: float | None, budget_s: float) -> dict:
    """`backtest` as the RPC returns it: status ok, or refused with the reason and the history it had."""
    try:
        return {"status": "ok", **backtest(h, seeds=seeds, days=days, deadline=time.monotonic() + budget_s)}
    except BacktestRefused as e:
        return {"status": "refused", "reason": str(e), "history": basis(h)}


def run_worker(h: History, seeds: int, days: float | None, budget_s: float) -> dict:
    """Run `answer` in a child process (the CPU-bound replay stays off the plugin's loop and GIL); a child
    still running BUDGET_GRACE_S after its budget is killed and the answer says it expired."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "revops.backtest", "--seeds", str(seeds), "--budget", str(budget_s)]
    if days is not None:
        cmd += ["--days", str(days)]
    try:
        done = subprocess.run(cmd, input=h.to_json(), capture_output=True, text=True, timeout=budget_s + BUDGET_GRACE_S)
    except subprocess.TimeoutExpired:
        return {"status": "expired", "reason": f"the replay did not finish within {budget_s + BUDGET_GRACE_S:g} s"}
    if done.returncode != 0:
        return {"status": "failed", "reason": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """The worker: a History as JSON on stdin, the answer as JSON on stdout."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="backtest worker (revenue-backtest runs it)")
    ap.add_argument("--seeds", type=int, default=SEEDS_DEFAULT)
    ap.add_argument("--days", type=float, default=None)
    ap.add_argument("--budget", type=float, default=BUDGET_S)
    a = ap.parse_args(argv)
    json.dump(answer(History.from_json(sys.stdin.read()), a.seeds, a.days, a.budget), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
