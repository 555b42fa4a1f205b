"""SlingExecutorActor: the lifecycle of the sling jobs this plugin creates, through sling's real API.

Start: `sling-job` (rebalance.sling_job_params) → baseline `sling-stats {scid, json: true}` → registry row
→ `sling-go {scid}`. Watch: each rebalance cycle `sling-stats` → rebalance.job_step. Stop: `sling-stop`,
`sling-deletejob {job, delete_stats: false}`, settle the reservation from the real spend. Start-up:
`sling-jobsettings` + rebalance.reconcile over OUR registry only; the operator's jobs are never touched.
Every failure before `sling-go` succeeded releases the reservation (nothing was spent) and is reported.
All I/O goes through IoRequests; time only from messages.
"""
from __future__ import annotations

from typing import Any

import attrs

from actors.messages import (ExecutorInit, HealthChanged, IoRequest, IoResult, JobEnded, JobsChanged, LogLine, PollJobs,
                             ReleaseBudget, RpcFailure, RpcReply, SaveJob, SettleJob, StartJob)
from actors.supervision import SupervisedActor
from revops import rebalance as rb


class SlingExecutorActor(SupervisedActor):
    name = "sling-executor"

    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.coordinator: Any = None
        self.now = 0
        self.sling_ok = False
        self.ready = False
        self.jobs: dict[str, dict] = {}          # scid → {"job", "extra", "phase", "rpc"}
        self.reqs: dict[int, str] = {}           # req_id → scid
        self.next_req = 0
        self.pending_reconcile: list[tuple[rb.JobRecord, dict]] = []
        self.finished: list[dict] = []           # last outcomes, for revenue-rebalance-debug

    def restore_checkpoint(self) -> None:
        # jobs are persisted by the runtime at every step; in-flight io answers still find their job
        pass

    # -- helpers --------------------------------------------------------------------------------
    def io(self, method: str, params: Any, tag: str, scid: str) -> None:
        self.next_req += 1
        self.reqs[self.next_req] = scid
        if scid in self.jobs:
            self.jobs[scid]["asked"] = (self.now, method, params, tag)
        self.send(self.runtime, IoRequest(self.next_req, method, params, tag, self.myAddress, scid))

    def log(self, level: str, text: str) -> None:
        self.send(self.runtime, LogLine(level, f"sling: {text}"))

    def active(self) -> dict[str, dict]:
        out = {}
        for scid, e in self.jobs.items():
            job = e["job"]
            out[scid] = {"phase": e["phase"], "kind": e["extra"].get("kind"), "res_id": e["extra"].get("res_id"),
                         "amount_sat": e["extra"].get("amount_sat", job.amount_sat if job else 0),
                         "reserved_msat": e["extra"].get("reserved_msat"),
                         "spent_msat": job.spent_msat if job else 0, "moved_msat": job.moved_msat if job else 0,
                         "started_at": job.started_at if job else None}
        return out

    def changed(self) -> None:
        if self.coordinator is not None:
            self.send(self.coordinator, JobsChanged(self.active(), self.ready))

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ExecutorInit):
            self.on_init(msg, sender)
        elif isinstance(msg, StartJob):
            self.on_start_job(msg)
        elif isinstance(msg, PollJobs):
            self.now, self.config = max(self.now, msg.now), msg.config
            for scid, e in list(self.jobs.items()):
                if e["phase"] == "running":
                    e["phase"] = "polling"
                    self.io("sling-stats", {"scid": scid, "json": True}, "poll", scid)
                elif "asked" in e and self.now - e["asked"][0] > 2 * self.config.rebalance_interval:
                    self.unstick(scid, e)
        elif isinstance(msg, IoResult):
            self.on_io(msg)
        elif isinstance(msg, HealthChanged):
            self.sling_ok = msg.health.get("sling", {}).get("status") == "ok"

    # -- start-up reconcile ---------------------------------------------------------------------
    def on_init(self, msg: ExecutorInit, sender: Any) -> None:
        self.config, self.runtime, self.coordinator, self.now = msg.config, msg.runtime, sender, msg.now
        self.sling_ok = msg.sling_ok
        self.pending_reconcile = list(msg.jobs)
        if not self.pending_reconcile or not self.sling_ok:
            if self.pending_reconcile:
                self.log("unusual", f"{len(msg.jobs)} job(s) in our registry but sling is unavailable: left as is")
            self.ready = True
            self.changed()
            return
        self.io("sling-jobsettings", {}, "jobsettings", "*")

    def on_reconcile(self, res: IoResult) -> None:
        registry, self.pending_reconcile = self.pending_reconcile, []
        if res.error is not None or not isinstance(res.result, dict):
            self.log("unusual", f"sling-jobsettings failed ({(res.error or {}).get('message')}): registry left as is")
            self.ready = True
            self.changed()
            return
        by_scid = {job.scid: (job, extra) for job, extra in registry}
        acted = set()
        for scid, action in rb.reconcile([j for j, _ in registry], res.result):
            acted.add(scid)
            job, extra = by_scid[scid]
            if action is rb.ReconcileAction.RESUME:
                self.jobs[scid] = {"job": job, "extra": extra, "phase": "resuming", "rpc": None}
                self.io("sling-go", {"scid": scid}, "resume", scid)
            elif action is rb.ReconcileAction.DELETE and job.status is rb.JobStatus.RUNNING:
                self.jobs[scid] = {"job": job, "extra": extra, "phase": "polling", "rpc": None, "force_stop": True}
                self.io("sling-stats", {"scid": scid, "json": True}, "poll", scid)
            elif action is rb.ReconcileAction.DELETE:
                self.jobs[scid] = {"job": job, "extra": extra, "phase": "deleting", "rpc": None, "settled": True}
                self.io("sling-deletejob", {"job": scid, "delete_stats": False}, "delete", scid)
            else:   # FORGET: gone from sling; book what we last saw
                self.settle(job, extra, "the job disappeared from sling: booked what we last saw", "forgotten")
                self.send(self.runtime, SaveJob(job, extra, self.now, delete=True))
            self.log("info", f"reconcile {scid}: {action.value}")
        for job, extra in registry:
            if job.scid not in acted:      # finished and gone from sling: nothing left to do
                self.send(self.runtime, SaveJob(job, extra, self.now, delete=True))
        self.ready = True
        self.changed()

    # -- start a job ----------------------------------------------------------------------------
    def on_start_job(self, msg: StartJob) -> None:
        self.now = max(self.now, msg.now)
        c = msg.candidate
        extra = {"res_id": msg.res_id, "kind": msg.kind, "sources": list(c.source_scids),
                 "amount_sat": c.amount_sat, "reserved_msat": c.max_fee_msat, "maxppm": c.maxppm,
                 "local_msat": msg.local_msat, "created_at": msg.now}
        if not self.sling_ok or c.dest_scid in self.jobs:
            why = "sling is not available" if not self.sling_ok else "a job of ours already runs on this channel"
            self.send(self.runtime, ReleaseBudget(msg.res_id, msg.now))
            self.fail_rpc(msg.rpc_req_id, why)
            return
        self.jobs[c.dest_scid] = {"job": None, "extra": extra, "phase": "creating", "rpc": msg.rpc_req_id,
                                  "candidate": c}
        self.changed()
        # sling-job on a scid replaces the job there: never overwrite one we did not create
        self.io("sling-jobsettings", {}, "precheck", c.dest_scid)

    def unstick(self, scid: str, e: dict) -> None:
        """An answer never came (lost io, or a crash restored us mid-step): repeat the step, or abort a start."""
        _at, method, params, tag = e["asked"]
        if e["job"] is None or tag in ("go", "baseline"):
            self.abort_start(scid, f"no answer to {method}", delete=e["phase"] not in ("creating",))
        else:
            self.log("unusual", f"{scid}: no answer to {method}, asking again")
            self.io(method, params, tag, scid)

    def fail_rpc(self, rpc_req_id: int | None, why: str) -> None:
        if rpc_req_id is not None:
            self.send(self.runtime, RpcFailure(rpc_req_id, f"rebalance not started: {why}"))

    def abort_start(self, scid: str, why: str, delete: bool) -> None:
        """Before sling-go succeeded nothing was spent: release, clean up, report honestly."""
        e = self.jobs.pop(scid)
        self.send(self.runtime, ReleaseBudget(e["extra"]["res_id"], self.now))
        if e["job"] is not None:
            self.send(self.runtime, SaveJob(e["job"], e["extra"], self.now, delete=True))
        if delete:
            self.io("sling-deletejob", {"job": scid, "delete_stats": False}, "cleanup", scid)
        self.fail_rpc(e["rpc"], why)
        self.log("unusual", f"job on {scid} not started: {why}")
        self.send(self.coordinator, JobEnded(scid, False, self.now))
        self.changed()

    # -- io answers -----------------------------------------------------------------------------
    def on_io(self, res: IoResult) -> None:
        scid = self.reqs.pop(res.req_id, res.context)
        if res.tag == "jobsettings":
            self.on_reconcile(res)
            return
        if res.tag == "cleanup":
            return
        e = self.jobs.get(scid)
        if e is None:
            return
        err = None if res.error is None else res.error.get("message", "error")
        if res.tag == "precheck":
            if err or not isinstance(res.result, dict):
                self.abort_start(scid, f"sling-jobsettings failed: {err}", delete=False)
            elif scid in {s.replace(":", "x") for s in res.result}:
                self.abort_start(scid, "sling already has a job on this channel that is not ours: left alone",
                                 delete=False)
            else:
                self.io("sling-job", rb.sling_job_params(e["candidate"], self.config), "job", scid)
        elif res.tag == "job":
            if err:
                self.abort_start(scid, f"sling-job failed: {err}", delete=False)
                return
            e["phase"] = "baseline"
            self.io("sling-stats", {"scid": scid, "json": True}, "baseline", scid)
        elif res.tag == "baseline":
            try:
                if err:
                    raise ValueError(err)
                baseline = rb.parse_sling_stats(res.result)
            except ValueError as ex:
                self.abort_start(scid, f"no baseline from sling-stats ({ex}): cannot account, fail closed",
                                 delete=True)
                return
            c = e["candidate"]
            e["job"] = rb.new_job(e["extra"]["res_id"], c, baseline, e["extra"]["local_msat"], self.now)
            self.send(self.runtime, SaveJob(e["job"], e["extra"], self.now))
            e["phase"] = "going"
            self.io("sling-go", {"scid": scid}, "go", scid)
        elif res.tag == "go":
            if err:
                self.abort_start(scid, f"sling-go failed: {err}", delete=True)
                return
            e["phase"] = "running"
            if e["rpc"] is not None:
                c = e["candidate"]
                self.send(self.runtime, RpcReply(e["rpc"], {
                    "status": "initiated", "to_channel": scid, "from_channels": list(c.source_scids),
                    "amount_sats": c.amount_sat, "maxppm": c.maxppm, "reserved_msat": c.max_fee_msat,
                    "reservation_id": e["extra"]["res_id"], "sling": {"job": "created", "go": res.result}}))
                e["rpc"] = None
            self.log("info", f"job on {scid} started: {e['extra']['amount_sat']} sat, maxppm {e['extra']['maxppm']}")
            self.changed()
        elif res.tag == "resume":
            if err:
                e["force_stop"] = True
                e["phase"] = "polling"
                self.io("sling-stats", {"scid": scid, "json": True}, "poll", scid)
                return
            e["phase"] = "running"
        elif res.tag == "poll":
            self.on_poll(scid, e, res, err)
        elif res.tag in ("stop", "delete") and err is not None and "not found" not in err:
            return      # not known to be stopped: asked again at a later poll, nothing is booked before
        elif res.tag == "stop":
            e["phase"] = "deleting"
            self.io("sling-deletejob", {"job": scid, "delete_stats": False}, "delete", scid)
        elif res.tag == "delete":
            if e.get("settled"):
                self.forget(scid, e)
                return
            # book from stats read after the stop (sling keeps them): polls may have missed spending
            e["phase"] = "final"
            self.io("sling-stats", {"scid": scid, "json": True}, "final", scid)
        elif res.tag == "final":
            if err is not None and "not found" not in err:
                return      # no stats yet (no answer, sling failing or gone): asked again at a later poll;
                            # the reservation counts meanwhile. "not found": sling has no stats, nothing spent
            try:
                if err is None:
                    e["job"] = rb.book_final(e["job"], rb.parse_sling_stats(res.result))
            except ValueError as ex:
                self.log("unusual", f"{scid}: final sling-stats unreadable ({ex}): booking what was last seen")
            self.finish(scid, e)
            self.forget(scid, e)

    def forget(self, scid: str, e: dict) -> None:
        """Deleted in sling (or gone from it): forget it."""
        self.jobs.pop(scid, None)
        self.send(self.runtime, SaveJob(e["job"], e["extra"], self.now, delete=True))
        self.changed()

    def on_poll(self, scid: str, e: dict, res: IoResult, err: str | None) -> None:
        stats = None
        if not err:
            try:
                stats = rb.parse_sling_stats(res.result)
            except ValueError as ex:
                self.log("unusual", f"{scid}: {ex}")
        job, action, reason = rb.job_step(e["job"], stats, e["extra"]["local_msat"], self.now, self.config)
        if action is rb.JobAction.CONTINUE and e.get("force_stop"):
            job, action = attrs.evolve(job, status=rb.JobStatus.FAILED), rb.JobAction.STOP_FAILED
            reason = f"stopped at reconcile (altered or not resumable): {reason}"
        e["job"], e["reason"] = job, reason
        if action is rb.JobAction.CONTINUE:
            e["phase"] = "running"
            self.send(self.runtime, SaveJob(job, e["extra"], self.now))
            return
        e["phase"] = "stopping"
        self.send(self.runtime, SaveJob(job, e["extra"], self.now))
        self.io("sling-stop", {"scid": scid}, "stop", scid)

    def finish(self, scid: str, e: dict) -> None:
        job = e["job"]
        self.settle(job, e["extra"], e.get("reason", job.status.value))
        e["settled"] = True
        success = job.moved_msat > 0
        self.finished = (self.finished + [{"scid": scid, "status": job.status.value, "spent_msat": job.spent_msat,
                                           "moved_msat": job.moved_msat, "reason": e.get("reason", ""),
                                           "at": self.now}])[-20:]
        self.send(self.coordinator, JobEnded(scid, success, self.now))

    def settle(self, job: rb.JobRecord, extra: dict, reason: str, status: str | None = None) -> None:
        self.send(self.runtime, SettleJob(extra["res_id"], job, extra, status or job.status.value, reason, self.now))
