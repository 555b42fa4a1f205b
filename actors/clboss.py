"""ClbossActor: keeps clboss's `lnfee` tags equal to the peers we price; revops/clboss_sync.py decides.

A pass reads `clboss-status` (the probe, and the tags clboss holds now), plans with clboss_sync.plan and sends
one `clboss-unmanage` per change, each with the peer's whole tag set. Passes run at start, when the priced
peers change (policies, channels), when clboss starts or is seen again, when clboss_enabled or dry_run
changes, every RESYNC_SECONDS, and after a failure with exponential backoff. A pass without an answer by its
deadline ends as expired, like a failure. In dry-run the plan is shown as pending and nothing is sent.
Time comes only from messages.
"""
from __future__ import annotations

from typing import Any

from actors.messages import (ClbossDesired, ClbossInit, ClbossOwned, ClbossReport, ClbossSeen, ConfigChanged, IoRequest,
                             IoResult, LogLine, Tick)
from actors.supervision import SupervisedActor
from revops import clboss_sync as cs

UNKNOWN_COMMAND = -32601
DEADLINE_FLOOR_SECONDS = 60


class ClbossActor(SupervisedActor):
    name = "clboss"

    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.now = 0
        self.priced: frozenset[str] | None = None   # None until the coordinator has its channels
        self.owned: dict[str, int] = {}              # peer → when we added its lnfee
        self.observed: dict[str, frozenset[str]] = {}
        self.available: bool | None = None
        self.phase = "idle"                          # idle | reading | applying
        self.deadline = 0
        self.status_req = 0
        self.inflight: dict[int, cs.Action] = {}
        self.next_req = 0
        self.dirty = False
        self.trigger = "start"
        self.next_at = 0
        self.failures = 0
        self.failed = False
        self.last_error: str | None = None
        self.last_pass: dict[str, Any] = {}
        self.pending: list[cs.Action] = []
        self.handed_back: dict[str, int] = {}        # peer → when (since the plugin started)

    def restore_checkpoint(self) -> None:
        # nothing to roll back: owned is persisted as it changes, the rest is re-read by the next pass
        self.phase, self.inflight, self.next_at = "idle", {}, self.now

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ClbossInit):
            self.config, self.runtime, self.owned, self.now = msg.config, msg.runtime, dict(msg.owned), msg.now
            self.next_at = msg.now
        elif isinstance(msg, ClbossDesired):
            if msg.priced != self.priced:
                first = self.priced is None
                self.priced = msg.priced
                self.kick("start" if first else "the peers we price changed")
        elif isinstance(msg, Tick):
            self.on_tick(msg.now)
        elif isinstance(msg, ConfigChanged):
            old, self.config = self.config, msg.config
            for key in ("clboss_enabled", "dry_run"):
                if getattr(old, key) != getattr(msg.config, key):
                    self.kick(f"{key} is now {getattr(msg.config, key)}")
        elif isinstance(msg, ClbossSeen):
            self.on_seen(msg)
        elif isinstance(msg, IoResult):
            self.on_io(msg)

    def log(self, level: str, text: str) -> None:
        self.send(self.runtime, LogLine(level, f"clboss hand-off: {text}"))

    def on_tick(self, now: int) -> None:
        self.now = max(self.now, now)
        if self.phase != "idle" and self.now > self.deadline:
            waiting = "clboss-status" if self.phase == "reading" else \
                ", ".join(f"clboss-unmanage {a.peer_id}" for a in self.inflight.values())
            self.inflight.clear()
            self.last_error = f"expired: no answer to {waiting} within {self.deadline_seconds()} s"
            self.log("unusual", self.last_error)
            self.finish(failed=True)
        elif self.phase == "idle" and self.now >= self.next_at:
            self.start_pass(self.trigger if self.dirty else "periodic")

    def on_seen(self, msg: ClbossSeen) -> None:
        if msg.available:
            self.failures = 0          # clboss is back: no backoff
            self.kick(f"clboss seen ({msg.source})")
        elif self.available is not False:
            self.available = False
            self.log("info", f"clboss stopped ({msg.source}); {len(self.owned)} peer(s) keep lnfee unmanaged in its "
                             f"database; nothing is sent until it is back")
            self.report()

    # -- a pass ---------------------------------------------------------------------------------
    def kick(self, trigger: str) -> None:
        self.trigger = trigger
        if self.phase == "idle":
            self.start_pass(trigger)
        else:
            self.dirty = True

    def deadline_seconds(self) -> int:
        return max(DEADLINE_FLOOR_SECONDS, 4 * self.config.rpc_timeout_seconds)

    def io(self, method: str, params: dict) -> int:
        self.next_req += 1
        self.send(self.runtime, IoRequest(self.next_req, method, params, "clboss", self.myAddress))
        return self.next_req

    def start_pass(self, trigger: str) -> None:
        self.dirty = False
        if self.config is None or self.priced is None:
            return
        self.trigger = trigger
        if not (self.config.clboss_enabled or self.owned):
            self.pending, self.next_at = [], self.now + cs.RESYNC_SECONDS   # nothing of ours in clboss
            self.report()
            return
        self.phase, self.failed = "reading", False
        self.last_pass = {"at": self.now, "trigger": trigger, "sent": 0, "took": 0, "handed_back": 0, "failed": 0}
        self.deadline = self.now + self.deadline_seconds()
        self.status_req = self.io("clboss-status", {})

    def on_io(self, msg: IoResult) -> None:
        if self.phase == "reading" and msg.req_id == self.status_req:
            self.on_status(msg)
        elif self.phase == "applying" and msg.req_id in self.inflight:
            self.on_unmanaged(self.inflight.pop(msg.req_id), msg)
            if not self.inflight:
                self.finish(failed=self.failed)
        # anything else answers a pass that expired: the next pass reads clboss again

    def on_status(self, msg: IoResult) -> None:
        try:
            if msg.error is not None:
                raise ValueError(msg.error.get("message", str(msg.error)))
            self.observed = cs.parse_unmanaged(msg.result)
        except ValueError as e:
            self.last_error = f"clboss-status: {e}"
            if self.available is not False:
                missing = (msg.error or {}).get("code") == UNKNOWN_COMMAND
                self.log("info" if missing else "unusual",
                         f"clboss does not answer ({e}); {len(self.owned)} peer(s) keep what it was told; "
                         f"retried when it starts or in {cs.retry_delay(self.failures + 1)} s")
            self.available = False
            self.finish(failed=True)
            return
        if self.available is False:
            self.log("info", "clboss answers again: reconciling")
        self.available = True
        enabled = self.config.clboss_enabled
        actions = cs.plan(self.priced if enabled else frozenset(), self.observed, self.owned,
                          "we no longer set its fees (passive policy or no open channel)" if enabled
                          else "clboss_enabled is off")
        if self.config.dry_run:
            self.pending = [a for a in actions if a.tags is not None]
            self.finish(failed=False)
            return
        self.apply(actions)

    def apply(self, actions: list[cs.Action]) -> None:
        owned_before = dict(self.owned)
        for a in actions:
            if a.kind == cs.FORGET:
                self.owned.pop(a.peer_id, None)
            elif a.kind == cs.TAKE:
                self.owned.setdefault(a.peer_id, self.now)
        if self.owned != owned_before:          # persisted before the calls that add a tag
            self.send(self.runtime, ClbossOwned(dict(self.owned)))
        self.pending = [a for a in actions if a.tags is not None]
        for a in self.pending:
            self.inflight[self.io("clboss-unmanage", {"nodeid": a.peer_id, "tags": a.tags})] = a
        self.last_pass["sent"] = len(self.pending)
        if self.inflight:
            self.phase = "applying"
        else:
            self.finish(failed=False)

    def on_unmanaged(self, a: cs.Action, msg: IoResult) -> None:
        if msg.error is not None:
            self.failed = True
            self.last_pass["failed"] += 1
            self.last_error = f"clboss-unmanage {a.peer_id} tags={a.tags!r}: {msg.error.get('message')}"
            self.log("unusual", f"{self.last_error}; retried in {cs.retry_delay(self.failures + 1)} s")
            return
        self.pending.remove(a)
        self.observed[a.peer_id] = frozenset(t for t in a.tags.split(",") if t) if a.tags else frozenset()
        self.log("debug", f"{a.peer_id} {a.kind}: clboss tags now {a.tags!r} ({a.reason})")
        if a.kind == cs.HAND_BACK:
            self.owned.pop(a.peer_id, None)
            self.handed_back[a.peer_id] = self.now
            self.last_pass["handed_back"] += 1
            self.send(self.runtime, ClbossOwned(dict(self.owned)))
        else:
            self.handed_back.pop(a.peer_id, None)
            self.last_pass["took"] += 1

    def finish(self, failed: bool) -> None:
        self.phase = "idle"
        if failed:
            self.failures += 1
            self.next_at = self.now + cs.retry_delay(self.failures)
        else:
            self.failures, self.last_error = 0, None
            self.next_at = self.now + cs.RESYNC_SECONDS
        p = self.last_pass
        if p.get("took") or p.get("handed_back"):
            self.log("info", f"took lnfee of {p['took']} peer(s), handed {p['handed_back']} back "
                             f"({p['trigger']}); {len(self.owned)} peer(s) now priced by us, not clboss")
        self.report()
        if self.dirty and not failed:
            self.start_pass(self.trigger)

    def report(self) -> None:
        enabled = self.config.clboss_enabled
        self.send(self.runtime, ClbossReport({
            "clboss_enabled": enabled, "clboss_seen_available": self.available, "dry_run": self.config.dry_run,
            "handback_on_stop": self.config.clboss_handback_on_stop,
            "unmanaged_lnfee": sorted(self.owned),
            "operator_lnfee": cs.operator_lnfee(self.priced or frozenset() if enabled else frozenset(),
                                                self.observed, self.owned),
            "handed_back": sorted(self.handed_back),
            "pending": [a.as_dict() for a in self.pending],
            "phase": self.phase, "last_pass": self.last_pass,
            "next_sync_at": self.next_at, "failures": self.failures, "last_error": self.last_error,
        }))
