"""Operator policies per peer or channel: parsing of `revenue-policy`, merging, effective policy.

Pure logic: the store reads and writes Policy rows and the RPC layer turns PolicyError into a JSON-RPC
error naming the field. A command is fully validated before anything is merged, so nothing is half-applied.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import attrs

from revops import params
from revops.model import Policy, RebalanceMode, Strategy
from revops.params import shown

ACTIONS: tuple[str, ...] = ("list", "get", "set", "delete", "tag", "untag", "find")
# Reference order of the RPC parameters (positional binding), then our keyword extras.
PARAMS: tuple[str, ...] = ("action", "peer_id", "strategy", "rebalance", "fee_ppm", "tag",
                           "channel_id", "fee_min_ppm", "fee_max_ppm", "expires_in_hours")
MAX_FEE_PPM = 100_000
MAX_EXPIRY_HOURS = 720
MAX_TAGS = 32

_PEER_RE = re.compile(r"0[23][0-9a-f]{64}")
_SCID_RE = re.compile(r"([0-9]{1,8})([x:])([0-9]{1,8})\2([0-9]{1,5})")
_TAG_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class PolicyError(ValueError):
    """A bad revenue-policy input; names the field and, where finite, the allowed values."""

    def __init__(self, field: str, message: str, allowed: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.allowed = tuple(allowed) if allowed is not None else None


# --- single-value parsers ---

def validate_peer_id(s: Any) -> str:
    """A node id: 66 hex characters starting 02/03, returned lowercase."""
    norm = s.strip().lower() if isinstance(s, str) else None
    if norm is None or not _PEER_RE.fullmatch(norm):
        raise PolicyError("peer_id", f"Invalid peer_id: {shown(s)} (expected 66 hex characters starting with 02 or 03)")
    return norm


def validate_scid(s: Any) -> str:
    """A short channel id as BxTxO or B:T:O, returned as BxTxO."""
    m = _SCID_RE.fullmatch(s.strip()) if isinstance(s, str) else None
    if m is None or int(m[1]) >= 1 << 24 or int(m[3]) >= 1 << 24 or int(m[4]) >= 1 << 16:
        raise PolicyError("channel_id", f"Invalid channel_id: {shown(s)} (expected a short channel id "
                                        f"like 103x2x0 or 103:2:0)")
    return f"{int(m[1])}x{int(m[3])}x{int(m[4])}"


def _parse_enum(field: str, enum_cls: type[enum.Enum], v: Any) -> Any:
    allowed = [e.value for e in enum_cls]
    if isinstance(v, enum_cls):
        return v
    if isinstance(v, str) and v.strip().lower() in allowed:
        return enum_cls(v.strip().lower())
    raise PolicyError(field, f"Invalid {field} {shown(v)}. Valid: {allowed}", allowed)


def parse_strategy(v: Any) -> Strategy:
    return _parse_enum("strategy", Strategy, v)


def parse_rebalance_mode(v: Any) -> RebalanceMode:
    return _parse_enum("rebalance", RebalanceMode, v)


def _parse_number(field: str, v: Any, lo: float, hi: float, integer: bool) -> float:
    """A number (JSON number or numeric string) in [lo, hi]; bools and, if integer, fractions rejected."""
    kind = "an integer" if integer else "a number"
    try:
        n = params.to_int(v) if integer else params.to_float(v)
    except ValueError:
        n = None
    if n is None or not lo <= n <= hi:
        raise PolicyError(field, f"{field} must be {kind} in [{lo:g}, {hi:g}], got {shown(v)}")
    return n


def parse_fee_ppm(field: str, v: Any) -> int:
    """A fee rate in ppm: integer 0–100,000."""
    return int(_parse_number(field, v, 0, MAX_FEE_PPM, integer=True))


def parse_tag(v: Any) -> str:
    """A tag: 1–64 characters of [A-Za-z0-9_.:-]."""
    if not isinstance(v, str) or not _TAG_RE.fullmatch(v):
        raise PolicyError("tag", f"Invalid tag {shown(v)}: 1-64 characters of A-Z a-z 0-9 _ . : -")
    return v


def parse_expires_in_hours(v: Any) -> float:
    """Hours until the policy expires, 0–720; 0 removes an expiry."""
    return _parse_number("expires_in_hours", v, 0, MAX_EXPIRY_HOURS, integer=False)


def expires_at(hours: float, now: int) -> int | None:
    """Absolute expiry (unix seconds) for a relative one; 0 hours = never."""
    return now + round(hours * 3600) if hours > 0 else None


# --- the command ---

@attrs.frozen
class PolicyCommand:
    """A validated revenue-policy call. None = not given (set changes only given fields)."""

    action: str
    now: int
    peer_id: str | None = None
    channel_id: str | None = None
    strategy: Strategy | None = None
    rebalance_mode: RebalanceMode | None = None
    fee_ppm_target: int | None = None
    fee_min_ppm: int | None = None
    fee_max_ppm: int | None = None
    expires_in_hours: float | None = None
    tag: str | None = None

    @property
    def expires_at(self) -> int | None:
        return None if self.expires_in_hours is None else expires_at(self.expires_in_hours, self.now)


@attrs.frozen
class _Param:
    parse: Callable[[Any], Any]
    attr: str                      # PolicyCommand attribute


_PARAM_TABLE: dict[str, _Param] = {
    "peer_id": _Param(validate_peer_id, "peer_id"),
    "channel_id": _Param(validate_scid, "channel_id"),
    "strategy": _Param(parse_strategy, "strategy"),
    "rebalance": _Param(parse_rebalance_mode, "rebalance_mode"),
    "fee_ppm": _Param(lambda v: parse_fee_ppm("fee_ppm", v), "fee_ppm_target"),
    "fee_min_ppm": _Param(lambda v: parse_fee_ppm("fee_min_ppm", v), "fee_min_ppm"),
    "fee_max_ppm": _Param(lambda v: parse_fee_ppm("fee_max_ppm", v), "fee_max_ppm"),
    "expires_in_hours": _Param(parse_expires_in_hours, "expires_in_hours"),
    "tag": _Param(parse_tag, "tag"),
}

_SET_FIELDS = ("strategy", "rebalance", "fee_ppm", "fee_min_ppm", "fee_max_ppm", "expires_in_hours")


@attrs.frozen
class _ActionSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    usage: str


_ACTIONS: dict[str, _ActionSpec] = {
    "list": _ActionSpec((), (), "revenue-policy list"),
    "get": _ActionSpec(("peer_id",), ("channel_id",), "revenue-policy get <peer_id> [channel_id=<scid>]"),
    "set": _ActionSpec(("peer_id",), ("channel_id",) + _SET_FIELDS,
                       "revenue-policy set <peer_id> [strategy] [rebalance] [fee_ppm] [channel_id=] "
                       "[fee_min_ppm=] [fee_max_ppm=] [expires_in_hours=]"),
    "delete": _ActionSpec(("peer_id",), ("channel_id",), "revenue-policy delete <peer_id> [channel_id=<scid>]"),
    "tag": _ActionSpec(("peer_id", "tag"), (), "revenue-policy tag <peer_id> <tag>"),
    "untag": _ActionSpec(("peer_id", "tag"), (), "revenue-policy untag <peer_id> <tag>"),
    "find": _ActionSpec(("tag",), (), "revenue-policy find <tag>"),
}

# Positional slots that lightningd binds by the reference signature, re-read per action (defect 17):
# `tag <peer> <tag>` puts the tag in the 3rd slot (strategy); `find <tag>` puts it in the 2nd (peer_id).
_TAG_SLOT: dict[str, str] = {"tag": "strategy", "untag": "strategy", "find": "peer_id"}


def _as_mapping(params: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """Keyword params as given, or a positional list bound to PARAMS; None values mean absent."""
    if isinstance(params, Mapping):
        given = dict(params)
    else:
        if len(params) > len(PARAMS):
            raise PolicyError("params", f"Too many parameters: at most {len(PARAMS)} ({', '.join(PARAMS)})")
        given = dict(zip(PARAMS, params))
    return {k: v for k, v in given.items() if v is not None}


def _action(given: Mapping[str, Any]) -> str:
    action = given.get("action")
    if not isinstance(action, str) or action.strip().lower() not in _ACTIONS:
        quoted = [f"'{a}'" for a in ACTIONS]
        raise PolicyError("action", f"Unknown action: {shown(action)}. Use {', '.join(quoted[:-1])}, or {quoted[-1]}",
                          ACTIONS)
    return action.strip().lower()


def _rebind_tag(action: str, given: dict[str, Any]) -> dict[str, Any]:
    slot = _TAG_SLOT.get(action)
    if slot is not None and "tag" not in given and slot in given:
        given["tag"] = given.pop(slot)
    return given


def parse_policy_request(params: Mapping[str, Any] | Sequence[Any], now: int) -> PolicyCommand:
    """Validate a revenue-policy call (keyword dict or positional list) into a PolicyCommand."""
    given = _as_mapping(params)
    action = _action(given)
    given = _rebind_tag(action, {k: v for k, v in given.items() if k != "action"})
    spec = _ACTIONS[action]
    for name in given:
        if name not in _PARAM_TABLE:
            raise PolicyError(name, f"Unknown parameter {shown(name)}; revenue-policy takes: {', '.join(PARAMS)}",
                              PARAMS)
        if name not in spec.required + spec.optional:
            raise PolicyError(name, f"Parameter {name!r} is not used by action {action!r}. "
                                    f"Usage: {spec.usage}")
    for name in spec.required:
        if name not in given:
            raise PolicyError(name, f"Missing {name}. Usage: {spec.usage}")
    if action == "set" and not any(f in given for f in _SET_FIELDS):
        raise PolicyError("strategy", f"Nothing to set: give at least one of {', '.join(_SET_FIELDS)}. "
                                      f"Usage: {spec.usage}", _SET_FIELDS)
    values = {_PARAM_TABLE[k].attr: _PARAM_TABLE[k].parse(v) for k, v in given.items()}
    return PolicyCommand(action=action, now=now, **values)


# --- merging and effective policy ---

def check_policy(p: Policy) -> Policy:
    """A row's own consistency: static needs a target; min <= max; a static target within the bounds."""
    if p.strategy is Strategy.STATIC and p.fee_ppm_target is None:
        raise PolicyError("fee_ppm", "A static policy needs fee_ppm (the fee to pin)")
    if p.fee_min_ppm is not None and p.fee_max_ppm is not None and p.fee_min_ppm > p.fee_max_ppm:
        raise PolicyError("fee_min_ppm", f"fee_min_ppm ({p.fee_min_ppm}) must be <= fee_max_ppm ({p.fee_max_ppm})")
    if p.strategy is Strategy.STATIC and p.fee_ppm_target is not None:
        lo, hi = p.fee_min_ppm or 0, MAX_FEE_PPM if p.fee_max_ppm is None else p.fee_max_ppm
        if not lo <= p.fee_ppm_target <= hi:
            raise PolicyError("fee_ppm", f"fee_ppm ({p.fee_ppm_target}) must lie within the policy's "
                                         f"fee_min_ppm..fee_max_ppm [{lo}, {hi}]")
    return p


def _start(stored: Policy | None, cmd: PolicyCommand, base: Policy | None) -> Policy:
    if stored is not None:
        if (stored.peer_id, stored.channel_id) != (cmd.peer_id, cmd.channel_id):
            raise PolicyError("peer_id", "Stored policy does not belong to this peer/channel")
        return stored
    if base is not None and cmd.channel_id is not None:
        return attrs.evolve(base, channel_id=cmd.channel_id, tags=(), expires_at=None)
    return Policy(peer_id=cmd.peer_id, channel_id=cmd.channel_id)


def _tags(tags: tuple[str, ...], cmd: PolicyCommand) -> tuple[str, ...]:
    if cmd.action == "untag":
        return tuple(t for t in tags if t != cmd.tag)
    if cmd.action == "tag" and cmd.tag not in tags:
        if len(tags) >= MAX_TAGS:
            raise PolicyError("tag", f"A policy has at most {MAX_TAGS} tags")
        return tags + (cmd.tag,)
    return tags


_MERGED = ("strategy", "rebalance_mode", "fee_ppm_target", "fee_min_ppm", "fee_max_ppm")


def merge(stored: Policy | None, cmd: PolicyCommand, base: Policy | None = None) -> Policy:
    """The row after a set/tag/untag: only the given fields change; the result is checked.

    `base`: for a new channel-level row, the peer-level policy it starts from (else defaults).
    """
    if cmd.action not in ("set", "tag", "untag"):
        raise PolicyError("action", f"merge applies to set, tag and untag, not {cmd.action!r}", ("set", "tag", "untag"))
    start = _start(stored, cmd, base)
    changes = {f: getattr(cmd, f) for f in _MERGED if getattr(cmd, f) is not None}
    if cmd.expires_in_hours is not None:
        changes["expires_at"] = cmd.expires_at
    return check_policy(attrs.evolve(start, **changes, tags=_tags(start.tags, cmd), updated_at=cmd.now))


def is_expired(p: Policy, now: int) -> bool:
    return p.expires_at is not None and p.expires_at <= now


def _live(p: Policy | None, now: int) -> Policy | None:
    return None if p is None or is_expired(p, now) else p


def effective_policy(peer_policy: Policy | None, channel_policy: Policy | None, now: int,
                     peer_id: str | None = None) -> Policy:
    """What applies to a channel now. Expired rows count as absent. The channel row sets strategy and
    rebalance mode, its target if set, and its fee band if it sets either bound; tags are united."""
    peer, chan = _live(peer_policy, now), _live(channel_policy, now)
    if chan is None:
        if peer is not None:
            return peer
        pid = peer_id or next((p.peer_id for p in (peer_policy, channel_policy) if p is not None), None)
        if pid is None:
            raise ValueError("effective_policy needs a policy or a peer_id")
        return Policy(peer_id=pid)
    if peer is None:
        return chan
    own_band = chan.fee_min_ppm is not None or chan.fee_max_ppm is not None
    band = chan if own_band else peer
    expiries = [p.expires_at for p in (peer, chan) if p.expires_at is not None]
    return attrs.evolve(
        chan,
        fee_ppm_target=chan.fee_ppm_target if chan.fee_ppm_target is not None else peer.fee_ppm_target,
        fee_min_ppm=band.fee_min_ppm,
        fee_max_ppm=band.fee_max_ppm,
        tags=peer.tags + tuple(t for t in chan.tags if t not in peer.tags),
        expires_at=min(expiries) if expiries else None,
        updated_at=max(peer.updated_at, chan.updated_at),
    )


def may_fill(p: Policy) -> bool:
    """May this channel be a rebalance destination (receive liquidity)?"""
    return p.rebalance_mode in (RebalanceMode.ENABLED, RebalanceMode.SINK_ONLY)


def may_drain(p: Policy) -> bool:
    """May this channel be a rebalance source (give liquidity)?"""
    return p.rebalance_mode in (RebalanceMode.ENABLED, RebalanceMode.SOURCE_ONLY)


def manages_fees(p: Policy) -> bool:
    return p.strategy is not Strategy.PASSIVE


def policy_to_dict(p: Policy) -> dict[str, Any]:
    """The reference's PeerPolicy dict plus our fields, JSON-able."""
    return {
        "peer_id": p.peer_id,
        "strategy": p.strategy.value,
        "rebalance_mode": p.rebalance_mode.value,
        "fee_ppm_target": p.fee_ppm_target,
        "tags": list(p.tags),
        "updated_at": p.updated_at,
        "channel_id": p.channel_id,
        "fee_min_ppm": p.fee_min_ppm,
        "fee_max_ppm": p.fee_max_ppm,
        "expires_at": p.expires_at,
    }
