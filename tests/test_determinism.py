"""A seeded run decides the same in every process: no decision may hang on the iteration order of a set
or dict of strings, which changes with PYTHONHASHSEED (the scale work groups sources and forwards by
peer and by batch; this pins that it changed no decision)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = """
import hashlib, json
from revops import simulate
from revops.sim.scenario import load_scenario
sim = simulate.start(load_scenario("drifting"), seed=3)
sim.advance(2 * 86400)
debug = sim.rpc("revenue-rebalance-debug")
out = {"decisions": [tuple(r) for r in sim.store.db.execute(
           "SELECT scid, at, old_fee_ppm, new_fee_ppm, branch, reason, outcome FROM fee_decisions ORDER BY id")],
       "rebalances": [tuple(r) for r in sim.store.db.execute("SELECT * FROM rebalances ORDER BY id")],
       "candidates": debug["candidates"], "rejections": debug["rejections"],
       "summary": simulate.summary(sim, 2)}
sim.close()
print(len(out["decisions"]), len(out["rebalances"]), hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest())
"""


def run_with_hash_seed(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_the_same_scenario_and_seed_give_the_same_decisions_in_every_process():
    first, second = run_with_hash_seed("1"), run_with_hash_seed("2")
    decisions, rebalances, _ = first.split()
    assert int(decisions) > 300 and int(rebalances) > 0      # fee and rebalance decisions were made
    assert first == second
