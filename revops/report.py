"""`revops report`: a running node's P&L, its channels' fees and earnings, and the recent fee decisions, as
terminal tables (rich). It only reads the plugin's own RPCs through lightningd's socket, so it works on a
real node and on `revops demo` / `revops node` alike.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from pyln.client import LightningRpc, RpcError
from rich.console import Console
from rich.table import Table

Call = Callable[[str, dict], Any]


def gather(call: Call, days: int, decisions: int) -> dict:
    """Everything the report shows, from four read-only RPCs."""
    return {"profit": call("revenue-profitability", {"window_days": days}),
            "status": call("revenue-status", {}),
            "decisions": call("revenue-fee-debug", {"limit": decisions})["decisions"]}


def _sat(msat: int | None) -> str:
    return "-" if msat is None else f"{msat / 1000:,.0f}"


def pnl_table(profit: dict) -> Table:
    s = profit["summary"]
    table = Table(title=f"P&L, last {profit['window_days']} days", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in (("routing revenue, sat", _sat(s["total_revenue_msat"])),
                         ("rebalance cost, sat", _sat(s["total_costs_msat"])),
                         ("net profit, sat", _sat(s["total_profit_msat"])),
                         ("channels", str(s["total_channels"])),
                         ("profitable / break-even / underwater / zombie",
                          f"{s['profitable_count']} / {s['break_even_count']} / {s['underwater_count']} / "
                          f"{s['zombie_count']}")):
        table.add_row(label, value)
    return table


def channels_table(profit: dict, status: dict) -> Table:
    live = {c["scid"]: c for c in status.get("channels", [])}
    rows = [row for rows in profit["channels_by_class"].values() for row in rows]
    table = Table(title="Channels (by net earnings)")
    for col, right in (("channel", False), ("peer", False), ("fee ppm", True), ("local %", True), ("flow", False),
                       ("earned sat", True), ("rebalance sat", True), ("net sat", True), ("fwd out", True),
                       ("class", False)):
        table.add_column(col, justify="right" if right else "left")
    for row in sorted(rows, key=lambda r: -r["net_msat"]):
        c = live.get(row["channel_id"], {})
        local = c.get("local_ratio")
        table.add_row(row["channel_id"], row["peer_id"][:12], str(c.get("fee_ppm", "-")),
                      "-" if local is None else f"{local * 100:.0f}%", c.get("flow_class", "-"),
                      _sat(row["revenue_msat"]), _sat(row["rebalance_cost_msat"]), _sat(row["net_msat"]),
                      str(row["forwards_out"]), row["class"])
    return table


def decisions_table(decisions: list[dict]) -> Table:
    table = Table(title="Recent fee decisions")
    for col in ("at (UTC)", "channel", "old", "new", "outcome", "reason"):
        table.add_column(col, justify="right" if col in ("old", "new") else "left",
                         overflow="fold", ratio=4 if col == "reason" else None)
    for d in decisions:
        at = dt.datetime.fromtimestamp(d["at"], dt.timezone.utc).strftime("%m-%d %H:%M")
        table.add_row(at, d["scid"], str(d["old_fee_ppm"]), str(d["new_fee_ppm"]), d["outcome"], d["reason"])
    return table


def render(data: dict, console: Console) -> None:
    status = data["status"]
    console.print(f"cl-revenue-ops {status['version']} on {status['node_id'][:16]}..., "
                  f"blockheight {status['coordinator']['blockheight'] if status.get('coordinator') else '-'}, "
                  f"{'DRY RUN, ' if status['config']['dry_run'] else ''}fees {status['config']['fee_range_ppm'][0]}-"
                  f"{status['config']['fee_range_ppm'][1]} ppm", highlight=False)
    console.print(pnl_table(data["profit"]))
    console.print(channels_table(data["profit"], status))
    console.print(decisions_table(data["decisions"]))


def show(rpc_file: str, *, days: int, decisions: int, console: Console) -> int:
    """Print the report of the node behind `rpc_file`; one line and exit status 1 when it cannot be read."""
    rpc = LightningRpc(rpc_file)
    try:
        data = gather(lambda method, params: rpc.call(method, params), days, decisions)
    except (OSError, RpcError) as e:
        message = e.error.get("message", e.error) if isinstance(e, RpcError) else (e.strerror or e)
        print(f"revops report: {rpc_file}: {message}", file=sys.stderr)
        return 1
    render(data, console)
    return 0
