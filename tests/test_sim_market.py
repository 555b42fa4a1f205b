"""Market behaviour, determinism, conservation, scenarios, sling emulation."""
import json
import time

import pytest
from pyln.client import RpcError

from revops.sim.node import SimNode, cln_fee
from revops.sim.scenario import ScenarioError, load_scenario, loads_scenario

DAY = 86400


def _run(seed, days=5, name="small", fee_ppm=None):
    sc = load_scenario(name)
    node = SimNode(sc, seed=seed)
    notes = []
    node.subscribe(lambda t, p: notes.append((t, json.dumps(p, sort_keys=True))))
    if fee_ppm is not None:
        node.call("setchannel", {"id": "all", "feeppm": fee_ppm})
    node.advance_to(sc.start_time + days * DAY)
    return node, notes


def test_determinism_same_seed_same_run_different_seed_differs():
    a, na = _run(5)
    b, nb = _run(5)
    c, nc = _run(6)
    assert a.snapshot() == b.snapshot()
    assert na == nb
    assert a.snapshot() != c.snapshot()


def test_every_controller_meets_the_same_payments():
    """Common random numbers (docs/simulator.md "Random streams"): a different fee, or a rebalancer at
    work, changes which payments we forward, never which payments want to route through us."""
    def run(fee_ppm: int, rebalance: bool) -> SimNode:
        sc = load_scenario("small")
        node = SimNode(sc, seed=3)
        node.call("setchannel", {"id": "all", "feeppm": fee_ppm})
        if rebalance:
            node.call("sling-job", {"scid": node.by_name["merchant"].scid, "direction": "pull",
                                    "amount": 100000, "maxppm": 3000, "outppm": 5000})
            node.call("sling-go", {})
        node.advance_to(sc.start_time + 5 * DAY)
        return node
    runs = [run(50, False), run(2000, False), run(50, True)]
    assert runs[0].ledger.forwards_settled != runs[1].ledger.forwards_settled
    assert runs[2].ledger.rebalanced_msat > 0 and runs[0].ledger.rebalanced_msat == 0
    assert len({(n.ledger.payments_wanted, n.ledger.wtp_msat, n.blockheight) for n in runs}) == 1


def test_price_elasticity():
    cheap, _ = _run(1, fee_ppm=50)
    dear, _ = _run(1, fee_ppm=2000)
    assert dear.ledger.forwards_settled < cheap.ledger.forwards_settled
    assert dear.ledger.payments_priced_out > cheap.ledger.payments_priced_out


def test_balances_conserve():
    sc = load_scenario("small")
    node = SimNode(sc, seed=2)
    before = node.local_balance_total_msat()
    node.call("sling-job", {"scid": node.by_name["merchant"].scid, "direction": "pull", "amount": 100000,
                            "maxppm": 3000, "outppm": 5000})
    node.call("sling-go", {})
    node.advance_to(sc.start_time + 7 * DAY)
    led = node.ledger
    assert led.rebalanced_msat > 0 and led.fees_earned_msat > 0
    assert node.local_balance_total_msat() - before == led.fees_earned_msat - led.rebalance_cost_msat
    for ch in node.channels.values():
        assert 0 <= ch.to_us_msat <= ch.capacity_msat


def test_settled_fee_matches_cln_formula_and_setchannel_applies_later():
    sc = load_scenario("small")
    node = SimNode(sc, seed=4)
    ch = node.by_name["acinq"]
    node.call("setchannel", {"id": ch.scid, "feebase": 0, "feeppm": 100})
    # gossip delay: fee changes propagate after market.gossip_delay_s; measure well after
    node.advance_to(sc.start_time + 2 * DAY)
    fw = [f for f in node.call("listforwards", {"status": "settled", "out_channel": ch.scid})["forwards"]
          if f["received_time"] > sc.start_time + 3600]
    assert fw
    for f in fw:
        assert f["fee_msat"] == f["in_msat"] - f["out_msat"] == cln_fee(0, 100, f["out_msat"])
    day = node.day_index
    node.call("setchannel", {"id": ch.scid, "feeppm": 120})
    node.call("setchannel", {"id": ch.scid, "feeppm": 120})  # unchanged: no gossip update
    node.call("setchannel", {"id": ch.scid, "feeppm": 130})
    assert node.ledger.fee_updates[ch.scid][0] == 1
    assert node.ledger.fee_updates[ch.scid][day] == 2


def test_stale_gossip_fee_raise_gives_fee_insufficient():
    sc = load_scenario("small")
    node = SimNode(sc, seed=9)
    notes = []
    node.subscribe(lambda t, p: notes.append(p) if t == "forward_event" else None)
    node.advance_to(sc.start_time + DAY)
    ch = node.by_name["acinq"]
    fails0 = node.ledger.forwards_failed_fee
    for k in range(10):  # raise repeatedly: stale senders arrive after enforcedelay but within gossip delay
        node.call("setchannel", {"id": "all", "feeppm": 200 + 100 * k})
        node.advance_to(node.now + 900)
    assert node.ledger.forwards_failed_fee > fails0
    lf = [p["forward_event"] for p in notes if p["forward_event"]["status"] == "local_failed"]
    assert any(f["failcode"] == 4108 and f["failreason"] == "WIRE_FEE_INSUFFICIENT" for f in lf)
    assert all("out_msat" not in f and "fee_msat" not in f for f in lf)


def test_liquidity_failures_and_listforwards_pagination():
    node, _ = _run(3, days=3)
    assert node.ledger.forwards_failed_liquidity > 0
    allf = node.call("listforwards")["forwards"]
    page = node.call("listforwards", {"index": "created", "start": 5, "limit": 3})["forwards"]
    assert [f["created_index"] for f in page] == [5, 6, 7]
    upd = node.call("listforwards", {"index": "updated", "start": 2, "limit": 2})["forwards"]
    assert [f["updated_index"] for f in upd] == [2, 3]
    lf = [f for f in allf if f["status"] == "local_failed"]
    assert lf and all(f["failcode"] == 4103 for f in lf if f["failreason"] == "WIRE_TEMPORARY_CHANNEL_FAILURE")


def test_open_close_disconnect_notifications():
    sc = load_scenario("small")
    node = SimNode(sc, seed=1)
    seen = []
    node.subscribe(lambda t, p: seen.append((t, p)))
    scid = node.open_channel(None, 3_000_000, 0, "remote", name="x")
    assert [t for t, _ in seen][:3] == ["connect", "channel_opened", "channel_state_changed"]
    node.advance_to(node.now + 4 * 3600)
    assert node.channels[scid].state == "CHANNELD_NORMAL"
    node.close_channel(scid)
    assert node.channels[scid].state != "CHANNELD_NORMAL"
    node.advance_to(node.now + 3 * DAY)
    states = [p["channel_state_changed"]["new_state"] for t, p in seen if t == "channel_state_changed"]
    assert states[-1] == "CLOSED" and "ONCHAIN" in states and "CLOSINGD_SIGEXCHANGE" in states
    pid = node.by_name["acinq"].peer_id
    node.disconnect_peer(pid)
    assert node.call("listpeerchannels", {"id": pid})["channels"][0]["peer_connected"] is False
    node.connect_peer(pid)
    assert ("disconnect", {"disconnect": {"id": pid}}) in seen


def test_feerates_follow_mempool_spike():
    sc = load_scenario("small")
    node = SimNode(sc)
    base = node.call("feerates", {"style": "perkw"})["perkw"]["opening"]
    node.advance_to(sc.start_time + int(10.2 * DAY))
    spike = node.call("feerates", {"style": "perkw"})["perkw"]["opening"]
    assert spike > 4 * base
    assert node.call("feerates", {"style": "perkb"})["perkb"]["opening"] == spike * 4


def test_sling_lifecycle_and_persistence(tmp_path):
    sc = load_scenario("small")
    node = SimNode(sc, seed=1, lightning_dir=str(tmp_path))
    dst = node.by_name["merchant"].scid
    with pytest.raises(RpcError):
        node.call("sling-job", [dst, "pull", 100000, 1000])  # keyword only
    with pytest.raises(RpcError):
        node.call("sling-job", {"scid": dst, "direction": "pull", "amount": 100000, "maxppm": 1000})  # no outppm
    with pytest.raises(RpcError):
        node.call("sling-job", {"scid": dst, "direction": "pull", "amount": 1, "maxppm": 1, "outppm": 1, "x": 1})
    with pytest.raises(RpcError) as e:
        node.call("sling-go", {})
    assert "No jobs found" in e.value.error["message"]
    assert node.call("sling-job", {"scid": dst, "direction": "pull", "amount": 100000, "maxppm": 1500,
                                   "outppm": 5000, "target": 0.6}) == {"result": "success"}
    js = node.call("sling-jobsettings")
    assert js[dst]["sat_direction"] == "pull" and js[dst]["amount_msat"] == 100000000
    assert node.call("sling-go", {"scid": dst}) == {"tasks_started": 1, "tasks_failed_start:": 0}
    node.advance_to(sc.start_time + 2 * DAY)
    st = node.call("sling-stats", {"scid": dst, "json": True})
    assert st["successes_in_time_window"]["total_rebalances"] > 0
    spent = st["successes_in_time_window"]["total_spent_sats"]
    assert spent == node.ledger.rebalance_cost_msat // 1000
    assert isinstance(node.call("sling-stats", {"json": True}), list)
    assert node.call("sling-version")["version"].startswith("v")
    assert node.call("sling-stop", {"scid": dst}) == {"stopped_count": 1}
    # plugin restart: job survives via <lightning_dir>/sling/jobs.json, not running
    assert (tmp_path / "sling" / "jobs.json").is_file()
    node.set_plugin_installed("sling", False)
    with pytest.raises(RpcError):
        node.call("sling-jobsettings")
    node2 = SimNode(sc, seed=1, lightning_dir=str(tmp_path))
    assert dst in node2.call("sling-jobsettings")
    node.set_plugin_installed("sling", True)
    assert dst in node.call("sling-jobsettings")
    assert node.call("sling-deletejob", {"job": dst, "delete_stats": False}) == {"result": "success"}
    assert node.call("sling-jobsettings") == {}
    assert node.call("sling-except-peer", {"command": "add", "id": node.by_name["acinq"].peer_id})["result"] == "success"
    # bookkeeper sees rebalances
    ev = node.call("bkpr-listaccountevents", {"account": node.by_name["merchant"].channel_id})["events"]
    assert any(e.get("is_rebalance") for e in ev)


def test_bundled_scenarios_load_and_bad_keys_named():
    for n in ("small", "drifting.toml", "large"):
        sc = load_scenario(n)
        assert sc.channels
    assert len(load_scenario("small").channels) == 6
    assert len(load_scenario("drifting").channels) == 50
    assert len(load_scenario("large").channels) == 500
    base = '[[channels]]\nname="a"\ncapacity_sat=1000000\n[[channels]]\nname="b"\ncapacity_sat=1000000\n'
    with pytest.raises(ScenarioError, match=r"channels\[1\]\.capcity"):
        loads_scenario(base + 'capcity=5\n')
    with pytest.raises(ScenarioError, match=r"demand\[0\]\.to"):
        loads_scenario(base + '[[demand]]\nfrom="a"\nto="zzz"\nrate_per_hour=1\nmarket_ppm=100\n')
    with pytest.raises(ScenarioError, match=r"channels\[0\]\.opener"):
        loads_scenario(base.replace('name="a"', 'name="a"\nopener="both"'))
    with pytest.raises(ScenarioError, match=r"mempool\.spikes\[0\]\.multiplier"):
        loads_scenario(base + '[mempool]\n[[mempool.spikes]]\nat_day=1\nduration_hours=1\nmultiplier=-1\n')
    with pytest.raises(ScenarioError, match=r"^frobnicate"):
        loads_scenario('frobnicate=1\n' + base)


def test_drifting_30_day_runtime(capsys):
    sc = load_scenario("drifting")
    t = time.perf_counter()
    node = SimNode(sc, seed=0)
    node.advance_to(sc.start_time + 30 * DAY)
    dt = time.perf_counter() - t
    with capsys.disabled():
        print(f"\n[sim] drifting.toml 30 days (market only): {dt:.2f} s, "
              f"{node.ledger.forwards_settled} settled, {node.ledger.payments_priced_out} priced out")
    assert node.ledger.forwards_settled > 1000


def test_field_scenario_has_the_shape_of_real_nodes():
    """bench/scenarios/field.toml (field-2026.md §1, §3), measured on a static 100 ppm run of 4 weeks."""
    import statistics
    from collections import Counter
    from pathlib import Path

    sc = load_scenario(str(Path(__file__).resolve().parent.parent / "bench" / "scenarios" / "field.toml"))
    node = SimNode(sc, seed=0)
    shares = [c.to_us_msat / c.capacity_msat for c in node.channels.values()]
    assert sum(1 for s in shares if s < 0.2 or s > 0.8) >= 0.6 * len(shares)           # liquidity at one end
    rate = {d.name: d.rate_per_hour for d in sc.demand}
    by_price = sorted((d.market_ppm, d.rate_per_hour) for d in sc.demand)
    half, acc = sum(rate.values()) / 2, 0.0
    median = next(p for p, r in by_price if (acc := acc + r) >= half)
    assert 60 <= median <= 160                                                          # going rate ~100 ppm
    assert sum(r for p, r in by_price if p < 250) >= 0.85 * sum(rate.values())          # mostly under 250 ppm
    node.call("setchannel", {"id": "all", "feebase": 0, "feeppm": 100})
    weeks, prev = [], {}
    for w in range(1, 5):
        node.advance_to(sc.start_time + w * 7 * DAY)
        cur = dict(node.ledger.fees_by_channel_msat)
        weeks.append([cur.get(s, 0) - prev.get(s, 0) for s in node.channels])
        prev = cur
    earned = sorted((v for v in prev.values() if v > 0), reverse=True)
    assert 25 <= len(earned) <= 45                                                      # ~36 earning channels
    assert sum(earned[:2]) >= 0.7 * sum(earned)                                         # 2 of them carry ~80 %
    zero = sum(1 for wk in weeks for v in wk if v == 0) / (4 * len(node.channels))
    assert zero >= 0.6                                                                  # ~75 % earn nothing
    out = Counter(f["out_channel"] for f in node.forwards if f["status"] == "settled")
    assert statistics.median(out.get(s, 0) / 4 for s in node.channels) <= 5               # a handful a week
