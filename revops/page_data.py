"""What each status page shows, pure: the plugin's own RPC answers (and listnodes) -> template data.

Every figure on the page is a field of an RPC answer (revenue-status, -dashboard, -profitability,
-fee-debug, -rebalance-debug), so the page and lightning-cli never disagree. Only joining, sorting and
picking happen here; money stays integer msat (the templates show sats).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

SUMMARY_WINDOWS = (1, 7, 30)
PROFIT_DAYS = 30
DECISION_LIMIT = 1000       # revenue-fee-debug's maximum: the channel page's history


class PageInputError(ValueError):
    """A bad query parameter: names it and what is allowed (answered as HTTP 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"Invalid parameter '{field}': {message}")
        self.field = field


def aliases(listnodes: dict | None) -> dict[str, str]:
    """node id -> alias from listnodes (empty when lightningd has no gossip about the peer)."""
    return {n["nodeid"]: n.get("alias", "") for n in (listnodes or {}).get("nodes", [])}


def _age(now: int, at: int | None) -> int | None:
    return now - at if at else None


def summary(status: dict, dashboards: dict[int, dict | None]) -> dict:
    """Node summary: P&L per window, dependency health, dry-run, cycle ages, the daily trend."""
    coord = status.get("coordinator") or {}
    now = coord.get("now", 0)
    pnl = []
    for days in SUMMARY_WINDOWS:
        d = dashboards.get(days)
        if d is None:
            continue
        period, health = d["period"], d["financial_health"]
        pnl.append({"days": days, "fees_msat": period["gross_revenue_msat"],
                    "cost_msat": period["rebalance_cost_msat"], "net_msat": health["net_profit_msat"],
                    "roc_pct": health["return_on_capacity_pct"], "annualized_roc_pct": health["annualized_roc_pct"],
                    "forwards": period["total_forwards"], "cost_source": period["rebalance_cost_source"]})
    rebal = coord.get("rebalancing") or {}
    longest = dashboards.get(max(SUMMARY_WINDOWS)) or {}
    return {
        "status": status.get("status"), "version": status.get("version"), "node_id": status.get("node_id"),
        "now": now, "dry_run": status.get("config", {}).get("dry_run"), "health": status.get("health", {}),
        "pnl": pnl, "channels": len(status.get("channels", [])),
        "cycles": [{"name": "fee", "count": coord.get("fee_cycles"), "last_at": coord.get("last_fee_cycle_at"),
                    "age_s": _age(now, coord.get("last_fee_cycle_at")), "next_at": coord.get("next_fee_cycle_at")},
                   {"name": "rebalance", "count": rebal.get("cycles"), "last_at": rebal.get("last_cycle_at"),
                    "age_s": _age(now, rebal.get("last_cycle_at")), "next_at": None}] if coord else [],
        "warnings": longest.get("warnings", []),
        "trend": longest.get("trend", []),
    }


def actor_state(c: dict) -> str:
    """One line for a channel actor: what its fee controller is doing, and any crash restores."""
    hill, search = c["hill_climb"], c["search"]
    if search.get("started"):
        text = f"search around {search['centre_ppm']} ppm, level held {search['dwell_hours']:.0f} h"
    else:
        text = f"search not started, from {hill['climb_fee_ppm']} ppm"
    text += f"; last branch {hill['last_branch']}"
    return text + (f"; {c['restarts']} restarts" if c["restarts"] else "")


def _pnl_rows(profitability: dict | None) -> dict[str, dict]:
    rows = (profitability or {}).get("channels_by_class", {})
    return {r["channel_id"]: r for group in rows.values() for r in group}


def channel_row(c: dict, pnl: dict | None, names: dict[str, str]) -> dict:
    """One channel: its actor's live state joined with its 30-day P&L row (None: no P&L answer)."""
    last = c.get("last_decision")
    net = pnl["net_msat"] if pnl else None
    return {
        "scid": c["scid"], "peer_id": c["peer_id"], "alias": names.get(c["peer_id"], ""),
        "capacity_msat": c["capacity_msat"], "local_msat": c["local_msat"], "local_ratio": c["local_ratio"],
        "flow_class": c["flow_class"], "fee_ppm": c["fee_ppm"], "peer_connected": c["peer_connected"],
        "revenue_msat": pnl["revenue_msat"] if pnl else None,
        "cost_msat": pnl["rebalance_cost_msat"] if pnl else None, "net_msat": net,
        "class": pnl["class"] if pnl else None,
        "mark": None if net is None else "earner" if net > 0 else "bleeder" if net < 0 else None,
        "last_decision": last, "policy": f"{c['strategy']} / rebalance {c['rebalance_mode']}",
        "actor": actor_state(c),
    }


SORT_KEYS: dict[str, Callable[[dict], Any]] = {
    "alias": lambda r: (r["alias"].lower(), r["scid"]),
    "scid": lambda r: r["scid"],
    "capacity": lambda r: r["capacity_msat"],
    "balance": lambda r: r["local_ratio"],
    "flow": lambda r: r["flow_class"],
    "fee": lambda r: r["fee_ppm"],
    "earned": lambda r: r["revenue_msat"] or 0,
    "cost": lambda r: r["cost_msat"] or 0,
    "net": lambda r: r["net_msat"] or 0,
    "decision": lambda r: (r["last_decision"] or {}).get("at", 0),
    "policy": lambda r: r["policy"],
}
ORDERS = ("asc", "desc")


def channels(status: dict, profitability: dict | None, names: dict[str, str], sort: str = "net",
             order: str = "desc") -> list[dict]:
    """Every channel actor, sorted by `sort` (a SORT_KEYS name) in `order`."""
    if sort not in SORT_KEYS:
        raise PageInputError("sort", f"must be one of: {', '.join(SORT_KEYS)} (got {sort!r})")
    if order not in ORDERS:
        raise PageInputError("order", f"must be one of: {', '.join(ORDERS)} (got {order!r})")
    pnl = _pnl_rows(profitability)
    rows = [channel_row(c, pnl.get(c["scid"]), names) for c in status.get("channels", [])]
    return sorted(sorted(rows, key=lambda r: r["scid"]), key=SORT_KEYS[sort], reverse=order == "desc")


OBSERVATION = ("rate_msat_h", "hours", "fees_earned_msat", "forwards_out")


def fee_periods(decisions: list[dict]) -> list[dict]:
    """The revenue search's evidence: each stretch of decisions taken under one fee in force, with what
    the channel earned at that fee (the last observation of the stretch), oldest first."""
    periods: list[dict] = []
    for d in sorted(decisions, key=lambda d: (d["at"], d["id"])):
        fee = d["inputs"].get("in_force_ppm", d["old_fee_ppm"])
        if not periods or periods[-1]["fee_ppm"] != fee:
            periods.append({"fee_ppm": fee, "from": d["at"], "decisions": 0, **dict.fromkeys(OBSERVATION)})
        p = periods[-1]
        p["to"], p["decisions"] = d["at"], p["decisions"] + 1
        if all(k in d["inputs"] for k in OBSERVATION):     # the search's measurement of the window
            p.update({k: d["inputs"][k] for k in OBSERVATION})
    return periods


def channel(status: dict, fee_debug: dict | None, profitability: dict | None, rebalance_debug: dict | None,
            names: dict[str, str]) -> dict:
    """One channel: its row, every decision with its reason, fee and balance over time, its rebalances."""
    c = status["channels"][0]
    pnl = (profitability or {}).get("profitability")
    decisions = (fee_debug or {}).get("decisions", [])
    history = ((rebalance_debug or {}).get("ledger") or {}).get("history", [])
    oldest_first = sorted(decisions, key=lambda d: (d["at"], d["id"]))
    return {
        "row": channel_row(c, pnl, names), "status": c, "decisions": decisions,
        "periods": fee_periods(decisions),
        "rebalances": [r for r in history if r["to_channel"] == c["scid"] or c["scid"] in r["from_channels"]],
        "chart": {"at": [d["at"] for d in oldest_first],
                  "fee_ppm": [d["new_fee_ppm"] if d["broadcast"] else d["old_fee_ppm"] for d in oldest_first],
                  "rate_msat_h": [d["inputs"].get("rate_msat_h") for d in oldest_first],
                  "local_ratio": [d["inputs"].get("local_ratio") for d in oldest_first]},
    }


def rebalancing(debug: dict, names: dict[str, str], scid_peers: dict[str, str]) -> dict:
    """Rebalancing: budget use, jobs, candidates, rejections and recent rebalances."""
    ledger = debug["ledger"]
    budget = ledger["daily_budget_msat"]
    used = ledger["spent_24h_msat"] + ledger["reserved_msat"]
    return {
        "debug": debug, "ledger": ledger, "budget_used_ratio": min(used / budget, 1.0) if budget else 1.0,
        "jobs": [{"scid": scid, **job} for scid, job in sorted(debug.get("active_jobs", {}).items())],
        "alias_of": {scid: names.get(peer, "") for scid, peer in scid_peers.items()},
    }
