"""Flow analysis (reference §5.1): which way liquidity moves through a channel, and HTLC slot pressure.

Pure functions: a channel as lightningd shows it plus its daily forward buckets in, FlowMetrics out.
"in" is msat arriving through the channel (our local balance grows), "out" is msat leaving through it.
"""
from __future__ import annotations

import functools
from typing import Iterable, Protocol

import attrs

from revops.model import ChannelView, FlowClass

EMA_DECAY = 0.8                 # weight of the bucket k days old is 0.8**k
DEFAULT_MAX_HTLCS = 483         # lightningd's max_accepted_htlcs when a peer reports none
INFER_SOURCE_BELOW = 0.30       # no flow: local ratio under this reads as a drained (source) channel
INFER_SINK_ABOVE = 0.70         # no flow: local ratio over this reads as a filled (sink) channel
INFERRED_FLOW_RATIO = 0.6       # the flow_ratio reported for an inferred source (+) or sink (-)


class FlowConfig(Protocol):
    """The config attributes flow analysis reads."""

    @property
    def flow_window_days(self) -> int: ...
    @property
    def htlc_congestion_threshold(self) -> float: ...
    @property
    def source_threshold(self) -> float: ...
    @property
    def sink_threshold(self) -> float: ...


@attrs.frozen
class DailyBucket:
    """Forward totals of one channel over one day; day_age 0 is the last 24 h."""

    day_age: int
    in_msat: int = 0
    out_msat: int = 0
    fee_msat: int = 0       # fees earned with this channel as the outgoing channel
    forwards: int = 0       # settled forwards touching this channel


@attrs.frozen
class FlowMetrics:
    """The result of one flow analysis of one channel."""

    scid: str
    flow_class: FlowClass
    flow_ratio: float
    ema_in_sat: float
    ema_out_sat: float
    sats_in: int
    sats_out: int
    capacity_sat: int
    daily_volume_sat: int
    local_ratio: float
    slot_use: float
    is_congested: bool
    reason: str


def slot_use(channel: ChannelView) -> float:
    """Share of the channel's HTLC capacity in use: the larger of slot share and value-at-risk share.

    Taking the larger (Red-Team HIGH-01) means neither a flood of tiny HTLCs exhausting the slots nor a
    few large HTLCs locking most of the capacity can hide from the congestion check, while a handful
    of dust HTLCs moves neither share.
    """
    max_htlcs = channel.max_accepted_htlcs or DEFAULT_MAX_HTLCS
    slots = channel.htlc_count / max_htlcs
    value = channel.htlc_value_msat / channel.capacity_msat if channel.capacity_msat else 0.0
    return max(slots, value)


@functools.cache
def _ema_weights(window_days: int) -> tuple[tuple[float, ...], float]:
    """The weights 0.8**k of a window and their sum (the same floats every call, computed once)."""
    weights = tuple(EMA_DECAY**k for k in range(window_days))
    return weights, sum(weights)


def _ema(values: dict[int, int], window_days: int) -> float:
    """Day-weighted average (0.8**k) over every day of the window; empty days count as zero (they add an
    exact 0.0, so only the days with flow are summed, in the same order: the same float)."""
    weights, total = _ema_weights(window_days)
    return sum(v * weights[k] for k, v in sorted(values.items()) if 0 <= k < window_days) / total


def _classify(ratio: float, has_flow: bool, local_ratio: float, cfg: FlowConfig) -> tuple[FlowClass, float, str]:
    """SOURCE/SINK/BALANCED from the flow ratio, or from the balance when nothing moved."""
    if has_flow:
        if ratio > cfg.source_threshold:
            return FlowClass.SOURCE, ratio, f"flow ratio {ratio:+.3f} > {cfg.source_threshold}"
        if ratio < cfg.sink_threshold:
            return FlowClass.SINK, ratio, f"flow ratio {ratio:+.3f} < {cfg.sink_threshold}"
        return FlowClass.BALANCED, ratio, f"flow ratio {ratio:+.3f} within thresholds"
    if local_ratio < INFER_SOURCE_BELOW:
        return FlowClass.SOURCE, INFERRED_FLOW_RATIO, f"no flow, local {local_ratio:.0%} < 30% → inferred source"
    if local_ratio > INFER_SINK_ABOVE:
        return FlowClass.SINK, -INFERRED_FLOW_RATIO, f"no flow, local {local_ratio:.0%} > 70% → inferred sink"
    return FlowClass.BALANCED, 0.0, f"no flow, local {local_ratio:.0%} → balanced"


def analyze(channel: ChannelView, buckets: Iterable[DailyBucket], cfg: FlowConfig) -> FlowMetrics:
    """Classify one channel from its daily buckets within flow_window_days (reference §5.1).

    Congestion is checked first: a channel out of HTLC room is congested whatever its flow.
    """
    window = max(1, cfg.flow_window_days)
    inside = [b for b in buckets if 0 <= b.day_age < window]
    ins: dict[int, int] = {}
    outs: dict[int, int] = {}
    for b in inside:
        ins[b.day_age] = ins.get(b.day_age, 0) + b.in_msat
        outs[b.day_age] = outs.get(b.day_age, 0) + b.out_msat
    capacity_sat = channel.capacity_msat // 1000
    ema_in = _ema(ins, window) / 1000
    ema_out = _ema(outs, window) / 1000
    in_msat, out_msat = sum(ins.values()), sum(outs.values())
    sats_in, sats_out = in_msat // 1000, out_msat // 1000
    ratio = (ema_out - ema_in) / capacity_sat if capacity_sat else 0.0
    use = slot_use(channel)
    congested = use > cfg.htlc_congestion_threshold
    has_flow = in_msat + out_msat > 0
    if congested:
        flow_class, reason = FlowClass.CONGESTED, f"HTLC use {use:.0%} > {cfg.htlc_congestion_threshold:.0%}"
    else:
        flow_class, ratio, reason = _classify(ratio, has_flow, channel.local_ratio, cfg)
    return FlowMetrics(
        scid=channel.scid,
        flow_class=flow_class,
        flow_ratio=round(ratio, 4),
        ema_in_sat=ema_in,
        ema_out_sat=ema_out,
        sats_in=sats_in,
        sats_out=sats_out,
        capacity_sat=capacity_sat,
        daily_volume_sat=(sats_in + sats_out) // window,
        local_ratio=channel.local_ratio,
        slot_use=use,
        is_congested=congested,
        reason=reason,
    )
