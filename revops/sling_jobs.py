"""The lifecycle of one sling job of ours, as a table of transitions (a pure function, no I/O, no clock).

Why a table: the sling executor talks to sling over calls whose answers can be refused, lost or late.
Every way out of every phase is written down here once, so a lost answer can only lead where the table
says (never to an orphan job in sling, never to a reservation released while sling may still spend),
and an event that must not happen in a phase is an error instead of a silent guess.

Every job is a `sling-once` (docs/rebalancing.md "The life of a sling job"): sling rebalances at most
`onceamount` (here: the amount reserved for, one chunk) and stops by itself, so its spend is bounded by
onceamount x maxppm <= the reservation whatever the channel does and whether or not we can reach sling.
A once-job is not persisted by sling (gone after a sling restart), is not listed by `sling-jobsettings`,
and is seen in the `sling-stats {json: true}` summary (a row for its scid while sling keeps its task).

A job's registry row (SQLite) exists from PROVISIONAL on: it is written, with the baseline of sling's
counters, BEFORE `sling-once` is sent, so whatever becomes of the answer the job is ours and ends booked
from sling's counters. At start-up a job is never resumed: it is stopped and booked (`startup_event`).

Answers are classified by `answer_event`: OK, ERROR (a definite refusal: nothing was done), NOT_FOUND
(sling has no such job) and LOST (no definite answer: the call may or may not have been carried out).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class Phase(str, enum.Enum):
    PROVISIONAL = "provisional"   # registry row (with the baseline) written; sling-once sent
    ADOPTING = "adopting"         # sling-once's answer was lost: does sling run it? (sling-stats summary)
    RUNNING = "running"           # sling works on it; polled every JOB_POLL_SECONDS
    POLLING = "polling"           # sling-stats asked, job_step decides
    STOPPING = "stopping"         # sling-stop asked
    SETTLING = "settling"         # final sling-stats asked: the spend is booked from them
    DELETING = "deleting"         # a continuous sling-job of an earlier release: sling-deletejob (stops it too)
    CLEANUP = "cleanup"           # the same, never started by us: sling-deletejob, nothing to book
    DONE = "done"                 # booked from sling's counters, gone from the registry
    ABORTED = "aborted"           # never started: reservation released, not in the registry


class Event(str, enum.Enum):
    OK = "ok"                     # the call was answered with success
    ERROR = "error"               # a definite refusal: the call was not carried out
    LOST = "lost"                 # no definite answer (transport fault, lost, no answer by the deadline)
    NOT_FOUND = "not_found"       # sling answered that it has no such job
    FOUND = "found"               # the sling-stats summary shows a live task on the channel
    ABSENT = "absent"             # the sling-stats summary shows none
    POLL = "poll"                 # time to read the stats of a running job
    CONTINUE = "continue"         # job_step: keep running
    STOP = "stop"                 # job_step: stop it (success, budget, timeout, failure)
    RETRY = "retry"               # a poll, the last answer was ERROR/LOST: ask again
    STARTUP = "startup"           # the plugin started and found the row: stop and book, never resume
    LEGACY = "legacy"             # the same for a row of an earlier release (a persistent sling-job)


class IllegalTransition(ValueError):
    """An event that cannot happen in this phase (a bug or a forged answer): the job is left as it is."""


# What entering a phase asks sling (None: nothing, the phase waits for an event from the executor).
ASKS: dict[Phase, str | None] = {
    Phase.PROVISIONAL: "sling-once", Phase.ADOPTING: "sling-stats", Phase.RUNNING: None,
    Phase.POLLING: "sling-stats", Phase.STOPPING: "sling-stop", Phase.SETTLING: "sling-stats",
    Phase.DELETING: "sling-deletejob", Phase.CLEANUP: "sling-deletejob",
    Phase.DONE: None, Phase.ABORTED: None,
}
TERMINAL = frozenset({Phase.DONE, Phase.ABORTED})
# phases in which a revenue-rebalance caller still waits for "initiated"
STARTING = frozenset({Phase.PROVISIONAL, Phase.ADOPTING, Phase.RUNNING})
# phases whose call is simply asked again at the next poll after an ERROR or a LOST answer
_RETRIED = (Phase.ADOPTING, Phase.STOPPING, Phase.SETTLING, Phase.DELETING, Phase.CLEANUP)
# a legacy row's saved phase (release <= 237f310: sling-job + sling-go) and where it goes at start-up
LEGACY_NEVER_WENT = frozenset({"provisional", "adopting", "created", "cleanup"})

P, E = Phase, Event
TRANSITIONS: dict[tuple[Phase, Event], tuple[Phase, str]] = {
    # -- starting: the row and its baseline exist before sling-once is sent
    (P.PROVISIONAL, E.OK): (P.RUNNING, "sling-once started it"),
    (P.PROVISIONAL, E.ERROR): (P.ABORTED, "sling-once refused: nothing started, reservation released"),
    (P.PROVISIONAL, E.NOT_FOUND): (P.ABORTED, "sling-once refused: nothing started, reservation released"),
    (P.PROVISIONAL, E.LOST): (P.ADOPTING, "sling-once's answer was lost: asking sling whether it runs the job"),
    (P.ADOPTING, E.FOUND): (P.RUNNING, "adopted: sling runs a once-job on the channel"),
    (P.ADOPTING, E.ABSENT): (P.STOPPING, "sling shows no once-job on the channel: stopping it to be sure, "
                                         "then booking what its counters show"),
    # -- running
    (P.RUNNING, E.POLL): (P.POLLING, "reading sling-stats"),
    (P.POLLING, E.CONTINUE): (P.RUNNING, "still running"),
    (P.POLLING, E.STOP): (P.STOPPING, "stopping it"),
    # -- ending: stop, then book from the stats read after it stopped
    (P.STOPPING, E.OK): (P.SETTLING, "stopped: reading the final stats"),
    (P.STOPPING, E.NOT_FOUND): (P.SETTLING, "sling runs no job on the channel: reading the final stats"),
    (P.SETTLING, E.OK): (P.DONE, "booked from the stats read after it stopped"),
    (P.SETTLING, E.NOT_FOUND): (P.DONE, "sling has no stats: booked what was last seen"),
    # -- a continuous job of an earlier release: deleted (sling-deletejob stops it first), then booked
    (P.DELETING, E.OK): (P.SETTLING, "deleted from sling (stats kept): reading the final stats"),
    (P.DELETING, E.NOT_FOUND): (P.SETTLING, "not in sling: reading the final stats"),
    (P.CLEANUP, E.OK): (P.ABORTED, "deleted from sling, reservation released"),
    (P.CLEANUP, E.NOT_FOUND): (P.ABORTED, "not in sling, reservation released"),
    # -- start-up: every job found is stopped and booked, never resumed (the next cycle starts a fresh one)
    (P.PROVISIONAL, E.STARTUP): (P.STOPPING, "start-up: sling-once may have been sent: stopping it and booking"),
    (P.ADOPTING, E.STARTUP): (P.STOPPING, "start-up: sling-once may have been sent: stopping it and booking"),
    (P.RUNNING, E.STARTUP): (P.STOPPING, "start-up: never resumed: stopping it and booking its spend"),
    (P.STOPPING, E.STARTUP): (P.STOPPING, "start-up: stopping it"),
    (P.SETTLING, E.STARTUP): (P.SETTLING, "start-up: reading the final stats"),
    (P.DELETING, E.STARTUP): (P.DELETING, "start-up: deleting it"),
    (P.CLEANUP, E.STARTUP): (P.CLEANUP, "start-up: deleting it"),
    (P.RUNNING, E.LEGACY): (P.DELETING, "start-up: a continuous sling-job of an earlier release: deleting it "
                                        "(sling-deletejob stops it first), then booking its spend"),
    (P.CLEANUP, E.LEGACY): (P.CLEANUP, "start-up: a sling-job of an earlier release that never started: "
                                       "deleting it, reservation released"),
    (P.SETTLING, E.LEGACY): (P.SETTLING, "start-up: reading the final stats"),
}
for _phase in _RETRIED:
    TRANSITIONS[(_phase, E.ERROR)] = (_phase, f"{ASKS[_phase]} failed: asked again at the next poll")
    TRANSITIONS[(_phase, E.LOST)] = (_phase, f"{ASKS[_phase]} got no answer: asked again at the next poll")
    TRANSITIONS[(_phase, E.RETRY)] = (_phase, f"asking {ASKS[_phase]} again")
TRANSITIONS[(P.ADOPTING, E.NOT_FOUND)] = (P.ADOPTING, "sling-stats failed: asked again at the next poll")
del _phase, P, E


def transition(phase: Phase, event: Event) -> tuple[Phase, str]:
    """(next phase, reason) for `event` in `phase`; IllegalTransition when the table has no such move."""
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} cannot happen in phase {phase.value}") from None


def at_rest(phase: Phase) -> Phase:
    """The phase a registry row is saved with: a poll in flight is a running job."""
    return Phase.RUNNING if phase is Phase.POLLING else phase


def answer_event(error: Mapping[str, Any] | None) -> Event:
    """Classify an answer: success, a definite refusal, "no such job", or lost (no code = transport).

    sling says "<scid>: No job running" to a sling-stop of a channel without a task (a once-job is gone
    after a sling restart) and "... not found ..." for an unknown job or channel."""
    if error is None:
        return Event.OK
    message = str(error.get("message", "")).lower()
    if "not found" in message or "no job running" in message:
        return Event.NOT_FOUND
    return Event.LOST if error.get("code") is None else Event.ERROR


def _norm(scid: str) -> str:
    return scid.replace(":", "x")


# states of a once-task that no longer runs: sling-stop marks every task of the channel Stopping (a task
# that already ended keeps that state), a stopped loop says Stopped
ENDED_STATES = frozenset({"Stopping", "Stopped"})


def lookup_event(scid: str, summary: Any) -> Event:
    """ADOPTING: FOUND when the `sling-stats {json: true}` summary has a row for the channel whose task is
    not stopped (a once-job that runs, or that has just done its amount), ABSENT otherwise. A summary that
    is not a list of rows is LOST (asked again)."""
    if not isinstance(summary, list):
        return Event.LOST
    for row in summary:
        if isinstance(row, Mapping) and _norm(str(row.get("scid", ""))) == _norm(scid):
            states = {str(s).split(":", 1)[-1] for s in row.get("status") or ()}
            return Event.FOUND if states - ENDED_STATES else Event.ABSENT
    return Event.ABSENT


def startup_event(extra: Mapping[str, Any]) -> tuple[Phase, Event]:
    """Start-up: the phase a saved row resumes in and the event it gets. Rows of this release carry
    `once_msat` and get STARTUP; rows of an earlier release (a persistent sling-job) get LEGACY, from
    CLEANUP when they never started (nothing to book), else from RUNNING (deleted, then booked)."""
    saved = str(extra.get("phase") or "running")
    if extra.get("once_msat") is not None:
        return Phase(saved), Event.STARTUP
    if saved in LEGACY_NEVER_WENT:
        return Phase.CLEANUP, Event.LEGACY
    return (Phase.SETTLING if saved == "settling" else Phase.RUNNING), Event.LEGACY
