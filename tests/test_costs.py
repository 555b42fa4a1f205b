"""Channel costs from bookkeeper (against the real v25.12.1 capture), return and stall premium."""
from __future__ import annotations

import json

import pytest

from revops.costs import ChannelCosts, bookkeeper_costs, marginal_roi, stall_premium
from revops.sim.schemas import load_fixture


def fixture_channels() -> dict[str, tuple[str, str]]:
    chans = load_fixture("listpeerchannels.json")["channels"]
    return {c["channel_id"]: (c["short_channel_id"], c["funding_txid"]) for c in chans}


@pytest.mark.needs("shared")
def test_open_cost_is_our_share_of_the_funding_fee_and_only_for_channels_we_opened():
    costs = bookkeeper_costs(load_fixture("bkpr-listaccountevents.json")["events"], fixture_channels())
    assert costs["103x1x0"] == ChannelCosts(open_cost_msat=166_000)          # B opened B–C
    assert costs["103x2x0"].open_cost_msat == costs["103x3x0"].open_cost_msat == 0   # peers opened these


def test_rebalance_fee_is_charged_to_the_channel_that_was_filled():
    channels = {"src": ("1x1x0", "aa"), "dst": ("2x2x0", "bb")}
    events = [
        {"account": "src", "type": "channel", "tag": "invoice", "credit_msat": 0, "debit_msat": 100_500,
         "fees_msat": 500, "payment_id": "p1", "is_rebalance": True},
        {"account": "dst", "type": "channel", "tag": "invoice", "credit_msat": 100_000, "debit_msat": 0,
         "payment_id": "p1", "is_rebalance": True},
        {"account": "dst", "type": "channel", "tag": "invoice", "credit_msat": 7_000, "debit_msat": 0,
         "payment_id": "p2", "is_rebalance": False},   # an ordinary payment received: not a cost
    ]
    costs = bookkeeper_costs(events, channels)
    assert costs == {"1x1x0": ChannelCosts(0, 0), "2x2x0": ChannelCosts(0, 500)}


@pytest.mark.parametrize("earned,cost,roi", [(0, 0, 0.0), (10, 0, 1.0), (300, 100, 2.0), (50, 100, -0.5)])
def test_marginal_roi(earned, cost, roi):
    assert marginal_roi(earned, cost) == roi


@pytest.mark.parametrize("holds,expected", [([], False), ([30.0], False), ([1.0, 2.0, 1.5], False),
                                            ([12.0, 11.0], True), ([0.1, 20.0, 0.2], True)])
def test_stall_premium(holds, expected):
    assert stall_premium(holds) is expected


def test_the_fee_cycle_feeds_costs_and_return_to_every_channel_actor():
    from revops import simulate
    from revops.sim.scenario import load_scenario
    sim = simulate.start(load_scenario("small"), seed=7)
    sim.advance(5 * 86400)
    rows = sim.rpc("revenue-analyze")["channels"]
    for row in rows:
        econ = row["economics"]
        earned = sim.store.db.execute("SELECT out_channel, SUM(fee_msat) FROM forwards WHERE status='settled' "
                                      "AND received_time <= ? GROUP BY out_channel", (econ["as_of"],)).fetchall()
        by_scid = {r[0]: r[1] for r in earned}
        assert econ["open_cost_msat"] == 0          # the simulated bookkeeper books no on-chain fees
        assert econ["earned_30d_msat"] == by_scid.get(row["scid"], 0)   # as of when the figures were read
        assert econ["marginal_roi"] == round(marginal_roi(econ["earned_30d_msat"], econ["rebalance_cost_30d_msat"]), 4)
    assert json.dumps(rows)  # JSON-able as the RPC returns it


def test_open_cost_after_a_splice_is_the_open_plus_every_splice_and_not_the_close():
    """Bookkeeper's channel account across a splice (CLN tests/test_splicing.py): the open's channel_open and
    onchain_fee, the old output spent by the splice (channel_close, extra tag splice), the new output's
    channel_open and the splice's onchain_fee; later a close's onchain_fee, which is not an open cost."""
    cid, opened, spliced, closing = "ab" * 32, "11" * 32, "22" * 32, "33" * 32

    def chain(tag: str, outpoint: str, credit: int, debit: int, **kw) -> dict:
        return {"account": cid, "type": "chain", "tag": tag, "credit_msat": credit, "debit_msat": debit,
                "currency": "bcrt", "outpoint": outpoint, "timestamp": 1, "blockheight": 103, **kw}

    def fee(txid: str, credit: int, debit: int = 0) -> dict:
        return {"account": cid, "type": "onchain_fee", "tag": "onchain_fee", "credit_msat": credit,
                "debit_msat": debit, "currency": "bcrt", "timestamp": 1, "txid": txid}
    events = [chain("channel_open", f"{opened}:0", 1_000_000_000, 0), fee(opened, 166_000),
              chain("channel_close", f"{opened}:0", 0, 1_000_000_000, txid=spliced),
              chain("channel_open", f"{spliced}:1", 1_100_000_000, 0),
              fee(spliced, 250_000), fee(spliced, 0, 3_000),          # bookkeeper revises a fee by a new event
              {"account": "wallet", "type": "onchain_fee", "tag": "onchain_fee", "credit_msat": 9_999,
               "debit_msat": 0, "currency": "bcrt", "timestamp": 1, "txid": spliced},
              fee(closing, 700_000)]
    costs = bookkeeper_costs(events, {cid: ("211x1x1", spliced)})
    assert costs == {"211x1x1": ChannelCosts(open_cost_msat=166_000 + 247_000)}
    assert bookkeeper_costs(events[:2], {cid: ("103x1x0", opened)})["103x1x0"].open_cost_msat == 166_000, \
        "before the splice: the open alone"
