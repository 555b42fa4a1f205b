"""The paths that spend money, on the simulated node and emulated sling, with answers lost and dry-run at
runtime (issue 14 items 3, 4, 5, 27, 28 and max_concurrent_jobs). Each test failed on the code before the
sling job table (revops/sling_jobs.py), the dry-run guard, or the once-jobs (docs/rebalancing.md)."""
from __future__ import annotations

import pytest
from pyln.client import RpcException

from revops import rebalance as rb
from revops import simulate
from revops.sim.faults import WRITES, FaultyRpc
from revops.sim.invariants import check_dry_run, check_registry
from revops.sim.node import SimNode
from revops.sim.scenario import loads_scenario
from tests.test_rebalance_sim import REFILL, names, reservations

HOUR = 3600


def start(tmp_path=None, options=None, node=None, rpc=None, seed=4):
    sc = loads_scenario(REFILL)
    node = node or SimNode(sc, seed=seed)
    rpc = rpc or FaultyRpc(node)
    sim = simulate.start(sc, node=node, rpc=rpc, options=options, step_seconds=60,
                         db_path=str(tmp_path / "revenue_ops.db") if tmp_path else None)
    sim.advance(600)
    return sim, rpc


def manual(sim, src: str, dst: str, sats: int = 200_000, fee: int = 200) -> dict:
    return sim.rpc("revenue-rebalance", {"from_channel": src, "to_channel": dst, "amount_sats": sats,
                                         "max_fee_sats": fee})


def registry(sim) -> set[str]:
    return {job.scid for job, _ in sim.runtime.ledger.load_jobs()}


def test_a_lost_sling_once_answer_is_adopted_not_orphaned():
    """Item 4: sling started the job but its answer (and the retries') never arrived. Before (sling-job), the
    job stayed in sling outside our registry and the channel was refused for ever as "not ours". The row with
    its baseline exists before sling-once is sent; the sling-stats summary shows the once-job: adopted."""
    sim, rpc = start()
    n = names(sim)
    rpc.inject("lost", "sling-once")
    res = manual(sim, n["big"], n["cold"])
    assert res["status"] == "initiated" and n["cold"] in sim.node.sling.running
    assert registry(sim) == {n["cold"]} and not check_registry(sim, rpc)
    assert any("adopted" in text for _, text in sim.log_lines)
    rpc.clear()
    sim.advance(4 * HOUR)
    [row] = [r for r in reservations(sim) if r["scid"] == n["cold"]]
    assert row["status"] == "settled" and n["cold"] not in sim.node.sling.running
    assert row["spent_msat"] // 1000 == sum(x["fee_msat"] for x in sim.node.sling.successes[n["cold"]]) // 1000
    assert manual(sim, n["big"], n["cold"], 100_000, 100)["status"] == "initiated"     # ours again, not refused


def test_a_sling_once_that_never_reached_sling_is_stopped_to_be_sure_and_booked_at_zero():
    """The other end of "adopt or release": no answer and no once-job in the summary → stopped to be sure
    (sling answers "No job running") and settled from the counters: nothing spent, the rest released."""
    sim, rpc = start()
    n = names(sim)
    rpc.inject("timeout", "sling-once")          # never carried out
    with pytest.raises(RpcException, match="no once-job on the channel"):
        manual(sim, n["big"], n["cold"])
    rpc.clear()
    sim.advance(HOUR)
    assert [(r["status"], r["spent_msat"]) for r in reservations(sim)] == [("settled", 0)]
    assert not registry(sim) and n["cold"] not in sim.node.sling.running


@pytest.mark.parametrize("method", ["sling-stop", "sling-stats"])
def test_lost_answers_while_ending_a_job_are_asked_again_and_booked_once(method):
    sim, rpc = start()
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    rpc.inject("lost", method)
    sim.advance(4 * HOUR)
    if method == "sling-stop":        # never known to be stopped: kept, its reservation counts
        assert registry(sim) == {n["cold"]} and [r["status"] for r in reservations(sim)] == ["active"]
    # (lost sling-stats answers: the job is stopped blind, its final stats asked again until they come)
    rpc.clear()
    sim.advance(2 * HOUR)
    [row] = reservations(sim)
    assert row["status"] == "settled" and not registry(sim) and not check_registry(sim)
    assert row["spent_msat"] >= sum(x["fee_msat"] for x in sim.node.sling.successes.get(n["cold"], [])) - 1000


def test_a_reservation_counts_while_its_job_is_registered_whatever_its_age(tmp_path):
    """Item 5 at the ledger: before, a reservation older than reservation_timeout_hours stopped counting
    even while its sling job still ran, and a new reservation could take the same money."""
    from revops import config as cfgmod
    from revops import rebalance as rb
    from revops.ledger import Ledger
    from revops.store import Store
    cfg = cfgmod.parse_options({"revenue-ops-daily-budget-sats": "1000"})
    ledger = Ledger(Store(str(tmp_path / "l.db")))
    t, late = 1_700_000_000, 1_700_000_000 + 5 * HOUR          # timeout 4 h
    assert ledger.reserve("held", "1x1x1", 600_000, t, cfg, None)[0]
    assert ledger.reserve("orphan", "2x2x2", 100_000, t, cfg, None)[0]
    cand = rb.Candidate("1x1x1", "p", ("3x3x3",), 100_000, 600_000, 6000, 0, 0, 0, 0, False, "test")
    ledger.save_job(rb.new_job("held", cand, rb.SlingStats(), 0, t), {"res_id": "held", "phase": "running"}, t)
    assert ledger.reserved_msat(late, 4 * HOUR) == 600_000                    # the orphan no longer counts
    ok, why = ledger.reserve("new", "4x4x4", 500_000, late, cfg, None)        # 600 held + 500 > 1000 sat
    assert not ok and why.startswith("budget")
    assert {r["id"]: r["status"] for r in ledger.reservations()} == {"held": "active", "orphan": "expired"}
    ledger.delete_job("1x1x1")                                                # its job ended without settling
    assert ledger.reserved_msat(late, 4 * HOUR) == 0


def test_a_job_overdue_at_start_up_is_stopped_and_booked_never_resumed(tmp_path):
    """Item 5: reconcile resumed jobs already past sling_job_timeout_seconds (they went on spending)."""
    sim, rpc = start(tmp_path)
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    node = sim.node
    sim.close()
    node.advance_to(node.now + 3 * HOUR)               # away longer than the 2 h job timeout
    node.call("sling-stop", {"scid": n["cold"]})      # sling was restarted meanwhile: the job is idle
    before = len(rpc.delivered)
    sim2, _ = start(tmp_path, node=node, rpc=rpc)
    sent = [m for _, m, _ in rpc.delivered[before:]]
    assert "sling-once" not in sent and "sling-stop" in sent
    [row] = reservations(sim2)
    assert row["status"] == "settled" and not registry(sim2)
    [status] = [r[0] for r in sim2.store.db.execute("SELECT status FROM rebalances")]
    assert status == "timed_out"


def test_job_timeout_and_reservation_timeout_are_tied():
    from revops import config as cfgmod
    with pytest.raises(cfgmod.ConfigError, match="reservation-timeout-hours x 3600"):
        cfgmod.parse_options({"revenue-ops-sling-job-timeout-seconds": "36000",
                              "revenue-ops-reservation-timeout-hours": "4"})


def test_dry_run_at_runtime_starts_no_job_and_sends_nothing_that_changes_state():
    """Item 3: dry_run was immutable, and revenue-rebalance started a spending sling job in dry-run."""
    sim, rpc = start()
    n = names(sim)
    assert sim.rpc("revenue-config", {"action": "set", "key": "dry_run", "value": "true"})["new_value"] is True
    before = len(rpc.delivered)
    res = manual(sim, n["big"], n["cold"])
    assert res["status"] == "dry_run" and res["would_start"]["to_channel"] == n["cold"]
    sim.advance(12 * HOUR)
    assert rpc.delivered[before:] == [] and not reservations(sim)
    assert sim.rpc("revenue-rebalance-debug")["candidates"]          # the cycle still says what it would do
    sim.rpc("revenue-config", {"action": "set", "key": "dry_run", "value": "false"})
    assert manual(sim, n["big"], n["cold"])["status"] == "initiated"


def test_dry_run_switched_on_mid_job_stops_the_job_and_sends_nothing_else():
    """The kill switch thrown while a job runs: the job is stopped (stopping only ends spending, fail closed;
    refusing it let the job spend past its reservation, sequence seeds 1439…5373) and booked from sling's
    records while dry-run is still on (seed 4118). Nothing else is sent."""
    sim, rpc = start()
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    sim.rpc("revenue-config", {"action": "set", "key": "dry_run", "value": "true"})
    since = len(rpc.delivered)
    sim.advance(4 * HOUR)
    sent = [(m, p) for _, m, p in rpc.delivered[since:]]
    assert not check_dry_run(rpc, [(since, len(rpc.delivered))])
    assert sent == [("sling-stop", {"scid": n["cold"]})]
    [row] = reservations(sim)
    assert not registry(sim) and row["status"] == "settled"
    assert row["spent_msat"] // 1000 == sim.node.ledger.rebalance_cost_msat // 1000 > 0     # sling's own record


def test_a_drain_while_a_job_waits_cannot_make_it_spend_past_its_reservation():
    """Sequence seeds 23, 170, 1279, 5402, 8970: the destination was drained after the job's target was set
    (a stale view, or forwards while the job waited for a route); a continuous sling-job then pulled back to
    its target chunk after chunk, 1 s apart, before any poll. A once-job of the reserved amount stops after
    it: drained five chunks' worth before and during the job, sling still pulls one chunk only."""
    sim, rpc = start()
    n = names(sim)
    cold, store = sim.node.channels[n["cold"]], sim.node.channels[n["store"]]
    cold.set_to_us(cold.to_us_msat - 50_000_000)        # a forward out of cold, after the views were read
    store.set_to_us(store.to_us_msat + 50_000_000)
    res = manual(sim, n["big"], n["cold"], 10_000, 10)
    [params] = [p for _, m, p in rpc.delivered if m == "sling-once"]
    assert params["amount"] == params["onceamount"] == 10_000 and "target" not in params
    for _ in range(6):                                   # drained again while the job runs
        sim.advance(120)
        cold.set_to_us(cold.to_us_msat - 10_000_000)
        store.set_to_us(store.to_us_msat + 10_000_000)
    sim.advance(HOUR)
    assert len(sim.node.sling.successes[n["cold"]]) == 1
    [row] = reservations(sim)
    assert row["id"] == res["reservation_id"] and row["status"] == "settled"
    assert 0 < sim.node.ledger.rebalance_cost_msat <= row["reserved_msat"]


def test_a_once_job_sling_cannot_be_reached_for_stays_within_its_reservation():
    """Sequence seeds 4118, 6171: sling could not be reached to stop a job (socket gone) for hours while
    forwards drained the channel; the continuous job refilled it in several chunks. A once-job stops by
    itself after its amount: the spend is bounded whether or not the stop reaches sling."""
    sim, rpc = start()
    n = names(sim)
    cold, store = sim.node.channels[n["cold"]], sim.node.channels[n["store"]]
    manual(sim, n["big"], n["cold"], 10_000, 10)
    rpc.inject("vanish", "sling-*")
    for _ in range(12):
        sim.advance(10 * 60)
        cold.set_to_us(cold.to_us_msat - 10_000_000)
        store.set_to_us(store.to_us_msat + 10_000_000)
    assert registry(sim) == {n["cold"]}                  # never known to be stopped: kept, counted
    rpc.clear()
    sim.advance(HOUR)
    [row] = reservations(sim)
    assert row["status"] == "settled" and not registry(sim)
    assert len(sim.node.sling.successes[n["cold"]]) == 1
    assert row["spent_msat"] <= sim.node.ledger.rebalance_cost_msat <= row["reserved_msat"]


def test_manual_rebalances_respect_max_concurrent_jobs():
    sim, _ = start(options={"revenue-ops-max-concurrent-jobs": 1})
    n = names(sim)
    manual(sim, n["big"], n["cold"], 100_000, 100)
    with pytest.raises(RpcException, match="max_concurrent_jobs 1"):
        manual(sim, n["store"], n["hot"], 100_000, 100)
    assert [r["scid"] for r in reservations(sim)] == [n["cold"]]


def test_writes_list_covers_every_state_changing_call():
    from revops.node import STOPS_SPENDING, changes_state
    assert all(changes_state(m) for m in WRITES if m not in STOPS_SPENDING)
    assert STOPS_SPENDING == {"sling-stop", "sling-deletejob"} and not changes_state("sling-stop")
    # deleting one of our jobs with sling's records kept only ends spending; deleting all, or the records, does not
    assert not changes_state("sling-deletejob", {"job": "1x1x0", "delete_stats": False})
    assert changes_state("sling-deletejob", {"job": "1x1x0", "delete_stats": True})
    assert changes_state("sling-deletejob", {"job": "all", "delete_stats": False})
    assert changes_state("sling-deletejob", {"job": "1x1x0"})


def test_the_kill_switch_through_the_real_plugin(tmp_path, monkeypatch):
    """The real plugin file under the stand-in lightningd: `revenue-config set dry_run true` at runtime, then
    neither revenue-rebalance nor hours of cycles change a fee or create a sling job; off again, it acts."""
    import time
    from pyln.client import RpcError
    from revops.sim.lightningd import StandinLightningd
    from tests.plugin_under_test import PLUGIN as plugin, wait_running
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.1")
    with StandinLightningd(loads_scenario(REFILL), lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[plugin],
                           log_stderr=False) as ld:
        wait_running(ld)
        assert ld.rpc.call("revenue-config", {"action": "set", "key": "dry_run", "value": "true"})["new_value"] is True

        def fees() -> dict[str, int]:
            return {c["short_channel_id"]: c["updates"]["local"]["fee_proportional_millionths"]
                    for c in ld.rpc.call("listpeerchannels")["channels"]}
        before = fees()
        chans = {c["short_channel_id"]: c for c in ld.rpc.call("listpeerchannels")["channels"]}
        by_local = sorted(chans, key=lambda s: int(chans[s]["to_us_msat"]) / int(chans[s]["total_msat"]))
        ask = {"from_channel": by_local[-1], "to_channel": by_local[0], "amount_sats": 100_000, "max_fee_sats": 100}
        assert ld.rpc.call("revenue-rebalance", ask)["status"] == "dry_run"
        for _ in range(12):
            ld.rpc.call("dev-sim-advance", {"seconds": 1800})
            time.sleep(0.2)
        assert fees() == before and ld.rpc.call("sling-jobsettings") == {}
        decisions = ld.rpc.call("revenue-fee-debug", {})["decisions"]
        assert decisions and {d["outcome"] for d in decisions} <= {"dry_run", "held"}
        # lightningd's own setconfig works too (every mutable option is dynamic), validated the same way
        with pytest.raises(RpcError, match="must be <="):
            ld.rpc.call("setconfig", {"config": "revenue-ops-min-fee-ppm", "val": 9999})    # > max_fee_ppm
        ld.rpc.call("setconfig", {"config": "revenue-ops-dry-run", "val": "false"})
        assert ld.rpc.call("revenue-config", {"action": "get", "key": "dry_run"})["value"] is False
        assert ld.rpc.call("revenue-rebalance", ask)["status"] == "initiated"
        assert by_local[0] in {r["scid"] for r in ld.rpc.call("sling-stats", {"json": True})}


def test_a_job_found_at_start_up_is_stopped_and_booked_never_resumed(tmp_path):
    """Item 28, sequence seed 2582: reconcile resumed a job of ours (not overdue) whose one-chunk target a drain
    had left five chunks above the balance while sling was away; sling pulled them at once. A job found at
    start-up is now stopped and booked, never resumed; the next cycle starts a fresh one. While the stop is not
    confirmed the row keeps its channel (no second job there) and its reservation counts."""
    sim, rpc = start(tmp_path)
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    node = sim.node
    sim.close()
    rpc.inject("error", "sling-stop")
    before = len(rpc.delivered)
    sim2, _ = start(tmp_path, node=node, rpc=rpc)
    assert not [m for _, m, _ in rpc.delivered[before:] if m in ("sling-go", "sling-once")]
    with pytest.raises(RpcException, match="a job of ours already runs on"):
        manual(sim2, n["store"], n["cold"], 100_000, 100)
    assert [r["status"] for r in reservations(sim2)] == ["active"] and registry(sim2) == {n["cold"]}
    assert manual(sim2, n["store"], n["hot"], 100_000, 100)["status"] == "initiated"    # other channels: free
    rpc.clear()
    sim2.advance(HOUR)
    first = reservations(sim2)[0]
    assert first["status"] == "settled" and n["cold"] not in registry(sim2)
    [status] = [r[0] for r in sim2.store.db.execute("SELECT status FROM rebalances WHERE id=?", (first["id"],))]
    assert status in ("succeeded", "failed")


def test_a_start_up_that_keeps_failing_still_stops_the_jobs_of_our_registry(tmp_path):
    """Item 28, sequence seed 3004: after a kill -9 the start-up could not complete for 2 h (getinfo answers
    lost), no actor ran, nobody watched our job and sling refilled a drain in 61 chunks. The jobs of our
    registry are now stopped first thing at every start-up attempt (it needs only the database and
    sling-stop); the executor books them once the start-up completes."""
    sim, rpc = start(tmp_path)
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    node = sim.node
    assert n["cold"] in node.sling.running
    sim.close()                                          # stop-jobs-on-shutdown is off: the job runs on
    assert n["cold"] in node.sling.running
    rpc.inject("lost", "getinfo")
    before = len(rpc.delivered)
    sim2 = simulate.start(loads_scenario(REFILL), node=node, rpc=rpc, step_seconds=60,
                          db_path=str(tmp_path / "revenue_ops.db"))
    sim2.advance(2 * HOUR)
    assert not sim2.runtime.started
    assert ("sling-stop", {"scid": n["cold"]}) in [(m, p) for _, m, p in rpc.delivered[before:]]
    assert n["cold"] not in node.sling.running
    assert [r["status"] for r in reservations(sim2)] == ["active"]          # booked once started
    rpc.clear()
    sim2.advance(HOUR)
    assert sim2.runtime.started and reservations(sim2)[0]["status"] == "settled" and not registry(sim2)
