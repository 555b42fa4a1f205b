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
class StatusRequest:
    req_id: int
    scid: str | None = None


@attrs.frozen
class FeeDebugRequest:
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
    floor_ppm: int
    vegas_multiplier: float
    config: Any


@attrs.frozen
class Retire:
    now: int


@attrs.frozen
class ChannelStatusQuery:
    req_id: int


@attrs.frozen
class Crash:
    """Makes an actor raise (the coordinator itself when scid is None): proves crash containment."""
    scid: str | None = None
    text: str = "induced crash"


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
class LogLine:
    level: str
    text: str


@attrs.frozen
class ActorRestarted:
    scid: str
    error: str
    restarts: int
