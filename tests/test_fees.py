"""Fee controller (reference §5.3) with the reference constants: every branch, the gates, the fixed defects."""
from __future__ import annotations

import json
import math
import random
import statistics
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.fees import (
    ChainCosts, FeeObservation, HillClimbState, VegasState, decide, economic_floor_ppm, fee_bounds,
    BalanceMemory, initial_state, liquidity_multiplier, profitability_multiplier, remember_balance,
    scarcity_multiplier, vegas_floor_multiplier, vegas_update,
)
from revops import ladder
from revops.flow import FlowMetrics
from revops.model import ChannelView, FlowClass, Policy, Strategy

H = 3_600
CAP = 10_000_000_000


@attrs.frozen
class Cfg:
    min_fee_ppm: int = 10
    max_fee_ppm: int = 5000
    fee_interval: int = 1800
    htlc_congestion_threshold: float = 0.8
    enable_vegas_reflex: bool = True
    vegas_decay_rate: float = 0.85
    enable_scarcity_pricing: bool = True
    scarcity_threshold: float = 0.35
    hive_fee_ppm: int = 0
    max_fee_updates_per_day: int = 2
    gossip_hysteresis: float = 0.05
    price_anchor: bool = True


CFG = Cfg()


def chan(fee: int = 500, local: float = 0.5, opener: str = "local", htlcs: int = 0, htlc_value: int = 0) -> ChannelView:
    return ChannelView(
        scid="1x1x1", peer_id="02" + "a" * 64, channel_id="c" * 64, state="CHANNELD_NORMAL", opener=opener,
        capacity_msat=CAP, local_msat=int(CAP * local), spendable_msat=int(CAP * local),
        receivable_msat=int(CAP * (1 - local)), fee_base_msat=0, fee_ppm=fee, htlc_count=htlcs,
        htlc_value_msat=htlc_value, max_accepted_htlcs=483, peer_connected=True,
    )


def flow(flow_class: FlowClass = FlowClass.BALANCED) -> FlowMetrics:
    return FlowMetrics(scid="1x1x1", flow_class=flow_class, flow_ratio=0.0, ema_in_sat=0.0, ema_out_sat=0.0,
                       sats_in=0, sats_out=0, capacity_sat=CAP // 1000, daily_volume_sat=0, local_ratio=0.5,
                       slot_use=0.0, is_congested=False, reason="")


def obs(now: int = 2 * H, rate: float = 0.0, fwds: int = 10, channel: ChannelView | None = None,
        policy: Policy | None = None, floor: int = 21, vegas: float = 1.0, routed: bool = True,
        flow_class: FlowClass = FlowClass.BALANCED, window_start: int = 0, **kw: Any) -> FeeObservation:
    """An observation whose earned fees correspond to `rate` msat/h over [window_start, now]."""
    hours = (now - window_start) / H
    return FeeObservation(
        now=now, channel=channel or chan(), flow=flow(flow_class), fees_earned_msat=int(rate * hours),
        forwards_out=fwds, has_routed_out_ever=routed, floor_ppm=floor, vegas_multiplier=vegas,
        policy=policy or Policy(peer_id="p"), **kw,
    )


def state(**kw: Any) -> HillClimbState:
    base: dict[str, Any] = {"climb_fee_ppm": 500, "last_broadcast_fee_ppm": 500, "window_start": 0}
    return HillClimbState(**{**base, **kw})


def unchanged(new: HillClimbState, old: HillClimbState) -> bool:
    """A held decision keeps the state it was given; only the window's balance memory has moved on."""
    return attrs.evolve(new, balance=old.balance) == old and new.balance.window_start == old.window_start


# ------------------------------------------------------------------------------------ Vegas Reflex

@pytest.mark.parametrize(
    "before, sat_vb, mean, roll, intensity, consecutive",
    [
        (VegasState(), 40.0, 10.0, 0.99, 0.85, 1),                  # ≥ 4× → 1.0 then × decay
        (VegasState(), 30.0, 10.0, 0.20, 0.15 * 0.85, 1),           # 3×: boost 0.5, roll 0.20 < 0.25 → +0.15
        (VegasState(), 30.0, 10.0, 0.30, 0.0, 1),                   # 3×: roll 0.30 ≥ 0.25 → no trigger
        (VegasState(0.0, 1), 30.0, 10.0, 0.99, 0.15 * 0.85, 2),     # second spike in a row triggers anyway
        (VegasState(0.5, 3), 15.0, 10.0, 0.0, 0.5 * 0.85, 0),       # below 2× → counter reset, decay only
        (VegasState(0.5, 0), 15.0, 0.0, 0.0, 0.5 * 0.85, 0),        # no average → spike 1.0
        (VegasState(0.9, 0), 25.0, 10.0, 0.0, min(1.0, 0.9 + 0.3 * 0.25) * 0.85, 1),
    ],
)
def test_vegas_update(before: VegasState, sat_vb: float, mean: float, roll: float, intensity: float,
                      consecutive: int) -> None:
    after = vegas_update(before, sat_vb, mean, roll, CFG)
    assert after.intensity == pytest.approx(intensity)
    assert (after.consecutive_spikes, after.last_sat_vb) == (consecutive, sat_vb)


def test_vegas_decays_to_calm_and_disabled_resets() -> None:
    s = vegas_update(VegasState(), 50.0, 10.0, 0.5, CFG)
    for _ in range(30):
        s = vegas_update(s, 10.0, 10.0, 0.5, CFG)
    assert s.intensity < 0.01 and vegas_floor_multiplier(s) == 1.0
    assert vegas_update(VegasState(0.9, 2), 50.0, 10.0, 0.0, attrs.evolve(CFG, enable_vegas_reflex=False)) == \
        VegasState(last_sat_vb=50.0)


@pytest.mark.parametrize("intensity, mult", [(0.0, 1.0), (0.009, 1.0), (0.25, 2.0), (1.0, 3.0)])
def test_vegas_floor_multiplier(intensity: float, mult: float) -> None:
    assert vegas_floor_multiplier(VegasState(intensity)) == pytest.approx(mult)


# ------------------------------------------------------------------------------------ economic floor

@pytest.mark.parametrize(
    "chain, vegas, stall, cfg, expected",
    [
        (None, 1.0, False, CFG, 21),                                         # static chain-cost floor
        (ChainCosts(10_000, 10_000, 0.0), 1.0, False, CFG, 54),              # replacement 20000/365
        (ChainCosts(1_000, 1_000, 30.0), 1.0, False, CFG, 90),               # risk premium 3 ppm per sat/vB
        (None, 1.0, True, CFG, 25),                                          # stall premium ×1.2
        (None, 3.0, False, CFG, 63),                                         # Vegas multiplier applied
        (ChainCosts(10_000, 10_000, 0.0), 2.0, True, CFG, 131),              # 54.79×1.2×2
        (None, 1.0, False, attrs.evolve(CFG, min_fee_ppm=100), 100),         # never under min_fee_ppm
    ],
)
def test_economic_floor(chain: ChainCosts | None, vegas: float, stall: bool, cfg: Cfg, expected: int) -> None:
    assert economic_floor_ppm(chain, vegas, stall, cfg) == expected


# ------------------------------------------------------------------------------------ scarcity & bounds

@pytest.mark.parametrize("local, mult", [(0.35, 1.0), (0.5, 1.0), (0.0, 3.0), (0.175, 2.0), (0.07, 2.6)])
def test_scarcity_curve(local: float, mult: float) -> None:
    assert scarcity_multiplier(local, CFG) == pytest.approx(mult)


def test_scarcity_disabled() -> None:
    assert scarcity_multiplier(0.0, attrs.evolve(CFG, enable_scarcity_pricing=False)) == 1.0


def test_the_balance_memory_is_a_time_weighted_mean_of_its_window() -> None:
    m = remember_balance(BalanceMemory(), window_start=0, now=0, local_ratio=0.9)
    m = remember_balance(m, 0, 3 * H, 0.5)       # 0.5 held for 3 h
    m = remember_balance(m, 0, 4 * H, 0.1)       # 0.1 for 1 h
    assert (m.hours, m.mean) == (4.0, pytest.approx((3 * 0.5 + 0.1) / 4))
    assert remember_balance(m, 0, 4 * H, 0.0) == m                   # no time passed: no weight
    assert remember_balance(m, 5 * H, 5 * H, 0.3) == BalanceMemory(5 * H, 5 * H, 0.3, 0.0)   # a new window


def flowing(out_sat: float, in_sat: float) -> FlowMetrics:
    """The week's daily averages out of and into the channel."""
    return attrs.evolve(flow(), ema_out_sat=out_sat, ema_in_sat=in_sat)


def window(local_ratios: list[float], week: FlowMetrics, step: int = H // 2) -> HillClimbState:
    """The state after one fee cycle every `step` s with these balances, from a window that began at 0."""
    s = state(published_ppm=500)
    for i, local in enumerate(local_ratios):
        _, s = decide(s, attrs.evolve(obs(now=i * step, channel=chan(local=local)), flow=week), CFG)
    return s


def decide_at_12h(local_ratios: list[float], local_now: float, week: FlowMetrics) -> dict[str, Any]:
    d, _ = decide(window(local_ratios, week), attrs.evolve(obs(now=12 * H, channel=chan(local=local_now)), flow=week),
                  CFG)
    assert d.branch in ("search", "scarcity") and d.inputs["local_ratio"] == local_now
    return d.inputs


def test_a_two_way_channel_is_priced_on_the_balance_its_window_sold_from() -> None:
    """Held-out drains seed 10: the top channel (flows both ways) swung between 1 % and 61 % from one 12 h
    decision to the next; priced at the moment of the decision it was held at ×2.9 for 12 h while it refilled."""
    inputs = decide_at_12h([0.5] * 24, 0.01, flowing(1e6, 1e6))          # empty only at the decision
    assert inputs["scarcity"] == 1.0
    assert inputs["priced_ratio"] == pytest.approx((0.5 * 11.5 + 0.01 * 0.5) / 12)   # each held until the next


def test_a_one_way_channel_is_priced_on_its_balance_now() -> None:
    """A channel that drains steadily stays drained: the window's mean would let it run empty unpriced."""
    inputs = decide_at_12h([0.5] * 24, 0.01, flowing(1e6, 0))
    assert (inputs["priced_ratio"], inputs["scarcity"]) == (0.01, pytest.approx(scarcity_multiplier(0.01, CFG)))
    mean = (0.5 * 11.5 + 0.01 * 0.5) / 12
    inputs = decide_at_12h([0.5] * 24, 0.01, flowing(3e6, 1e6))          # half of the flow is one-way
    assert inputs["priced_ratio"] == pytest.approx(0.5 * 0.01 + 0.5 * mean)
    inputs = decide_at_12h([0.05] * 24, 0.05, flowing(0, 0))             # no flow: the balance does not move
    assert inputs["priced_ratio"] == 0.05 and inputs["scarcity"] == pytest.approx(scarcity_multiplier(0.05, CFG))


@pytest.mark.parametrize("local, mult", [(0.0, 3.0), (0.1, 2.0), (0.3, 1.25), (0.5, 1.0), (0.6, 0.85),
                                         (0.8, 0.7), (0.9, 0.5), (1.0, 0.5)])
def test_liquidity_buckets(local: float, mult: float) -> None:
    assert liquidity_multiplier(local) == mult


@pytest.mark.parametrize("roi, zombie, mult", [(None, False, 1.0), (0.5, False, 0.95), (0.0, False, 1.0),
                                               (-0.1, False, 1.05), (-0.5, False, 1.10), (-0.9, False, 1.15),
                                               (-0.9, True, 1.0)])
def test_profitability_multiplier(roi: float | None, zombie: bool, mult: float) -> None:
    assert profitability_multiplier(roi, zombie) == mult


def test_bounds_multipliers_move_floor_up_and_ceiling_down() -> None:
    low = fee_bounds(obs(channel=chan(local=0.05), flow_class=FlowClass.SOURCE, marginal_roi=-0.9), CFG)
    assert (low.floor, low.ceiling) == (63, 5000)                  # 3×1.15×1.25 capped at 3.0
    high = fee_bounds(obs(channel=chan(local=0.95), flow_class=FlowClass.SINK), CFG)
    assert (high.floor, high.ceiling) == (21, 2500)                # 0.5×0.8 floored at 0.5
    mid = fee_bounds(obs(channel=chan(local=0.65)), CFG)
    assert (mid.floor, mid.ceiling) == (21, 4250)


def test_policy_bounds_narrow_and_min_wins_over_max() -> None:
    b = fee_bounds(obs(policy=Policy("p", fee_min_ppm=100, fee_max_ppm=300)), CFG)
    assert (b.eff_min, b.eff_max, b.floor, b.ceiling) == (100, 300, 100, 300)
    bad = fee_bounds(obs(policy=Policy("p", fee_min_ppm=800, fee_max_ppm=300)), CFG)
    assert bad.eff_min == bad.eff_max == bad.floor == bad.ceiling == 800
    d, _ = decide(state(), obs(rate=1000.0, policy=Policy("p", fee_min_ppm=800, fee_max_ppm=300)), CFG)
    assert d.new_fee_ppm == 800 and d.broadcast


# ------------------------------------------------------------------------------------ policy branches

def test_passive_never_touches() -> None:
    s = state(update_times=())
    d, new = decide(s, obs(channel=chan(fee=1), policy=Policy("p", strategy=Strategy.PASSIVE)), CFG)
    assert (d.branch, d.broadcast, d.new_fee_ppm, new) == ("passive", False, 1, s)


def test_static_pin_is_exact_and_not_gated_but_counted() -> None:
    s = state(update_times=(H, 2 * H))
    pol = Policy("p", strategy=Strategy.STATIC, fee_ppm_target=505)
    d, new = decide(s, obs(now=3 * H, policy=pol), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("static", 505, True)
    assert new.update_times == (H, 2 * H, 3 * H) and new.last_broadcast_fee_ppm == 505
    d, _ = decide(new, obs(now=4 * H, channel=chan(fee=505), policy=pol), CFG)
    assert (d.new_fee_ppm, d.broadcast) == (505, False)


def test_static_without_target_keeps_the_fee() -> None:
    d, _ = decide(state(), obs(channel=chan(fee=321), policy=Policy("p", strategy=Strategy.STATIC)), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("static", 321, False)


def test_hive_fee_bypasses_bounds_and_scarcity() -> None:
    pol = Policy("p", strategy=Strategy.HIVE)
    d, _ = decide(state(), obs(channel=chan(local=0.05), policy=pol), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("hive", 0, True)


# ------------------------------------------------------------------------------------ congestion

def test_congestion_goes_to_effective_max_outside_the_budget() -> None:
    s = state(update_times=(H, 2 * H))
    o = obs(now=3 * H, channel=chan(htlcs=400), policy=Policy("p", fee_max_ppm=3000))
    d, new = decide(s, o, CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("congestion", 3000, True)
    assert new.update_times == (H, 2 * H) and new.last_branch == "congestion"   # not counted
    assert new.climb_fee_ppm == 500                                             # climber untouched


def test_value_at_risk_congestion_and_dust_flood_below_threshold() -> None:
    d, _ = decide(state(), obs(channel=chan(htlcs=3, htlc_value=CAP * 9 // 10)), CFG)
    assert d.branch == "congestion"
    d, _ = decide(state(), obs(channel=chan(htlcs=300, htlc_value=300_000), rate=0.0, fwds=0, now=H // 2), CFG)
    assert d.branch != "congestion" and not d.broadcast


def test_leaving_congestion_is_exempt_and_returns_to_climb_fee() -> None:
    s = state(last_branch="congestion", update_times=(H, 2 * H), window_start=3 * H, last_broadcast_fee_ppm=5000)
    d, new = decide(s, obs(now=3 * H + 1800, window_start=3 * H, channel=chan(fee=5000), fwds=0), CFG)
    assert (d.new_fee_ppm, d.broadcast) == (500, True)
    assert new.update_times == (H, 2 * H) and new.last_branch == "search"


# ------------------------------------------------------------------------------------ vegas & scarcity in decide

def test_vegas_floor_lifts_the_fee() -> None:
    s = state(climb_fee_ppm=30, last_broadcast_fee_ppm=30)
    d, new = decide(s, obs(channel=chan(fee=30), floor=63, vegas=3.0, fwds=0, now=H // 2), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("vegas", 63, True)
    assert "vegas" in d.reason and new.climb_fee_ppm == 30      # the search's own fee never absorbs the floor


def test_between_decisions_scarcity_does_not_spend_the_gossip_budget() -> None:
    """Scarcity is priced when the search decides; in between the balance moving changes nothing."""
    s = state(published_ppm=500, window_start=0)
    d, _ = decide(s, obs(now=3 * H, channel=chan(local=0.175), fwds=1), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("hold", 500, False)
    d, _ = decide(s, obs(now=12 * H, channel=chan(local=0.175), fwds=0), CFG)      # the decision prices it
    assert (d.branch, d.broadcast) == ("scarcity", True) and d.new_fee_ppm > 500


def test_scarcity_multiplies_climb_fee_without_compounding() -> None:
    s = state()
    o = obs(channel=chan(local=0.175), fwds=0, now=H // 2)
    d, new = decide(s, o, CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("scarcity", 1000, True)
    assert new.climb_fee_ppm == 500                          # the climber's own fee is not multiplied
    d2, _ = decide(new, attrs.evolve(o, channel=chan(fee=1000, local=0.175), now=H // 2 + 1800), CFG)
    assert (d2.new_fee_ppm, d2.broadcast) == (1000, False)


def test_virgin_amnesty_suppresses_scarcity() -> None:
    o = obs(channel=chan(local=0.175, opener="remote"), routed=False, fwds=0, now=H // 2)
    d, _ = decide(state(), o, CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("hold", 500, False)
    d, _ = decide(state(), attrs.evolve(o, has_routed_out_ever=True), CFG)
    assert d.branch == "scarcity"
    d, _ = decide(state(), attrs.evolve(o, channel=chan(local=0.175, opener="local"), has_routed_out_ever=False), CFG)
    assert d.branch == "scarcity"


# ------------------------------------------------------------------------------------ the revenue search

def rich(fees_fwds: dict[int, tuple[float, float]], centre: int = 500, **kw: Any) -> HillClimbState:
    """A state whose ladder holds evidence: fee ppm → (hours, forwards), each forward 1 M sat."""
    evidence = {ladder.level_of(f): ladder.Evidence(h, n, n * f * 1000) for f, (h, n) in fees_fwds.items()}
    lad = ladder.LadderState(centre=ladder.level_of(centre), evidence=evidence, evidence_at=0,
                             max_settled_ppm=max(fees_fwds))
    return state(climb_fee_ppm=centre, last_broadcast_fee_ppm=centre, ladder=lad, **kw)


def test_a_level_is_held_for_its_dwell_and_the_window_keeps_running() -> None:
    s = state(published_ppm=500)
    d, new = decide(s, obs(now=6 * H, fwds=3, rate=1000.0), CFG)
    assert (d.branch, d.broadcast, unchanged(new, s)) == ("hold", False, True)
    assert "observing 500 ppm: 6.0 of 12 h, 3 fwds" in d.reason


def test_a_window_becomes_evidence_of_its_level() -> None:
    d, new = decide(state(), obs(now=12 * H, fwds=4, rate=1000.0), CFG)
    e = new.ladder.evidence[ladder.level_of(500)]
    assert (e.hours, e.forwards, e.fees_msat) == (12.0, 4, 12_000)
    assert new.window_start == 12 * H and new.ladder.max_settled_ppm == 500
    assert d.inputs["hours"] == 12.0


def test_silence_is_not_a_signal_and_probing_backs_off() -> None:
    s = state()
    d, new = decide(s, obs(now=12 * H, fwds=0), CFG)
    assert (d.new_fee_ppm, d.broadcast) == (500, False) and "too few to search" in d.reason
    assert new.ladder.dwell_hours == 24.0
    d, new = decide(new, obs(now=36 * H, window_start=12 * H, fwds=0), CFG)
    assert new.ladder.dwell_hours == 48.0 and not d.broadcast


def test_a_full_channel_nobody_pays_steps_down() -> None:
    d, new = decide(state(), obs(now=12 * H, fwds=0, channel=chan(local=0.97)), CFG)
    assert d.broadcast and d.new_fee_ppm == ladder.fee_of(ladder.level_of(500) - 1)
    assert new.ladder.dwell_hours == 12.0 and "nobody pays" in d.reason


def test_the_centre_climbs_when_a_neighbour_clearly_earns_more() -> None:
    up = ladder.fee_of(ladder.level_of(500) + 1)
    s = rich({500: (100, 20), up: (100, 40)}, window_start=0)
    d, new = decide(s, obs(now=12 * H, fwds=2, rate=1000.0), CFG)
    assert new.ladder.centre == ladder.level_of(up)
    assert d.branch == "search" and "Thompson draw picks" in d.reason and "\n" not in d.reason


def test_the_demand_band_caps_the_search() -> None:
    s = rich({100: (200, 30)}, centre=500)
    for now in range(12, 200, 12):
        d, _ = decide(s, obs(now=now * H, window_start=(now - 12) * H, fwds=0), CFG)
        assert d.new_fee_ppm <= ladder.fee_of(ladder.level_of(100) + 1)


def test_the_centre_follows_the_going_rate() -> None:
    s = rich({500: (100, 20)}, centre=500)
    s = attrs.evolve(s, anchored=True, ladder=attrs.evolve(s.ladder, anchor_ppm=300, max_settled_ppm=2000))
    d, new = decide(s, obs(now=12 * H, fwds=2, rate=1000.0, anchor_ppm=432), CFG)
    assert new.ladder.anchor_ppm == 432 and "going rate moved +2 levels" in d.reason
    # the evidence moves with the going rate (two levels up) and weighs less; so does the demand band
    moved = new.ladder.evidence[ladder.level_of(500) + 2]
    assert 10 <= moved.forwards < 20 and ladder.level_of(500) not in new.ladder.evidence
    assert new.ladder.max_settled_ppm == ladder.fee_of(ladder.level_of(2000) + 2)


def test_an_emptying_channel_is_not_sold_below_its_refill_value() -> None:
    assert ladder.shadow_ppm(1000, 0.1, 400) == 800 and ladder.shadow_ppm(1000, 0.5, 400) == 0
    assert ladder.shadow_ppm(1000, 0.75, 2000) == -500 and ladder.shadow_ppm(1000, 1.0, 2000) == -1000
    assert ladder.shadow_ppm(None, 0.0, 400) == 0
    s = rich({300: (100, 30), 420: (100, 25), 500: (100, 20), 600: (100, 15)}, centre=420)
    for now in range(12, 300, 12):
        o = obs(now=now * H, window_start=(now - 12) * H, fwds=2, rate=1000.0, channel=chan(fee=420, local=0.4),
                refill_ppm=2000)
        d, _ = decide(s, o, CFG)
        assert d.inputs["shadow_ppm"] == 400 and d.new_fee_ppm > 400


def test_a_full_channel_is_discounted_by_no_more_than_routing_earns() -> None:
    """Seen on held-out field seed 10: refilling cost 300 ppm where routing earned ~100, the top channels
    (90 % full) counted every sold sat 240 ppm above its fee and fell to 55 ppm in a 141 ppm market. No
    rebalance that costs more than routing earns is ever made, so a full channel's discount is at most
    its own fee."""
    assert ladder.shadow_ppm(300, 0.9, 100) == -80 and ladder.shadow_ppm(300, 1.0, 100) == -100
    assert ladder.shadow_ppm(300, 0.1, 100) == 240        # the empty side still counts the whole refill
    s = rich({100: (100, 30)}, centre=100)
    d, _ = decide(s, obs(now=12 * H, fwds=2, rate=1000.0, channel=chan(fee=100, local=0.9), refill_ppm=300), CFG)
    assert d.inputs["shadow_ppm"] == -80


def test_the_search_finds_the_best_fee_of_a_market_it_cannot_see() -> None:
    """Closed loop on a synthetic market: payments tolerate LogNormal(ln 400, 0.5) ppm, 6 an hour arrive,
    each moving 1 M sat; the revenue-optimal fee is 0.77 x 400 = 308 ppm; after 30 days the search sits near
    it. The window counters are kept the way the channel actor keeps them (reset when a window starts)."""
    rng = random.Random(7)
    s = attrs.evolve(initial_state(chan(fee=100), 0), anchored=True)
    fee, now, window, fwds, earned = 100, 0, 0, 0, 0
    fees_seen = []
    while now < 30 * 86_400:
        now += 1800
        if window != s.window_start:
            window, fwds, earned = s.window_start, 0, 0
        n = sum(1 for _ in range(3) if 400 * math.exp(0.5 * rng.gauss(0, 1)) >= fee)
        fwds, earned = fwds + n, earned + n * fee * 1000
        o = attrs.evolve(obs(now=now, window_start=window, channel=chan(fee=fee)), forwards_out=fwds,
                         fees_earned_msat=earned)
        d, s = decide(s, o, CFG)
        fee = d.new_fee_ppm if d.broadcast else fee
        fees_seen.append(fee)
    assert 230 <= statistics.median(fees_seen[-336:]) <= 420, statistics.median(fees_seen[-336:])


def test_a_fee_changed_outside_the_plugin_is_adopted() -> None:
    d, new = decide(state(), obs(now=3 * H, channel=chan(fee=800)), CFG)
    assert (d.branch, d.broadcast, d.new_fee_ppm) == ("external", False, 800)
    assert "changed outside the plugin from 500 to 800 ppm (seen at 10800)" in d.reason
    assert new.ladder.centre == ladder.level_of(800) and new.last_broadcast_fee_ppm == 800


def test_an_external_fee_outside_the_bounds_is_corrected_whatever_the_budget() -> None:
    d, new = decide(state(update_times=(H, 2 * H)), obs(now=3 * H, channel=chan(fee=9000)), CFG)
    assert (d.branch, d.broadcast, d.new_fee_ppm) == ("bounds", True, 5000)
    assert "changed outside the plugin from 500 to 9000 ppm" in d.reason and new.ladder.centre == ladder.level_of(5000)


# ------------------------------------------------------------------------------------ gossip hygiene

def test_small_move_is_held_by_the_gate_and_the_window_keeps_running() -> None:
    s = state(climb_fee_ppm=500, last_broadcast_fee_ppm=500, published_ppm=500)
    d, new = decide(s, obs(now=H // 2, floor=510, vegas=2.0), CFG)          # the Vegas floor lifts it by 10
    assert (d.new_fee_ppm, d.broadcast, unchanged(new, s)) == (510, False, True)
    assert "held: |Δ| 10 < gate 25 ppm" in d.reason


def test_daily_budget_holds_and_window_continues_until_it_frees() -> None:
    s = state(update_times=(1, H))
    d, new = decide(s, obs(now=12 * H, fwds=0, channel=chan(local=0.97)), CFG)
    assert (d.broadcast, unchanged(new, s)) == (False, True) and "2 updates in 24 h (limit 2)" in d.reason
    d, new = decide(s, obs(now=86_400 + 2, fwds=0, channel=chan(local=0.97)), CFG)
    assert d.broadcast and new.update_times == (H, 86_400 + 2)
    assert d.inputs["hours"] == pytest.approx((86_400 + 2) / H, abs=0.01)   # measured over the whole held window


def test_fee_already_in_force_is_not_broadcast() -> None:
    d, new = decide(state(), obs(now=12 * H, fwds=0), CFG)
    assert (d.new_fee_ppm, d.broadcast) == (500, False)
    assert new.window_start == 12 * H and new.update_times == ()      # the window closed, nothing sent


def test_failed_broadcast_retry_reproduces_the_decision() -> None:
    s, o = rich({500: (100, 20), 600: (100, 40)}), obs(now=12 * H, fwds=3, rate=1000.0)
    first, _ = decide(s, o, CFG)
    again, _ = decide(s, o, CFG)                     # setchannel failed: the caller kept `s`
    assert first == again


# ------------------------------------------------------------------------------------ bounds

def test_min_fee_is_never_undercut_in_the_dynamic_path() -> None:
    s = state(climb_fee_ppm=5, last_broadcast_fee_ppm=5)
    d, _ = decide(s, obs(now=12 * H, rate=1100.0, channel=chan(fee=5), flow_class=FlowClass.SINK, floor=1), CFG)
    assert d.new_fee_ppm >= CFG.min_fee_ppm


def test_initial_state_starts_from_fee_in_force() -> None:
    s = initial_state(chan(fee=123), now=77)
    assert (s.climb_fee_ppm, s.last_broadcast_fee_ppm, s.window_start, s.ladder.centre) == (123, 123, 77, None)


# ------------------------------------------------------------------------------------ properties

policies = st.builds(
    Policy, peer_id=st.just("p"),
    strategy=st.sampled_from(list(Strategy)),
    fee_ppm_target=st.none() | st.integers(0, 10_000),
    fee_min_ppm=st.none() | st.integers(0, 3_000),
    fee_max_ppm=st.none() | st.integers(0, 8_000),
)
configs = st.builds(Cfg, min_fee_ppm=st.integers(1, 200), max_fee_ppm=st.integers(1, 8_000),
                    hive_fee_ppm=st.integers(0, 100), max_fee_updates_per_day=st.integers(1, 4),
                    gossip_hysteresis=st.sampled_from([0.0, 0.05, 0.1]))
evidence = st.dictionaries(st.integers(10, 50), st.builds(ladder.Evidence, st.floats(0.1, 500), st.floats(0, 200),
                                                          st.floats(0, 1e9)), max_size=6)
ladders = st.builds(ladder.LadderState, centre=st.none() | st.integers(10, 50), evidence=evidence,
                    evidence_at=st.integers(0, 20 * H), dwell_hours=st.sampled_from([12.0, 48.0, 168.0]),
                    max_settled_ppm=st.integers(0, 8_000), anchor_ppm=st.none() | st.integers(1, 5_000))
states = st.builds(
    HillClimbState, climb_fee_ppm=st.integers(0, 8_000), last_broadcast_fee_ppm=st.integers(0, 8_000),
    window_start=st.integers(0, 20 * H), last_branch=st.sampled_from(["init", "search", "congestion", "external"]),
    update_times=st.lists(st.integers(0, 20 * H), max_size=4).map(tuple), ladder=ladders,
)


@st.composite
def observations(draw: st.DrawFn, now: int | None = None, policy: Policy | None = None) -> FeeObservation:
    channel = chan(fee=draw(st.integers(0, 8_000)), local=draw(st.floats(0, 1)),
                   opener=draw(st.sampled_from(["local", "remote"])), htlcs=draw(st.integers(0, 483)),
                   htlc_value=draw(st.integers(0, CAP)))
    return FeeObservation(
        now=now if now is not None else draw(st.integers(20 * H, 40 * H)), channel=channel,
        flow=flow(draw(st.sampled_from(list(FlowClass)))), fees_earned_msat=draw(st.integers(0, 10**9)),
        forwards_out=draw(st.integers(0, 20)), has_routed_out_ever=draw(st.booleans()),
        floor_ppm=draw(st.integers(1, 600)), vegas_multiplier=draw(st.floats(1.0, 3.0)),
        policy=policy or draw(policies), marginal_roi=draw(st.none() | st.floats(-1, 1)), is_zombie=draw(st.booleans()),
        anchor_ppm=draw(st.none() | st.integers(1, 5_000)), refill_ppm=draw(st.none() | st.integers(0, 3_000)),
    )


@settings(max_examples=400, deadline=None)
@given(states, observations(), configs)
def test_fee_always_within_effective_bounds_or_the_pin(s: HillClimbState, o: FeeObservation, cfg: Cfg) -> None:
    d, _ = decide(s, o, cfg)
    strategy = o.policy.strategy
    if strategy is Strategy.PASSIVE or (strategy is Strategy.STATIC and o.policy.fee_ppm_target is None):
        assert d.new_fee_ppm == o.channel.fee_ppm
    elif strategy is Strategy.STATIC:
        assert d.new_fee_ppm == o.policy.fee_ppm_target
    elif strategy is Strategy.HIVE:
        assert d.new_fee_ppm == cfg.hive_fee_ppm
    else:
        b = fee_bounds(o, cfg)
        assert cfg.min_fee_ppm <= b.eff_min <= d.new_fee_ppm <= b.eff_max
        assert b.eff_max <= max(cfg.max_fee_ppm, b.eff_min)
    assert d.broadcast == (d.broadcast and d.new_fee_ppm != o.channel.fee_ppm)
    assert "\n" not in d.reason


@settings(max_examples=150, deadline=None)
@given(configs, st.lists(st.tuples(st.integers(60, 8 * H), st.data()), min_size=1, max_size=40))
def test_broadcasts_never_exceed_daily_limit_outside_congestion_and_bounds_corrections(cfg: Cfg, steps: list[tuple[int, Any]]) -> None:
    dynamic = Policy("p", fee_min_ppm=None, fee_max_ppm=None)
    s, now, fee = initial_state(chan(fee=500), 0), 0, 500
    counted: list[int] = []
    for gap, data in steps:
        now += gap
        o = data.draw(observations(now=now, policy=dynamic))
        o = attrs.evolve(o, channel=attrs.evolve(o.channel, fee_ppm=fee))
        d, new = decide(s, o, cfg)
        if not d.broadcast:
            s = new
        elif data.draw(st.booleans(), label="setchannel succeeded"):
            if d.branch == "bounds":      # only ever to bring a fee outside the operator's bounds back in
                b = fee_bounds(o, cfg)
                assert not b.eff_min <= fee <= b.eff_max and b.eff_min <= d.new_fee_ppm <= b.eff_max
            elif d.branch != "congestion" and s.last_branch != "congestion":
                counted.append(now)
                assert len([t for t in counted if t > now - 86_400]) <= cfg.max_fee_updates_per_day
            s, fee = new, d.new_fee_ppm


# ------------------------------------------------------------- issue 14 item 11: bounds come first

@pytest.mark.parametrize("cfg, policy", [(attrs.evolve(CFG, max_fee_ppm=300), None),
                                          (CFG, Policy(peer_id="p", fee_max_ppm=300)),
                                          (attrs.evolve(CFG, min_fee_ppm=400), None)])
def test_a_fee_outside_the_operators_bounds_is_corrected_whatever_the_daily_budget(cfg, policy) -> None:
    """Seen on CLN v25.12.1: max_fee_ppm lowered to 300, a channel stayed at 321 ppm a day because a manual
    revenue-set-fee had used the budget ("held: 2 updates in 24 h (limit 2)")."""
    fee = 321 if cfg.min_fee_ppm < 321 else 330
    s = state(climb_fee_ppm=fee, last_broadcast_fee_ppm=fee, update_times=(H, 2 * H), last_branch="manual")
    d, new = decide(s, obs(now=3 * H, channel=chan(fee=fee), policy=policy), cfg)
    lo, hi = d.inputs["eff_min_ppm"], d.inputs["eff_max_ppm"]
    assert d.broadcast and lo <= d.new_fee_ppm <= hi and d.branch == "bounds", d
    assert f"outside the operator's bounds [{lo}, {hi}]" in d.reason
    assert new.update_times == (H, 2 * H, 3 * H)          # still counted


def test_inside_the_bounds_the_daily_budget_still_holds() -> None:
    s = state(climb_fee_ppm=290, last_broadcast_fee_ppm=290, update_times=(H, 2 * H))
    d, _ = decide(s, obs(now=3 * H, channel=chan(fee=290), rate=10.0), attrs.evolve(CFG, max_fee_ppm=300))
    assert d.branch != "bounds" and (not d.broadcast or d.new_fee_ppm == 290)


def test_congestion_outside_the_bounds_stays_congestion() -> None:
    """Found in the 10,000 sequences (seeds 1025, 2488): a congestion move relabelled `bounds` hid the
    congestion it was, so the move after it was counted by one side and not the other."""
    s = state(climb_fee_ppm=9000, last_broadcast_fee_ppm=9000, update_times=(H, 2 * H))
    congested = chan(fee=9000, htlcs=450, htlc_value=CAP // 2)
    d, _ = decide(s, obs(now=3 * H, channel=congested), CFG)
    assert d.broadcast and d.branch == "congestion" and d.new_fee_ppm == CFG.max_fee_ppm


def test_a_checkpoint_of_the_earlier_climber_still_loads() -> None:
    """State persisted before the search existed: its old fields are dropped, the search starts fresh."""
    from revops.model import converter
    old = {"climb_fee_ppm": 500, "last_broadcast_fee_ppm": 500, "window_start": 0, "last_revenue_rate": 3.0,
           "direction": 1, "step_ppm": 50, "is_sleeping": False, "last_branch": "hill_climb",
           "update_times": [1, 2], "anchored": True}
    s = converter.structure(old, HillClimbState)
    assert (s.climb_fee_ppm, s.update_times, s.anchored, s.ladder.centre) == (500, (1, 2), True, None)
    s = attrs.evolve(s, ladder=ladder.LadderState(centre=34, evidence={34: ladder.Evidence(12.0, 3.0, 9000.0)}))
    assert converter.structure(json.loads(json.dumps(converter.unstructure(s))), HillClimbState) == s
