"""Competing channels toward each of our peers: what the rest of the graph charges, as gossip shows it.

A payment that leaves us through peer P could have reached P through another node instead; those
nodes' channels X→P are our competition, and `listchannels destination=P` shows them. Each peer gets
3–12 such competitors. A competitor's fee is the market price of the flows that leave our node through
P (the median of those streams' current `market_ppm`, the node-wide median when none does) times its
own fixed factor LogNormal(0, `[market] competitor_sigma`), so competitors follow the market's shifts.
They are drawn from an RNG of their own (seeded by the run's seed and the peer), so they change no
payment draw, and a controller learns from them exactly what gossip would tell it: a noisy anchor.
"""
from __future__ import annotations

import math
import random
import statistics
from typing import TYPE_CHECKING

import attrs

from .scenario import fake_pubkey

if TYPE_CHECKING:  # pragma: no cover
    from .node import SimNode

COMPETITOR_HEIGHT = 500_000   # competitors' channels were opened long before ours


@attrs.frozen
class Competitor:
    node_id: str
    scid: str
    capacity_msat: int
    factor: float


class Competitors:
    def __init__(self, node: "SimNode"):
        self.node = node
        self._by_peer: dict[str, tuple[Competitor, ...]] = {}
        self._prices: tuple[tuple, dict[str | None, float]] = ((), {})

    def of(self, peer_id: str) -> tuple[Competitor, ...]:
        """The peer's competitors, drawn once per run."""
        if peer_id not in self._by_peer:
            rng = random.Random(f"competitors:{self.node.seed}:{peer_id}")
            sigma = self.node.scenario.market.competitor_sigma
            self._by_peer[peer_id] = tuple(
                Competitor(node_id=fake_pubkey(f"competitor:{peer_id}:{i}"),
                           scid=f"{COMPETITOR_HEIGHT + rng.randrange(200_000)}x{rng.randrange(3000)}x{i}",
                           capacity_msat=rng.randrange(1_000_000, 20_000_000) * 1000,
                           factor=math.exp(sigma * rng.gauss(0.0, 1.0)))
                for i in range(rng.randint(3, 12)))
        return self._by_peer[peer_id]

    def market_ppm(self) -> dict[str | None, float]:
        """Median market price of the live streams leaving through each peer; key None = the whole node.
        Computed once per instant, shift and channel set: a survey of many peers asks many times."""
        node = self.node
        key = (node._t, node.shifts_applied, len(node.by_name))
        if self._prices[0] != key:
            self._prices = (key, self._market_ppm())
        return self._prices[1]

    def _market_ppm(self) -> dict[str | None, float]:
        by_peer: dict[str | None, list[float]] = {None: []}
        for s in self.node.streams:
            ch = self.node.by_name.get(s.dst) if s.dst is not None else None
            if ch is not None:
                by_peer.setdefault(ch.peer_id, []).append(s.market_ppm)
            by_peer[None].append(s.market_ppm)
        return {k: statistics.median(v) for k, v in by_peer.items() if v}

    def fees(self, peer_id: str, prices: dict[str | None, float]) -> list[tuple[Competitor, int]]:
        """Each competitor's fee (ppm) toward the peer, at the current market prices."""
        price = prices.get(peer_id, prices.get(None, 0.0))
        return [(c, max(1, int(price * c.factor))) for c in self.of(peer_id)]

    def median_ppm(self, peer_id: str) -> int:
        """What clboss's competitor survey sees for this peer: the median of the competitors' fees."""
        return int(statistics.median(ppm for _, ppm in self.fees(peer_id, self.market_ppm())))
