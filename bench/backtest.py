"""Backtest against a known truth (issue 18 part 1): how well `revops backtest` recovers a market and
predicts each policy's revenue.

    python -m bench.backtest --histories 0 1 2 3 4 5 6 7 8 9 --seeds 5 --truth-seeds 10

For each history seed h: the plugin runs the bench scenario (its true market is known) for `days`, its real
store is read as `revenue-backtest` reads it, the market is estimated and the three policies are replayed
on it (`--seeds` demand seeds). The truth is each policy's real net profit on the true scenario, mean over
`--truth-seeds` held-out seeds (1000, 1001, …): the operator's current fees (the fees in force when the
history ends), ours, and the bounded best static search run on the true market. Results:
bench/results/backtest.json and .md (the figures of docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from revops import backtest as bt
from revops import simulate
from revops.sim.scenario import Scenario, load_scenario

HERE = Path(__file__).resolve().parent
DAY = 86400


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def record_history(sc: Scenario, seed: int, days: float, controller: str) -> tuple[bt.History, dict[str, str]]:
    """Run the plugin (controller 'revops', or 'dry-run': it records but never changes a fee) on the true
    scenario and read its store as the RPC does. Returns the history and scid → scenario channel name."""
    options = {"revenue-ops-dry-run": "true"} if controller == "dry-run" else None
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        sim = simulate.start(sc, seed=seed, controller="revops", options=options,
                             db_path=os.path.join(tmp, "revenue_ops.db"))
        try:
            sim.advance(int(days * DAY))
            node = sim.node
            peers = {c.peer_id for c in node.open_channels()}
            surveys = {p: node.call("listchannels", {"destination": p}) for p in peers}
            chans = bt.channels_from(node.call("listpeerchannels", {}), surveys, node.id)
            h = bt.history_from_store(sim.store, chans, node.now, days)
            names = {c.scid: c.name for c in node.open_channels()}
        finally:
            sim.close()
    return h, names


def true_market(sc: Scenario, names: dict[str, str], est) -> dict:
    """Estimated vs true per channel: total demand rate, and the rate that passes 100 / 300 / 1000 ppm."""
    rows = []
    for d in est.channels:
        name = names[d.scid]
        streams = [s for s in sc.demand if s.dst == name]
        true_rate = sum(s.rate_per_hour for s in streams)
        row = {"channel": name, "forwards": d.arrivals, "identified": d.identified,
               "rate_est": d.rate_per_hour, "rate_true": true_rate}
        for f in (100, 300, 1000):
            row[f"above_{f}_est"] = d.rate_per_hour * bt.demand.survival(f, math.log(d.tolerance_ppm), est.sigma)
            row[f"above_{f}_true"] = sum(s.rate_per_hour * bt.demand.survival(f, math.log(s.market_ppm),
                                                                             s.tolerance_sigma) for s in streams)
        rows.append(row)
    return {"sigma_est": est.sigma, "channels": rows}


def net_sat(sc: Scenario, fees: dict[str, tuple[int, int]], seeds: list[int], days: float) -> list[float]:
    return [bt.run_static(bt.with_fees(sc, fees), s, days)["net_profit_msat"] / 1000 for s in seeds]


def markdown(doc: dict) -> str:
    """The figures of docs/benchmarks.md from one result file."""
    s, m = doc["summary"], doc["market"]
    lines = [f"History under `{doc['history_controller']}`, {len(doc['rows'])} histories (seeds "
             f"{', '.join(str(r['history_seed']) for r in doc['rows'])}), each backtest on {doc['seeds']} demand seeds; "
             f"truth on held-out seeds {doc['truth_seeds'][0]}–{doc['truth_seeds'][-1]}; {doc['cpu_s']:.0f} CPU s "
             f"(load average {doc['loadavg'][0]:.1f} at the end).", "",
             "| policy | mean error | mean \\|error\\| | max \\|error\\| | truth inside the backtest's 95 % interval |",
             "|---|---|---|---|---|"]
    for p, v in s.items():
        lines.append(f"| {p} | {v['mean_error']:+.1%} | {v['mean_abs_error']:.1%} | {v['max_abs_error']:.1%} | "
                     f"{v['covered']} of {v['n']} |")
    lines += ["", "| history seed | " + " | ".join(f"{p}: predicted / true, sat" for p in s)
              + " | ours / current: predicted / true | best policy: predicted / true |", "|---|" + "---|" * (len(s) + 2)]
    agree = 0
    for r in doc["rows"]:
        pol = r["policies"]
        pred = {p: pol[p]["predicted"]["mean"] for p in s}
        true = {p: pol[p]["true"] for p in s}
        best_pred, best_true = max(pred, key=pred.get), max(true, key=true.get)
        agree += best_pred == best_true
        lines.append(f"| {r['history_seed']} | " + " | ".join(
            f"{pred[p]:,.0f} / {true[p]:,.0f} ({pol[p]['error']:+.0%})" for p in s)
            + f" | {pred['ours'] / pred['current']:.2f} / {true['ours'] / true['current']:.2f} | "
            f"{best_pred} / {best_true} |")
    lines += ["", f"The backtest named the truly best of the three policies in {agree} of {len(doc['rows'])} histories."]
    fmt = (lambda x: "–" if x is None else f"{x:.2f}")
    lines += ["", f"Market (channels with ≥ {bt.demand.MIN_ARRIVALS} forwards, all histories): median |log error| of "
              f"the demand rate {fmt(m['rate_median_abs_log_error'])} (mean log error "
              f"{fmt(m['rate_mean_log_error'])}); of the rate that passes 100 / 300 / 1000 ppm "
              f"{fmt(m['above_100_median_abs_log_error'])} / {fmt(m['above_300_median_abs_log_error'])} / "
              f"{fmt(m['above_1000_median_abs_log_error'])}; σ estimated {min(m['sigma_est'])}–{max(m['sigma_est'])} "
              "(each stream's true σ is 0.5; a channel mixes streams of different medians)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(HERE / "scenarios" / "backtest.toml"))
    ap.add_argument("--histories", nargs="*", type=int, default=list(range(10)))
    ap.add_argument("--history-controller", choices=("revops", "dry-run"), default="revops")
    ap.add_argument("--seeds", type=int, default=5, help="demand seeds of each backtest")
    ap.add_argument("--truth-seeds", type=int, default=10)
    ap.add_argument("--days", type=float, default=None)
    ap.add_argument("--out", default=str(HERE / "results" / "backtest.json"))
    ap.add_argument("--markdown", metavar="JSON", help="only print the Markdown of an earlier result file")
    a = ap.parse_args(argv)
    if a.markdown:
        print(markdown(json.loads(Path(a.markdown).read_text())))
        return 0
    sc = load_scenario(a.scenario)
    days = a.days or sc.duration_days
    t0, c0 = time.monotonic(), cpu()
    tseeds = list(range(1000, 1000 + a.truth_seeds))
    true_ours = [bt.run_ours(sc, s, days)["net_profit_msat"] / 1000 for s in tseeds]
    print(f"truth: ours {statistics.fmean(true_ours):,.0f} sat ({cpu() - c0:.0f} CPU s)", flush=True)
    rows = []
    for h_seed in a.histories:
        h, names = record_history(sc, h_seed, days, a.history_controller)
        est = bt.estimate(h)
        res = bt.backtest(h, seeds=a.seeds, days=days)
        current = {names[c.scid]: (c.fee_base_msat, c.fee_ppm) for c in h.channels}
        # the same bounded search, run on the true market (its seeds are held out too)
        best_ppm, _ = bt.best_static(sc, tseeds[:3], days, {n: p for n, (_b, p) in current.items()})
        true = {"current": net_sat(sc, current, tseeds, days), "ours": true_ours,
                "best_static": net_sat(sc, {n: (0, p) for n, p in best_ppm.items()}, tseeds, days)}
        row = {"history_seed": h_seed, "history": res["history"], "market": true_market(sc, names, est),
               "policies": {}}
        for p in bt.POLICIES:
            pred = res["policies"][p]["net_profit_sat"]
            t = statistics.fmean(true[p])
            row["policies"][p] = {"predicted": pred, "true": t, "true_sd": statistics.stdev(true[p]),
                                  "error": pred["mean"] / t - 1 if t else None,
                                  "covered": pred["lo"] <= t <= pred["hi"]}
        rows.append(row)
        print(f"history {h_seed}: " + "; ".join(
            f"{p} pred {row['policies'][p]['predicted']['mean']:,.0f} true {row['policies'][p]['true']:,.0f} "
            f"({row['policies'][p]['error']:+.1%})" for p in bt.POLICIES) + f"  [{cpu() - c0:.0f} CPU s]", flush=True)
    summary = {}
    for p in bt.POLICIES:
        errs = [r["policies"][p]["error"] for r in rows if r["policies"][p]["error"] is not None]
        summary[p] = {"mean_error": statistics.fmean(errs), "mean_abs_error": statistics.fmean(abs(e) for e in errs),
                      "max_abs_error": max(abs(e) for e in errs),
                      "covered": sum(r["policies"][p]["covered"] for r in rows), "n": len(rows)}
    rate_err = [math.log(c["rate_est"] / c["rate_true"]) for r in rows for c in r["market"]["channels"]
                if c["rate_true"] > 0 and c["rate_est"] > 0 and c["forwards"] >= bt.demand.MIN_ARRIVALS]
    above = {f: [math.log(c[f"above_{f}_est"] / c[f"above_{f}_true"]) for r in rows for c in r["market"]["channels"]
                 if c[f"above_{f}_true"] > 0 and c[f"above_{f}_est"] > 0 and c["forwards"] >= bt.demand.MIN_ARRIVALS]
             for f in (100, 300, 1000)}
    market = {"rate_median_abs_log_error": statistics.median(abs(x) for x in rate_err) if rate_err else None,
              "rate_mean_log_error": statistics.fmean(rate_err) if rate_err else None,
              **{f"above_{f}_median_abs_log_error": statistics.median(abs(x) for x in v) if v else None
                 for f, v in above.items()},
              "sigma_est": [r["market"]["sigma_est"] for r in rows]}
    doc = {"scenario": sc.name, "days": days, "history_controller": a.history_controller, "seeds": a.seeds,
           "truth_seeds": tseeds, "summary": summary, "market": market, "rows": rows,
           "cpu_s": round(cpu() - c0, 1), "wall_s": round(time.monotonic() - t0, 1),
           "loadavg": os.getloadavg()}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(doc) + "\n")
    print(json.dumps({"summary": summary, "market": market, "cpu_s": doc["cpu_s"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
