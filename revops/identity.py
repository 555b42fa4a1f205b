"""A channel's identity is its `channel_id`; its short channel id is an alias that a splice changes.

Core Lightning (splicing on by default since v26.04) gives a spliced channel a new short channel id once the
splice transaction confirms (`103x2x0` → `211x1x1`) while `channel_id` stays. Everything the plugin keeps
per channel is keyed by the short channel id in force, because every RPC, report and lightningd call speaks
short channel ids; when a channel's short channel id changes, its history is re-keyed in one transaction
(revops/store.py `rename_channel`) and its actor keeps running under the new one (docs/architecture.md).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

NORMAL = "CHANNELD_NORMAL"
# lightningd's channel_state_changed schema (v26.06.6): "CHANNELD_NORMAL and CHANNELD_AWAITING_SPLICE mean the
# channel can be used normally" -- a splicing channel keeps forwarding, so it keeps its actor and its price
SPLICING = "CHANNELD_AWAITING_SPLICE"
ACTIVE_STATES = frozenset((NORMAL, SPLICING))


def splices(known: Mapping[str, str], listing: Mapping[str, str]) -> dict[str, str]:
    """Short channel ids that changed: {old scid: new scid}, from channel_id → scid as known and as listed now.
    Channels only in one of the two (opened, closed, not yet confirmed) are no splice."""
    return {old: listing[cid] for cid, old in known.items()
            if cid in listing and listing[cid] and old and listing[cid] != old}


def _block_and_output(scid: str) -> tuple[int, int] | None:
    parts = scid.split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[2])


def pre_upgrade_joins(orphans: Mapping[str, str], channels: Iterable[tuple[str, str, str]],
                      events: Mapping[str, Iterable[Mapping]]) -> dict[str, list[str]]:
    """A splice made before the plugin recorded channel ids (schema < 6) left the channel's history under a
    short channel id no channel is listed under. Best effort, only where nothing else could be meant:
    {channel_id: its earlier short channel ids, oldest first}.

    `orphans`: such short channel ids (never recorded with a channel_id, not listed now) → the peer their
    actor was saved with. `channels`: (channel_id, peer_id, funding txid) as listed now. `events`: bookkeeper's
    account events of some of them (bkpr-listaccountevents). Each funding output a channel had before its
    current one is a chain `channel_open` in its account (a splice books one for the new output, CLN
    tests/test_splicing.py), at the block of its short channel id `BLOCKxTXxOUTPUT` and with its output index
    (the transaction's place in the block is not in bookkeeper). An orphan joins a channel when its peer, block
    and output are those of one earlier funding of that channel, and of no other listed channel's and no
    other orphan's: a second candidate either way joins nothing (fail safe: history is never merged into the
    wrong channel, at worst it stays apart, as before)."""
    claims: dict[tuple[str, int, int], list[str]] = {}
    for cid, peer, funding_txid in channels:
        seen = set()
        for e in events.get(cid, ()):
            txid, _, out = str(e.get("outpoint", "")).partition(":")
            if e.get("type") != "chain" or e.get("tag") != "channel_open" or txid == funding_txid or not out.isdigit():
                continue
            key = (peer, int(e.get("blockheight", -1)), int(out))
            if key not in seen:
                seen.add(key)
                claims.setdefault(key, []).append(cid)
    by_key: dict[tuple[str, int, int], list[str]] = {}
    for scid, peer in orphans.items():
        where = _block_and_output(scid)
        if where is not None:
            by_key.setdefault((peer, *where), []).append(scid)
    joins: dict[str, list[tuple[int, str]]] = {}
    for key, scids in by_key.items():
        cids = claims.get(key, [])
        if len(scids) == 1 and len(cids) == 1:
            joins.setdefault(cids[0], []).append((key[1], scids[0]))
    return {cid: [s for _, s in sorted(found)] for cid, found in joins.items()}
