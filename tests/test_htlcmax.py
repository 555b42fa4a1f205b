"""revops.htlcmax: the htlc_maximum_msat valve's pure decision (flow class → share of capacity, gossip budget)."""
from __future__ import annotations

import attrs
import pytest

from revops import htlcmax
from revops.fees import HillClimbState
from revops.model import ChannelView, FeeDecision, FlowClass, Strategy

CAP = 4_000_000_000
NOW = 10 * 86_400


@attrs.frozen
class Cfg:
    htlc_max_valve: bool = True
    max_fee_updates_per_day: int = 2


def view(htlc_max: int = CAP - CAP // 100) -> ChannelView:
    return ChannelView(scid="1x1x1", peer_id="02" + "a" * 64, channel_id="c" * 64, state="CHANNELD_NORMAL",
                       opener="local", capacity_msat=CAP, local_msat=CAP // 2, spendable_msat=CAP // 2,
                       receivable_msat=CAP // 2, fee_base_msat=0, fee_ppm=100, htlc_count=0, htlc_value_msat=0,
                       max_accepted_htlcs=483, peer_connected=True, htlc_max_msat=htlc_max)


def fee(broadcast: bool) -> FeeDecision:
    return FeeDecision(scid="1x1x1", at=NOW, old_fee_ppm=100, new_fee_ppm=120 if broadcast else 100,
                       branch="search", reason="search: up", broadcast=broadcast)


def hill(*updates: int) -> HillClimbState:
    return HillClimbState(climb_fee_ppm=100, last_broadcast_fee_ppm=100, window_start=0, update_times=updates)


def decide(flow_class=FlowClass.SOURCE, broadcast=False, state=None, cfg=Cfg(), strategy=Strategy.DYNAMIC,
           channel=None):
    return htlcmax.decide(channel or view(), flow_class, fee(broadcast), state or hill(), strategy, cfg, NOW)


@pytest.mark.parametrize("flow_class, share", [(FlowClass.SOURCE, 0.50), (FlowClass.BALANCED, 0.45),
                                               (FlowClass.SINK, 0.25)])
def test_the_target_is_the_fields_share_of_capacity_by_flow_class(flow_class, share) -> None:
    assert htlcmax.target_msat(view(), flow_class) == int(CAP * share)
    valve, _ = decide(flow_class, broadcast=True)
    assert valve.target_msat == int(CAP * share) and valve.send == "with_fee"
    assert f"{flow_class.value} → {share:.0%} of capacity" in valve.reason


@pytest.mark.parametrize("flow_class", [FlowClass.CONGESTED, FlowClass.UNKNOWN])
def test_congested_or_unknown_flow_leaves_the_limit(flow_class) -> None:
    valve, state = decide(flow_class, broadcast=True)
    assert (valve.target_msat, valve.send) == (None, "") and state == hill()


def test_off_or_passive_sends_nothing_and_says_why() -> None:
    valve, state = decide(broadcast=True, cfg=Cfg(htlc_max_valve=False))
    assert valve.send == "" and "off" in valve.reason and state == hill()
    valve, _ = decide(broadcast=True, strategy=Strategy.PASSIVE)
    assert valve.send == "" and "passive" in valve.reason


def test_a_limit_already_in_force_is_not_sent_again() -> None:
    valve, _ = decide(FlowClass.SINK, broadcast=True, channel=view(htlc_max=CAP // 4 + 1000))
    assert valve.send == "" and "already in force" in valve.reason


def test_alone_only_when_the_channel_had_no_update_in_24_hours_and_then_it_counts() -> None:
    valve, state = decide(state=hill(NOW - 25 * 3600))
    assert valve.send == "alone" and state.update_times == (NOW,)       # the old one aged out, the valve's counts
    valve, state = decide(state=hill(NOW - 3600))
    assert valve.send == "" and "waits for the next fee update" in valve.reason and state == hill(NOW - 3600)


def test_never_alone_when_the_daily_budget_is_a_single_update() -> None:
    valve, state = decide(cfg=Cfg(max_fee_updates_per_day=1))
    assert valve.send == "" and state == hill()


def test_riding_on_a_fee_update_costs_no_extra_update() -> None:
    s = hill(NOW - 3600)
    valve, state = decide(broadcast=True, state=s)
    assert valve.send == "with_fee" and state is s


def test_unknown_limit_in_force_reads_as_the_capacity() -> None:
    valve, _ = decide(broadcast=True, channel=view(htlc_max=0))
    assert valve.in_force_msat == CAP
