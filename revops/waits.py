"""Bounded waits: the one way every fan-out and cycle waits for replies.

A `Wait` names who is expected to reply and a deadline taken from `Tick.now` (never the wall clock).
Replies are recorded by name; a late reply, or one from someone not expected, is ignored. On every tick
the owner calls `Waits.expire(now)` and answers each expired wait with what arrived, naming who did not
reply (`Wait.missing`); the owning cycle then starts again at its next interval. Used by the coordinator
(fee cycle, rebalance cycle, status fan-out) and the runtime (RPC replies, so the exporter's refresh too).
"""
from __future__ import annotations

import collections
from collections.abc import Hashable, Iterable

import attrs


@attrs.define
class Wait:
    key: Hashable
    what: str                          # what is waited for, e.g. "fee cycle" (logged, counted by it)
    started: int
    deadline: int
    expected: frozenset[str]
    replied: set[str] = attrs.field(factory=set)

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - self.replied)

    @property
    def complete(self) -> bool:
        # the length first: a rebalance cycle asks this after each of 5,000 replies, the subset test is O(n)
        return len(self.replied) >= len(self.expected) and self.expected <= self.replied

    def describe(self, now: int) -> str:
        """The log line and partial answer's reason: what, for how long, and who did not reply."""
        missing = self.missing
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        return (f"{self.what}: no reply from {shown or 'nobody'} after {now - self.started} s "
                f"(deadline {self.deadline - self.started} s); answered with what arrived")


@attrs.define
class Waits:
    """The open waits of one owner, and how many expired, by `what` (exported as a metric)."""
    open: dict[Hashable, Wait] = attrs.field(factory=dict)
    expired: collections.Counter = attrs.field(factory=collections.Counter)

    def start(self, key: Hashable, what: str, expected: Iterable[str], now: int, timeout: int) -> Wait:
        wait = Wait(key, what, now, now + max(0, timeout), frozenset(expected))
        self.open[key] = wait
        return wait

    def reply(self, key: Hashable, who: str) -> Wait | None:
        """Record `who`'s reply; the wait when it is open and expected it, else None (late or unknown)."""
        wait = self.open.get(key)
        if wait is None or who not in wait.expected:
            return None
        wait.replied.add(who)
        return wait

    def end(self, key: Hashable) -> Wait | None:
        return self.open.pop(key, None)

    def expire(self, now: int) -> list[Wait]:
        """Close and return every wait whose deadline has passed, oldest first."""
        due = sorted((w for w in self.open.values() if now >= w.deadline), key=lambda w: (w.deadline, str(w.key)))
        for wait in due:
            del self.open[wait.key]
            self.expired[wait.what] += 1
        return due

    def __contains__(self, key: Hashable) -> bool:
        return key in self.open

    def __len__(self) -> int:
        return len(self.open)
