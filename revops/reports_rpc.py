"""The report RPCs: revenue-report, -dashboard, -history, -capacity-report, -profitability.

Each validates its parameters first (a PolicyError names the field; rpc.dispatch turns it into an
InputError), reads lightningd through the io pool (`Runtime.run_io`), then builds the report on the
loop thread from the store (revops/finance.py) with the pure functions of revops/reports.py.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyln.client import RpcException

from revops import experiment_rpc, finance, reports
from revops import policy as policy_rules
from revops.params import shown, to_int

if TYPE_CHECKING:
    from revops.runtime import Runtime

Respond = Callable[[Any, Exception | None], None]
REPORT_TYPES = ("summary", "peer", "hive", "policies", "uplift")
SUMMARY_DAYS = 30
MAX_WINDOW_DAYS = 3650


def _window_days(params: dict, default: int) -> int:
    value = params.get("window_days", default)
    try:
        days = to_int(value)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise policy_rules.PolicyError("window_days", f"window_days must be an integer from 1 to "
                                                      f"{MAX_WINDOW_DAYS} (got {shown(value)})")
    return days


def _with_lightningd(rt: "Runtime", calls: list[tuple[str, dict]], respond: Respond,
                     build: Callable[[list[Any]], dict], optional: tuple[str, ...] = ()) -> None:
    """Read lightningd in the io pool, then answer `build(results)` (None for a failed optional call)."""
    def then(answers: list[tuple[Any, dict | None]]) -> None:
        results = []
        for (method, _), (result, error) in zip(calls, answers):
            if error is not None and method not in optional:
                respond(None, RpcException(f"{method} failed: {error['message']}", -32000))
                return
            results.append(result if error is None else None)
        try:
            respond(build(results), None)
        except policy_rules.PolicyError as e:
            from revops.rpc import InputError  # the RPC layer imports this module; import late to avoid a cycle
            respond(None, InputError(e.field, str(e)))
        except Exception as e:  # noqa: BLE001 - a report fault is an RPC error, never a dead loop
            respond(None, RpcException(f"report failed: {type(e).__name__}: {e}", -32000))
    rt.run_io(calls, then)


BOOKKEEPER = ("bkpr-listincome", "bkpr-listaccountevents")


def _pnl(rt: "Runtime", since: int, extra: list[tuple[str, dict]], respond: Respond,
         build: Callable[[finance.Window, reports.NetWorth, list[dict] | None, list[Any]], dict]) -> None:
    """Read listfunds and bookkeeper (optional), then `build(window, net worth, income, extra results)`."""
    calls = [("listfunds", {}), ("bkpr-listincome", {}), ("bkpr-listaccountevents", {})] + extra

    def costed(results: list[Any]) -> dict:
        funds, income, events = results[:3]
        worth = reports.net_worth(funds)
        win = finance.window(rt.store, since, rt.now + 1)
        income_events = None if income is None or events is None else income.get("income_events", [])
        if income_events is not None:
            scid_of = {c["channel_id"]: c["short_channel_id"] for c in worth.channels if c.get("channel_id")}
            win = reports.with_bookkeeper_costs(win, income_events, events.get("events", []), scid_of)
        return build(win, worth, income_events, results[3:])
    _with_lightningd(rt, calls, respond, costed, optional=BOOKKEEPER)


def _since(rt: "Runtime", days: int) -> int:
    return rt.now - days * finance.DAY


def revenue_report(rt: "Runtime", params: dict, respond: Respond) -> None:
    kind = params.get("report_type", "summary")
    if kind not in REPORT_TYPES:
        raise policy_rules.PolicyError("report_type", f"report_type must be one of: {', '.join(REPORT_TYPES)} "
                                                      f"(got {shown(kind)})")
    if kind == "peer" and "peer_id" not in params:
        raise policy_rules.PolicyError("peer_id", "required for report_type=peer")
    peer = policy_rules.validate_peer_id(params["peer_id"]) if "peer_id" in params else None
    if kind == "uplift":
        respond(experiment_rpc.uplift_report(rt), None)
        return
    stored = rt.store.load_policies()
    if kind == "policies":
        respond(reports.policies_report(stored), None)
        return

    def build(win: finance.Window, worth: reports.NetWorth, _income: Any, _extra: Any) -> dict:
        if kind == "summary":
            return reports.summary(win, worth, SUMMARY_DAYS)
        pnl = reports.channel_pnl(win, worth)
        if kind == "hive":
            return reports.hive_report(stored, pnl)
        from revops.rpc import load_policies  # the RPC layer imports this module; import late to avoid a cycle
        rows = {(p.peer_id, p.channel_id): p for p in load_policies(rt.store)}
        effective = policy_rules.effective_policy(rows.get((peer, None)), None, rt.now, peer_id=peer)
        return reports.peer_report(peer, pnl, policy_rules.policy_to_dict(effective))
    _pnl(rt, _since(rt, SUMMARY_DAYS), [], respond, build)


def revenue_dashboard(rt: "Runtime", params: dict, respond: Respond) -> None:
    days = _window_days(params, SUMMARY_DAYS)
    since = _since(rt, days)
    _pnl(rt, since, [], respond, lambda win, worth, _i, _e: reports.dashboard(
        win, worth, days, finance.snapshots(rt.store, since)))


def revenue_history(rt: "Runtime", params: dict, respond: Respond) -> None:
    _pnl(rt, 0, [], respond, lambda win, _worth, income, _e: reports.history(win, income))


def revenue_capacity_report(rt: "Runtime", params: dict, respond: Respond) -> None:
    def build(win: finance.Window, worth: reports.NetWorth, _income: Any, extra: list[Any]) -> dict:
        splicers = {p["id"] for p in extra[0].get("peers", []) if reports.splice_capable(p.get("features", ""))}
        return reports.capacity_report(win, worth, splicers, SUMMARY_DAYS)
    _pnl(rt, _since(rt, SUMMARY_DAYS), [("listpeers", {})], respond, build)


def revenue_profitability(rt: "Runtime", params: dict, respond: Respond) -> None:
    scid = rt.store.canonical(policy_rules.validate_scid(params["channel_id"])) if "channel_id" in params else None
    days = _window_days(params, SUMMARY_DAYS)

    def build(win: finance.Window, worth: reports.NetWorth, _income: Any, _extra: Any) -> dict:
        if scid is not None and scid not in {c["short_channel_id"] for c in worth.channels}:
            raise policy_rules.PolicyError("channel_id", f"no open channel {scid}")
        return {"window_days": days, **reports.profitability(win, worth, scid)}
    _pnl(rt, _since(rt, days), [], respond, build)


# (name, params, doc, handler): rpc.py wraps these in MethodSpec
METHODS: tuple[tuple[str, tuple[str, ...], str, Callable[["Runtime", dict, Respond], None]], ...] = (
    ("revenue-report", ("report_type", "peer_id"),
     "P&L reports: summary (net worth, revenue, costs, margin, return on capacity, earners, bleeders) | "
     "peer <peer_id> | hive | policies | uplift (the live experiment's effect, revenue-experiment).", revenue_report),
    ("revenue-dashboard", ("window_days",),
     "Financial health over a window (default 30 days): TLV, net profit, margin, ROC, bleeders, daily trend.",
     revenue_dashboard),
    ("revenue-history", (), "Lifetime P&L: routing revenue, rebalance spend and on-chain channel costs "
                            "(from bookkeeper).", revenue_history),
    ("revenue-capacity-report", (), "Winners and losers of the last 30 days, with splice or close advice.",
     revenue_capacity_report),
    ("revenue-profitability", ("channel_id", "window_days"),
     "Per-channel profitability class (profitable / break_even / underwater / zombie).", revenue_profitability),
)
