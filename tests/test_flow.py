"""Flow analysis (reference §5.1) and HTLC slot use."""
from __future__ import annotations

import attrs
import pytest
from hypothesis import given, strategies as st

from revops.flow import EMA_DECAY, DailyBucket, _ema, analyze, slot_use
from revops.model import ChannelView, FlowClass

CAP = 10_000_000_000  # 10 M sat in msat


@attrs.frozen
class Cfg:
    flow_window_days: int = 7
    htlc_congestion_threshold: float = 0.8
    source_threshold: float = 0.5
    sink_threshold: float = -0.5


def chan(local: float = 0.5, htlcs: int = 0, htlc_value: int = 0, max_htlcs: int = 483, cap: int = CAP) -> ChannelView:
    return ChannelView(
        scid="1x1x1", peer_id="02" + "a" * 64, channel_id="c" * 64, state="CHANNELD_NORMAL",
        opener="local", capacity_msat=cap, local_msat=int(cap * local), spendable_msat=int(cap * local),
        receivable_msat=int(cap * (1 - local)), fee_base_msat=0, fee_ppm=100, htlc_count=htlcs,
        htlc_value_msat=htlc_value, max_accepted_htlcs=max_htlcs, peer_connected=True,
    )


def test_slot_use_is_larger_of_slot_and_value_share() -> None:
    assert slot_use(chan(htlcs=100, htlc_value=CAP // 10)) == pytest.approx(100 / 483)
    assert slot_use(chan(htlcs=2, htlc_value=CAP * 9 // 10)) == pytest.approx(0.9)
    assert slot_use(chan(htlcs=0, max_htlcs=0)) == 0.0


def test_dust_flood_below_slot_threshold_is_not_congestion() -> None:
    # 300 dust HTLCs of 1 sat: 62 % of slots, value share ~0 → not congested
    m = analyze(chan(htlcs=300, htlc_value=300_000), [], Cfg())
    assert not m.is_congested and m.flow_class is not FlowClass.CONGESTED
    assert m.slot_use == pytest.approx(300 / 483)


def test_value_at_risk_triggers_congestion_with_few_slots() -> None:
    m = analyze(chan(htlcs=3, htlc_value=CAP * 85 // 100), [], Cfg())
    assert m.is_congested and m.flow_class is FlowClass.CONGESTED


def test_slot_exhaustion_is_congestion_first_whatever_the_flow() -> None:
    buckets = [DailyBucket(0, out_msat=CAP)]
    m = analyze(chan(htlcs=400), buckets, Cfg())
    assert m.flow_class is FlowClass.CONGESTED and m.reason.startswith("HTLC use")


@given(st.integers(1, 30), st.dictionaries(st.integers(-2, 32), st.integers(0, 10**13), max_size=12))
def test_ema_sums_only_the_days_with_flow_to_the_same_float(window: int, days: dict[int, int]) -> None:
    """An empty day adds an exact 0.0: summing only the days with flow, in order, is the same float."""
    weights = [EMA_DECAY**k for k in range(window)]
    every_day = sum(days.get(k, 0) * w for k, w in enumerate(weights)) / sum(weights)
    assert _ema(days, window) == every_day


def test_ema_weights_recent_days_more() -> None:
    recent = analyze(chan(), [DailyBucket(0, out_msat=7_000_000_000)], Cfg())
    old = analyze(chan(), [DailyBucket(6, out_msat=7_000_000_000)], Cfg())
    assert recent.ema_out_sat > old.ema_out_sat > 0
    weights = sum(0.8**k for k in range(7))
    assert recent.ema_out_sat == pytest.approx(7_000_000 / weights)
    assert recent.sats_out == old.sats_out == 7_000_000


@pytest.mark.parametrize(
    "in_sat, out_sat, expected",
    [
        (0, 30_000_000, FlowClass.SOURCE),      # heavy outflow
        (30_000_000, 0, FlowClass.SINK),        # heavy inflow
        (5_000_000, 6_000_000, FlowClass.BALANCED),
    ],
)
def test_flow_classes(in_sat: int, out_sat: int, expected: FlowClass) -> None:
    buckets = [DailyBucket(0, in_msat=in_sat * 1000, out_msat=out_sat * 1000)]
    m = analyze(chan(), buckets, Cfg())
    assert m.flow_class is expected
    weights = sum(0.8**k for k in range(7))
    assert m.flow_ratio == pytest.approx(round((out_sat - in_sat) / weights / 10_000_000, 4))


@pytest.mark.parametrize(
    "local, expected, ratio",
    [(0.2, FlowClass.SOURCE, 0.6), (0.8, FlowClass.SINK, -0.6), (0.5, FlowClass.BALANCED, 0.0)],
)
def test_no_flow_infers_from_balance(local: float, expected: FlowClass, ratio: float) -> None:
    m = analyze(chan(local=local), [], Cfg())
    assert (m.flow_class, m.flow_ratio) == (expected, ratio)


def test_buckets_outside_window_are_ignored_and_daily_volume() -> None:
    buckets = [DailyBucket(0, in_msat=7_000_000, out_msat=7_000_000), DailyBucket(7, out_msat=10**12)]
    m = analyze(chan(), buckets, Cfg())
    assert (m.sats_in, m.sats_out, m.daily_volume_sat) == (7_000, 7_000, 2_000)


def test_zero_capacity_is_safe() -> None:
    m = analyze(chan(cap=0), [DailyBucket(0, out_msat=1000)], Cfg())
    assert m.flow_ratio == 0.0 and m.capacity_sat == 0 and m.local_ratio == 0.5
