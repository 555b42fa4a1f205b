"""The promises the plugin keeps, checked against the simulated node's ground truth and the plugin's store.

Each check returns a list of human-readable problems (empty = the promise held). Used after the fault
matrix (tests/test_reliability_faults.py) and after every random event sequence (tests/test_invariants.py,
bench/invariants.py).

1. every final forward the node made is in the store exactly once, and each channel actor's window
   revenue equals the store's sum (counted once, in the actor too);
2. at every reservation, rolling-24 h settled spend + live reservations <= the daily budget, and the
   channel's 30-day spend + the reservation <= `channel_cap_pct` x its 30-day earnings (hive peers and
   explicit revenue-rebalance requests are exempt, as documented in docs/rebalancing.md); every msat
   sling spent is booked;
3. every fee the plugin set is inside [eff_min, eff_max] (config min/max and the policy's bounds), except
   pins (static, hive), which are exact by design (docs/fees.md);
4. no channel gets more than `max_fee_updates_per_day` counted updates in any 24 h: congestion, the first
   move after congestion, pins and corrections into the operator's bounds are exempt (docs/fees.md §3); every setchannel that reached the node
   (even one whose answer was lost) is one the plugin recorded;
5. after a policy was set: a passive peer's fees are never set by the plugin (clboss may set them: they
   are handed back to it), a peer with rebalancing disabled is never a rebalance destination nor source;
6. no sling job the plugin started still runs outside its registry (a lost sling-once answer ends adopted or
   stopped and booked, never as an orphan);
7. while dry-run was on, no state-changing call reached the node (`check_dry_run`, given the spans);
8. (`check_liveness`) every RPC is answered within 2 x `rpc_timeout_seconds`, and after the last fault is
   cleared a fee cycle and a rebalance cycle each reach their decisions again.

The budget check (2) counts a reservation from its creation until it was settled, released or expired,
whatever its age: a reservation ends only with its job (docs/rebalancing.md).
"""
from __future__ import annotations

import json
from typing import Any

from revops.node import changes_state

DAY = 86400
PINS = ("static", "hive")
EXEMPT = ("congestion", "bounds") + PINS     # bounds: a fee outside the operator's bounds is corrected at once
FINAL = ("settled", "failed", "local_failed")


def check_all(sim: Any, rpc: Any, budget_sats_max: int | None = None,
              manual: frozenset[tuple[int, str]] = frozenset(),
              strategies: tuple[tuple[int, str, str], ...] = (),
              dry_spans: tuple[tuple[int, int], ...] = ()) -> list[str]:
    """`rpc` is the FaultyRpc the plugin talked through: it knows which writes reached the node.
    `manual`: (time, destination) of revenue-rebalance requests, to which the channel cap does not apply;
    `strategies`: (time, peer, strategy) of every policy change, for the hive exemption at the time;
    `dry_spans`: [from, to) indexes of `rpc.delivered` during which dry-run was on."""
    return (check_forwards(sim) + check_history(sim) + check_budget(sim, budget_sats_max, manual, strategies) + check_fee_bounds(sim)
            + check_update_rate(sim, rpc) + check_passive(sim, rpc) + check_registry(sim, rpc)
            + check_dry_run(rpc, dry_spans))


def check_registry(sim: Any, rpc: Any = None) -> list[str]:
    """Every sling job the plugin started (a sling-once or sling-job that reached the node through `rpc`;
    without it, every job in sling) that sling still has (a job) or runs (a once-job) is in the plugin's
    registry."""
    created = ({p["scid"] for _, m, p in rpc.delivered if m in ("sling-once", "sling-job")}
               if rpc is not None else None)
    registry = {job.scid for job, _ in sim.runtime.ledger.load_jobs()}
    sling = sim.node.sling
    live = set(sling.jobs) | {s for s in sling.once if s in sling.running}
    orphans = sorted(s for s in live if (created is None or s in created) and s not in registry)
    return [f"sling job {s} exists outside the registry" for s in orphans]


def check_dry_run(rpc: Any, spans: Any) -> list[str]:
    """No state-changing call delivered while dry-run was on (spans of indexes into rpc.delivered); stopping
    or deleting one of our jobs (its records kept) is allowed: it only ends spending (revops/node.py
    `ends_spending`)."""
    return [f"dry-run: {method} reached the node at {t}" for a, b in spans for t, method, p in rpc.delivered[a:b]
            if changes_state(method, p)]


def check_forwards(sim: Any) -> list[str]:
    node_rows = [f for f in sim.node.call("listforwards", {})["forwards"] if f["status"] in FINAL]
    canonical = sim.store.canonical      # listforwards keeps the scid of before a splice; the store the one now
    node_keys = {(canonical(f["in_channel"]), f["in_htlc_id"]): f["status"] for f in node_rows}
    store_keys = {(r[0], r[1]): r[2] for r in sim.store.db.execute(
        "SELECT in_channel, in_htlc_id, status FROM forwards")}
    problems = []
    if len(node_keys) != len(node_rows):
        problems.append("the node reported a forward twice")
    missing = set(node_keys) - set(store_keys)
    extra = set(store_keys) - set(node_keys)
    if missing or extra:
        problems.append(f"forwards: {len(missing)} missing from the store, {len(extra)} unknown to the node")
    if not sim.runtime.started:
        return problems
    status = sim.rpc("revenue-status")
    # a partial answer comes at its deadline, the node having gone on meanwhile: compare as of the question
    until = status["asked_at"] if status["unanswered"] else None
    for c in status["channels"]:
        start = c["hill_climb"]["window_start"]
        fees = sim.store.channel_earnings(c["scid"], start, until)[0]
        if c["window_fees_msat"] != fees:
            problems.append(f"{c['scid']}: actor window revenue {c['window_fees_msat']} msat != store {fees} msat")
    return problems


def check_history(sim: Any) -> list[str]:
    """A spliced channel's fees are the sum over every short channel id it had (listforwards keeps each
    forward's), all stored under the one it has now."""
    fees: dict[str, int] = {}
    for f in sim.node.call("listforwards", {"status": "settled"})["forwards"]:
        fees[f["out_channel"]] = fees.get(f["out_channel"], 0) + f["fee_msat"]
    problems = []
    for ch in sim.node.channels.values():
        truth = sum(fees.get(s, 0) for s in (*ch.past_scids, ch.scid))
        stored = sim.store.channel_earnings(ch.scid, 0)[0]
        if ch.past_scids and stored != truth:
            problems.append(f"{ch.scid} (was {', '.join(ch.past_scids)}): {stored} msat of fees stored under it, "
                            f"{truth} msat earned under all its short channel ids")
    return problems


def _hive_at(sim: Any, strategies: tuple[tuple[int, str, str], ...]) -> Any:
    """Was this channel's peer a hive member at time t? From the (time, peer, strategy) history when the
    caller kept one (policies change during a sequence), else from the policies stored now."""
    peer_of = {c.scid: c.peer_id for c in sim.node.channels.values()}
    now_hive = {r["peer_id"] for r in sim.store.load_policies() if r["strategy"] == "hive"}

    def hive(t: int, scid: str) -> bool:
        if not strategies:
            return peer_of.get(scid) in now_hive
        past = [s for at, peer, s in strategies if peer == peer_of.get(scid) and at <= t]
        return bool(past) and past[-1] == "hive"
    return hive


def check_budget(sim: Any, budget_sats_max: int | None = None,
                 manual: frozenset[tuple[int, str]] = frozenset(),
                 strategies: tuple[tuple[int, str, str], ...] = ()) -> list[str]:
    from revops import rebalance as rb
    cfg = sim.runtime.config
    rows = sim.runtime.ledger.reservations()
    hive = _hive_at(sim, strategies)
    manual_now = {(t, sim.store.canonical(scid)) for t, scid in manual}   # asked for before a splice
    problems = []
    for r in rows:
        t = r["created_at"]
        spent = sum(x["spent_msat"] for x in rows
                    if x["status"] != "active" and x["settled_at"] is not None and t - DAY < x["settled_at"] <= t)
        live = sum(x["reserved_msat"] for x in rows if x["created_at"] <= t
                   and (x["settled_at"] is None or x["settled_at"] > t))
        revenue = sim.store.revenue_msat(t - DAY, t + 1)[0]
        budget = rb.effective_daily_budget_msat(cfg, revenue)
        if budget_sats_max is not None:
            budget = max(budget, rb.effective_daily_budget_msat(
                type("Cfg", (), {**{k: getattr(cfg, k) for k in ("enable_proportional_budget",
                                                                  "proportional_budget_pct")},
                                 "daily_budget_sats": budget_sats_max})(), revenue))
        if spent + live > budget:
            problems.append(f"budget: at {t} spent {spent} + reserved {live} msat > daily budget {budget} msat")
        if r["status"] == "settled" and r["spent_msat"] > r["reserved_msat"]:
            problems.append(f"reservation {r['id']} booked {r['spent_msat']} > reserved {r['reserved_msat']} msat")
        if hive(t, r["scid"]) or (t, r["scid"]) in manual_now:   # exempt from the channel cap only (seed 4118)
            continue
        earned = sim.store.db.execute(
            "SELECT COALESCE(SUM(fee_msat), 0) FROM forwards WHERE status='settled' AND out_channel=? "
            "AND received_time >= ? AND received_time <= ?", (r["scid"], t - 30 * DAY, t)).fetchone()[0]
        used = sum(x["reserved_msat"] if x["status"] == "active" or (x["settled_at"] or t + 1) > t else x["spent_msat"]
                   for x in rows if x["scid"] == r["scid"] and x["created_at"] <= t and x["id"] != r["id"]
                   and x["created_at"] > t - 30 * DAY)
        if used + r["reserved_msat"] > cfg.channel_cap_pct * earned:
            problems.append(f"channel cap: {r['scid']} at {t}: {used} + {r['reserved_msat']} msat > "
                            f"{cfg.channel_cap_pct:.0%} of 30-day earnings {earned} msat")
    booked = sum(x["spent_msat"] for x in rows if x["status"] != "active")
    live = sum(x["reserved_msat"] for x in rows if x["status"] == "active")
    real = int(sim.node.ledger.rebalance_cost_msat)
    jobs = len(rows)
    if real > booked + live + 1000 * jobs:   # sling reports whole sats: at most 1 sat per job unbooked
        problems.append(f"rebalance spend not booked: sling spent {real} msat, booked {booked} + live {live}")
    return problems


def _applied(sim: Any) -> list[dict]:
    return [dict(r) for r in sim.store.db.execute(
        "SELECT scid, at, new_fee_ppm, branch, inputs_json FROM fee_decisions "
        "WHERE outcome='applied' AND broadcast=1 ORDER BY at, id")]


def check_fee_bounds(sim: Any) -> list[str]:
    cfg = sim.runtime.config
    since = sim.store.config_changed_at()
    problems = []
    for d in _applied(sim):
        if d["branch"] in PINS:
            continue
        inputs = json.loads(d["inputs_json"])
        lo, hi = inputs.get("eff_min_ppm"), inputs.get("eff_max_ppm")
        if lo is None or not lo <= d["new_fee_ppm"] <= hi:
            problems.append(f"fee {d['scid']} at {d['at']}: {d['new_fee_ppm']} ppm outside [{lo}, {hi}] ({d['branch']})")
        if d["at"] > since and not cfg.min_fee_ppm <= d["new_fee_ppm"] <= max(cfg.min_fee_ppm, cfg.max_fee_ppm):
            problems.append(f"fee {d['scid']} at {d['at']}: {d['new_fee_ppm']} ppm outside config "
                            f"[{cfg.min_fee_ppm}, {cfg.max_fee_ppm}]")
    for p in sim.store.load_policies():
        scids = {c.scid for c in sim.node.channels.values() if c.peer_id == p["peer_id"]}
        if p["channel_id"]:
            scids &= {p["channel_id"]}
        for d in _applied(sim):
            if d["scid"] in scids and d["at"] > p["updated_at"] and d["branch"] not in PINS and (
                    (p["fee_min_ppm"] is not None and d["new_fee_ppm"] < p["fee_min_ppm"] and (
                        p["fee_max_ppm"] is None or p["fee_min_ppm"] <= p["fee_max_ppm"]))
                    or (p["fee_max_ppm"] is not None and d["new_fee_ppm"] > max(p["fee_max_ppm"],
                                                                                p["fee_min_ppm"] or 0,
                                                                                cfg.min_fee_ppm))):
                problems.append(f"fee {d['scid']} at {d['at']}: {d['new_fee_ppm']} ppm outside policy bounds "
                                f"[{p['fee_min_ppm']}, {p['fee_max_ppm']}]")
    return problems


def _setchannels(sim: Any, rpc: Any) -> list[tuple[int, str]]:
    """(time, scid) of every setchannel that reached the node (answered or not): the ground truth, each under
    the channel's short channel id now (a splice changes it). A retried call in the same cycle is one update
    (the repeats set the same fee: no-ops on the node)."""
    return sorted({(t, sim.store.canonical(params["id"])) for t, method, params in rpc.delivered
                   if method == "setchannel"})


def check_update_rate(sim: Any, rpc: Any) -> list[str]:
    limit = sim.runtime.config.max_fee_updates_per_day
    branches = {(r[0], r[1]): r[2] for r in sim.store.db.execute(
        "SELECT scid, at, branch FROM fee_decisions WHERE broadcast=1 AND outcome IN ('applied', 'failed')")}
    problems = []
    by_scid: dict[str, list[int]] = {}
    for t, scid in _setchannels(sim, rpc):
        by_scid.setdefault(scid, []).append(t)
    for scid, times in by_scid.items():
        counted: list[int] = []
        previous = None
        for t in times:
            branch = branches.get((scid, t))
            if branch is None:
                problems.append(f"updates {scid} at {t}: a setchannel the plugin never recorded")
                continue
            leaving = previous == "congestion" and branch != "congestion"
            recent = [c for c in counted if c > t - DAY]
            if branch not in EXEMPT and not leaving and len(recent) >= limit:
                problems.append(f"updates {scid} at {t}: {len(recent)} counted in 24 h (limit {limit}), "
                                f"then a gated {branch} update")
            if branch != "congestion" and not leaving:
                counted.append(t)
            previous = branch
    return problems


def check_passive(sim: Any, rpc: Any) -> list[str]:
    """passive: fees never touched; rebalance disabled: never a destination nor a source."""
    problems = []
    rebalances = [(r[0], json.loads(r[1]), r[2]) for r in sim.store.db.execute(
        "SELECT to_channel, from_channels, created_at FROM rebalances")]
    for p in sim.store.load_policies():
        for ch in sim.node.channels.values():
            if ch.peer_id != p["peer_id"] or (p["channel_id"] and ch.scid != p["channel_id"]):
                continue
            touched = [t for t, scid in _setchannels(sim, rpc) if scid == ch.scid and t > p["updated_at"]]
            if p["strategy"] == "passive" and touched:
                problems.append(f"passive {ch.scid}: fee changed at {touched}")
            used = [at for dest, sources, at in rebalances
                    if at > p["updated_at"] and (dest == ch.scid or ch.scid in sources)]
            if p["rebalance_mode"] == "disabled" and used:
                problems.append(f"rebalance disabled {ch.scid}: used by rebalances at {used}")
    return problems


def check_liveness(sim: Any, rpc_waits: list[tuple[str, int]], cleared_at: int) -> list[str]:
    """`rpc_waits`: (method, virtual seconds) of every answer that did not come at once (Simulation.rpc),
    None seconds for one that never came; `cleared_at`: when the last fault was cleared."""
    limit = 2 * sim.runtime.config.rpc_timeout_seconds
    problems = [f"{method}: answered after {s} s (limit {limit} s)" if s is not None else f"{method}: no answer"
                for method, s in rpc_waits if s is None or s > limit]
    coordinator = sim.rpc("revenue-status")["coordinator"]
    for key, cycle in (("last_fee_cycle_at", "fee"), ("last_rebalance_done_at", "rebalance")):
        if coordinator[key] < cleared_at:
            problems.append(f"{cycle} cycle did not resume: last completed at {coordinator[key]}, faults cleared "
                            f"at {cleared_at}")
    return problems
