"""The sling job lifecycle table (revops/sling_jobs.py), tested like fees.decide: the expected table is
written out here independently, and every (phase, event) pair is checked — each legal move goes where the
specification says, each other pair is refused."""
from __future__ import annotations

import itertools

import pytest

from revops import sling_jobs as sj
from revops.sling_jobs import Event as E, Phase as P

PROV, ADOPT, CREATED, GOING, RUN, POLL, RESUME = P.PROVISIONAL, P.ADOPTING, P.CREATED, P.GOING, P.RUNNING, \
    P.POLLING, P.RESUMING
STOP, DEL, SETTLE, CLEAN, DONE, ABORT, FORGOT = P.STOPPING, P.DELETING, P.SETTLING, P.CLEANUP, P.DONE, \
    P.ABORTED, P.FORGOTTEN

# (phase, event) → next phase: the specification (docs/rebalancing.md "The life of a sling job")
SPEC: dict[tuple[P, E], P] = {
    (PROV, E.OK): CREATED, (PROV, E.ERROR): ABORT, (PROV, E.NOT_FOUND): ABORT, (PROV, E.LOST): ADOPT,
    (PROV, E.ABSENT): ABORT, (PROV, E.NOT_RESUMABLE): CLEAN,
    (ADOPT, E.FOUND): CREATED, (ADOPT, E.ABSENT): ABORT, (ADOPT, E.ERROR): ADOPT, (ADOPT, E.LOST): ADOPT,
    (ADOPT, E.NOT_FOUND): ADOPT, (ADOPT, E.RETRY): ADOPT, (ADOPT, E.NOT_RESUMABLE): CLEAN,
    (CREATED, E.OK): GOING, (CREATED, E.ERROR): CLEAN, (CREATED, E.LOST): CLEAN, (CREATED, E.NOT_FOUND): CLEAN,
    (CREATED, E.ABSENT): ABORT, (CREATED, E.NOT_RESUMABLE): CLEAN,
    (GOING, E.OK): RUN, (GOING, E.ERROR): CLEAN, (GOING, E.LOST): STOP, (GOING, E.NOT_FOUND): ABORT,
    (GOING, E.ABSENT): FORGOT, (GOING, E.RESUMABLE): RESUME, (GOING, E.NOT_RESUMABLE): STOP,
    (RUN, E.POLL): POLL, (RUN, E.ABSENT): FORGOT, (RUN, E.RESUMABLE): RESUME, (RUN, E.NOT_RESUMABLE): STOP,
    (POLL, E.CONTINUE): RUN, (POLL, E.STOP): STOP,
    (RESUME, E.OK): RUN, (RESUME, E.ERROR): STOP, (RESUME, E.LOST): STOP, (RESUME, E.NOT_FOUND): SETTLE,
    (STOP, E.OK): DEL, (STOP, E.NOT_FOUND): DEL, (STOP, E.ERROR): STOP, (STOP, E.LOST): STOP,
    (STOP, E.RETRY): STOP, (STOP, E.ABSENT): SETTLE, (STOP, E.NOT_RESUMABLE): STOP,
    (DEL, E.OK): SETTLE, (DEL, E.NOT_FOUND): SETTLE, (DEL, E.ERROR): DEL, (DEL, E.LOST): DEL,
    (DEL, E.RETRY): DEL, (DEL, E.ABSENT): SETTLE, (DEL, E.NOT_RESUMABLE): DEL,
    (SETTLE, E.OK): DONE, (SETTLE, E.NOT_FOUND): DONE, (SETTLE, E.ERROR): SETTLE, (SETTLE, E.LOST): SETTLE,
    (SETTLE, E.RETRY): SETTLE, (SETTLE, E.ABSENT): SETTLE, (SETTLE, E.NOT_RESUMABLE): DEL,
    (CLEAN, E.OK): ABORT, (CLEAN, E.NOT_FOUND): ABORT, (CLEAN, E.ERROR): CLEAN, (CLEAN, E.LOST): CLEAN,
    (CLEAN, E.RETRY): CLEAN, (CLEAN, E.ABSENT): ABORT, (CLEAN, E.NOT_RESUMABLE): CLEAN,
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
    """From the moment sling may run the job (after sling-go was asked and not refused), no path leads to
    ABORTED (release without booking): only DONE or FORGOTTEN, both booked."""
    for phase in (RUN, POLL, RESUME, STOP, DEL, SETTLE):
        assert ABORT not in _reachable(phase), phase
    assert sj.transition(GOING, E.LOST)[0] is STOP          # a lost sling-go answer: it may run


def test_a_lost_sling_job_answer_ends_adopted_or_deleted_never_orphaned() -> None:
    """After a lost sling-job answer, ADOPTING (the row kept) is left only to CREATED (adopted: ours from
    now on) or ABORTED (sling has no such job); at start-up to CLEANUP (deleted from sling)."""
    assert sj.transition(PROV, E.LOST)[0] is ADOPT
    assert {nxt for (phase, _), (nxt, _) in sj.TRANSITIONS.items() if phase is ADOPT} == {ADOPT, CREATED, ABORT, CLEAN}


def test_every_phase_that_waits_asks_sling_something() -> None:
    for phase in P:
        assert (sj.ASKS[phase] is None) == (phase in sj.TERMINAL or phase is RUN)
    assert sj.at_rest(POLL) is RUN and sj.at_rest(RESUME) is RUN and sj.at_rest(STOP) is STOP


@pytest.mark.parametrize("error,event", [
    (None, E.OK),
    ({"code": -32600, "message": "Shortchannelid not found in jobs"}, E.NOT_FOUND),
    ({"code": -32600, "message": "go refused"}, E.ERROR),
    ({"code": None, "message": "TimeoutError: sling-job: the answer was lost (injected)"}, E.LOST),
    ({"message": "ConnectionError: lightningd closed the RPC connection"}, E.LOST),
    ({"code": -32099, "message": "dry-run: sling-go not sent"}, E.ERROR),
])
def test_answers_are_classified_definite_or_lost(error, event) -> None:
    assert sj.answer_event(error) is event


SENT = sj.Sent(maxppm=500, amount_sat=100_000)
OURS = {"sat_direction": "pull", "maxppm": 500, "amount_msat": 100_000_000}


@pytest.mark.parametrize("settings,event", [
    ({"1x1x1": OURS}, E.FOUND),
    ({"1:1:1": OURS}, E.FOUND),
    ({}, E.ABSENT),
    ({"2x2x2": OURS}, E.ABSENT),
    ({"1x1x1": {**OURS, "maxppm": 900}}, E.LOST),          # not what we sent: never adopted, asked again
    ({"1x1x1": {**OURS, "sat_direction": "push"}}, E.LOST),
])
def test_lookup_after_a_lost_answer(settings, event) -> None:
    assert sj.lookup_event("1x1x1", settings, SENT) is event


@pytest.mark.parametrize("phase,settings,age,running,event", [
    (RUN, {"1x1x1": OURS}, 100, True, E.RESUMABLE),
    (GOING, {"1x1x1": OURS}, 100, True, E.RESUMABLE),
    (RUN, {"1x1x1": OURS}, 7200, True, E.NOT_RESUMABLE),       # overdue: stopped and booked, never resumed
    (RUN, {"1x1x1": OURS}, 100, False, E.NOT_RESUMABLE),       # already finished
    (RUN, {"1x1x1": {**OURS, "amount_msat": 900_000_000}}, 100, True, E.NOT_RESUMABLE),   # altered
    (RUN, {}, 100, True, E.ABSENT),
    (PROV, {"1x1x1": OURS}, 0, True, E.NOT_RESUMABLE),         # created, never started: deleted
    (PROV, {}, 0, True, E.ABSENT),
    (STOP, {"1x1x1": OURS}, 100, False, E.NOT_RESUMABLE),
])
def test_reconcile_events(phase, settings, age, running, event) -> None:
    assert sj.reconcile_event(phase, "1x1x1", settings, SENT, 1000, 1000 + age, 7200, running) is event
