"""ChannelActor: one per channel in CHANNELD_NORMAL or splicing (CHANNELD_AWAITING_SPLICE).

It holds what is this channel's own: its hill-climbing state, its daily flow buckets and revenue window,
its failure counters and its last decision. It decides through the pure functions of revops.flow and
revops.fees and asks the runtime to run `setchannel`; it never does I/O or reads the clock itself.
"""
from __future__ import annotations

import collections
import operator

from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from actors.messages import (ChannelInit, ChannelStatus, ChannelStatusQuery, ChannelUpdate, Crash, FeeCycle,
                             ForwardSettled, IoRequest, IoResult, PersistState, PolicyUpdate, RecordDecision,
                             Retire, ChannelRetired, ChannelEconReply, EconQuery, ManualFee, RebalanceOutcome,
                             RpcFailure, RpcReply, QuarantineState, RebuildFigures, StoredFigures)
from actors.messages import Flush, HiveMembership, HivePush
from actors.supervision import SupervisedActor
from revops import costs, fees, flow, htlcmax, ladder
from revops.model import ChannelView, FeeDecision, Policy, Strategy, converter, to_dict

DAY = 86400
STATE_VERSION = 1     # of the persisted ChannelState JSON; 0 = written before versions (same fields)
# A fee cycle that changed only the balance memory, the last decision (shown by revenue-status) and
# last_message_at is checkpointed at least this often, not every cycle (5,000 JSON states a cycle at
# 5,000 channels): a kill -9 or a crash loses at most this much of them (docs/reliability.md).
LIGHT_CHECKPOINT_SECONDS = 4 * 3600
# what a light checkpoint compares: the hill state's fields but the balance memory, read in one C call; the
# tuples compare as attrs' eq does, field by field (identity first), without building a copy to compare
HILL_BUT_BALANCE = operator.attrgetter(*(a.name for a in attrs.fields(fees.HillClimbState) if a.name != "balance"))


@attrs.define
class ChannelState:
    """Everything a channel actor persists (the checkpoint it restarts from)."""

    hill: fees.HillClimbState
    buckets: dict[int, list[int]]     # absolute day → [in_msat, out_msat, fee_msat, forwards_out]
    window_fees_msat: int = 0         # fees earned as outgoing channel since hill.window_start
    window_forwards: int = 0
    routed_out: bool = False
    rebalance_failures: int = 0
    last_rebalance_failure_at: int = 0
    last_decision: dict | None = None
    last_message_at: int = 0
    last_hive_message: dict | None = None    # the last HiveMembership / HivePush this actor handled


# last_decision is already plain JSON (model.to_dict of the decision): checkpointed as it is, not walked
# value by value again (that walk was a fifth of every channel's fee cycle at 5,000 channels)
converter.register_unstructure_hook(ChannelState, make_dict_unstructure_fn(
    ChannelState, converter, last_decision=override(unstruct_hook=lambda decision: decision)))


def load_state(stored: dict | str) -> ChannelState:
    """A persisted state → ChannelState; raises (ValueError, cattrs errors) when it no longer structures."""
    if not isinstance(stored, dict):
        raise ValueError(f"not a JSON object: {str(stored)[:80]!r}")
    data = dict(stored)
    version = data.pop("version", 0)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise ValueError(f"state version {version!r} is not one this plugin reads (<= {STATE_VERSION})")
    return converter.structure(data, ChannelState)


def why_unreadable(e: Exception) -> str:
    """cattrs' nested errors as one line naming each field ("required field missing @ $.hill")."""
    if isinstance(e, cattrs.BaseValidationError):
        return f"{type(e).__name__}: " + "; ".join(cattrs.transform_error(e))
    return f"{type(e).__name__}: {e}"


class ChannelActor(SupervisedActor):
    init_message = ChannelInit

    def __init__(self) -> None:
        super().__init__()
        self.view: ChannelView | None = None
        self.policy: Policy | None = None
        self.config: Any = None
        self.state: ChannelState | None = None
        self.checkpoint: dict | None = None      # the state as last persisted (unstructured)
        # io req → (decision, hill before, window fees before, window forwards before, RPC to answer)
        self.pending: dict[int, tuple[FeeDecision, fees.HillClimbState, int, int, int | None]] = {}
        self.next_req = 0
        self.flow_metrics: flow.FlowMetrics | None = None
        self.holds: collections.deque[tuple[float, float]] = collections.deque()   # (received, seconds held), 24 h
        self.economics: dict[str, Any] = {}      # last fee cycle's costs, return and stall premium
        self.saved_hill: fees.HillClimbState | None = None   # the hill state of the last checkpoint, and when
        self.saved_at = 0
        self.forwards_unsaved = False            # a forward was counted since the last checkpoint
        # what the fee cycles changed since the last checkpoint, when that was all (put off; a crash restores it)
        self.light: tuple[fees.BalanceMemory, dict | None, int] | None = None

    # -- supervision ----------------------------------------------------------------------------
    def restore_checkpoint(self) -> None:
        """Back to the last persisted state; what forwards added since is read again from the store."""
        self.state = None if self.checkpoint is None else load_state(self.checkpoint)
        if self.state is not None and self.light is not None:     # the state at the end of the last fee cycle
            balance, self.state.last_decision, self.state.last_message_at = self.light
            self.state.hill = attrs.evolve(self.state.hill, balance=balance)
        self.pending.clear()
        if self.state is not None and self.view is not None:
            self.send(self.runtime, RebuildFigures(self.view.scid, self.state.hill.window_start, self.myAddress))

    def persist(self) -> None:
        assert self.state is not None and self.view is not None
        self.checkpoint = {**converter.unstructure(self.state), "version": STATE_VERSION}
        self.saved_hill, self.saved_at, self.forwards_unsaved = self.state.hill, self.state.last_message_at, False
        self.light = None
        self.send(self.runtime, PersistState(self.view.scid, self.view.peer_id, self.checkpoint))

    def checkpoint_due(self, now: int) -> bool:
        """After a fee cycle: whether anything but the balance memory, the last decision and last_message_at
        changed since the last checkpoint, or that one is LIGHT_CHECKPOINT_SECONDS old."""
        hill, saved = self.state.hill, self.saved_hill
        return self.forwards_unsaved or saved is None or now - self.saved_at >= LIGHT_CHECKPOINT_SECONDS or \
            HILL_BUT_BALANCE(hill) != HILL_BUT_BALANCE(saved)

    def answer_degraded(self, msg: Any, sender: Any) -> None:
        scid = self.view.scid if self.view is not None else "?"
        if isinstance(msg, ChannelStatusQuery):
            self.send(sender, ChannelStatus(msg.req_id, scid, {"scid": scid, "degraded": self.degraded}))
        elif isinstance(msg, (EconQuery, FeeCycle)):
            req = msg.req_id if isinstance(msg, EconQuery) else msg.econ_req
            if req is not None:
                self.send(sender, ChannelEconReply(req, scid, {"degraded": self.degraded}))
        elif isinstance(msg, ManualFee):
            self.send(self.runtime, RpcFailure(msg.req_id, self.degraded))
        elif isinstance(msg, Retire) and self.view is not None:
            self.send(self.runtime, ChannelRetired(scid, msg.now))

    # -- messages -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ChannelInit):
            self.on_init(msg)
            return
        if self.state is None:
            return
        now = getattr(msg, "now", None)
        if isinstance(now, int):
            self.state.last_message_at = now
        if isinstance(msg, ForwardSettled):
            self.on_forward(msg)
        elif isinstance(msg, ChannelUpdate):
            self.on_update(msg.view)
        elif isinstance(msg, PolicyUpdate):
            self.policy = msg.policy
        elif isinstance(msg, FeeCycle):
            self.on_fee_cycle(msg, sender)
        elif isinstance(msg, IoResult):
            self.on_io_result(msg)
        elif isinstance(msg, ChannelStatusQuery):
            self.send(sender, ChannelStatus(msg.req_id, self.view.scid, self.status()))
        elif isinstance(msg, Retire):
            self.persist()
            self.send(self.runtime, ChannelRetired(self.view.scid, msg.now))
        elif isinstance(msg, EconQuery):
            self.send(sender, ChannelEconReply(msg.req_id, self.view.scid, self.econ(self.daily_buckets(msg.now))))
        elif isinstance(msg, RebalanceOutcome):
            self.on_rebalance_outcome(msg)
        elif isinstance(msg, (HiveMembership, HivePush)):
            self.state.last_hive_message = {"type": type(msg).__name__, **attrs.asdict(msg)}
            self.persist()
        elif isinstance(msg, ManualFee):
            self.on_manual_fee(msg)
        elif isinstance(msg, StoredFigures):
            self.on_stored_figures(msg)
        elif isinstance(msg, Flush):
            if self.light is not None:
                self.persist()
        elif isinstance(msg, Crash):
            raise RuntimeError(msg.text)

    def on_update(self, view: ChannelView) -> None:
        spliced = view.scid != self.view.scid
        self.view = view
        if spliced:    # the coordinator re-keyed this actor: its checkpoint goes under the new scid at once,
            self.name = f"channel {view.scid}"     # and a forward told under the new one before the
            self.persist()                         # re-keying is counted from the store
            self.send(self.runtime, RebuildFigures(view.scid, self.state.hill.window_start, self.myAddress))

    def on_init(self, msg: ChannelInit) -> None:
        self.view, self.policy, self.config, self.runtime = msg.view, msg.policy, msg.config, msg.runtime
        self.name = f"channel {msg.view.scid}"
        self.state = None
        if msg.state is not None:
            try:
                self.state = load_state(msg.state)
            except Exception as e:  # noqa: BLE001 - unreadable state is kept aside, the channel starts fresh
                self.send(self.runtime, QuarantineState(msg.view.scid, msg.view.peer_id, msg.state,
                                                        why_unreadable(e), msg.now))
        if self.state is None:
            self.state = ChannelState(hill=fees.initial_state(msg.view, msg.now), buckets={})
            if msg.state is not None:   # fresh after quarantine: the gossip budget comes back from the store
                self.send(self.runtime, RebuildFigures(msg.view.scid, self.state.hill.window_start,
                                                       self.myAddress))
        self.set_buckets(msg.buckets, msg.now)
        self.state.routed_out = self.state.routed_out or msg.routed_out
        self.state.last_message_at = msg.now
        self.persist()

    def set_buckets(self, stored: list[dict], now: int) -> None:
        """Daily flow buckets from the store (store.daily_buckets), which counts every forward once."""
        self.state.buckets = {(now - b["day_age"] * DAY) // DAY: [b["in_msat"], b["out_msat"], b["fee_msat"],
                                                                   b["forwards"]] for b in stored}

    def on_stored_figures(self, msg: StoredFigures) -> None:
        """Take the store's figures, and persist them at once: a kill before the next checkpoint must not
        lose them again (found by the random sequences: a quarantine, then a restart at the same time)."""
        hill = self.state.hill      # a lost state must not buy extra broadcasts: keep every recorded one
        self.state.hill = attrs.evolve(hill, update_times=tuple(sorted({*hill.update_times, *msg.update_times})))
        if msg.window_start == self.state.hill.window_start:   # else a new window began, counting from zero
            self.state.window_fees_msat, self.state.window_forwards = msg.window_fees_msat, msg.window_forwards
            self.set_buckets(msg.buckets, msg.now)
        self.persist()

    def on_forward(self, msg: ForwardSettled) -> None:
        f, scid = msg.forward, self.view.scid
        self.forwards_unsaved = True
        day = int(f.received_time) // DAY
        bucket = self.state.buckets.setdefault(day, [0, 0, 0, 0])
        # balances move with every settled forward: keep the view live between channel refreshes
        if f.in_channel == scid:
            bucket[0] += f.in_msat
            self.view = attrs.evolve(self.view, local_msat=self.view.local_msat + f.in_msat)
        if f.out_channel == scid:
            bucket[1] += f.out_msat or 0
            self.view = attrs.evolve(self.view, local_msat=self.view.local_msat - (f.out_msat or 0))
            bucket[2] += f.fee_msat or 0
            bucket[3] += 1
            self.state.routed_out = True
            if f.resolved_time is not None:
                self.holds.append((f.received_time, f.resolved_time - f.received_time))
            if f.received_time >= self.state.hill.window_start:
                self.state.window_fees_msat += f.fee_msat or 0
                self.state.window_forwards += 1
        self.state.last_message_at = max(self.state.last_message_at, int(f.received_time))

    def daily_buckets(self, now: int) -> list[flow.DailyBucket]:
        today = now // DAY
        horizon = self.config.flow_window_days
        for day in [d for d in self.state.buckets if d <= today - horizon - 1]:
            del self.state.buckets[day]
        return [flow.DailyBucket(day_age=today - day, in_msat=v[0], out_msat=v[1], fee_msat=v[2], forwards=v[3])
                for day, v in sorted(self.state.buckets.items(), reverse=True) if 0 <= today - day < horizon]

    def on_fee_cycle(self, msg: FeeCycle, sender: Any) -> None:
        days = self.daily_buckets(msg.now)
        if msg.econ_req is not None:    # answered as of before this cycle, as a separate EconQuery would be
            self.send(sender, ChannelEconReply(msg.econ_req, self.view.scid, self.econ(days)))
        if msg.view is not None:
            self.on_update(msg.view)
        self.config = msg.config
        self.flow_metrics = flow.analyze(self.view, days, msg.config)
        roi, floor = self.assess(msg)
        obs = fees.FeeObservation(
            now=msg.now, channel=self.view, flow=self.flow_metrics,
            fees_earned_msat=self.state.window_fees_msat, forwards_out=self.state.window_forwards,
            has_routed_out_ever=self.state.routed_out, floor_ppm=floor,
            vegas_multiplier=msg.vegas_multiplier, policy=self.policy, marginal_roi=roi, anchor_ppm=msg.anchor_ppm,
            refill_ppm=msg.refill_ppm, control_ppm=msg.control_ppm, home_ppm=msg.home_ppm)
        decision, hill = fees.decide(self.state.hill, obs, msg.config)
        decision, hill = self.valve(decision, hill, msg)
        self.state.last_decision = to_dict(decision)
        if decision.broadcast and not msg.config.dry_run:
            # decide() assumes the broadcast succeeds; keep what to restore if setchannel fails
            self.next_req += 1
            self.broadcast(decision, hill, None)
            return
        if decision.branch == "external" and not decision.broadcast:
            self.send(self.runtime, RecordDecision(decision, "adopted"))   # logged with its time, kept
        elif decision.new_fee_ppm != decision.old_fee_ppm or "htlcmax_msat" in decision.inputs:
            self.send(self.runtime, RecordDecision(decision, "dry_run" if decision.broadcast else "held"))
        if not decision.broadcast:
            self.adopt(hill)
        if self.checkpoint_due(msg.now):
            self.persist()
        else:
            self.light = (self.state.hill.balance, self.state.last_decision, self.state.last_message_at)

    def valve(self, decision: FeeDecision, hill: fees.HillClimbState,
              msg: FeeCycle) -> tuple[FeeDecision, fees.HillClimbState]:
        """The htlcmax valve after the fee decision: its target rides on the fee update, or goes alone as an
        update of its own (branch "htlcmax", the fee unchanged), with the valve's reason appended."""
        valve, hill = htlcmax.decide(self.view, self.flow_metrics.flow_class, decision, hill,
                                     self.policy.strategy, msg.config, msg.now)
        if not valve.send:
            return decision, hill
        inputs = {**decision.inputs, "htlcmax_msat": valve.target_msat, "htlcmax_in_force_msat": valve.in_force_msat}
        if valve.send == "alone":
            fee = self.view.fee_ppm
            return FeeDecision(scid=self.view.scid, at=msg.now, old_fee_ppm=fee, new_fee_ppm=fee, branch="htlcmax",
                               reason=f"{decision.reason}; {valve.reason}", broadcast=True, inputs=inputs), hill
        return attrs.evolve(decision, reason=f"{decision.reason}; {valve.reason}", inputs=inputs), hill

    def assess(self, msg: FeeCycle) -> tuple[float | None, int]:
        """This channel's operating return (None when unknown) and its floor with the stall premium."""
        while self.holds and self.holds[0][0] < msg.now - DAY:
            self.holds.popleft()
        stall = costs.stall_premium(h for _, h in self.holds)
        floor = fees.economic_floor_ppm(msg.chain, msg.vegas_multiplier, True, msg.config) if stall else msg.floor_ppm
        known = msg.earned_30d_msat is not None and msg.rebalance_cost_msat is not None
        roi = costs.marginal_roi(msg.earned_30d_msat, msg.rebalance_cost_msat) if known else None
        self.economics = {"as_of": msg.figures_at, "earned_30d_msat": msg.earned_30d_msat, "rebalance_cost_30d_msat": msg.rebalance_cost_msat,
                          "open_cost_msat": msg.open_cost_msat,
                          "marginal_roi": None if roi is None else round(roi, 4),
                          "stall_premium": stall, "floor_ppm": floor}
        return roi, floor

    def broadcast(self, decision: FeeDecision, hill: fees.HillClimbState, rpc_req: int | None) -> None:
        """setchannel through the runtime; the new state is taken now and undone if the call fails."""
        self.next_req += 1
        s = self.state
        self.pending[self.next_req] = (decision, s.hill, s.window_fees_msat, s.window_forwards, rpc_req)
        self.adopt(hill)
        params = {"id": self.view.scid, "feebase": self.config.base_fee_msat, "feeppm": decision.new_fee_ppm}
        if "htlcmax_msat" in decision.inputs:
            params["htlcmax"] = decision.inputs["htlcmax_msat"]
        self.send(self.runtime, IoRequest(self.next_req, "setchannel", params, "setchannel", self.myAddress))

    def on_manual_fee(self, msg: ManualFee) -> None:
        refusal = fees.manual_fee_refusal(msg.fee_ppm, self.policy, self.config)
        if refusal is not None and not msg.force:
            self.send(self.runtime, RpcFailure(msg.req_id, f"Invalid parameter 'fee_ppm': {refusal}", -32602))
            return
        forced = " (forced past the bounds)" if refusal is not None else ""
        decision = FeeDecision(scid=self.view.scid, at=msg.now, old_fee_ppm=self.view.fee_ppm,
                               new_fee_ppm=msg.fee_ppm, branch="manual", broadcast=True,
                               reason=f"manual: revenue-set-fee {msg.fee_ppm} ppm{forced}; hill climbing goes on "
                                      "from here (use a static policy to pin)")
        self.state.last_decision = to_dict(decision)
        if self.config.dry_run:
            self.send(self.runtime, RecordDecision(decision, "dry_run"))
            self.send(self.runtime, RpcReply(msg.req_id, self.manual_reply(decision, "dry run: not applied")))
            return
        self.broadcast(decision, fees.manual_fee_state(self.state.hill, msg.fee_ppm, msg.now), msg.req_id)

    def manual_reply(self, decision: FeeDecision, message: str) -> dict:
        return {"status": "success", "channel_id": decision.scid, "peer_id": self.view.peer_id,
                "old_fee_ppm": decision.old_fee_ppm, "new_fee_ppm": decision.new_fee_ppm, "message": message}

    def adopt(self, hill: fees.HillClimbState) -> None:
        """Take the new hill-climb state; a new observation window starts with empty counters."""
        if hill.window_start != self.state.hill.window_start:
            self.state.window_fees_msat = 0
            self.state.window_forwards = 0
        self.state.hill = hill

    def on_io_result(self, msg: IoResult) -> None:
        pending = self.pending.pop(msg.req_id, None)
        if pending is None:
            return
        decision, hill_before, fees_before, forwards_before, rpc_req = pending
        if msg.error is None:
            self.view = attrs.evolve(self.view, fee_ppm=decision.new_fee_ppm, fee_base_msat=self.config.base_fee_msat,
                                     htlc_max_msat=decision.inputs.get("htlcmax_msat", self.view.htlc_max_msat))
            self.send(self.runtime, RecordDecision(decision, "applied"))
            if rpc_req is not None:
                self.send(self.runtime, RpcReply(rpc_req, self.manual_reply(
                    decision, f"Fee set to {decision.new_fee_ppm} ppm")))
        else:
            # the fee did not change: the old window goes on, with what it earned meanwhile; but with no
            # answer at all (timeout, socket gone) lightningd may have applied it: the update still counts
            # against max_fee_updates_per_day, so a lost answer can never buy an extra broadcast
            no_answer = msg.error.get("code") is None
            self.state.hill = attrs.evolve(hill_before, update_times=self.state.hill.update_times) \
                if no_answer else hill_before
            self.state.window_fees_msat += fees_before
            self.state.window_forwards += forwards_before
            failed = attrs.evolve(decision, reason=f"{decision.reason} — setchannel failed: {msg.error.get('message')}")
            self.state.last_decision = to_dict(failed)
            self.send(self.runtime, RecordDecision(failed, "failed"))
            if rpc_req is not None:
                self.send(self.runtime, RpcFailure(rpc_req, f"setchannel failed: {msg.error.get('message')}"))
        self.persist()

    # -- rebalancing ----------------------------------------------------------------------------
    def econ(self, days: list[flow.DailyBucket]) -> dict:
        """What the rebalance cycle needs from this channel (`days`: its daily_buckets now): flow class,
        outbound demand, failure counters."""
        return {"flow": self.flow_metrics.flow_class.value if self.flow_metrics else "unknown",
                "out_sats_3d": sum(b.out_msat for b in days if b.day_age < 3) // 1000,
                "out_sats_window": sum(b.out_msat for b in days) // 1000,
                "failures": self.state.rebalance_failures,
                "last_failure_at": self.state.last_rebalance_failure_at or None}

    def on_rebalance_outcome(self, msg: RebalanceOutcome) -> None:
        if msg.success:
            self.state.rebalance_failures = 0
        else:
            self.state.rebalance_failures += 1
            self.state.last_rebalance_failure_at = msg.now
        self.persist()

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict:
        v, s, hill = self.view, self.state, self.state.hill
        metrics = self.flow_metrics
        return {
            "scid": v.scid, "channel_id": v.channel_id, "peer_id": v.peer_id, "opener": v.opener,
            "capacity_msat": v.capacity_msat, "local_msat": v.local_msat,
            "local_ratio": round(v.local_ratio, 4), "peer_connected": v.peer_connected,
            "fee_ppm": v.fee_ppm, "fee_base_msat": v.fee_base_msat,
            "flow_class": metrics.flow_class.value if metrics else "unknown",
            "flow_ratio": round(metrics.flow_ratio, 4) if metrics else 0.0,
            "strategy": self.policy.strategy.value, "rebalance_mode": self.policy.rebalance_mode.value,
            "hive": {"member": self.policy.strategy is Strategy.HIVE, "last_message": s.last_hive_message},
            "hill_climb": converter.unstructure(hill),
            "search": ladder.describe(hill.ladder, (s.last_decision or {}).get("inputs", {}).get("shadow_ppm", 0)),
            "window_fees_msat": s.window_fees_msat, "window_forwards": s.window_forwards,
            "rebalance_failures": s.rebalance_failures,
            "economics": self.economics,
            "flow": to_dict(metrics) if metrics else None,
            "last_decision": s.last_decision,
            "last_message_at": s.last_message_at,
            "messages_handled": self.messages_handled,
            "restarts": self.restarts,
        }
