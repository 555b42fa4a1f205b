"""Baseline fee controllers for the economic benchmark (issue #8, controllers (b)–(f)).

Each baseline drives a SimNode directly, with exactly what a real controller would see: it reads
`listpeerchannels`, `listforwards` and `feerates` at its own cadence and writes fees with `setchannel`.
Only the clboss-like baseline rebalances: its EarningsRebalancer (bench/clboss_rebalancer.py) moves funds
on the simulator's rebalancing market, the one the emulated sling gives our plugin; clboss's
JitRebalancer and v1.4's EV rebalancer are not ported. Our controller (a) runs through `revops.simulate`
with its real runtime and actors instead.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Protocol

import attrs

from bench.clboss_rebalancer import EarningsRebalancer
from revops.sim.node import SimNode

HOUR = 3600
DAY = 86400


@attrs.frozen
class Chan:
    """One CHANNELD_NORMAL channel as listpeerchannels shows it."""

    scid: str
    peer_id: str
    capacity_msat: int
    to_us_msat: int
    fee_base: int
    fee_ppm: int
    htlcs: int
    max_htlcs: int
    connected: bool
    opener: str
    height: int

    @property
    def local_ratio(self) -> float:
        return self.to_us_msat / self.capacity_msat if self.capacity_msat else 0.5


def read_channels(node: SimNode) -> list[Chan]:
    out = []
    for c in node.call("listpeerchannels", {})["channels"]:
        if c.get("state") != "CHANNELD_NORMAL" or "short_channel_id" not in c:
            continue
        local = c["updates"]["local"]
        out.append(Chan(scid=c["short_channel_id"], peer_id=c["peer_id"], capacity_msat=int(c["total_msat"]),
                        to_us_msat=int(c["to_us_msat"]), fee_base=int(local["fee_base_msat"]),
                        fee_ppm=int(local["fee_proportional_millionths"]), htlcs=len(c.get("htlcs", [])),
                        max_htlcs=int(c.get("max_accepted_htlcs", 483)), connected=bool(c["peer_connected"]),
                        opener=c["opener"], height=int(c["short_channel_id"].split("x")[0])))
    return out


def set_fee(node: SimNode, scid: str, base_msat: int, ppm: int) -> None:
    node.call("setchannel", {"id": scid, "feebase": base_msat, "feeppm": ppm})


class ForwardLog:
    """Every forward the node reports, read incrementally (listforwards index=created), as a controller's DB would."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def poll(self, node: SimNode) -> list[dict]:
        new = node.call("listforwards", {"index": "created", "start": len(self.rows) + 1})["forwards"]
        self.rows.extend(new)
        return new


class Controller(Protocol):
    """A baseline: `step` is called every `interval_s` of virtual time (first at the start)."""

    name: str
    interval_s: int

    def step(self, node: SimNode, now: int) -> None: ...


# ------------------------------------------------------------------------------------------- (b), (f)
@attrs.define
class StaticFees:
    """Fixed fees set once at the start: (b) one fee for all channels, (f) one fee per channel (by scid)."""

    name: str
    base_msat: int
    ppm: int
    per_channel_ppm: Mapping[str, int] = attrs.field(factory=dict)
    interval_s: int = 30 * DAY
    _done: bool = False

    def step(self, node: SimNode, now: int) -> None:
        if self._done:
            return
        self._done = True
        for ch in read_channels(node):
            ppm = self.per_channel_ppm.get(ch.scid, self.ppm)
            if (ch.fee_base, ch.fee_ppm) != (self.base_msat, ppm):
                set_fee(node, ch.scid, self.base_msat, ppm)


# ------------------------------------------------------------------------------------------------ (c)
@attrs.define
class FeeAdjusterLike:
    """lightningd/plugins feeadjuster, default method: fee = configured fee × 50^(0.5 − our share).

    The plugin reacts to every settled forward; here the balances are polled every 10 virtual minutes,
    which is the only approximation. A channel is re-priced when its share moved
    by more than the threshold (5 %, fuzzed ±1.5 % per check) since its last update. The configured fee
    is 1 sat + 100 ppm (an operator's tuned setting; CLN's 10 ppm default would make it a no-op).
    """

    name: str = "feeadjuster"
    base_msat: int = 1000
    ppm: int = 100
    threshold: float = 0.05
    seed: int = 0
    interval_s: int = 600
    _last_share: dict[str, float] = attrs.field(factory=dict)
    _rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def step(self, node: SimNode, now: int) -> None:
        for ch in read_channels(node):
            share = ch.local_ratio
            last = self._last_share.get(ch.scid)
            if last is not None and abs(last - share) < self.threshold + self._rng.uniform(-0.015, 0.015):
                continue
            ratio = 50 ** (0.5 - share)
            base, ppm = int(self.base_msat * ratio), int(self.ppm * ratio)
            if (base, ppm) != (ch.fee_base, ch.fee_ppm):
                set_fee(node, ch.scid, base, ppm)
                self._last_share[ch.scid] = share
            elif last is None:
                self._last_share[ch.scid] = share


# ------------------------------------------------------------------------------------------------ (d)
def price_multiplier(level: int) -> float:
    """clboss price theory: level p > 0 → 1.2^p, p < 0 → 0.8^−p."""
    return 1.2 ** level if level >= 0 else 0.8 ** (-level)


def balance_multiplier(to_us_msat: int, capacity_msat: int) -> float:
    """clboss FeeModderByBalance: 50^(0.5 − share), the share taken at the centre of ~0.002 BTC bins (4–50)."""
    bins = max(4, min(50, capacity_msat // 200_000_000))
    size = capacity_msat / bins
    k = min(bins - 1, int(to_us_msat // size))
    return 50 ** (0.5 - (k + 0.5) / bins)


@attrs.define
class Deck:
    """One peer's price-theory card game: cards centre−2…centre+2, each in play 48 h, best card wins."""

    centre: int = 0
    cards: list[int] = attrs.field(factory=list)
    card: int | None = None
    card_start: int = 0
    earned_at_start: int = 0
    results: dict[int, int] = attrs.field(factory=dict)

    def play(self, now: int, earned: int, rng: random.Random, card_s: int) -> int:
        """Advance the game to `now` (`earned` = the peer's fees so far, msat); return the level in play."""
        if self.card is not None and now - self.card_start < card_s:
            return self.card
        if self.card is not None:
            self.results[self.card] = earned - self.earned_at_start
        if not self.cards:
            if self.results and max(self.results.values()) > 0:
                self.centre = max(self.results, key=lambda c: (self.results[c], -abs(c - self.centre)))
            self.results = {}
            self.cards = [self.centre + d for d in (-2, -1, 0, 1, 2)]
            rng.shuffle(self.cards)
        self.card = self.cards.pop()
        self.card_start, self.earned_at_start = now, earned
        return self.card


@attrs.define
class ClbossLike:
    """clboss: competitors' median fee × price theory × balance modder per peer, and its EarningsRebalancer.

    The competitor median is clboss's PeerCompetitorFeeMonitor: the median fee of the other nodes'
    channels toward the peer, as the simulator's gossip shows them (revops/sim/competitors.py) — the
    same survey our price anchor reads. The EarningsRebalancer (with its EarningsTracker and FundsMover)
    is bench/clboss_rebalancer.py; `rebalancer=None` is clboss's fee setting alone (the baseline before
    the port). Not ported: FeeModderBySize (no peer graph in the simulation), the JitRebalancer. Runs on
    clboss's 10-minute timer; writes only changed fees.
    """

    name: str = "clboss"
    seed: int = 0
    card_s: int = 48 * HOUR
    interval_s: int = 600
    decks: dict[str, Deck] = attrs.field(factory=dict)
    earned: dict[str, int] = attrs.field(factory=dict)   # peer -> fees earned as outgoing, msat
    log: ForwardLog = attrs.field(factory=ForwardLog)
    rebalancer: EarningsRebalancer | None = attrs.field(
        default=attrs.Factory(lambda self: EarningsRebalancer(seed=self.seed), takes_self=True))
    _rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def step(self, node: SimNode, now: int) -> None:
        chans = read_channels(node)
        peer_of = {c.scid: c.peer_id for c in chans}
        for f in self.log.poll(node):
            if f["status"] == "settled" and f.get("out_channel") in peer_of:
                peer = peer_of[f["out_channel"]]
                self.earned[peer] = self.earned.get(peer, 0) + int(f["fee_msat"])
                if self.rebalancer is not None and f.get("in_channel") in peer_of:
                    self.rebalancer.forward_fee(peer_of[f["in_channel"]], peer, int(f["fee_msat"]))
        for ch in chans:
            deck = self.decks.setdefault(ch.peer_id, Deck())
            level = deck.play(now, self.earned.get(ch.peer_id, 0), self._rng, self.card_s)
            median_base, median_ppm = node.clboss._median_fees(ch.peer_id)
            m = price_multiplier(level) * balance_multiplier(ch.to_us_msat, ch.capacity_msat)
            base, ppm = int(median_base * m), int(median_ppm * m)
            if (base, ppm) != (ch.fee_base, ch.fee_ppm):
                set_fee(node, ch.scid, base, ppm)
        if self.rebalancer is not None:
            self.rebalancer.step(node, now, chans)
