"""`revops backtest`: a node's `revenue-backtest` answer as terminal tables (or its JSON as is)."""
from __future__ import annotations

import json
import sys
from typing import Any

from pyln.client import LightningRpc, RpcError
from rich.console import Console
from rich.table import Table

LABELS = {"current": "your current fees (static)", "ours": "cl-revenue-ops", "best_static": "best static fee per channel"}


def _ci(ci: dict | None, pct: bool = False) -> str:
    if not ci:
        return "-"
    if pct:
        return f"{ci['mean']:.2f}× [{ci['lo']:.2f}, {ci['hi']:.2f}]"
    return f"{ci['mean']:,.0f} [{ci['lo']:,.0f}, {ci['hi']:,.0f}]"


def render(answer: dict, console: Console) -> None:
    if "history" not in answer:           # expired or failed before reading the history
        console.print(f"[red]{answer['status']}:[/] {answer['reason']}", highlight=False)
        return
    h = answer["history"]
    text = (f"History: {h['days']:g} days, {h['forwards']:,} forwards ({h['settled']:,} settled, {h['failed']:,} "
            f"failed, {h['local_failed']:,} local failures, {h['fee_insufficient']:,} fee-insufficient), "
            f"{h['channels']} channels")
    if "channels_with_enough_data" in h:
        text += (f", {h['channels_with_enough_data']} with enough data, tolerance identified on "
                 f"{h['channels_tolerance_identified']}")
    console.print(text + f"; {h['fee_changes']:,} fee changes, {h['rebalances']:,} rebalances.", highlight=False)
    for w in h["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if answer["status"] != "ok":
        console.print(f"[red]{answer['status']}:[/] {answer['reason']}", highlight=False)
        return
    table = Table(title=f"Replay: {answer['replay_days']:g} days × {answer['seeds_run']} demand seeds "
                        f"(mean [95 % interval]), sat")
    for col in ("policy", "net profit", "fees earned", "rebalance cost", "× current"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for p, label in LABELS.items():
        r = answer["policies"][p]
        table.add_row(label, _ci(r["net_profit_sat"]), _ci(r["fees_earned_sat"]), _ci(r["rebalance_cost_sat"]),
                      "1" if p == "current" else _ci(answer.get(f"{p}_over_current"), pct=True))
    console.print(table)
    if answer["seeds_run"] < answer["seeds_asked"]:
        console.print(f"[yellow]warning:[/] only {answer['seeds_run']} of {answer['seeds_asked']} seeds ran "
                      "within the time budget", highlight=False)
    m = answer["market"]
    mt = Table(title=f"Estimated market (tolerance spread σ = {m['tolerance_sigma']:g} "
                     f"[{m['tolerance_sigma_interval'][0]:g}, {m['tolerance_sigma_interval'][1]:g}])")
    for col in ("channel", "forwards", "payments/day", "median tolerance ppm", "identified", "prior ppm",
                "best static ppm"):
        mt.add_column(col, justify="left" if col == "channel" else "right")
    for c in m["channels"]:
        lo, hi = c["tolerance_interval_ppm"]
        mt.add_row(c["scid"], f"{c['forwards']:,}", f"{c['rate_per_day']:,.1f}",
                   f"{c['tolerance_median_ppm']:,} [{lo:,}, {hi:,}]", "yes" if c["identified"] else "prior",
                   "-" if c["prior_ppm"] is None else f"{c['prior_ppm']:,}",
                   str(answer["best_static_ppm"].get(c["scid"], "-")))
    console.print(mt)


def show(rpc_file: str, params: dict[str, Any], *, as_json: bool, console: Console) -> int:
    """Ask the node behind `rpc_file` for its backtest and print it; one line and exit status 1 on failure."""
    try:
        answer = LightningRpc(rpc_file).call("revenue-backtest", {k: v for k, v in params.items() if v is not None})
    except (OSError, RpcError) as e:
        message = e.error.get("message", e.error) if isinstance(e, RpcError) else (e.strerror or e)
        print(f"revops backtest: {rpc_file}: {message}", file=sys.stderr)
        return 1
    if as_json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        render(answer, console)
    return 0 if answer["status"] == "ok" else 1
