#!/usr/bin/env python3
"""Reconnect storm (issue 14 item 7): every peer of a 1,000-channel node disconnects and reconnects.

In process, through the real runtime and actors on a generated node (bench/scale.py's scenario): after
two hours of warm-up all N peers disconnect and reconnect (2 N notifications queued at once, as when the
node's network comes back), then the plugin runs until idle and one more tick. Counts listpeerchannels
calls and the plugin's CPU time (process time minus the time spent inside the simulated lightningd).
Run it against another tree to compare: PYTHONPATH=<tree> python3 bench/reconnect_storm.py

    python3 bench/reconnect_storm.py --channels 1000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import count_calls, scenario  # noqa: E402
from revops import simulate  # noqa: E402
from revops.sim.node import SimNode  # noqa: E402


def storm(n: int) -> dict:
    sc = scenario(n)
    node = SimNode(sc, seed=0)
    calls, in_node = count_calls(node, time.process_time)
    with tempfile.TemporaryDirectory(prefix="storm-") as tmp:
        sim = simulate.start(sc, node=node, db_path=os.path.join(tmp, "revenue_ops.db"))
        try:
            sim.advance(2 * 3600)
            peers = sorted({c.peer_id for c in node.open_channels()})
            calls.clear()
            in_node[0] = 0.0
            started = time.process_time()
            for pid in peers:
                node.disconnect_peer(pid)
            for pid in peers:
                node.connect_peer(pid)
            sim.runtime.run_until_idle()
            sim.runtime.post(simulate.Tick(node.now + 1))
            sim.runtime.run_until_idle()
            cpu = time.process_time() - started
        finally:
            sim.close()
    return {"channels": n, "peers": len(peers), "notifications": 2 * len(peers),
            "listpeerchannels_calls": calls["listpeerchannels"], "plugin_cpu_s": round(cpu - in_node[0], 3),
            "simulated_lightningd_cpu_s": round(in_node[0], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=1000)
    args = ap.parse_args()
    print(json.dumps(storm(args.channels), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
