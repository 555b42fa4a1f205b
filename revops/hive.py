"""Fleet mode: what a cl-hive signal means for this node, as pure functions.

cl-hive drives this plugin through two RPCs (reference §11): `revenue-policy set` with strategy `hive`
(a peer joined the fleet) or back to another strategy (it left), and `revenue-rebalance` into a hive
peer's channel (a push). The RPC layer and the coordinator turn those into HiveMembership and HivePush
messages; the rules for what is allowed live here so they can be tested without actors.
See docs/hive.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from revops.model import Policy, Strategy

PolicyKey = tuple[str, str | None]       # (peer_id, channel_id); channel_id None = the peer's own row


class HiveConfig(Protocol):
    @property
    def hive_push_max_sats(self) -> int: ...
    @property
    def hive_daily_push_sats(self) -> int: ...
    @property
    def hive_rebalance_tolerance(self) -> int: ...


@attrs.frozen
class MembershipChange:
    peer_id: str
    member: bool
    reason: str


def is_member(policy: Policy | None) -> bool:
    return policy is not None and policy.strategy is Strategy.HIVE


def membership_changes(before: Mapping[PolicyKey, Policy | None],
                       after: Mapping[PolicyKey, Policy | None]) -> list[MembershipChange]:
    """Peers whose own (peer-level) policy entered or left strategy `hive` between two policy sets.

    cl-hive only ever writes peer-level rows; a channel-level row pins one channel and is not membership.
    """
    changes = []
    for peer in sorted({k[0] for k in (*before, *after) if k[1] is None}):
        was, now = is_member(before.get((peer, None))), is_member(after.get((peer, None)))
        if was == now:
            continue
        if now:
            reason = "strategy set to hive: fleet member (fee hive_fee_ppm, strategic rebalance exemption)"
        else:
            left = after.get((peer, None))
            reason = (f"strategy set to {left.strategy.value}: left the fleet" if left is not None
                      else "hive policy deleted: left the fleet")
        changes.append(MembershipChange(peer, now, reason))
    return changes


def push_refusal(amount_sat: int, cfg: HiveConfig) -> str | None:
    """Why one push is refused before anything is reserved (the per-call cap), else None.

    The per-day cap is checked atomically with the budget reservation (Ledger.reserve), so two pushes
    can never both fit into what only one of them fits.
    """
    if amount_sat > cfg.hive_push_max_sats:
        return (f"Invalid parameter 'amount_sats': {amount_sat} sat exceeds hive_push_max_sats "
                f"({cfg.hive_push_max_sats} sat per push into a hive peer)")
    if amount_sat > cfg.hive_daily_push_sats:
        return (f"Invalid parameter 'amount_sats': {amount_sat} sat exceeds hive_daily_push_sats "
                f"({cfg.hive_daily_push_sats} sat per 24 h into hive peers)")
    return None


def push_fee_limit_sats(max_fee_sats: int | None, cfg: HiveConfig) -> int:
    """The fee limit of a push: the caller's, or the strategic exemption's tolerance when none is given.

    A hive peer earns 0 ppm, so a push is a loss by design; without an explicit limit the loss is
    bounded by `hive_rebalance_tolerance`, as for the automatic hive pushes.
    """
    return cfg.hive_rebalance_tolerance if max_fee_sats is None else max_fee_sats


def daily_push_refusal(pushed_24h_sat: int, amount_sat: int, cfg: HiveConfig) -> str | None:
    """The rolling 24 h cap on sats pushed into hive peers (checked inside the reservation transaction)."""
    if pushed_24h_sat + amount_sat > cfg.hive_daily_push_sats:
        return (f"hive_daily_push: {pushed_24h_sat} sat pushed into hive peers in 24 h + {amount_sat} sat "
                f"> hive_daily_push_sats {cfg.hive_daily_push_sats}")
    return None
