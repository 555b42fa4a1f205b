"""P&L reports, pure: (figures read from the store and lightningd) -> report dicts.

Money is integer msat throughout; each report also shows sats (msat // 1000) where the reference or
cl-hive read sats. Ratios are floats. Fees are credited to the outgoing channel and a rebalance's cost
to the channel it refilled, so a channel's net = fees it earned - what refilling it cost.
"""
from __future__ import annotations

import attrs

from revops.finance import ChannelFlow, Totals, Window

TOP = 5
CLASSES = ("profitable", "break_even", "underwater", "zombie")


@attrs.frozen
class NetWorth:
    """Total liquidating value: confirmed on-chain outputs + our side of every channel not yet closed."""
    onchain_msat: int
    local_msat: int
    remote_msat: int
    capacity_msat: int
    channels: tuple[dict, ...]          # listfunds channel entries with a short_channel_id

    @property
    def tlv_msat(self) -> int:
        return self.onchain_msat + self.local_msat


def net_worth(listfunds: dict) -> NetWorth:
    onchain = sum(int(o["amount_msat"]) for o in listfunds.get("outputs", []) if o.get("status") == "confirmed")
    chans = [c for c in listfunds.get("channels", []) if c.get("state") != "ONCHAIN"]
    local = sum(int(c["our_amount_msat"]) for c in chans)
    capacity = sum(int(c["amount_msat"]) for c in chans)
    return NetWorth(onchain, local, capacity - local, capacity,
                    tuple(c for c in chans if c.get("short_channel_id")))


def snapshot_data(w: NetWorth, totals: Totals) -> dict:
    return {"tlv_msat": w.tlv_msat, "onchain_msat": w.onchain_msat, "local_msat": w.local_msat,
            "remote_msat": w.remote_msat, "capacity_msat": w.capacity_msat, "channels": len(w.channels),
            "fees_earned_msat": totals.fees_earned_msat, "rebalance_spent_msat": totals.rebalance_spent_msat,
            "forwards_settled": totals.forwards_by_status.get("settled", 0)}


def with_bookkeeper_costs(win: Window, income: list[dict], events: list[dict], scid_of: dict[str, str]) -> Window:
    """The window with rebalance cost from bookkeeper (msat exact; sling reports whole sats): its
    rebalance_fee income events, each credited to the channel the same payment refilled."""
    dest = {e["payment_id"]: e["account"] for e in events
            if e.get("is_rebalance") and int(e.get("credit_msat", 0)) > 0 and e.get("payment_id")}
    total, by = 0, {}
    for e in income:
        if e.get("tag") != "rebalance_fee" or not win.since <= int(e["timestamp"]) < win.until:
            continue
        fee = int(e.get("debit_msat", 0)) - int(e.get("credit_msat", 0))
        total += fee
        scid = scid_of.get(dest.get(e.get("payment_id"), ""))
        if scid is not None:
            by[scid] = by.get(scid, 0) + fee
    return attrs.evolve(win, rebalance_cost_msat=total, rebalance_cost_by_channel=by,
                        rebalance_cost_source="bookkeeper")


def classify(net_msat: int, flow: ChannelFlow, cost_msat: int) -> str:
    """zombie: nothing routed and nothing spent; otherwise by the sign of net."""
    if flow.forwards_out == 0 and flow.forwards_in == 0 and cost_msat == 0:
        return "zombie"
    return "profitable" if net_msat > 0 else "underwater" if net_msat < 0 else "break_even"


def channel_pnl(win: Window, worth: NetWorth) -> list[dict]:
    """One row per channel not yet closed, with its flow, cost, net and class in the window."""
    rows = []
    for c in worth.channels:
        scid = c["short_channel_id"]
        flow = win.channels.get(scid, ChannelFlow())
        cost = win.rebalance_cost_by_channel.get(scid, 0)
        net = flow.fees_msat - cost
        rows.append({
            "channel_id": scid, "peer_id": c["peer_id"], "capacity_msat": int(c["amount_msat"]),
            "local_msat": int(c["our_amount_msat"]), "revenue_msat": flow.fees_msat, "rebalance_cost_msat": cost,
            "net_msat": net, "net_profit_sats": net // 1000, "forwards_out": flow.forwards_out,
            "forwards_in": flow.forwards_in, "volume_out_msat": flow.out_msat, "volume_in_msat": flow.in_msat,
            "roi_pct": round(100 * net / int(c["amount_msat"]), 4) if int(c["amount_msat"]) else 0.0,
            "class": classify(net, flow, cost)})
    return sorted(rows, key=lambda r: (-r["net_msat"], r["channel_id"]))


def _margin_pct(gross: int, net: int) -> float | None:
    """net / gross; None when nothing was earned (a margin of nothing is undefined, not 0 or -100)."""
    return round(100 * net / gross, 2) if gross else None


def summary(win: Window, worth: NetWorth, window_days: int) -> dict:
    pnl = channel_pnl(win, worth)
    net = win.fees_msat - win.rebalance_cost_msat
    counts = {k: sum(r["class"] == k for r in pnl) for k in CLASSES}
    roc = net / worth.capacity_msat if worth.capacity_msat else 0.0
    return {
        "type": "summary", "window_days": window_days, "since": win.since, "until": win.until,
        "net_worth": {"tlv_msat": worth.tlv_msat, "tlv_sats": worth.tlv_msat // 1000,
                      "onchain_msat": worth.onchain_msat, "local_msat": worth.local_msat,
                      "remote_msat": worth.remote_msat, "capacity_msat": worth.capacity_msat},
        "gross_revenue_msat": win.fees_msat, "rebalance_cost_msat": win.rebalance_cost_msat,
        "rebalance_cost_source": win.rebalance_cost_source, "net_profit_msat": net, "operating_margin_pct": _margin_pct(win.fees_msat, net),
        "return_on_capacity_pct": round(100 * roc, 6),
        "annualized_return_on_capacity_pct": round(100 * roc * 365 / window_days, 4),
        "forwards": win.forwards_by_status, "rebalances": win.rebalances,
        "channels": {"total": len(pnl), **counts},
        "top_earners": [r for r in pnl if r["net_msat"] > 0][:TOP],
        "top_bleeders": bleeders(pnl)[:TOP],
    }


def bleeders(pnl: list[dict]) -> list[dict]:
    """Channels that cost more than they earned in the window, worst first."""
    return sorted((r for r in pnl if r["net_msat"] < 0), key=lambda r: (r["net_msat"], r["channel_id"]))


def dashboard(win: Window, worth: NetWorth, window_days: int, trend: list[dict]) -> dict:
    """The reference's dashboard plus the fields cl-hive reads (period.gross_revenue_sats, ...)."""
    s = summary(win, worth, window_days)
    bleeding = bleeders(channel_pnl(win, worth))
    return {
        "financial_health": {"tlv_sats": worth.tlv_msat // 1000, "net_profit_sats": s["net_profit_msat"] // 1000,
                             "net_profit_msat": s["net_profit_msat"],
                             "return_on_capacity_pct": s["return_on_capacity_pct"],
                             "operating_margin_pct": s["operating_margin_pct"],
                             "annualized_roc_pct": s["annualized_return_on_capacity_pct"]},
        "period": {"window_days": window_days, "gross_revenue_sats": win.fees_msat // 1000,
                   "gross_revenue_msat": win.fees_msat, "total_forwards": win.forwards,
                   "rebalance_cost_sats": win.rebalance_cost_msat // 1000,
                   "rebalance_cost_msat": win.rebalance_cost_msat, "opex_sats": win.rebalance_cost_msat // 1000,
                   "rebalance_cost_source": win.rebalance_cost_source},
        "warnings": [f"Channel {r['channel_id']} is bleeding: spent {r['rebalance_cost_msat'] // 1000} sats "
                     f"rebalancing, earned {r['revenue_msat'] // 1000} sats" for r in bleeding],
        "bleeder_count": len(bleeding),
        "trend": [{"at": t["at"], "tlv_sats": t["tlv_msat"] // 1000,
                   "fees_earned_sats": t["fees_earned_msat"] // 1000,
                   "rebalance_spent_sats": t["rebalance_spent_msat"] // 1000} for t in trend],
    }


def chain_costs(income: list[dict]) -> dict[str, int]:
    """On-chain fees from bookkeeper's income events: charged to channel accounts (opening and closing
    channels) or to the wallet (everything else)."""
    out = {"channel_msat": 0, "wallet_msat": 0}
    for e in income:
        if e.get("tag") == "onchain_fee":
            key = "wallet_msat" if e.get("account") in ("wallet", "external") else "channel_msat"
            out[key] += int(e.get("debit_msat", 0)) - int(e.get("credit_msat", 0))
    return out


def history(lifetime: Window, income: list[dict] | None) -> dict:
    """Lifetime P&L: routing revenue - rebalance spend - on-chain channel open/close fees (bookkeeper)."""
    chain = chain_costs(income or [])
    costs = lifetime.rebalance_cost_msat + chain["channel_msat"]
    net = lifetime.fees_msat - costs
    return {"lifetime_revenue_msat": lifetime.fees_msat, "lifetime_rebalance_costs_msat": lifetime.rebalance_cost_msat,
            "lifetime_channel_onchain_costs_msat": chain["channel_msat"],
            "lifetime_wallet_onchain_fees_msat": chain["wallet_msat"], "lifetime_total_costs_msat": costs,
            "lifetime_net_profit_msat": net, "lifetime_revenue_sats": lifetime.fees_msat // 1000,
            "lifetime_net_profit_sats": net // 1000,
            "lifetime_roi_percent": round(100 * net / costs, 2) if costs else None,
            "lifetime_forward_count": lifetime.forwards, "lifetime_rebalances": lifetime.rebalances,
            "rebalance_cost_source": lifetime.rebalance_cost_source,
            "bookkeeper": "ok" if income is not None else "unavailable: on-chain channel costs not counted"}


def profitability(win: Window, worth: NetWorth, scid: str | None) -> dict:
    pnl = channel_pnl(win, worth)
    if scid is not None:
        return {"channel_id": scid, "profitability": next(r for r in pnl if r["channel_id"] == scid)}
    by_class = {k: [r for r in pnl if r["class"] == k] for k in CLASSES}
    total_rev = sum(r["revenue_msat"] for r in pnl)
    total_cost = sum(r["rebalance_cost_msat"] for r in pnl)
    return {"summary": {"total_channels": len(pnl), **{f"{k}_count": len(v) for k, v in by_class.items()},
                        "total_revenue_msat": total_rev, "total_costs_msat": total_cost,
                        "total_profit_msat": total_rev - total_cost},
            "channels_by_class": by_class}


def capacity_report(win: Window, worth: NetWorth, splice_peers: set[str], window_days: int) -> dict:
    """Winners (earn most per capacity) and losers (bleed or idle); splice into winners, close losers."""
    pnl = channel_pnl(win, worth)
    winners = [r for r in pnl if r["class"] == "profitable"][:TOP]
    losers = sorted((r for r in pnl if r["class"] in ("underwater", "zombie")),
                    key=lambda r: (r["net_msat"], -r["capacity_msat"]))[:TOP]
    recs = []
    for r in winners:
        how = "splice-in" if r["peer_id"] in splice_peers else "open a second channel (peer does not splice)"
        recs.append({"channel_id": r["channel_id"], "action": how,
                     "reason": f"earned {r['net_msat']} msat net in {window_days} days "
                               f"({r['roi_pct']}% of capacity)"})
    for r in losers:
        why = ("routed nothing and cost nothing" if r["class"] == "zombie"
               else f"lost {-r['net_msat']} msat net in {window_days} days")
        recs.append({"channel_id": r["channel_id"], "action": "close", "reason": why})
    return {"window_days": window_days, "winners": winners, "losers": losers, "recommendations": recs}


def peer_report(peer_id: str, pnl: list[dict], policy: dict) -> dict:
    mine = [r for r in pnl if r["peer_id"] == peer_id]
    return {"type": "peer", "peer_id": peer_id, "policy": policy, "channels": mine,
            "revenue_msat": sum(r["revenue_msat"] for r in mine),
            "rebalance_cost_msat": sum(r["rebalance_cost_msat"] for r in mine),
            "net_msat": sum(r["net_msat"] for r in mine)}


def policies_report(policies: list[dict]) -> dict:
    def count(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in policies:
            out[p[key]] = out.get(p[key], 0) + 1
        return out
    tags: dict[str, int] = {}
    for p in policies:
        for t in p["tags"]:
            tags[t] = tags.get(t, 0) + 1
    return {"type": "policies", "total": len(policies), "by_strategy": count("strategy"),
            "by_rebalance_mode": count("rebalance_mode"), "by_tag": tags}


def hive_report(policies: list[dict], pnl: list[dict]) -> dict:
    peers = [p for p in policies if p["strategy"] == "hive"]
    ids = {p["peer_id"] for p in peers}
    return {"type": "hive", "peers": peers, "count": len(peers),
            "net_msat": sum(r["net_msat"] for r in pnl if r["peer_id"] in ids)}


def splice_capable(features_hex: str) -> bool:
    """BOLT 9 option_splice is bits 62/63; CLN's experimental splicing advertised 162/163 before that."""
    bits = int(features_hex or "0", 16)
    return any(bits >> b & 1 for b in (62, 63, 162, 163))
