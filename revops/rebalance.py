"""EV rebalancing: which channels to fill, from where, at what price, and the sling job state machine.

Everything here is a pure function of (state, observations, config): no I/O, no clock, no randomness.
Anything that spends money fails closed: when an input is missing or doubtful, no rebalance.
Money is integer msat (sat where sling's API says so); floats only for ratios and rates.
See docs/rebalancing.md for the user-facing explanation of every rule below.
"""
from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from sortedcontainers import SortedList

from revops.model import ChannelView, FlowClass, Policy, RebalanceMode, Strategy

# sling's own defaults for how far a source may be drained; sent explicitly with every job so that
# our source check and sling's behaviour agree whatever the operator set globally.
SLING_DEPLETE_PCT = 0.2
SLING_DEPLETE_SAT = 2_000_000
# One route at a time: the operator's global `sling-paralleljobs` would otherwise put several chunks in
# flight at once, each able to spend amount x maxppm before we can see it.
SLING_PARALLEL_JOBS = 1
# Every job is a `sling-once` of one chunk: sling rebalances at most `onceamount` and stops by itself, so a
# job's spend is bounded by onceamount x maxppm <= its reservation whatever the channel does meanwhile and
# whether or not we can reach sling (docs/rebalancing.md "The life of a sling job"). Jobs are still polled
# every JOB_POLL_SECONDS to book their spend and free their channel soon after they are done.
JOB_POLL_SECONDS = 300

FUTILITY_FAILURES = 10            # more failures than this ...
FUTILITY_WINDOW_S = 48 * 3600     # ... within this long of the last one: stop trying
BACKOFF_BASE_S = 600              # backoff after a failure: 600 s x 2^min(failures, 4)
BACKOFF_MAX_EXP = 4
SOURCE_PROTECT_RATIO = 0.8        # a draining (SOURCE-class) channel is only a source above this
TARGET_DAYS = 3                   # fill up to three days of outbound demand ...
TARGET_RATIO_SOURCE = 0.85        # ... capped at this share of capacity for SOURCE-class channels
TARGET_RATIO_OTHER = 0.50         # ... and at this share for the others
RECENT_DAYS = 3                   # out_sats_3d covers this many days
SALE_HORIZON_DAYS = 1             # a refill (and a source's lost sales) is judged on a day of demand
STAGNANT_RATIO = (0.4, 0.6)       # balanced and idle channels may also be sources
STAGNANT_TURNOVER = 0.0015        # outbound sats per day / capacity below this = idle
DEFAULT_INBOUND_PPM = 1000        # inbound estimate when neither history nor gossip knows the peer
HISTORY_MIN_SAMPLES = 3
JOB_MAX_FAILED_ATTEMPTS = 10      # failed sling attempts with no success before a job is abandoned

MSAT_PER_SAT = 1000
PPM = 1_000_000


class RebalanceConfig(Protocol):
    """The configuration attributes this module reads (names as in the reference §3.1/§3.2)."""

    @property
    def rebalance_min_profit(self) -> int: ...            # sats
    @property
    def rebalance_min_profit_ppm(self) -> int: ...        # 0 = use rebalance_min_profit
    @property
    def rebalance_max_amount(self) -> int: ...            # sats
    @property
    def rebalance_min_amount(self) -> int: ...            # sats
    @property
    def low_liquidity_threshold(self) -> float: ...
    @property
    def high_liquidity_threshold(self) -> float: ...
    @property
    def rebalance_cooldown_hours(self) -> float: ...
    @property
    def inbound_fee_estimate_ppm(self) -> int: ...
    @property
    def max_concurrent_jobs(self) -> int: ...
    @property
    def sling_chunk_size_sats(self) -> int: ...
    @property
    def sling_max_hops(self) -> int: ...
    @property
    def sling_target_sink(self) -> float: ...
    @property
    def sling_target_source(self) -> float: ...
    @property
    def sling_target_balanced(self) -> float: ...
    @property
    def daily_budget_sats(self) -> int: ...
    @property
    def enable_proportional_budget(self) -> bool: ...
    @property
    def proportional_budget_pct(self) -> float: ...
    @property
    def min_wallet_reserve(self) -> int: ...              # sats
    @property
    def hive_rebalance_tolerance(self) -> int: ...        # sats of expected loss per job
    @property
    def flow_window_days(self) -> int: ...
    @property
    def reservation_timeout_hours(self) -> float: ...
    @property
    def sling_job_timeout_seconds(self) -> int: ...
    @property
    def channel_cap_pct(self) -> float: ...               # share of 30-day net earnings
    @property
    def pingpong_hours(self) -> float: ...
    @property
    def hive_daily_push_sats(self) -> int: ...
    @property
    def hive_push_max_sats(self) -> int: ...


# ----------------------------------------------------------------------------------------------
# Inputs


@attrs.frozen
class ChannelEcon:
    """One channel as the rebalancer sees it: its view plus flow, earnings, policy and history."""

    view: ChannelView
    flow: FlowClass
    policy: Policy                       # effective (peer row merged with channel row)
    fee_ppm: int                         # fee we currently charge on it (last broadcast)
    out_sats_3d: int                     # outbound sats forwarded through it, last 3 days
    out_sats_window: int                 # outbound sats forwarded through it, last flow_window_days
    earned_30d_msat: int                 # fees earned with it as outgoing channel, 30 days
    rebalance_spend_30d_msat: int        # settled rebalance fees paid to fill it, 30 days
    failure_count: int = 0               # consecutive failed rebalances into it
    last_failure_at: float | None = None
    last_success_at: float | None = None
    last_drained_for: Mapping[str, float] = attrs.field(factory=dict)  # dest scid -> when we drained this for it

    @property
    def scid(self) -> str:
        return self.view.scid

    @property
    def peer_id(self) -> str:
        return self.view.peer_id


@attrs.frozen
class InboundEstimate:
    """What routing into a peer is expected to cost, and where the number came from."""

    ppm: int
    source: str                          # history | last_hop | default


@attrs.frozen
class BudgetState:
    """The rebalance-fee ledger as the coordinator's store reports it."""

    daily_budget_msat: int               # effective budget (see effective_daily_budget_msat)
    spent_24h_msat: int                  # settled fees, rolling 24 h
    reserved_msat: int                   # open reservations of running jobs
    channel_spend_30d_msat: Mapping[str, int] = attrs.field(factory=dict)  # per dest scid: settled + reserved
    hive_pushed_24h_sat: int = 0         # amount moved into hive peers, rolling 24 h

    @property
    def remaining_msat(self) -> int:
        return self.daily_budget_msat - self.spent_24h_msat - self.reserved_msat


@attrs.frozen
class CapitalState:
    """Liquid capital; pass None to find_candidates when it could not be read."""

    onchain_msat: int                    # confirmed on-chain outputs
    channels_local_msat: int             # our side of normal channels
    error: str | None = None


class Role(str, enum.Enum):
    DESTINATION = "destination"
    SOURCE = "source"
    NODE = "node"


@attrs.frozen
class Rejection:
    """Why a channel (or the whole cycle) was not used; shown by revenue-rebalance-debug."""

    scid: str                            # "*" for node-wide rejections
    role: Role
    code: str                            # stable short id
    reason: str                          # one human-readable line
    dest_scid: str | None = None         # for a source rejected for one particular destination


class Rejections:
    """Every rejection of one rebalance cycle, in order. A priced destination's rejections (its sources',
    about destinations x sources of them) are written out only when read — by revenue-rebalance-debug —
    from the same inputs, by the same per-destination evaluation, so the cycle itself stays near-linear."""

    def __init__(self) -> None:
        self._parts: list[Rejection | Callable[[], list[Rejection]]] = []

    def append(self, rejection: Rejection) -> None:
        self._parts.append(rejection)

    def defer(self, write: Callable[[], list[Rejection]]) -> None:
        self._parts.append(write)

    def __iter__(self) -> Iterator[Rejection]:
        for part in self._parts:
            if isinstance(part, Rejection):
                yield part
            else:
                yield from part()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Rejections({list(self)!r})"


@attrs.frozen
class Candidate:
    """A rebalance the coordinator may reserve budget for and hand to the sling executor."""

    dest_scid: str
    dest_peer: str
    source_scids: tuple[str, ...]        # best first; sent to sling as `candidates`
    amount_sat: int
    max_fee_msat: int                    # the worst case, reserved from the budget
    maxppm: int
    expected_fee_msat: int
    expected_income_msat: int
    expected_profit_msat: int
    inbound_ppm: int
    hive: bool                           # accepted under the strategic (hive) exemption
    reason: str


# ----------------------------------------------------------------------------------------------
# Policy, budget, capital


def may_fill(policy: Policy) -> bool:
    """source_only and disabled peers are never filled (reference §5.5)."""
    return policy.rebalance_mode in (RebalanceMode.ENABLED, RebalanceMode.SINK_ONLY)


def may_drain(policy: Policy) -> bool:
    """sink_only and disabled peers are never drained; source_only peers are (defect 17 fixed)."""
    return policy.rebalance_mode in (RebalanceMode.ENABLED, RebalanceMode.SOURCE_ONLY)


def effective_daily_budget_msat(cfg: RebalanceConfig, revenue_24h_msat: int) -> int:
    """The fixed budget, or with proportional budgeting max(fixed, pct x trailing-24 h revenue)."""
    fixed = cfg.daily_budget_sats * MSAT_PER_SAT
    if not cfg.enable_proportional_budget:
        return fixed
    return max(fixed, int(max(0, revenue_24h_msat) * cfg.proportional_budget_pct))


def capital_ok(capital: CapitalState | None, cfg: RebalanceConfig) -> tuple[bool, str]:
    """The wallet reserve check; unknown or erroneous capital blocks rebalancing (fail closed)."""
    if capital is None:
        return False, "capital unknown: fail closed"
    if capital.error:
        return False, f"capital check failed ({capital.error}): fail closed"
    if capital.onchain_msat < 0 or capital.channels_local_msat < 0:
        return False, "capital figures negative: fail closed"
    total = capital.onchain_msat + capital.channels_local_msat
    reserve = cfg.min_wallet_reserve * MSAT_PER_SAT
    if total < reserve:
        return False, f"liquid capital {total // MSAT_PER_SAT} sat below reserve {cfg.min_wallet_reserve} sat"
    return True, f"liquid capital {total // MSAT_PER_SAT} sat >= reserve {cfg.min_wallet_reserve} sat"


def live_reserved_msat(reservations: Iterable[tuple[float, int]], now: float, cfg: RebalanceConfig) -> int:
    """Sum of (reserved_at, msat) reservations younger than reservation_timeout_hours.

    Older ones belong to jobs that were never settled (crash); they stop blocking the budget.
    """
    horizon = cfg.reservation_timeout_hours * 3600
    return sum(msat for at, msat in reservations if now - at < horizon)


def estimate_inbound_fee(history_ppm: Sequence[int], last_hop_ppm: int | None,
                         cfg: RebalanceConfig) -> InboundEstimate:
    """Cost of routing into a peer: median of our past rebalances into it, else its last hop + a margin."""
    if len(history_ppm) >= HISTORY_MIN_SAMPLES:
        return InboundEstimate(int(statistics.median(history_ppm)), "history")
    if last_hop_ppm is not None:
        return InboundEstimate(last_hop_ppm + cfg.inbound_fee_estimate_ppm, "last_hop")
    return InboundEstimate(DEFAULT_INBOUND_PPM, "default")


# ----------------------------------------------------------------------------------------------
# Small arithmetic helpers


def _ceil_ppm(amount_msat: int, ppm: float) -> int:
    """msat cost of `ppm` on `amount_msat`, rounded up (costs are never underestimated)."""
    return math.ceil(amount_msat * ppm / PPM)


def _daily_out_sat(ch: ChannelEcon, cfg: RebalanceConfig) -> float:
    """Outbound demand per day: the higher of the last 3 days and the flow window.

    The window keeps the demand a channel had before it ran empty (an empty channel forwards nothing).
    """
    return max(ch.out_sats_3d / RECENT_DAYS, ch.out_sats_window / max(1, cfg.flow_window_days))


def _utilisation(daily_out_sat: float, amount_sat: int) -> float:
    """Share of `amount_sat` expected to flow out within a day (SALE_HORIZON_DAYS), in [0, 1]."""
    if amount_sat <= 0:
        return 0.0
    return min(1.0, max(0.0, daily_out_sat * SALE_HORIZON_DAYS / amount_sat))


def _peer_ratios(channels: Iterable[ChannelEcon]) -> dict[str, float]:
    """Local ratio of each peer over all its normal channels (several channels = one peer)."""
    local: dict[str, int] = {}
    cap: dict[str, int] = {}
    for ch in channels:
        if ch.view.is_normal:
            local[ch.peer_id] = local.get(ch.peer_id, 0) + ch.view.local_msat
            cap[ch.peer_id] = cap.get(ch.peer_id, 0) + ch.view.capacity_msat
    return {p: local[p] / cap[p] for p in cap if cap[p] > 0}


def _deplete_floor_sat(view: ChannelView) -> int:
    """What sling leaves on a source: min(pct x capacity, amount) with the values we send."""
    return min(int(view.capacity_msat // MSAT_PER_SAT * SLING_DEPLETE_PCT), SLING_DEPLETE_SAT)


def sling_target(flow: FlowClass, cfg: RebalanceConfig) -> float:
    """The local ratio at or above which a channel of this flow class is not filled (`sling-target-*`)."""
    if flow is FlowClass.SOURCE:
        return cfg.sling_target_source
    if flow is FlowClass.SINK:
        return cfg.sling_target_sink
    return cfg.sling_target_balanced


# ----------------------------------------------------------------------------------------------
# Destination screening


def _destination_block(ch: ChannelEcon, peer_ratio: float, busy_peers: Collection[str],
                       now: float, cfg: RebalanceConfig) -> tuple[str, str] | None:
    """(code, reason) when `ch` must not be filled this cycle, else None. Cheapest checks first."""
    if not ch.view.is_normal or ch.view.capacity_msat <= 0:
        return "not_normal", f"channel state {ch.view.state}"
    if peer_ratio >= cfg.low_liquidity_threshold:
        return "not_depleted", f"peer local ratio {peer_ratio:.2f} >= low threshold {cfg.low_liquidity_threshold}"
    if not may_fill(ch.policy):
        return "policy_no_fill", f"rebalance mode {ch.policy.rebalance_mode.value} forbids filling"
    if ch.peer_id in busy_peers:
        return "job_running", "a job already runs for this peer"
    if not ch.view.peer_connected:
        return "disconnected", "peer disconnected"
    flow_block = _flow_block(ch.flow)
    if flow_block:
        return flow_block
    return _history_block(ch, now, cfg)


def _flow_block(flow: FlowClass) -> tuple[str, str] | None:
    if flow is FlowClass.SINK:
        return "flow_sink", "SINK channel fills on its own"
    if flow is FlowClass.CONGESTED:
        return "flow_congested", "HTLC slots congested"
    if flow is FlowClass.UNKNOWN:
        return "flow_unknown", "flow not analysed yet: fail closed"
    return None


def backoff_seconds(failure_count: int) -> int:
    """Wait after a failed rebalance: 600 s x 2^min(failures, 4), i.e. 10 min to 160 min."""
    return BACKOFF_BASE_S * 2 ** min(max(failure_count, 0), BACKOFF_MAX_EXP)


def _history_block(ch: ChannelEcon, now: float, cfg: RebalanceConfig) -> tuple[str, str] | None:
    """Futility breaker, failure backoff and success cooldown."""
    if ch.failure_count > 0 and ch.last_failure_at is not None:
        since = now - ch.last_failure_at
        if ch.failure_count > FUTILITY_FAILURES and since < FUTILITY_WINDOW_S:
            return "futility", f"{ch.failure_count} failures, last {since / 3600:.1f} h ago (< 48 h)"
        wait = backoff_seconds(ch.failure_count)
        if since < wait:
            return "backoff", f"{ch.failure_count} failures: backing off {wait} s, {since:.0f} s elapsed"
    if ch.last_success_at is not None:
        since = now - ch.last_success_at
        if since < cfg.rebalance_cooldown_hours * 3600:
            return "cooldown", f"filled {since / 3600:.1f} h ago (< {cfg.rebalance_cooldown_hours} h cooldown)"
    return None


def _amount_sat(ch: ChannelEcon, hive: bool, cfg: RebalanceConfig) -> tuple[int, tuple[str, str] | None]:
    """How much to move in one job, or why nothing: demand-weighted target, one chunk at most."""
    cap_sat = ch.view.capacity_msat // MSAT_PER_SAT
    ceiling = sling_target(ch.flow, cfg)
    if ch.view.local_msat >= ceiling * ch.view.capacity_msat:
        option = {FlowClass.SOURCE: "source", FlowClass.SINK: "sink"}.get(ch.flow, "balanced")
        return 0, ("at_target", f"local {ch.view.local_msat // MSAT_PER_SAT} sat is already >= "
                                f"{ceiling:.0%} of capacity (sling-target-{option}, {ch.flow.value} channel)")
    ratio = TARGET_RATIO_SOURCE if ch.flow is FlowClass.SOURCE else TARGET_RATIO_OTHER
    target = int(cap_sat * ratio)
    if not hive:  # a strategic push fills inventory, it is not sized by demand
        target = min(target, int(TARGET_DAYS * _daily_out_sat(ch, cfg)))
    if target < cfg.rebalance_min_amount:
        return 0, ("target_too_small", f"target {target} sat (3 days of outbound demand, capped) "
                                       f"< rebalance_min_amount {cfg.rebalance_min_amount}")
    limits = [target - ch.view.local_msat // MSAT_PER_SAT, ch.view.receivable_msat // MSAT_PER_SAT,
              cfg.sling_chunk_size_sats, cfg.rebalance_max_amount]
    if hive:
        limits.append(cfg.hive_push_max_sats)
    amount = min(limits)
    if amount < cfg.rebalance_min_amount:
        return 0, ("amount_too_small", f"amount {amount} sat < rebalance_min_amount {cfg.rebalance_min_amount}")
    return amount, None


def _fit_tolerance(amount_sat: int, inbound: InboundEstimate, cfg: RebalanceConfig) -> tuple[int, tuple[str, str] | None]:
    """A hive push is sized so that its expected route fee fits the tolerance: smaller, but it happens."""
    fit = cfg.hive_rebalance_tolerance * PPM // max(1, inbound.ppm)
    if fit >= amount_sat:
        return amount_sat, None
    if fit < cfg.rebalance_min_amount:
        return 0, ("hive_tolerance", f"route ~{inbound.ppm} ppm ({inbound.source}): even rebalance_min_amount "
                                     f"{cfg.rebalance_min_amount} sat would cost more than hive_rebalance_tolerance "
                                     f"{cfg.hive_rebalance_tolerance} sat")
    return fit, None


def last_hop_ppm(listchannels: Mapping, chunk_sat: int) -> dict[str, int]:
    """Per peer, what it charges on its channels towards us (`listchannels destination=<us>`), in ppm of a
    chunk (base fee included); the dearest of its channels, so the estimate errs high."""
    out: dict[str, int] = {}
    for ch in listchannels.get("channels", []):
        ppm = int(ch.get("fee_per_millionth", 0)) + math.ceil(
            int(ch.get("base_fee_millisatoshi", 0)) * PPM / (max(1, chunk_sat) * MSAT_PER_SAT))
        out[ch["source"]] = max(out.get(ch["source"], 0), ppm)
    return out


# ----------------------------------------------------------------------------------------------
# Sources


def _source_block(ch: ChannelEcon, peer_ratio: float, active_jobs: Collection[str],
                  unavailable: Collection[str], cfg: RebalanceConfig) -> tuple[str, str] | None:
    """(code, reason) when `ch` may not be drained for anyone this cycle."""
    if not ch.view.is_normal or ch.view.capacity_msat <= 0:
        return "not_normal", f"channel state {ch.view.state}"
    if not may_drain(ch.policy):
        return "policy_no_drain", f"rebalance mode {ch.policy.rebalance_mode.value} forbids draining"
    if ch.scid in active_jobs:
        return "job_running", "channel is the destination of a running job"
    if ch.scid in unavailable:
        return "sling_refuses", "sling would refuse it as a candidate (its exception list or another pull job)"
    if not ch.view.peer_connected:
        return "disconnected", "peer disconnected"
    if ch.flow is FlowClass.SOURCE and ch.view.local_ratio < SOURCE_PROTECT_RATIO:
        return "source_protected", f"draining channel at {ch.view.local_ratio:.2f} < {SOURCE_PROTECT_RATIO}"
    if peer_ratio <= cfg.high_liquidity_threshold and not _stagnant(ch, cfg):
        return "not_surplus", (f"peer local ratio {peer_ratio:.2f} <= high threshold "
                               f"{cfg.high_liquidity_threshold} and channel not idle")
    return None


def _stagnant(ch: ChannelEcon, cfg: RebalanceConfig) -> bool:
    """Balanced and idle: its liquidity earns nothing where it is."""
    low, high = STAGNANT_RATIO
    turnover = _daily_out_sat(ch, cfg) / (ch.view.capacity_msat / MSAT_PER_SAT)
    return low <= ch.view.local_ratio <= high and turnover < STAGNANT_TURNOVER


@attrs.frozen
class _Source:
    econ: ChannelEcon
    opp_ppm: float                       # source fee x chance the moved sats would have earned it


class _SourcePool:
    """The cycle's sources with their own figures computed once; per amount the usable ones sorted by
    opportunity cost, for _evaluate (the last amount asked is kept: a cycle's rejections are written out
    long after the cycle, and a cache of every amount would hold destinations x sources until the next)."""

    def __init__(self, pool: Sequence[ChannelEcon], cfg: RebalanceConfig):
        self.channels = pool
        self.spare_sat = [src.view.spendable_msat // MSAT_PER_SAT - _deplete_floor_sat(src.view) for src in pool]
        self.daily_out_sat = [_daily_out_sat(src, cfg) for src in pool]
        self.by_peer: dict[str, list[int]] = {}
        for i, src in enumerate(pool):
            self.by_peer.setdefault(src.peer_id, []).append(i)
        self._last: tuple[int, tuple[list[tuple[int, _Source]], list[int]]] | None = None

    def for_amount(self, amount_sat: int) -> tuple[list[tuple[int, _Source]], list[int]]:
        """(pool index, source) with enough spare, cheapest opportunity cost first; indices of the others."""
        if self._last is not None and self._last[0] == amount_sat:
            return self._last[1]
        usable: list[tuple[int, _Source]] = []
        short: list[int] = []
        for i, src in enumerate(self.channels):
            if self.spare_sat[i] < amount_sat:
                short.append(i)
            else:
                weight = _utilisation(self.daily_out_sat[i], amount_sat)
                usable.append((i, _Source(src, src.fee_ppm * weight)))
        usable.sort(key=lambda u: (u[1].opp_ppm, -u[1].econ.view.spendable_msat, u[1].econ.scid))
        self._last = (amount_sat, (usable, short))
        return usable, short


def _excluded(dest: ChannelEcon, pool: _SourcePool, peer_of: Mapping[str, str], now: float,
              cfg: RebalanceConfig) -> dict[int, tuple[str, str]]:
    """Pool indices `dest` may not be filled from, with why: its own peer's channels, and the channels of
    the peers it was drained for within pingpong_hours (ping-pong)."""
    window = cfg.pingpong_hours * 3600
    pingpong_peers = {peer_of.get(scid) for scid, at in dest.last_drained_for.items() if now - at < window}
    excluded: dict[int, tuple[str, str]] = {}
    for peer in pingpong_peers:
        for i in pool.by_peer.get(peer, ()) if peer is not None else ():
            excluded[i] = ("pingpong", f"destination was drained for this peer < {cfg.pingpong_hours} h ago")
    for i in pool.by_peer.get(dest.peer_id, ()):
        excluded[i] = ("same_peer", "same peer as the destination: moving between its channels earns nothing")
    return excluded


def _sources_for(dest: ChannelEcon, amount_sat: int, pool: _SourcePool, peer_of: Mapping[str, str],
                 now: float, cfg: RebalanceConfig) -> tuple[list[_Source], list[Rejection]]:
    """Sources usable for this destination and amount, cheapest opportunity cost first; the others are
    rejected in pool order: same peer, then ping-pong (`dest` drained within pingpong_hours to fill a
    channel of the source's peer), then too little spendable above sling's deplete floor."""
    excluded = _excluded(dest, pool, peer_of, now, cfg)
    usable, short = pool.for_amount(amount_sat)
    rejected: list[Rejection] = []
    for i in sorted(excluded.keys() | set(short)) if excluded else short:
        code, reason = excluded.get(i) or ("insufficient_spendable",
                                           f"{pool.spare_sat[i]} sat above sling's deplete floor < {amount_sat} sat")
        rejected.append(Rejection(pool.channels[i].scid, Role.SOURCE, code, reason, dest.scid))
    return [src for i, src in usable if i not in excluded], rejected


@attrs.frozen
class _Priced:
    """A destination sized and waiting for the gate: what the sweep of _dearest_kept needs."""

    dest: ChannelEcon
    amount_sat: int
    inbound: InboundEstimate
    hive: bool
    util: float
    earn_ppm: float
    excluded: Collection[int]


def _dearest_kept(pool: _SourcePool, queries: Sequence[_Priced]) -> list[float | None]:
    """Per destination, the dearest opportunity cost (ppm) among the sources the gate keeps for it — usable
    (enough spare for its amount), not excluded, and `inbound + cost <= earnable` — or None when the gate
    keeps none: the same figure as max(s.opp_ppm for s in kept) in _economics, without a per-destination
    pass over the sources.

    A source's cost for amount A is fee x min(1, g / A) (g: its outbound demand over the sale horizon):
    fixed (its fee) once g / A >= 1, or nothing when g is 0; otherwise fee x g / A, so ordered by fee x g.
    Destinations are taken by decreasing amount; sources join as their spare reaches the amount and move to
    the fixed set when they saturate, each at most twice, in two sorted lists. A query looks up the gate's
    threshold in each list and checks the exact float cost of the few sources within a rounding margin of it
    (and the ones it excludes), so every answer equals the sort-and-scan's, bit for bit.
    """
    answers: list[float | None] = [None] * len(queries)
    fee = [src.fee_ppm for src in pool.channels]
    g = [d * SALE_HORIZON_DAYS for d in pool.daily_out_sat]           # as _utilisation computes it
    by_spare = sorted(range(len(fee)), key=lambda i: -pool.spare_sat[i])
    by_demand = sorted((i for i in range(len(fee)) if g[i] > 0), key=lambda i: -g[i])
    fixed, scaled = SortedList(), SortedList()               # (cost, i); (fee x g, i)
    joined: list[bool] = [False] * len(fee)
    n_joined = n_saturated = 0
    order = sorted(range(len(queries)), key=lambda q: -queries[q].amount_sat)
    for q in order:
        query = queries[q]
        amount = query.amount_sat
        if amount <= 0:                                      # no amount: every cost is 0 (_utilisation)
            answers[q] = _dearest_by_scan(pool, query)
            continue
        while n_saturated < len(by_demand) and g[by_demand[n_saturated]] / amount >= 1.0:
            i = by_demand[n_saturated]
            n_saturated += 1
            if joined[i]:
                scaled.remove((fee[i] * g[i], i))
                fixed.add((fee[i] * _utilisation(pool.daily_out_sat[i], amount), i))
        while n_joined < len(by_spare) and pool.spare_sat[by_spare[n_joined]] >= amount:
            i = by_spare[n_joined]
            n_joined += 1
            joined[i] = True
            if g[i] <= 0 or g[i] / amount >= 1.0:
                fixed.add((fee[i] * _utilisation(pool.daily_out_sat[i], amount), i))
            else:
                scaled.add((fee[i] * g[i], i))
        best = None
        for keys, scale in ((fixed, 1), (scaled, amount)):
            found = _dearest_in(keys, scale, query, fee, pool)
            if found is not None and (best is None or found > best):
                best = found
        answers[q] = best
    return answers


def _dearest_in(keys: SortedList, scale: float, query: _Priced, fee: Sequence[int], pool: _SourcePool) -> float | None:
    """The highest exact cost that passes the gate among `keys` (cost x scale, index), not excluded.

    Keys above threshold + margin fail for sure; walking down from there, every source is checked exactly
    until one passes and the keys fall a margin below it (nothing lower can be dearer). The margin (1e-9
    relative) is far above the float rounding between a key and the exact cost (a few 1e-16)."""
    inbound, earn = query.inbound.ppm, query.earn_ppm
    margin = 1e-9 * (abs(earn) + abs(inbound) + 1.0)
    j = keys.bisect_right(((earn - inbound + margin) * scale, len(fee)))
    best = None
    while j > 0:
        j -= 1
        key, i = keys[j]
        if best is not None and key < (best - margin) * scale:
            break
        if i in query.excluded:
            continue
        cost = fee[i] * _utilisation(pool.daily_out_sat[i], query.amount_sat)
        if inbound + cost <= earn and (best is None or cost > best):
            best = cost
    return best


def _dearest_by_scan(pool: _SourcePool, query: _Priced) -> float | None:
    """The same answer by sorting and scanning this destination's sources (_sources_for, _economics)."""
    usable, _ = pool.for_amount(query.amount_sat)
    sources = [src for i, src in usable if i not in query.excluded]
    kept, _ = _gate(query.inbound.ppm, query.earn_ppm, sources, query.dest)
    return max((s.opp_ppm for s in kept), default=None)


# ----------------------------------------------------------------------------------------------
# Economics


@attrs.frozen
class _Economics:
    maxppm: int
    expected_fee_msat: int
    expected_income_msat: int
    loss_msat: int

    @property
    def profit_msat(self) -> int:
        return self.expected_income_msat - self.expected_fee_msat - self.loss_msat


def _earnable(dest: ChannelEcon, amount_sat: int, hive: bool, cfg: RebalanceConfig) -> tuple[float, float]:
    """(utilisation, earnable ppm): the destination's fee x utilisation (+ the hive allowance)."""
    amount_msat = amount_sat * MSAT_PER_SAT
    util = _utilisation(_daily_out_sat(dest, cfg), amount_sat)
    allowance_ppm = cfg.hive_rebalance_tolerance * MSAT_PER_SAT * PPM / amount_msat if hive else 0.0
    return util, dest.fee_ppm * util + allowance_ppm


def _gate(inbound_ppm: int, earn_ppm: float, sources: Sequence[_Source],
          dest: ChannelEcon) -> tuple[tuple[_Source, ...], list[Rejection]]:
    """rebalance-lnd's gate per source: route fee + source's lost fee <= earnable, in ppm of the amount.
    Sources come cheapest first, so the ones kept are a prefix."""
    n_kept = 0
    while n_kept < len(sources) and inbound_ppm + sources[n_kept].opp_ppm <= earn_ppm:
        n_kept += 1
    earnable = f"{earn_ppm:.0f}"
    rejected = [Rejection(s.econ.scid, Role.SOURCE, "lost_fee",
                          f"route {inbound_ppm} + lost {s.opp_ppm:.0f} ppm > earnable {earnable} ppm", dest.scid)
                for s in sources[n_kept:]]
    return tuple(sources[:n_kept]), rejected


def _priced(amount_sat: int, inbound_ppm: int, dest: ChannelEcon, util: float, earn_ppm: float,
            dearest_ppm: float) -> _Economics:
    """Expected (not maximum) fee for the profit; profit and maxppm use the dearest source kept, since
    sling may pick any of them."""
    amount_msat = amount_sat * MSAT_PER_SAT
    headroom = earn_ppm - dearest_ppm
    return _Economics(maxppm=int((inbound_ppm + headroom) // 2),
                      expected_fee_msat=_ceil_ppm(amount_msat, inbound_ppm),
                      expected_income_msat=int(amount_msat * util * dest.fee_ppm // PPM),
                      loss_msat=_ceil_ppm(amount_msat, dearest_ppm))


def _min_profit_msat(amount_sat: int, cfg: RebalanceConfig) -> int:
    if cfg.rebalance_min_profit_ppm > 0:
        return _ceil_ppm(amount_sat * MSAT_PER_SAT, cfg.rebalance_min_profit_ppm)
    return cfg.rebalance_min_profit * MSAT_PER_SAT


def _cap_room_msat(dest: ChannelEcon, budget: BudgetState, cfg: RebalanceConfig) -> int:
    """What may still be spent on `dest`: a share of its 30-day net earnings minus its 30-day spend."""
    net = max(0, dest.earned_30d_msat - dest.rebalance_spend_30d_msat)
    spent = budget.channel_spend_30d_msat.get(dest.scid, dest.rebalance_spend_30d_msat)
    return int(cfg.channel_cap_pct * net) - spent


def _economic_block(dest: ChannelEcon, amount_sat: int, econ: _Economics, hive: bool, budget: BudgetState,
                    cfg: RebalanceConfig) -> tuple[str, str] | None:
    """Profit threshold (or hive tolerance), a usable maxppm and the per-channel cap."""
    max_fee = _ceil_ppm(amount_sat * MSAT_PER_SAT, econ.maxppm)
    if econ.maxppm < 1:
        return "gate", "no fee room left for a route (maxppm < 1)"
    if hive:
        tolerance = cfg.hive_rebalance_tolerance * MSAT_PER_SAT
        if econ.profit_msat < -tolerance:
            return "hive_tolerance", f"expected loss {-econ.profit_msat} msat > tolerance {tolerance} msat"
        return None
    threshold = _min_profit_msat(amount_sat, cfg)
    if econ.profit_msat < threshold:
        return "below_min_profit", f"expected profit {econ.profit_msat} msat < minimum {threshold} msat"
    room = _cap_room_msat(dest, budget, cfg)
    if max_fee > room:
        return "channel_cap", (f"max fee {max_fee} msat > cap room {room} msat "
                               f"({cfg.channel_cap_pct:.0%} of 30-day net earnings less 30-day spend)")
    return None


def _sized(dest: ChannelEcon, inbound: InboundEstimate | None, cfg: RebalanceConfig) -> tuple[int, tuple[str, str] | None]:
    """The amount to move into a depleted destination, or why none."""
    if inbound is None:
        return 0, ("no_inbound_estimate", "no inbound fee estimate for the peer: fail closed")
    hive = dest.policy.strategy is Strategy.HIVE
    amount, why = _amount_sat(dest, hive, cfg)
    if not why and hive:
        amount, why = _fit_tolerance(amount, inbound, cfg)
    return amount, why


def _evaluate(dest: ChannelEcon, peer_ratio: float, inbound: InboundEstimate | None, pool: _SourcePool,
              peer_of: Mapping[str, str], budget: BudgetState, now: float,
              cfg: RebalanceConfig) -> tuple[Candidate | None, list[Rejection]]:
    """Size, source and price one depleted destination, with every source rejection (sorting and scanning
    its sources: find_candidates runs it for the chosen candidates and when the rejections are read)."""
    def reject(code: str, reason: str, extra: list[Rejection] | None = None) -> tuple[None, list[Rejection]]:
        return None, [*(extra or []), Rejection(dest.scid, Role.DESTINATION, code, reason)]

    amount, why = _sized(dest, inbound, cfg)
    if why:
        return reject(*why)
    assert inbound is not None
    hive = dest.policy.strategy is Strategy.HIVE
    sources, src_rejected = _sources_for(dest, amount, pool, peer_of, now, cfg)
    if not sources:
        return reject("no_sources", "no usable source for this amount", src_rejected)
    util, earn_ppm = _earnable(dest, amount, hive, cfg)
    kept, gate_rejected = _gate(inbound.ppm, earn_ppm, sources, dest)
    src_rejected += gate_rejected
    if not kept:
        code = "hive_tolerance" if hive else "gate"
        return reject(code, f"route {inbound.ppm} ppm + cheapest lost fee {sources[0].opp_ppm:.0f} ppm > "
                            f"fee {dest.fee_ppm} ppm x utilisation{' + hive tolerance' if hive else ''}",
                      src_rejected)
    econ = _priced(amount, inbound.ppm, dest, util, earn_ppm, max(s.opp_ppm for s in kept))
    why = _economic_block(dest, amount, econ, hive, budget, cfg)
    if why:
        return reject(*why, src_rejected)
    return _candidate(dest, peer_ratio, amount, inbound, econ, hive, tuple(s.econ.scid for s in kept), cfg), \
        src_rejected


def _candidate(dest: ChannelEcon, peer_ratio: float, amount_sat: int, inbound: InboundEstimate,
               econ: _Economics, hive: bool, source_scids: tuple[str, ...], cfg: RebalanceConfig) -> Candidate:
    max_fee = _ceil_ppm(amount_sat * MSAT_PER_SAT, econ.maxppm)
    kind = "hive push" if hive else "fill"
    reason = (f"{kind} {dest.scid} (peer at {peer_ratio:.0%}) with {amount_sat} sat: income "
              f"{econ.expected_income_msat} - route {econ.expected_fee_msat} ({inbound.ppm} ppm, {inbound.source}) "
              f"- lost source fee {econ.loss_msat} = {econ.profit_msat} msat; maxppm {econ.maxppm}, "
              f"reserve {max_fee} msat, {len(source_scids)} source(s)")
    return Candidate(dest_scid=dest.scid, dest_peer=dest.peer_id, source_scids=source_scids, amount_sat=amount_sat,
                     max_fee_msat=max_fee, maxppm=econ.maxppm, expected_fee_msat=econ.expected_fee_msat,
                     expected_income_msat=econ.expected_income_msat, expected_profit_msat=econ.profit_msat,
                     inbound_ppm=inbound.ppm, hive=hive,
                     reason=reason)


# ----------------------------------------------------------------------------------------------
# The cycle


def _node_block(budget: BudgetState, capital: CapitalState | None, active_jobs: Collection[str],
                cfg: RebalanceConfig) -> Rejection | None:
    """Reasons that stop the whole cycle before any channel is looked at."""
    ok, why = capital_ok(capital, cfg)
    if not ok:
        return Rejection("*", Role.NODE, "capital", why)
    if cfg.max_concurrent_jobs - len(active_jobs) <= 0:
        return Rejection("*", Role.NODE, "no_slots", f"{len(active_jobs)} jobs running (max {cfg.max_concurrent_jobs})")
    if budget.remaining_msat <= 0:
        return Rejection("*", Role.NODE, "budget_exhausted",
                         f"daily budget {budget.daily_budget_msat} msat: spent {budget.spent_24h_msat}, "
                         f"reserved {budget.reserved_msat}")
    return None


def _allocate(ranked: Sequence[Candidate], budget: BudgetState, slots: int,
              cfg: RebalanceConfig) -> tuple[list[Candidate], list[Rejection]]:
    """Walk the ranking: one job per peer, free slots, the shared daily budget and the hive push limit."""
    remaining = budget.remaining_msat
    hive_left = cfg.hive_daily_push_sats - budget.hive_pushed_24h_sat
    chosen: list[Candidate] = []
    rejected: list[Rejection] = []
    peers: set[str] = set()

    def reject(c: Candidate, code: str, reason: str) -> None:
        rejected.append(Rejection(c.dest_scid, Role.DESTINATION, code, reason))

    for c in ranked:
        if c.dest_peer in peers:
            reject(c, "peer_already_chosen", "another channel of this peer is filled this cycle")
        elif len(chosen) >= slots:
            reject(c, "no_slot", "all job slots taken by better candidates")
        elif c.max_fee_msat > remaining:
            reject(c, "budget", f"max fee {c.max_fee_msat} msat > remaining daily budget {remaining} msat")
        elif c.hive and c.amount_sat > hive_left:
            reject(c, "hive_daily_push", f"{c.amount_sat} sat > {hive_left} sat left of hive_daily_push_sats")
        else:
            chosen.append(c)
            peers.add(c.dest_peer)
            remaining -= c.max_fee_msat
            hive_left -= c.amount_sat if c.hive else 0
    return chosen, rejected


def find_candidates(channels: Sequence[ChannelEcon], inbound_estimates: Mapping[str, InboundEstimate],
                    budget: BudgetState, capital: CapitalState | None, active_jobs: Collection[str],
                    now: float, cfg: RebalanceConfig,
                    unavailable_sources: Collection[str] = frozenset()) -> tuple[list[Candidate], Rejections]:
    """The rebalance cycle's decision: candidates to start (best first) and every rejection with its reason.

    `inbound_estimates` is keyed by peer id, `active_jobs` holds the destination scids of our running jobs,
    `unavailable_sources` the scids sling refuses as candidates (sling-except-chan, the operator's own pull
    jobs). Ranked by expected profit; hive exemptions come after all profitable candidates.

    Near-linear in the channels: every destination is priced from its dearest kept source (_dearest_kept,
    one sweep for all), its source list and source rejections are built only for the chosen candidates and
    when the rejections are read (_evaluate, the per-destination sort and scan, gives the same decisions).
    """
    rejections = Rejections()
    blocked = _node_block(budget, capital, active_jobs, cfg)
    if blocked:
        rejections.append(blocked)
        return [], rejections
    ratios = _peer_ratios(channels)
    peer_of = {ch.scid: ch.peer_id for ch in channels}
    busy_peers = {peer_of[s] for s in active_jobs if s in peer_of}
    pool: list[ChannelEcon] = []
    for ch in channels:
        why = _source_block(ch, ratios.get(ch.peer_id, 0.0), active_jobs, unavailable_sources, cfg)
        if why:
            rejections.append(Rejection(ch.scid, Role.SOURCE, *why))
        else:
            pool.append(ch)
    sources = _SourcePool(pool, cfg)
    queries: list[_Priced] = []
    for ch in channels:
        ratio = ratios.get(ch.peer_id, 0.0)
        why = _destination_block(ch, ratio, busy_peers, now, cfg)
        if why:
            rejections.append(Rejection(ch.scid, Role.DESTINATION, *why))
            continue
        inbound = inbound_estimates.get(ch.peer_id)
        rejections.defer(lambda args=(ch, ratio, inbound, sources, peer_of, budget, now, cfg): _evaluate(*args)[1])
        amount, why = _sized(ch, inbound, cfg)
        if why or inbound is None:
            continue
        hive = ch.policy.strategy is Strategy.HIVE
        queries.append(_Priced(ch, amount, inbound, hive, *_earnable(ch, amount, hive, cfg),
                               excluded=_excluded(ch, sources, peer_of, now, cfg).keys()))
    evaluated: list[Candidate] = []
    for query, dearest in zip(queries, _dearest_kept(sources, queries)):
        if dearest is None:
            continue
        econ = _priced(query.amount_sat, query.inbound.ppm, query.dest, query.util, query.earn_ppm, dearest)
        if _economic_block(query.dest, query.amount_sat, econ, query.hive, budget, cfg) is None:
            evaluated.append(_candidate(query.dest, ratios.get(query.dest.peer_id, 0.0), query.amount_sat,
                                        query.inbound, econ, query.hive, (), cfg))
    ranked = sorted(evaluated, key=lambda c: (c.hive, -c.expected_profit_msat, c.dest_scid))
    chosen, rejected = _allocate(ranked, budget, cfg.max_concurrent_jobs - len(active_jobs), cfg)
    for r in rejected:
        rejections.append(r)
    by_scid = {ch.scid: ch for ch in channels}
    return [_with_sources(c, by_scid[c.dest_scid], ratios, inbound_estimates, sources, peer_of, budget, now, cfg)
            for c in chosen], rejections


def _with_sources(priced: Candidate, dest: ChannelEcon, ratios: Mapping[str, float],
                  inbound_estimates: Mapping[str, InboundEstimate], pool: _SourcePool, peer_of: Mapping[str, str],
                  budget: BudgetState, now: float, cfg: RebalanceConfig) -> Candidate:
    """A chosen candidate with its source list, from the per-destination evaluation; it must agree with the
    sweep's pricing, else nothing is started (fail closed)."""
    full, _ = _evaluate(dest, ratios.get(dest.peer_id, 0.0), inbound_estimates.get(dest.peer_id), pool, peer_of,
                        budget, now, cfg)
    if full is None or attrs.evolve(full, source_scids=(), reason="") != attrs.evolve(priced, reason=""):
        raise RuntimeError(f"rebalance pricing disagrees for {dest.scid}: {priced} vs {full}: nothing started")
    return full


def sling_once_params(candidate: Candidate, cfg: RebalanceConfig) -> dict[str, Any]:
    """Keyword params for `sling-once`: one rebalance of the whole amount (onceamount = amount), so sling's
    spend is bounded by amount x maxppm, the reservation. Sources are an explicit list; no outppm (sling
    would add others); no target (sling-once refuses one)."""
    return {
        "scid": candidate.dest_scid,
        "direction": "pull",
        "amount": candidate.amount_sat,
        "onceamount": candidate.amount_sat,
        "maxppm": candidate.maxppm,
        "candidates": list(candidate.source_scids),
        "maxhops": cfg.sling_max_hops,
        "depleteuptopercent": SLING_DEPLETE_PCT,
        "depleteuptoamount": SLING_DEPLETE_SAT,
        "paralleljobs": SLING_PARALLEL_JOBS,
    }


# ----------------------------------------------------------------------------------------------
# Sling job lifecycle


@attrs.frozen
class SlingStats:
    """Cumulative counters from `sling-stats {scid, json: true}` (over sling's time window)."""

    spent_sat: int = 0                   # successes_in_time_window.total_spent_sats
    moved_sat: int = 0                   # successes_in_time_window.total_amount_sats
    successes: int = 0                   # successes_in_time_window.total_rebalances
    tried_failed: int = 0                # failures_in_time_window.total_rebalances_tried


def _count(section: Mapping[str, Any], key: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"sling-stats: {key} is {value!r}, expected a non-negative integer")
    return value


def parse_sling_stats(obj: Mapping[str, Any]) -> SlingStats:
    """Parse per-scid sling-stats JSON; a null section means no entries. Bad shapes raise ValueError."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"sling-stats: expected an object, got {type(obj).__name__}")
    ok = obj.get("successes_in_time_window") or {}
    failed = obj.get("failures_in_time_window") or {}
    return SlingStats(
        spent_sat=_count(ok, "total_spent_sats") if ok else 0,
        moved_sat=_count(ok, "total_amount_sats") if ok else 0,
        successes=_count(ok, "total_rebalances") if ok else 0,
        tried_failed=_count(failed, "total_rebalances_tried") if failed else 0,
    )


class JobStatus(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    BUDGET_STOPPED = "budget_stopped"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class JobAction(str, enum.Enum):
    CONTINUE = "continue"
    STOP_SUCCESS = "stop_success"
    STOP_BUDGET = "stop_budget"
    STOP_TIMEOUT = "stop_timeout"
    STOP_FAILED = "stop_failed"


_STATUS_OF = {
    JobAction.CONTINUE: JobStatus.RUNNING,
    JobAction.STOP_SUCCESS: JobStatus.SUCCEEDED,
    JobAction.STOP_BUDGET: JobStatus.BUDGET_STOPPED,
    JobAction.STOP_TIMEOUT: JobStatus.TIMED_OUT,
    JobAction.STOP_FAILED: JobStatus.FAILED,
}
_ACTION_OF = {status: action for action, status in _STATUS_OF.items()}


@attrs.frozen
class JobRecord:
    """A sling job this plugin started; persisted in our registry so restarts can reconcile it."""

    job_id: str
    scid: str
    started_at: float
    amount_sat: int                      # what we set out to move
    reserved_msat: int
    initial_local_msat: int
    maxppm: int
    baseline: SlingStats                 # sling-stats at start; sling's counters are cumulative
    status: JobStatus = JobStatus.RUNNING
    spent_msat: int = 0
    moved_msat: int = 0
    failed_attempts: int = 0
    last_progress_at: float | None = None


def new_job(job_id: str, candidate: Candidate, baseline: SlingStats, local_msat: int, now: float) -> JobRecord:
    """The registry record for a job about to be started from `candidate`."""
    return JobRecord(job_id=job_id, scid=candidate.dest_scid, started_at=now, amount_sat=candidate.amount_sat,
                     reserved_msat=candidate.max_fee_msat, initial_local_msat=local_msat,
                     maxppm=candidate.maxppm, baseline=baseline, last_progress_at=now)


def _progress(job: JobRecord, stats: SlingStats) -> tuple[int, int, int, int] | None:
    """(spent msat, moved msat, successes, failed attempts) since start; None when counters went back."""
    base = job.baseline
    deltas = (stats.spent_sat - base.spent_sat, stats.moved_sat - base.moved_sat,
              stats.successes - base.successes, stats.tried_failed - base.tried_failed)
    if min(deltas) < 0:
        return None
    spent, moved, ok, failed = deltas
    return spent * MSAT_PER_SAT, moved * MSAT_PER_SAT, ok, failed


def book_final(job: JobRecord, stats: SlingStats) -> JobRecord:
    """What a stopped job cost, from sling-stats read after it stopped: polls may have been missed (lost
    answers) while sling went on spending. Never less than already booked; counters that went back
    below the baseline book the full reservation."""
    progress = _progress(job, stats)
    if progress is None:
        return attrs.evolve(job, spent_msat=max(job.spent_msat, job.reserved_msat))
    spent, moved, _successes, failed = progress
    return attrs.evolve(job, spent_msat=max(job.spent_msat, spent), moved_msat=max(job.moved_msat, moved),
                        failed_attempts=max(job.failed_attempts, failed))


def final_status(job: JobRecord) -> JobRecord:
    """A job that ends running or failed is named by what sling's final counters say: succeeded when it moved
    its amount (a once-job that finished before the poll that would have seen it, a job stopped at start-up)."""
    if job.status not in (JobStatus.RUNNING, JobStatus.FAILED):
        return job
    done = job.moved_msat >= job.amount_sat * MSAT_PER_SAT
    return attrs.evolve(job, status=JobStatus.SUCCEEDED if done else JobStatus.FAILED)


def job_step(job: JobRecord, stats: SlingStats | None, local_msat_now: int, now: float,
             cfg: RebalanceConfig) -> tuple[JobRecord, JobAction, str]:
    """Advance a job from fresh sling-stats. Success is sling's own success count and amount.

    The local balance is reported for the operator only: organic routing moves it too (defect 5 fixed).
    Without readable stats the job is stopped at once (fail closed): sling's target does not bound it (a
    balanced job only idles and pulls again when forwards drain the channel) and nothing else does, so a job
    whose spend we cannot see must not go on. Its spend is booked from the stats read after the stop.
    """
    if job.status is not JobStatus.RUNNING:
        return job, _ACTION_OF[job.status], f"job already {job.status.value}"
    local_note = f"local {local_msat_now - job.initial_local_msat:+d} msat since start (not used to judge)"
    timed_out = now - job.started_at >= cfg.sling_job_timeout_seconds
    if stats is None:
        if timed_out:
            return _finish(job, JobAction.STOP_TIMEOUT, f"timed out without readable sling-stats; {local_note}")
        return _finish(job, JobAction.STOP_FAILED, f"no readable sling-stats: its spend cannot be seen, stopping "
                                                   f"it (fail closed); {local_note}")
    progress = _progress(job, stats)
    if progress is None:
        job = attrs.evolve(job, spent_msat=max(job.spent_msat, job.reserved_msat))
        return _finish(job, JobAction.STOP_FAILED,
                       "sling-stats counters went below the baseline (window pruned): booking the full reservation")
    spent, moved, successes, failed = progress
    moved_more = moved > job.moved_msat
    job = attrs.evolve(job, spent_msat=spent, moved_msat=moved, failed_attempts=failed,
                       last_progress_at=now if moved_more else job.last_progress_at)
    summary = (f"moved {moved}/{job.amount_sat * MSAT_PER_SAT} msat in {successes} rebalance(s), "
               f"spent {spent}/{job.reserved_msat} msat, {failed} failed attempt(s); {local_note}")
    return _decide(job, successes, timed_out, summary)


def _decide(job: JobRecord, successes: int, timed_out: bool, summary: str) -> tuple[JobRecord, JobAction, str]:
    if job.spent_msat > job.reserved_msat:
        return _finish(job, JobAction.STOP_BUDGET, f"overspent reservation: {summary}")
    if job.moved_msat >= job.amount_sat * MSAT_PER_SAT:
        return _finish(job, JobAction.STOP_SUCCESS, f"target reached: {summary}")
    if job.spent_msat >= job.reserved_msat:
        return _finish(job, JobAction.STOP_BUDGET, f"reservation used up: {summary}")
    if timed_out:
        return _finish(job, JobAction.STOP_TIMEOUT, f"timed out{' with partial progress' if job.moved_msat else ''}: "
                                                    f"{summary}")
    if successes == 0 and job.failed_attempts >= JOB_MAX_FAILED_ATTEMPTS:
        return _finish(job, JobAction.STOP_FAILED, f"no success after {job.failed_attempts} attempts: {summary}")
    return job, JobAction.CONTINUE, f"running: {summary}"


def _finish(job: JobRecord, action: JobAction, reason: str) -> tuple[JobRecord, JobAction, str]:
    return attrs.evolve(job, status=_STATUS_OF[action]), action, reason


def stop_spliced(job: JobRecord, new_scid: str, step_reason: str) -> tuple[JobRecord, JobAction, str]:
    """A job job_step would go on with, whose channel a splice gave a new short channel id: sling knows the job
    by the old one and no longer finds that channel ("Channel not found", it stops the task itself), so it is
    stopped and booked under the old one (fail closed: a job is never carried over to another name), and the
    channel is free under the new one (docs/rebalancing.md)."""
    return _finish(job, JobAction.STOP_FAILED, f"channel spliced, now {new_scid}: sling knows this job by "
                                               f"{job.scid} and stops it; stopped and booked; {step_reason}")


@attrs.frozen
class Settlement:
    """What to book as spent and what to give back to the daily budget when a job ends."""

    book_msat: int
    release_msat: int
    overspend_msat: int


def settle(reserved_msat: int, spent_msat: int) -> Settlement:
    """Book what sling actually spent (even above the reservation) and release the rest."""
    spent = max(0, spent_msat)
    return Settlement(book_msat=spent, release_msat=max(0, reserved_msat - spent),
                      overspend_msat=max(0, spent - reserved_msat))
