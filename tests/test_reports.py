"""P&L reports on the simulated node (real plugin code in-process, real SQLite): every figure is checked
against the node's own ledger, to the msat, before and after forwards are folded into daily roll-ups."""
from __future__ import annotations

import pytest

from revops import finance, reports, simulate
from revops.rpc import InputError
from revops.sim.scenario import loads_scenario
from tests.test_rebalance_sim import REFILL

DAY = 86400


@pytest.fixture(scope="module")
def sim():
    s = simulate.start(loads_scenario(REFILL), seed=1)
    s.advance(4 * DAY)
    yield s
    s.close()


def ledger_view(sim) -> dict:
    led, node = sim.node.ledger, sim.node
    return {"fees": led.fees_earned_msat, "cost": led.rebalance_cost_msat, "settled": led.forwards_settled,
            "tlv": node.onchain_msat + node.local_balance_total_msat(),
            "by_channel": {c.scid: led.fees_by_channel_msat.get(c.scid, 0) for c in node.open_channels()}}


def check_against_ledger(sim) -> None:
    truth = ledger_view(sim)
    assert truth["cost"] > 0 and truth["fees"] > 0, "the scenario must both earn and rebalance"
    s = sim.rpc("revenue-report", {"report_type": "summary"})
    assert s["gross_revenue_msat"] == truth["fees"]
    assert s["rebalance_cost_msat"] == truth["cost"] and s["rebalance_cost_source"] == "bookkeeper"
    assert s["net_profit_msat"] == truth["fees"] - truth["cost"]
    assert s["net_worth"]["tlv_msat"] == truth["tlv"]
    assert s["forwards"]["settled"] == truth["settled"]
    assert s["channels"]["total"] == len(truth["by_channel"])
    d = sim.rpc("revenue-dashboard", {"window_days": 30})
    assert d["period"]["gross_revenue_msat"] == truth["fees"]
    assert d["period"]["gross_revenue_sats"] == truth["fees"] // 1000
    assert d["period"]["total_forwards"] == truth["settled"]
    assert d["period"]["rebalance_cost_sats"] == truth["cost"] // 1000
    assert d["financial_health"]["tlv_sats"] == truth["tlv"] // 1000
    p = sim.rpc("revenue-profitability")
    rows = [r for rs in p["channels_by_class"].values() for r in rs]
    assert {r["channel_id"]: r["revenue_msat"] for r in rows} == truth["by_channel"]
    assert sum(r["rebalance_cost_msat"] for r in rows) == truth["cost"]
    h = sim.rpc("revenue-history")
    assert h["lifetime_revenue_msat"] == truth["fees"] and h["lifetime_rebalance_costs_msat"] == truth["cost"]
    assert h["lifetime_forward_count"] == truth["settled"] and h["bookkeeper"] == "ok"


def test_report_figures_match_the_simulated_nodes_ledger_to_the_msat(sim):
    check_against_ledger(sim)
    s = sim.rpc("revenue-report", {"report_type": "summary"})
    assert s["operating_margin_pct"] == round(100 * s["net_profit_msat"] / s["gross_revenue_msat"], 2)
    assert [r["net_msat"] for r in s["top_earners"]] == sorted((r["net_msat"] for r in s["top_earners"]),
                                                               reverse=True)


def test_pruned_forwards_still_count_through_daily_rollups(sim):
    raw_before = sim.store.forward_count()
    pruned = finance.prune_forwards(sim.store, sim.node.now, 1)
    assert pruned > 0 and sim.store.forward_count() == raw_before - pruned
    assert finance.pruned_before(sim.store) % DAY == 0
    check_against_ledger(sim)
    assert finance.prune_forwards(sim.store, sim.node.now, 1) == 0, "pruning the same days twice does nothing"
    routed = {f["out_channel"] for f in sim.node.call("listforwards", {"status": "settled"})["forwards"]}
    assert finance.routed_out_channels(sim.store) == routed, "pruning must not make a channel look virgin"


def test_one_financial_snapshot_per_day_feeds_the_dashboard_trend(sim):
    snaps = finance.snapshots(sim.store, 0)
    days = [s["at"] // DAY for s in snaps]
    assert len(days) == len(set(days)) >= 4
    assert all(b["fees_earned_msat"] >= a["fees_earned_msat"] for a, b in zip(snaps, snaps[1:]))
    trend = sim.rpc("revenue-dashboard", {"window_days": 2})["trend"]
    assert trend and all(t["at"] >= sim.node.now - 2 * DAY for t in trend)


def test_peer_hive_policies_and_capacity_reports(sim):
    scid, peer = next((c.scid, c.peer_id) for c in sim.node.open_channels())
    sim.rpc("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "hive"})
    assert sim.rpc("revenue-report", {"report_type": "hive"})["count"] == 1
    assert sim.rpc("revenue-report", {"report_type": "policies"})["by_strategy"] == {"hive": 1}
    pr = sim.rpc("revenue-report", {"report_type": "peer", "peer_id": peer})
    assert pr["policy"]["strategy"] == "hive" and {c["channel_id"] for c in pr["channels"]} >= {scid}
    cap = sim.rpc("revenue-capacity-report")
    assert {r["action"] for r in cap["recommendations"]} <= {
        "splice-in", "close", "open a second channel (peer does not splice)"}
    assert all(r["class"] == "profitable" for r in cap["winners"])
    one = sim.rpc("revenue-profitability", {"channel_id": scid})["profitability"]
    assert one["channel_id"] == scid and one["class"] in reports.CLASSES


@pytest.mark.parametrize("method, params, field", [
    ("revenue-report", {"report_type": "weekly"}, "report_type"),
    ("revenue-report", {"report_type": "peer"}, "peer_id"),
    ("revenue-report", {"report_type": "peer", "peer_id": "02zz"}, "peer_id"),
    ("revenue-dashboard", {"window_days": 0}, "window_days"),
    ("revenue-dashboard", {"window_days": "thirty"}, "window_days"),
    ("revenue-profitability", {"channel_id": "1x2"}, "channel_id"),
    ("revenue-profitability", {"channel_id": "999x9x9"}, "channel_id"),
])
def test_bad_report_input_names_the_field(sim, method, params, field):
    with pytest.raises(InputError) as e:
        sim.rpc(method, params)
    assert e.value.field == field


def test_splice_feature_bits():
    assert reports.splice_capable(hex(1 << 63)) and reports.splice_capable(hex(1 << 62))
    assert reports.splice_capable(hex(1 << 163)) and not reports.splice_capable(hex((1 << 61) | (1 << 64)))


def test_without_bookkeeper_costs_come_from_sling_in_whole_sats_and_say_so():
    sim = simulate.start(loads_scenario(REFILL.replace("bookkeeper = true", "bookkeeper = false")), seed=1)
    try:
        sim.advance(4 * DAY)
        s = sim.rpc("revenue-report")
        recorded = sim.store.db.execute("SELECT SUM(fee_msat) FROM rebalances").fetchone()[0]
        assert s["rebalance_cost_source"].startswith("plugin") and s["rebalance_cost_msat"] == recorded > 0
        assert s["rebalance_cost_msat"] % 1000 == 0 and s["gross_revenue_msat"] == sim.node.ledger.fees_earned_msat
        assert abs(s["rebalance_cost_msat"] - sim.node.ledger.rebalance_cost_msat) < 1000 * s["rebalances"]
        h = sim.rpc("revenue-history")
        assert h["bookkeeper"].startswith("unavailable") and h["lifetime_channel_onchain_costs_msat"] == 0
    finally:
        sim.close()


def test_onchain_fees_are_split_between_channel_accounts_and_the_wallet():
    income = [{"account": "wallet", "tag": "onchain_fee", "debit_msat": 1500, "credit_msat": 0},
              {"account": "ab" * 32, "tag": "onchain_fee", "debit_msat": 2_000_000, "credit_msat": 0},
              {"account": "ab" * 32, "tag": "onchain_fee", "debit_msat": 0, "credit_msat": 500},
              {"account": "ab" * 32, "tag": "routed", "debit_msat": 0, "credit_msat": 7}]
    assert reports.chain_costs(income) == {"channel_msat": 1_999_500, "wallet_msat": 1500}
