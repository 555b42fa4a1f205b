"""The sling job lifecycle table (revops/sling_jobs.py), tested like fees.decide: the expected table is
written out here independently, and every (phase, event) pair is checked — each legal move goes where the
specification says, each other pair is refused."""
from __future__ import annotations

import itertools

import pytest

from revops import sling_jobs as sj
from revops.sling_jobs import Event as E, Phase as P

PROV, ADOPT, RUN, POLL = P.PROVISIONAL, P.ADOPTING, P.RUNNING, P.POLLING
STOP, SETTLE, DEL, CLEAN, DONE, ABORT = P.STOPPING, P.SETTLING, P.DELETING, P.CLEANUP, P.DONE, P.ABORTED

# (phase, event) → next phase: the specification (docs/rebalancing.md "The life of a sling job")
SPEC: dict[tuple[P, E], P] = {
    (PROV, E.OK): RUN, (PROV, E.ERROR): ABORT, (PROV, E.NOT_FOUND): ABORT, (PROV, E.LOST): ADOPT,
    (PROV, E.STARTUP): STOP,
    (ADOPT, E.FOUND): RUN, (ADOPT, E.ABSENT): STOP, (ADOPT, E.ERROR): ADOPT, (ADOPT, E.LOST): ADOPT,
    (ADOPT, E.NOT_FOUND): ADOPT, (ADOPT, E.RETRY): ADOPT, (ADOPT, E.STARTUP): STOP,
    (RUN, E.POLL): POLL, (RUN, E.STARTUP): STOP, (RUN, E.LEGACY): DEL,
    (POLL, E.CONTINUE): RUN, (POLL, E.STOP): STOP,
    (STOP, E.OK): SETTLE, (STOP, E.NOT_FOUND): SETTLE, (STOP, E.ERROR): STOP, (STOP, E.LOST): STOP,
    (STOP, E.RETRY): STOP, (STOP, E.STARTUP): STOP,
    (SETTLE, E.OK): DONE, (SETTLE, E.NOT_FOUND): DONE, (SETTLE, E.ERROR): SETTLE, (SETTLE, E.LOST): SETTLE,
    (SETTLE, E.RETRY): SETTLE, (SETTLE, E.STARTUP): SETTLE, (SETTLE, E.LEGACY): SETTLE,
    (DEL, E.OK): SETTLE, (DEL, E.NOT_FOUND): SETTLE, (DEL, E.ERROR): DEL, (DEL, E.LOST): DEL,
    (DEL, E.RETRY): DEL, (DEL, E.STARTUP): DEL,
    (CLEAN, E.OK): ABORT, (CLEAN, E.NOT_FOUND): ABORT, (CLEAN, E.ERROR): CLEAN, (CLEAN, E.LOST): CLEAN,
    (CLEAN, E.RETRY): CLEAN, (CLEAN, E.STARTUP): CLEAN, (CLEAN, E.LEGACY): CLEAN,
}
PAIRS = list(itertools.product(P, E))


@pytest.mark.parametrize("phase,event", [p for p in PAIRS if p in SPEC], ids=lambda x: x.value)
def test_every_legal_transition_goes_where_the_specification_says(phase: P, event: E) -> None:
    nxt, reason = sj.transition(phase, event)
    assert nxt is SPEC[(phase, event)] and reason


@pytest.mark.parametrize("phase,event", [p for p in PAIRS if p not in SPEC], ids=lambda x: x.value)
def test_every_other_pair_is_an_illegal_transition(phase: P, event: E) -> None:
    with pytest.raises(sj.IllegalTransition, match=f"{event.value} cannot happen in phase {phase.value}"):
        sj.transition(phase, event)


def _reachable(start: P, allowed: set[E] | None = None) -> set[P]:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for (phase, event), (nxt, _) in sj.TRANSITIONS.items():
            if phase is here and (allowed is None or event in allowed) and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_terminal_phases_have_no_way_out_and_every_other_phase_can_end() -> None:
    assert not [k for k in sj.TRANSITIONS if k[0] in sj.TERMINAL]
    for phase in set(P) - sj.TERMINAL:
        assert _reachable(phase) & sj.TERMINAL, phase


def test_a_job_that_may_have_spent_is_never_released_unbooked() -> None:
    """From the moment sling-once was sent (and not refused), no path leads to ABORTED (release without
    booking): only DONE, booked from sling's counters, even when its answer was lost."""
    for phase in (PROV, ADOPT, RUN, POLL, STOP, SETTLE, DEL):
        reachable = _reachable(phase, set(E) - {E.ERROR, E.NOT_FOUND} if phase is PROV else None)
        assert ABORT not in reachable, phase
    assert sj.transition(PROV, E.LOST)[0] is ADOPT


def test_a_lost_sling_once_answer_ends_adopted_or_stopped_and_booked_never_orphaned() -> None:
    """After a lost sling-once answer, ADOPTING (the row kept) is left only to RUNNING (adopted: polled and
    booked like any job) or STOPPING (not seen in sling: stopped to be sure, then booked)."""
    assert sj.transition(PROV, E.LOST)[0] is ADOPT
    assert {nxt for (phase, _), (nxt, _) in sj.TRANSITIONS.items() if phase is ADOPT} == {ADOPT, RUN, STOP}


def test_no_job_is_ever_resumed_at_start_up() -> None:
    """Item 28 (sequence seed 2582): a job found at start-up is stopped and booked; nothing leads from a
    start-up event to RUNNING, and no phase asks sling to start anything but PROVISIONAL (sling-once)."""
    for (phase, event), (nxt, _) in sj.TRANSITIONS.items():
        if event in (E.STARTUP, E.LEGACY):
            assert nxt in (STOP, SETTLE, DEL, CLEAN), (phase, event)
    assert [p for p, m in sj.ASKS.items() if m in ("sling-once", "sling-go", "sling-job")] == [PROV]


def test_every_phase_that_waits_asks_sling_something() -> None:
    for phase in P:
        assert (sj.ASKS[phase] is None) == (phase in sj.TERMINAL or phase is RUN)
    assert sj.at_rest(POLL) is RUN and sj.at_rest(STOP) is STOP


@pytest.mark.parametrize("error,event", [
    (None, E.OK),
    ({"code": -32600, "message": "Shortchannelid not found in jobs"}, E.NOT_FOUND),
    ({"code": -32600, "message": "901200x1x0: No job running"}, E.NOT_FOUND),
    ({"code": -32600, "message": "There is already a job for that scid running!"}, E.ERROR),
    ({"code": None, "message": "TimeoutError: sling-once: the answer was lost (injected)"}, E.LOST),
    ({"message": "ConnectionError: lightningd closed the RPC connection"}, E.LOST),
    ({"code": -32099, "message": "dry-run: sling-once not sent"}, E.ERROR),
])
def test_answers_are_classified_definite_or_lost(error, event) -> None:
    assert sj.answer_event(error) is event


def row(scid: str, *states: str) -> dict:
    return {"alias": "a", "scid": scid, "pubkey": "02" * 33, "status": [f"{i + 1}:{s}" for i, s in enumerate(states)],
            "rebamount": "0", "w_feeppm": 0, "last_route_taken": "Never", "last_success_reb": "Never"}


@pytest.mark.parametrize("summary,event", [
    ([row("1x1x1", "Rebalancing")], E.FOUND),
    ([row("1x1x1", "NoRoutes")], E.FOUND),
    ([row("1x1x1", "Balanced")], E.FOUND),          # done its amount before we looked: adopted, then booked
    ([row("2x2x2", "Rebalancing"), row("1x1x1", "Starting")], E.FOUND),
    ([], E.ABSENT),
    ([row("2x2x2", "Rebalancing")], E.ABSENT),
    ([row("1x1x1", "Stopped")], E.ABSENT),          # an earlier job's task, stopped
    ([row("1x1x1", "Stopping")], E.ABSENT),
    ({"1x1x1": {}}, E.LOST),                        # not the summary's shape: asked again
])
def test_lookup_after_a_lost_answer(summary, event) -> None:
    assert sj.lookup_event("1x1x1", summary) is event


@pytest.mark.parametrize("extra,phase,event", [
    ({"once_msat": 10_000_000, "phase": "provisional"}, PROV, E.STARTUP),
    ({"once_msat": 10_000_000, "phase": "adopting"}, ADOPT, E.STARTUP),
    ({"once_msat": 10_000_000, "phase": "running"}, RUN, E.STARTUP),
    ({"once_msat": 10_000_000, "phase": "stopping"}, STOP, E.STARTUP),
    ({"once_msat": 10_000_000, "phase": "settling"}, SETTLE, E.STARTUP),
    ({"phase": "running"}, RUN, E.LEGACY),           # a continuous sling-job of release <= 237f310: deleted
    ({"phase": "going"}, RUN, E.LEGACY),
    ({"phase": "deleting"}, RUN, E.LEGACY),
    ({"phase": "settling"}, SETTLE, E.LEGACY),
    ({"phase": "created"}, CLEAN, E.LEGACY),         # never started: deleted, reservation released
    ({"phase": "provisional"}, CLEAN, E.LEGACY),
    ({}, RUN, E.LEGACY),
])
def test_start_up_events(extra, phase, event) -> None:
    assert sj.startup_event(extra) == (phase, event)
