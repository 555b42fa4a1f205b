"""The clboss-like baseline's EarningsRebalancer behaves as clboss's source says (bench/clboss_rebalancer.py):
it refills a depleted peer that earned from a surplus one, pays at most its fee budget (0.5 % of the
amount, capped at the destination's net earnings), books what it paid on the simulated node's ledger and
in its earnings tracker, and never refills a peer that earned nothing. Tiny scenarios, no long runs."""
from __future__ import annotations

from bench.clboss_rebalancer import Earnings, EarningsRebalancer, PeerBalance, plan_moves
from bench.controllers import ClbossLike, read_channels
from bench.economic import run_baseline
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario
from tests.test_bench_controllers import TINY

MARKET = """
[rebalance]
cost_ppm_median = {cost}
cost_ppm_sigma = {sigma}
failure_probability = {fail}
"""


def scenario(cost: float = 300, sigma: float = 0.0, fail: float = 0.0, demand: str = ""):
    """test_bench_controllers' three channels (b at 15 % local) on a rebalancing market of our choosing."""
    market = MARKET.format(cost=cost, sigma=sigma, fail=fail)
    return loads_scenario(TINY.format(demand=market + demand), name="reb")


def node(cost: float = 300, fail: float = 0.0) -> SimNode:
    return SimNode(scenario(cost=cost, fail=fail), seed=0)


def earned(reb: EarningsRebalancer, n: SimNode, out: str, into: str, fee_msat: int) -> None:
    """A settled forward into `into` and out of `out`, as ForwardFeeMonitor reports it to the tracker."""
    reb.forward_fee(n.by_name[into].peer_id, n.by_name[out].peer_id, fee_msat)


def test_refills_the_depleted_earning_peer_from_the_surplus_one_and_books_the_cost():
    n = node(cost=300)
    a, b, c = (n.by_name[x] for x in "abc")
    reb = EarningsRebalancer(seed=0)
    earned(reb, n, out="b", into="a", fee_msat=10_000_000)         # b earned 10,000 sat going out
    before = {x.name: x.to_us_msat for x in (a, b, c)}
    [res] = reb.run(n, read_channels(n))
    # b (15 % local) wants 75 %: 2.4 M sat; a, the source that earned most coming in, may give down to 27.5 %
    assert (res.move.source, res.move.destination) == (a.peer_id, b.peer_id)
    amount = 2_000_000_000 - int(4_000_000_000 * 0.275)
    assert res.move.amount_msat == res.transferred_msat == amount
    assert res.move.fee_budget_msat == amount // 200                                   # 0.5 %
    fee = -(-300 * amount // 1_000_000)
    assert res.fee_spent_msat == fee
    assert b.to_us_msat == before["b"] + amount and a.to_us_msat == before["a"] - amount - fee
    assert c.to_us_msat == before["c"]
    assert n.ledger.rebalance_cost_msat == fee and n.ledger.rebalances_succeeded == 1
    # the tracker debits the source's in and the destination's out earnings
    assert reb.earnings[b.peer_id].out_net == 10_000_000 - fee and reb.earnings[a.peer_id].in_net == 10_000_000 - fee


def test_budget_is_capped_at_the_destinations_net_earnings():
    n = node(cost=300)
    reb = EarningsRebalancer(seed=0)
    earned(reb, n, out="b", into="a", fee_msat=1_000_000)           # 1,000 sat: < 0.5 % of 900,000 sat
    [res] = reb.run(n, read_channels(n))
    assert res.move.fee_budget_msat == 1_000_000 and res.move.amount_msat == 200_000_000


def test_never_pays_more_than_its_fee_limit_when_the_market_is_dear():
    n = node(cost=20_000)                     # every route costs 2 %: four times clboss's 0.5 %
    reb = EarningsRebalancer(seed=0)
    earned(reb, n, out="b", into="a", fee_msat=10_000_000)
    [res] = reb.run(n, read_channels(n))
    # the whole amount is refused 6 times and split (amount/φ, rest); the pieces share the one budget
    assert res.fee_spent_msat <= res.move.fee_budget_msat
    assert 0 < res.transferred_msat < res.move.amount_msat
    pieces = n.ledger.rebalances_succeeded                  # each piece's fee is rounded up to the msat
    assert 0 <= res.fee_spent_msat - 20_000 * res.transferred_msat // 1_000_000 <= pieces
    assert n.ledger.rebalance_cost_msat == res.fee_spent_msat
    assert n.ledger.rebalances_failed == res.routes_failed >= 6


def test_failed_payments_cost_nothing_and_a_dead_market_moves_nothing():
    n = node(cost=300, fail=1.0)
    reb = EarningsRebalancer(seed=0)
    earned(reb, n, out="b", into="a", fee_msat=10_000_000)
    before = {x.name: x.to_us_msat for x in n.channels.values()}
    [res] = reb.run(n, read_channels(n))
    assert res.transferred_msat == res.fee_spent_msat == 0
    assert {x.name: x.to_us_msat for x in n.channels.values()} == before
    assert n.ledger.rebalance_cost_msat == 0 and n.ledger.rebalances_failed == res.routes_failed > 0
    assert reb.earnings[n.by_name["b"].peer_id].out_net == 10_000_000


def test_never_refills_a_peer_that_earned_nothing():
    n = node(cost=300)
    reb = EarningsRebalancer(seed=0)
    earned(reb, n, out="a", into="b", fee_msat=10_000_000)          # b only earned coming IN
    assert reb.run(n, read_channels(n)) == []
    assert n.ledger.rebalance_cost_msat == 0 and n.ledger.rebalances_failed == 0
    # ten depleted peers, ten full: two pairs (top 20 %); the second destination earned nothing → one move
    bal = {f"d{i}": PeerBalance(100, 1000) for i in range(10)} | {f"s{i}": PeerBalance(900, 1000) for i in range(10)}
    earn = {"d3": Earnings(out_earnings=5_000), "s7": Earnings(in_earnings=1)}
    [move] = plan_moves(bal, earn)
    assert (move.source, move.destination) == ("s7", "d3")
    earn["d5"] = Earnings(out_earnings=900)
    assert [(m.source, m.destination) for m in plan_moves(bal, earn)] == [("s7", "d3"), ("s0", "d5")]


def test_clboss_baseline_rebalances_in_a_run_and_only_toward_earners():
    demand = """
[[demand]]
from = "a"
to = "b"
rate_per_hour = 6
market_ppm = 600
"""
    sc = scenario(cost=300, sigma=0.6, fail=0.35, demand=demand)
    with_reb, alone = ClbossLike(seed=1), ClbossLike(seed=1, rebalancer=None)
    res = run_baseline(sc, 1, with_reb, 4)
    assert run_baseline(sc, 1, alone, 4)["rebalance_cost_msat"] == 0
    moves = with_reb.rebalancer.results
    assert moves and res["rebalance_cost_msat"] == sum(r.fee_spent_msat for r in moves) > 0
    assert all(r.fee_spent_msat <= r.move.fee_budget_msat for r in moves)
    # b (15 % local) is where the forwards go out: the only peer that earns going out
    assert {r.move.destination for r in moves} == {SimNode(sc, seed=1).by_name["b"].peer_id}


def test_tracker_books_only_the_first_finished_move_against_the_last_pair_as_clboss_does():
    chans = "".join(f'[[channels]]\nname = "{k}{i}"\ncapacity_sat = 2_000_000\nlocal_sat = {local}\n'
                    for k, local in (("d", 200_000), ("s", 1_800_000)) for i in range(10))
    n = SimNode(loads_scenario(chans + "[rebalance]\ncost_ppm_sigma = 0.0\nfailure_probability = 0.0\n",
                               name="pairs"), seed=0)
    reb = EarningsRebalancer(seed=0)
    for i, fee in ((0, 9_000_000), (1, 8_000_000)):
        earned(reb, n, out=f"d{i}", into=f"s{i}", fee_msat=fee)
    first, second = reb.run(n, read_channels(n))                  # 10 × 10 peers: the top 20 % is two pairs
    peer = {x.name: x.peer_id for x in n.channels.values()}
    assert [(r.move.source, r.move.destination) for r in (first, second)] == [(peer["s0"], peer["d0"]),
                                                                              (peer["s1"], peer["d1"])]
    assert first.fee_spent_msat > 0 and second.fee_spent_msat > 0
    assert n.ledger.rebalance_cost_msat == first.fee_spent_msat + second.fee_spent_msat
    # one pending entry per requester (the rebalancer itself): the last pair requested, the first move finished
    assert reb.earnings[peer["d0"]].out_expenditures == 0 and reb.earnings[peer["s0"]].in_expenditures == 0
    assert reb.earnings[peer["d1"]].out_expenditures == first.fee_spent_msat
    assert reb.earnings[peer["s1"]].in_expenditures == first.fee_spent_msat


def test_cached_runs_of_the_clboss_baseline_before_its_rebalancer_are_not_reused():
    from bench.economic import current
    from revops.sim.node import SIM_VERSION

    assert not current({"sim_version": SIM_VERSION, "controller": "clboss"})
    assert current({"sim_version": SIM_VERSION, "controller": "clboss", "controller_version": 2})
    assert current({"sim_version": SIM_VERSION, "controller": "static_100"})
