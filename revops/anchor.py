"""The price anchor: what other nodes charge to reach the same peer, read from gossip.

A payment that leaves through our channel to peer P could have reached P through any other node's
channel to P; those channels' fees (`listchannels destination=P`) are the going rate for our service.
clboss prices from the same survey. We use it once per channel, to start a fee that sits far below the
going rate (typically Core Lightning's default 10 ppm) at the going rate, instead of climbing to it in
small steps for a week; hill climbing then searches from there on the fees actually earned. Toward a
peer that gossip shows fewer than three other channels to, the node's own history stands in: what its
settled forwards paid over 30 days (fees / volume); it starts the search, never moves it later.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable

MIN_COMPETITORS = 3          # fewer channels toward the peer say nothing about a going rate
REFRESH_SECONDS = 86_400     # gossip fees move slowly; one survey per peer per day
PEERS_PER_CYCLE = 100        # bounds the listchannels calls of one fee cycle on large nodes
START_BELOW = 0.5            # a fee under half the going rate starts at the going rate
HOME_MIN_FORWARDS = 10       # the node's own rate needs this many settled forwards (30 days) to stand for it


def competitor_anchor(channels: Iterable[dict], our_id: str, peer_id: str) -> int | None:
    """The median fee (ppm) of the other nodes' active channels in a `listchannels destination=peer_id`
    answer; None when fewer than MIN_COMPETITORS."""
    ppms = [int(c.get("fee_per_millionth", 0)) for c in channels
            if c.get("destination") == peer_id and c.get("source") not in (our_id, None) and c.get("active", True)]
    if len(ppms) < MIN_COMPETITORS:
        return None
    return int(statistics.median(ppms))


def peers_due(peers: Iterable[str], surveyed: dict[str, int], now: int) -> list[str]:
    """Peers whose last survey (answered or not) is older than a day, oldest first, at most a cycle's worth."""
    due = sorted((surveyed.get(p, -1), p) for p in set(peers) if now - surveyed.get(p, -REFRESH_SECONDS) >= REFRESH_SECONDS)
    return [p for _, p in due[:PEERS_PER_CYCLE]]


def anchored_start(climb_fee_ppm: int, anchor_ppm: int | None) -> int | None:
    """The fee to start from when the climb fee is far below the going rate (None: keep the climb fee)."""
    if anchor_ppm is None or climb_fee_ppm >= START_BELOW * anchor_ppm:
        return None
    return anchor_ppm
