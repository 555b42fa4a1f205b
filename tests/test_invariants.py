"""Invariants over random event sequences through the real runtime and actors (revops/sim/sequences.py).

CI runs a batch sized for its budget; bench/invariants.py runs 10,000 (counts in docs/reliability.md).
The checks themselves are shown to fail on a broken store, an out-of-bounds fee, a fee change on a
passive peer and a forward counted twice by an actor.
"""
from __future__ import annotations

import collections

import pytest

from revops import simulate
from revops.sim import invariants
from revops.sim.faults import FaultyRpc
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario
from revops.sim.sequences import run_sequence

CI_SEQUENCES = 100


def test_random_event_sequences_keep_every_invariant(tmp_path, capsys):
    events: collections.Counter = collections.Counter()
    problems, faults, forwards = {}, 0, 0
    for seed in range(CI_SEQUENCES):
        o = run_sequence(seed, db_dir=str(tmp_path))
        events.update(o.events)
        faults, forwards = faults + o.faults_injected, forwards + o.forwards
        if o.problems:
            problems[seed] = o.problems
    with capsys.disabled():
        print(f"\n[invariants] {CI_SEQUENCES} sequences, {sum(events.values())} events {dict(events)}, "
              f"{faults} faults injected, {forwards} forwards checked, {len(problems)} with problems")
    assert not problems, problems
    assert events["restart"] > 10 and events["fault"] > 10 and faults > 100
    assert events["crash"] > 10 and events["corrupt"] > 10


@pytest.mark.parametrize("seed", [1439, 1634, 3408, 4626, 5373])
def test_a_job_running_when_dry_run_is_switched_on_is_stopped_not_left_spending(seed, tmp_path):
    """Found by the 10,000-sequence run: the dry-run guard refused sling-stop, so the job spent on past its
    reservation ("rebalance spend not booked"). Stopping only ends spending: it passes in dry-run."""
    assert not run_sequence(seed, db_dir=str(tmp_path)).problems


@pytest.mark.parametrize("seed", [3106, 23, 170, 1279, 5402, 8970, 4118, 6171, 2582, 3004])
def test_a_sling_job_never_books_above_its_reservation(seed, tmp_path):
    """Found by the 10,000-sequence runs ("a sling job booked above its reservation"): a continuous sling-job
    pulled chunk after chunk when the destination was drained — between two polls (3106), after a stale
    target (23), while it waited for its first chunk (170, 1279, 5402, 8970), while sling could not be
    reached to stop it (4118, 6171), after start-up resumed it (2582) or while start-up could not complete
    and nobody watched it (3004). Every job is now a once-job of the reserved amount (bounded by
    construction), a job found at start-up is stopped and booked, never resumed, and every start-up attempt
    first stops the jobs of our registry (docs/reliability.md items 25-28)."""
    assert not run_sequence(seed, db_dir=str(tmp_path)).problems


def checked_sim():
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=3)
    rpc = FaultyRpc(node)
    sim = simulate.start(scenario, node=node, rpc=rpc)
    sim.advance(12 * 3600)
    assert not invariants.check_all(sim, rpc)
    return sim, rpc


def test_the_checks_catch_a_lost_forward_and_an_actor_counting_twice():
    sim, rpc = checked_sim()
    sim.store.db.execute("DELETE FROM forwards WHERE rowid = (SELECT MIN(rowid) FROM forwards)")
    assert any("missing from the store" in p for p in invariants.check_forwards(sim))
    sim2, _ = checked_sim()
    f = sim2.store.db.execute("SELECT * FROM forwards WHERE status='settled' ORDER BY received_time DESC").fetchone()
    sim2.store.db.execute("INSERT INTO forwards VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                          (f[0], f[1] + 10**6, *tuple(f)[2:]))
    assert any("actor window revenue" in p for p in invariants.check_forwards(sim2))


def test_the_checks_catch_a_fee_out_of_bounds_a_touched_passive_peer_and_too_many_updates():
    sim, rpc = checked_sim()
    ch = sim.node.open_channels()[0]
    sim.rpc("revenue-policy", {"action": "set", "peer_id": ch.peer_id, "strategy": "passive"})
    sim.advance(600)
    for _ in range(3):                          # someone other than the plugin's actors
        sim.advance(600)
        rpc.call("setchannel", {"id": ch.scid, "feeppm": 99_999})
    found = invariants.check_all(sim, rpc)
    assert any("passive" in p for p in found)
    assert any("never recorded" in p for p in found)
    sim.store.db.execute("UPDATE fee_decisions SET new_fee_ppm=99999 WHERE id=(SELECT MAX(id) FROM fee_decisions "
                         "WHERE outcome='applied' AND branch NOT IN ('static', 'hive'))")
    assert any("outside" in p for p in invariants.check_fee_bounds(sim))


def test_the_budget_check_catches_an_overspent_day():
    sim, rpc = checked_sim()
    t = sim.runtime.now
    sim.store.db.execute("INSERT INTO budget_reservations(id, scid, reserved_msat, spent_msat, status, created_at) "
                         "VALUES ('x', ?, ?, 0, 'active', ?)",
                         (sim.node.open_channels()[0].scid, 10**12, t))
    assert any("daily budget" in p for p in invariants.check_budget(sim))
