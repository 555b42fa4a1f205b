"""Tests for revops.rebalance: candidate selection, rejections, budget/cap/capital, sling job lifecycle."""
from __future__ import annotations

from typing import Any, Callable

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.model import ChannelView, FlowClass, Policy, RebalanceMode, Strategy
from revops import rebalance as rb
from revops.rebalance import (
    BudgetState, Candidate, CapitalState, ChannelEcon, InboundEstimate, JobAction, JobRecord, JobStatus,
    Rejection, Role, SlingStats, backoff_seconds, capital_ok, effective_daily_budget_msat,
    estimate_inbound_fee, find_candidates, job_step, live_reserved_msat, may_drain, may_fill, new_job,
    parse_sling_stats, settle, sling_once_params,
)

NOW = 1_750_000_000.0
HOUR = 3600.0
SAT = 1000


@attrs.frozen
class Cfg:
    rebalance_min_profit: int = 10
    rebalance_min_profit_ppm: int = 0
    rebalance_max_amount: int = 5_000_000
    rebalance_min_amount: int = 50_000
    low_liquidity_threshold: float = 0.2
    high_liquidity_threshold: float = 0.8
    rebalance_cooldown_hours: float = 24
    inbound_fee_estimate_ppm: int = 500
    max_concurrent_jobs: int = 5
    sling_chunk_size_sats: int = 500_000
    sling_max_hops: int = 5
    sling_target_sink: float = 0.35
    sling_target_source: float = 0.65
    sling_target_balanced: float = 0.5
    daily_budget_sats: int = 5000
    enable_proportional_budget: bool = False
    proportional_budget_pct: float = 0.05
    min_wallet_reserve: int = 1_000_000
    hive_rebalance_tolerance: int = 50
    flow_window_days: int = 7
    reservation_timeout_hours: float = 4
    sling_job_timeout_seconds: int = 7200
    channel_cap_pct: float = 0.5
    pingpong_hours: float = 48
    hive_daily_push_sats: int = 2_000_000
    hive_push_max_sats: int = 500_000


CFG = Cfg()
CAPITAL = CapitalState(onchain_msat=5_000_000 * SAT, channels_local_msat=20_000_000 * SAT)


def peer(n: int) -> str:
    return f"{n:02x}" * 33


def chan(scid: str, peer_n: int, *, cap_sat: int = 5_000_000, ratio: float = 0.5, fee: int = 100,
         flow: FlowClass = FlowClass.BALANCED, out_3d: int = 0, out_window: int = 0, earned: int = 0,
         spend: int = 0, mode: RebalanceMode = RebalanceMode.ENABLED, strategy: Strategy = Strategy.DYNAMIC,
         connected: bool = True, state: str = "CHANNELD_NORMAL", **econ: Any) -> ChannelEcon:
    cap = cap_sat * SAT
    local = int(cap * ratio)
    view = ChannelView(scid=scid, peer_id=peer(peer_n), channel_id=scid.replace("x", "") * 4, state=state,
                       opener="local", capacity_msat=cap, local_msat=local, spendable_msat=int(local * 0.99),
                       receivable_msat=int((cap - local) * 0.99), fee_base_msat=0, fee_ppm=fee, htlc_count=0,
                       htlc_value_msat=0, max_accepted_htlcs=483, peer_connected=connected)
    return ChannelEcon(view=view, flow=flow, policy=Policy(peer_id=peer(peer_n), strategy=strategy,
                                                           rebalance_mode=mode),
                       fee_ppm=fee, out_sats_3d=out_3d, out_sats_window=out_window, earned_30d_msat=earned,
                       rebalance_spend_30d_msat=spend, **econ)


def dest(**kw: Any) -> ChannelEcon:
    """Depleted, busy, high-earning channel: 500k sat/day out at 1000 ppm, earned 100k sat in 30 d."""
    args: dict[str, Any] = dict(ratio=0.05, fee=1000, out_3d=1_500_000, out_window=3_500_000, earned=100_000 * SAT)
    args.update(kw)
    return chan("100x1x0", 1, **args)


def source(scid: str = "200x1x0", peer_n: int = 2, **kw: Any) -> ChannelEcon:
    """Full, idle, cheap channel."""
    args: dict[str, Any] = dict(ratio=0.9, fee=100)
    args.update(kw)
    return chan(scid, peer_n, **args)


def inbound(*peers_n: int, ppm: int = 300) -> dict[str, InboundEstimate]:
    return {peer(n): InboundEstimate(ppm, "history") for n in peers_n}


def budget(**kw: Any) -> BudgetState:
    args: dict[str, Any] = dict(daily_budget_msat=5_000 * SAT, spent_24h_msat=0, reserved_msat=0)
    args.update(kw)
    return BudgetState(**args)


def run(channels: list[ChannelEcon], *, estimates: dict[str, InboundEstimate] | None = None,
        bud: BudgetState | None = None, capital: CapitalState | None = CAPITAL, active: tuple[str, ...] = (),
        cfg: Cfg = CFG, unavailable: tuple[str, ...] = ()) -> tuple[list[Candidate], list[Rejection]]:
    if estimates is None:
        estimates = inbound(*range(1, 10))
    return find_candidates(channels, estimates, bud or budget(), capital, active, NOW, cfg, unavailable)


def codes(rejections: list[Rejection], scid: str, role: Role) -> list[str]:
    return [r.code for r in rejections if r.scid == scid and r.role is role]


# ---------------------------------------------------------------------------------------------- happy path

def test_depleted_high_earning_channel_gets_a_profitable_candidate() -> None:
    cands, _ = run([dest(), source()])
    assert len(cands) == 1
    c = cands[0]
    assert c.dest_scid == "100x1x0" and c.source_scids == ("200x1x0",)
    assert c.amount_sat == 500_000                      # one chunk
    assert c.expected_income_msat == 500_000            # 500k sat x util 1 x 1000 ppm
    assert c.expected_fee_msat == 150_000               # expected (inbound 300 ppm), not the maximum
    assert c.expected_profit_msat == 350_000 > 0
    assert c.maxppm == 650                              # halfway between estimate and break-even
    assert c.max_fee_msat == 325_000
    assert not c.hive and "fill 100x1x0" in c.reason


def test_sling_once_params_use_real_keys_one_chunk_and_never_outppm_nor_target() -> None:
    c = run([dest(), source()])[0][0]
    params = sling_once_params(c, CFG)
    assert params == {"scid": "100x1x0", "direction": "pull", "amount": 500_000, "onceamount": 500_000,
                      "maxppm": 650, "candidates": ["200x1x0"], "maxhops": 5,
                      "depleteuptopercent": 0.2, "depleteuptoamount": 2_000_000,
                      "paralleljobs": 1}   # one route at a time, whatever the operator's sling-paralleljobs
    # sling spends at most onceamount x maxppm: the reservation, by construction
    assert params["onceamount"] * SAT * params["maxppm"] // 1_000_000 <= c.max_fee_msat
    assert "outppm" not in params and "target" not in params      # sling-once refuses a target


@pytest.mark.parametrize("flow, ratio, code", [(FlowClass.SINK, 0.35, "at_target"), (FlowClass.SINK, 0.34, None),
                                               (FlowClass.BALANCED, 0.5, "at_target"),
                                               (FlowClass.SOURCE, 0.65, "at_target"),
                                               (FlowClass.SOURCE, 0.64, None)])
def test_a_channel_at_its_flow_class_target_is_not_filled(flow: FlowClass, ratio: float, code: str | None) -> None:
    """`sling-target-*`: a channel whose local share is at or above its flow class's target is left alone
    (with continuous jobs this was sling's target, at which sling idled)."""
    _, why = rb._amount_sat(dest(ratio=ratio, flow=flow), False, CFG)
    assert (why[0] if why and why[0] == "at_target" else None) == code


def test_low_earning_channels_never_get_a_candidate() -> None:
    idle = dest(out_3d=0, out_window=0, earned=0)              # no demand
    cheap = chan("101x1x0", 3, ratio=0.05, fee=50, out_3d=1_500_000, out_window=3_500_000, earned=10**8)
    cands, rej = run([idle, cheap, source()])
    assert cands == []
    assert codes(rej, "100x1x0", Role.DESTINATION) == ["target_too_small"]
    assert codes(rej, "101x1x0", Role.DESTINATION) == ["gate"]


def test_several_sources_best_first_and_expensive_ones_dropped() -> None:
    busy_exp = source("300x1x0", 3, fee=2000, out_3d=3_000_000, out_window=7_000_000)
    mid = source("301x1x0", 4, fee=400, out_3d=150_000, out_window=350_000)   # weight 0.1 -> 40 ppm
    cands, rej = run([dest(), busy_exp, mid, source()])
    assert cands[0].source_scids == ("200x1x0", "301x1x0")
    assert codes(rej, "300x1x0", Role.SOURCE) == ["lost_fee"]
    # profit is computed against the most expensive kept source (sling may pick any of them)
    assert cands[0].expected_profit_msat == 500_000 - 150_000 - 20_000


# ---------------------------------------------------------------------------------------------- rejections

Case = tuple[str, Callable[[], dict[str, Any]], str, Role, str]

DEST_CASES: list[Case] = [
    ("not normal", lambda: dict(channels=[dest(state="ONCHAIN"), source()]), "100x1x0", Role.DESTINATION, "not_normal"),
    ("not depleted", lambda: dict(channels=[dest(ratio=0.5), source()]), "100x1x0", Role.DESTINATION, "not_depleted"),
    ("source_only never filled", lambda: dict(channels=[dest(mode=RebalanceMode.SOURCE_ONLY), source()]),
     "100x1x0", Role.DESTINATION, "policy_no_fill"),
    ("disabled never filled", lambda: dict(channels=[dest(mode=RebalanceMode.DISABLED), source()]),
     "100x1x0", Role.DESTINATION, "policy_no_fill"),
    ("job on the same peer", lambda: dict(channels=[dest(), chan("100x2x0", 1, ratio=0.05), source()],
                                          active=("100x2x0",)), "100x1x0", Role.DESTINATION, "job_running"),
    ("disconnected", lambda: dict(channels=[dest(connected=False), source()]), "100x1x0", Role.DESTINATION,
     "disconnected"),
    ("sink fills itself", lambda: dict(channels=[dest(flow=FlowClass.SINK), source()]), "100x1x0",
     Role.DESTINATION, "flow_sink"),
    ("congested", lambda: dict(channels=[dest(flow=FlowClass.CONGESTED), source()]), "100x1x0",
     Role.DESTINATION, "flow_congested"),
    ("unknown flow", lambda: dict(channels=[dest(flow=FlowClass.UNKNOWN), source()]), "100x1x0",
     Role.DESTINATION, "flow_unknown"),
    ("futility", lambda: dict(channels=[dest(failure_count=11, last_failure_at=NOW - 47 * HOUR), source()]),
     "100x1x0", Role.DESTINATION, "futility"),
    ("backoff", lambda: dict(channels=[dest(failure_count=2, last_failure_at=NOW - 2000), source()]),
     "100x1x0", Role.DESTINATION, "backoff"),
    ("cooldown", lambda: dict(channels=[dest(last_success_at=NOW - 23 * HOUR), source()]), "100x1x0",
     Role.DESTINATION, "cooldown"),
    ("no inbound estimate", lambda: dict(channels=[dest(), source()], estimates={}), "100x1x0",
     Role.DESTINATION, "no_inbound_estimate"),
    ("no demand", lambda: dict(channels=[dest(out_3d=0, out_window=0), source()]), "100x1x0",
     Role.DESTINATION, "target_too_small"),
    ("amount below minimum", lambda: dict(channels=[dest(cap_sat=1_000_000, ratio=0.15, out_3d=180_000,
                                                         out_window=0), source()]),
     "100x1x0", Role.DESTINATION, "amount_too_small"),
    ("no sources", lambda: dict(channels=[dest(), source(ratio=0.5, out_window=700_000)]), "100x1x0",
     Role.DESTINATION, "no_sources"),
    ("gate", lambda: dict(channels=[dest(fee=250), source()]), "100x1x0", Role.DESTINATION, "gate"),
    ("below min profit", lambda: dict(channels=[dest(), source()], cfg=Cfg(rebalance_min_profit=400)),
     "100x1x0", Role.DESTINATION, "below_min_profit"),
    ("below min profit ppm", lambda: dict(channels=[dest(), source()], cfg=Cfg(rebalance_min_profit_ppm=800)),
     "100x1x0", Role.DESTINATION, "below_min_profit"),
    ("channel cap", lambda: dict(channels=[dest(earned=600 * SAT), source()]), "100x1x0", Role.DESTINATION,
     "channel_cap"),
    ("cap counts 30-day spend", lambda: dict(channels=[dest(earned=2_000 * SAT), source()],
                                             bud=budget(channel_spend_30d_msat={"100x1x0": 700 * SAT})),
     "100x1x0", Role.DESTINATION, "channel_cap"),
    ("daily budget", lambda: dict(channels=[dest(), source()], bud=budget(daily_budget_msat=300 * SAT)),
     "100x1x0", Role.DESTINATION, "budget"),
    ("hive beyond tolerance", lambda: dict(channels=[dest(fee=0, strategy=Strategy.HIVE), source()],
                                           estimates=inbound(1, ppm=2000)), "100x1x0", Role.DESTINATION,
     "hive_tolerance"),
    ("hive daily push", lambda: dict(channels=[dest(fee=0, strategy=Strategy.HIVE), source()],
                                     estimates=inbound(1, ppm=50), bud=budget(hive_pushed_24h_sat=1_600_000)),
     "100x1x0", Role.DESTINATION, "hive_daily_push"),
    ("peer already chosen", lambda: dict(channels=[dest(), chan("100x2x0", 1, ratio=0.05, fee=1000,
                                                               out_3d=300_000, out_window=700_000, earned=10**8),
                                                    source()]),
     "100x2x0", Role.DESTINATION, "peer_already_chosen"),
    ("no slot", lambda: dict(channels=[dest(), chan("101x1x0", 3, ratio=0.05, fee=500, out_3d=1_500_000,
                                                    out_window=3_500_000, earned=10**8), source()],
                             active=("999x1x0",), cfg=Cfg(max_concurrent_jobs=2)),
     "101x1x0", Role.DESTINATION, "no_slot"),
]

SOURCE_CASES: list[Case] = [
    ("source not normal", lambda: dict(channels=[dest(), source(state="CHANNELD_AWAITING_LOCKIN")]), "200x1x0",
     Role.SOURCE, "not_normal"),
    ("sink_only never drained", lambda: dict(channels=[dest(), source(mode=RebalanceMode.SINK_ONLY)]),
     "200x1x0", Role.SOURCE, "policy_no_drain"),
    ("disabled never drained", lambda: dict(channels=[dest(), source(mode=RebalanceMode.DISABLED)]),
     "200x1x0", Role.SOURCE, "policy_no_drain"),
    ("source is a job's destination", lambda: dict(channels=[dest(), source()], active=("200x1x0",)),
     "200x1x0", Role.SOURCE, "job_running"),
    ("sling would refuse it", lambda: dict(channels=[dest(), source()], unavailable=("200x1x0",)), "200x1x0",
     Role.SOURCE, "sling_refuses"),
    ("source disconnected", lambda: dict(channels=[dest(), source(connected=False)]), "200x1x0", Role.SOURCE,
     "disconnected"),
    ("source protection", lambda: dict(channels=[dest(), source(ratio=0.75, flow=FlowClass.SOURCE)],
                                       cfg=Cfg(high_liquidity_threshold=0.7)), "200x1x0", Role.SOURCE,
     "source_protected"),
    ("not surplus", lambda: dict(channels=[dest(), source(ratio=0.5, out_window=700_000)]), "200x1x0",
     Role.SOURCE, "not_surplus"),
    ("same peer", lambda: dict(channels=[dest(), chan("100x2x0", 1, cap_sat=200_000, ratio=0.5)]), "100x2x0",
     Role.SOURCE, "same_peer"),
    ("ping-pong", lambda: dict(channels=[dest(last_drained_for={"200x1x0": NOW - 10 * HOUR}), source()]),
     "200x1x0", Role.SOURCE, "pingpong"),
    ("insufficient spendable", lambda: dict(channels=[dest(), source(cap_sat=600_000)]), "200x1x0",
     Role.SOURCE, "insufficient_spendable"),
    ("lost fee", lambda: dict(channels=[dest(), source(fee=2000, out_3d=3_000_000)]), "200x1x0", Role.SOURCE,
     "lost_fee"),
]


@pytest.mark.parametrize("name,setup,scid,role,code", DEST_CASES + SOURCE_CASES,
                         ids=[c[0] for c in DEST_CASES + SOURCE_CASES])
def test_every_rejection_reason(name: str, setup: Callable[[], dict[str, Any]], scid: str, role: Role,
                                code: str) -> None:
    kw = setup()
    cands, rej = run(kw.pop("channels"), **kw)
    assert scid not in {c.dest_scid for c in cands}
    assert code in codes(rej, scid, role), rej
    assert all(r.reason for r in rej)


@pytest.mark.parametrize("code,kw", [
    ("capital", dict(capital=None)),
    ("capital", dict(capital=CapitalState(0, 0, error="listfunds timed out"))),
    ("capital", dict(capital=CapitalState(100 * SAT, 200_000 * SAT))),
    ("no_slots", dict(active=tuple(f"9{i}x1x0" for i in range(5)))),
    ("budget_exhausted", dict(bud=budget(spent_24h_msat=3_000 * SAT, reserved_msat=2_000 * SAT))),
])
def test_node_wide_blocks_fail_closed(code: str, kw: dict[str, Any]) -> None:
    cands, rej = run([dest(), source()], **kw)
    assert cands == []
    assert [(r.scid, r.role, r.code) for r in rej] == [("*", Role.NODE, code)]


def test_a_sink_only_destination_may_be_filled_and_source_only_source_drained() -> None:
    cands, _ = run([dest(mode=RebalanceMode.SINK_ONLY), source(mode=RebalanceMode.SOURCE_ONLY)])
    assert [(c.dest_scid, c.source_scids) for c in cands] == [("100x1x0", ("200x1x0",))]


def test_passive_strategy_is_governed_by_its_rebalance_mode_only() -> None:
    assert run([dest(strategy=Strategy.PASSIVE), source(strategy=Strategy.PASSIVE)])[0]
    cands, rej = run([dest(strategy=Strategy.PASSIVE, mode=RebalanceMode.DISABLED), source()])
    assert cands == [] and codes(rej, "100x1x0", Role.DESTINATION) == ["policy_no_fill"]


def test_policy_helpers() -> None:
    modes = {m: (may_fill(Policy(peer(1), rebalance_mode=m)), may_drain(Policy(peer(1), rebalance_mode=m)))
             for m in RebalanceMode}
    assert modes == {RebalanceMode.ENABLED: (True, True), RebalanceMode.DISABLED: (False, False),
                     RebalanceMode.SINK_ONLY: (True, False), RebalanceMode.SOURCE_ONLY: (False, True)}


# ---------------------------------------------------------------------------------------------- peers

def test_peer_liquidity_is_aggregated_when_judging_depletion() -> None:
    twin_full = chan("100x2x0", 1, ratio=0.9)      # same peer: 0.05 and 0.9 -> 0.475 overall
    cands, rej = run([dest(), twin_full, source()])
    assert cands == []
    assert codes(rej, "100x1x0", Role.DESTINATION) == ["not_depleted"]
    assert "not_surplus" in codes(rej, "100x2x0", Role.SOURCE)


def test_ping_pong_expires_after_pingpong_hours() -> None:
    old = dest(last_drained_for={"200x1x0": NOW - 49 * HOUR})
    assert run([old, source()])[0]


def test_ping_pong_applies_to_every_channel_of_the_peer() -> None:
    drained_for_twin = dest(last_drained_for={"200x2x0": NOW - HOUR})
    cands, rej = run([drained_for_twin, source(), source("200x2x0", 2)])
    assert cands == []
    assert codes(rej, "200x1x0", Role.SOURCE) == ["pingpong"]


def test_by_default_a_depleted_earner_refilled_an_hour_ago_is_refilled_again() -> None:
    """The reference's 24 h cooldown left the top earner of held-out `drifting` seed 10 empty and refused for
    213 of 720 hours (docs/rebalancing.md, "No cooldown by default"); each refill passes the gate on its own."""
    from revops import config as C

    default = attrs.evolve(CFG, rebalance_cooldown_hours=C.option_for("revenue-ops-rebalance-cooldown-hours").default)
    cands, rejections = run([dest(last_success_at=NOW - HOUR), source()], cfg=default)
    assert [c.dest_scid for c in cands] == ["100x1x0"]
    assert "cooldown" not in codes(rejections, "100x1x0", Role.DESTINATION)


def test_the_gate_judges_a_refill_on_a_day_of_demand_whatever_the_cooldown() -> None:
    """u = demand per day x 1 day / amount: a cooldown set by the operator only delays, it does not change
    what a refill is expected to earn (it used to be the gate's horizon: 0 h meant u = 0, nothing ever passed)."""
    # 200k sat a day: the refill to three days of demand is 350k sat, of which 200k sell within a day
    for hours in (0, 24, 72):
        c = run([dest(out_3d=600_000, out_window=1_400_000), source()],
                cfg=attrs.evolve(CFG, rebalance_cooldown_hours=hours))[0][0]
        assert (c.amount_sat, c.expected_income_msat) == (350_000, 200_000)   # 200k sat sold at 1000 ppm


def test_backoff_and_futility_release_in_time() -> None:
    assert backoff_seconds(0) == 600 and backoff_seconds(2) == 2400 and backoff_seconds(9) == 9600
    assert run([dest(failure_count=2, last_failure_at=NOW - 2401), source()])[0]
    assert run([dest(failure_count=11, last_failure_at=NOW - 49 * HOUR), source()])[0]
    assert run([dest(last_success_at=NOW - 25 * HOUR), source()])[0]


# ---------------------------------------------------------------------------------------------- hive

def test_hive_zero_ppm_destination_is_filled_within_tolerance() -> None:
    hive = dest(fee=0, strategy=Strategy.HIVE, out_3d=0, out_window=0, earned=0)
    cands, _ = run([hive, source()], estimates=inbound(1, ppm=80))
    assert len(cands) == 1
    c = cands[0]
    assert c.hive and c.amount_sat == 500_000
    assert c.expected_income_msat == 0
    assert c.expected_profit_msat == -40_000              # 80 ppm of 500k sat
    assert c.max_fee_msat <= 50 * SAT                      # even the worst case stays within tolerance


def test_hive_push_is_bounded_per_job() -> None:
    hive = dest(fee=0, strategy=Strategy.HIVE)
    cands, _ = run([hive, source()], estimates=inbound(1, ppm=80), cfg=Cfg(hive_push_max_sats=200_000))
    assert cands[0].amount_sat == 200_000


def test_hive_candidates_rank_after_profitable_ones() -> None:
    hive = chan("101x1x0", 3, ratio=0.05, fee=0, strategy=Strategy.HIVE)
    cands, _ = run([hive, dest(), source()], estimates=inbound(1, 3, ppm=80))
    assert [c.dest_scid for c in cands] == ["100x1x0", "101x1x0"]


# ---------------------------------------------------------------------------------------------- budget

def test_effective_daily_budget() -> None:
    assert effective_daily_budget_msat(CFG, 10**9) == 5_000_000
    prop = Cfg(enable_proportional_budget=True, proportional_budget_pct=0.3)
    assert effective_daily_budget_msat(prop, 10_000_000) == 5_000_000
    assert effective_daily_budget_msat(prop, 100_000_000) == 30_000_000
    assert effective_daily_budget_msat(prop, -5) == 5_000_000


def test_capital_ok() -> None:
    assert capital_ok(None, CFG) == (False, "capital unknown: fail closed")
    assert capital_ok(CAPITAL, CFG)[0]
    assert not capital_ok(CapitalState(-1, 10**12), CFG)[0]


def test_budget_is_shared_across_the_cycle() -> None:
    other = chan("101x1x0", 3, ratio=0.05, fee=1000, out_3d=1_500_000, out_window=3_500_000, earned=10**8)
    cands, rej = run([dest(), other, source()], bud=budget(daily_budget_msat=400 * SAT))
    assert len(cands) == 1 and sum(c.max_fee_msat for c in cands) <= 400 * SAT
    assert codes(rej, "101x1x0", Role.DESTINATION) == ["budget"]


def test_live_reservations_expire() -> None:
    assert live_reserved_msat([(NOW - HOUR, 10), (NOW - 5 * HOUR, 20)], NOW, CFG) == 10


def test_inbound_estimate_sources() -> None:
    assert estimate_inbound_fee([100, 300, 200], 50, CFG) == InboundEstimate(200, "history")
    assert estimate_inbound_fee([100], 50, CFG) == InboundEstimate(550, "last_hop")
    assert estimate_inbound_fee([], None, CFG) == InboundEstimate(1000, "default")


# ---------------------------------------------------------------------------------------------- property

@st.composite
def node(draw: st.DrawFn) -> tuple[list[ChannelEcon], BudgetState]:
    n = draw(st.integers(2, 7))
    chans = []
    for i in range(n):
        chans.append(chan(f"{100 + i}x1x0", draw(st.integers(1, 4)),
                          cap_sat=draw(st.sampled_from([600_000, 2_000_000, 5_000_000])),
                          ratio=draw(st.floats(0.0, 1.0)), fee=draw(st.integers(0, 3000)),
                          flow=draw(st.sampled_from(list(FlowClass))),
                          out_3d=draw(st.integers(0, 3_000_000)), out_window=draw(st.integers(0, 7_000_000)),
                          earned=draw(st.integers(0, 2_000_000)), spend=draw(st.integers(0, 500_000)),
                          mode=draw(st.sampled_from(list(RebalanceMode))),
                          strategy=draw(st.sampled_from(list(Strategy))), connected=draw(st.booleans())))
    bud = budget(daily_budget_msat=draw(st.integers(0, 2_000_000)), spent_24h_msat=draw(st.integers(0, 500_000)),
                 reserved_msat=draw(st.integers(0, 500_000)))
    return chans, bud


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(node(), st.integers(0, 1500))
def test_no_candidate_breaks_budget_cap_or_policy(setup: tuple[list[ChannelEcon], BudgetState], ppm: int) -> None:
    chans, bud = setup
    cands, _ = run(chans, estimates=inbound(1, 2, 3, 4, ppm=ppm), bud=bud)
    by_scid = {c.scid: c for c in chans}
    assert sum(c.max_fee_msat for c in cands) <= max(0, bud.remaining_msat)
    for c in cands:
        d = by_scid[c.dest_scid]
        assert may_fill(d.policy)
        assert all(may_drain(by_scid[s].policy) for s in c.source_scids)
        assert all(by_scid[s].peer_id != d.peer_id for s in c.source_scids)
        assert c.maxppm >= c.inbound_ppm
        if c.hive:
            assert c.expected_profit_msat >= -CFG.hive_rebalance_tolerance * SAT
            assert c.max_fee_msat - c.expected_income_msat <= CFG.hive_rebalance_tolerance * SAT
        else:
            net = max(0, d.earned_30d_msat - d.rebalance_spend_30d_msat)
            assert d.rebalance_spend_30d_msat + c.max_fee_msat <= CFG.channel_cap_pct * net
            assert c.expected_profit_msat >= CFG.rebalance_min_profit * SAT
    assert len({c.dest_peer for c in cands}) == len(cands)


# ---------------------------------------------------------------------------------------------- sling jobs

def stats_obj(spent: int, amount: int, ok: int, tried: int) -> dict[str, Any]:
    """sling-stats {scid, json: true} as sling v4.1 returns it (reference §12)."""
    succ = None if ok == 0 and amount == 0 else {
        "time_window_days": 30, "total_amount_sats": amount, "feeppm_weighted_avg": 412, "feeppm_min": 380,
        "feeppm_max": 450, "feeppm_median": 410, "feeppm_90th_percentile": 445,
        "top_5_channel_partners": [{"alias": "ACINQ", "scid": "200x1x0", "sats": amount}],
        "most_common_hop_count": 3, "time_of_last_rebalance": "2025-06-15 12:00:00", "total_rebalances": ok,
        "total_spent_sats": spent}
    fail = None if tried == 0 else {
        "time_window_days": 30, "total_amount_tried_sats": tried * 500_000,
        "top_5_failure_reasons": [{"failure_reason": "TEMPORARY_CHANNEL_FAILURE", "failure_count": tried}],
        "top_5_fail_nodes": [], "top_5_channel_partners": [], "most_common_hop_count": 4,
        "time_of_last_attempt": "2025-06-15 12:10:00", "total_rebalances_tried": tried}
    return {"successes_in_time_window": succ, "failures_in_time_window": fail}


def a_job(baseline: SlingStats = SlingStats(), **kw: Any) -> JobRecord:
    c = run([dest(), source()])[0][0]
    job = new_job("job-1", c, baseline, local_msat=250_000 * SAT, now=NOW)
    return attrs.evolve(job, **kw)


def test_parse_sling_stats() -> None:
    assert parse_sling_stats(stats_obj(0, 0, 0, 0)) == SlingStats()
    assert parse_sling_stats(stats_obj(200, 500_000, 1, 3)) == SlingStats(200, 500_000, 1, 3)
    with pytest.raises(ValueError):
        parse_sling_stats({"successes_in_time_window": {"total_amount_sats": "1,000"}})
    with pytest.raises(ValueError):
        parse_sling_stats([])  # type: ignore[arg-type]


def test_job_success_is_judged_from_sling_relative_to_baseline() -> None:
    base = parse_sling_stats(stats_obj(1_000, 2_000_000, 4, 9))   # an earlier job on this scid
    job = a_job(base)
    # our local balance rose by 400k sat through routing, sling moved nothing: not a success
    j1, act, why = job_step(job, parse_sling_stats(stats_obj(1_000, 2_000_000, 4, 11)), 650_000 * SAT,
                            NOW + 600, CFG)
    assert act is JobAction.CONTINUE and j1.moved_msat == 0 and j1.failed_attempts == 2
    assert "not used to judge" in why
    j2, act, why = job_step(j1, parse_sling_stats(stats_obj(1_205, 2_500_000, 5, 11)), 250_000 * SAT,
                            NOW + 1200, CFG)
    assert act is JobAction.STOP_SUCCESS and j2.status is JobStatus.SUCCEEDED
    assert (j2.spent_msat, j2.moved_msat, j2.last_progress_at) == (205 * SAT, 500_000 * SAT, NOW + 1200)
    assert settle(j2.reserved_msat, j2.spent_msat) == settle(325_000, 205_000)
    assert settle(325_000, 205_000).release_msat == 120_000


def test_job_budget_stop_on_overspend_and_exhaustion() -> None:
    job = a_job()
    _, act, _ = job_step(job, parse_sling_stats(stats_obj(330, 500_000, 1, 0)), 0, NOW + 60, CFG)
    assert act is JobAction.STOP_BUDGET                        # 330 sat > 325 sat reserved
    assert settle(325_000, 330_000).overspend_msat == 5_000
    _, act, _ = job_step(job, parse_sling_stats(stats_obj(325, 300_000, 2, 0)), 0, NOW + 60, CFG)
    assert act is JobAction.STOP_BUDGET                        # nothing left, target not reached


def test_job_timeout_and_failure() -> None:
    job = a_job()
    j, act, why = job_step(job, parse_sling_stats(stats_obj(100, 200_000, 1, 4)), 0, NOW + 7200, CFG)
    assert act is JobAction.STOP_TIMEOUT and "partial" in why and j.status is JobStatus.TIMED_OUT
    _, act, _ = job_step(job, None, 0, NOW + 7200, CFG)
    assert act is JobAction.STOP_TIMEOUT
    j, act, _ = job_step(job, parse_sling_stats(stats_obj(0, 0, 0, 10)), 0, NOW + 900, CFG)
    assert act is JobAction.STOP_FAILED and j.status is JobStatus.FAILED
    done, act, why = job_step(j, parse_sling_stats(stats_obj(0, 0, 0, 12)), 0, NOW + 999, CFG)
    assert (done, act) == (j, JobAction.STOP_FAILED) and "already" in why


def test_a_job_whose_sling_stats_cannot_be_read_is_stopped_at_once() -> None:
    """Fail closed (sequence seed 4118): the job used to go on blind until its timeout, on the belief that
    sling's target bounds it; a balanced sling job only idles and pulls again after a drain. A job whose
    spend we cannot see is stopped at the first poll without readable stats."""
    j, act, why = job_step(a_job(), None, 0, NOW + 60, CFG)
    assert act is JobAction.STOP_FAILED and j.status is JobStatus.FAILED and "fail closed" in why


def test_job_fails_closed_when_counters_go_backwards() -> None:
    job = a_job(SlingStats(50, 100_000, 1, 0))
    j, act, _ = job_step(job, SlingStats(0, 0, 0, 0), 0, NOW + 60, CFG)
    assert act is JobAction.STOP_FAILED and j.spent_msat == j.reserved_msat


def test_last_hop_ppm_is_the_dearest_channel_of_the_peer_towards_us_with_base_fee_as_ppm_of_a_chunk():
    gossip = {"channels": [
        {"source": "02aa", "destination": "03us", "fee_per_millionth": 100, "base_fee_millisatoshi": 1000},
        {"source": "02aa", "destination": "03us", "fee_per_millionth": 40, "base_fee_millisatoshi": 0},
        {"source": "02bb", "destination": "03us", "fee_per_millionth": 0, "base_fee_millisatoshi": 0}]}
    assert rb.last_hop_ppm(gossip, 500_000) == {"02aa": 102, "02bb": 0}


@pytest.mark.parametrize("tolerance,ppm,expected", [
    (50, 600, (83_333, None)),           # shrunk to what the tolerance pays for
    (600, 600, (500_000, None)),         # fits: unchanged
    (50, 1100, (0, "hive_tolerance")),   # even the minimum amount would cost more
])
def test_hive_pushes_are_sized_to_the_tolerance(tolerance, ppm, expected):
    cfg = attrs.evolve(CFG, hive_rebalance_tolerance=tolerance)
    amount, why = rb._fit_tolerance(500_000, rb.InboundEstimate(ppm, "last_hop"), cfg)
    assert (amount, why[0] if why else None) == expected


def test_source_rejections_come_in_pool_order_and_sources_cheapest_first_for_each_destination() -> None:
    """Sources are scored once per cycle (revops/rebalance.py _SourcePool, _dearest_kept); every destination
    still gets its own exclusions, its own amount's spendable check, the first reason that applies, and the
    same order."""
    busy = dict(out_window=700_000)              # 100k sat/day out: a source's lost fee is a share of its fee
    one = dest()                                 # peer 1, one 500k chunk
    other = chan("110x1x0", 3, ratio=0.05, fee=1000, out_3d=600_000, out_window=1_400_000, earned=100_000 * SAT,
                 last_drained_for={"200x4x0": NOW - HOUR})      # peer 3: 350k sat; drained for peer 4 lately
    pool = [source("200x1x0", 2, cap_sat=600_000),              # idle; 414,600 sat above the deplete floor
            chan("200x2x0", 1, cap_sat=200_000, ratio=0.5),    # peer 1: idle and balanced, so a source
            source("200x4x0", 4, fee=300, **busy), source("200x5x0", 5, fee=5000, **busy),
            source("200x6x0", 6, fee=50, **busy), source("200x7x0", 7, fee=50, cap_sat=6_000_000, **busy)]
    cands, rej = run([one, other, *pool], estimates=inbound(1, 3, ppm=100))
    assert {c.dest_scid: (c.amount_sat, c.source_scids) for c in cands} == {
        "100x1x0": (500_000, ("200x7x0", "200x6x0", "200x4x0")),   # equal lost fee: more spendable first
        "110x1x0": (350_000, ("200x1x0", "200x7x0", "200x6x0"))}   # idle 200x1x0 loses no fee
    by_dest = {d: [(r.scid, r.code) for r in rej if r.role is Role.SOURCE and r.dest_scid == d]
               for d in ("100x1x0", "110x1x0")}
    assert by_dest == {
        "100x1x0": [("200x1x0", "insufficient_spendable"), ("200x2x0", "same_peer"), ("200x5x0", "lost_fee")],
        "110x1x0": [("200x2x0", "insufficient_spendable"), ("200x4x0", "pingpong"), ("200x5x0", "lost_fee")]}
