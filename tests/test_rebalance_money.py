"""The paths that spend money, on the simulated node and emulated sling, with answers lost and dry-run at
runtime (issue 14 items 3, 4, 5 and max_concurrent_jobs). Each test failed on the code before the sling job
table (revops/sling_jobs.py) and the dry-run guard."""
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


def test_a_lost_sling_job_answer_is_adopted_not_orphaned():
    """Item 4: sling created the job but its answer (and the retries') never arrived. Before, the job stayed
    in sling outside our registry and the channel was refused for ever as "not ours"."""
    sim, rpc = start()
    n = names(sim)
    rpc.inject("lost", "sling-job")
    res = manual(sim, n["big"], n["cold"])
    assert res["status"] == "initiated" and n["cold"] in sim.node.sling.running
    assert registry(sim) == {n["cold"]} and not check_registry(sim)
    assert any("adopted" in text for _, text in sim.log_lines)
    rpc.clear()
    sim.advance(4 * HOUR)
    [row] = [r for r in reservations(sim) if r["scid"] == n["cold"]]
    assert row["status"] == "settled" and n["cold"] not in sim.node.call("sling-jobsettings", {})
    assert manual(sim, n["big"], n["cold"], 100_000, 100)["status"] == "initiated"     # ours again, not refused


def test_a_sling_job_that_never_reached_sling_is_released():
    """The other end of "adopt or delete": no answer and no job in sling → the reservation is released."""
    sim, rpc = start()
    n = names(sim)
    rpc.inject("timeout", "sling-job")          # never carried out
    with pytest.raises(RpcException, match="never created"):
        manual(sim, n["big"], n["cold"])
    assert [r["status"] for r in reservations(sim)] == ["released"]
    assert not registry(sim) and n["cold"] not in sim.node.call("sling-jobsettings", {})


def test_a_lost_sling_go_answer_stops_the_job_and_books_its_spend():
    """sling-go was carried out but its answer lost: the job may run, so it is stopped and booked from
    sling's counters (before: released as if nothing was spent, and deleted)."""
    sim, rpc = start()
    n = names(sim)
    rpc.inject("lost", "sling-go")
    with pytest.raises(RpcException, match="sling-go's answer was lost"):
        manual(sim, n["big"], n["cold"])
    rpc.clear()
    sim.advance(2 * HOUR)
    [row] = reservations(sim)
    assert row["status"] == "settled" and not registry(sim)
    assert n["cold"] not in sim.node.call("sling-jobsettings", {})


@pytest.mark.parametrize("method", ["sling-stop", "sling-deletejob"])
def test_lost_answers_while_ending_a_job_are_asked_again_and_booked_once(method):
    sim, rpc = start()
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    rpc.inject("lost", method)
    sim.advance(4 * HOUR)
    if method == "sling-stop":        # never known to be stopped: kept, its reservation counts
        assert registry(sim) == {n["cold"]} and [r["status"] for r in reservations(sim)] == ["active"]
    # (a lost sling-deletejob answer: the retry is answered "not found", a definite end)
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
    cand = rb.Candidate("1x1x1", "p", ("3x3x3",), 100_000, 600_000, 6000, 0, 0, 0, 0.5, 0, False, "test")
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
    assert "sling-go" not in sent and "sling-stop" in sent
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
    refusing it let the job spend past its reservation, sequence seeds 1439…5373), deleted with sling's records
    kept, and booked from them while dry-run is still on (refusing the delete left its spend unbooked for as
    long as dry-run was on: seed 4118). Nothing else is sent."""
    sim, rpc = start()
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    sim.rpc("revenue-config", {"action": "set", "key": "dry_run", "value": "true"})
    since = len(rpc.delivered)
    sim.advance(4 * HOUR)
    sent = [(m, p) for _, m, p in rpc.delivered[since:]]
    assert not check_dry_run(rpc, [(since, len(rpc.delivered))])
    assert sent == [("sling-stop", {"scid": n["cold"]}), ("sling-deletejob", {"job": n["cold"], "delete_stats": False})]
    [row] = reservations(sim)
    assert not registry(sim) and row["status"] == "settled"
    assert row["spent_msat"] // 1000 == sim.node.ledger.rebalance_cost_msat // 1000 > 0     # sling's own record


def test_a_manual_rebalance_targets_one_chunk_above_the_balance_now_not_the_last_views():
    """Sequence seed 23: the one-chunk target of a revenue-rebalance was taken from the channel view of the last
    fee cycle; forwards had drained the destination since, so sling (which pulls while below its target, 1 s
    between chunks) pulled 11 chunks at once on a one-chunk reservation. The target now comes from the
    balance in the listfunds read just before the job starts."""
    sim, rpc = start()
    n = names(sim)
    cold, store = sim.node.channels[n["cold"]], sim.node.channels[n["store"]]
    cold.set_to_us(cold.to_us_msat - 150_000_000)        # a forward out of cold, after the views were read
    store.set_to_us(store.to_us_msat + 150_000_000)
    manual(sim, n["big"], n["cold"], 10_000, 10)
    [params] = [p for _, m, p in rpc.delivered if m == "sling-job"]
    assert params["target"] == rb.one_chunk_target(cold.to_us_msat, cold.capacity_msat)


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
        assert by_local[0] in ld.rpc.call("sling-jobsettings")


def test_no_job_starts_while_our_registry_is_unreconciled(tmp_path):
    """sling-jobsettings failing at start-up: before, the executor declared itself ready with the registry
    unreconciled, so a new job could take a registered job's channel (and its row). Now nothing starts until
    reconcile succeeds, retried at every cycle; the registered reservation counts meanwhile."""
    sim, rpc = start(tmp_path)
    n = names(sim)
    manual(sim, n["big"], n["cold"], 200_000, 200)
    node = sim.node
    sim.close()
    rpc.inject("error", "sling-jobsettings")
    sim2, _ = start(tmp_path, node=node, rpc=rpc)
    sim2.advance(HOUR)
    with pytest.raises(RpcException, match="being reconciled"):
        manual(sim2, n["store"], n["hot"], 100_000, 100)
    assert sim2.rpc("revenue-rebalance-debug")["executor_ready"] is False
    assert [r["status"] for r in reservations(sim2)] == ["active"] and registry(sim2) == {n["cold"]}
    rpc.clear()
    sim2.advance(HOUR)
    assert sim2.rpc("revenue-rebalance-debug")["executor_ready"] is True
    assert manual(sim2, n["store"], n["hot"], 100_000, 100)["status"] == "initiated"
