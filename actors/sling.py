"""SlingExecutorActor: the sling jobs this plugin creates, driven by the transition table of revops/sling_jobs.py.

Start: baseline `sling-stats {scid, json}` → registry row (phase provisional, with the baseline) →
`sling-once` (sent only once the row is committed; one chunk, so sling's spend is bounded by the
reservation whatever happens). Watch: every poll `sling-stats` → rebalance.job_step. End: `sling-stop`, final
`sling-stats`, book the real spend. A lost `sling-once` answer: the `sling-stats {json}` summary says whether
sling runs it (adopted) or not (stopped to be sure, then booked). Start-up: every row of OUR registry is
stopped and booked, never resumed (sling_jobs.startup_event); the operator's jobs are never touched.

The actor is a thin shell: every phase change is `sling_jobs.transition`; this module only turns answers
into events and phases into calls. All I/O goes through IoRequests; time only from messages.
"""
from __future__ import annotations

from typing import Any

import attrs

from actors.messages import (ExecutorInit, HealthChanged, IoRequest, IoResult, JobEnded, JobsChanged, JobSpliced, LogLine,
                             PollJobs, ReleaseBudget, RpcFailure, RpcReply, SaveJob, SettleJob, StartJob)
from actors.supervision import SupervisedActor
from revops import rebalance as rb
from revops import sling_jobs as sj
from revops.sling_jobs import Event, Phase

BASELINE = "baseline"        # the baseline sling-stats read before a row exists (not a phase of the table)
STATS = {"json": True}


class SlingExecutorActor(SupervisedActor):
    name = "sling-executor"

    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.coordinator: Any = None
        self.now = 0
        self.sling_ok = False
        self.jobs: dict[str, dict] = {}          # scid → {"job", "extra", "phase", "rpc", "req", "waiting", ...}
        self.next_req = 0
        self.finished: list[dict] = []           # last outcomes, for revenue-rebalance-debug

    def restore_checkpoint(self) -> None:
        # jobs are persisted by the runtime at every phase change; in-flight io answers still find their job
        pass

    # -- helpers --------------------------------------------------------------------------------
    def request(self, method: str, params: Any, tag: str, scid: str) -> IoRequest:
        self.next_req += 1
        if scid in self.jobs:
            self.jobs[scid].update(req=self.next_req, waiting=True, asked_at=self.now)
        return IoRequest(self.next_req, method, params, tag, self.myAddress, scid)

    def log(self, level: str, text: str) -> None:
        self.send(self.runtime, LogLine(level, f"sling: {text}"))

    def active(self) -> dict[str, dict]:
        out = {}
        for scid, e in self.jobs.items():
            job = e["job"]
            phase = e["phase"].value if e["phase"] is not None else BASELINE
            out[scid] = {"phase": phase, "kind": e["extra"].get("kind"), "res_id": e["extra"].get("res_id"),
                         "amount_sat": e["extra"].get("amount_sat", job.amount_sat if job else 0),
                         "reserved_msat": e["extra"].get("reserved_msat"),
                         "spent_msat": job.spent_msat if job else 0, "moved_msat": job.moved_msat if job else 0,
                         "started_at": job.started_at if job else None,
                         "spliced_to": e["extra"].get("spliced_to")}
        return out

    def changed(self) -> None:
        if self.coordinator is not None:
            self.send(self.coordinator, JobsChanged(self.active()))

    def fail_rpc(self, rpc_req_id: int | None, why: str) -> None:
        if rpc_req_id is not None:
            self.send(self.runtime, RpcFailure(rpc_req_id, f"rebalance not started: {why}"))

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ExecutorInit):
            self.on_init(msg, sender)
        elif isinstance(msg, StartJob):
            self.on_start_job(msg)
        elif isinstance(msg, PollJobs):
            self.now, self.config = max(self.now, msg.now), msg.config
            self.on_poll_jobs()
        elif isinstance(msg, IoResult):
            self.on_io(msg)
        elif isinstance(msg, HealthChanged):
            self.sling_ok = msg.health.get("sling", {}).get("status") == "ok"
        elif isinstance(msg, JobSpliced):
            self.on_spliced(msg)

    def on_poll_jobs(self) -> None:
        """A poll: read running jobs' stats, ask failed steps again, give up waiting for lost answers."""
        overdue = 2 * self.config.rebalance_interval
        for scid, e in list(self.jobs.items()):
            if e["phase"] is None:
                if self.now - e["asked_at"] > overdue:
                    self.abort_start(scid, "no answer to the baseline sling-stats")
            elif e["phase"] is Phase.RUNNING:
                self.fire(scid, Event.POLL)
            elif not e["waiting"]:
                self.fire(scid, Event.RETRY)
            elif self.now - e["asked_at"] > overdue:      # the answer never came (a crash restored us mid-step)
                if e["phase"] is Phase.POLLING:
                    self.step(scid, e, None)
                else:
                    self.fire(scid, Event.LOST, f"no answer to {sj.ASKS[e['phase']]}")

    # -- start-up: every job of our registry is stopped and booked, never resumed ------------------
    def on_init(self, msg: ExecutorInit, sender: Any) -> None:
        self.config, self.runtime, self.coordinator, self.now = msg.config, msg.runtime, sender, msg.now
        self.sling_ok = msg.sling_ok
        for job, extra in msg.jobs:
            phase, event = sj.startup_event(extra)
            overdue = self.now - job.started_at >= self.config.sling_job_timeout_seconds
            if overdue and job.status is rb.JobStatus.RUNNING:
                job = attrs.evolve(job, status=rb.JobStatus.TIMED_OUT)
            self.jobs[job.scid] = {"job": job, "extra": dict(extra), "phase": phase, "rpc": None, "req": 0,
                                   "waiting": False, "asked_at": self.now}
            detail = f"started {int(self.now - job.started_at)} s ago{', overdue' if overdue else ''}"
            self.log("info", f"start-up {job.scid} ({phase.value}): {event.value} ({detail})")
            self.fire(job.scid, event, detail)
        self.changed()

    # -- start a job ----------------------------------------------------------------------------
    def on_start_job(self, msg: StartJob) -> None:
        self.now = max(self.now, msg.now)
        c = msg.candidate
        extra = {"res_id": msg.res_id, "kind": msg.kind, "sources": list(c.source_scids),
                 "amount_sat": c.amount_sat, "reserved_msat": c.max_fee_msat, "maxppm": c.maxppm,
                 "local_msat": msg.local_msat, "created_at": msg.now, "once_msat": c.amount_sat * rb.MSAT_PER_SAT}
        if not self.sling_ok or c.dest_scid in self.jobs:
            why = "sling is not available" if not self.sling_ok else "a job of ours already runs on this channel"
            self.send(self.runtime, ReleaseBudget(msg.res_id, msg.now))
            self.fail_rpc(msg.rpc_req_id, why)
            return
        self.jobs[c.dest_scid] = {"job": None, "extra": extra, "phase": None, "rpc": msg.rpc_req_id,
                                  "candidate": c, "req": 0, "waiting": True, "asked_at": self.now}
        self.changed()
        # sling's counters are cumulative (30-day window, earlier jobs): the baseline is read before the row
        # is written, and the row holds it before sling-once is sent (a once-job starts at once)
        self.send(self.runtime, self.request("sling-stats", {"scid": c.dest_scid, **STATS}, BASELINE, c.dest_scid))

    def on_baseline(self, scid: str, e: dict, res: IoResult) -> None:
        try:
            if res.error is not None:
                raise ValueError(f"sling-stats failed: {res.error.get('message')}")
            baseline = rb.parse_sling_stats(res.result)
        except ValueError as ex:
            self.abort_start(scid, f"no baseline, its spend could not be accounted: {ex}")
            return
        # the row (phase provisional, with the baseline) is committed before sling-once is sent
        e["job"] = rb.new_job(e["extra"]["res_id"], e["candidate"], baseline, e["extra"]["local_msat"], self.now)
        self.enter(scid, e, Phase.PROVISIONAL, "registry row written, sending sling-once")

    def abort_start(self, scid: str, why: str) -> None:
        e = self.jobs.pop(scid)
        self.send(self.runtime, ReleaseBudget(e["extra"]["res_id"], self.now))
        self.fail_rpc(e["rpc"], why)
        self.log("unusual", f"job on {scid} not started: {why}")
        self.send(self.coordinator, JobEnded(scid, False, self.now))
        self.changed()

    # -- the table ------------------------------------------------------------------------------
    def fire(self, scid: str, event: Event, detail: str = "") -> None:
        e = self.jobs[scid]
        try:
            phase, why = sj.transition(e["phase"], event)
        except sj.IllegalTransition as ex:
            self.log("broken", f"{scid}: {ex}: left as it is")
            return
        why = f"{why} ({detail})" if detail else why
        if phase is e["phase"] and event in (Event.ERROR, Event.LOST, Event.NOT_FOUND):
            e["waiting"] = False       # asked again at the next poll (RETRY)
            self.log("unusual", f"{scid}: {why}")
            return
        if phase in (Phase.STOPPING, Phase.DELETING) and e["job"].status is rb.JobStatus.RUNNING:
            e["job"] = attrs.evolve(e["job"], status=rb.JobStatus.FAILED)
        self.enter(scid, e, phase, why)

    def enter(self, scid: str, e: dict, phase: Phase, why: str) -> None:
        """Take the phase: save the row, then ask sling what the phase asks (only once the row is saved)."""
        previous, e["phase"], e["reason"] = e["phase"], phase, why
        if e["rpc"] is not None and phase not in sj.STARTING:
            self.fail_rpc(e["rpc"], why)       # a revenue-rebalance caller hears at once that the start failed
            e["rpc"] = None
        if phase in sj.TERMINAL:
            self.end(scid, e, phase, why)
            return
        if phase is Phase.RUNNING:
            if previous in (Phase.PROVISIONAL, Phase.ADOPTING):
                self.started(scid, e)
            e["waiting"] = False
            if previous is not Phase.POLLING:
                self.log("info", f"{scid}: {why}")
            self.send(self.runtime, SaveJob(e["job"], self.extra(e), self.now))
            self.changed()
            return
        req = self.ask(scid, e, phase)
        if previous is None or sj.at_rest(phase) is not sj.at_rest(previous):
            self.log("info", f"{scid}: {why}")
            self.send(self.runtime, SaveJob(e["job"], self.extra(e), self.now, then=req))
        else:
            self.send(self.runtime, req)
        self.changed()

    def extra(self, e: dict) -> dict:
        return {**e["extra"], "phase": sj.at_rest(e["phase"]).value}

    def ask(self, scid: str, e: dict, phase: Phase) -> IoRequest:
        method = sj.ASKS[phase]
        if phase is Phase.PROVISIONAL:
            params: Any = rb.sling_once_params(e["candidate"], self.config)
        elif phase is Phase.ADOPTING:
            params = dict(STATS)                       # the summary: one row per job and once-job
        elif method == "sling-stats":
            params = {"scid": scid, **STATS}
        elif method == "sling-deletejob":
            params = {"job": scid, "delete_stats": False}
        else:
            params = {"scid": scid}
        return self.request(method, params, phase.value, scid)

    def started(self, scid: str, e: dict) -> None:
        if e["rpc"] is not None:
            c = e["candidate"]
            self.send(self.runtime, RpcReply(e["rpc"], {
                "status": "initiated", "to_channel": scid, "from_channels": list(c.source_scids),
                "amount_sats": c.amount_sat, "maxppm": c.maxppm, "reserved_msat": c.max_fee_msat,
                "reservation_id": e["extra"]["res_id"], "sling": {"once": "started", "onceamount_sats": c.amount_sat}}))
            e["rpc"] = None

    def end(self, scid: str, e: dict, phase: Phase, why: str) -> None:
        """A terminal phase: release (never started) or book (may have spent), forget the row, tell the
        coordinator."""
        self.jobs.pop(scid, None)
        job = e["job"]
        if phase is Phase.ABORTED:
            self.send(self.runtime, ReleaseBudget(e["extra"]["res_id"], self.now))
            self.log("unusual", f"job on {scid} not started: {why}")
            success = False
        else:
            job = rb.final_status(job)
            reason = e.get("stop_reason", why)
            self.send(self.runtime, SettleJob(e["extra"]["res_id"], job, e["extra"], job.status.value, reason,
                                              self.now))
            success = job.moved_msat > 0
            self.finished = (self.finished + [{"scid": scid, "status": job.status.value, "spent_msat": job.spent_msat,
                                               "moved_msat": job.moved_msat, "reason": reason,
                                               "at": self.now}])[-20:]
        self.send(self.runtime, SaveJob(job, e["extra"], self.now, delete=True))
        self.send(self.coordinator, JobEnded(scid, success, self.now))
        self.changed()

    # -- io answers -----------------------------------------------------------------------------
    def on_io(self, res: IoResult) -> None:
        scid = res.context
        e = self.jobs.get(scid)
        if e is None or res.req_id != e["req"]:
            return      # an answer to a question no longer asked (asked again, or the job ended)
        e["waiting"] = False
        err = res.error
        if res.tag == BASELINE:
            self.on_baseline(scid, e, res)
        elif res.tag == Phase.ADOPTING.value and err is None:
            self.fire(scid, sj.lookup_event(scid, res.result))
        elif res.tag == Phase.POLLING.value:
            self.on_poll(scid, e, res)
        elif res.tag == Phase.SETTLING.value and err is None:
            try:
                e["job"] = rb.book_final(e["job"], rb.parse_sling_stats(res.result))
            except ValueError as ex:
                self.log("unusual", f"{scid}: final sling-stats unreadable ({ex}): booking what was last seen")
            self.fire(scid, Event.OK)
        else:
            self.fire(scid, sj.answer_event(err), (err or {}).get("message", ""))

    def on_poll(self, scid: str, e: dict, res: IoResult) -> None:
        stats = None
        if res.error is None:
            try:
                stats = rb.parse_sling_stats(res.result)
            except ValueError as ex:
                self.log("unusual", f"{scid}: {ex}")
        self.step(scid, e, stats)

    def step(self, scid: str, e: dict, stats: rb.SlingStats | None) -> None:
        """job_step decides CONTINUE or STOP from the stats (None: unreadable or no answer)."""
        job, action, reason = rb.job_step(e["job"], stats, e["extra"]["local_msat"], self.now, self.config)
        if action is rb.JobAction.CONTINUE and e["extra"].get("spliced_to"):
            job, action, reason = rb.stop_spliced(job, e["extra"]["spliced_to"], reason)
        e["job"] = job
        if action is rb.JobAction.CONTINUE:
            self.fire(scid, Event.CONTINUE)
        else:
            e["stop_reason"] = reason
            self.fire(scid, Event.STOP, reason)

    # -- a splice (issue 15): the job's channel has a new short channel id ------------------------
    def on_spliced(self, msg: JobSpliced) -> None:
        """Sling knows the job by the short channel id it was created with and stops it once that channel is
        gone: note the new name (saved with the row: a restart knows it too), and a running job is polled now,
        so job_step's next answer stops it and it is booked under the old name (rb.stop_spliced)."""
        for scid, e in list(self.jobs.items()):
            if scid == msg.old or e["extra"].get("spliced_to") == msg.old:
                e["extra"]["spliced_to"] = msg.new
                self.log("info", f"{scid}: its channel spliced, now {msg.new}: stopping the job and booking it")
                if e["phase"] is Phase.RUNNING:
                    self.fire(scid, Event.POLL)
        self.changed()
