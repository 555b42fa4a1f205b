"""Money read from the store: forwards (raw and daily roll-ups), rebalance spend, financial snapshots.

Why roll-ups: raw forwards are pruned after `forward_retention_days`, and the reference's 30-day P&L
went wrong once it pruned them (after 8 days). Here pruning folds whole UTC days into
`forward_rollups` first, in the same transaction, and every window reads raw forwards from the prune
point on and roll-ups before it, so pruning never changes a total. Before the prune point a window has
day granularity (a rolled-up day counts if it starts inside the window).
"""
from __future__ import annotations

import json
from typing import Any

import attrs

from revops.store import Store

DAY = 86400
PRUNED_BEFORE = "forwards_pruned_before"   # meta key: raw forwards received before this were rolled up


@attrs.frozen
class ChannelFlow:
    """One channel's settled flow in a window: fees are credited to the outgoing channel."""
    fees_msat: int = 0
    out_msat: int = 0
    in_msat: int = 0
    forwards_out: int = 0
    forwards_in: int = 0


@attrs.frozen
class Window:
    since: int
    until: int
    fees_msat: int
    forwards: int                                 # settled
    forwards_by_status: dict[str, int]
    channels: dict[str, ChannelFlow]
    rebalance_cost_msat: int
    rebalance_cost_by_channel: dict[str, int]     # by destination (the channel refilled)
    rebalances: int
    rebalance_cost_source: str = "plugin: sling counters (whole sats)"


@attrs.frozen
class Totals:
    forwards_by_status: dict[str, int]
    fees_earned_msat: int
    rebalance_spent_msat: int


def pruned_before(store: Store) -> int:
    return int(store.get_meta(PRUNED_BEFORE, "0") or 0)


def _flow_rows(store: Store, since: float, until: float) -> list[tuple]:
    """(in_channel, out_channel, status, forwards, in_msat, out_msat, fee_msat) from both sources."""
    cut = pruned_before(store)
    return store.db.execute(
        "SELECT in_channel, COALESCE(out_channel, ''), status, COUNT(*), SUM(in_msat), "
        "SUM(COALESCE(out_msat, 0)), SUM(COALESCE(fee_msat, 0)) FROM forwards "
        "WHERE received_time >= ? AND received_time < ? GROUP BY 1, 2, 3 "
        "UNION ALL "
        "SELECT in_channel, out_channel, status, SUM(forwards), SUM(in_msat), SUM(out_msat), SUM(fee_msat) "
        "FROM forward_rollups WHERE day * 86400 >= ? AND day * 86400 < ? GROUP BY 1, 2, 3",
        (max(since, cut), until, since, min(until, cut))).fetchall()


def window(store: Store, since: int, until: int) -> Window:
    by_status: dict[str, int] = {}
    chans: dict[str, dict[str, int]] = {}
    fees = settled = 0
    for in_ch, out_ch, status, n, in_msat, out_msat, fee_msat in _flow_rows(store, since, until):
        by_status[status] = by_status.get(status, 0) + n
        if status != "settled":
            continue
        fees += fee_msat
        settled += n
        o = chans.setdefault(out_ch, dict.fromkeys(attrs.fields_dict(ChannelFlow), 0))
        o["fees_msat"] += fee_msat
        o["out_msat"] += out_msat
        o["forwards_out"] += n
        i = chans.setdefault(in_ch, dict.fromkeys(attrs.fields_dict(ChannelFlow), 0))
        i["in_msat"] += in_msat
        i["forwards_in"] += n
    cost_by: dict[str, int] = {}
    rebalances = 0
    for to_channel, spent, n in store.db.execute(
            "SELECT to_channel, SUM(COALESCE(fee_msat, 0)), COUNT(*) FROM rebalances "
            "WHERE finished_at >= ? AND finished_at < ? GROUP BY to_channel", (since, until)):
        cost_by[to_channel] = spent
        rebalances += n
    return Window(since, until, fees, settled, by_status, {k: ChannelFlow(**v) for k, v in chans.items()},
                  sum(cost_by.values()), cost_by, rebalances)


def lifetime_totals(store: Store) -> Totals:
    """Node totals for the exporter: one pass per table, no per-channel grouping (it runs every refresh)."""
    by_status, fees = {}, 0
    for status, n, fee_msat in store.db.execute(
            "SELECT status, COUNT(*), SUM(COALESCE(fee_msat, 0)) FROM forwards WHERE received_time >= ? "
            "GROUP BY status UNION ALL "
            "SELECT status, SUM(forwards), SUM(fee_msat) FROM forward_rollups GROUP BY status",
            (pruned_before(store),)):
        by_status[status] = by_status.get(status, 0) + n
        fees += fee_msat if status == "settled" else 0
    spent = store.db.execute("SELECT COALESCE(SUM(fee_msat), 0) FROM rebalances").fetchone()[0]
    return Totals(by_status, fees, spent)


def routed_out_channels(store: Store) -> frozenset[str]:
    """Channels that ever forwarded out (raw or rolled up): pruning must not restore virgin amnesty."""
    return frozenset(r[0] for r in store.db.execute(
        "SELECT out_channel FROM forwards WHERE status='settled' UNION "
        "SELECT out_channel FROM forward_rollups WHERE status='settled'"))


def decisions_by_branch(store: Store) -> dict[tuple[str, str], int]:
    return {(r[0], r[1]): r[2] for r in store.db.execute(
        "SELECT scid, branch, COUNT(*) FROM fee_decisions GROUP BY scid, branch")}


def keep_days(cfg: Any) -> int:
    """Raw forwards kept: the retention option, and never less than the flow window reads."""
    return max(cfg.forward_retention_days, cfg.flow_window_days + 1)


def prune_forwards(store: Store, now: int, days: int) -> int:
    """Fold final forwards received before the UTC day `days` ago into roll-ups; returns rows pruned."""
    cut = (now // DAY - days) * DAY
    if cut <= pruned_before(store):
        return 0
    with store.tx():
        store.db.execute(
            "INSERT INTO forward_rollups SELECT CAST(received_time / 86400 AS INTEGER), in_channel, "
            "COALESCE(out_channel, ''), status, COUNT(*), SUM(in_msat), SUM(COALESCE(out_msat, 0)), "
            "SUM(COALESCE(fee_msat, 0)) FROM forwards WHERE received_time < ? GROUP BY 1, 2, 3, 4 "
            "ON CONFLICT(day, in_channel, out_channel, status) DO UPDATE SET "
            "forwards = forwards + excluded.forwards, in_msat = in_msat + excluded.in_msat, "
            "out_msat = out_msat + excluded.out_msat, fee_msat = fee_msat + excluded.fee_msat", (cut,))
        pruned = store.db.execute("DELETE FROM forwards WHERE received_time < ?", (cut,)).rowcount
        store.set_meta(PRUNED_BEFORE, cut)
    return pruned


def save_snapshot(store: Store, at: int, data: dict) -> None:
    store.db.execute("INSERT OR REPLACE INTO financial_snapshots(at, data_json) VALUES (?, ?)",
                     (at, json.dumps(data, sort_keys=True)))


def snapshots(store: Store, since: int) -> list[dict]:
    return [{"at": r[0], **json.loads(r[1])} for r in store.db.execute(
        "SELECT at, data_json FROM financial_snapshots WHERE at >= ? ORDER BY at", (since,))]


def last_snapshot_at(store: Store) -> int | None:
    return store.db.execute("SELECT MAX(at) FROM financial_snapshots").fetchone()[0]
