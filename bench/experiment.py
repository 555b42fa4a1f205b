"""Live-experiment benchmark (issue 18 part 2): does the uplift interval cover the true effect?

    python -m bench.experiment                          # field scenario, seeds 10..29, 28 days, 2 workers
    python -m bench.experiment --seeds 10 11 --days 14 --designs split

For every seed, in-process on the simulated node: the node with no plugin (static: the scenario's fees,
no rebalancing), the plugin managing every channel, and the plugin running `revenue-experiment start` with
each design. The truth for a horizon is (net managed - net static) over the same days, per day per BTC of
capacity; the experiment's `revenue-report uplift` at 7, 14 and 28 complete days is checked against it.
Runs are cached in bench/results/experiment.runs.jsonl (delete it, or --fresh, to redo them); results
go to bench/results/experiment.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.economic import _commit, run_cache, scenario_path
from revops import experiment as ex
from revops import simulate
from revops.sim.node import SIM_VERSION
from revops.sim.scenario import load_scenario

RESULTS = Path(__file__).resolve().parent / "results"
DAY = 86_400
HORIZONS = (7, 14, 28)
DESIGNS = {"split": {"design": "split"}, "switchback": {"design": "switchback", "period_days": 3}}


def run_task(task: tuple[str, str, int, int]) -> dict:
    """One (scenario, kind, seed) run: kind is static, managed, or a design of DESIGNS."""
    path, kind, seed, days = task
    sc = load_scenario(path)
    t0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="bench-exp-") as tmp:
        sim = simulate.start(sc, seed=seed, controller="static" if kind == "static" else "revops",
                             db_path=os.path.join(tmp, "revenue_ops.db"))
        try:
            if kind in DESIGNS:     # before the first fee cycle: the control arm keeps the scenario's fees
                sim.rpc("revenue-experiment", {"action": "start", "fraction": 0.5, "days": days, "seed": seed,
                                               **DESIGNS[kind]})
            nets = [int(sim.node.ledger.net_profit_msat)]
            capacity = sum(ch.capacity_msat for ch in sim.node.open_channels())
            reports: dict[str, Any] = {}
            for day in range(1, days + 1):
                sim.advance(DAY)
                nets.append(int(sim.node.ledger.net_profit_msat))
                if kind in DESIGNS and day in HORIZONS:
                    u = sim.rpc("revenue-report", {"report_type": "uplift"})
                    reports[str(day)] = {k: u[k] for k in ("estimate", "low", "high", "conclusive", "verdict",
                                                           "complete_days", "control_rate", "managed_rate")}
                    if kind == "switchback":
                        reports[str(day)]["washout_1d"] = _washout(sim, 1)
        finally:
            sim.close()
    return {"scenario": sc.name, "kind": kind, "seed": seed, "days": days, "sim_version": SIM_VERSION,
            "commit": _commit(), "cpu_s": round(time.process_time() - t0, 2), "capacity_msat": capacity,
            "net_msat": nets, "uplift": reports}


def _washout(sim: simulate.Simulation, days: int) -> dict:
    """The same switchback analysed without the first `days` after each switch (from the plugin's store)."""
    exp = ex.from_json(sim.store.latest_experiment())
    now = sim.node.now
    complete = ex.complete_days(exp, now)
    fees, spend = sim.store.daily_fees_and_spend(exp.started_at, exp.started_at + complete * DAY)
    u = ex.uplift(ex.channel_days(exp, now, ex.daily_net(fees, spend), washout_days=days), complete, exp.seed)
    return {"estimate": u.estimate, "low": u.low, "high": u.high}


def truth(managed: dict, static: dict, horizon: int) -> float:
    """(net managed - net static) over the experiment's first `horizon` days, sat per day per BTC."""
    gain = (managed["net_msat"][horizon] - managed["net_msat"][0]) - (static["net_msat"][horizon] - static["net_msat"][0])
    return gain / 1000 / horizon / (managed["capacity_msat"] / ex.BTC_MSAT)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a binomial proportion (the coverage measured over n seeds)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def aggregate(runs: list[dict]) -> dict:
    by = {(r["kind"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs if ("managed", r["seed"]) in by and ("static", r["seed"]) in by})
    out: dict[str, Any] = {}
    variants = [(d, None) for d in DESIGNS] + [("switchback", "washout_1d")]
    for design, variant in variants:
        name = design if variant is None else f"{design}+{variant}"
        rows = {}
        for h in HORIZONS:
            cover, widths, errors, concl, truths, n = 0, [], [], 0, [], 0
            for s in seeds:
                r = by.get((design, s))
                if r is None or str(h) not in r["uplift"]:
                    continue
                u = r["uplift"][str(h)] if variant is None else r["uplift"][str(h)][variant]
                if u["low"] is None:
                    continue
                t = truth(by[("managed", s)], by[("static", s)], h)
                n += 1
                cover += u["low"] <= t <= u["high"]
                widths.append(u["high"] - u["low"])
                errors.append(u["estimate"] - t)
                truths.append(t)
                concl += bool(u.get("conclusive"))
            if n:
                lo, hi = wilson(cover, n)
                rows[str(h)] = {"seeds": n, "covered": cover, "coverage": cover / n, "coverage_95": [lo, hi],
                                "width_median": statistics.median(widths), "width_mean": statistics.fmean(widths),
                                "bias_mean": statistics.fmean(errors),
                                "error_sd": statistics.stdev(errors) if n > 1 else 0.0,
                                "truth_mean": statistics.fmean(truths),
                                "truth_sd": statistics.stdev(truths) if n > 1 else 0.0, "conclusive": concl}
        out[name] = rows
    return out


def markdown(agg: dict, seeds: list[int], scenario: str, cpu: float) -> str:
    lines = [f"Scenario `{scenario}`, seeds {seeds[0]}–{seeds[-1]} ({len(seeds)}), simulator version {SIM_VERSION}; "
             f"{cpu / 60:.1f} CPU-minutes of runs. Unit: sat per day per BTC of capacity. Truth = the same seed run "
             "managed minus run static (no plugin), over the same days. Coverage of the 95 % interval with its "
             "95 % Wilson interval over seeds.", "",
             "| design | days | seeds | coverage | coverage 95 % | median width | mean width | bias (est − truth) "
             "| truth mean ± sd | conclusive |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in agg.items():
        for h, r in rows.items():
            lines.append(f"| {name} | {h} | {r['seeds']} | {r['covered']}/{r['seeds']} = {r['coverage']:.0%} | "
                         f"[{r['coverage_95'][0]:.0%}, {r['coverage_95'][1]:.0%}] | {r['width_median']:.1f} | "
                         f"{r['width_mean']:.1f} | {r['bias_mean']:+.1f} | {r['truth_mean']:.1f} ± {r['truth_sd']:.1f} "
                         f"| {r['conclusive']}/{r['seeds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="field")
    ap.add_argument("--seeds", nargs="*", type=int, default=list(range(10, 30)))
    ap.add_argument("--days", type=int, default=max(HORIZONS))
    ap.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "experiment.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore cached runs (<out>.runs.jsonl)")
    a = ap.parse_args(argv)
    out, cache = run_cache(a.out, a.fresh)
    path = scenario_path(a.scenario)
    name = load_scenario(path).name
    runs = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    runs = [r for r in runs if r["sim_version"] == SIM_VERSION and r["scenario"] == name and r["days"] == a.days]
    done = {(r["kind"], r["seed"]) for r in runs}
    tasks = [(path, k, s, a.days) for s in a.seeds for k in ("static", "managed", *a.designs) if (k, s) not in done]
    t0 = time.monotonic()
    with multiprocessing.get_context("fork").Pool(a.workers) as pool:
        for r in pool.imap_unordered(run_task, tasks):
            runs.append(r)
            with cache.open("a") as log:
                log.write(json.dumps(r) + "\n")
            print(f"[{time.monotonic() - t0:7.1f}s] seed {r['seed']} {r['kind']:<11} {r['cpu_s']} CPU-s", flush=True)
    runs = [r for r in runs if r["seed"] in a.seeds and r["kind"] in ("static", "managed", *a.designs)]
    agg = aggregate(runs)
    cpu = sum(r["cpu_s"] for r in runs)
    seeds = sorted({r["seed"] for r in runs})
    md = markdown(agg, seeds, name, cpu)
    out.write_text(json.dumps({"commit": _commit(), "sim_version": SIM_VERSION, "scenario": name, "seeds": seeds,
                               "cpu_s_of_runs": round(cpu, 1), "aggregate": agg,
                               "runs": sorted(runs, key=lambda r: (r["kind"], r["seed"]))}, indent=1))
    out.with_suffix(".md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
