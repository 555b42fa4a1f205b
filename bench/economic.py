"""Economic benchmark (issue #8 part 1): money earned by each fee controller, side by side.

    python -m bench.economic                      # every scenario in bench/scenarios, 5 seeds, 30 days
    python -m bench.economic --scenarios stationary my.toml --seeds 0 1 --days 10 --workers 2

Every run is in-process on the simulated node: (a) ours through `revops.simulate` (real runtime and
actors); (b)–(e) the baselines of bench/controllers.py and bench/v14.py driving the node through its
RPCs; (f) the hindsight-best static fee per channel (bench/hindsight.py). Any scenario file runs the
same way (a path, or a name in bench/scenarios). Results: bench/results/economic.json, a Markdown
table (bench/results/economic.md) and, with matplotlib (extra `bench`), a PNG of cumulative net profit.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import track

from bench.controllers import DAY, ClbossLike, Controller, FeeAdjusterLike, StaticFees
from bench.v14 import V14HillClimber
from revops import simulate
from revops.sim.node import SIM_VERSION, SimNode
from revops.sim.scenario import Scenario, load_scenario

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE / "scenarios"
RESULTS = HERE / "results"
# What the targets call "drifting": the market moves under the controller. Everything else is stationary.
DRIFTING = {"drifting", "surge"}
BASELINES = ("static_default", "static_100", "feeadjuster", "clboss", "v1.4")
CONTROLLERS = ("ours",) + BASELINES + ("hindsight",)
# ours with a lever that is off by default turned on, to price it (run on request: --controllers ours_vegas):
# the Vegas Reflex and the htlc_maximum_msat valve (both measured in docs/benchmarks.md)
VARIANTS = {"ours_vegas": {"revenue-ops-vegas-reflex": "true"},
            "ours_htlcmax": {"revenue-ops-htlc-max-valve": "true"}}
# A baseline's version, bumped when what it does changes (clboss 2: its EarningsRebalancer ported); cached
# runs of another version, like those of another simulator version, stay in the file but are never reused.
CONTROLLER_VERSIONS = {"clboss": 2}
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def scenario_path(name: str) -> str:
    p = Path(name)
    return str(p if p.suffix == ".toml" else SCENARIO_DIR / f"{name}.toml")


def make_baseline(name: str, seed: int, per_channel_ppm: Mapping[str, int] | None = None) -> Controller:
    if name == "static_default":
        return StaticFees(name, base_msat=1000, ppm=10)
    if name == "static_100":
        return StaticFees(name, base_msat=0, ppm=100)
    if name == "hindsight":
        return StaticFees(name, base_msat=0, ppm=100, per_channel_ppm=dict(per_channel_ppm or {}))
    if name == "feeadjuster":
        return FeeAdjusterLike(seed=seed)
    if name == "clboss":
        return ClbossLike(seed=seed)
    if name == "v1.4":
        return V14HillClimber()
    raise ValueError(f"unknown controller {name!r}; choose one of: {', '.join(CONTROLLERS)}")


def _net(node: SimNode) -> int:
    return int(node.ledger.net_profit_msat)


def run_baseline(sc: Scenario, seed: int, ctl: Controller, days: float) -> dict:
    """Advance the node to each controller action and day end; the controller acts first at the start."""
    node = SimNode(sc, seed=seed)
    end = node.now + int(days * DAY)
    next_act, next_day, curve = node.now, node.now + DAY, []
    while node.now < end:
        if node.now >= next_act:
            ctl.step(node, node.now)
            next_act += ctl.interval_s
        node.advance_to(min(next_act, next_day, end))
        if node.now >= next_day:
            curve.append(_net(node))
            next_day += DAY
    return {**simulate.summary(simulate.Simulation(node, None, None), days), "daily_net_msat": curve}


def run_ours(sc: Scenario, seed: int, days: float, options: Mapping[str, str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        sim = simulate.start(sc, seed=seed, controller="revops", options=options,
                             db_path=os.path.join(tmp, "revenue_ops.db"))
        try:
            curve = []
            for _ in range(math.ceil(days)):
                sim.advance(int(min(DAY, days * DAY - (sim.node.now - sc.start_time))))
                curve.append(_net(sim.node))
            return {**simulate.summary(sim, days), "daily_net_msat": curve}
        finally:
            sim.close()


def controller_version(name: str) -> int:
    return CONTROLLER_VERSIONS.get(name, 1)


def current(run: dict) -> bool:
    """A cached run measured by this simulator and this version of its controller."""
    return (run.get("sim_version") == SIM_VERSION
            and run.get("controller_version", 1) == controller_version(run["controller"]))


def run_task(task: tuple[str, int, str, float]) -> dict:
    """One (scenario, seed, controller) run; the unit of work of the process pool."""
    from bench.hindsight import search

    path, seed, name, days = task
    sc = load_scenario(path)
    t0 = time.monotonic()
    extra: dict[str, Any] = {}
    if name == "ours" or name in VARIANTS:
        res = run_ours(sc, seed, days, VARIANTS.get(name))
    elif name == "hindsight":
        ppm, res, evals = search(sc, seed, days)
        extra = {"hindsight_ppm": ppm, "hindsight_evaluations": evals}
    else:
        res = run_baseline(sc, seed, make_baseline(name, seed), days)
    res.pop("per_channel", None)
    return {"scenario": sc.name, "seed": seed, "controller": name, "commit": _commit(),
            "controller_version": controller_version(name), "wall_s": round(time.monotonic() - t0, 2),
            **res, **extra}


# ------------------------------------------------------------------------------------- aggregation
def mean_ci(xs: list[float]) -> dict:
    """Mean and 95 % interval (Student t) over seeds."""
    m = statistics.fmean(xs)
    half = T95.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return {"mean": m, "lo": m - half, "hi": m + half, "n": len(xs)}


def _metrics(r: dict) -> dict:
    fees = r["fees_earned_msat"]
    return {"net_profit_sat": r["net_profit_msat"] / 1000, "fees_earned_sat": fees / 1000,
            "wtp_sat": r["wtp_msat"] / 1000, "wtp_share": r["wtp_share"],
            "onchain_cost_sat": r["onchain_cost_msat"] / 1000,
            "rebalance_over_revenue": r["rebalance_cost_msat"] / fees if fees else 0.0,
            "failed_liquidity": r["failed_liquidity"],
            "fee_updates_per_channel_day": r["fee_updates_per_channel_day"],
            "not_relayed_share": r["fee_updates_not_relayed"] / r["fee_updates"] if r["fee_updates"] else 0.0}


def aggregate(runs: list[dict]) -> dict:
    by: dict[str, dict[str, dict[int, dict]]] = {}
    for r in runs:
        by.setdefault(r["scenario"], {}).setdefault(r["controller"], {})[r["seed"]] = r
    out: dict[str, Any] = {}
    for scen, ctls in by.items():
        table: dict[str, Any] = {}
        for name, seeds in ctls.items():
            ms = [_metrics(seeds[s]) for s in sorted(seeds)]
            table[name] = {k: mean_ci([m[k] for m in ms]) for k in ms[0]}
            table[name]["daily_net_sat_mean"] = [statistics.fmean(seeds[s]["daily_net_msat"][d] / 1000 for s in seeds)
                                                 for d in range(min(len(seeds[s]["daily_net_msat"]) for s in seeds))]
        ratios: dict[str, Any] = {}
        ours = ctls.get("ours", {})
        present = [b for b in BASELINES if b in ctls]
        for ref in ("hindsight", "clboss", "v1.4", "best_baseline"):
            xs = []
            for s, r in ours.items():
                if ref == "best_baseline":
                    vals = [ctls[b][s]["net_profit_msat"] for b in present if s in ctls[b]]
                    denom = max(vals) if vals else None
                else:
                    denom = ctls.get(ref, {}).get(s, {}).get("net_profit_msat")
                if denom:
                    xs.append(r["net_profit_msat"] / denom)
            if xs:
                ratios[f"ours_over_{ref}"] = mean_ci(xs)
        if present:
            best = max(present, key=lambda b: table[b]["net_profit_sat"]["mean"])
            ratios["best_baseline_by_mean"] = best
        out[scen] = {"kind": "drifting" if scen in DRIFTING else "stationary", "controllers": table, "ratios": ratios}
    return out


# Issue 13's targets for ours, judged on the mean of per-seed ratios (and on the mean over scenarios for clboss).
NEED_BEST_BASELINE = 1.10
NEED_CLBOSS_MEAN = 1.3
NEED_HINDSIGHT = {"drifting": 1.15, "stationary": 1.00}
MAX_UPDATES_PER_CHANNEL_DAY = 2.0
MIN_RELAYED = 0.95
MAX_REBALANCE_OVER_REVENUE = 0.30


def _clboss_mean(agg: dict) -> float | None:
    xs = [a["ratios"]["ours_over_clboss"]["mean"] for a in agg.values() if "ours_over_clboss" in a["ratios"]]
    return statistics.fmean(xs) if xs else None


def targets(agg: dict) -> dict:
    """Issue 13's targets for ours, per scenario, plus the clboss ratio over all scenarios ("all")."""
    res: dict[str, Any] = {}
    for scen, a in agg.items():
        r = a["ratios"]
        t: dict[str, Any] = {}
        if "ours_over_hindsight" in r:
            need = NEED_HINDSIGHT[a["kind"]]
            t[f"ours >= {need:.2f}x (f)"] = r["ours_over_hindsight"]["mean"] >= need
        if "ours_over_best_baseline" in r:
            t[f"ours >= {NEED_BEST_BASELINE:.2f}x best of (b)-(e)"] = (
                r["ours_over_best_baseline"]["mean"] >= NEED_BEST_BASELINE)
        ours = a["controllers"].get("ours")
        if ours:
            t[f"<= {MAX_UPDATES_PER_CHANNEL_DAY:g} updates/ch/day"] = (
                ours["fee_updates_per_channel_day"]["mean"] <= MAX_UPDATES_PER_CHANNEL_DAY)
            t[f">= {MIN_RELAYED:.0%} relayed"] = 1 - ours["not_relayed_share"]["mean"] >= MIN_RELAYED
            t[f"rebalance <= {MAX_REBALANCE_OVER_REVENUE:.0%} of revenue"] = (
                ours["rebalance_over_revenue"]["mean"] <= MAX_REBALANCE_OVER_REVENUE)
        res[scen] = t
    m = _clboss_mean(agg)
    if m is not None:
        res["all"] = {f"ours >= {NEED_CLBOSS_MEAN}x clboss on the mean over scenarios": m >= NEED_CLBOSS_MEAN}
    return res


def markdown(agg: dict) -> str:
    def fmt(ci: dict, scale: float = 1.0, nd: int = 0) -> str:
        return f"{ci['mean'] * scale:,.{nd}f} [{ci['lo'] * scale:,.{nd}f}, {ci['hi'] * scale:,.{nd}f}]"

    lines = []
    for scen, a in agg.items():
        lines += [f"### {scen} ({a['kind']})", "",
                  "| controller | net profit, sat | fees earned, sat | share of WTP | rebalance / revenue "
                  "| on-chain cost, sat | failed (liquidity) | fee updates / ch / day | not relayed |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name in CONTROLLERS + tuple(VARIANTS):
            c = a["controllers"].get(name)
            if c:
                lines.append(f"| {name} | {fmt(c['net_profit_sat'])} | {fmt(c['fees_earned_sat'])} | "
                             f"{fmt(c['wtp_share'], 100, 1)} % | "
                             f"{fmt(c['rebalance_over_revenue'], 100, 1)} % | {fmt(c['onchain_cost_sat'])} | "
                             f"{fmt(c['failed_liquidity'])} | {fmt(c['fee_updates_per_channel_day'], 1, 2)} | "
                             f"{fmt(c['not_relayed_share'], 100, 0)} % |")
        rs = a["ratios"]
        parts = [f"{k.replace('ours_over_', 'ours / ')} = {fmt(v, 1, 2)}" for k, v in rs.items() if isinstance(v, dict)]
        wtp = statistics.fmean(c["wtp_sat"]["mean"] for c in a["controllers"].values())
        lines += ["", f"Market's willingness to pay (WTP: the fee tolerances of every payment that wanted to route "
                  f"through the node, mean over the controllers' runs): {wtp:,.0f} sat.",
                  "", "Ratios (mean of per-seed ratios [95 % interval]): " + "; ".join(parts) + ".", ""]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def targets_markdown(agg: dict) -> str:
    lines = ["| scenario | ours / (f) | target | ours / best of (b)–(e) | best of (b)–(e) by mean | ours / clboss "
             "| updates / ch / day | relayed | rebalance / revenue | ours' share of WTP |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for scen, a in agg.items():
        r = a["ratios"]

        def cell(key: str, need: float | None) -> str:
            v = r.get(key)
            return "–" if v is None else f"{v['mean']:.2f}" + ("" if need is None else f" {_mark(v['mean'] >= need)}")

        need_f = NEED_HINDSIGHT[a["kind"]]
        ours = a["controllers"].get("ours")
        if ours:
            upd = ours["fee_updates_per_channel_day"]["mean"]
            rel = 1 - ours["not_relayed_share"]["mean"]
            reb = ours["rebalance_over_revenue"]["mean"]
            own = (f"{upd:.2f} {_mark(upd <= MAX_UPDATES_PER_CHANNEL_DAY)} | {rel:.0%} {_mark(rel >= MIN_RELAYED)} | "
                   f"{reb:.1%} {_mark(reb <= MAX_REBALANCE_OVER_REVENUE)} | {ours['wtp_share']['mean']:.1%}")
        else:
            own = "– | – | – | –"
        lines.append(f"| {scen} | {cell('ours_over_hindsight', need_f)} | ≥ {need_f:.2f} | "
                     f"{cell('ours_over_best_baseline', NEED_BEST_BASELINE)} | {r.get('best_baseline_by_mean', '–')} | "
                     f"{cell('ours_over_clboss', None)} | {own} |")
    m = _clboss_mean(agg)
    if m is not None:
        lines += ["", f"ours / clboss on the mean over scenarios: {m:.2f} {_mark(m >= NEED_CLBOSS_MEAN)} "
                  f"(target ≥ {NEED_CLBOSS_MEAN})."]
    return "\n".join(lines)


def chart(agg: dict, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    n = len(agg)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (scen, a) in zip(axes.flat, agg.items()):
        for name in CONTROLLERS + tuple(VARIANTS):
            c = a["controllers"].get(name)
            if c:
                ys = c["daily_net_sat_mean"]
                ax.plot(range(1, len(ys) + 1), ys, label=name, lw=2.2 if name == "ours" else 1.2)
        ax.set_title(f"{scen} ({a['kind']})")
        ax.set_xlabel("day")
        ax.set_ylabel("cumulative net profit, sat (mean over seeds)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def run_cache(out_arg: str, fresh: bool) -> tuple[Path, Path]:
    """The result file and the cache of its runs beside it (<out>.runs.jsonl), emptied when `fresh`."""
    out = Path(out_arg)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = out.with_suffix(".runs.jsonl")
    if fresh and cache.exists():
        cache.unlink()
    return out, cache


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="*", default=sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--controllers", nargs="*", default=list(CONTROLLERS), choices=CONTROLLERS + tuple(VARIANTS))
    ap.add_argument("--days", type=float, default=None, help="default: each scenario's duration_days")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "economic.json"))
    ap.add_argument("--fresh", action="store_true", help="ignore runs cached next to --out (<out>.runs.jsonl)")
    a = ap.parse_args(argv)
    out, cache = run_cache(a.out, a.fresh)
    runs = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    # runs of another simulator or controller version stay in the file for the record but never mix with these
    runs = [r for r in runs if current(r)]
    done = {(r["scenario"], r["seed"], r["controller"], r["days"]) for r in runs}
    cost = {"ours": 3, "hindsight": 2, "v1.4": 1}
    tasks = [(scenario_path(s), seed, c, a.days or load_scenario(scenario_path(s)).duration_days)
             for s in a.scenarios for seed in a.seeds for c in a.controllers]
    tasks = [t for t in tasks if (load_scenario(t[0]).name, t[1], t[2], t[3]) not in done]
    tasks.sort(key=lambda t: (t[1], -cost.get(t[2], 0)))     # seed by seed: any prefix gives paired seeds
    t0 = time.monotonic()
    wanted = {(load_scenario(scenario_path(s)).name, seed, c) for s in a.scenarios for seed in a.seeds
              for c in a.controllers}
    with multiprocessing.get_context("fork").Pool(a.workers) as pool:
        for r in track(pool.imap_unordered(run_task, tasks), total=len(tasks), description="runs",
                       console=Console(stderr=True)):
            runs.append(r)
            with cache.open("a") as log:     # reopened per run: a file replaced meanwhile (git) loses nothing
                log.write(json.dumps(r) + "\n")
            print(f"[{time.monotonic() - t0:7.1f}s] {r['scenario']:<12} seed {r['seed']} {r['controller']:<15} "
                  f"net {r['net_profit_msat'] / 1000:>12,.0f} sat  ({r['wall_s']} s)", flush=True)
    # cached variant runs of these scenarios and seeds are reported beside the controllers asked for
    runs = [r for r in runs if (r["scenario"], r["seed"], r["controller"]) in wanted
            or (r["controller"] in VARIANTS and (r["scenario"], r["seed"], "ours") in wanted)]
    agg = aggregate(runs)
    wall = round(time.monotonic() - t0, 1)
    doc = {"commit": _commit(), "sim_version": SIM_VERSION, "wall_s_this_invocation": wall, "cpu_s_of_runs": round(sum(r["wall_s"] for r in runs), 1),
           "workers": a.workers, "seeds": a.seeds, "scenarios": a.scenarios,
           "controllers": a.controllers, "targets": targets(agg), "aggregate": agg,
           "runs": sorted(runs, key=lambda r: (r["scenario"], r["controller"], r["seed"]))}
    out.write_text(json.dumps(doc, indent=1))
    n_seeds = sorted({r["seed"] for r in runs})
    md = (f"Seeds {n_seeds}; simulator version {SIM_VERSION}; aggregated at commit {doc['commit'][:10]} (each run's "
          "commit: `commit` in the runs). Targets for ours (issue 13; ✅ met / ❌ missed): ≥ 1.10 × the best of "
          "(b)–(e) in every scenario; ≥ 1.3 × clboss on the mean over scenarios; ≥ 1.00 × (f) stationary, "
          "≥ 1.15 × (f) drifting; ≤ 2 fee updates / channel / day, ≥ 95 % relayed; rebalance ≤ 30 % of revenue. "
          "Share of WTP = fees earned / the market's willingness to pay:\n\n"
          + targets_markdown(agg) + "\n\n" + markdown(agg)
          + f"\n![cumulative net profit](../bench/results/{out.with_suffix('.png').name})\n")
    out.with_suffix(".md").write_text(md + "\n")
    has_chart = chart(agg, out.with_suffix(".png"))
    print(md)
    print(json.dumps(doc["targets"], indent=1))
    print(f"wall {wall} s; chart {'written' if has_chart else 'skipped (matplotlib not installed)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
