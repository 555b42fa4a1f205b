"""The runtime: the actor-loop thread, the io pool, the clock, start and stop.

Only the actor-loop thread touches the thespian ActorSystem (simpleSystemBase is not thread-safe) and
the Store. Everything else — pyln handlers, io threads, the clock — only puts messages on `inbox`.
Actors answer through messages to the runtime's own address, collected with `listen(0)`.

Two modes share every line of decision code:
- threaded (inside lightningd): a loop thread, an io ThreadPoolExecutor, a clock thread;
- stepped (simulation and tests): the caller drives `run_until_idle()`; io runs synchronously, so a
  seeded run is deterministic.
"""
from __future__ import annotations

import collections
import datetime
import gc
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from pyln.client import RpcError
from thespian.actors import ActorExitRequest, ActorSystem

from actors.coordinator import CoordinatorActor
from actors.messages import (ActorRestarted, BlockAdded, ChannelDirectory, ChannelRetired, ChannelsChanged,
                             ForwardSettled, HealthChanged, IoRequest, IoResult, LogLine, PeerConnection,
                             PersistFeerate, PersistState, QuarantineState, RecordDecision, RpcReply,
                             RebuildFigures, Start, StoredFigures, Tick, WaitExpired)
from actors.messages import Flush
from actors.messages import (LedgerFigures, LedgerQuery, ReleaseBudget, ReserveBudget, ReserveResult, RpcFailure,
                             SaveJob, SettleJob)
from actors.messages import ClbossOwned, ClbossReport, ClbossSeen
from revops import clboss_sync, finance, sling_jobs
from revops import node as nodeio
from revops import splice_join
from revops.daily import DailyJobs
from revops.ledger import Ledger
from revops.model import ChannelView, Forward
from revops.store import Store
from revops.waits import Waits

Logger = Callable[[str, str], None]   # (level, text)
LISTFORWARDS_PAGE = 1000
FORWARD_BATCH = 1000      # forward_events already queued are stored in one transaction, up to this many
NO_WAIT = datetime.timedelta(0)
# the heap is large and long-lived (every channel actor's state) and a fee cycle allocates in bursts: with
# CPython's default (700, 10, 10) two full collections ran inside each cycle, a quarter of its time at 2,000
# channels (docs/architecture.md); at 5,000 channels a 50,000 first threshold still ran two young
# collections inside the cycle (0.04-0.08 s: the listing's ~100,000 containers were alive and traversed),
# 12 over three fee intervals (0.42 s) where 200,000 runs one (0.12 s), at the same peak RSS
GC_THRESHOLDS = (200_000, 20, 20)


# a forward_event queued behind other messages is taken before them, up to this many in a row while they wait
FORWARD_STREAK = 5000


# --- inbox messages (from other threads to the loop) ----------------------------------------
@attrs.frozen
class Notification:
    topic: str
    params: dict


@attrs.frozen
class RpcCall:
    method: str
    params: dict
    respond: Callable[[Any, Exception | None], None]


@attrs.frozen
class IoDone:
    request: IoRequest
    group: str
    result: Any
    error: dict | None
    seconds: float


@attrs.frozen
class ForwardsPage:
    forwards: tuple[Forward, ...]


@attrs.frozen
class Bootstrapped:
    node_id: str
    channels: tuple[ChannelView, ...]
    plugins: dict[str, bool]
    error: str | None = None
    blockheight: int = 0          # getinfo's, so revenue-status shows it before the first block_added


@attrs.frozen
class Stop:
    reason: str


@attrs.frozen
class Continue:
    """Loop-thread code waiting for io-pool calls (a report reading lightningd): run `then` on the loop."""
    then: Callable[[], None]


@attrs.define
class RpcStat:
    """Per-method io-pool call count, failures and total seconds (exported to Prometheus)."""
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0


def forward_from_event(ev: dict) -> Forward:
    """forward_event / listforwards entry → Forward (msat fields are integers in v25.12)."""
    return Forward(
        in_channel=ev["in_channel"], in_htlc_id=int(ev.get("in_htlc_id", -1)), out_channel=ev.get("out_channel"),
        in_msat=int(ev["in_msat"]), out_msat=_opt_int(ev.get("out_msat")), fee_msat=_opt_int(ev.get("fee_msat")),
        status=ev["status"], received_time=float(ev["received_time"]),
        resolved_time=_opt_float(ev.get("resolved_time")), created_index=ev.get("created_index"),
        updated_index=ev.get("updated_index"), failcode=ev.get("failcode"), failreason=ev.get("failreason"))


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


FINAL_STATUSES = ("settled", "failed", "local_failed")
TOPICS = ("forward_event", "channel_opened", "channel_state_changed", "connect", "disconnect", "block_added",
          "plugin_started", "plugin_stopped")
CLBOSS_OWNED_KEY = "clboss_lnfee_taken"    # meta: {peer: since} — the lnfee tags we added in clboss
# lightningd gives a stopping plugin 30 s; the clboss hand-back gets most of them, the rest stays for the next start
HANDBACK_SECONDS = 20.0
REBALANCE_OUTBOUND = (LedgerQuery, ReserveBudget, ReleaseBudget, SaveJob, SettleJob, RpcFailure)


class Inbox(queue.Queue):
    """The loop's inbox: forward_events before other messages, everything else in arrival order.

    A tick that falls inside a burst of forwards starts a cycle whose replies hold the loop (~1 s at 5,000
    channels); in arrival order the forwards queued behind them waited for it, and the burst's ingestion
    rate halved whenever that happened (issue 15). Stored first, they are also counted before the cycle
    decides. After FORWARD_STREAK forwards taken while another message waits, that one goes next, so a
    stream of forwards never starves ticks, io answers or RPC calls. (queue.Queue's documented hooks.)"""

    def _init(self, maxsize: int) -> None:
        self.queue: collections.deque = collections.deque()
        self.forwards: collections.deque = collections.deque()
        self.streak = 0

    def _qsize(self) -> int:
        return len(self.queue) + len(self.forwards)

    def _put(self, item: Any) -> None:
        forward = isinstance(item, Notification) and item.topic == "forward_event"
        (self.forwards if forward else self.queue).append(item)

    def _get(self) -> Any:
        if self.forwards and (not self.queue or self.streak < FORWARD_STREAK):
            self.streak = self.streak + 1 if self.queue else 0
            return self.forwards.popleft()
        self.streak = 0
        return self.queue.popleft()


class Runtime:
    def __init__(self, *, rpc_factory: Callable[[], nodeio.RpcClient], store: Store, config: Any,
                 clock: Callable[[], int], log: Logger, threaded: bool, io_threads: int = 3,
                 tick_seconds: float = 5.0, rpc_attempts: int = 3, rpc_backoff: float = 0.2):
        self.rpc_factory, self.store, self.config, self.clock, self.log = rpc_factory, store, config, clock, log
        self.ledger = Ledger(store)
        self.threaded, self.io_threads, self.tick_seconds = threaded, io_threads, tick_seconds
        self.rpc_attempts, self.rpc_backoff = rpc_attempts, rpc_backoff
        self.inbox: queue.Queue = Inbox()
        self.asys: ActorSystem | None = None
        self.coordinator: Any = None
        self.started = False
        self.bootstrap_due = False
        self.registry_stops: tuple[str, ...] = ()     # jobs of our registry not yet stopped by a start-up attempt
        self.unsaved: list[Callable[[], None]] = []   # writes that failed (forwards, decisions): retried every tick
        self.stopped = threading.Event()
        self.node_id = ""
        self.started_at = 0                            # node time the actors started (cycle ages count from it)
        self.directory = ChannelDirectory({}, frozenset())   # every channel and peer lightningd lists
        self.health: dict[str, dict] = {g: {"status": "unknown", "calls": 0, "errors": 0, "last_error": None}
                                        for g in ("lightningd", "database") + nodeio.OPTIONAL_PLUGINS}
        self.counters = {"forwards_ingested": 0, "forwards_duplicate": 0, "actor_restarts": 0,
                         "fee_changes_applied": 0, "fee_changes_failed": 0, "fee_changes_held": 0}
        self.pending_rpc: dict[int, Callable[[Any, Exception | None], None]] = {}
        self.rpc_waits = Waits()                       # each pending RPC's deadline (2 x rpc_timeout_seconds)
        self.waits_expired: collections.Counter = collections.Counter()   # by what: ours and the actors'
        self.next_rpc_id = 0
        self.dirty_states: dict[str, tuple[str, dict]] = {}
        self.outstanding_io = 0
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._sync_rpc: nodeio.RpcClient | None = None
        self._threads: list[threading.Thread] = []
        self.loop_lag_seconds = 0.0
        self.now = 0
        self.rpc_stats: dict[str, RpcStat] = {}
        self.exporter: Any = None                      # revops.metrics.Exporter when enabled
        self.page: Any = None                          # revops.page_server.PageServer when enabled
        self.pre_upgrade_checked = False               # revops/splice_join.py, once per process
        self.daily = DailyJobs()
        self._carry: Any = None                        # a message taken from the inbox while batching forwards
        self.clboss_report: dict = {}                  # the clboss hand-off's state (actors/clboss.py)

    # -- public, thread-safe --------------------------------------------------------------------
    def post(self, msg: Any) -> None:
        self.inbox.put(msg)

    def notify(self, topic: str, params: dict) -> None:
        self.post(Notification(topic, params))

    def call_rpc(self, method: str, params: dict, respond: Callable[[Any, Exception | None], None]) -> None:
        self.post(RpcCall(method, params, respond))

    def start(self) -> None:
        """Threaded mode: answer init first, then load everything from here, off pyln's main thread."""
        gc.set_threshold(*GC_THRESHOLDS)
        if self.threaded:
            self._pool = ThreadPoolExecutor(self.io_threads, thread_name_prefix="revops-io")
            loop = threading.Thread(target=self._thread_main, name="revops-actor-loop", daemon=True)
            clock = threading.Thread(target=self._clock_main, name="revops-clock", daemon=True)
            self._threads = [loop, clock]
            loop.start()
            clock.start()
        else:
            self._setup()
            self.run_until_idle()

    def stop(self, reason: str = "stop", timeout: float = HANDBACK_SECONDS + 5) -> None:
        if self.threaded:
            self.post(Stop(reason))
            self._threads[0].join(timeout) if self._threads else None
        else:
            self._teardown(reason)

    # -- loop -----------------------------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            self._setup()
            while not self.stopped.is_set():
                try:
                    msg = self._take(timeout=1.0)
                except queue.Empty:
                    continue
                self._process(msg)
        except Exception as e:  # noqa: BLE001 - the plugin must say why its loop died
            self.log("broken", f"actor loop died: {type(e).__name__}: {e}")
            raise

    def _clock_main(self) -> None:
        while not self.stopped.wait(self.tick_seconds):
            try:
                self.post(Tick(self.clock()))
            except Exception as e:  # noqa: BLE001 - a clock fault skips one tick, never the loop
                self.log("unusual", f"clock read failed: {e}")

    def run_until_idle(self) -> None:
        """Stepped mode: process every queued message, including io answers they cause."""
        while True:
            try:
                msg = self._take(timeout=None)
            except queue.Empty:
                return
            self._process(msg)

    def _take(self, timeout: float | None) -> Any:
        """The next message: one set aside by a forward batch first, else from the inbox (None: don't wait)."""
        if self._carry is not None:
            msg, self._carry = self._carry, None
            return msg
        return self.inbox.get_nowait() if timeout is None else self.inbox.get(timeout=timeout)

    def _queued_forward_events(self) -> list[dict]:
        """forward_events queued right behind the one in hand; notifications of other topics, which nothing
        reads, are passed over; any other message ends the batch and is kept for next."""
        events: list[dict] = []
        while self._carry is None and len(events) < FORWARD_BATCH:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, Notification) and msg.topic == "forward_event":
                events.append(msg.params.get(msg.topic, msg.params))
            elif not isinstance(msg, Notification) or msg.topic in TOPICS:
                self._carry = msg
        return events

    def _setup(self) -> None:
        self.asys = ActorSystem("simpleSystemBase", logDefs=False, transientUnique=True)
        self.coordinator = self.asys.createActor(CoordinatorActor)
        self.registry_stops = tuple(job.scid for job, _ in self.ledger.load_jobs())
        self._submit_job(self._bootstrap_job, self._hydration_starts(), self.registry_stops)

    def _process(self, msg: Any) -> None:
        started = time.monotonic()
        if isinstance(msg, Stop):
            self._teardown(msg.reason)
            return
        handler = {Notification: self._on_notification, RpcCall: self._on_rpc_call, IoDone: self._on_io_done,
                   ForwardsPage: self._on_forwards_page, Bootstrapped: self._on_bootstrapped,
                   Tick: self._on_tick, Continue: lambda c: c.then()}.get(type(msg), self._tell_if_started)
        try:
            handler(msg)
            self._drain()
        except sqlite3.Error as e:      # disk full, read-only remount: degrade, never kill the loop
            self._database_failed(e)
        except Exception as e:  # noqa: BLE001 - one bad message is logged, never the end of the loop
            self.counters["loop_errors"] = self.counters.get("loop_errors", 0) + 1
            self.log("broken", f"actor loop: {type(msg).__name__} failed: {type(e).__name__}: {e}")
        else:
            if self.health["database"]["status"] != "ok":
                self._set_health("database", "ok", None)
        self.loop_lag_seconds = time.monotonic() - started

    def _database_failed(self, e: Exception) -> None:
        """Shown in revenue-status; forwards and fee decisions that could not be stored are retried at every
        tick (other writes are repeated by their owners: actor checkpoints stay dirty until saved)."""
        h = self.health["database"]
        h["errors"] += 1
        if h["status"] != "error":
            self.log("broken", f"database write failed: {e}; running on, retrying at every tick")
        self._set_health("database", "error", str(e))

    def tell(self, msg: Any) -> None:
        self.asys.tell(self.coordinator, msg)

    def _tell_if_started(self, msg: Any) -> None:
        if self.started:
            self.tell(msg)

    def _retry_unsaved(self) -> None:
        retry, self.unsaved = self.unsaved, []
        for i, write in enumerate(retry):
            try:
                write()
            except sqlite3.Error as e:      # still failing (the write re-queued itself): keep the rest
                self.unsaved.extend(retry[i + 1:])
                self._database_failed(e)
                return

    def _refresh_now(self) -> None:
        """Before the first tick (or while start-up fails) `now` comes from the clock: an RPC answered then
        must not stamp a policy or an override with time 0 (found by the random sequences)."""
        try:
            self.now = max(self.now, int(self.clock()))
        except Exception as e:  # noqa: BLE001 - no clock: keep the last time seen
            self.log("unusual", f"clock read failed: {e}")

    def _on_tick(self, tick: Tick) -> None:
        self.now = max(self.now, tick.now)
        if self.unsaved:
            self._retry_unsaved()
        if self.bootstrap_due:
            self.bootstrap_due = False
            self._submit_job(self._bootstrap_job, self._hydration_starts(), self.registry_stops)
        self._tell_if_started(tick)
        if self.started:
            self._drain()                 # the actors' partial answers first, then our own deadlines
        self._expire_rpcs()
        if self.started:
            self.daily.on_tick(self)
            if self.exporter is not None:
                self.exporter.on_tick(self)

    def _drain(self) -> None:
        while (out := self.asys.listen(NO_WAIT)) is not None:
            self._on_outbound(out)
        if self.dirty_states:
            self.store.save_actor_states(self.dirty_states, self.now)
            self.dirty_states.clear()

    def _teardown(self, reason: str) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.config.stop_jobs_on_shutdown and self.started:
            self._stop_our_jobs()
        if self.asys is not None:
            if self.started:
                self.tell(Flush())
            self._drain()
        if self.started:
            self._hand_back_clboss(reason)
            self.asys.tell(self.coordinator, ActorExitRequest())
            self.asys.shutdown()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for server in (self.exporter, self.page):
            if server is not None:
                server.stop()
        self.store.close()
        self.log("info", f"cl-revenue-ops stopped ({reason})")

    def _stop_our_jobs(self) -> None:
        """revenue-ops-stop-jobs-on-shutdown: no job of ours spends while we are not watching it.

        Only jobs in our registry are stopped (never the operator's); they stay registered, their
        reservations stay counted, and the next start reconciles them as usual.
        """
        for job, _ in self.ledger.load_jobs():
            _, err, _ = self.call_external("sling-stop", {"scid": job.scid})
            self.log("info" if err is None else "unusual",
                     f"shutdown: sling-stop {job.scid}: {'stopped' if err is None else err['message']}")

    def clboss_owned(self) -> dict[str, int]:
        return json.loads(self.store.get_meta(CLBOSS_OWNED_KEY) or "{}")

    def _hand_back_clboss(self, reason: str) -> None:
        """revenue-ops-clboss-handback-on-stop: remove the lnfee tags we added (and only those), so clboss sets
        those fees while we are away. What cannot be handed back now stays recorded: the next start reconciles
        it (a crash or a node shutdown, where lightningd takes no new calls, end there too)."""
        owned = self.clboss_owned()
        if not owned:
            return
        if not self.config.clboss_handback_on_stop or self.config.dry_run:
            why = "dry-run" if self.config.dry_run else "clboss-handback-on-stop is off"
            self.log("info", f"clboss hand-off: {len(owned)} peer(s) keep lnfee unmanaged in clboss ({why})")
            return
        status, err, _ = self.call_external("clboss-status", {})
        try:
            if err is not None:
                raise ValueError(err["message"])
            actions = clboss_sync.plan((), clboss_sync.parse_unmanaged(status), owned, f"cl-revenue-ops stopped ({reason})")
        except ValueError as e:
            self.log("unusual", f"clboss hand-off: clboss-status failed ({e}); {len(owned)} peer(s) keep lnfee "
                                f"unmanaged until the next start (revenue-ops-clboss-handback-on-stop, docs/clboss.md)")
            return
        ends, failed = time.monotonic() + HANDBACK_SECONDS, 0
        for a in actions:
            if a.tags is not None:
                if time.monotonic() > ends:
                    break
                _, err, _ = self.call_external("clboss-unmanage", {"nodeid": a.peer_id, "tags": a.tags})
                if err is not None:
                    failed += 1
                    continue
            owned.pop(a.peer_id)
        self._save_clboss_owned(owned)
        self.log("info" if not owned else "unusual",
                 f"clboss hand-off: {len(actions) - len(owned)} peer(s) handed back to clboss on stop"
                 + (f"; {len(owned)} not ({failed} failed, the rest out of time): the next start reconciles them"
                    if owned else ""))

    # -- inbound --------------------------------------------------------------------------------
    def _on_notification(self, n: Notification) -> None:
        payload = n.params.get(n.topic, n.params)
        if n.topic == "forward_event":
            self._ingest([forward_from_event(e) for e in [payload, *self._queued_forward_events()]], live=True)
        elif not self.started:
            return
        elif n.topic in ("channel_opened", "channel_state_changed"):
            self.tell(ChannelsChanged(self.now, n.topic))
        elif n.topic in ("connect", "disconnect"):
            self.tell(PeerConnection(payload.get("id", ""), n.topic == "connect", self.now))
        elif n.topic == "block_added":
            self.tell(BlockAdded(int(payload.get("height", 0)), self.now))
        elif n.topic in ("plugin_started", "plugin_stopped") and nodeio.is_clboss(payload):
            self.observe_clboss(n.topic == "plugin_started", f"{n.topic} notification")

    def observe_clboss(self, available: bool, source: str) -> None:
        """clboss started or stopped (a notification), or a probe found it answering or not: update its health
        and let the hand-off reconcile (it reads clboss-status itself)."""
        before = self.health["clboss"]["status"]
        self._set_health("clboss", "ok" if available else "missing", None if available else source)
        if self.health["clboss"]["status"] != before:
            self.tell(HealthChanged(self.health))
        self.tell(ClbossSeen(available, source))

    def _ingest(self, forwards: list[Forward], live: bool) -> None:
        """Store final forwards in one transaction (one commit per burst, not per event); only after the
        commit are the new ones counted and told to the actors, so a failed write tells nothing and is
        retried whole (exactly once either way)."""
        final = [self.store.canonical_forward(f) for f in forwards if f.status in FINAL_STATUSES]
        if not final:
            return
        # until hydration is complete, a live forward must not move the index past unread ones
        bump = self.started or not live
        try:
            with self.store.tx():
                new = [f for f in final if self.store.insert_forward(f, bump_index=bump)]
        except sqlite3.Error:
            self.unsaved.append(lambda: self._ingest(final, live))
            raise
        self.counters["forwards_duplicate"] += len(final) - len(new)
        self.counters["forwards_ingested"] += len(new)
        for f in new:
            if f.status == "settled" and self.started:
                self.tell(ForwardSettled(f))

    def _on_forwards_page(self, page: ForwardsPage) -> None:
        self._ingest(list(page.forwards), live=False)

    def _on_rpc_call(self, call: RpcCall) -> None:
        from revops import rpc  # the RPC layer imports the runtime's types; import late to avoid a cycle
        if not self.started:
            self._refresh_now()
        try:
            rpc.dispatch(self, call)
        except Exception as e:  # noqa: BLE001 - every failure becomes a JSON-RPC error, never a dead loop
            call.respond(None, e)

    def expect_reply(self, respond: Callable[[Any, Exception | None], None], what: str = "RPC reply") -> int:
        """Register an answer the actors will give; past 2 x rpc_timeout_seconds it is answered with an error."""
        self.next_rpc_id += 1
        self.pending_rpc[self.next_rpc_id] = respond
        self.rpc_waits.start(self.next_rpc_id, what, ("actors",), self.now, 2 * self.config.rpc_timeout_seconds)
        return self.next_rpc_id

    def _answer(self, req_id: int) -> Callable[[Any, Exception | None], None] | None:
        self.rpc_waits.end(req_id)
        return self.pending_rpc.pop(req_id, None)

    def _expire_rpcs(self) -> None:
        from pyln.client import RpcException
        for wait in self.rpc_waits.expire(self.now):
            respond = self.pending_rpc.pop(wait.key, None)
            text = (f"{wait.what}: the actors did not answer within {wait.deadline - wait.started} s "
                    "(2 x rpc_timeout_seconds); an action it asked for may still complete: check revenue-status")
            self._wait_expired(WaitExpired(wait.what, ("actors",), self.now - wait.started, text))
            if respond is not None:
                respond(None, RpcException(text, -32000))

    def _wait_expired(self, out: WaitExpired) -> None:
        self.waits_expired[out.what] += 1
        self.log("unusual", f"expired: {out.text}")

    # -- io -------------------------------------------------------------------------------------
    def _rpc(self) -> nodeio.RpcClient:
        if not self.threaded:
            if self._sync_rpc is None:
                self._sync_rpc = self.rpc_factory()
            return self._sync_rpc
        client = getattr(self._local, "rpc", None)
        if client is None:
            client = self._local.rpc = self.rpc_factory()
        return client

    def _submit_job(self, fn: Callable[..., None], *args: Any) -> None:
        if self._pool is not None:
            self._pool.submit(self._guard_job, fn, *args)
        else:
            self._guard_job(fn, *args)

    def _guard_job(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - an io job must never die silently
            self.log("broken", f"io job {fn.__name__} failed: {type(e).__name__}: {e}")

    def call_external(self, method: str, params: Any) -> tuple[Any, dict | None, float]:
        """Run one external call with timeout and bounded retry; (result, error, seconds).

        The dry-run guard: while `dry_run` is on, nothing that changes state leaves the plugin; the call is
        answered with a definite error instead (counted and logged), so callers take their "not done" path."""
        if self.config.dry_run and nodeio.changes_state(method, params):
            self.counters["dry_run_refused"] = self.counters.get("dry_run_refused", 0) + 1
            self.log("info", f"dry-run: {method} not sent")
            return None, {"code": nodeio.NOT_SENT, "message": f"dry-run: {method} not sent"}, 0.0
        try:
            attempts = 1 if method in nodeio.NOT_RETRIED else self.rpc_attempts
            result, seconds = nodeio.call_with_retry(self._rpc(), method, params, attempts,
                                                     self.rpc_backoff if self.threaded else 0)
            return result, None, seconds
        except RpcError as e:
            err = e.error if isinstance(e.error, dict) else {"message": str(e.error)}
            return None, {"code": err.get("code"), "message": err.get("message", str(err))}, 0.0
        except Exception as e:  # noqa: BLE001 - transport faults and malformed replies alike: no definite answer
            return None, {"code": None, "message": f"{type(e).__name__}: {e}"}, 0.0

    def run_io(self, calls: list[tuple[str, Any]], then: Callable[[list[tuple[Any, dict | None]]], None]) -> None:
        """Run lightningd calls in the io pool, then `then([(result, error), ...])` on the loop thread."""
        def job() -> None:
            answers = [self.call_external(method, params)[:2] for method, params in calls]
            self.post(Continue(lambda: then(answers)))
        self._submit_job(job)

    def run_job(self, fn: Callable[[], Any], then: Callable[[Any, Exception | None], None]) -> None:
        """Run a long computation `fn` in the io pool (never on the loop), then `then(result, error)` on the loop."""
        def job() -> None:
            try:
                result, error = fn(), None
            except Exception as e:  # noqa: BLE001 - handed to `then`, which answers the caller
                result, error = None, e
            self.post(Continue(lambda: then(result, error)))
        self._submit_job(job)

    def _io_job(self, req: IoRequest) -> None:
        """Every IoRequest gets its IoResult, whatever happens (an actor waiting on it must never hang)."""
        result, error, seconds = None, {"code": None, "message": "io job ended without an answer"}, 0.0
        try:
            result, error, seconds = self.call_external(req.method, req.params)
        except BaseException as e:  # noqa: BLE001 - answered below, then re-raised if it must stop the thread
            error = {"code": None, "message": f"{type(e).__name__}: {e}"}
            if not isinstance(e, Exception):
                raise
        finally:
            self.post(IoDone(req, nodeio.plugin_group(req.method), result, error, seconds))

    def _hydration_starts(self) -> dict[str, int]:
        return {kind: self.store.forwards_index(kind) + 1 for kind in ("updated", "created")}

    def _bootstrap_job(self, starts: dict[str, int], stops: tuple[str, ...]) -> None:
        """Load what the actors need, off pyln's thread: node id, channels, plugins, missed forwards. First,
        the jobs of our registry are stopped: a job is never resumed at start-up, and a start-up that cannot
        complete (lightningd not answering) must not leave them to sling unwatched (sequence seed 3004)."""
        if stops:
            self._stop_registry_jobs(stops)
        info, err, _ = self.call_external("getinfo", {})
        if err is not None:
            self.post(Bootstrapped("", (), {}, error=f"getinfo failed: {err['message']}"))
            return
        plist, perr, _ = self.call_external("plugin", {"subcommand": "list"})
        if perr is not None:     # not "no plugins": sling, clboss and bookkeeper would stay missing
            self.post(Bootstrapped("", (), {}, error=f"plugin list failed: {perr['message']}"))
            return
        plugins = nodeio.installed_plugins(plist)
        # settled/failed forwards carry an updated_index; local_failed ones only a created_index
        herr = (self._hydrate("updated", starts["updated"], FINAL_STATUSES)
                or self._hydrate("created", starts["created"], ("local_failed",)))
        if herr is not None:     # the forwards made while we were away must not be skipped
            self.post(Bootstrapped("", (), {}, error=herr))
            return
        chans, cerr, _ = self.call_external("listpeerchannels", {})
        views = tuple(ChannelView(**nodeio.parse_channel(c)) for c in (chans or {}).get("channels", []))
        self.post(Bootstrapped(info["id"], views, plugins,
                               error=None if cerr is None else f"listpeerchannels failed: {cerr['message']}",
                               blockheight=int(info.get("blockheight", 0))))

    def _stop_registry_jobs(self, scids: tuple[str, ...]) -> None:
        """`sling-stop` for each job of our registry (it needs only the database and sling); those sling did
        not confirm are asked again at the next start-up attempt. The executor books them once started."""
        done = []
        for scid in scids:
            _, err, _ = self.call_external("sling-stop", {"scid": scid})
            stopped = err is None or sling_jobs.answer_event(err) is sling_jobs.Event.NOT_FOUND
            done += [scid] if stopped else []
            self.log("info" if stopped else "unusual",
                     f"start-up: sling-stop {scid} (jobs are never resumed): "
                     f"{'stopped' if err is None else err['message']}"
                     f"{'' if stopped else '; asked again at the next start-up attempt'}")
        self.post(Continue(lambda: self._registry_jobs_stopped(done)))

    def _registry_jobs_stopped(self, scids: list[str]) -> None:
        self.registry_stops = tuple(s for s in self.registry_stops if s not in scids)

    def _hydrate(self, index: str, start: int, statuses: tuple[str, ...]) -> str | None:
        """Page through listforwards from the last index seen, posting final forwards to the loop;
        the error when a page could not be read (the start-up is retried from the last index stored)."""
        while True:
            page, err, _ = self.call_external("listforwards", {"index": index, "start": start,
                                                               "limit": LISTFORWARDS_PAGE})
            if err is not None:
                return f"listforwards hydration ({index}) failed: {err['message']}"
            rows = page.get("forwards", [])
            self.post(ForwardsPage(tuple(forward_from_event(r) for r in rows if r.get("status") in statuses)))
            if len(rows) < LISTFORWARDS_PAGE:
                return None
            start = max(int(r.get(f"{index}_index", start)) for r in rows) + 1

    def _on_bootstrapped(self, b: Bootstrapped) -> None:
        if b.error is None and not self.pre_upgrade_checked:
            self.pre_upgrade_checked = True    # splices made before the upgrade: joined before the actors load
            if splice_join.ask_bookkeeper(self, b, lambda: self._on_bootstrapped(b)):
                return
        if b.error is not None:
            self.log("unusual", f"start-up load failed, retrying at the next tick: {b.error}")
            self._set_health("lightningd", "error", b.error)
            self.bootstrap_due = True     # not at once: a node that is down would be hammered (and, stepped, hang)
            return
        self.node_id = b.node_id
        self.registry_stops = ()          # from here on the sling executor stops and books them
        self.directory = ChannelDirectory({c.scid: c.peer_id for c in b.channels if c.scid},
                                          frozenset(c.peer_id for c in b.channels))
        self._set_health("lightningd", "ok", None)
        for dep in nodeio.OPTIONAL_PLUGINS:
            self._set_health(dep, "ok" if b.plugins.get(dep) else "missing", None)
        now = self.now = max(self.now, self.clock())
        self.started_at = now
        self._follow_channels([(c.scid, c.channel_id, c.peer_id) for c in b.channels])   # splices while down
        states = self.store.load_actor_states()
        for scid, state in states.items():
            try:
                window_start = float(state.get("hill", {}).get("window_start", now))
            except (AttributeError, TypeError, ValueError):
                continue       # it will not structure: the actor quarantines it and starts fresh
            state["window_fees_msat"], state["window_forwards"] = self.store.channel_earnings(scid, window_start)
        routed = finance.routed_out_channels(self.store)
        from revops import experiment_rpc, rpc  # the RPC layer imports the runtime's types; import late
        self.tell(Start(now=now, config=self.config, node_id=b.node_id, channels=b.channels, actor_states=states,
                         buckets=self.store.daily_buckets(None, now, self.config.flow_window_days),
                         routed_out=routed, policies=rpc.load_policies(self.store), health=self.health,
                         feerate_samples=tuple((r[0], r[1]) for r in self.store.db.execute(
                             "SELECT at, sat_per_vb FROM feerate_samples ORDER BY at")),
                         sling_jobs=tuple(self.ledger.load_jobs()), clboss_owned=self.clboss_owned(),
                         experiment=experiment_rpc.load(self.store)))
        if b.blockheight:
            self.tell(BlockAdded(b.blockheight, now))
        self.started = True
        self.log("info", f"cl-revenue-ops started: {sum(v.is_active for v in b.channels)} channel actors, "
                         f"plugins {', '.join(d for d in nodeio.OPTIONAL_PLUGINS if b.plugins.get(d)) or 'none'}")

    def _on_io_done(self, done: IoDone) -> None:
        self.outstanding_io -= 1
        stat = self.rpc_stats.setdefault(done.request.method, RpcStat())
        stat.calls += 1
        stat.errors += done.error is not None
        stat.seconds += done.seconds
        h = self.health[done.group]
        status_before = h["status"]
        h["calls"] += 1
        if done.error is None:
            h.update(status="ok", latency_ms=round(done.seconds * 1000, 3))
        else:
            h["errors"] += 1
            h["last_error"] = done.error.get("message")
            if done.group != "lightningd" and done.error.get("code") == -32601:
                h["status"] = "missing"
        if h["status"] != status_before:
            self.tell(HealthChanged(self.health))
        req = done.request
        self.asys.tell(req.reply_to, IoResult(req.req_id, req.tag, done.result, done.error, req.context))

    def _set_health(self, group: str, status: str, error: str | None) -> None:
        self.health[group].update(status=status, last_error=error)

    # -- outbound -------------------------------------------------------------------------------
    def _on_outbound(self, out: Any) -> None:
        if isinstance(out, IoRequest):
            self.outstanding_io += 1
            self._submit_job(self._io_job, out)
        elif isinstance(out, PersistState):
            self.dirty_states[out.scid] = (out.peer_id, out.state)
        elif isinstance(out, RecordDecision):
            self._on_decision(out)
        elif isinstance(out, PersistFeerate):
            self.store.add_feerate_sample(out.at, out.sat_per_vb)
        elif isinstance(out, ChannelRetired):
            self.store.mark_closed(out.scid, out.at)
            self.log("info", f"channel {out.scid} left CHANNELD_NORMAL (and is not splicing): its actor is retired")
        elif isinstance(out, RpcReply):
            respond = self._answer(out.req_id)
            if respond is not None:
                respond(out.result, None if out.error is None else ValueError(out.error))
        elif isinstance(out, ActorRestarted):
            self.counters["actor_restarts"] += 1
            self.log("unusual", f"actor {out.scid} crashed and restarted from its checkpoint "
                                f"(restart #{out.restarts}): {out.error}")
        elif isinstance(out, LogLine):
            self.log(out.level, out.text)
        elif isinstance(out, RebuildFigures):
            fees_msat, forwards = self.store.channel_earnings(out.scid, out.window_start)
            buckets = self.store.daily_buckets([out.scid], self.now, self.config.flow_window_days).get(out.scid, [])
            self.asys.tell(out.reply_to, StoredFigures(out.window_start, fees_msat, forwards, buckets, self.now,
                                                       self.store.broadcast_times(out.scid, self.now - 86400)))
        elif isinstance(out, ChannelDirectory):
            self.directory = out
            self._follow_channels([(s, cid, out.channels[s]) for s, cid in out.channel_ids.items()])
        elif isinstance(out, WaitExpired):
            self._wait_expired(out)
        elif isinstance(out, QuarantineState):
            self.store.quarantine_state(out.scid, out.peer_id, out.state, out.error, out.now)
            self.counters["states_quarantined"] = self.counters.get("states_quarantined", 0) + 1
            self.log("broken", f"channel {out.scid}: stored state unreadable ({out.error}); kept aside in the "
                               "quarantined_states table, the channel starts fresh")
        elif isinstance(out, REBALANCE_OUTBOUND):
            self._on_rebalance_outbound(out)
        elif isinstance(out, ClbossOwned):
            self._save_clboss_owned(out.owned)
        elif isinstance(out, ClbossReport):
            self.clboss_report = out.report

    def _follow_channels(self, listed: list[tuple[str, str, str]]) -> None:
        """Record each channel's identity; a splice re-keys its stored history (and any checkpoint not yet
        written) to the new short channel id before its actor writes under it."""
        try:
            renames = self.store.follow_channels(listed, self.now)
        except sqlite3.Error:
            self.unsaved.append(lambda: self._follow_channels(listed))
            raise
        for old, new in renames.items():
            if old in self.dirty_states:   # the actor's own checkpoint under the new scid is newer
                self.dirty_states.setdefault(new, self.dirty_states.pop(old))
            self.counters["channels_spliced"] = self.counters.get("channels_spliced", 0) + 1
            self.log("info", f"channel {old} is now {new} (spliced; same channel_id): its history, policies and "
                             "actor follow it")

    def _on_rebalance_outbound(self, out: Any) -> None:
        """Ledger and job-registry writes asked for by the coordinator and the sling executor (fail closed)."""
        from pyln.client import RpcException
        if isinstance(out, LedgerQuery):
            try:
                earned, node_ppm = self.ledger.earnings_30d(out.now)
                reply = LedgerFigures(out.req_id, self.ledger.budget_state(out.now, self.config),
                                      earned, self.ledger.settled_spend_30d(out.now),
                                      self.ledger.history_ppm(out.now), self.ledger.last_success(),
                                      drained=self.ledger.drained_for(out.now, self.config.pingpong_hours),
                                      node_ppm=node_ppm)
            except Exception as e:  # noqa: BLE001 - no figures, no rebalance
                reply = LedgerFigures(out.req_id, None, {}, {}, {}, {}, error=f"{type(e).__name__}: {e}")
            self.asys.tell(out.reply_to, reply)
        elif isinstance(out, ReserveBudget):
            try:
                ok, reason = self.ledger.reserve(out.res_id, out.scid, out.amount_msat, out.now, self.config,
                                                 out.cap_msat, out.hive_sat)
            except Exception as e:  # noqa: BLE001 - fail closed
                ok, reason = False, f"reservation failed: {type(e).__name__}: {e}"
            self.asys.tell(out.reply_to, ReserveResult(out.req_id, out.res_id, ok, reason))
        elif isinstance(out, ReleaseBudget):
            self.ledger.release(out.res_id, out.now)
        elif isinstance(out, SaveJob):
            try:
                if out.delete:
                    self.ledger.delete_job(out.job.scid)
                else:
                    self.ledger.save_job(out.job, out.extra, out.now)
            except sqlite3.Error as e:   # the row is not there: what it guards is not sent (fail closed)
                if out.then is not None:
                    req = out.then
                    self.asys.tell(req.reply_to, IoResult(req.req_id, req.tag, None, {
                        "code": nodeio.NOT_SENT, "message": f"registry write failed ({e}): {req.method} not sent"},
                        req.context))
                raise
            if out.then is not None:
                self._on_outbound(out.then)
        elif isinstance(out, SettleJob):
            j = out.job
            with self.store.tx():
                s = self.ledger.settle(out.res_id, j.spent_msat, out.now, j.moved_msat)
                self.ledger.record_rebalance(out.res_id, self.store.canonical(j.scid),
                                             [self.store.canonical(s) for s in out.extra.get("sources", [])], j.amount_sat,
                                             j.reserved_msat, j.spent_msat, j.moved_msat, out.status,
                                             out.extra.get("kind", "auto"), out.reason, int(j.started_at), out.now)
            self.counters["rebalances_settled"] = self.counters.get("rebalances_settled", 0) + 1
            self.log("info" if s is None or not s.overspend_msat else "unusual",
                     f"rebalance {j.scid} {out.status}: moved {j.moved_msat} msat, spent {j.spent_msat} msat "
                     f"of {j.reserved_msat} reserved; {out.reason}")
        elif isinstance(out, RpcFailure):
            respond = self._answer(out.req_id)
            if respond is not None:
                respond(None, RpcException(out.message, out.code))

    def _save_clboss_owned(self, owned: dict[str, int]) -> None:
        try:
            self.store.set_meta(CLBOSS_OWNED_KEY, json.dumps(owned, sort_keys=True))
        except sqlite3.Error:
            self.unsaved.append(lambda: self._save_clboss_owned(owned))
            raise

    def _on_decision(self, out: RecordDecision) -> None:
        d = out.decision
        try:
            self.store.record_decision(d, out.outcome)
        except sqlite3.Error:
            self.unsaved.append(lambda: self._on_decision(out))
            raise
        self.counters[{"applied": "fee_changes_applied", "failed": "fee_changes_failed"}.get(
            out.outcome, "fee_changes_held")] += 1
        self.log("info" if out.outcome != "failed" else "unusual",
                 f"fee {d.scid} {d.old_fee_ppm}→{d.new_fee_ppm} ppm [{out.outcome}] {d.reason}")
