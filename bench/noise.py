#!/usr/bin/env python3
"""The instrument's own noise: how much two runs of one seed differ when one controller changes a little.

A static fee of 100 ppm against one of 101 ppm on every channel, seed by seed: a 1 % price change moves
net profit by a few per cent at most, so the spread of the per-seed ratio is the noise the simulator adds
to every paired comparison. Simulator version 3 gives each purpose its own random stream (docs/simulator.md
"Random streams") to shrink it; to compare with an older simulator, copy this file into that tree's bench/
and run it there.

    python3 -m bench.noise --scenarios field backtest stationary --seeds 10 11 12 13 14 15 16 17
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.controllers import StaticFees
from bench.economic import load_scenario, run_baseline, scenario_path
from revops.sim.node import SIM_VERSION

PPM, NUDGED = 100, 101
RESULT = Path(__file__).resolve().parent / "results" / f"noise.v{SIM_VERSION}.json"


def paired_ratios(scenario: str, seeds: list[int]) -> list[float]:
    """Per seed: net profit at 101 ppm / net profit at 100 ppm."""
    sc = load_scenario(scenario_path(scenario))

    def net(ppm: int, seed: int) -> int:
        return run_baseline(sc, seed, StaticFees("static", 1000, ppm), sc.duration_days)["net_profit_msat"]
    return [net(NUDGED, seed) / net(PPM, seed) for seed in seeds]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["field", "backtest", "stationary"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10, 18)))
    args = ap.parse_args()
    doc: dict = {"sim_version": SIM_VERSION, "seeds": args.seeds, "pair": [PPM, NUDGED], "scenarios": {}}
    print(f"simulator version {SIM_VERSION}: net profit at {NUDGED} ppm / at {PPM} ppm, per seed")
    print("| scenario | sd of the ratio | min | max |\n|---|---|---|---|")
    for name in args.scenarios:
        r = paired_ratios(name, args.seeds)
        row = {"ratios": [round(x, 4) for x in r], "sd": round(statistics.stdev(r), 4),
               "min": round(min(r), 4), "max": round(max(r), 4)}
        doc["scenarios"][name] = row
        print(f"| {name} | {row['sd']:.3f} | {row['min']:.3f} | {row['max']:.3f} |", flush=True)
    RESULT.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
