#!/usr/bin/env python3
"""Run N random event sequences (revops/sim/sequences.py) through the real runtime and actors and check
the invariants after each; prints the counts recorded in docs/reliability.md.

    python bench/invariants.py --count 10000 --jobs 2
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402

from revops.sim.sequences import run_sequence  # noqa: E402

DB_DIR = tempfile.mkdtemp(prefix="revops-invariants-")


def one(seed: int) -> tuple[int, dict, int, int, list[str]]:
    o = run_sequence(seed, db_dir=DB_DIR)
    Path(DB_DIR, f"seq-{seed}.db").unlink(missing_ok=True)
    return o.seed, o.events, o.faults_injected, o.forwards, o.problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--start-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    started = time.monotonic()
    events: collections.Counter = collections.Counter()
    faults = forwards = done = 0
    failed: dict[int, list[str]] = {}
    seeds = range(args.start_seed, args.start_seed + args.count)
    with multiprocessing.Pool(args.jobs) as pool:
        for seed, ev, injected, fwd, problems in track(pool.imap_unordered(one, seeds, chunksize=20), total=len(seeds),
                                                       description="sequences", console=Console(stderr=True)):
            done += 1
            events.update(ev)
            faults, forwards = faults + injected, forwards + fwd
            if problems:
                failed[seed] = problems
                print(f"seed {seed}: {problems}", file=sys.stderr)
            if done % 1000 == 0:
                print(f"{done} sequences, {len(failed)} with problems, {time.monotonic() - started:.0f} s",
                      file=sys.stderr)
    print(json.dumps({"sequences": done, "seeds": [args.start_seed, args.start_seed + args.count - 1],
                      "events": sum(events.values()), "events_by_kind": dict(sorted(events.items())),
                      "faults_injected": faults, "forwards_checked": forwards,
                      "sequences_with_problems": len(failed), "first_problems": dict(list(failed.items())[:5]),
                      "wall_seconds": round(time.monotonic() - started, 1), "jobs": args.jobs}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
