"""The htlc_maximum_msat valve: a liquidity lever beside the fee (issue 13; docs/fees.md).

Each managed channel advertises, as its largest forwarded HTLC, a share of its capacity by flow class —
source 50 %, balanced 45 %, sink 25 % (the earlier implementation's valve, field-2026.md §1; not tuned here).
Senders split a payment above it (multi-part payments) and send only a part through us, so a channel gives
out its liquidity in smaller pieces. An htlcmax change is a channel_update like a fee change: it rides on a
fee update when there is one, and goes alone only when the channel had no update in the last 24 h, so the
fee search always keeps at least one of its daily updates.

Pure: (channel, flow class, the fee decision, the fee state, config) -> (valve decision, fee state).
"""
from __future__ import annotations

from typing import Protocol

import attrs

from revops.fees import DAY_S, HillClimbState
from revops.model import ChannelView, FeeDecision, FlowClass, Strategy

SHARE_OF_CAPACITY = {FlowClass.SOURCE: 0.50, FlowClass.BALANCED: 0.45, FlowClass.SINK: 0.25}
# an advertised limit within 1 % of capacity of the target is left alone (lightningd may round or clamp)
TOLERANCE_OF_CAPACITY = 0.01


class ValveConfig(Protocol):
    """The config attributes the valve reads."""

    @property
    def htlc_max_valve(self) -> bool: ...
    @property
    def max_fee_updates_per_day(self) -> int: ...


@attrs.frozen
class ValveDecision:
    """What the valve wants for one channel in one fee cycle, and why."""

    target_msat: int | None       # the htlc_maximum_msat to advertise; None = leave it as it is
    in_force_msat: int
    send: str                     # "with_fee" (in the fee update) | "alone" (its own update) | "" (nothing)
    reason: str


def target_msat(channel: ChannelView, flow_class: FlowClass) -> int | None:
    """The valve's htlc_maximum_msat for this channel's flow class; None for congested or unknown flow."""
    share = SHARE_OF_CAPACITY.get(flow_class)
    return None if share is None else int(channel.capacity_msat * share)


def decide(channel: ChannelView, flow_class: FlowClass, fee: FeeDecision, state: HillClimbState,
           strategy: Strategy, cfg: ValveConfig, now: int) -> tuple[ValveDecision, HillClimbState]:
    """One cycle of the valve after the fee decision `fee` (whose new state is `state`).

    Returns the state with the valve's own update counted in the daily budget when it goes alone."""
    in_force = channel.htlc_max_msat or channel.capacity_msat
    target = target_msat(channel, flow_class)
    if not cfg.htlc_max_valve or strategy is Strategy.PASSIVE or target is None:
        why = ("off" if not cfg.htlc_max_valve else "passive policy" if strategy is Strategy.PASSIVE
               else f"{flow_class.value} flow has no share")
        return ValveDecision(None, in_force, "", f"htlcmax valve: {why}, htlcmax left at {in_force} msat"), state
    share = SHARE_OF_CAPACITY[flow_class]
    what = f"htlcmax valve: {flow_class.value} → {share:.0%} of capacity = {target} msat (in force {in_force})"
    if abs(target - in_force) <= channel.capacity_msat * TOLERANCE_OF_CAPACITY:
        return ValveDecision(None, in_force, "", f"{what}; already in force"), state
    if fee.broadcast:
        return ValveDecision(target, in_force, "with_fee", f"{what}; rides on the fee update"), state
    recent = tuple(t for t in state.update_times if t > now - DAY_S)
    if recent or cfg.max_fee_updates_per_day < 2:
        return ValveDecision(None, in_force, "", f"{what}; waits for the next fee update ({len(recent)} in 24 h, "
                                                 f"limit {cfg.max_fee_updates_per_day})"), state
    counted = attrs.evolve(state, update_times=recent + (now,))
    return ValveDecision(target, in_force, "alone", f"{what}; its own update (none in 24 h)"), counted
