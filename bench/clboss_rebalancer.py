"""clboss's EarningsRebalancer for the clboss-like baseline (d), ported from clboss's source.

What clboss does (ZmnSCPxj/clboss; the files read for this port and the facts taken from each):

* ``Boss/Mod/Timers.cpp`` — the "random hourly" timer fires after a uniform 1,800–5,400 s wait, again and
  again; ``Boss/Mod/EarningsRebalancer.cpp`` rolls a die on each firing (uniform 1–2) and runs on a 1.
* ``Boss/Mod/EarningsRebalancer.cpp`` — per peer (all its CHANNELD_NORMAL channels summed): spendable
  (``to_us_msat``) below 25 % of the total makes it a *destination*, 27.5 % or more (25 % + a 2.5 % gap)
  a *source*, in between neither. Nothing happens without both. It pairs the top 20 % (at least one) of
  min(#destinations, #sources): destinations sorted by net *out* earnings, sources by net *in* earnings,
  highest first, the i-th source with the i-th destination. It stops at the first destination whose net
  out earnings are ≤ 0 ("refusing to throw good money after bad"). The amount brings the destination to
  75 % of its total, at most what keeps the source at 27.5 %; the fee budget is 0.5 % of the amount,
  capped at the destination's net out earnings (msat), in which case the amount becomes budget / 0.5 %.
  Peers unmanaged for ``balance`` are skipped (none are in the benchmark).
* ``Boss/Mod/EarningsTracker.cpp`` (with ``ForwardFeeMonitor.cpp``) — every settled forward's fee is
  credited to the incoming peer's *in* earnings and to the outgoing peer's *out* earnings (lifetime sums,
  no window); a finished move's spent fee is debited to the source's *in* and the destination's *out*
  expenditures. Pending moves are keyed by the requester, and the EarningsRebalancer passes itself for
  every move, so when one run launches several moves only the first to finish is booked — to the pair
  of the last move requested — and the others are never booked. Ported as it is.
* ``Boss/Mod/FundsMover/Runner.cpp`` and ``Attempter.cpp`` — a move shares one fee budget among its
  attempts. An attempt asks a route with fuzz 99 %; a route costing more than the budget left fails and
  the fuzz drops by 22 points (99, 77, 55, 33, 11, 0): the 6th such failure ends the attempt. A route
  within budget reserves its fee and is paid; a payment failure returns the fee and the attempt tries
  another route; a failure at the source (our channel to it) or at the destination (its channel to us)
  ends the attempt. A failed attempt of ≥ 100,000 msat is split into amount/φ and the rest (φ the golden
  ratio), both tried concurrently, while fewer than 28 other attempts are in flight and less than 120 s
  have passed since the move started.

How it runs here: on the simulator's rebalancing market, the one the emulated sling gives our plugin
(docs/simulator.md): each route is a draw of ``draw_rebalance_cost_ppm`` with the scenario's
``[rebalance]`` settings, its fee ``ceil(cost × amount / 1e6)``; a paid route fails with
``failure_probability`` and takes ``attempt_interval_s`` of the move's clock (the simulator's time of a
failed attempt, as for sling); a success moves the funds with ``SimNode.rebalance`` (ledger
``rebalance_cost_msat``); every drawn route that moved nothing counts in ``rebalances_failed``, as sling's
do. The source must have ``amount + fee`` spendable and be connected, the destination must be able to
receive ``amount`` and be connected, else the attempt fails at the source / destination.

Choices of this emulation (no graph in the simulator):
* The draws come from the baseline's own stream, ``random.Random(f"clboss-rebalance:{seed}")``: the costs
  and failures follow the same distributions as sling's (whose draws are the emulated sling's own stream),
  and no draw of the market's payment streams moves (docs/simulator.md "Random streams"). The timer and
  the die use the same stream.
* A move runs to its end within the 10-minute step at which the timer fires; concurrent attempts run one
  after the other, in the order they were split, each seeing the budget left by those before it.
* After a failed payment clboss excludes the failing channel and asks again; its attempts end when the
  network's routes run out, which the simulator cannot show. Here an attempt gives up after
  ``MAX_PAYMENT_FAILURES`` failed payments — a bound of the emulation, reached with probability < 1e-9
  at the grid's failure probabilities (≤ 0.5).
* The simulator's failure probability does not depend on the amount, so clboss's large single payments
  (up to ~half a channel) fail no more often than sling's chunks: a limit that favours clboss.
* The fees' share of the route (the destination's fee to us included) is the market's draw, as for sling.

Not ported: the JitRebalancer (``Boss/Mod/JitRebalancer.cpp``): it defers a forward in the htlc_accepted
hook while it refills the outgoing channel, and the simulator resolves forwards inside the node where no
baseline can hold them (the stand-in lightningd's htlc_accepted is observe-only, docs/standin.md). Its
absence leaves clboss without on-demand refills, which favours us. The InitialRebalancer is disabled in clboss itself since 0.13A.
"""
from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from revops.sim.market import draw_rebalance_cost_ppm

if TYPE_CHECKING:  # pragma: no cover
    from bench.controllers import Chan
    from revops.sim.node import Chan as SimChan
    from revops.sim.node import SimNode

# Boss/Mod/Timers.cpp: random hourly timer; Boss/Mod/EarningsRebalancer.cpp: a die 1..2, runs on 1
HOURLY_WAIT_S = (1800, 5400)
DIE_SIDES = 2
# Boss/Mod/EarningsRebalancer.cpp
DESTINATION_BELOW = 0.25          # max_spendable_percent
SOURCE_GAP = 0.025                # src_gap_percent
DESTINATION_TARGET = 0.75         # dst_target_percent
MAX_FEE_SHARE = 0.005             # maxfeepercent (0.5 %)
TOP_SHARE = 0.20                  # top_rebalancing_percentile
# Boss/Mod/FundsMover/Runner.cpp
MIN_SPLIT_MSAT = 100_000          # minimum_split_size
MAX_ATTEMPTS = 30                 # maximum_attempts (in flight)
MAX_SPLIT_TIME_S = 120.0          # maximum_time
GOLD = (1 + math.sqrt(5)) / 2
# Boss/Mod/FundsMover/Attempter.cpp: fuzzpercent 99, −22 per failed route, gives up after the one at 0
ROUTE_FAILURES_PER_ATTEMPT = 6
# this emulation's bound on an attempt's failed payments (clboss: until the network's routes run out)
MAX_PAYMENT_FAILURES = 30


@attrs.frozen
class PeerBalance:
    """One peer's CHANNELD_NORMAL channels summed, as EarningsRebalancer's update_balances does."""

    spendable_msat: int
    total_msat: int


@attrs.frozen
class Move:
    """One RequestMoveFunds: from the source peer to the destination peer, with its fee budget."""

    source: str
    destination: str
    amount_msat: int
    fee_budget_msat: int
    reason: str


@attrs.define
class Earnings:
    """EarningsTracker's row for a peer (msat, lifetime)."""

    in_earnings: int = 0
    in_expenditures: int = 0
    out_earnings: int = 0
    out_expenditures: int = 0

    @property
    def in_net(self) -> int:
        return self.in_earnings - self.in_expenditures

    @property
    def out_net(self) -> int:
        return self.out_earnings - self.out_expenditures


def peer_balances(chans: Iterable[Chan]) -> dict[str, PeerBalance]:
    spend: dict[str, int] = {}
    total: dict[str, int] = {}
    for c in chans:
        spend[c.peer_id] = spend.get(c.peer_id, 0) + c.to_us_msat
        total[c.peer_id] = total.get(c.peer_id, 0) + c.capacity_msat
    return {p: PeerBalance(spend[p], total[p]) for p in sorted(total) if total[p] > 0}


def plan_moves(balances: Mapping[str, PeerBalance], earnings: Mapping[str, Earnings]) -> list[Move]:
    """EarningsRebalancer's run(): which peers to move funds between, how much, for what fee budget.

    Peers come in node-id order (clboss iterates a std::map); its std::sort leaves the order of equal
    earnings unspecified, the stable sort here keeps node-id order among them."""
    none = Earnings()
    dests, srcs = [], []
    for peer, b in balances.items():
        share = b.spendable_msat / b.total_msat
        if share < DESTINATION_BELOW:
            dests.append(peer)
        elif share >= DESTINATION_BELOW + SOURCE_GAP:
            srcs.append(peer)
    if not dests or not srcs:
        return []
    n = max(1, int(min(len(dests), len(srcs)) * TOP_SHARE))
    dests.sort(key=lambda p: -earnings.get(p, none).out_net)
    srcs.sort(key=lambda p: -earnings.get(p, none).in_net)
    moves = []
    for s, d in zip(srcs[:n], dests[:n]):
        dest_earned = earnings.get(d, none).out_net
        if dest_earned <= 0:
            break                                   # sorted: every later destination earned no more
        bd, bs = balances[d], balances[s]
        needed = int(bd.total_msat * DESTINATION_TARGET) - bd.spendable_msat
        src_budget = max(0, bs.spendable_msat - int(bs.total_msat * (DESTINATION_BELOW + SOURCE_GAP)))
        amount = min(needed, src_budget)
        budget = int(amount * MAX_FEE_SHARE)
        capped = budget > dest_earned
        if capped:
            budget = dest_earned
            amount = int(budget / MAX_FEE_SHARE)
        if amount <= 0:
            continue
        moves.append(Move(s, d, amount, budget,
                          f"{d[:10]} at {bd.spendable_msat / bd.total_msat:.1%} local earned {dest_earned} msat "
                          f"net out: refill to 75 % from {s[:10]} ({bs.spendable_msat / bs.total_msat:.1%}), "
                          f"{amount} msat for at most {budget} msat"
                          + (" (budget = its net earnings)" if capped else " (0.5 %)")))
    return moves


@attrs.frozen
class MoveResult:
    move: Move
    transferred_msat: int
    fee_spent_msat: int
    duration_s: float
    routes_failed: int


@attrs.define
class FundsMover:
    """FundsMover's Runner and Attempter on the simulator's rebalancing market."""

    node: SimNode
    rng: random.Random
    src: SimChan
    dst: SimChan
    budget_left: int
    routes_failed: int = 0

    def attempt(self, amount: int, start_s: float) -> tuple[bool, float]:
        """One Attempter: True when `amount` moved; and the move's clock when it ended."""
        node, spec = self.node, self.node.scenario.rebalance
        t, route_failures, payment_failures = start_s, 0, 0
        while True:
            cost_ppm = draw_rebalance_cost_ppm(self.rng, spec)
            fee = -(-int(cost_ppm * amount) // 1_000_000)
            if fee > self.budget_left:
                self.routes_failed += 1
                node.ledger.rebalances_failed += 1
                route_failures += 1
                if route_failures >= ROUTE_FAILURES_PER_ATTEMPT:
                    return False, t
                continue
            if not node.peers[self.src.peer_id]["connected"] or node.spendable_msat(self.src) < amount + fee:
                return False, t                     # failed at the source: cannot advance
            if not node.peers[self.dst.peer_id]["connected"] or node.receivable_msat(self.dst) < amount:
                return False, t                     # failed at the destination: cannot advance
            if self.rng.random() < spec.failure_probability:
                self.routes_failed += 1
                node.ledger.rebalances_failed += 1
                t += spec.attempt_interval_s
                payment_failures += 1
                if payment_failures >= MAX_PAYMENT_FAILURES:
                    return False, t
                continue
            self.budget_left -= fee
            node.rebalance(self.src, self.dst, amount, fee)
            return True, t

    def run(self, amount: int) -> tuple[int, float]:
        """The Runner: the amount, split on failure; returns (msat transferred, the move's duration)."""
        queue: deque[tuple[int, float]] = deque([(amount, 0.0)])
        moved, end = 0, 0.0
        while queue:
            a, start = queue.popleft()
            ok, t = self.attempt(a, start)
            end = max(end, t)
            if ok:
                moved += a
            elif a >= MIN_SPLIT_MSAT and len(queue) + 2 < MAX_ATTEMPTS and t < MAX_SPLIT_TIME_S:
                a1 = int(a / GOLD)
                queue.extend([(a1, t), (a - a1, t)])
        return moved, end


@attrs.define
class EarningsRebalancer:
    """clboss's EarningsRebalancer with its EarningsTracker, driven by the clboss-like baseline's step."""

    seed: int = 0
    earnings: dict[str, Earnings] = attrs.field(factory=dict)
    results: list[MoveResult] = attrs.field(factory=list)
    next_timer: float | None = None
    rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(f"clboss-rebalance:{self.seed}")

    def forward_fee(self, in_peer: str, out_peer: str, fee_msat: int) -> None:
        self.earnings.setdefault(in_peer, Earnings()).in_earnings += fee_msat
        self.earnings.setdefault(out_peer, Earnings()).out_earnings += fee_msat

    def step(self, node: SimNode, now: int, chans: list[Chan]) -> None:
        """Called on every 10-minute step: fires the random hourly timer when due, runs on a die of 1."""
        if self.next_timer is None:
            self.next_timer = now + self.rng.uniform(*HOURLY_WAIT_S)
        if now < self.next_timer:
            return
        self.next_timer += self.rng.uniform(*HOURLY_WAIT_S)
        if self.rng.randint(1, DIE_SIDES) == 1:
            self.run(node, chans)

    def run(self, node: SimNode, chans: list[Chan]) -> list[MoveResult]:
        moves = plan_moves(peer_balances(chans), self.earnings)
        first_scid = {}
        for c in chans:
            first_scid.setdefault(c.peer_id, c.scid)
        done = []
        for m in moves:
            mover = FundsMover(node, self.rng, node.channels[first_scid[m.source]],
                               node.channels[first_scid[m.destination]], m.fee_budget_msat)
            moved, duration = mover.run(m.amount_msat)
            done.append(MoveResult(m, moved, m.fee_budget_msat - mover.budget_left, duration, mover.routes_failed))
        if done:
            # EarningsTracker keeps one pending entry per requester: the last move requested; the first
            # move to finish is booked against it, the others find no entry and are not booked
            first = min(done, key=lambda r: r.duration_s)
            last = moves[-1]
            self.earnings.setdefault(last.source, Earnings()).in_expenditures += first.fee_spent_msat
            self.earnings.setdefault(last.destination, Earnings()).out_expenditures += first.fee_spent_msat
        self.results.extend(done)
        return done
