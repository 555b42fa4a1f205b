"""The simulated market and htlc_maximum_msat: senders split a payment above our relayed limit (MPP) and send
one part of the limit through us; the limit travels in gossip like the fee (docs/simulator.md)."""
import json
from pathlib import Path

import pytest

from revops.sim.node import SIM_VERSION, SimNode, cln_fee
from revops.sim.scenario import loads_scenario

DAY = 86400
SCENARIO = """
[market]
gossip_delay_s = 900
downstream_fail_rate = 0.0
htlc_force_close_rate = 0.0
[[channels]]
name = "in"
capacity_sat = 10_000_000
local_sat = 1_000_000
[[channels]]
name = "out"
capacity_sat = 2_000_000
local_sat = 2_000_000
opener = "local"
fee_ppm = 100
[[demand]]
name = "big"
from = "in"
to = "out"
rate_per_hour = {rate}
amount_dist = "fixed"
median_sat = {amount}
market_ppm = 1000
tolerance_sigma = 0.0
"""


def _node(amount_sat: int = 400_000, rate: float = 2.0) -> tuple[SimNode, list[dict]]:
    node = SimNode(loads_scenario(SCENARIO.format(amount=amount_sat, rate=rate), name="htlcmax"), seed=3)
    events: list[dict] = []
    node.subscribe(lambda t, p: events.append(p["forward_event"]) if t == "forward_event" else None)
    return node, events


def test_a_payment_above_the_relayed_htlcmax_routes_one_part_of_the_limit_through_us() -> None:
    node, events = _node()
    out = node.by_name["out"]
    node.call("setchannel", {"id": out.scid, "htlcmax": 250_000_000})
    node.advance_to(node.now + 1000)          # past the gossip delay: every sender now sees 250,000 sat
    del events[:]
    settled_before = node.ledger.forwards_settled
    node.advance_to(node.now + 2 * 3600)
    settled = [e for e in events if e["status"] == "settled"]
    assert node.ledger.forwards_settled - settled_before == len(settled) > 0
    assert all(e["out_msat"] == 250_000_000 for e in settled)
    assert all(e["fee_msat"] == cln_fee(out.fee_base, out.fee_ppm, 250_000_000) for e in settled)
    assert not [e for e in events if e["status"] == "local_failed"]   # nobody attempts 400,000 sat


def test_a_part_pays_the_senders_ppm_tolerance_on_the_part_only() -> None:
    node, _ = _node()
    out = node.by_name["out"]
    # 1,000 ppm tolerance: 1,000 + 400 sat for the whole payment, 1,000 + 250 sat for a 250,000-sat part;
    # 1,400 ppm on the part (351 sat) is under the whole's tolerance but over the part's
    node.call("setchannel", {"id": out.scid, "htlcmax": 250_000_000, "feebase": 0, "feeppm": 1_400})
    node.advance_to(node.now + 2 * 3600)
    assert node.ledger.forwards_settled == 0 and node.ledger.payments_priced_out > 0
    node.call("setchannel", {"id": out.scid, "feeppm": 900})
    node.advance_to(node.now + 2 * 3600)
    assert node.ledger.forwards_settled > 0


def test_a_stale_sender_fails_once_and_retries_with_a_part_that_fits() -> None:
    node, events = _node(rate=30.0)
    out = node.by_name["out"]
    node.call("setchannel", {"id": out.scid, "htlcmax": 250_000_000})
    node.advance_to(node.now + 800)           # within the gossip delay: senders still see capacity − 1 %
    failed = [e for e in events if e["status"] == "local_failed"]
    assert failed and all(e["failreason"] == "WIRE_TEMPORARY_CHANNEL_FAILURE" for e in failed)
    retried = [e for e in events if e["status"] == "settled"]
    assert retried and all(e["out_msat"] == 250_000_000 for e in retried)
    # every payment failed once on the limit and retried one part: it settled, or failed for liquidity
    # only once the channel had no 250,000 sat left to send
    led = node.ledger
    assert led.forwards_failed_other == led.payments_arrived == len(retried) + led.forwards_failed_liquidity
    assert led.forwards_failed_liquidity == 0 or node.spendable_msat(out) < 250_000_000


def test_a_payment_above_the_default_limit_is_attempted_whole_and_fails_for_every_controller() -> None:
    for lowered in (False, True):
        node, events = _node(amount_sat=1_990_000)   # above the 2,000,000-sat channel's 1,980,000-sat default
        if lowered:
            node.call("setchannel", {"id": node.by_name["out"].scid, "htlcmax": 500_000_000})
        node.advance_to(node.now + 4 * 3600)
        assert node.ledger.forwards_settled == 0 and node.ledger.forwards_failed_other > 0
        assert {e["status"] for e in events} == {"local_failed"}


def test_htlcmax_is_a_channel_update_counted_and_rate_limited_like_a_fee() -> None:
    node, _ = _node()
    out = node.by_name["out"]
    day = node.day_index
    node.call("setchannel", {"id": out.scid, "htlcmax": 800_000_000})
    node.call("setchannel", {"id": out.scid, "htlcmax": 800_000_000})     # unchanged: no update
    node.call("setchannel", {"id": out.scid, "feeppm": 120, "htlcmax": 700_000_000})   # one update
    assert node.ledger.fee_updates[out.scid][day] == 2
    node.advance_to(node.now + 1000)
    assert node.gossip_htlcmax(out, node.now) == 700_000_000
    assert node.gossip_fee(out, node.now) == (out.fee_base, 120)
    for k in range(4):                        # the burst (4 tokens) is spent: the last two are not relayed
        node.call("setchannel", {"id": out.scid, "htlcmax": 600_000_000 - k * 1000})
    node.advance_to(node.now + 1000)
    assert node.ledger.gossip_suppressed == 2
    assert node.gossip_htlcmax(out, node.now) == 599_999_000 and out.htlcmax == 599_997_000
    mine = [c for c in node.call("listchannels", {"short_channel_id": out.scid})["channels"]
            if c["source"] == node.id]
    assert mine[0]["htlc_maximum_msat"] == 599_997_000


def test_a_cached_grid_run_reproduces_to_the_msat() -> None:
    """No controller lowers htlcmax in the baselines: their cached runs (this SIM_VERSION) stay exact."""
    from bench import economic
    from bench.controllers import ClbossLike

    cache = Path(economic.RESULTS) / "economic.runs.jsonl"
    rows = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    want = [r for r in rows if r.get("sim_version") == SIM_VERSION and r["controller"] == "clboss"
            and r["scenario"] == "field" and r["seed"] == 0]
    if not want:
        pytest.skip("no cached clboss run of field, seed 0, for this simulator version")
    sc = economic.load_scenario(economic.scenario_path("field"))
    # a run of the baseline before its EarningsRebalancer (version 1) is clboss's fee setting alone
    ctl = (economic.make_baseline("clboss", 0) if economic.current(want[-1])
           else ClbossLike(seed=0, rebalancer=None))
    run = economic.run_baseline(sc, 0, ctl, want[-1]["days"])
    assert run["net_profit_msat"] == want[-1]["net_profit_msat"]
    assert run["failed_liquidity"] == want[-1]["failed_liquidity"]


def test_opt_in_split_on_failure_retries_half_after_a_liquidity_failure_for_every_limit() -> None:
    """[market] mpp_split_on_failure (off by default): the sensitivity check of docs/benchmarks.md."""
    for split in (False, True):
        text = SCENARIO.format(amount=1_500_000, rate=2.0).replace(
            "local_sat = 2_000_000", "local_sat = 1_000_000").replace(
            "htlc_force_close_rate = 0.0", f"htlc_force_close_rate = 0.0\nmpp_split_on_failure = {str(split).lower()}")
        node = SimNode(loads_scenario(text, name="split"), seed=3)
        events: list[dict] = []
        node.subscribe(lambda t, p: events.append(p["forward_event"]) if t == "forward_event" else None)
        node.advance_to(node.now + 3 * 3600)
        settled = [e for e in events if e["status"] == "settled"]
        assert node.ledger.forwards_failed_liquidity > 0
        if split:
            assert settled and all(e["out_msat"] == 750_000_000 for e in settled)
        else:
            assert not settled
