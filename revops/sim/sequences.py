"""Random event sequences through the real runtime and actors on the tiny scenario, checked by the
invariants after every sequence (tests/test_invariants.py runs a CI-sized batch, bench/invariants.py
runs 10,000 or more).

A sequence is fully determined by its seed: the market warms up for a random time (so sequences start
inside the scenario's congestion, drain, mempool spike or disconnect as often as outside them), the
plugin is attached, then `events` random events run. Events: time passes (5 min to 2 h), a policy
changes, the configuration changes, an RPC or plugin fault starts or clears (errors, timeouts, lost, cut-off,
malformed and result-less answers, exceptions of every kind; lost answers on every call that spends or
writes), the plugin is killed and started again on the same database, a manual rebalance is asked for, a
channel opens or closes, sling's jobs get stuck, dry-run is switched on or off at runtime (nothing
state-changing may reach the node while it is on), an actor crashes mid-cycle (a channel actor, the
coordinator, or a channel actor that stops answering), a channel actor's stored state is corrupted and the
plugin restarted (its init must quarantine it); with `splices=True` also a channel splices (in or out, locking
in 1-6 blocks later under a new short channel id). Fee intervals are shortened so the daily update limit is
actually reached.
"""
from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import attrs
from pyln.client import RpcException

from actors.messages import Crash
from revops import simulate
from revops.runtime import Continue
from revops.sim.faults import FaultyRpc, stick_sling_jobs
from revops.sim.invariants import check_all, check_liveness
from revops.sim.node import SimNode
from revops.sim.scenario import Scenario, load_scenario

HOUR = 3600
METHODS = ("listpeerchannels", "setchannel", "feerates", "listfunds", "listforwards", "getinfo", "plugin",
           "sling-*", "clboss-*", "bkpr-*", "*", "sling-once", "sling-go", "sling-stop", "sling-deletejob")
FAULT_KINDS = ("error", "timeout", "lost", "vanish", "absent", "malformed", "truncated", "noresult", "exception")
STRATEGIES = ("dynamic", "static", "passive", "hive")
REBALANCE_MODES = ("enabled", "disabled", "sink_only", "source_only")
# config keys whose change the invariants can follow (the budget check takes the largest budget set)
CONFIG_VALUES = {"min_fee_ppm": (5, 10, 50, 300), "max_fee_ppm": (200, 1000, 5000), "fee_interval": (300, 900, 1800),
                 "daily_budget_sats": (0, 100, 1000, 5000), "rebalance_interval": (600, 1800)}
EVENTS = ("advance",) * 6 + ("policy", "config", "fault", "clear", "restart", "rebalance", "channel", "stuck",
                             "dry", "crash", "corrupt")
BASE_OPTIONS = {"revenue-ops-fee-interval": 600, "revenue-ops-rebalance-interval": 900,
                "revenue-ops-daily-budget-sats": 5000}


@attrs.define
class Outcome:
    seed: int
    events: dict[str, int]
    faults_injected: int
    forwards: int
    problems: list[str]


def run_sequence(seed: int, events: int = 12, scenario: Scenario | None = None, db_dir: str | None = None,
                 splices: bool = False) -> Outcome:
    """`splices`: channels also splice (an event kind of its own; off, a seed runs as it always did)."""
    rng = random.Random(seed)
    kinds = EVENTS + ("splice",) * 2 if splices else EVENTS
    scenario = scenario or load_scenario("tiny")
    node = SimNode(scenario, seed=seed)
    node.advance_to(node.now + rng.randrange(0, 36 * HOUR, 300))
    rpc = FaultyRpc(node)
    db = os.path.join(db_dir or tempfile.mkdtemp(prefix="revops-seq-"), f"seq-{seed}.db")
    start = lambda: simulate.start(scenario, node=node, rpc=rpc, db_path=db, options=BASE_OPTIONS)  # noqa: E731
    sim = start()
    done: dict[str, int] = {}
    budgets = [BASE_OPTIONS["revenue-ops-daily-budget-sats"]]
    manual: set[tuple[int, str]] = set()
    strategies: list[tuple[int, str, str]] = []
    dry: list[list[int]] = []             # [from, to) indexes of rpc.delivered while dry-run was on
    waits: list[tuple[str, int]] = []     # late RPC answers, over every incarnation of the plugin
    problems: list[str] = []
    try:
        for _ in range(events):
            kind = rng.choice(kinds)
            done[kind] = done.get(kind, 0) + 1
            before = len(rpc.delivered)
            if kind in ("restart", "corrupt"):   # kill -9: the old runtime is abandoned, not stopped
                waits += sim.rpc_waits
                if kind == "corrupt":
                    _corrupt_state(sim, rng)
                sim = start()
            elif kind == "dry":           # the operator's kill switch, on or off
                _rpc(sim, "revenue-config", {"action": "set", "key": "dry_run", "value": not sim.runtime.config.dry_run})
            else:
                _event(kind, sim, rpc, rng, budgets, manual, strategies)
            # the spans follow what is really in force (a toggle whose answer was lost may still have
            # applied; seed 498): a span opens after the event that switched it on, closes before the one off
            if sim.runtime.config.dry_run != (bool(dry) and dry[-1][1] < 0):
                if sim.runtime.config.dry_run:
                    dry.append([len(rpc.delivered), -1])
                else:
                    dry[-1][1] = before
        rpc.clear()
        cleared_at = node.now
        sim.advance(HOUR)                 # faults cleared: let the plugin catch up before judging
        problems = check_all(sim, rpc, budget_sats_max=max(budgets), manual=frozenset(manual),
                             strategies=tuple(strategies),
                             dry_spans=tuple((a, len(rpc.delivered) if b < 0 else b) for a, b in dry))
        problems += check_liveness(sim, waits + sim.rpc_waits, cleared_at)
        forwards = sim.store.forward_count()
    except Exception as e:  # noqa: BLE001 - a sequence that cannot even be judged is a finding too
        problems.append(f"sequence raised {type(e).__name__}: {e}")
        forwards = 0
    finally:
        sim.close()
    return Outcome(seed, done, sum(rpc.injected.values()), forwards, problems)


def _event(kind: str, sim: Any, rpc: FaultyRpc, rng: random.Random, budgets: list[int],
           manual: set[tuple[int, str]], strategies: list[tuple[int, str, str]]) -> None:
    node = sim.node
    if kind == "advance":
        sim.advance(rng.randrange(300, 2 * HOUR + 1, 300))
    elif kind == "policy":
        peer = rng.choice(sorted({c.peer_id for c in node.open_channels()}))
        params: dict[str, Any] = {"action": "set", "peer_id": peer, "strategy": rng.choice(STRATEGIES),
                                  "rebalance": rng.choice(REBALANCE_MODES)}
        if params["strategy"] == "static":
            params["fee_ppm"] = rng.choice((0, 100, 1000, 9000))
        if rng.random() < 0.5:
            params["fee_min_ppm"], params["fee_max_ppm"] = rng.choice(((20, 800), (100, 100), (500, 50), (1, 20000)))
        if _rpc(sim, "revenue-policy", params):
            strategies.append((sim.runtime.now, peer, params["strategy"]))
    elif kind == "config":
        key = rng.choice(sorted(CONFIG_VALUES))
        value = rng.choice(CONFIG_VALUES[key])
        if _rpc(sim, "revenue-config", {"action": "set", "key": key, "value": value}) and key == "daily_budget_sats":
            budgets.append(value)
    elif kind == "fault":
        rpc.inject(rng.choice(FAULT_KINDS), rng.choice(METHODS))
    elif kind == "clear":
        rpc.clear()
    elif kind == "rebalance":
        scids = sorted(c.scid for c in node.open_channels())
        src, dst = rng.sample(scids, 2)
        manual.add((sim.runtime.now, dst))
        _rpc(sim, "revenue-rebalance", {"from_channel": src, "to_channel": dst,
                                        "amount_sats": rng.choice((10_000, 200_000, 5_000_000))})
    elif kind == "channel":
        closable = [c.scid for c in node.open_channels() if c.state == "CHANNELD_NORMAL"]   # not mid-splice
        if rng.random() < 0.5 and len(closable) > 3:
            node.close_channel(rng.choice(closable))
        else:
            node.open_channel(capacity_sat=rng.choice((1_000_000, 5_000_000)), local_sat=rng.choice((0, 500_000)))
    elif kind == "splice":             # in, or out of what we hold; locks in 1-6 blocks later
        normal = [c for c in node.open_channels() if c.state == "CHANNELD_NORMAL"]
        if normal:
            ch = rng.choice(normal)
            amount = rng.choice((1_000_000, -(ch.to_us_msat // 2000)))
            if ch.capacity_msat + amount * 1000 >= 20_000_000:
                node.splice_channel(ch.scid, amount, confirms=rng.choice((1, 3, 6)))
    elif kind == "stuck":
        stick_sling_jobs(node)
    elif kind == "crash":               # on the loop, inside a message, as a real crash happens
        scids = sorted(c.scid for c in node.open_channels())
        target = rng.choice(scids + [None])
        crash = Crash(target, silent=target is not None and rng.random() < 0.3)
        sim.runtime.post(Continue(lambda: sim.runtime.tell(crash) if sim.runtime.started else None))
        sim.runtime.run_until_idle()


def _corrupt_state(sim: Any, rng: random.Random) -> None:
    """One channel actor's stored state no longer structures (a renamed field, or not JSON at all)."""
    rows = sim.store.db.execute("SELECT scid, state_json FROM channel_actors WHERE closed_at IS NULL").fetchall()
    if not rows:
        return
    scid, text = rng.choice(sorted(tuple(r) for r in rows))
    broken = "{cut off" if rng.random() < 0.5 else text.replace('"hill"', '"hill_renamed"')
    sim.store.db.execute("UPDATE channel_actors SET state_json=? WHERE scid=?", (broken, scid))


def _rpc(sim: Any, method: str, params: dict) -> bool:
    """Call a plugin RPC; a refusal is an answer too (the invariants judge what happened)."""
    try:
        sim.rpc(method, params)
        return True
    except (RpcException, TimeoutError):   # no answer at all is recorded in sim.rpc_waits (a finding)
        return False
