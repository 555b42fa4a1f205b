"""Scale benchmark (issue #8 part 2): how the plugin behaves at 100 … 5,000 channels.

    python -m bench.scale                       # 100 500 2000 5000
    python -m bench.scale --sizes 100 2000 --forwards 1000000

Per size, on a node generated with the scenario `[generate]` section:
* out of process — the real plugin file under the stand-in lightningd (revops/sim/lightningd.py):
  init reply time (init sent → answer), time until every channel actor is live (process start →
  `revenue-status` lists one running actor per channel), forward_event ingestion (events/s from the
  first notification of a burst until the plugin's database holds every forward of it), peak RSS
  of the plugin process (VmHWM);
* in process — the same runtime with the simulated node as its RPC adapter: full fee-cycle wall time
  (the Tick that runs the cycle, through every channel actor, decision and setchannel, until idle),
  how much of it the simulated lightningd spent answering the plugin's calls (io is synchronous in
  process; out of process lightningd answers in its own process while the plugin goes on), and
  lightningd RPC calls per fee interval (by method);
* the start-up flow analysis over N stored forwards (store.daily_buckets over the flow window plus
  flow.analyze for every channel), on a SQLite store filled with synthetic forwards.
Results: bench/results/scale.json and a Markdown table (bench/results/scale.md).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import track

from revops import config as cfgmod
from revops import flow, simulate
from revops.model import ChannelView
from revops.sim.lightningd import StandinLightningd
from revops.sim.node import SimNode
from revops.sim.scenario import Scenario, loads_scenario
from revops.store import Store

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "cl-revenue-ops.py")
PLUGIN_NAME = "cl-revenue-ops.py"
RESULTS = ROOT / "bench" / "results"
EVENTS_PER_CHANNEL_HOUR = 3.7   # forward_event notifications per channel per hour in scenario() (measured)
TARGETS_2000 = {"fee_cycle_s": 1.0, "ingestion_events_per_s": 2000, "peak_rss_mb": 250, "init_reply_s": 1.0}


def scenario(n: int) -> Scenario:
    """N generated channels, demand 2 payments/h per channel (the generator's default), regtest."""
    return loads_scenario(f"""
name = "scale{n}"
[node]
network = "regtest"
[generate]
seed = 7
channels = {n}
""", name=f"scale{n}")


class _TimedTrace(list):
    """The stand-in's message trace, with the monotonic time of every message."""

    def append(self, item: Any) -> None:
        super().append((time.monotonic(), item))


def _wait(fn, timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout} s")


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def out_of_process(sc: Scenario, n: int, burst_hours: float) -> dict:
    """Start, actors live, an ingestion burst and peak RSS, with the real plugin file."""
    os.environ.setdefault("REVOPS_TICK_SECONDS", "0.2")
    trace = _TimedTrace()
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        t0 = time.monotonic()
        ld = StandinLightningd(sc, lightning_dir=tmp, seed=0, speed=0, plugins=[PLUGIN], trace=trace,
                               log_stderr=False, handshake_timeout=120)
        with ld:
            started = time.monotonic()
            init_sent = next(t for t, m in trace if m["dir"] == "to" and m["msg"].get("method") == "init")
            init_id = next(m["msg"]["id"] for t, m in trace if m["dir"] == "to" and m["msg"].get("method") == "init")
            init_done = next(t for t, m in trace if m["dir"] == "from" and m["msg"].get("id") == init_id)

            def live() -> bool:
                st = ld.rpc.call("revenue-status")
                return st["status"] == "running" and len(st["channels"]) == n

            _wait(live, 600)
            actors_live = time.monotonic() - t0
            db = os.path.join(ld.network_dir, "revenue_ops.db")
            events = Counter()
            with ld.locked_node() as node:
                node.subscribe(lambda topic, params: events.update([topic]))
            t_burst = time.monotonic()
            ld.rpc.call("dev-sim-advance", {"seconds": int(burst_hours * 3600)})
            emitted = time.monotonic() - t_burst
            with ld.locked_node() as node:
                expected = sum(1 for f in node.forwards if f["status"] != "offered")

            def stored() -> bool:
                with sqlite3.connect(db) as conn:
                    return conn.execute("SELECT COUNT(*) FROM forwards").fetchone()[0] >= expected

            _wait(stored, 600, 0.05)
            ingest_s = time.monotonic() - t_burst
            rss = _vm_hwm_mb(ld.plugin_pid(PLUGIN_NAME))
    return {"process_start_to_init_answered_s": round(started - t0, 3),
            "init_reply_s": round(init_done - init_sent, 4), "actors_live_s": round(actors_live, 3),
            "burst_forward_events": events["forward_event"], "burst_forwards_stored": expected,
            "burst_emit_s": round(emitted, 3), "burst_ingested_s": round(ingest_s, 3),
            "ingestion_events_per_s": round(events["forward_event"] / ingest_s, 1),
            "peak_rss_mb": round(rss, 1)}


def count_calls(node: SimNode, clock: Callable[[], float]) -> tuple[Counter, list[float]]:
    """Wrap the simulated node's RPC entry point: calls per method, and `clock` time spent inside it."""
    calls: Counter = Counter()
    in_node = [0.0]
    raw_call = node.call

    def counting_call(method: str, params: Any = None) -> dict:
        calls[method] += 1
        t = clock()
        try:
            return raw_call(method, params)
        finally:
            in_node[0] += clock() - t

    node.call = counting_call  # type: ignore[method-assign]
    return calls, in_node


def in_process(sc: Scenario) -> dict:
    """Fee-cycle wall time and lightningd RPC calls per fee interval, through the real runtime."""
    node = SimNode(sc, seed=0)
    calls, in_node = count_calls(node, time.monotonic)   # in_node: seconds inside the simulated lightningd
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        sim = simulate.start(sc, node=node, db_path=os.path.join(tmp, "revenue_ops.db"))
        try:
            interval = cfgmod.parse_options({}).fee_interval
            t = time.monotonic()
            sim.advance(2 * interval)                       # start-up, first cycles
            warmup = time.monotonic() - t
            calls.clear()
            steps = []
            end = node.now + interval
            while node.now < end:
                nxt = min(node.now + sim.step_seconds, end)
                node.advance_to(nxt)
                t, in_node[0] = time.monotonic(), 0.0
                sim.runtime.post(simulate.Tick(nxt))
                sim.runtime.run_until_idle()
                steps.append((time.monotonic() - t, in_node[0]))
        finally:
            sim.close()
    cycle, node_s = max(steps)
    return {"fee_cycle_s": round(cycle, 4), "fee_cycle_in_simulated_lightningd_s": round(node_s, 4),
            "fee_cycle_plugin_s": round(cycle - node_s, 4),
            "idle_tick_s_median": round(sorted(w for w, _ in steps)[len(steps) // 2], 4),
            "warmup_two_intervals_s": round(warmup, 2),
            "rpc_calls_per_fee_interval": sum(calls.values()), "rpc_calls_by_method": dict(calls.most_common())}


def flow_analysis(n: int, forwards: int, days: int = 30) -> dict:
    """Start-up flow analysis over `forwards` stored forwards spread over `days` days and n channels."""
    rng = random.Random(1)
    scids = [f"800000x{i}x0" for i in range(n)]
    now = 1_800_000_000
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        store = Store(os.path.join(tmp, "revenue_ops.db"))
        t = time.monotonic()
        rows = []
        for i in range(forwards):       # synthetic fill (not measured): one executemany per 50,000 rows
            a, b = scids[rng.randrange(n)], scids[rng.randrange(n)]
            amt = 1_000_000 + int(rng.random() * 499_000_000)
            # the columns of store._forward_row(Forward(...)), built directly for speed
            rows.append((a, i, b, amt + amt // 2000, amt, amt // 2000, "settled",
                         now - rng.random() * days * 86400, None, i + 1, None, None))
            if len(rows) == 50_000 or i == forwards - 1:
                with store.tx():
                    store.db.executemany("INSERT INTO forwards VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                rows = []
        fill = time.monotonic() - t
        cfg = cfgmod.parse_options({})
        t = time.monotonic()
        buckets = store.daily_buckets(None, now, cfg.flow_window_days)
        query = time.monotonic() - t
        for scid in scids:
            view = ChannelView(scid=scid, peer_id="02" + "11" * 32, channel_id="00" * 32, state="CHANNELD_NORMAL",
                               opener="local", capacity_msat=10**10, local_msat=5 * 10**9, spendable_msat=5 * 10**9,
                               receivable_msat=5 * 10**9, fee_base_msat=0, fee_ppm=100, htlc_count=0,
                               htlc_value_msat=0, max_accepted_htlcs=483, peer_connected=True)
            flow.analyze(view, [flow.DailyBucket(**b) for b in buckets.get(scid, [])], cfg)
        total = time.monotonic() - t
        store.close()
    return {"stored_forwards": forwards, "fill_s": round(fill, 1), "daily_buckets_query_s": round(query, 3),
            "flow_analysis_s": round(total, 3)}


def measure(n: int, forwards: int, burst_events: int) -> dict:
    sc = scenario(n)
    burst_hours = max(0.5, burst_events / (EVENTS_PER_CHANNEL_HOUR * n))
    out: dict[str, Any] = {"channels": n}
    for part, fn in (("out_of_process", lambda: out_of_process(sc, n, burst_hours)),
                     ("in_process", lambda: in_process(sc)),
                     ("flow", lambda: flow_analysis(n, forwards))):
        t, load = time.monotonic(), os.getloadavg()[0]
        try:
            out[part] = fn()
        except Exception as e:  # a size that breaks is reported, not hidden
            out[part] = {"error": f"{type(e).__name__}: {e}"}
        out[part]["wall_s"] = round(time.monotonic() - t, 1)
        # 2 shared CPUs: other work on the machine inflates every wall time; say how busy it was
        out[part]["load_average_1m_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        print(n, part, json.dumps(out[part]), flush=True)
    return out


def markdown(rows: list[dict]) -> str:
    def g(r: dict, part: str, key: str) -> str:
        v = r.get(part, {}).get(key)
        return "–" if v is None else f"{v:,}" if isinstance(v, (int, float)) else str(v)

    lines = ["| channels | init reply, s | actors live, s | fee cycle, s | of it in simulated lightningd, s "
             "| ingestion, events/s | peak RSS, MB | flow analysis (stored fwds), s | RPC calls / fee interval "
             "| load average (1 min) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['channels']:,} | {g(r, 'out_of_process', 'init_reply_s')} | "
                     f"{g(r, 'out_of_process', 'actors_live_s')} | {g(r, 'in_process', 'fee_cycle_s')} | "
                     f"{g(r, 'in_process', 'fee_cycle_in_simulated_lightningd_s')} | "
                     f"{g(r, 'out_of_process', 'ingestion_events_per_s')} | {g(r, 'out_of_process', 'peak_rss_mb')} | "
                     f"{g(r, 'flow', 'flow_analysis_s')} ({g(r, 'flow', 'stored_forwards')}) | "
                     f"{g(r, 'in_process', 'rpc_calls_per_fee_interval')} | {_loads(r)} |")
    return "\n".join(lines)


def _loads(r: dict) -> str:
    """Lowest–highest 1-minute load average seen around this size's measurements."""
    seen = [x for part in ("out_of_process", "in_process", "flow")
            for x in r.get(part, {}).get("load_average_1m_before_after", [])]
    return f"{min(seen):.1f}–{max(seen):.1f}" if seen else "–"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[100, 500, 2000, 5000])
    ap.add_argument("--forwards", type=int, default=1_000_000, help="stored forwards for the flow analysis")
    ap.add_argument("--burst-events", type=int, default=20_000, help="about this many forward_events per burst")
    ap.add_argument("--out", default=str(RESULTS / "scale.json"))
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    out = Path(a.out)
    rows = [measure(n, a.forwards, a.burst_events)
            for n in track(a.sizes, description="sizes", console=Console(stderr=True))]
    if out.exists():    # keep sizes measured by an earlier invocation (one size at a time fits a time box)
        rows += [r for r in json.loads(out.read_text())["sizes"] if r["channels"] not in a.sizes]
        rows.sort(key=lambda r: r["channels"])
    doc = {"wall_s": round(time.monotonic() - t0, 1), "cpus": os.cpu_count(),
           "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
           "targets_at_2000": TARGETS_2000, "sizes": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    out.with_suffix(".md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
