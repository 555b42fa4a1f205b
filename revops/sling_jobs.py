"""The lifecycle of one sling job of ours, as a table of transitions (a pure function, no I/O, no clock).

Why a table: the sling executor talks to sling over calls whose answers can be refused, lost or late.
Every way out of every phase is written down here once, so a lost answer can only lead where the table
says (never to an orphan job in sling, never to a reservation released while sling may still spend),
and an event that must not happen in a phase is an error instead of a silent guess.

A job's registry row (SQLite) exists from PROVISIONAL on: it is written BEFORE `sling-job` is sent, so
whatever becomes of the answer, the job is ours and ends either adopted or deleted. The phase is saved
with the row; at start-up `reconcile_event` turns the saved phase and what sling reports into an event.

Answers are classified by `answer_event`: OK, ERROR (a definite refusal: nothing was done), NOT_FOUND
(sling has no such job) and LOST (no definite answer: the call may or may not have been carried out).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs


class Phase(str, enum.Enum):
    PROVISIONAL = "provisional"   # registry row written; sling-job sent
    ADOPTING = "adopting"         # sling-job's answer was lost: is the job in sling? (sling-jobsettings)
    CREATED = "created"           # sling has the job, not going: reading the baseline (sling-stats)
    GOING = "going"               # baseline saved; sling-go sent
    RUNNING = "running"           # sling works on it; polled every rebalance cycle
    POLLING = "polling"           # sling-stats asked, job_step decides
    RESUMING = "resuming"         # after a restart: sling-go asked again
    STOPPING = "stopping"         # sling-stop asked
    DELETING = "deleting"         # sling-deletejob asked (after a stop)
    SETTLING = "settling"         # final sling-stats asked: the spend is booked from them
    CLEANUP = "cleanup"           # the job never went: sling-deletejob asked, nothing to book
    DONE = "done"                 # booked from sling's counters, gone from sling and the registry
    ABORTED = "aborted"           # never went: reservation released, not in sling, not in the registry
    FORGOTTEN = "forgotten"       # vanished from sling behind our back: booked what was last seen


class Event(str, enum.Enum):
    OK = "ok"                     # the call was answered with success
    ERROR = "error"               # a definite refusal: the call was not carried out
    LOST = "lost"                 # no definite answer (transport fault, lost, no answer by the deadline)
    NOT_FOUND = "not_found"       # sling answered that it has no such job
    FOUND = "found"               # sling-jobsettings lists the job with the settings we sent
    ABSENT = "absent"             # sling-jobsettings does not list the job
    POLL = "poll"                 # a rebalance cycle: time to read the stats of a running job
    CONTINUE = "continue"         # job_step: keep running
    STOP = "stop"                 # job_step: stop it (success, budget, timeout, failure)
    RETRY = "retry"               # a rebalance cycle, the last answer was ERROR/LOST: ask again
    RESUMABLE = "resumable"       # start-up: in sling, our settings, not overdue
    NOT_RESUMABLE = "not_resumable"   # start-up: in sling but altered, finished or overdue


class IllegalTransition(ValueError):
    """An event that cannot happen in this phase (a bug or a forged answer): the job is left as it is."""


# What entering a phase asks sling (None: nothing, the phase waits for an event from the executor).
ASKS: dict[Phase, str | None] = {
    Phase.PROVISIONAL: "sling-job", Phase.ADOPTING: "sling-jobsettings", Phase.CREATED: "sling-stats",
    Phase.GOING: "sling-go", Phase.RUNNING: None, Phase.POLLING: "sling-stats", Phase.RESUMING: "sling-go",
    Phase.STOPPING: "sling-stop", Phase.DELETING: "sling-deletejob", Phase.SETTLING: "sling-stats",
    Phase.CLEANUP: "sling-deletejob", Phase.DONE: None, Phase.ABORTED: None, Phase.FORGOTTEN: None,
}
TERMINAL = frozenset({Phase.DONE, Phase.ABORTED, Phase.FORGOTTEN})
# phases in which the job never went: nothing can have been spent, the reservation is released
NEVER_WENT = frozenset({Phase.PROVISIONAL, Phase.ADOPTING, Phase.CREATED, Phase.CLEANUP})
# phases in which a revenue-rebalance caller still waits for "initiated"
STARTING = frozenset({Phase.PROVISIONAL, Phase.ADOPTING, Phase.CREATED, Phase.GOING, Phase.RUNNING})
# phases whose call is simply asked again at the next rebalance cycle after an ERROR or a LOST answer
_RETRIED = (Phase.ADOPTING, Phase.STOPPING, Phase.DELETING, Phase.SETTLING, Phase.CLEANUP)

P, E = Phase, Event
TRANSITIONS: dict[tuple[Phase, Event], tuple[Phase, str]] = {
    # -- creating: the row exists before sling-job is sent
    (P.PROVISIONAL, E.OK): (P.CREATED, "sling-job created the job"),
    (P.PROVISIONAL, E.ERROR): (P.ABORTED, "sling-job failed: nothing created, reservation released"),
    (P.PROVISIONAL, E.LOST): (P.ADOPTING, "sling-job's answer was lost: asking sling whether the job exists"),
    (P.PROVISIONAL, E.NOT_FOUND): (P.ABORTED, "sling-job failed: nothing created, reservation released"),
    (P.ADOPTING, E.FOUND): (P.CREATED, "adopted: sling has the job we sent"),
    (P.ADOPTING, E.ABSENT): (P.ABORTED, "sling has no job: never created, reservation released"),
    (P.CREATED, E.OK): (P.GOING, "baseline read and saved: starting it"),
    (P.CREATED, E.ERROR): (P.CLEANUP, "no baseline from sling-stats: cannot account, fail closed"),
    (P.CREATED, E.LOST): (P.CLEANUP, "no baseline from sling-stats: cannot account, fail closed"),
    (P.CREATED, E.NOT_FOUND): (P.CLEANUP, "no baseline from sling-stats: cannot account, fail closed"),
    (P.GOING, E.OK): (P.RUNNING, "sling-go started it"),
    (P.GOING, E.ERROR): (P.CLEANUP, "sling-go failed: nothing spent, deleting it"),
    (P.GOING, E.LOST): (P.STOPPING, "sling-go's answer was lost: it may run, stopping it and booking its spend"),
    (P.GOING, E.NOT_FOUND): (P.ABORTED, "sling-go: sling has no such job: nothing started, reservation released"),
    # -- running
    (P.RUNNING, E.POLL): (P.POLLING, "reading sling-stats"),
    (P.POLLING, E.CONTINUE): (P.RUNNING, "still running"),
    (P.POLLING, E.STOP): (P.STOPPING, "stopping it"),
    (P.RESUMING, E.OK): (P.RUNNING, "resumed after a restart"),
    (P.RESUMING, E.ERROR): (P.STOPPING, "not resumable: stopping it and booking its spend"),
    (P.RESUMING, E.LOST): (P.STOPPING, "sling-go's answer was lost at resume: stopping it and booking its spend"),
    (P.RESUMING, E.NOT_FOUND): (P.SETTLING, "gone from sling at resume: reading the final stats"),
    # -- ending a job that went: stop, delete, book from the stats read after it stopped
    (P.STOPPING, E.OK): (P.DELETING, "stopped"),
    (P.STOPPING, E.NOT_FOUND): (P.DELETING, "sling no longer runs it"),
    (P.DELETING, E.OK): (P.SETTLING, "deleted from sling (stats kept): reading the final stats"),
    (P.DELETING, E.NOT_FOUND): (P.SETTLING, "already gone from sling: reading the final stats"),
    (P.SETTLING, E.OK): (P.DONE, "booked from the stats read after it stopped"),
    (P.SETTLING, E.NOT_FOUND): (P.DONE, "sling has no stats: booked what was last seen"),
    # -- ending a job that never went
    (P.CLEANUP, E.OK): (P.ABORTED, "deleted from sling, reservation released"),
    (P.CLEANUP, E.NOT_FOUND): (P.ABORTED, "not in sling, reservation released"),
    # -- start-up (reconcile): the saved phase meets what sling reports
    (P.PROVISIONAL, E.ABSENT): (P.ABORTED, "start-up: never created, reservation released"),
    (P.PROVISIONAL, E.NOT_RESUMABLE): (P.CLEANUP, "start-up: created but never started, deleting it"),
    (P.ADOPTING, E.NOT_RESUMABLE): (P.CLEANUP, "start-up: created but never started, deleting it"),
    (P.CREATED, E.ABSENT): (P.ABORTED, "start-up: gone from sling before it started, reservation released"),
    (P.CREATED, E.NOT_RESUMABLE): (P.CLEANUP, "start-up: created but never started, deleting it"),
    (P.CLEANUP, E.ABSENT): (P.ABORTED, "start-up: not in sling, reservation released"),
    (P.CLEANUP, E.NOT_RESUMABLE): (P.CLEANUP, "start-up: deleting it"),
    (P.GOING, E.ABSENT): (P.FORGOTTEN, "start-up: the job disappeared from sling: booked what we last saw"),
    (P.GOING, E.RESUMABLE): (P.RESUMING, "start-up: ours and still wanted: resuming"),
    (P.GOING, E.NOT_RESUMABLE): (P.STOPPING, "start-up: altered, finished or overdue: stopping it"),
    (P.RUNNING, E.ABSENT): (P.FORGOTTEN, "start-up: the job disappeared from sling: booked what we last saw"),
    (P.RUNNING, E.RESUMABLE): (P.RESUMING, "start-up: ours and still wanted: resuming"),
    (P.RUNNING, E.NOT_RESUMABLE): (P.STOPPING, "start-up: altered, finished or overdue: stopping it"),
    (P.STOPPING, E.ABSENT): (P.SETTLING, "start-up: already gone from sling: reading the final stats"),
    (P.STOPPING, E.NOT_RESUMABLE): (P.STOPPING, "start-up: stopping it"),
    (P.DELETING, E.ABSENT): (P.SETTLING, "start-up: already gone from sling: reading the final stats"),
    (P.DELETING, E.NOT_RESUMABLE): (P.DELETING, "start-up: deleting it"),
    (P.SETTLING, E.ABSENT): (P.SETTLING, "start-up: reading the final stats"),
    (P.SETTLING, E.NOT_RESUMABLE): (P.DELETING, "start-up: still in sling: deleting it"),
}
TRANSITIONS[(P.ADOPTING, E.NOT_FOUND)] = (P.ADOPTING, "sling-jobsettings failed: asked again at the next cycle")
for _phase in _RETRIED:
    TRANSITIONS[(_phase, E.ERROR)] = (_phase, f"{ASKS[_phase]} failed: asked again at the next cycle")
    TRANSITIONS[(_phase, E.LOST)] = (_phase, f"{ASKS[_phase]} got no answer: asked again at the next cycle")
    TRANSITIONS[(_phase, E.RETRY)] = (_phase, f"asking {ASKS[_phase]} again")
del _phase, P, E


def transition(phase: Phase, event: Event) -> tuple[Phase, str]:
    """(next phase, reason) for `event` in `phase`; IllegalTransition when the table has no such move."""
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} cannot happen in phase {phase.value}") from None


def at_rest(phase: Phase) -> Phase:
    """The phase a registry row is saved with: a poll or a resume in flight is a running job."""
    return Phase.RUNNING if phase in (Phase.POLLING, Phase.RESUMING) else phase


def answer_event(error: Mapping[str, Any] | None) -> Event:
    """Classify an answer: success, a definite refusal, "no such job", or lost (no code = transport)."""
    if error is None:
        return Event.OK
    if "not found" in str(error.get("message", "")).lower():
        return Event.NOT_FOUND
    return Event.LOST if error.get("code") is None else Event.ERROR


def _norm(scid: str) -> str:
    return scid.replace(":", "x")


@attrs.frozen
class Sent:
    """What we asked sling-job for: the settings sling must report for the job to be ours."""

    maxppm: int
    amount_sat: int


def is_ours(settings: Any, sent: Sent) -> bool:
    """The job in sling is still the one we created (a pull job nobody raised in price or amount)."""
    if not isinstance(settings, Mapping):
        return False
    try:
        return (str(settings.get("sat_direction", "")).lower() == "pull"
                and int(settings["maxppm"]) <= sent.maxppm
                and int(settings["amount_msat"]) <= sent.amount_sat * 1000)
    except (KeyError, TypeError, ValueError):
        return False


def lookup_event(scid: str, sling_jobsettings: Mapping[str, Any], sent: Sent) -> Event:
    """ADOPTING: FOUND when sling lists the job with our settings, ABSENT when it does not list it.
    A job there with other settings is not the one we sent: LOST (asked again; never adopted)."""
    found = {_norm(s): v for s, v in sling_jobsettings.items()}.get(_norm(scid))
    if found is None:
        return Event.ABSENT
    return Event.FOUND if is_ours(found, sent) else Event.LOST


def reconcile_event(phase: Phase, scid: str, sling_jobsettings: Mapping[str, Any], sent: Sent,
                    started_at: float, now: float, job_timeout_s: float, still_running: bool) -> Event:
    """Start-up: ABSENT (not in sling), RESUMABLE (ours, running, not overdue) or NOT_RESUMABLE.

    A job already past `job_timeout_s` is never resumed: it is stopped and booked (overdue)."""
    found = {_norm(s): v for s, v in sling_jobsettings.items()}.get(_norm(scid))
    if found is None:
        return Event.ABSENT
    if (phase in (Phase.GOING, Phase.RUNNING) and still_running and is_ours(found, sent)
            and now - started_at < job_timeout_s):
        return Event.RESUMABLE
    return Event.NOT_RESUMABLE
