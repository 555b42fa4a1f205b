"""Rebalancing end to end, in-process on the simulated node with its emulated sling (real sling API):
coordinator cycle → atomic reservation → SlingExecutorActor → settle from sling's own counters."""
from __future__ import annotations


import pytest
from pyln.client import RpcException

from revops import simulate
from revops.sim.scenario import load_scenario, loads_scenario
from revops.sim.sling import SlingError

REFILL = """
name = "refill"
description = "A depleted high-earning channel, a depleted low-earning one, two surplus sources."
duration_days = 10
[node]
alias = "SIM-REFILL"
blockheight = 930000
[market]
gossip_delay_s = 900
enforcedelay_s = 600
downstream_fail_rate = 0.02
[[channels]]
name = "hot"
capacity_sat = 4_000_000
local_sat = 1_000_000
opener = "local"
age_days = 200
fee_ppm = 2500
[[channels]]
name = "cold"
capacity_sat = 3_000_000
local_sat = 200_000
opener = "local"
age_days = 200
fee_ppm = 50
[[channels]]
name = "big"
capacity_sat = 10_000_000
local_sat = 9_000_000
opener = "local"
age_days = 300
fee_ppm = 50
[[channels]]
name = "store"
capacity_sat = 6_000_000
local_sat = 5_400_000
opener = "remote"
age_days = 300
fee_ppm = 50
[[demand]]
name = "big_to_hot"
from = "big"
to = "hot"
rate_per_hour = 4.0
median_sat = 40_000
sigma = 0.8
max_sat = 400_000
market_ppm = 3000
tolerance_sigma = 0.4
[[demand]]
name = "store_to_cold"
from = "store"
to = "cold"
rate_per_hour = 0.3
median_sat = 10_000
sigma = 0.8
market_ppm = 80
tolerance_sigma = 0.3
[mempool]
baseline_sat_vb = 8.0
[rebalance]
cost_ppm_median = 300
cost_ppm_sigma = 0.4
failure_probability = 0.2
attempt_interval_s = 120
[plugins]
sling = true
clboss = false
bookkeeper = true
"""
DAY = 86400


def names(sim) -> dict[str, str]:
    return {c.name: c.scid for c in sim.node.open_channels()}


def reservations(sim) -> list[dict]:
    return sim.runtime.ledger.reservations()


def sling_fees_msat(sim, scid: str) -> int:
    return sum(x["fee_msat"] for x in sim.node.sling.successes.get(scid, []))


def test_depleted_high_earning_channel_is_refilled_and_the_reservation_settles_to_the_real_cost():
    sim = simulate.start(loads_scenario(REFILL), seed=1)
    hot = names(sim)["hot"]
    sim.advance(DAY)
    rows = [r for r in reservations(sim) if r["scid"] == hot]
    assert rows and all(r["status"] == "settled" for r in rows)
    spent = sum(r["spent_msat"] for r in rows)
    # sling reports whole sats: the booked spend is the real cost to within 1 sat per job, never above it
    assert 0 < spent <= sling_fees_msat(sim, hot) < spent + 1000 * len(rows)
    assert all(r["spent_msat"] <= r["reserved_msat"] for r in rows)
    history = sim.store.db.execute("SELECT status, moved_msat, fee_msat FROM rebalances WHERE to_channel=?",
                                   (hot,)).fetchall()
    assert [h[0] for h in history] == ["succeeded"] * len(rows) and all(h[1] > 0 for h in history)
    # what we booked as moved is what sling moved (the amount follows the channel's demand at its fee)
    assert sum(h[1] for h in history) == sum(x["amount_msat"] for x in sim.node.sling.successes.get(hot, []))
    # the job is gone from sling (deleted, stats kept) and from our registry
    assert hot not in sim.node.call("sling-jobsettings", {}) and not sim.runtime.ledger.load_jobs()
    debug = sim.rpc("revenue-rebalance-debug")
    assert debug["sling"] == "ok" and debug["capital"]["ok"][0] is True


def test_a_low_earning_channel_is_never_refilled_at_a_loss():
    sim = simulate.start(loads_scenario(REFILL), seed=2)
    cold = names(sim)["cold"]
    sim.advance(3 * DAY)
    assert not [r for r in reservations(sim) if r["scid"] == cold]
    assert cold not in sim.node.sling.successes
    codes = {r["code"] for r in sim.rpc("revenue-rebalance-debug")["rejections"]
             if r["scid"] == cold and r["role"] == "destination"}
    assert codes and codes <= {"target_too_small", "gate", "below_min_profit", "channel_cap", "flow_unknown",
                               "not_depleted", "amount_too_small", "flow_sink"}


def _window_ok(rows: list[dict], budget_msat: int) -> None:
    """At every reservation: settled spend of the last 24 h + live reservations (itself included) <= budget."""
    for r in rows:
        t = r["created_at"]
        spent = sum(x["spent_msat"] for x in rows
                    if x["status"] != "active" and x["settled_at"] is not None and t - DAY < x["settled_at"] <= t)
        live = sum(x["reserved_msat"] for x in rows
                   if x["created_at"] <= t and (x["settled_at"] is None or x["settled_at"] > t))
        assert spent + live <= budget_msat, (r, spent, live)


@pytest.mark.parametrize("scenario,budget_sats", [("refill", 5000), ("refill", 800), ("small", 5000)])
def test_multi_day_budget_caps_and_spend_share(scenario, budget_sats, capsys):
    sc = loads_scenario(REFILL) if scenario == "refill" else load_scenario("small")
    sim = simulate.start(sc, seed=3, options={"revenue-ops-daily-budget-sats": budget_sats})
    sim.advance(8 * DAY)
    rows = reservations(sim)
    _window_ok(rows, budget_sats * 1000)
    now = sim.node.now
    for scid, spend in sim.runtime.ledger.settled_spend_30d(now).items():
        earned = sim.store.channel_earnings(scid, now - 30 * DAY)[0]
        assert spend <= 0.5 * earned, (scid, spend, earned)
    revenue = sim.store.revenue_msat(0)[0]
    spent = sum(r["spent_msat"] for r in rows)
    assert spent <= sim.node.ledger.rebalance_cost_msat     # booked from sling's whole-sat counters
    assert spent < 0.3 * revenue
    with capsys.disabled():
        print(f"\n[rebalance] {scenario} budget {budget_sats} sat/day, 8 days: {len(rows)} jobs, spent "
              f"{spent // 1000} sat, routing revenue {revenue // 1000} sat ({spent / max(revenue, 1):.1%}), "
              f"node cost {sim.node.ledger.rebalance_cost_msat // 1000} sat")


def test_restart_during_a_job_stops_and_books_it_without_a_second_reservation(tmp_path):
    db = str(tmp_path / "revenue_ops.db")
    sc = loads_scenario(REFILL)
    sim = simulate.start(sc, seed=1, db_path=db, step_seconds=60)
    hot = names(sim)["hot"]
    for _ in range(24 * 60):
        sim.advance(60)
        if sim.runtime.ledger.load_jobs():
            break
    [(job, _extra)] = sim.runtime.ledger.load_jobs()
    assert job.scid == hot and hot in sim.node.sling.once and hot in sim.node.sling.running
    before = reservations(sim)
    assert [r["status"] for r in before].count("active") == 1
    node = sim.node
    sim.close()
    sim2 = simulate.start(sc, seed=1, db_path=db, node=node, step_seconds=60)
    assert hot not in node.sling.running                     # stopped at start-up, never resumed
    sim2.advance(3 * 3600)
    rows = [r for r in reservations(sim2) if r["created_at"] <= before[-1]["created_at"]]
    mine = [r for r in rows if r["id"] == before[-1]["id"]]
    assert mine[0]["status"] == "settled"
    assert mine[0]["spent_msat"] // 1000 == sum(x["fee_msat"] for x in node.sling.successes.get(hot, [])
                                                if x["t"] < mine[0]["settled_at"]) // 1000
    # never two live reservations for one channel
    for r in reservations(sim2):
        overlapping = [x for x in reservations(sim2) if x["scid"] == r["scid"] and x["id"] != r["id"]
                       and x["created_at"] <= r["created_at"] < (x["settled_at"] or 1e18)]
        assert not overlapping, (r, overlapping)


def test_the_operators_own_sling_job_survives_our_start_up_and_cycles(tmp_path):
    sc = loads_scenario(REFILL)
    from revops.sim.node import SimNode
    node = SimNode(sc, seed=1)
    hot = next(c.scid for c in node.open_channels() if c.name == "hot")
    store = next(c.scid for c in node.open_channels() if c.name == "store")
    node.call("sling-job", {"scid": hot, "direction": "pull", "amount": 100_000, "maxppm": 100,
                            "outppm": 100, "target": 0.3})
    sim = simulate.start(sc, node=node)
    sim.advance(2 * DAY)
    settings = sim.node.call("sling-jobsettings", {})
    assert settings[hot]["maxppm"] == 100                     # untouched: never replaced, stopped or deleted
    assert not [r for r in reservations(sim) if r["scid"] == hot]
    assert any(r["scid"] == hot and r["code"] == "operator_job"
               for r in sim.rpc("revenue-rebalance-debug")["rejections"])
    # the manual path refuses to overwrite it too
    with pytest.raises(RpcException, match="already a job for that scid"):
        sim.rpc("revenue-rebalance", {"from_channel": store, "to_channel": hot, "amount_sats": 100_000,
                                      "max_fee_sats": 100})
    assert sim.node.call("sling-jobsettings", {})[hot]["maxppm"] == 100


def test_revenue_rebalance_success_path_is_initiated_only_after_sling_once_started():
    sim = simulate.start(loads_scenario(REFILL), seed=4)
    sim.advance(600)
    n = names(sim)
    res = sim.rpc("revenue-rebalance", {"from_channel": n["big"], "to_channel": n["cold"], "amount_sats": 200_000,
                                        "max_fee_sats": 200})
    assert res["status"] == "initiated" and res["to_channel"] == n["cold"] and res["reserved_msat"] == 200_000
    assert n["cold"] in sim.node.sling.running
    [row] = [r for r in reservations(sim) if r["scid"] == n["cold"]]
    assert row["status"] == "active" and row["id"] == res["reservation_id"]
    sim.advance(3 * 3600)
    [row] = [r for r in reservations(sim) if r["scid"] == n["cold"]]
    assert row["status"] == "settled" and row["spent_msat"] <= 200_000


def test_revenue_rebalance_errors_are_honest():
    sim = simulate.start(loads_scenario(REFILL), seed=4)
    sim.advance(600)
    n = names(sim)
    ok = {"from_channel": n["big"], "to_channel": n["cold"], "amount_sats": 100_000}
    with pytest.raises(RpcException, match="to_channel"):
        sim.rpc("revenue-rebalance", {**ok, "to_channel": "not-a-scid"})
    with pytest.raises(RpcException, match="to_channel"):
        sim.rpc("revenue-rebalance", {**ok, "to_channel": "1x1x1"})
    with pytest.raises(RpcException, match="amount_sats"):
        sim.rpc("revenue-rebalance", {**ok, "amount_sats": -5})
    with pytest.raises(RpcException, match="force"):
        sim.rpc("revenue-rebalance", {**ok, "force": "maybe"})
    with pytest.raises(RpcException, match="budget"):
        sim.rpc("revenue-rebalance", {**ok, "max_fee_sats": 50_000})          # > 5000 sat daily budget
    # sling-once refuses: the error is returned, the reservation released, nothing runs in sling
    real_once = sim.node.sling._rpc_once
    sim.node.sling._rpc_once = lambda params: (_ for _ in ()).throw(SlingError("once refused"))
    with pytest.raises(RpcException, match="sling-once refused.*once refused"):
        sim.rpc("revenue-rebalance", {**ok, "max_fee_sats": 100})
    sim.node.sling._rpc_once = real_once
    assert [r["status"] for r in reservations(sim) if r["scid"] == n["cold"]] == ["released"]
    assert n["cold"] not in sim.node.sling.running
    assert not sim.runtime.ledger.load_jobs()


def test_sling_missing_means_no_rebalancing_visible_and_nothing_crashes():
    sc = loads_scenario(REFILL.replace("sling = true", "sling = false"))
    sim = simulate.start(sc, seed=1)
    sim.advance(DAY)
    debug = sim.rpc("revenue-rebalance-debug")
    assert debug["sling"] == "missing" and debug["rejections"][0]["code"] == "sling_unavailable"
    assert not reservations(sim)
    n = names(sim)
    with pytest.raises(RpcException, match="sling is not available"):
        sim.rpc("revenue-rebalance", {"from_channel": n["big"], "to_channel": n["hot"], "amount_sats": 100_000})
    assert sim.rpc("revenue-status")["counters"]["actor_restarts"] == 0


def test_ledger_reservations_are_atomic_capped_and_expire(tmp_path):
    from revops import config as cfgmod
    from revops.ledger import Ledger
    from revops.store import Store
    cfg = cfgmod.parse_options({"revenue-ops-daily-budget-sats": "1000"})
    ledger = Ledger(Store(str(tmp_path / "l.db")))
    t = 1_700_000_000
    assert ledger.reserve("a", "1x1x1", 600_000, t, cfg, None)[0]
    ok, why = ledger.reserve("b", "2x2x2", 500_000, t, cfg, None)       # 600 + 500 > 1000 sat
    assert not ok and why.startswith("budget")
    ok, why = ledger.reserve("c", "1x1x1", 100_000, t, cfg, cap_msat=650_000)   # 600 + 100 > cap 650
    assert not ok and why.startswith("channel_cap")
    s = ledger.settle("a", 200_000, t + 60)
    assert (s.book_msat, s.release_msat, s.overspend_msat) == (200_000, 400_000, 0)
    assert ledger.settle("a", 999, t + 61) is None                        # settled once only
    assert ledger.reserve("b", "2x2x2", 500_000, t + 120, cfg, None)[0]   # 200 spent + 500 <= 1000
    assert ledger.spent_24h_msat(t + 120) == 200_000 and ledger.spent_24h_msat(t + 86400 + 61) == 0
    # a reservation never settled (crash) stops counting after reservation_timeout_hours
    assert ledger.reserved_msat(t + 120, 4 * 3600) == 500_000
    assert ledger.release_stale(t + 120 + 4 * 3600, 4 * 3600) == 1
    assert ledger.reserved_msat(t + 120 + 4 * 3600, 4 * 3600) == 0
    assert ledger.settle("b", 700_000, t + 5 * 3600).overspend_msat == 200_000   # booked even above
    assert not ledger.reserve("z", "3x3x3", 0, t, cfg, None)[0]
    ledger.record_rebalance("b", "2x2x2", ["5x5x5", "6x6x6"], 500_000, 500_000, 700_000, 500_000_000, "succeeded",
                            "auto", "test", t + 120, t + 5 * 3600)
    assert ledger.drained_for(t + 3600, 48) == {"5x5x5": {"2x2x2": t + 120}, "6x6x6": {"2x2x2": t + 120}}
    assert ledger.drained_for(t + 49 * 3600, 48) == {}
    assert ledger.history_ppm(t + 6 * 3600) == {"2x2x2": [1400]}


@pytest.mark.parametrize("meddle", ["sling_restarted", "operator_stopped"])
def test_restart_after_the_job_was_stopped_or_lost_in_sling_settles_it_once(tmp_path, meddle):
    db = str(tmp_path / "revenue_ops.db")
    sc = loads_scenario(REFILL)
    sim = simulate.start(sc, seed=1, db_path=db, step_seconds=60)
    hot = names(sim)["hot"]
    while not sim.runtime.ledger.load_jobs():
        sim.advance(60)
    [res_id] = [r["id"] for r in reservations(sim) if r["status"] == "active"]
    node = sim.node
    sim.close()
    if meddle == "sling_restarted":   # a once-job is not persisted: gone, sling-stop answers "No job running"
        node.sling.start_plugin()
    else:
        node.call("sling-stop", {"scid": hot})
    sim2 = simulate.start(sc, seed=1, db_path=db, node=node, step_seconds=60)
    sim2.advance(60)
    assert hot not in sim2.node.sling.running and not sim2.runtime.ledger.load_jobs()
    [row] = [r for r in reservations(sim2) if r["id"] == res_id]
    assert row["status"] == "settled"
    assert len(list(sim2.store.db.execute("SELECT status FROM rebalances WHERE id=?", (res_id,)))) == 1


def test_a_lost_sling_answer_does_not_leave_a_job_unwatched():
    sim = simulate.start(loads_scenario(REFILL), seed=1, step_seconds=60)
    hot = names(sim)["hot"]
    while not sim.runtime.ledger.load_jobs():
        sim.advance(60)
    real = sim.runtime._io_job
    dropped = []

    def lose_stats(req):                     # the next sling-stats answers never arrive
        if req.method == "sling-stats" and len(dropped) < 2:
            dropped.append(req)
            sim.runtime.outstanding_io -= 1
            return
        real(req)
    sim.runtime._io_job = lose_stats
    sim.advance(3 * 3600)
    assert len(dropped) == 2
    rows = [r for r in reservations(sim) if r["scid"] == hot]
    # the job whose answers were lost ended and left the registry (a later job may run on the channel)
    assert rows[0]["status"] == "settled"
    assert rows[0]["id"] not in {job.job_id for job, _ in sim.runtime.ledger.load_jobs()}


def test_the_real_plugin_rebalances_through_sling_over_the_plugin_protocol(tmp_path, monkeypatch):
    """Threaded runtime inside the real plugin file, driven by the stand-in lightningd: revenue-rebalance
    answers `initiated` once sling-once started, and the next polls settle the reservation from sling's counters."""
    import time
    from revops.sim.lightningd import StandinLightningd
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.1")
    from tests.plugin_under_test import PLUGIN as plugin, wait_running
    with StandinLightningd(loads_scenario(REFILL), lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[plugin],
                           log_stderr=False) as ld:
        wait_running(ld)
        chans = {c["short_channel_id"]: c for c in ld.rpc.call("listpeerchannels")["channels"]}
        by_local = sorted(chans, key=lambda s: int(chans[s]["to_us_msat"]) / int(chans[s]["total_msat"]))
        dst, src = by_local[0], by_local[-1]
        res = ld.rpc.call("revenue-rebalance", {"from_channel": src, "to_channel": dst, "amount_sats": 100_000,
                                                "max_fee_sats": 100})
        assert res["status"] == "initiated" and dst in {r["scid"] for r in ld.rpc.call("sling-stats", {"json": True})}
        assert dst not in ld.rpc.call("sling-jobsettings")       # a once-job is not a job
        settled = []
        for _ in range(40):
            ld.rpc.call("dev-sim-advance", {"seconds": 300})
            time.sleep(0.2)
            debug = ld.rpc.call("revenue-rebalance-debug")
            settled = [r for r in debug["ledger"]["reservations"] if r["status"] == "settled"]
            if settled:
                break
        assert settled and settled[0]["id"] == res["reservation_id"] and settled[0]["spent_msat"] <= 100_000
        [row] = [r for r in ld.rpc.call("sling-stats", {"json": True}) if r["scid"] == dst]
        assert row["status"][0].split(":")[1] in ("Balanced", "Stopped", "Stopping")     # no longer runs


def test_stop_jobs_on_shutdown_stops_only_our_jobs(tmp_path):
    sc = loads_scenario(REFILL)
    from revops.sim.node import SimNode
    node = SimNode(sc, seed=1)
    store = next(c.scid for c in node.open_channels() if c.name == "store")
    node.call("sling-job", {"scid": store, "direction": "pull", "amount": 100_000, "maxppm": 10,
                            "outppm": 10, "target": 0.99})
    node.call("sling-go", {"scid": store})
    sim = simulate.start(sc, node=node, db_path=str(tmp_path / "db"), step_seconds=60,
                         options={"revenue-ops-stop-jobs-on-shutdown": "true"})
    hot = names(sim)["hot"]
    for _ in range(24 * 60):
        sim.advance(60)
        if sim.runtime.ledger.load_jobs():
            break
    assert hot in node.sling.running and store in node.sling.running
    sim.close()
    assert hot not in node.sling.running                     # ours: stopped
    assert store in node.sling.running                       # the operator's: untouched
    assert any(f"sling-stop {hot}: stopped" in text for _, text in sim.log_lines)


def test_emulated_sling_breaks_like_sling_once_balanced_and_refills_at_once_below_target():
    """The emulated sling keeps sling's own pauses (src/slings.rs): 1 s after a success it looks again, and
    once the channel is at its target it idles 600 s; below target it pulls chunk after chunk. So a one-chunk
    job polled every 300 s is stopped before its break ends (docs/rebalancing.md), and a drain during the
    break is refilled in consecutive chunks once it ends: why the plugin uses once-jobs (docs/rebalancing.md)."""
    from revops.sim.node import SimNode
    node = SimNode(loads_scenario(REFILL), seed=1)
    cold = next(c for c in node.open_channels() if c.name == "cold")
    big = next(c for c in node.open_channels() if c.name == "big")
    node.call("sling-job", {"scid": cold.scid, "direction": "pull", "amount": 10_000, "maxppm": 5000,
                            "candidates": [big.scid], "paralleljobs": 1,
                            "target": (cold.to_us_msat * 10_000 // cold.capacity_msat + 1) / 10_000})
    node.call("sling-go", {"scid": cold.scid})
    while not node.sling.successes.get(cold.scid):
        node.advance_to(node.now + 1)
    first = node.sling.successes[cold.scid][0]["t"]
    node.advance_to(first + 2)
    assert node.sling.status[cold.scid] == "Balanced"
    cold.set_to_us(cold.to_us_msat - 50_000_000)                # forwards drain 5 chunks during the break
    big.set_to_us(big.to_us_msat + 50_000_000)
    node.advance_to(first + 599)
    assert len(node.sling.successes[cold.scid]) == 1            # idle until the break ends
    node.advance_to(first + 3600)
    times = [s["t"] for s in node.sling.successes[cold.scid][1:]]
    assert len(times) >= 5 and times[0] >= first + 600
