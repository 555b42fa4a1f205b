"""What a channel has cost, from bookkeeper's account events, and what that means for its return.

Pure functions over `bkpr-listaccountevents` output. Bookkeeper is optional: without it the open cost
is unknown and only our own rebalance ledger counts.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs


@attrs.frozen
class ChannelCosts:
    open_cost_msat: int = 0          # our share of the funding and splice transactions' fees (0 when the peer opened)
    rebalance_fees_msat: int = 0     # fees of circular payments that filled this channel


def bookkeeper_costs(events: Iterable[Mapping], channels: Mapping[str, tuple[str, str]]) -> dict[str, ChannelCosts]:
    """Costs per scid. `channels`: channel_id (bookkeeper's account name) → (scid, funding_txid).

    Open cost: onchain_fee credit − debit in the channel's account for each transaction that funded it, as
    bookkeeper splits a batched open: the open and every splice it paid for. A splice spends the old funding
    output (chain `channel_close`, extra tag `splice`) and books a chain `channel_open` for the new one in the
    same account (CLN tests/test_splicing.py), so the funding transactions are the current one and those of
    every `channel_open` in the account; a close transaction's fee is not an open cost. Rebalance fees:
    bookkeeper books the fee on the account that paid (the source); the cost belongs to the channel that was
    filled, found by the payment id of the matching credit.
    """
    events = list(events)
    funded = {cid: {txid} for cid, (_, txid) in channels.items()}
    for e in events:
        if e.get("tag") == "channel_open" and e.get("type") == "chain" and e.get("account") in funded:
            funded[e["account"]].add(str(e.get("outpoint", "")).partition(":")[0])
    open_cost: dict[str, int] = {}
    for e in events:
        chan = channels.get(e.get("account", ""))
        if chan and e.get("type") == "onchain_fee" and e.get("txid") in funded[e["account"]]:
            open_cost[chan[0]] = open_cost.get(chan[0], 0) + int(e["credit_msat"]) - int(e["debit_msat"])
    paid = {e["payment_id"]: int(e.get("fees_msat", 0)) for e in events
            if e.get("is_rebalance") and e.get("payment_id") and int(e.get("debit_msat", 0)) > 0}
    refill: dict[str, int] = {}
    for e in events:
        chan = channels.get(e.get("account", ""))
        if chan and e.get("is_rebalance") and int(e.get("credit_msat", 0)) > 0 and e.get("payment_id") in paid:
            refill[chan[0]] = refill.get(chan[0], 0) + paid[e["payment_id"]]
    return {scid: ChannelCosts(max(0, open_cost.get(scid, 0)), refill.get(scid, 0))
            for scid, _ in channels.values()}


def marginal_roi(earned_msat: int, rebalance_cost_msat: int) -> float:
    """Operating return, ignoring the sunk open cost (reference §5.6): what rebalancing money brings back."""
    if rebalance_cost_msat <= 0:
        return 1.0 if earned_msat > 0 else 0.0
    return (earned_msat - rebalance_cost_msat) / rebalance_cost_msat


def stall_premium(hold_seconds: Iterable[float]) -> bool:
    """HTLCs that a peer holds long tie up our slots and capital: mean > 10 s or std > 5 s (reference §5.3.3)."""
    holds = list(hold_seconds)
    if len(holds) < 2:
        return False
    mean = sum(holds) / len(holds)
    std = (sum((h - mean) ** 2 for h in holds) / (len(holds) - 1)) ** 0.5
    return mean > 10.0 or std > 5.0
