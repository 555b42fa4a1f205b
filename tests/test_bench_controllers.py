"""The benchmark's baseline controllers behave as specified (issue #8): clboss-like price theory and
balance modder, feeadjuster's curve, the v1.4 port's compounding multipliers, and the hindsight search
never ending below the best static fee it tried. Fast: tiny scenarios, a few simulated days."""
from __future__ import annotations

import random

import pytest

from bench import hindsight
from bench.controllers import (ClbossLike, Deck, FeeAdjusterLike, StaticFees, balance_multiplier, price_multiplier,
                               read_channels)
from bench.economic import run_baseline
from bench.v14 import V14HillClimber, economic_floor, liquidity_multiplier
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario

TINY = """
name = "tiny"
[[channels]]
name = "a"
capacity_sat = 4_000_000
local_sat = 2_000_000
[[channels]]
name = "b"
capacity_sat = 4_000_000
local_sat = 600_000
[[channels]]
name = "c"
capacity_sat = 2_000_000
local_sat = 1_000_000
{demand}
"""
DEMAND = """
[[demand]]
from = "a"
to = "b"
rate_per_hour = 4
market_ppm = 400
[[demand]]
from = "b"
to = "c"
rate_per_hour = 3
market_ppm = 150
[[demand]]
from = "c"
to = "a"
rate_per_hour = 3
market_ppm = 800
"""


def tiny(demand: str = DEMAND):
    return loads_scenario(TINY.format(demand=demand), name="tiny")


def fees(node: SimNode) -> dict[str, int]:
    return {node.channels[c.scid].name: c.fee_ppm for c in read_channels(node)}


def test_price_theory_levels_are_1_2_up_and_0_8_down():
    assert [round(price_multiplier(p), 4) for p in (-2, -1, 0, 1, 2)] == [0.64, 0.8, 1.0, 1.2, 1.44]


def test_deck_holds_each_card_48h_then_recentres_on_the_best_earner():
    deck, rng, card_s = Deck(), random.Random(1), 48 * 3600
    earned, played = 0, []
    for i in range(5):
        level = deck.play(i * card_s, earned, rng, card_s)
        assert deck.play(i * card_s + card_s - 1, earned, rng, card_s) == level   # held for 48 h
        played.append(level)
        earned += 100 if level == 1 else 10
    assert sorted(played) == [-2, -1, 0, 1, 2]
    deck.play(5 * card_s, earned, rng, card_s)
    assert deck.centre == 1 and sorted(deck.cards + [deck.card]) == [-1, 0, 1, 2, 3]


def test_deck_keeps_its_centre_when_nothing_earned():
    deck, rng = Deck(centre=3), random.Random(2)
    for i in range(6):
        deck.play(i * 10, 0, rng, 10)
    assert deck.centre == 3


def test_clboss_fee_is_competitor_median_times_price_and_balance_modders():
    node = SimNode(tiny(), seed=0)
    ctl = ClbossLike(seed=0)
    ctl.step(node, node.now)
    for ch in read_channels(node):
        level = ctl.decks[ch.peer_id].card
        median = node.clboss._median_fees(ch.peer_id)[1]
        assert ch.fee_ppm == int(median * price_multiplier(level) * balance_multiplier(ch.to_us_msat, ch.capacity_msat))
    assert balance_multiplier(0, 4 * 10**9) > 5 > 1 > balance_multiplier(4 * 10**9, 4 * 10**9)


def test_feeadjuster_prices_by_50_to_the_half_minus_our_share():
    node = SimNode(tiny(), seed=0)
    FeeAdjusterLike(seed=0).step(node, node.now)
    assert fees(node) == {"a": int(100 * 50 ** 0.0), "b": int(100 * 50 ** (0.5 - 0.15)), "c": 100}


def test_v14_multipliers_compound_on_the_fee_even_when_the_climber_turns_down():
    node = SimNode(tiny(demand=""), seed=0)      # no demand: revenue stays 0
    ctl = V14HillClimber()
    ctl.step(node, node.now)
    # first run: up one step (50) from 10 ppm, × liquidity 2.0 (15 % local) × scarcity 1 + 2·(1 − 0.15/0.35)
    first = fees(node)["b"]
    assert first == int(int(60 * 2.0 * 1.0) * (1 + 2 * (1 - 0.15 / 0.35)))
    assert ctl.states[node.by_name["b"].scid].trend == 1
    node.advance_to(node.now + 3600)
    ctl.step(node, node.now)
    st = ctl.states[node.by_name["b"].scid]
    assert st.trend == -1 and fees(node)["b"] > first          # the reference's flaw, ported on purpose
    assert economic_floor(10.0) == 30 and liquidity_multiplier(0.5) == 1.0


def test_static_sets_each_channel_once():
    node = SimNode(tiny(), seed=0)
    ctl = StaticFees("f", 0, 100, per_channel_ppm={node.by_name["a"].scid: 321})
    ctl.step(node, node.now)
    ctl.step(node, node.now + 60)
    assert fees(node) == {"a": 321, "b": 100, "c": 100}
    assert sum(sum(d.values()) for d in node.ledger.fee_updates.values()) == 3


def test_hindsight_search_ends_at_least_at_the_best_of_its_grid(monkeypatch):
    monkeypatch.setattr(hindsight, "GRID", (50, 200, 800))
    monkeypatch.setattr(hindsight, "KNOWLEDGE", (1.0,))
    monkeypatch.setattr(hindsight, "FACTORS", (0.8, 1.25))
    monkeypatch.setattr(hindsight, "ROUNDS", 1)
    sc = tiny()
    uniform = {g: run_baseline(sc, 3, StaticFees("u", 0, g), 2)["net_profit_msat"] for g in (50, 200, 800)}
    ppm, best, evals = hindsight.search(sc, 3, 2)
    assert best["net_profit_msat"] >= max(uniform.values()) > 0
    assert evals == 3 + 2 + 3
    assert run_baseline(sc, 3, StaticFees("f", 0, 100, per_channel_ppm=ppm), 2)["net_profit_msat"] == \
        best["net_profit_msat"]                            # deterministic: the answer reproduces
    assert hindsight.market_ppm(sc) == {"b": pytest.approx(400), "c": pytest.approx(150), "a": pytest.approx(800)}
