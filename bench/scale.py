"""Scale benchmark (issue #8 part 2): how the plugin behaves at 100 … 5,000 channels.

    python -m bench.scale                       # 100 500 2000 5000 10000
    python -m bench.scale --sizes 100 2000 --forwards 1000000

Per size, on a node generated with the scenario `[generate]` section:
* out of process — the real plugin file under the stand-in lightningd (revops/sim/lightningd.py):
  init reply time (init sent → answer), time until every channel actor is live (process start →
  `revenue-status` lists one running actor per channel), forward_event ingestion (events/s from the
  first notification of a burst until the plugin's database holds every forward of it), peak RSS
  of the plugin process (VmHWM); beside each wall time the CPU seconds of the plugin process
  (/proc/PID/stat) and of the stand-in (this process: the simulated node, its threads and the harness),
  since on a shared machine wall time also counts the waits for a core;
* in process — the same runtime with the simulated node as its RPC adapter: full fee-cycle wall time
  (the Tick that runs the cycle, through every channel actor, decision and setchannel, until idle),
  how much of it the simulated lightningd spent answering the plugin's calls (io is synchronous in
  process; out of process lightningd answers in its own process while the plugin goes on), and
  lightningd RPC calls per fee interval (by method); the cycle is the Tick with the most CPU
  seconds, reported with its wall seconds; the rebalance cycle's operation count (sources and destinations
  it looked at) for the same interval;
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
import sys
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
from revops import rebalance as rb
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
TARGETS_5000 = {"fee_cycle_s": 1.0, "actors_live_s": 5.0, "peak_rss_mb": 250, "ingestion_events_per_s": 4000}


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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        t0, standin0 = time.monotonic(), time.process_time()
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

            # revenue-status fans out to every actor and answers ~0.5 kB per channel: asked in a loop from
            # process start, the polls' own CPU would be counted as start-up; ask once the runtime says it
            # started the actors
            ld.wait_for_log("cl-revenue-ops started:", timeout=600)
            _wait(live, 600, 0.1)
            actors_live = time.monotonic() - t0
            pid = ld.plugin_pid(PLUGIN_NAME)
            live_cpu, live_standin_cpu = _cpu_s(pid), time.process_time() - standin0
            db = os.path.join(ld.network_dir, "revenue_ops.db")
            events = Counter()
            with ld.locked_node() as node:
                node.subscribe(lambda topic, params: events.update([topic]))
            t_burst, cpu_burst, standin_burst = time.monotonic(), _cpu_s(pid), time.process_time()
            ld.rpc.call("dev-sim-advance", {"seconds": int(burst_hours * 3600)})
            emitted = time.monotonic() - t_burst
            with ld.locked_node() as node:
                expected = sum(1 for f in node.forwards if f["status"] != "offered")

            def stored() -> bool:
                with sqlite3.connect(db) as conn:
                    return conn.execute("SELECT COUNT(*) FROM forwards").fetchone()[0] >= expected

            _wait(stored, 600, 0.05)
            ingest_s = time.monotonic() - t_burst
            ingest_cpu, ingest_standin_cpu = _cpu_s(pid) - cpu_burst, time.process_time() - standin_burst
            rss = _vm_hwm_mb(pid)
    return {"process_start_to_init_answered_s": round(started - t0, 3),
            "init_reply_s": round(init_done - init_sent, 4), "actors_live_s": round(actors_live, 3),
            "actors_live_plugin_cpu_s": round(live_cpu, 3), "actors_live_standin_cpu_s": round(live_standin_cpu, 3),
            "burst_forward_events": events["forward_event"], "burst_forwards_stored": expected,
            "burst_emit_s": round(emitted, 3), "burst_ingested_s": round(ingest_s, 3),
            "ingestion_events_per_s": round(events["forward_event"] / ingest_s, 1),
            "burst_plugin_cpu_s": round(ingest_cpu, 3), "burst_standin_cpu_s": round(ingest_standin_cpu, 3),
            "ingestion_events_per_plugin_cpu_s": round(events["forward_event"] / max(ingest_cpu, 0.01), 1),
            "peak_rss_mb": round(rss, 1)}


def count_calls(node: SimNode, *clocks: Callable[[], float]) -> tuple[Counter, list[float]]:
    """Wrap the simulated node's RPC entry point: calls per method, and per clock the time spent inside it."""
    calls: Counter = Counter()
    in_node = [0.0] * len(clocks)
    raw_call = node.call

    def counting_call(method: str, params: Any = None) -> dict:
        calls[method] += 1
        t = [clock() for clock in clocks]
        try:
            return raw_call(method, params)
        finally:
            for k, clock in enumerate(clocks):
                in_node[k] += clock() - t[k]

    node.call = counting_call  # type: ignore[method-assign]
    return calls, in_node


def in_process(sc: Scenario) -> dict:
    """Fee-cycle wall and CPU time and lightningd RPC calls per fee interval, through the real runtime."""
    node = SimNode(sc, seed=0)
    # in_node: wall and CPU seconds inside the simulated lightningd
    calls, in_node = count_calls(node, time.monotonic, time.process_time)
    cycles: list[tuple] = []            # the rebalance cycle's inputs, replayed below to count its work
    real_find = rb.find_candidates

    def recording_find(*args: Any) -> Any:
        cycles.append(args)
        return real_find(*args)

    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        sim = simulate.start(sc, node=node, db_path=os.path.join(tmp, "revenue_ops.db"))
        rb.find_candidates = recording_find     # type: ignore[assignment]
        try:
            interval = cfgmod.parse_options({}).fee_interval
            t = time.monotonic()
            sim.advance(2 * interval)                       # start-up, first cycles
            warmup = time.monotonic() - t
            calls.clear()
            cycles.clear()
            steps = []
            end = node.now + interval
            while node.now < end:
                nxt = min(node.now + sim.step_seconds, end)
                node.advance_to(nxt)
                t, cpu, in_node[:] = time.monotonic(), time.process_time(), [0.0, 0.0]
                sim.runtime.post(simulate.Tick(nxt))
                sim.runtime.run_until_idle()
                steps.append((time.process_time() - cpu, time.monotonic() - t, *in_node))
        finally:
            rb.find_candidates = real_find      # type: ignore[assignment]
            sim.close()
    cpu, wall, node_wall, node_cpu = max(steps)     # the cycle: the Tick that used the most CPU
    return {"fee_cycle_s": round(wall, 4), "fee_cycle_in_simulated_lightningd_s": round(node_wall, 4),
            "fee_cycle_plugin_s": round(wall - node_wall, 4),
            "fee_cycle_plugin_cpu_s": round(cpu - node_cpu, 4),
            "fee_cycle_simulated_lightningd_cpu_s": round(node_cpu, 4),
            "idle_tick_s_median": round(sorted(w for _, w, _, _ in steps)[len(steps) // 2], 4),
            "warmup_two_intervals_s": round(warmup, 2),
            "rpc_calls_per_fee_interval": sum(calls.values()), "rpc_calls_by_method": dict(calls.most_common()),
            **(rebalance_work(cycles[-1]) if cycles else {})}


def rebalance_work(args: tuple) -> dict:
    """The rebalance cycle replayed on its recorded inputs: CPU seconds, Python calls made (its operation
    count) and the numbers that size it — destinations evaluated past screening and sources in the pool."""
    channels = args[0]
    t = time.process_time()
    candidates, rejections = rb.find_candidates(*args)
    cpu = time.process_time() - t
    ops = [0]

    def count(frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            ops[0] += 1

    sys.setprofile(count)
    try:
        rb.find_candidates(*args)
    finally:
        sys.setprofile(None)
    pool = sum(1 for r in rejections if r.role is rb.Role.SOURCE and r.dest_scid is None)
    return {"rebalance_cycle_cpu_s": round(cpu, 4), "rebalance_cycle_calls": ops[0],
            "rebalance_channels": len(channels), "rebalance_source_pool": len(channels) - pool,
            "rebalance_destinations_with_source_rejections": len({r.dest_scid for r in rejections if r.dest_scid is not None}),
            "rebalance_rejections": sum(1 for _ in rejections), "rebalance_candidates": len(candidates)}


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


PARTS = ("out_of_process", "in_process", "flow")


def measure(n: int, forwards: int, burst_events: int, parts: list[str]) -> dict:
    sc = scenario(n)
    burst_hours = max(0.5, burst_events / (EVENTS_PER_CHANNEL_HOUR * n))
    out: dict[str, Any] = {"channels": n}
    for part, fn in (("out_of_process", lambda: out_of_process(sc, n, burst_hours)),
                     ("in_process", lambda: in_process(sc)),
                     ("flow", lambda: flow_analysis(n, forwards))):
        if part not in parts:
            continue
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

    lines = ["| channels | init reply, s | actors live, s | actors live CPU s: plugin + stand-in | fee cycle, s "
             "| fee cycle CPU s: plugin + simulated lightningd | ingestion, events/s | ingestion CPU s: plugin + "
             "stand-in | peak RSS, MB | rebalance cycle: CPU s, calls | flow analysis (stored fwds), s "
             "| RPC calls / fee interval | load average (1 min) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, i = "out_of_process", "in_process"
        lines.append(f"| {r['channels']:,} | {g(r, o, 'init_reply_s')} | "
                     f"{g(r, o, 'actors_live_s')} | {g(r, o, 'actors_live_plugin_cpu_s')} + "
                     f"{g(r, o, 'actors_live_standin_cpu_s')} | {g(r, i, 'fee_cycle_s')} | "
                     f"{g(r, i, 'fee_cycle_plugin_cpu_s')} + {g(r, i, 'fee_cycle_simulated_lightningd_cpu_s')} | "
                     f"{g(r, o, 'ingestion_events_per_s')} | {g(r, o, 'burst_plugin_cpu_s')} + "
                     f"{g(r, o, 'burst_standin_cpu_s')} | "
                     f"{g(r, o, 'peak_rss_mb')} | {g(r, i, 'rebalance_cycle_cpu_s')}, {g(r, i, 'rebalance_cycle_calls')} | "
                     f"{g(r, 'flow', 'flow_analysis_s')} ({g(r, 'flow', 'stored_forwards')}) | "
                     f"{g(r, i, 'rpc_calls_per_fee_interval')} | {_loads(r)} |")
    return "\n".join(lines)


def _loads(r: dict) -> str:
    """Lowest–highest 1-minute load average seen around this size's measurements."""
    seen = [x for part in ("out_of_process", "in_process", "flow")
            for x in r.get(part, {}).get("load_average_1m_before_after", [])]
    return f"{min(seen):.1f}–{max(seen):.1f}" if seen else "–"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[100, 500, 2000, 5000, 10000])
    ap.add_argument("--forwards", type=int, default=1_000_000, help="stored forwards for the flow analysis")
    ap.add_argument("--burst-events", type=int, default=20_000, help="about this many forward_events per burst")
    ap.add_argument("--out", default=str(RESULTS / "scale.json"))
    ap.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS), help="measure only these parts")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    out = Path(a.out)
    rows = [measure(n, a.forwards, a.burst_events, a.parts)
            for n in track(a.sizes, description="sizes", console=Console(stderr=True))]
    if out.exists():    # keep sizes and parts measured by an earlier invocation (one at a time fits a time box)
        earlier = {r["channels"]: r for r in json.loads(out.read_text())["sizes"]}
        rows = [{**earlier.pop(r["channels"], {}), **r} for r in rows] + list(earlier.values())
        rows.sort(key=lambda r: r["channels"])
    doc = {"wall_s": round(time.monotonic() - t0, 1), "cpus": os.cpu_count(),
           "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
           "targets_at_2000": TARGETS_2000,
           "targets_at_5000": TARGETS_5000, "sizes": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    out.with_suffix(".md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
