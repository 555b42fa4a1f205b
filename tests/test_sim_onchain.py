"""What an on-chain fee spike changes for a routing node (docs/simulator.md "Force closes" and "On-chain
substitution"), and the market's willingness to pay — each checked against numbers computed by hand."""
from revops.simulate import Simulation, summary
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario

DAY = 86400

TWO = """
[[channels]]
name = "a"
capacity_sat = 5_000_000
local_sat = 1_000_000
[[channels]]
name = "b"
capacity_sat = 10_000_000
local_sat = 8_000_000
opener = "local"
"""


def _node(text: str, seed: int = 0) -> SimNode:
    return SimNode(loads_scenario(text), seed=seed)


def test_forced_close_during_a_spike_costs_what_the_bolt3_weights_say():
    # every forwarded HTLC gets stuck; the spike puts the 6-block feerate at 10 × 20 sat/vB = 50,000 sat/kw,
    # i.e. 50 sat (50,000 msat) per weight unit. Channel b holds four HTLCs of ours: 2 × 1,000,000 sat
    # (worth claiming) and 2 × 300 sat (under the 546-sat dust limit: trimmed).
    node = _node(TWO + """
[market]
htlc_force_close_rate = 1.0
downstream_fail_rate = 0.0
onchain_demand_elasticity = 0.0
onchain_tolerance_elasticity = 0.0
[mempool]
baseline_sat_vb = 10
[[mempool.spikes]]
at_day = 0.9
duration_hours = 12
multiplier = 20
[[congestion]]
channel = "b"
at_day = 0.5
duration_hours = 48
slots = 2
value_sat = 2_000_000
[[congestion]]
channel = "b"
at_day = 0.5
duration_hours = 48
slots = 2
value_sat = 600
[[demand]]
from = "a"
to = "b"
rate_per_hour = 20
amount_dist = "fixed"
median_sat = 20_000
market_ppm = 1000
tolerance_sigma = 0
start_day = 1.0
end_day = 1.2
""", seed=3)
    wallet = node.onchain_msat
    node.advance_to(node.scenario.start_time + 2 * DAY)
    per_wu = 50_000                                   # msat per weight unit
    fee = lost = 0
    held_left = True
    offered = [f for f in node.forwards if "out_msat" in f]
    for f in offered:
        if f["status"] == "failed":                   # downstream stuck: b closes, HTLC-timeout (663 WU)
            assert 663 * per_wu > f["out_msat"]       # 20,000 sat is not worth a 33,150-sat claim: lost
            lost += f["out_msat"]
            untrimmed = 1
            if held_left:                             # the held HTLCs go on chain with the first close
                fee += 2 * 663 * per_wu
                lost += 2 * 300_000
                untrimmed += 2
                held_left = False
            fee += (1112 + 172 * untrimmed) * per_wu
        else:                                         # upstream stuck: a closes, HTLC-success (703 WU)
            assert f["status"] == "settled" and 703 * per_wu > f["in_msat"]
            lost += f["in_msat"]
            fee += (1112 + 172) * per_wu
    statuses = {f["status"] for f in offered}
    assert statuses == {"failed", "settled"}, statuses   # this seed exercises both sides
    led = node.ledger
    assert led.force_closes == len(offered)
    assert (led.onchain_fee_msat, led.htlc_lost_msat) == (fee, lost)
    assert node.onchain_msat == wallet - fee - lost
    assert led.net_profit_msat == led.fees_earned_msat - led.rebalance_cost_msat - fee - lost
    assert summary(Simulation(node, None, None), 2)["net_profit_msat"] == led.net_profit_msat


def test_the_same_htlc_is_worth_claiming_when_fees_are_calm():
    node = _node(TWO + "[mempool]\nbaseline_sat_vb = 10\n")    # 2,500 sat/kw = 2.5 sat per weight unit
    cost = node.force_close_onchain(node.by_name["b"], 20_000_000, offered=True)
    assert cost == node.ledger.onchain_fee_msat == 663 * 2_500 + (1112 + 172) * 2_500
    assert node.ledger.htlc_lost_msat == 0
    assert node.force_close_onchain(node.by_name["b"], 500_000, offered=True) == 500_000 + 1112 * 2_500  # trimmed


SUBST = TWO + """
[market]
onchain_demand_elasticity = 0.5
onchain_tolerance_elasticity = 0.25
[mempool]
baseline_sat_vb = 10
[[mempool.spikes]]
at_day = 1
duration_hours = 24
multiplier = 16
[[demand]]
from = "a"
to = "b"
rate_per_hour = 200
amount_dist = "fixed"
median_sat = 10_000
market_ppm = 1000
market_base_msat = 0
tolerance_sigma = 0.3
"""


def test_a_spike_brings_more_payments_that_tolerate_higher_fees_as_documented():
    node = _node(SUBST, seed=1)
    counts, wtps = [], []
    for day in (1, 1.5, 2, 3):
        node.advance_to(node.scenario.start_time + int(day * DAY))
        counts.append(node.ledger.payments_wanted)
        wtps.append(node.ledger.wtp_msat)
        if day == 1.5:
            s = node.streams[0]
            assert (s.rate_factor, s.tolerance_factor) == (16 ** 0.5, 16 ** 0.25) == (4.0, 2.0)
    s = node.streams[0]
    assert (s.rate_factor, s.tolerance_factor) == (1.0, 1.0)
    before, during, after = counts[0], counts[2] - counts[0], counts[3] - counts[2]
    assert 3.6 < during / before < 4.4                # 200/h × 16^0.5; Poisson noise ~4 %
    assert 0.9 < after / before < 1.1
    mean_before = wtps[0] / before
    mean_during = (wtps[2] - wtps[0]) / during
    assert 1.9 < mean_during / mean_before < 2.1      # tolerance × 16^0.25


def test_without_a_spike_the_new_keys_change_no_draw():
    calm = TWO + """
[[demand]]
from = "a"
to = "b"
rate_per_hour = 30
market_ppm = 500
"""
    off = calm + "[market]\nhtlc_force_close_rate = 0\nonchain_demand_elasticity = 0\nonchain_tolerance_elasticity = 0\n"
    a, b = _node(calm, seed=2), _node(off, seed=2)
    for n in (a, b):
        n.advance_to(n.scenario.start_time + 3 * DAY)
    assert a.ledger.force_closes == 0 and a.ledger.forwards_settled > 30
    assert a.snapshot() == b.snapshot()


def test_willingness_to_pay_is_the_sum_of_every_wanting_payments_tolerance():
    # fixed amounts and tolerance_sigma 0: each stream's tolerance is exact.
    #   ab: 10,000 sat at 500 ppm + 1 sat = 6,000 msat >= our 1 sat + 10 ppm = 1,100 msat: reaches us,
    #       b (60,000 sat local) soon fails some for liquidity;
    #   ac: 10,000 sat at 5 ppm + 1 sat = 1,050 msat < 1,100 msat: priced out;
    #   db: d is full on our side, its peer cannot send: no inbound.
    node = _node("""
[[channels]]
name = "a"
capacity_sat = 5_000_000
local_sat = 0
[[channels]]
name = "b"
capacity_sat = 200_000
local_sat = 60_000
[[channels]]
name = "c"
capacity_sat = 1_000_000
[[channels]]
name = "d"
capacity_sat = 1_000_000
local_sat = 1_000_000
[[demand]]
name = "ab"
from = "a"
to = "b"
rate_per_hour = 30
amount_dist = "fixed"
median_sat = 10_000
market_ppm = 500
tolerance_sigma = 0
[[demand]]
name = "ac"
from = "a"
to = "c"
rate_per_hour = 10
amount_dist = "fixed"
median_sat = 10_000
market_ppm = 5
tolerance_sigma = 0
[[demand]]
name = "db"
from = "d"
to = "b"
rate_per_hour = 10
amount_dist = "fixed"
median_sat = 10_000
market_ppm = 500
tolerance_sigma = 0
""", seed=4)
    node.advance_to(node.scenario.start_time + DAY)
    led = node.ledger
    assert led.forwards_failed_liquidity > 0 and led.payments_priced_out > 0 and led.payments_no_inbound > 0
    assert led.payments_wanted == led.payments_arrived + led.payments_priced_out + led.payments_no_inbound
    assert led.wtp_msat == (led.payments_arrived * 6_000 + led.payments_priced_out * 1_050
                            + led.payments_no_inbound * 6_000)
    s = summary(Simulation(node, None, None), 1)
    assert s["wtp_msat"] == led.wtp_msat and s["wtp_share"] == round(led.fees_earned_msat / led.wtp_msat, 6)
