"""A channel's identity is its `channel_id`; its short channel id is an alias that a splice changes.

Core Lightning (splicing on by default since v26.04) gives a spliced channel a new short channel id once the
splice transaction confirms (`103x2x0` → `211x1x1`) while `channel_id` stays. Everything the plugin keeps
per channel is keyed by the short channel id in force, because every RPC, report and lightningd call speaks
short channel ids; when a channel's short channel id changes, its history is re-keyed in one transaction
(revops/store.py `rename_channel`) and its actor keeps running under the new one (docs/architecture.md).
"""
from __future__ import annotations

from collections.abc import Mapping

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
