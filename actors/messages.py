"""Every message that crosses an actor boundary, as frozen attrs classes, in one file.

Direction is noted per class: runtime → actor (inbound), actor → actor, actor → runtime (outbound).
Time always arrives inside a message (`now`/`at`); actors never read the clock.
"""
from __future__ import annotations

from typing import Any

import attrs

from revops.model import ChannelView, FeeDecision, Forward, Policy


# --- runtime → coordinator -------------------------------------------------------------------
@attrs.frozen
class Start:
    """Bootstrap: configuration, persisted actor states and flow buckets, and the channel list."""
    now: int
    config: Any
    node_id: str
    channels: tuple[ChannelView, ...]
    actor_states: dict[str, dict]          # scid → persisted ChannelActor state
    buckets: dict[str, list[dict]]         # scid → daily flow buckets (store.daily_buckets)
    routed_out: frozenset[str]             # scids that ever routed outbound (virgin amnesty)
    policies: tuple[Policy, ...]
    health: dict[str, dict]
    feerate_samples: tuple[tuple[int, float], ...]
    sling_jobs: tuple = ()                 # ((JobRecord, extra), ...) our sling job registry
    clboss_owned: dict = attrs.field(factory=dict)   # peer → when we added its clboss lnfee tag
    experiment: Any = None                 # the latest revops.experiment.Experiment (None = never one)


@attrs.frozen
class Tick:
    now: int


@attrs.frozen
class ForwardSettled:
    """A final forward seen for the first time (the runtime de-duplicates against the store)."""
    forward: Forward


@attrs.frozen
class PeerConnection:
    peer_id: str
    connected: bool
    at: int


@attrs.frozen
class BlockAdded:
    height: int
    at: int


@attrs.frozen
class ChannelsChanged:
    """Something about the channel set changed (opened, closed, state change): refresh it."""
    at: int
    reason: str


@attrs.frozen
class ConfigChanged:
    config: Any


@attrs.frozen
class PoliciesChanged:
    policies: tuple[Policy, ...]


@attrs.frozen
class HealthChanged:
    health: dict[str, dict]


@attrs.frozen
class ExperimentChanged:
    """An experiment started or stopped (revenue-experiment): the coordinator applies its arms."""
    experiment: Any


@attrs.frozen
class StatusRequest:
    req_id: int
    scid: str | None = None


@attrs.frozen
class IoResult:
    """The answer to an IoRequest, delivered to the actor that asked."""
    req_id: int
    tag: str
    result: Any = None
    error: dict | None = None   # {"code", "message"} from lightningd, or {"message"} for transport faults
    context: Any = None


# --- coordinator → channel actor ---------------------------------------------------------------
@attrs.frozen
class ChannelInit:
    view: ChannelView
    state: dict | None
    buckets: list[dict]
    routed_out: bool
    policy: Policy
    config: Any
    now: int
    runtime: Any


@attrs.frozen
class ChannelUpdate:
    view: ChannelView
    now: int


@attrs.frozen
class PolicyUpdate:
    policy: Policy


@attrs.frozen
class FeeCycle:
    now: int
    floor_ppm: int                    # the node's economic floor (chain costs × Vegas), before stall premium
    vegas_multiplier: float
    config: Any
    chain: Any = None                 # fees.ChainCosts, for a channel-specific floor (stall premium)
    earned_30d_msat: int | None = None
    rebalance_cost_msat: int | None = None   # max(our ledger, bookkeeper) over 30 days; None = unknown
    open_cost_msat: int | None = None        # from bookkeeper; None = unknown
    figures_at: int | None = None            # when the 30-day figures were read from the store
    anchor_ppm: int | None = None            # going rate toward the channel's peer (revops/anchor.py)
    refill_ppm: int | None = None            # cost of routing into the peer, the rebalancer's estimate
    control_ppm: int | None = None           # the live experiment's control arm holds this fee (None = managed)
    home_ppm: int | None = None              # the node's own rate, when gossip shows no going rate toward the peer
    view: ChannelView | None = None          # the channel in this cycle's listpeerchannels (a ChannelUpdate first)
    econ_req: int | None = None              # the rebalance cycle of the same Tick asks too: an EconQuery first


@attrs.frozen
class Retire:
    now: int


@attrs.frozen
class FanOut:
    """coordinator → itself: the rest of a fan-out to the channel actors, (address, message) in order, sent a
    chunk at a time (CoordinatorActor.fan_out)."""
    messages: list


@attrs.frozen
class Flush:
    """A clean stop: every channel actor writes the checkpoint it put off (actors/channel.py)."""


@attrs.frozen
class ChannelStatusQuery:
    req_id: int


@attrs.frozen
class Crash:
    """Makes an actor raise (the coordinator itself when scid is None): proves crash containment.
    With `silent`, the channel actor is stopped instead and its address kept: it never answers again
    (proves every fan-out and cycle ends by its deadline)."""
    scid: str | None = None
    text: str = "induced crash"
    silent: bool = False


# --- channel actor → coordinator --------------------------------------------------------------
@attrs.frozen
class ChannelStatus:
    req_id: int
    scid: str
    status: dict


# --- actor → runtime (outbound) ---------------------------------------------------------------
@attrs.frozen
class IoRequest:
    """Please run this lightningd/plugin call in the io pool and send me an IoResult."""
    req_id: int
    method: str
    params: dict | list | None
    tag: str
    reply_to: Any
    context: Any = None


@attrs.frozen
class PersistState:
    scid: str
    peer_id: str
    state: dict


@attrs.frozen
class PersistFeerate:
    at: int
    sat_per_vb: float


@attrs.frozen
class RecordDecision:
    decision: FeeDecision
    outcome: str            # applied | held | failed | dry_run


@attrs.frozen
class ChannelRetired:
    scid: str
    at: int


@attrs.frozen
class RpcReply:
    req_id: int
    result: Any = None
    error: str | None = None


@attrs.frozen
class QuarantineState:
    """channel actor → runtime: its stored state no longer structures; keep it aside (the actor starts fresh)."""
    scid: str
    peer_id: str
    state: Any
    error: str
    now: int


@attrs.frozen
class ChannelDirectory:
    """coordinator → runtime: every channel lightningd lists (scid → peer) and every peer with a channel;
    the RPC layer refuses unknown channels and peers by name with it."""
    channels: dict[str, str]
    peers: frozenset[str]
    channel_ids: dict[str, str] = attrs.field(factory=dict)   # scid → channel_id (a splice changes the scid)


@attrs.frozen
class RebuildFigures:
    """channel actor → runtime, after a crash: its forward-derived figures from the store (the checkpoint
    restored predates the forwards counted since)."""
    scid: str
    window_start: int
    reply_to: Any


@attrs.frozen
class StoredFigures:
    """runtime → channel actor: the answer to RebuildFigures, as of `now` (every stored forward included)."""
    window_start: int
    window_fees_msat: int
    window_forwards: int
    buckets: list[dict]
    now: int
    update_times: tuple[int, ...] = ()    # fee broadcasts recorded in the last 24 h (gossip budget)


@attrs.frozen
class LogLine:
    level: str
    text: str


@attrs.frozen
class WaitExpired:
    """A bounded wait (revops/waits.py) reached its deadline: logged and counted by `what`."""
    what: str
    missing: tuple[str, ...]
    waited: int
    text: str


@attrs.frozen
class ActorRestarted:
    scid: str
    error: str
    restarts: int


# --- rebalancing -------------------------------------------------------------------------------
@attrs.frozen
class LedgerQuery:
    """coordinator → runtime: budget figures and per-channel economics from the store."""
    req_id: int
    now: int
    reply_to: Any


@attrs.frozen
class LedgerFigures:
    """runtime → coordinator: the answer to LedgerQuery."""
    req_id: int
    budget: Any                       # rebalance.BudgetState
    earned_30d: dict[str, int]
    settled_spend_30d: dict[str, int]
    history_ppm: dict[str, list[int]]
    last_success: dict[str, int]
    error: str | None = None
    drained: dict = attrs.field(factory=dict)     # source scid → {dest scid: when} (rebalances history)
    node_ppm: int | None = None       # what the node's settled forwards paid, 30 days (ledger.earnings_30d)


@attrs.frozen
class ReserveBudget:
    """coordinator → runtime: reserve atomically (daily budget + channel cap) before a job starts."""
    req_id: int
    res_id: str
    scid: str
    amount_msat: int
    cap_msat: int | None
    now: int
    reply_to: Any
    hive_sat: int = 0                 # sats this job pushes into a hive peer (counts against the daily cap)


@attrs.frozen
class ReserveResult:
    req_id: int
    res_id: str
    ok: bool
    reason: str


@attrs.frozen
class ReleaseBudget:
    res_id: str
    now: int


@attrs.frozen
class EconQuery:
    """coordinator → channel actor: a snapshot of what the rebalancer needs."""
    req_id: int
    now: int


@attrs.frozen
class ChannelEconReply:
    req_id: int
    scid: str
    data: dict | None                 # None when the actor has no flow analysis yet


@attrs.frozen
class RebalanceOutcome:
    """coordinator → channel actor: a job into this channel ended."""
    scid: str
    success: bool
    now: int


@attrs.frozen
class ExecutorInit:
    config: Any
    runtime: Any
    jobs: tuple                       # ((JobRecord, extra dict), ...) from the sling_jobs registry
    now: int
    sling_ok: bool


@attrs.frozen
class StartJob:
    candidate: Any                    # rebalance.Candidate
    res_id: str
    local_msat: int
    kind: str                         # auto | manual
    now: int
    rpc_req_id: int | None = None


@attrs.frozen
class PollJobs:
    now: int
    config: Any


@attrs.frozen
class JobsChanged:
    """executor → coordinator: the destination scids of our jobs (the first one: the executor is ready)."""
    active: dict[str, dict]


@attrs.frozen
class JobSpliced:
    """coordinator → executor: a splice gave a job's channel a new short channel id. Sling knows the job by
    the old one (and stops it itself, "Channel not found"): it is stopped and booked under the old one."""
    old: str
    new: str


@attrs.frozen
class JobEnded:
    """executor → coordinator: forwarded to the channel actor's failure counters."""
    scid: str
    success: bool
    now: int


@attrs.frozen
class SaveJob:
    """executor → runtime: upsert our registry row (delete=True removes it), then send `then` — only if the
    write committed; if it failed, `then` is answered with a definite error instead (nothing sent)."""
    job: Any                          # rebalance.JobRecord
    extra: dict
    now: int
    delete: bool = False
    then: Any = None                  # IoRequest | None


@attrs.frozen
class SettleJob:
    """executor → runtime: book the real spend, release the rest, write the rebalances history row."""
    res_id: str
    job: Any
    extra: dict
    status: str
    reason: str
    now: int


@attrs.frozen
class ManualRebalance:
    """rpc → coordinator: revenue-rebalance."""
    req_id: int
    from_channel: str
    to_channel: str
    amount_sat: int
    max_fee_sats: int | None
    force: bool
    now: int


@attrs.frozen
class RebalanceDebugRequest:
    req_id: int


@attrs.frozen
class RpcFailure:
    """actor → runtime: answer an RPC with a JSON-RPC error (code, message)."""
    req_id: int
    message: str
    code: int = -32000


# --- cl-hive (docs/hive.md) ----------------------------------------------------------------------
@attrs.frozen
class HiveMembership:
    """rpc → coordinator → the peer's channel actors: cl-hive set strategy hive (joined) or lifted it (left)."""
    peer_id: str
    member: bool
    reason: str
    now: int


@attrs.frozen
class HivePush:
    """coordinator → the channel actors of a push: cl-hive's revenue-rebalance into a hive peer, and the verdict."""
    to_channel: str
    from_channel: str
    amount_sat: int
    max_fee_sats: int | None
    accepted: bool
    reason: str
    now: int


@attrs.frozen
class ManualFee:
    """runtime → coordinator → channel actor: revenue-set-fee (answered with RpcReply or RpcFailure)."""
    req_id: int
    scid: str
    fee_ppm: int
    force: bool
    now: int


# --- the clboss hand-off (actors/clboss.py, revops/clboss_sync.py) ----------------------------------
@attrs.frozen
class ClbossInit:
    """coordinator → clboss actor: start reconciling; `owned` is what we told clboss, as persisted."""
    config: Any
    runtime: Any
    owned: dict[str, int]                  # peer → when we added its lnfee
    now: int


@attrs.frozen
class ClbossDesired:
    """coordinator → clboss actor: the peers whose fees we set now."""
    priced: frozenset[str]


@attrs.frozen
class ClbossSeen:
    """runtime → clboss actor (through the coordinator): clboss started or stopped (plugin_started /
    plugin_stopped), or a probe found it answering or not."""
    available: bool
    source: str


@attrs.frozen
class ClbossOwned:
    """clboss actor → runtime: persist the peers whose lnfee we added (written before the calls that add)."""
    owned: dict[str, int]


@attrs.frozen
class ClbossReport:
    """clboss actor → runtime: the hand-off's state for revenue-clboss-status and revenue-status."""
    report: dict
