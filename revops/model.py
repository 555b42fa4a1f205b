"""Value types shared by every part of the plugin, and the one cattrs converter.

Everything here is immutable (attrs frozen). Money is integer msat; floats only for ratios and rates.
"""
from __future__ import annotations

import enum
from typing import Any

import attrs
import cattrs
import cattrs.gen

from revops import identity


class FlowClass(str, enum.Enum):
    """How a channel's liquidity is moving (reference §5.1)."""

    SOURCE = "source"      # draining: more leaves through it than arrives
    SINK = "sink"          # filling
    BALANCED = "balanced"
    CONGESTED = "congested"
    UNKNOWN = "unknown"    # never analysed yet


class Strategy(str, enum.Enum):
    DYNAMIC = "dynamic"
    STATIC = "static"
    PASSIVE = "passive"
    HIVE = "hive"


class RebalanceMode(str, enum.Enum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    SINK_ONLY = "sink_only"      # may be filled, never drained
    SOURCE_ONLY = "source_only"  # may be drained, never filled


@attrs.frozen
class ChannelView:
    """One channel as lightningd's listpeerchannels shows it right now."""

    scid: str
    peer_id: str
    channel_id: str
    state: str                       # CHANNELD_NORMAL, ...
    opener: str                      # "local" | "remote"
    capacity_msat: int
    local_msat: int                  # to_us_msat
    spendable_msat: int
    receivable_msat: int
    fee_base_msat: int
    fee_ppm: int
    htlc_count: int                  # HTLCs in flight on this channel
    htlc_value_msat: int             # value held in those HTLCs
    max_accepted_htlcs: int
    peer_connected: bool
    funding_txid: str = ""
    htlc_max_msat: int = 0           # our htlc_maximum_msat in force (updates.local); 0 = unknown

    @property
    def local_ratio(self) -> float:
        return self.local_msat / self.capacity_msat if self.capacity_msat else 0.5

    @property
    def is_normal(self) -> bool:
        return self.state == identity.NORMAL

    @property
    def is_active(self) -> bool:
        """Forwarding, so priced: CHANNELD_NORMAL, or splicing (revops/identity.py)."""
        return self.state in identity.ACTIVE_STATES


@attrs.frozen
class Forward:
    """One forward as reported by forward_event / listforwards (settled, failed or local_failed)."""

    in_channel: str
    in_htlc_id: int
    out_channel: str | None
    in_msat: int
    out_msat: int | None
    fee_msat: int | None
    status: str                      # offered | settled | failed | local_failed
    received_time: float
    resolved_time: float | None = None
    created_index: int | None = None
    updated_index: int | None = None
    failcode: int | None = None
    failreason: str | None = None


@attrs.frozen
class Policy:
    """An operator's policy for a peer (channel_id None) or for one channel of it.

    A channel-level row overrides the peer-level row field by field where it sets a value.
    `fee_ppm_target` with strategy static pins the fee; fee_min_ppm/fee_max_ppm narrow the bounds.
    """

    peer_id: str
    strategy: Strategy = Strategy.DYNAMIC
    rebalance_mode: RebalanceMode = RebalanceMode.ENABLED
    fee_ppm_target: int | None = None
    fee_min_ppm: int | None = None
    fee_max_ppm: int | None = None
    tags: tuple[str, ...] = ()
    channel_id: str | None = None
    expires_at: int | None = None
    updated_at: int = 0


@attrs.frozen
class FeeDecision:
    """What a channel's fee controller decided in one cycle, and why (persisted and reported)."""

    scid: str
    at: int
    old_fee_ppm: int
    new_fee_ppm: int
    branch: str                      # congestion | anchor | external | vegas | scarcity | search | static | hive | passive | hold | manual | htlcmax
    reason: str                      # one human-readable line
    broadcast: bool                  # True: setchannel should be sent
    inputs: dict[str, Any] = attrs.field(factory=dict, eq=False)


converter = cattrs.Converter()
converter.register_unstructure_hook(enum.Enum, lambda e: e.value)
_JSON_SCALARS = frozenset({int, float, str, bool, type(None)})


def _inputs_dict(inputs: dict[str, Any]) -> dict[str, Any]:
    """A decision's inputs, mostly numbers: scalars as they are, anything else through the converter —
    what converter.unstructure gives, without its dispatch per value (a sixth of a fee cycle at 5,000)."""
    return {k: v if type(v) in _JSON_SCALARS else converter.unstructure(v) for k, v in inputs.items()}


converter.register_unstructure_hook(FeeDecision, cattrs.gen.make_dict_unstructure_fn(
    FeeDecision, converter, inputs=cattrs.gen.override(unstruct_hook=_inputs_dict)))


def to_dict(obj: Any) -> Any:
    """Plain JSON-able form of any model value."""
    return converter.unstructure(obj)


def from_dict(data: Any, cls: type) -> Any:
    return converter.structure(data, cls)
