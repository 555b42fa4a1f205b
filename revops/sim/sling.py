"""Emulated sling (daywalker90/sling v4.1.x): the job API as documented in the reference §12.

Rebalances are not routed through a simulated network: each attempt draws a route cost (ppm) from the
scenario's ``[rebalance]`` distribution and fails with ``failure_probability``; see docs/simulator.md.

Tasks are kept per channel as sling keeps them (src/model.rs `Tasks`): `status` holds the state of the
channel's task (it exists from its first start until `sling-deletejob` or a sling restart), `running` the
tasks that are active, `once` the tasks started by `sling-once` (not persisted, src/rpc_sling.rs `slingonce`).
"""
from __future__ import annotations

import json
import os
import random
import statistics
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .market import draw_rebalance_cost_ppm

if TYPE_CHECKING:  # pragma: no cover
    from .node import Chan, SimNode

SLING_VERSION = "v4.1.2"
# sling's own pauses (src/slings.rs): 1 s after a success (sling-refresh-peers-interval) before it looks at
# the channel again; 600 s once the job is balanced, after a route too expensive or none found; 60 s while the
# peer is disconnected. A failed payment is retried at once: the attempt itself took `attempt_interval_s`.
REFRESH_S = 1
BREAK_S = {"Balanced": 600, "TooExp": 600, "NoCandidates": 600, "Disconnected": 60}
# a once-job (src/slings.rs, `once_amount_msat`): without a route it sleeps 1 s and its loop starts the next
# attempt (src/rpc_sling.rs, 20 ms later); a channel not normal ends the attempt at once. The simulator skips
# the 1 s retries during which nothing in the node can change (no node event due), at most ONCE_SKIP_S at a time.
ONCE_BREAK_S = {"Balanced": 600, "TooExp": 600, "Disconnected": 60, "NoRoutes": 1, "ChanNotNormal": 1}
ONCE_SKIP_S = 60
ONCE_KEYS = ("scid", "direction", "amount", "maxppm", "outppm", "target", "maxhops", "candidates",
             "depleteuptopercent", "depleteuptoamount", "paralleljobs", "onceamount")
MAX_HTLC_COUNT = 5      # sling-max-htlc-count default
PLUGIN_ERR = -32600  # cln-plugin (Rust) maps handler errors to this code
JOB_KEYS = ("scid", "direction", "amount", "maxppm", "outppm", "target", "maxhops", "candidates",
            "depleteuptopercent", "depleteuptoamount", "paralleljobs")


class SlingError(Exception):
    pass


class Sling:
    METHODS = ("sling-job", "sling-go", "sling-stop", "sling-deletejob", "sling-jobsettings", "sling-stats",
               "sling-except-peer", "sling-except-chan", "sling-version", "sling-once")

    def __init__(self, node: "SimNode"):
        self.node = node
        # rebalance routes are drawn from sling's own stream: they never shift the payments' draws
        self.rng = random.Random(f"sling:{node.seed}")
        self.jobs: dict[str, dict] = {}
        self.running: dict[str, int] = {}  # scid -> generation of its attempt loop
        self.status: dict[str, str] = {}     # scid -> state of its task (the task exists while listed here)
        self.once: dict[str, dict] = {}      # scid -> {"job", "total_msat"}: the channel's task is a once-job
        self.successes: dict[str, list[dict]] = {}
        self.failures: dict[str, list[dict]] = {}
        self.except_chans: list[str] = []
        self.except_peers: list[str] = []
        self._gen = 0
        self._load()

    # ------------------------------------------------------------------ persistence
    def _dir(self) -> str | None:
        if self.node.lightning_dir is None:
            return None
        return os.path.join(self.node.lightning_dir, "sling")

    def _save(self) -> None:
        d = self._dir()
        if d is None:
            return
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "jobs.json"), "w") as f:
            json.dump(self.jobs, f, sort_keys=True, indent=1)
        with open(os.path.join(d, "excepts.json"), "w") as f:
            json.dump({"chans": self.except_chans, "peers": self.except_peers}, f)
        with open(os.path.join(d, "stats.json"), "w") as f:
            json.dump({"successes": self.successes, "failures": self.failures}, f)

    def _load(self) -> None:
        d = self._dir()
        if d is None:
            return
        for name, attr in (("jobs.json", None), ("excepts.json", None), ("stats.json", None)):
            path = os.path.join(d, name)
            if not os.path.isfile(path):
                continue
            with open(path) as f:
                data = json.load(f)
            if name == "jobs.json":
                self.jobs = data
            elif name == "excepts.json":
                self.except_chans, self.except_peers = data["chans"], data["peers"]
            else:
                self.successes, self.failures = data["successes"], data["failures"]

    def start_plugin(self) -> None:
        """Plugin (re)start: jobs come back from disk (or memory) but are not running (no sling-autogo);
        tasks, once-jobs among them, are gone."""
        self.running.clear()
        self.status.clear()
        self.once.clear()
        if self._dir() is not None:
            self.jobs, self.successes, self.failures = {}, {}, {}
            self._load()

    def stop_plugin(self) -> None:
        self.running.clear()
        self.status.clear()
        self.once.clear()

    # ------------------------------------------------------------------ event loop
    def event_valid(self, data: tuple) -> bool:
        scid, gen = data
        return self.running.get(scid) == gen and self.node.plugins["sling"]

    def _schedule(self, scid: str, delay: float | None = None) -> None:
        gen = self.running[scid]
        iv = self.node.scenario.rebalance.attempt_interval_s if delay is None else delay
        self.node._push(self.node._t + iv, "sling", (scid, gen))

    def on_event(self, data: tuple) -> None:
        if not self.event_valid(data):
            return
        scid, _gen = data
        if scid in self.once:
            self._once_step(scid)
            return
        moved = self._attempt(scid)
        if scid in self.running:
            self._schedule(scid, REFRESH_S if moved else BREAK_S.get(self.status.get(scid, "")))

    def _once_step(self, scid: str) -> None:
        """One turn of a once-job's loop (src/rpc_sling.rs `slingonce`): done once another chunk would pass
        onceamount (state Balanced, the task ends); else one attempt, counted only when it moved its amount."""
        o = self.once[scid]
        amount = o["job"]["amount_msat"]
        if o["total_msat"] + amount > o["job"]["once_amount_msat"]:
            self.status[scid] = "Balanced"
            del self.running[scid]
            return
        moved = self._attempt(scid)
        if moved:
            o["total_msat"] += amount
            self._once_step(scid)          # the loop checks the total 20 ms later
            return
        state = self.status.get(scid, "")
        if state == "NoCandidates":        # next_route found nothing: sling reports NoRoutes
            state = self.status[scid] = "NoRoutes"
        delay = ONCE_BREAK_S.get(state)
        if delay == 1:
            t = self.node._t
            due = self.node._heap[0][0] if self.node._heap else t + ONCE_SKIP_S
            delay = max(1.0, min(due - t, ONCE_SKIP_S) + 1)
        self._schedule(scid, delay)

    def _eligible_sources(self, job: dict, dst: "Chan") -> list["Chan"]:
        node = self.node
        pull_targets = {s for s, j in self.jobs.items() if j["sat_direction"] == "pull"}
        out = []
        cands = job.get("candidates")
        for ch in node.channels.values():
            if ch is dst or ch.state != "CHANNELD_NORMAL" or not node.peers[ch.peer_id]["connected"]:
                continue
            if cands is not None and ch.scid not in cands:
                continue
            if "outppm" in job and ch.fee_ppm > job["outppm"]:
                continue
            if ch.scid in self.except_chans or ch.peer_id in self.except_peers or ch.scid in pull_targets:
                continue
            out.append(ch)
        return out

    def _attempt(self, scid: str) -> bool:
        """One pass of sling's loop for a job; True when it moved its amount."""
        node = self.node
        job = self.once[scid]["job"] if scid in self.once else self.jobs.get(scid)
        dst = node.channels.get(scid)
        if job is None or dst is None:
            self.status[scid] = "ChanNotNormal"
            return False
        if dst.state != "CHANNELD_NORMAL":
            self.status[scid] = "ChanNotNormal"
            return False
        if not node.peers[dst.peer_id]["connected"]:
            self.status[scid] = "Disconnected"
            return False
        if job["sat_direction"] != "pull":
            return self._attempt_push(scid, job, dst)
        target = job.get("target", 0.5)
        if dst.to_us_msat >= target * dst.capacity_msat:
            self.status[scid] = "Balanced"
            return False
        amount = job["amount_msat"]
        if node.receivable_msat(dst) < amount:
            self.status[scid] = "Balanced"
            return False
        maxfee = job["maxppm"] * amount // 1_000_000
        pct = job.get("depleteuptopercent", 0.2)
        dep_amt = job.get("depleteuptoamount_msat", 2_000_000_000)
        srcs = [c for c in self._eligible_sources(job, dst)
                if node.spendable_msat(c) >= amount + maxfee
                and c.to_us_msat - amount - maxfee >= min(int(pct * c.capacity_msat), dep_amt)]
        if not srcs:
            self.status[scid] = "NoCandidates"
            return False
        self.status[scid] = "Rebalancing"
        src = self.rng.choice(srcs)
        cost_ppm = draw_rebalance_cost_ppm(self.rng, node.scenario.rebalance)
        fee = -(-int(cost_ppm * amount) // 1_000_000)
        rec_f = {"t": node.now, "amount_msat": amount, "partner": src.scid}
        if cost_ppm > job["maxppm"]:
            rec_f["reason"] = self.status[scid] = "TooExp"
            self.failures.setdefault(scid, []).append(rec_f)
            node.ledger.rebalances_failed += 1
            self._save_stats_later()
            return False
        if self.rng.random() < node.scenario.rebalance.failure_probability:
            rec_f["reason"] = "WIRE_TEMPORARY_CHANNEL_FAILURE"
            self.failures.setdefault(scid, []).append(rec_f)
            node.ledger.rebalances_failed += 1
            self._save_stats_later()
            return False
        node.rebalance(src, dst, amount, fee)
        self.successes.setdefault(scid, []).append({"t": node.now, "amount_msat": amount, "fee_msat": fee,
                                                    "ppm": int(cost_ppm), "partner": src.scid, "hops": 4})
        self._save_stats_later()
        return True

    def _attempt_push(self, scid: str, job: dict, src: "Chan") -> bool:
        node = self.node
        target = job.get("target", 0.5)
        if src.capacity_msat - src.to_us_msat >= target * src.capacity_msat:
            self.status[scid] = "Balanced"
            return False
        amount = job["amount_msat"]
        maxfee = job["maxppm"] * amount // 1_000_000
        if node.spendable_msat(src) < amount + maxfee:
            self.status[scid] = "Balanced"
            return False
        dsts = [c for c in node.channels.values()
                if c is not src and c.state == "CHANNELD_NORMAL" and node.peers[c.peer_id]["connected"]
                and (job.get("candidates") is None or c.scid in job["candidates"])
                and ("outppm" not in job or c.fee_ppm >= job["outppm"])
                and c.scid not in self.except_chans and c.peer_id not in self.except_peers
                and node.receivable_msat(c) >= amount]
        if not dsts:
            self.status[scid] = "NoCandidates"
            return False
        self.status[scid] = "Rebalancing"
        dst = self.rng.choice(dsts)
        cost_ppm = draw_rebalance_cost_ppm(self.rng, node.scenario.rebalance)
        fee = -(-int(cost_ppm * amount) // 1_000_000)
        if cost_ppm > job["maxppm"]:
            self.status[scid] = "TooExp"
        if cost_ppm > job["maxppm"] or self.rng.random() < node.scenario.rebalance.failure_probability:
            self.failures.setdefault(scid, []).append({"t": node.now, "amount_msat": amount, "partner": dst.scid,
                                                       "reason": "TooExp" if cost_ppm > job["maxppm"] else
                                                       "WIRE_TEMPORARY_CHANNEL_FAILURE"})
            node.ledger.rebalances_failed += 1
            return False
        node.rebalance(src, dst, amount, fee)
        self.successes.setdefault(scid, []).append({"t": node.now, "amount_msat": amount, "fee_msat": fee,
                                                    "ppm": int(cost_ppm), "partner": dst.scid, "hops": 4})
        return True

    def _save_stats_later(self) -> None:
        pass  # stats are written with jobs on every API call; attempts do not touch the disk (speed)

    # ------------------------------------------------------------------ RPC
    def has(self, method: str) -> bool:
        return method in self.METHODS

    def call(self, method: str, params: Any) -> dict:
        try:
            res = getattr(self, "_rpc_" + method[6:].replace("-", "_"))(params)
        except SlingError as e:
            raise self.node.rpc_error(method, params, PLUGIN_ERR, str(e))
        self._save()
        return res

    @staticmethod
    def _kw(params: Any, method: str, allowed: tuple[str, ...], positional_ok: bool = True) -> dict:
        if params is None:
            return {}
        if isinstance(params, list):
            if not positional_ok and params:
                raise SlingError(f"{method}: This command only accepts keyword arguments (-k)")
            if len(params) > len(allowed):
                raise SlingError(f"{method}: too many arguments")
            return {k: v for k, v in zip(allowed, params) if v is not None}
        if not isinstance(params, dict):
            raise SlingError("invalid params")
        for k in params:
            if k not in allowed:
                raise SlingError(f"Unknown parameter: `{k}`")
        return {k: v for k, v in params.items() if v is not None}

    def _scid(self, v: Any, what: str = "scid") -> str:
        if not isinstance(v, str) or len(v.split("x")) != 3 or not all(x.isdigit() for x in v.split("x")):
            raise SlingError(f"{what}: could not parse short_channel_id: {v!r}")
        return v

    def _rpc_version(self, params: Any) -> dict:
        return {"version": SLING_VERSION}

    def _rpc_job(self, params: Any) -> dict:
        p = self._kw(params, "sling-job", JOB_KEYS, positional_ok=False)
        for k in ("scid", "direction", "amount", "maxppm"):
            if k not in p:
                raise SlingError(f"Missing required argument: {k}")
        scid = self._scid(p["scid"])
        ch = self.node.channels.get(scid)
        if ch is None or ch.state == "CLOSED":
            raise SlingError(f"{scid}: channel not found")
        direction = p["direction"]
        if direction not in ("pull", "push"):
            raise SlingError("direction: must be `pull` or `push`")

        def uint(k: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
            v = p[k]
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise SlingError(f"{k}: must be an integer between {lo} and {hi}")
            return v

        def flt(k: str, lo: float, hi: float, hi_open: bool) -> float:
            v = p[k]
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise SlingError(f"{k}: must be a number")
            if v < lo or v > hi or (hi_open and v == hi):
                raise SlingError(f"{k}: must be between {lo} and {hi}")
            return v

        job: dict = {"sat_direction": direction, "amount_msat": uint("amount", 1) * 1000,
                     "maxppm": uint("maxppm", 0, 2**32 - 1)}
        if "outppm" in p:
            job["outppm"] = uint("outppm", 0, 2**64 - 1)
        if "candidates" in p:
            c = p["candidates"]
            if isinstance(c, str):
                try:
                    c = json.loads(c)
                except ValueError:
                    raise SlingError("candidates: must be a list of short_channel_ids")
            if not isinstance(c, list):
                raise SlingError("candidates: must be a list of short_channel_ids")
            cands = []
            for x in c:
                x = self._scid(x, "candidates")
                if x == scid:
                    raise SlingError(f"candidates: {x} is the job's own channel")
                if x in self.except_chans:
                    raise SlingError(f"candidates: {x} is in the exception list")
                other = self.jobs.get(x)
                if other is not None and other["sat_direction"] == direction:
                    raise SlingError(f"candidates: {x} is itself the target of a {direction} job")
                if x not in self.node.channels:
                    raise SlingError(f"candidates: {x} is not one of our channels")
                cands.append(x)
            job["candidates"] = cands
        if "outppm" not in job and "candidates" not in job:
            raise SlingError("Atleast one of outppm or candidates is required")
        if "target" in p:
            job["target"] = flt("target", 0.0, 1.0, False)
        if "maxhops" in p:
            job["maxhops"] = uint("maxhops", 2, 255)
        if "depleteuptopercent" in p:
            job["depleteuptopercent"] = flt("depleteuptopercent", 0.0, 1.0, True)
        if "depleteuptoamount" in p:
            job["depleteuptoamount_msat"] = uint("depleteuptoamount") * 1000
        if "paralleljobs" in p:
            job["paralleljobs"] = uint("paralleljobs", 1, 2**16 - 1)
        if scid in self.once and scid in self.running:
            raise SlingError("Once-job is currently running for this channel")
        if scid in self.running:
            del self.running[scid]
            self.status[scid] = "Stopped"
        self.jobs[scid] = job
        return {"result": "success"}

    def _targets(self, p: dict, default: list[str]) -> list[str]:
        """The job named by `scid` (which must exist), else all of `default`."""
        if "scid" not in p:
            return default
        scid = self._scid(p["scid"])
        if scid not in self.jobs:
            raise SlingError("Shortchannelid not found in jobs")
        return [scid]

    def _rpc_go(self, params: Any) -> dict:
        p = self._kw(params, "sling-go", ("scid",))
        if not self.jobs:
            raise SlingError("No jobs found")
        targets = self._targets(p, list(self.jobs))
        started = failed = 0
        for s in targets:
            if s in self.once and s in self.running:
                failed += 1                # "Once-job is currently running"
                continue
            self.once.pop(s, None)
            if s in self.running:
                continue
            self._gen += 1
            self.running[s] = self._gen
            self.status[s] = "Starting"
            self._schedule(s, delay=1)
            started += 1
        return {"tasks_started": started, "tasks_failed_start:": failed}

    def _rpc_stop(self, params: Any) -> dict:
        """Every task of the channel (all channels without `scid`) is told to stop; one that runs ends as
        Stopped, one that had already ended is left marked Stopping (src/rpc_sling.rs `stop_job`)."""
        p = self._kw(params, "sling-stop", ("scid",))
        if "scid" in p:
            scid = self._scid(p["scid"])
            if scid not in self.status:
                raise SlingError(f"{scid}: No job running")
            targets = [scid]
        else:
            targets = list(self.status)
        for s in targets:
            self.status[s] = "Stopped" if self.running.pop(s, None) is not None else "Stopping"
        return {"stopped_count": len(targets)}

    def _rpc_deletejob(self, params: Any) -> dict:
        p = self._kw(params, "sling-deletejob", ("job", "delete_stats"))
        if "job" not in p:
            raise SlingError("Missing required argument: job")
        job = p["job"]
        ds = p.get("delete_stats", False)
        if not isinstance(ds, bool):
            raise SlingError("delete_stats: must be a boolean")
        if job == "all":
            targets = list(self.jobs) + list(self.once)
        else:
            scid = self._scid(job, "job")
            if scid not in self.jobs and scid not in self.once:
                raise SlingError("Shortchannelid not found in jobs")
            targets = [scid]
        for s in targets:
            self.running.pop(s, None)
            self.status.pop(s, None)
            self.jobs.pop(s, None)
            self.once.pop(s, None)
            if ds:
                self.successes.pop(s, None)
                self.failures.pop(s, None)
        return {"result": "success"}

    def _rpc_jobsettings(self, params: Any) -> dict:
        p = self._kw(params, "sling-jobsettings", ("scid",))
        if "scid" in p:
            scid = self._scid(p["scid"])
            if scid not in self.jobs:
                raise SlingError("Shortchannelid not found in jobs")
            return {scid: dict(self.jobs[scid])}
        return {s: dict(j) for s, j in sorted(self.jobs.items())}

    def _rpc_once(self, params: Any) -> dict:
        """`sling-once`: checked as src/parse.rs `parse_once_job` and src/rpc_sling.rs `slingonce` check it,
        in that order; then the once-job starts at once: {"result": "started"}. Not persisted."""
        if not isinstance(params, dict):
            raise SlingError(f"Expected an object! Got {json.dumps(params)} instead")
        for k in params:
            if k not in ONCE_KEYS:
                raise SlingError(f"Invalid argument: {k}")
        if "target" in params:
            raise SlingError("`target` can not be used with `sling-once`")
        for k in ("scid", "direction"):
            if not isinstance(params.get(k), str):
                raise SlingError(f"Missing {k}" if k not in params else f"invalid string for {k}")
        scid = self._scid(params["scid"])
        if params["direction"] not in ("pull", "push"):
            raise SlingError(f"could not parse direction: {params['direction']}")

        def u64(k: str, what: str) -> int | None:
            v = params.get(k)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SlingError(f"{k} must be {what}")
            return v

        amount, maxppm = u64("amount", "a positive integer"), u64("maxppm", "an integer")
        if amount is None or maxppm is None:
            raise SlingError(f"Missing {'amount' if amount is None else 'maxppm'}")
        if amount == 0:
            raise SlingError("amount must be greater than 0")
        outppm = u64("outppm", "an integer")
        once = u64("onceamount", "a positive integer")
        if once is None:
            raise SlingError("Missing onceamount")
        if once == 0:
            raise SlingError("onceamount must be greater than 0")
        if once % amount:
            raise SlingError(f"onceamount must be a multiple of amount. onceamount: {once}, amount: {amount}")
        job: dict = {"sat_direction": params["direction"], "amount_msat": amount * 1000, "maxppm": maxppm,
                     "once_amount_msat": once * 1000, "target": 1.0}   # a once-job's target is the capacity
        if outppm is not None:
            job["outppm"] = outppm
        maxhops = u64("maxhops", "an integer")
        if maxhops is not None and maxhops < 2:
            raise SlingError("maxhops must be atleast 2")
        if "depleteuptopercent" in params:
            dp = params["depleteuptopercent"]
            if isinstance(dp, bool) or not isinstance(dp, (int, float)):
                raise SlingError("depleteuptopercent must be a floating point")
            if not 0.0 <= dp < 1.0:
                raise SlingError("depleteuptopercent must be between 0.0 and <1.0")
            job["depleteuptopercent"] = float(dp)
        if "depleteuptoamount" in params:
            job["depleteuptoamount_msat"] = u64("depleteuptoamount", "an integer") * 1000
        pj = u64("paralleljobs", "an integer")
        if pj is not None:
            if pj < 1:
                raise SlingError("paralleljobs must be atleast 1")
            if params["direction"] == "push" and pj > MAX_HTLC_COUNT:
                raise SlingError("In a push job it doesn't make sense to have more paralleljobs than your "
                                 "max_htlc_count")
        if "candidates" in params:
            if not isinstance(params["candidates"], list):
                raise SlingError("Invalid array for candidate list")
            cands = [self._scid(c, "candidates") for c in params["candidates"]]
            excluded = {x for x, j in self.jobs.items() if j["sat_direction"] == params["direction"]}
            for c in cands:
                if c in excluded or c in self.except_chans:
                    raise SlingError(f"candidate {c} has a {params['direction']}-job that rebalances in the "
                                     "other direction!")
            job["candidates"] = cands
        elif outppm is None:
            raise SlingError("Atleast one of outppm and candidatelist must be set.")
        ch = self.node.channels.get(scid)
        if ch is None:
            raise SlingError("Channel not found")
        if ch.state != "CHANNELD_NORMAL":
            raise SlingError("Not in CHANNELD_NORMAL or CHANNELD_AWAITING_SPLICE state!")
        room = self.node.receivable_msat(ch) if params["direction"] == "pull" else self.node.spendable_msat(ch)
        if room < once * 1000:
            raise SlingError(f"Channel {scid} has not enough capacity to {params['direction']} {once * 1000}msat")
        if scid in self.jobs:
            raise SlingError("There is already a job for that scid!")
        if scid in self.status and scid not in self.once:
            raise SlingError("There is already a job for that scid! Please delete it first.")
        if scid in self.running:
            raise SlingError("There is already a job for that scid running!")
        self.once[scid] = {"job": job, "total_msat": 0}
        self._gen += 1
        self.running[scid] = self._gen
        self.status[scid] = "Starting"
        self._schedule(scid, delay=1)
        return {"result": "started"}

    @staticmethod
    def _lt(t: int | None) -> str:
        if t is None:
            return "Never"
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    def _rpc_stats(self, params: Any) -> Any:
        p = self._kw(params, "sling-stats", ("scid", "json"))
        as_json = p.get("json", False)
        if isinstance(as_json, str):
            as_json = as_json == "true"
        node = self.node
        window_lo = node.now - 30 * 86400
        if "scid" not in p:
            rows = []
            for s in sorted(set(self.jobs) | set(self.once)):   # jobs, and channels with a once-task
                ch = node.channels.get(s)
                succ = self.successes.get(s, [])
                amt = sum(x["amount_msat"] for x in succ) // 1000
                fees = sum(x["fee_msat"] for x in succ)
                rows.append({"alias": node.peers[ch.peer_id]["alias"] if ch else "unknown", "scid": s,
                             "pubkey": ch.peer_id if ch else "", "status": [f"1:{self.status.get(s, 'NotStarted')}"],
                             "rebamount": f"{amt:,}",
                             "w_feeppm": (fees * 1_000_000 // (amt * 1000)) if amt else 0,
                             "last_route_taken": f"{succ[-1]['partner']}->{s}" if succ else "Never",
                             "last_success_reb": self._lt(succ[-1]["t"]) if succ else "Never"})
            if as_json:
                return rows
            return {"format-hint": "simple", "result": "\n".join(
                f"{r['alias']} {r['scid']} {r['status'][0]} {r['rebamount']} {r['w_feeppm']}" for r in rows)}
        scid = self._scid(p["scid"])
        succ = [x for x in self.successes.get(scid, []) if x["t"] >= window_lo]
        fail = [x for x in self.failures.get(scid, []) if x["t"] >= window_lo]
        s_obj = None
        if succ:
            ppms = sorted(x["ppm"] for x in succ)
            amt = sum(x["amount_msat"] for x in succ)
            fees = sum(x["fee_msat"] for x in succ)
            partners: dict[str, int] = {}
            for x in succ:
                partners[x["partner"]] = partners.get(x["partner"], 0) + 1
            s_obj = {"time_window_days": 30, "total_amount_sats": amt // 1000,
                     "feeppm_weighted_avg": fees * 1_000_000 // amt if amt else 0,
                     "feeppm_min": ppms[0], "feeppm_max": ppms[-1], "feeppm_median": int(statistics.median(ppms)),
                     "feeppm_90th_percentile": ppms[min(len(ppms) - 1, int(0.9 * len(ppms)))],
                     "top_5_channel_partners": [{"scid": k, "count": v} for k, v in
                                                sorted(partners.items(), key=lambda kv: -kv[1])[:5]],
                     "most_common_hop_count": 4, "time_of_last_rebalance": self._lt(succ[-1]["t"]),
                     "total_rebalances": len(succ), "total_spent_sats": fees // 1000}
        f_obj = None
        if fail:
            reasons: dict[str, int] = {}
            for x in fail:
                reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
            f_obj = {"time_window_days": 30, "total_amount_tried_sats": sum(x["amount_msat"] for x in fail) // 1000,
                     "top_5_failure_reasons": [{"failure_reason": k, "failure_count": v} for k, v in
                                               sorted(reasons.items(), key=lambda kv: -kv[1])[:5]],
                     "top_5_fail_nodes": [], "top_5_channel_partners": [], "most_common_hop_count": 4,
                     "time_of_last_attempt": self._lt(fail[-1]["t"]), "total_rebalances_tried": len(fail)}
        return {"successes_in_time_window": s_obj, "failures_in_time_window": f_obj}

    def _except(self, params: Any, method: str, key: str, lst: list[str]) -> dict:
        p = self._kw(params, method, ("command", key))
        cmd = p.get("command")
        if cmd == "list":
            return {"exceptions": list(lst)}
        if cmd not in ("add", "remove"):
            raise SlingError("command: must be one of list, add, remove")
        if key not in p:
            raise SlingError(f"Missing required argument: {key}")
        v = p[key]
        if key == "scid":
            v = self._scid(v)
            if v in self.jobs:
                raise SlingError(f"{v} has a job; cannot except it")
        else:
            if v == self.node.id:
                raise SlingError("Cannot except your own node")
            if any(self.node.channels[s].peer_id == v for s in self.jobs if s in self.node.channels):
                raise SlingError(f"{v} has a job; cannot except it")
        if cmd == "add":
            if v in lst:
                raise SlingError(f"{v} is already in exceptions")
            lst.append(v)
        else:
            if v not in lst:
                raise SlingError(f"{v} is not in exceptions")
            lst.remove(v)
        return {"result": "success"}

    def _rpc_except_chan(self, params: Any) -> dict:
        return self._except(params, "sling-except-chan", "scid", self.except_chans)

    def _rpc_except_peer(self, params: Any) -> dict:
        return self._except(params, "sling-except-peer", "id", self.except_peers)
