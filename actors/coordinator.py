"""CoordinatorActor: routes events to channel actors, runs the cycles, supervises the channel set.

It spawns a ChannelActor for every channel in CHANNELD_NORMAL and retires it when the channel leaves
that state; it turns Ticks into fee cycles (feerates → Vegas Reflex → economic floor → each channel
decides) and fans status queries out to the channel actors.
"""
from __future__ import annotations

import copy
import random
from typing import Any

import attrs
from thespian.actors import ActorExitRequest

from actors.channel import ChannelActor
from actors.messages import (BlockAdded, ChannelDirectory, ChannelInit, ChannelRetired, ChannelsChanged, ChannelStatus, Crash, ManualFee,
                             ChannelStatusQuery, ChannelUpdate, ConfigChanged, FeeCycle, ForwardSettled,
                             HealthChanged, IoRequest, IoResult, PeerConnection, PersistFeerate,
                             PoliciesChanged, PolicyUpdate, Retire, RpcReply, Start, StatusRequest, Tick,
                             WaitExpired, ExperimentChanged)
from actors.messages import (ChannelEconReply, EconQuery, ExecutorInit, JobEnded, JobsChanged, LedgerFigures,
                             LedgerQuery, ManualRebalance, PollJobs, RebalanceDebugRequest, RebalanceOutcome,
                             ReserveBudget, ReserveResult, RpcFailure, StartJob)
from actors.messages import HiveMembership, HivePush
from actors.messages import FanOut, Flush, JobSpliced
from actors.messages import ClbossDesired, ClbossInit, ClbossSeen
from actors.clboss import ClbossActor
from actors.sling import SlingExecutorActor
from actors.supervision import SupervisedActor
from revops import rebalance as rb
from revops import anchor, fees, hive as hive_rules, identity, policy as policy_rules
from revops.waits import Wait, Waits
from revops.costs import ChannelCosts, bookkeeper_costs
from revops.model import ChannelView, FlowClass, Policy, RebalanceMode, Strategy
from revops.node import parse_channel, sat_per_vb

FIRST_CYCLE_DELAY = 60
ANCHOR_TAG = "anchor:"
# bookkeeper's event list grows with every forward: read it daily (open costs and refill fees change slowly)
COSTS_REFRESH_SECONDS = 86_400
# thespian's simple system base keeps its queue in a list and takes from its head, moving every message
# queued behind: 5,000 FeeCycles queued at once were all moved at each delivery (7 % of the Tick's instructions
# at 5,000 channels as callgrind counts them). A fan-out goes a chunk at a time, the next chunk queued behind
# the answers to this one.
FAN_OUT_CHUNK = 250


@attrs.define
class CoordinatorState:
    now: int = 0
    next_fee_at: int = 0
    fee_cycles: int = 0
    last_fee_cycle_at: int = 0
    blockheight: int = 0
    vegas: fees.VegasState = attrs.field(factory=fees.VegasState)
    floor_ppm: int = 0
    feerate_samples: list[tuple[int, float]] = attrs.field(factory=list)
    next_costs_at: int = 0
    next_rebalance_at: int = 0
    rebalance_cycles: int = 0
    last_rebalance_cycle_at: int = 0
    last_rebalance_done_at: int = 0     # when a rebalance cycle last reached its decision (metric, alert)


class CoordinatorActor(SupervisedActor):
    name = "coordinator"
    init_message = Start

    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.state = CoordinatorState()
        self.checkpoint = CoordinatorState()
        self.children: dict[str, Any] = {}        # scid → ChannelActor address
        self.views: dict[str, ChannelView] = {}
        self.policies: dict[tuple[str, str | None], Policy] = {}
        self.policy_memo: tuple[int, dict[tuple[str, str], Policy]] = (-1, {})   # (now, (peer, scid) → policy)
        self.health: dict[str, dict] = {}
        self.node_id = ""
        self.rng = random.Random(0)
        self.next_req = 0
        self.inflight: dict[int, str] = {}        # req_id → tag
        self.cycle: dict[str, Any] = {}           # results gathered for the running fee cycle
        self.costs: dict[str, ChannelCosts] = {}  # from bookkeeper, refreshed daily
        self.last_ledger: tuple[int, LedgerFigures | None] = (0, None)
        self.status_calls: dict[int, dict] = {}   # req_id → {"channels": [...], "scid": ...}
        self.waits = Waits()                      # fee cycle, rebalance cycle, status fan-outs (revops/waits.py)
        self.clboss: Any = None                   # the clboss hand-off (actors/clboss.py)
        self.clboss_priced: frozenset[str] | None = None
        self.directory: ChannelDirectory | None = None   # as last told to the runtime
        self.channels_stale = False               # a connect/disconnect/channel event since the last refresh
        self.channels_refresh: tuple[int, int | None] = (-1, None)   # (tick of the last refresh, req in flight)
        self.restored: dict[str, dict] = {}
        self.restore_buckets: dict[str, list[dict]] = {}
        self.routed_out: frozenset[str] = frozenset()
        # rebalancing
        self.executor: Any = None
        self.executor_ready = False
        self.jobs_active: dict[str, dict] = {}    # dest scid → job summary (from the executor)
        self.spliced: dict[str, str] = {}         # old scid → new (a job started before a splice keeps the old)
        self.rb_cycle: dict[str, Any] = {}        # inputs gathered for the running rebalance cycle
        self.next_job_poll_at = 0                 # running sling jobs are polled at least this often
        self.rb_pending: dict[int, dict] = {}     # req_id → what a reservation / manual request is for
        self.last_candidates: list[dict] = []
        # as dicts only when asked for; a destination's source rejections written out only then (rb.Rejections)
        self.last_rejections: list[rb.Rejection] | rb.Rejections = []
        self.last_capital: dict | None = None
        self.last_budget: dict | None = None
        self.drained: dict[str, dict[str, float]] = {}   # source scid → {dest scid: when} (ping-pong guard)
        self.hive_signals = 0                     # HiveMembership + HivePush messages handled
        self.anchors: dict[str, int] = {}         # peer → going rate (ppm) from gossip (revops/anchor.py)
        self.unanchored: set[str] = set()         # peers gossip shows too few other channels toward
        self.refill_ppm: dict[str, int] = {}      # peer → what routing into it costs (last rebalance cycle)
        self.surveyed: dict[str, int] = {}        # peer → when its anchor was last asked for
        self.experiment: Any = None               # revops.experiment.Experiment, the latest (maybe over)

    def answer_degraded(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, (StatusRequest, ManualFee, ManualRebalance, RebalanceDebugRequest)):
            self.send(self.runtime, RpcFailure(msg.req_id, self.degraded))

    def restore_checkpoint(self) -> None:
        self.state = copy.deepcopy(self.checkpoint)
        self.cycle.clear()
        self.rb_cycle.clear()
        self.waits.end(FEE_WAIT)
        self.waits.end(REBALANCE_WAIT)

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ChannelEconReply):     # first: 5,000 in a rebalance cycle at 5,000 channels
            self.on_rebalance_message(msg)
        elif isinstance(msg, Start):
            self.on_start(msg, sender)
        elif isinstance(msg, Tick):
            self.on_tick(msg.now)
            self.tell_clboss(msg)
        elif isinstance(msg, ForwardSettled):
            for scid in {msg.forward.in_channel, msg.forward.out_channel}:
                if scid in self.children:
                    self.send(self.children[scid], msg)
        elif isinstance(msg, IoResult):
            self.on_io_result(msg)
        elif isinstance(msg, ChannelStatus):
            self.on_channel_status(msg)
        elif isinstance(msg, StatusRequest):
            self.on_status_request(msg)
        elif isinstance(msg, (ChannelsChanged, PeerConnection)):
            self.channels_stale = True
            self.refresh_channels()
        elif isinstance(msg, BlockAdded):
            self.state.blockheight = msg.height
        elif isinstance(msg, ConfigChanged):
            self.reschedule(self.config, msg.config)
            self.config = msg.config
            self.tell_clboss(msg)
        elif isinstance(msg, ClbossSeen):
            self.tell_clboss(msg)
        elif isinstance(msg, PoliciesChanged):
            self.set_policies(msg.policies)
        elif isinstance(msg, ExperimentChanged):
            self.experiment = msg.experiment
        elif isinstance(msg, HealthChanged):
            self.health = msg.health
            if self.executor is not None:
                self.send(self.executor, msg)
        elif isinstance(msg, ChannelRetired):
            self.send(self.runtime, msg)
        elif isinstance(msg, LedgerFigures) and self.cycle and msg.req_id == self.cycle.get("ledger_id"):
            self.cycle["cycle_ledger"] = msg
            self.waits.reply(FEE_WAIT, "cycle_ledger")
            self.try_fee_cycle()
        elif isinstance(msg, FanOut):
            self.fan_out(msg.messages)
        elif isinstance(msg, Flush):
            self.tell_channels(self.children, msg)
        elif isinstance(msg, HiveMembership):
            self.hive_signals += 1
            self.tell_channels((v.scid for v in self.views.values() if v.peer_id == msg.peer_id), msg)
        elif isinstance(msg, REBALANCE_MESSAGES):
            self.on_rebalance_message(msg)
        elif isinstance(msg, ManualFee):
            if msg.scid in self.children:
                self.send(self.children[msg.scid], msg)
            else:
                self.send(self.runtime, RpcFailure(msg.req_id, f"Invalid parameter 'channel_id': no channel actor for "
                                                               f"{msg.scid} (neither CHANNELD_NORMAL nor splicing)", -32602))
        elif isinstance(msg, Crash):
            if msg.scid is None:
                raise RuntimeError(msg.text)
            self.send(self.children[msg.scid], ActorExitRequest() if msg.silent else msg)

    def refresh_channels(self) -> None:
        """One listpeerchannels per tick at most, one at a time: a reconnect storm of 1,000 peers asked for
        2,000 full listings (issue 14 item 7); events meanwhile are served by the next refresh."""
        at, in_flight = self.channels_refresh
        if self.channels_stale and in_flight is None and at < self.state.now:
            self.channels_stale = False
            self.channels_refresh = (self.state.now, self.request("listpeerchannels", {}, "channels"))

    def tell_channels(self, scids: Any, msg: Any) -> None:
        for scid in dict.fromkeys(scids):
            if scid in self.children:
                self.send(self.children[scid], msg)

    def fan_out(self, messages: list[tuple[Any, Any]]) -> None:
        """Send (address, message)s in order, FAN_OUT_CHUNK now and the rest in a FanOut to ourselves."""
        for addr, msg in messages[:FAN_OUT_CHUNK]:
            self.send(addr, msg)
        if len(messages) > FAN_OUT_CHUNK:
            self.send(self.myAddress, FanOut(messages[FAN_OUT_CHUNK:]))

    def request(self, method: str, params: dict, tag: str) -> int:
        self.next_req += 1
        self.inflight[self.next_req] = tag
        self.send(self.runtime, IoRequest(self.next_req, method, params, tag, self.myAddress))
        return self.next_req

    # -- start ----------------------------------------------------------------------------------
    def on_start(self, msg: Start, sender: Any) -> None:
        self.runtime, self.config, self.node_id, self.health = sender, msg.config, msg.node_id, msg.health
        self.rng = random.Random(msg.node_id)
        self.state.now = msg.now
        self.state.next_fee_at = msg.now + FIRST_CYCLE_DELAY
        self.state.feerate_samples = list(msg.feerate_samples)
        self.restored, self.restore_buckets, self.routed_out = msg.actor_states, msg.buckets, msg.routed_out
        self.policies = {(p.peer_id, p.channel_id): p for p in msg.policies}
        self.experiment = msg.experiment
        self.clboss = self.createActor(ClbossActor)
        self.send(self.clboss, ClbossInit(self.config, self.runtime, msg.clboss_owned, msg.now))
        self.sync_channels(msg.channels, msg.now)
        self.state.next_rebalance_at = msg.now + FIRST_REBALANCE_DELAY
        self.executor = self.createActor(SlingExecutorActor)
        self.send(self.executor, ExecutorInit(self.config, self.runtime, msg.sling_jobs, msg.now, self.sling_ok()))
        self.checkpoint = copy.deepcopy(self.state)

    def effective_policy(self, view: ChannelView) -> Policy:
        """Remembered until time moves or the policies change: a Tick's fee cycle and rebalance cycle ask
        for every channel's (10,000 at 5,000 channels)."""
        now, memo = self.policy_memo
        if now != self.state.now:
            memo = {}
            self.policy_memo = (self.state.now, memo)
        key = (view.peer_id, view.scid)
        policy = memo.get(key)
        if policy is None:
            policy = memo[key] = policy_rules.effective_policy(
                self.policies.get((view.peer_id, None)), self.policies.get((view.peer_id, view.scid)), self.state.now,
                peer_id=view.peer_id)
        return policy

    def reschedule(self, old: Any, new: Any) -> None:
        """A shorter fee or rebalance interval moves the cycle already scheduled earlier, as if the new interval
        had applied since the last cycle (a longer one applies from the next cycle)."""
        s = self.state
        if s.next_fee_at > 0:
            s.next_fee_at -= max(0, old.fee_interval - new.fee_interval)
        if s.next_rebalance_at > 0:
            s.next_rebalance_at -= max(0, old.rebalance_interval - new.rebalance_interval)

    def set_policies(self, policies: tuple[Policy, ...]) -> None:
        self.policies, self.policy_memo = {(p.peer_id, p.channel_id): p for p in policies}, (-1, {})
        for scid, addr in self.children.items():
            self.send(addr, PolicyUpdate(self.effective_policy(self.views[scid])))
        self.sync_clboss()

    def sync_clboss(self) -> None:
        """Tell the clboss hand-off which peers we price (it reconciles clboss with that, actors/clboss.py)."""
        priced = frozenset(v.peer_id for v in self.views.values()
                           if policy_rules.manages_fees(self.effective_policy(v)))
        if priced != self.clboss_priced:
            self.clboss_priced = priced
            self.tell_clboss(ClbossDesired(priced))

    def tell_clboss(self, msg: Any) -> None:
        if self.clboss is not None:           # from Start on
            self.send(self.clboss, msg)

    def sync_channels(self, channels: tuple[ChannelView, ...], now: int, tell: bool = True) -> None:
        """Spawn actors for new active channels, update the others (a spliced one under its new short channel
        id, history and all), retire those that left. `tell=False`: the caller hands each actor its new view
        (the fee cycle, in FeeCycle: one message per channel, not two)."""
        directory = ChannelDirectory({c.scid: c.peer_id for c in channels if c.scid},
                                     frozenset(c.peer_id for c in channels),
                                     {c.scid: c.channel_id for c in channels if c.scid and c.channel_id})
        if directory != self.directory:
            self.directory = directory
            self.send(self.runtime, directory)   # the runtime re-keys the store first (revops/store.py)
        renames = identity.splices({v.channel_id: s for s, v in self.views.items() if v.channel_id},
                                   {c: s for s, c in directory.channel_ids.items()})
        for old, new in renames.items():
            self.rename_channel(old, new)
        normal = {c.scid: c for c in channels if c.is_active and c.scid}
        for scid in [s for s in self.children if s not in normal]:
            addr = self.children.pop(scid)
            self.send(addr, Retire(now))            # it persists and reports, then exits (no orphaned actors)
            self.send(addr, ActorExitRequest())
            self.views.pop(scid, None)
        for scid, view in normal.items():
            self.views[scid] = view
            if scid in self.children:
                if tell:
                    self.send(self.children[scid], ChannelUpdate(view, now))
                continue
            addr = self.createActor(ChannelActor)
            self.children[scid] = addr
            self.send(addr, ChannelInit(view=view, state=self.restored.pop(scid, None),
                                        buckets=self.restore_buckets.pop(scid, []),
                                        routed_out=scid in self.routed_out, policy=self.effective_policy(view),
                                        config=self.config, now=now, runtime=self.runtime))
        self.sync_clboss()

    def rename_channel(self, old: str, new: str) -> None:
        """A splice gave a channel a new short channel id: its actor, view, policy and costs move with it."""
        if old in self.children:
            self.children[new] = self.children.pop(old)
        self.views[new] = self.views.pop(old)
        for peer, scid in [k for k in self.policies if k[1] == old]:
            self.policies[(peer, new)] = attrs.evolve(self.policies.pop((peer, scid)), channel_id=new)
        self.policy_memo = (-1, {})
        if old in self.costs:
            self.costs[new] = self.costs.pop(old)
        if old in self.drained:
            self.drained[new] = self.drained.pop(old)
        self.spliced = {o: (new if n == old else n) for o, n in self.spliced.items()} | {old: new}
        if self.experiment is not None:
            self.experiment = self.experiment.renamed(old, new)
        if self.executor is not None and any(s == old or j.get("spliced_to") == old
                                             for s, j in self.jobs_active.items()):
            self.send(self.executor, JobSpliced(old, new))

    def busy_channels(self) -> set[str]:
        """Channels a job of ours runs on, under the short channel id it was started with and the one now."""
        return set(self.jobs_active) | {self.spliced.get(s, j.get("spliced_to") or s)
                                        for s, j in self.jobs_active.items()}

    # -- time -----------------------------------------------------------------------------------
    def on_tick(self, now: int) -> None:
        self.state.now = now
        self.sweep_waits(now)
        self.refresh_channels()
        if now >= self.state.next_fee_at and not self.cycle:
            self.state.next_fee_at = now + self.config.fee_interval
            self.cycle = {"at": now}
            self.waits.start(FEE_WAIT, "fee cycle", FEE_INPUTS, now, cycle_timeout(self.config, self.config.fee_interval))
            at, figures = self.last_ledger
            if figures is not None and now - at < self.config.fee_interval:
                self.cycle.update(cycle_ledger=figures, ledger_at=at)   # the rebalance cycle's are fresh enough
                self.waits.reply(FEE_WAIT, "cycle_ledger")
            else:
                self.next_req += 1
                self.cycle.update(ledger_id=self.next_req, ledger_at=now)
                self.send(self.runtime, LedgerQuery(self.next_req, now, self.myAddress))
            self.cycle["ids"] = {self.request("feerates", {"style": "perkb"}, "cycle_feerates"): "cycle_feerates",
                                 self.request("listpeerchannels", {}, "cycle_channels"): "cycle_channels"}
            self.survey_anchors(now)
        if now >= self.state.next_costs_at and self.health.get("bookkeeper", {}).get("status") == "ok":
            self.state.next_costs_at = now + COSTS_REFRESH_SECONDS
            self.request("bkpr-listaccountevents", {}, "costs")
        self.poll_jobs(now)
        self.maybe_rebalance_cycle(now)

    def on_io_result(self, msg: IoResult) -> None:
        tag = self.inflight.pop(msg.req_id, msg.tag)
        if tag.startswith("rb_") or tag == "manual_funds":
            self.on_rebalance_io(tag, msg)
            return
        if tag == "channels":
            if msg.req_id == self.channels_refresh[1]:
                self.channels_refresh = (self.channels_refresh[0], None)
            if msg.error is None:
                self.sync_channels(self.parse_channels(msg.result), self.state.now)
            return
        if tag == "costs":
            if msg.error is None:
                self.costs = bookkeeper_costs(msg.result.get("events", []), {
                    v.channel_id: (scid, v.funding_txid) for scid, v in self.views.items()})
            return
        if tag.startswith(ANCHOR_TAG):
            peer = tag[len(ANCHOR_TAG):]
            found = None if msg.error is not None else \
                anchor.competitor_anchor(msg.result.get("channels", []), self.node_id, peer)
            if found is not None:
                self.anchors[peer] = found
                self.unanchored.discard(peer)
            elif msg.error is None:
                self.unanchored.add(peer)     # gossip answered: too few other channels toward this peer
            return
        if self.cycle and self.cycle["ids"].get(msg.req_id) == tag:   # a late reply of an expired cycle: no
            self.cycle[tag] = msg
            self.waits.reply(FEE_WAIT, tag)
            self.try_fee_cycle()
        if tag == "cycle_channels" and self.rb_cycle and self.rb_cycle["ids"].get(msg.req_id) == "rb_channels":
            self.on_rebalance_io("rb_channels", msg)    # the listing both cycles of this Tick asked for (after)

    # -- bounded waits (revops/waits.py) --------------------------------------------------------
    def sweep_waits(self, now: int) -> None:
        """Every tick: each expired wait is logged, counted and answered with what arrived."""
        for wait in self.waits.expire(now):
            self.send(self.runtime, WaitExpired(wait.what, tuple(wait.missing), now - wait.started,
                                                wait.describe(now)))
            if wait.key == FEE_WAIT and self.cycle:
                self.fee_cycle_expired(wait)
            elif wait.key == REBALANCE_WAIT and self.rb_cycle:
                self.rebalance_cycle_expired(wait)
            elif isinstance(wait.key, tuple) and wait.key[0] == "status":
                self.finish_status(wait.key[1], missing=wait.missing)

    def fee_cycle_expired(self, wait: Wait) -> None:
        """Decide with what arrived: without channels nothing is decided (the next interval retries),
        without feerates the chain floor is unknown, without ledger figures the return is unknown."""
        why = f"no reply before the fee cycle's deadline ({wait.deadline - wait.started} s)"
        for name in wait.missing:
            self.cycle[name] = LedgerFigures(0, None, {}, {}, {}, {}, error=why) if name == "cycle_ledger" else \
                IoResult(0, name, error={"code": None, "message": why})
        self.run_fee_cycle()

    def survey_anchors(self, now: int) -> None:
        """Ask gossip what other nodes charge toward our peers, each peer at most daily."""
        if not self.config.price_anchor:
            return
        for peer in anchor.peers_due((v.peer_id for v in self.views.values()), self.surveyed, now):
            self.surveyed[peer] = now
            self.request("listchannels", {"destination": peer}, ANCHOR_TAG + peer)

    def try_fee_cycle(self) -> None:
        if all(k in self.cycle for k in FEE_INPUTS):
            self.run_fee_cycle()

    @staticmethod
    def parse_channels(result: dict) -> tuple[ChannelView, ...]:
        return tuple(ChannelView(**parse_channel(c)) for c in result.get("channels", []))

    def run_fee_cycle(self) -> None:
        cycle, self.cycle = self.cycle, {}
        self.waits.end(FEE_WAIT)
        now = cycle["at"]
        channels_reply, feerates_reply = cycle["cycle_channels"], cycle["cycle_feerates"]
        if channels_reply.error is not None:
            if self.rb_cycle and "econ_asked" in self.rb_cycle:   # no FeeCycle goes out to carry its query
                self.ask_econ(self.rb_cycle.pop("econ_asked"))
            return  # without fresh balances no fee is decided this cycle; the next one retries
        views = self.parse_channels(channels_reply.result)
        if self.rb_cycle and self.rb_cycle["ids"].get(channels_reply.req_id) == "rb_channels":
            self.rb_cycle["views"] = views         # the rebalance cycle of this Tick reads the same listing
        self.sync_channels(views, now, tell=False)
        econ_asked = self.econ_in_fee_cycle(channels_reply.req_id)
        econ_req = self.rb_cycle["id"] if econ_asked else None
        chain = self.update_vegas(now, feerates_reply)
        multiplier = fees.vegas_floor_multiplier(self.state.vegas)
        self.state.floor_ppm = fees.economic_floor_ppm(chain, multiplier, False, self.config)
        self.state.fee_cycles += 1
        self.state.last_fee_cycle_at = now
        ledger = cycle["cycle_ledger"]
        known = ledger.error is None
        cycles = []
        for scid, addr in self.children.items():
            view, costs = self.views[scid], self.costs.get(scid)
            spent = max(ledger.settled_spend_30d.get(scid, 0), costs.rebalance_fees_msat if costs else 0)
            cycles.append((addr, FeeCycle(
                now, self.state.floor_ppm, multiplier, self.config, chain=chain,
                earned_30d_msat=ledger.earned_30d.get(scid, 0) if known else None,
                rebalance_cost_msat=spent if known else None, open_cost_msat=costs.open_cost_msat if costs else None,
                figures_at=cycle["ledger_at"], anchor_ppm=self.anchors.get(view.peer_id),
                refill_ppm=self.refill_ppm.get(view.peer_id), control_ppm=self.control_ppm(scid, now),
                home_ppm=ledger.node_ppm if view.peer_id in self.unanchored else None, view=view,
                econ_req=econ_req if addr.actorAddressString in econ_asked else None)))
        self.fan_out(cycles)
        self.checkpoint = copy.deepcopy(self.state)
        self.try_rebalance_cycle()    # complete already when every actor it asked was retired by the sync

    def control_ppm(self, scid: str, now: int) -> int | None:
        return None if self.experiment is None else self.experiment.control_ppm(scid, now)

    def update_vegas(self, now: int, reply: IoResult) -> fees.ChainCosts | None:
        """Feed one feerate sample to the Vegas Reflex; returns chain costs for the floor (None if unknown)."""
        rate = sat_per_vb(reply.result) if reply.error is None and reply.result else None
        if rate is None:
            return None
        recent = [r for at, r in self.state.feerate_samples if now - 86400 <= at < now]
        mean = sum(recent) / len(recent) if recent else rate
        self.state.feerate_samples = [(at, r) for at, r in self.state.feerate_samples if at >= now - 2 * 86400]
        self.state.feerate_samples.append((now, rate))
        self.send(self.runtime, PersistFeerate(now, rate))
        if self.config.enable_vegas_reflex:
            self.state.vegas = fees.vegas_update(self.state.vegas, rate, mean, self.rng.random(), self.config)
        return chain_costs(rate)


    # -- rebalancing ----------------------------------------------------------------------------
    def sling_ok(self) -> bool:
        return self.health.get("sling", {}).get("status") == "ok"

    def node_stop(self, code: str, reason: str) -> None:
        self.state.last_rebalance_done_at = self.state.now
        self.last_candidates = []
        self.last_rejections = [rb.Rejection("*", rb.Role.NODE, code, reason)]

    def poll_jobs(self, now: int) -> None:
        """Our running sling jobs are polled every JOB_POLL_SECONDS (their spend is booked and their channel
        freed soon after sling is done with them) and before every rebalance cycle (so a finished job has
        ended before the cycle decides)."""
        cycle_due = now >= self.state.next_rebalance_at and not self.rb_cycle
        if self.executor is None or not (cycle_due or now >= self.next_job_poll_at):
            return
        self.next_job_poll_at = now + min(rb.JOB_POLL_SECONDS, self.config.rebalance_interval)
        self.send(self.executor, PollJobs(now, self.config))

    def maybe_rebalance_cycle(self, now: int) -> None:
        """Every rebalance_interval (our jobs were just polled, `poll_jobs`): gather inputs (all through
        messages) and decide."""
        if self.executor is None or now < self.state.next_rebalance_at or self.rb_cycle:
            return   # a running cycle ends by its inputs or by its wait's deadline (swept first)
        self.state.next_rebalance_at = now + self.config.rebalance_interval
        self.state.rebalance_cycles += 1
        self.state.last_rebalance_cycle_at = now
        if not self.sling_ok():
            status = self.health.get("sling", {}).get("status", "unknown")
            self.node_stop("sling_unavailable", f"sling health is {status}: no rebalancing")
            return
        if not self.executor_ready:
            self.node_stop("starting", "the sling executor has not loaded our job registry yet")
            return
        self.next_req += 1
        self.rb_cycle = {"at": now, "id": self.next_req, "econ": {}, "silent": set()}
        self.waits.start(REBALANCE_WAIT, "rebalance cycle", [*RB_INPUTS, *self.children], now,
                         cycle_timeout(self.config, self.config.rebalance_interval))
        self.send(self.runtime, LedgerQuery(self.next_req, now, self.myAddress))
        shared = self.fee_cycle_listing(now)
        if shared:   # each channel actor answers in the fee cycle's FeeCycle, before it decides (run_fee_cycle)
            self.rb_cycle["econ_asked"] = dict(self.children)
        else:
            self.ask_econ(self.children)
        self.rb_cycle["ids"] = {self.request(method, params, tag): tag for method, params, tag in (
            ("listpeerchannels", {}, "rb_channels"), ("listfunds", {}, "rb_funds"),
            ("sling-jobsettings", {}, "rb_jobsettings"), ("listchannels", {"destination": self.node_id}, "rb_lasthop"))
            if not (shared and tag == "rb_channels")}
        if shared:
            self.rb_cycle["ids"][shared] = "rb_channels"

    def fee_cycle_listing(self, now: int) -> int | None:
        """The fee cycle's listpeerchannels request of this same Tick, still in flight: the rebalance cycle
        reads that listing too (13 MB at 5,000 channels), handed to it after the fee cycle has used it."""
        if not self.cycle or self.cycle["at"] != now or "cycle_channels" in self.cycle:
            return None
        return next((req for req, tag in self.cycle["ids"].items() if tag == "cycle_channels"), None)

    def ask_econ(self, children: dict[str, Any]) -> None:
        """The running rebalance cycle's EconQuery to these channel actors (scid → address)."""
        self.fan_out([(addr, EconQuery(self.rb_cycle["id"], self.rb_cycle["at"])) for addr in children.values()])

    def econ_in_fee_cycle(self, channels_req: int) -> dict[str, str]:
        """When the rebalance cycle of this Tick reads the fee cycle's listing, the fee cycle carries its econ
        query: one message per channel fewer (5,000 at 5,000 channels). Call after `sync_channels`. Returns
        the actors to ask (by address string; a spliced channel's actor is asked under its old scid); an actor
        retired by the sync counts as answered (a channel no longer active is neither source nor destination)."""
        if not self.rb_cycle or self.rb_cycle["ids"].get(channels_req) != "rb_channels":
            return {}
        asked = {addr.actorAddressString: scid for scid, addr in self.rb_cycle.pop("econ_asked", {}).items()}
        live = {addr.actorAddressString for addr in self.children.values()}
        for addr in [a for a in asked if a not in live]:
            self.waits.reply(REBALANCE_WAIT, asked.pop(addr))
        return asked

    def rebalance_cycle_expired(self, wait: Wait) -> None:
        """Decide with what arrived, failing closed: a channel whose actor did not answer is neither source
        nor destination; a missing ledger, channel list or sling job list stops the cycle."""
        why = f"no reply before the rebalance cycle's deadline ({wait.deadline - wait.started} s)"
        for name in wait.missing:
            if name == "ledger":
                self.rb_cycle[name] = LedgerFigures(0, None, {}, {}, {}, {}, error=why)
            elif name in RB_INPUTS:
                self.rb_cycle[name] = IoResult(0, name, error={"code": None, "message": why})
            else:
                self.rb_cycle["silent"].add(name)
        self.run_rebalance_cycle()

    def on_rebalance_message(self, msg: Any) -> None:
        if isinstance(msg, ChannelEconReply):
            if self.rb_cycle and msg.req_id == self.rb_cycle["id"] and self.waits.reply(REBALANCE_WAIT, msg.scid):
                self.rb_cycle["econ"][msg.scid] = msg.data
                self.try_rebalance_cycle()
        elif isinstance(msg, LedgerFigures):
            if self.rb_cycle and msg.req_id == self.rb_cycle["id"]:
                self.rb_cycle["ledger"] = msg
                self.last_ledger = (self.rb_cycle["at"], msg)
                self.waits.reply(REBALANCE_WAIT, "ledger")
                self.try_rebalance_cycle()
        elif isinstance(msg, ReserveResult):
            self.on_reserved(msg)
        elif isinstance(msg, JobsChanged):
            self.jobs_active, self.executor_ready = dict(msg.active), True
        elif isinstance(msg, JobEnded):
            self.jobs_active.pop(msg.scid, None)
            if msg.scid in self.children:
                self.send(self.children[msg.scid], RebalanceOutcome(msg.scid, msg.success, msg.now))
        elif isinstance(msg, ManualRebalance):
            self.on_manual(msg)
        elif isinstance(msg, RebalanceDebugRequest):
            self.send(self.runtime, RpcReply(msg.req_id, self.rebalance_debug()))

    def on_rebalance_io(self, tag: str, msg: IoResult) -> None:
        if tag == "manual_funds":
            self.on_manual_funds(msg)
        elif self.rb_cycle and self.rb_cycle["ids"].get(msg.req_id) == tag:   # late replies are ignored
            self.rb_cycle[tag] = msg
            self.waits.reply(REBALANCE_WAIT, tag)
            self.try_rebalance_cycle()

    def try_rebalance_cycle(self) -> None:
        wait = self.waits.open.get(REBALANCE_WAIT)
        if wait is not None and wait.complete:
            self.run_rebalance_cycle()

    def run_rebalance_cycle(self) -> None:
        cyc, self.rb_cycle = self.rb_cycle, {}
        self.waits.end(REBALANCE_WAIT)
        now, cfg, figures = cyc["at"], self.config, cyc["ledger"]
        self.state.last_rebalance_done_at = now
        if figures.error is not None or figures.budget is None:
            self.node_stop("ledger", f"budget ledger unreadable ({figures.error}): fail closed")
            return
        for tag, code in (("rb_channels", "channels_unknown"), ("rb_jobsettings", "sling_unavailable")):
            if cyc[tag].error is not None:
                self.node_stop(code, f"{tag[3:]} failed: {cyc[tag].error.get('message')}: fail closed")
                return
        funds = cyc["rb_funds"]
        capital = None if funds.error is not None else parse_capital(funds.result)
        self.last_capital = attrs.asdict(capital) if capital else None
        budget = figures.budget
        self.last_budget = {"daily_budget_msat": budget.daily_budget_msat, "spent_24h_msat": budget.spent_24h_msat,
                            "reserved_msat": budget.reserved_msat, "remaining_msat": budget.remaining_msat,
                            "channel_spend_30d_msat": dict(budget.channel_spend_30d_msat)}
        ours = self.busy_channels()
        settings = cyc["rb_jobsettings"].result if isinstance(cyc["rb_jobsettings"].result, dict) else {}
        unavailable = {s.replace(":", "x") for s, js in settings.items()
                       if s.replace(":", "x") not in ours and isinstance(js, dict) and js.get("sat_direction") == "pull"}
        econs: list[rb.ChannelEcon] = []
        history: dict[str, list[int]] = {}
        answers, silent = cyc["econ"], cyc["silent"]
        for view in cyc["views"] if "views" in cyc else self.parse_channels(cyc["rb_channels"].result):
            scid = view.scid
            data = answers.get(scid) or {}
            if not view.is_normal or not scid or scid in silent or "degraded" in data:
                continue   # an actor that did not answer, or cannot run, is neither source nor destination
            history.setdefault(view.peer_id, []).extend(figures.history_ppm.get(scid, []))
            policy = self.effective_policy(view)
            if self.control_ppm(scid, now) is not None:   # the control arm is left alone: no rebalancing
                policy = attrs.evolve(policy, rebalance_mode=RebalanceMode.DISABLED)
            econs.append(rb.ChannelEcon(
                view=view, flow=FlowClass(data.get("flow", "unknown")), policy=policy,
                fee_ppm=view.fee_ppm, out_sats_3d=data.get("out_sats_3d", 0),
                out_sats_window=data.get("out_sats_window", 0),
                earned_30d_msat=figures.earned_30d.get(scid, 0),
                rebalance_spend_30d_msat=figures.settled_spend_30d.get(scid, 0),
                failure_count=data.get("failures", 0), last_failure_at=data.get("last_failure_at") or None,
                last_success_at=figures.last_success.get(scid),
                last_drained_for={**figures.drained.get(scid, {}), **self.drained.get(scid, {})}))
        gossip = cyc["rb_lasthop"]   # unknown (error) → the default estimate, which errs high
        last_hop = rb.last_hop_ppm(gossip.result, cfg.sling_chunk_size_sats) if gossip.error is None else {}
        inbound = {peer: rb.estimate_inbound_fee(ppms, last_hop.get(peer), cfg) for peer, ppms in history.items()}
        self.refill_ppm = {peer: est.ppm for peer, est in inbound.items()}   # the fee search prices balance by it
        candidates, rejections = rb.find_candidates(econs, inbound, budget, capital, ours, now, cfg, unavailable)
        operator_jobs = {s.replace(":", "x") for s in settings} - ours
        for c in [c for c in candidates if c.dest_scid in operator_jobs]:
            candidates.remove(c)
            rejections.append(rb.Rejection(c.dest_scid, rb.Role.DESTINATION, "operator_job",
                                           "sling already has a job on this channel that is not ours"))
        self.last_candidates = [{**attrs.asdict(c), "source_scids": list(c.source_scids)} for c in candidates]
        self.last_rejections = rejections
        if cfg.dry_run:
            return
        by_scid = {e.scid: e for e in econs}
        for c in candidates:
            e = by_scid[c.dest_scid]
            cap = None if c.hive else int(cfg.channel_cap_pct * max(0, e.earned_30d_msat - e.rebalance_spend_30d_msat))
            self.reserve(c, e.view.local_msat, "auto", None, cap, now)

    def reserve(self, c: rb.Candidate, local_msat: int, kind: str, rpc_req_id: int | None, cap: int | None,
                now: int, push: ManualRebalance | None = None) -> None:
        self.next_req += 1
        res_id = f"rb-{now}-{c.dest_scid}-{self.next_req}"
        self.rb_pending[self.next_req] = {"candidate": c, "local_msat": local_msat, "kind": kind, "rpc": rpc_req_id,
                                          "now": now, "push": push}
        self.jobs_active.setdefault(c.dest_scid, {"phase": "reserving"})
        self.send(self.runtime, ReserveBudget(self.next_req, res_id, c.dest_scid, c.max_fee_msat, cap, now,
                                              self.myAddress, hive_sat=c.amount_sat if c.hive else 0))

    def on_reserved(self, msg: ReserveResult) -> None:
        p = self.rb_pending.pop(msg.req_id, None)
        if p is None:
            return
        c = p["candidate"]
        if p["push"] is not None:
            self.hive_push(p["push"], msg.ok, f"{msg.reason}; starting the sling job" if msg.ok else msg.reason)
        if not msg.ok:
            if self.jobs_active.get(c.dest_scid, {}).get("phase") == "reserving":
                self.jobs_active.pop(c.dest_scid)
            if p["rpc"] is not None:
                self.send(self.runtime, RpcFailure(p["rpc"], f"rebalance not started: {msg.reason}"))
            else:
                self.last_rejections.append(rb.Rejection(c.dest_scid, rb.Role.DESTINATION, "reservation", msg.reason))
            return
        for src in c.source_scids:
            self.drained.setdefault(src, {})[c.dest_scid] = p["now"]
        self.send(self.executor, StartJob(c, msg.res_id, p["local_msat"], p["kind"], p["now"], p["rpc"]))

    def on_manual(self, msg: ManualRebalance) -> None:
        """revenue-rebalance: checked here, priced by the caller's max fee, always inside the daily budget.

        Into a hive peer it is a cl-hive push: bounded per call and per 24 h, priced by the strategic
        exemption's tolerance when no max fee is given, and told to both channel actors (HivePush).
        """
        dst_view = self.views.get(msg.to_channel)
        push = msg if dst_view is not None and self.effective_policy(dst_view).strategy is Strategy.HIVE else None

        def refuse(text: str, code: int = -32000) -> None:
            if push is not None:
                self.hive_push(push, False, text)
            self.send(self.runtime, RpcFailure(msg.req_id, text, code))

        if not self.sling_ok():
            refuse(f"sling is not available (health: {self.health.get('sling', {}).get('status', 'unknown')})")
            return
        if not self.executor_ready:
            refuse("the sling executor has not loaded our job registry yet; try again shortly")
            return
        for field, scid in (("from_channel", msg.from_channel), ("to_channel", msg.to_channel)):
            if scid not in self.views or not self.views[scid].is_normal:
                refuse(f"Invalid parameter '{field}': {scid} is not a channel in CHANNELD_NORMAL", -32602)
                return
        src, dst = self.views[msg.from_channel], self.views[msg.to_channel]
        if src.peer_id == dst.peer_id:
            refuse("Invalid parameter 'from_channel': same peer as to_channel (liquidity would go in a circle)",
                   -32602)
            return
        busy = self.busy_channels()
        if dst.scid in busy or src.scid in busy:
            refuse(f"a job of ours already runs on {dst.scid if dst.scid in busy else src.scid}")
            return
        if len(self.jobs_active) >= self.config.max_concurrent_jobs:
            refuse(f"{len(self.jobs_active)} jobs of ours running (max_concurrent_jobs {self.config.max_concurrent_jobs})")
            return
        if not msg.force:
            if not rb.may_fill(self.effective_policy(dst)):
                refuse(f"policy of {dst.scid} ({self.effective_policy(dst).rebalance_mode.value}) forbids filling; "
                       "use force=true to override")
                return
            if not rb.may_drain(self.effective_policy(src)):
                refuse(f"policy of {src.scid} ({self.effective_policy(src).rebalance_mode.value}) forbids draining; "
                       "use force=true to override")
                return
        if push is not None and (why := hive_rules.push_refusal(msg.amount_sat, self.config)):
            refuse(why, -32602)
            return
        amount_msat = msg.amount_sat * rb.MSAT_PER_SAT
        if amount_msat > dst.receivable_msat or amount_msat > src.spendable_msat:
            refuse(f"Invalid parameter 'amount_sats': {msg.amount_sat} sat exceeds what {src.scid} can send "
                   f"({src.spendable_msat // 1000} sat) or {dst.scid} can receive ({dst.receivable_msat // 1000} sat)",
                   -32602)
            return
        fee_sats = hive_rules.push_fee_limit_sats(msg.max_fee_sats, self.config) if push else msg.max_fee_sats
        maxppm = fee_sats * rb.PPM // msg.amount_sat if fee_sats is not None else rb.DEFAULT_INBOUND_PPM
        max_fee = amount_msat * maxppm // rb.PPM
        c = rb.Candidate(dest_scid=dst.scid, dest_peer=dst.peer_id, source_scids=(src.scid,),
                         amount_sat=msg.amount_sat, max_fee_msat=max_fee, maxppm=maxppm, expected_fee_msat=max_fee,
                         expected_income_msat=0, expected_profit_msat=0, inbound_ppm=maxppm,
                         hive=push is not None,
                         reason=f"revenue-rebalance{' (hive push)' if push else ''}{' (forced)' if msg.force else ''}")
        if max_fee <= 0:
            refuse("Invalid parameter 'max_fee_sats': the fee limit rounds to 0 ppm", -32602)
            return
        if self.config.dry_run:
            self.dry_run_rebalance(msg, c, push)
            return
        req = self.request("listfunds", {}, "manual_funds")
        self.rb_pending[-req] = {"candidate": c, "local_msat": dst.local_msat, "rpc": msg.req_id, "now": msg.now,
                                 "push": push}

    def dry_run_rebalance(self, msg: ManualRebalance, c: rb.Candidate, push: ManualRebalance | None) -> None:
        """Dry-run: say what would have started; reserve nothing, create no sling job."""
        if push is not None:
            self.hive_push(push, False, "dry-run: no sling job started")
        self.send(self.runtime, RpcReply(msg.req_id, {
            "status": "dry_run", "would_start": {
                "to_channel": c.dest_scid, "from_channels": list(c.source_scids), "amount_sats": c.amount_sat,
                "maxppm": c.maxppm, "max_fee_msat": c.max_fee_msat, "reason": c.reason}}))

    def on_manual_funds(self, msg: IoResult) -> None:
        p = self.rb_pending.pop(-msg.req_id, None)
        if p is None:
            return
        ok, why = rb.capital_ok(None if msg.error is not None else parse_capital(msg.result), self.config)
        c = p["candidate"]
        balance = channel_balance(msg.result, c.dest_scid) if ok else None
        if ok and balance is None:
            ok, why = False, f"no fresh balance of {c.dest_scid} in listfunds"
        if not ok:
            if p["push"] is not None:
                self.hive_push(p["push"], False, why)
            self.send(self.runtime, RpcFailure(p["rpc"], f"rebalance not started: {why}"))
            return
        local, _capacity = balance
        self.reserve(c, local, "manual", p["rpc"], None, p["now"], p["push"])

    def hive_push(self, msg: ManualRebalance, accepted: bool, reason: str) -> None:
        """Tell the destination and source actors what became of a cl-hive push."""
        self.hive_signals += 1
        self.tell_channels((msg.to_channel, msg.from_channel),
                           HivePush(msg.to_channel, msg.from_channel, msg.amount_sat, msg.max_fee_sats, accepted,
                                    reason, msg.now))

    def rebalance_debug(self) -> dict:
        s = self.state
        return {"sling": self.health.get("sling", {}).get("status", "unknown"),
                "executor_ready": self.executor_ready, "dry_run": self.config.dry_run,
                "rebalance_cycles": s.rebalance_cycles, "last_cycle_at": s.last_rebalance_cycle_at,
                "next_cycle_at": s.next_rebalance_at,
                "capital": {"figures": self.last_capital, "min_wallet_reserve_sats": self.config.min_wallet_reserve,
                            "ok": rb.capital_ok(rb.CapitalState(**self.last_capital) if self.last_capital else None,
                                                self.config)},
                "budget": self.last_budget, "active_jobs": self.jobs_active,
                "candidates": self.last_candidates, "rejections": [rejection_dict(r) for r in self.last_rejections]}

    # -- status ---------------------------------------------------------------------------------
    def on_status_request(self, msg: StatusRequest) -> None:
        targets = {s: a for s, a in self.children.items() if msg.scid in (None, s)}
        self.status_calls[msg.req_id] = {"channels": [], "scid": msg.scid, "asked_at": self.state.now}
        self.waits.start(("status", msg.req_id), "status fan-out", targets, self.state.now,
                         self.config.rpc_timeout_seconds)
        if not targets:
            self.finish_status(msg.req_id)
        for addr in targets.values():
            self.send(addr, ChannelStatusQuery(msg.req_id))

    def on_channel_status(self, msg: ChannelStatus) -> None:
        wait = self.waits.reply(("status", msg.req_id), msg.scid)
        if wait is None:
            return
        self.status_calls[msg.req_id]["channels"].append(msg.status)
        if wait.complete:
            self.finish_status(msg.req_id)

    def finish_status(self, req_id: int, missing: list[str] = ()) -> None:
        """The answer, complete or (after the deadline) partial: `unanswered` names the silent actors."""
        self.waits.end(("status", req_id))
        call = self.status_calls.pop(req_id)
        s = self.state
        self.send(self.runtime, RpcReply(req_id, {
            "asked_at": call["asked_at"],          # the channels' figures are as of then (a partial answer comes later)
            "channels": sorted((c for c in call["channels"] if "degraded" not in c), key=lambda c: c["scid"]),
            "degraded_channels": sorted((c for c in call["channels"] if "degraded" in c), key=lambda c: c["scid"]),
            "unanswered": list(missing),
            "coordinator": {
                "now": s.now, "blockheight": s.blockheight, "fee_cycles": s.fee_cycles,
                "last_fee_cycle_at": s.last_fee_cycle_at, "next_fee_cycle_at": s.next_fee_at,
                "last_rebalance_done_at": s.last_rebalance_done_at,
                "waits_open": sorted(w.what for w in self.waits.open.values()),
                "waits_expired": dict(self.waits.expired),
                "floor_ppm": s.floor_ppm, "vegas_intensity": round(s.vegas.intensity, 4),
                "vegas_floor_multiplier": round(fees.vegas_floor_multiplier(s.vegas), 4),
                "channel_actors": len(self.children), "restarts": self.restarts,
                "hive": {"member_peers": sorted(p for (p, c), pol in self.policies.items()
                                                if c is None and hive_rules.is_member(pol)),
                         "signals_handled": self.hive_signals},
                "messages_handled": self.messages_handled,
                "rebalancing": {"enabled": self.sling_ok(),
                                "sling": self.health.get("sling", {}).get("status", "unknown"),
                                "cycles": s.rebalance_cycles, "last_cycle_at": s.last_rebalance_cycle_at,
                                "active_jobs": sorted(self.jobs_active)},
            },
        }))


REBALANCE_MESSAGES = (ChannelEconReply, LedgerFigures, ReserveResult, JobsChanged, JobEnded, ManualRebalance,
                      RebalanceDebugRequest)
FIRST_REBALANCE_DELAY = 2 * FIRST_CYCLE_DELAY    # after the first fee cycle: channel actors have flow analysis
RB_INPUTS = ("rb_channels", "rb_funds", "rb_jobsettings", "rb_lasthop", "ledger")
FEE_INPUTS = ("cycle_feerates", "cycle_channels", "cycle_ledger")
FEE_WAIT, REBALANCE_WAIT = "fee", "rebalance"
IO_ATTEMPTS = 3          # the runtime's bounded retry of one call (Runtime.rpc_attempts)


def cycle_timeout(config: Any, interval: int) -> int:
    """How long a cycle waits for its inputs: every retry of one call, never past the next interval."""
    return min(interval, IO_ATTEMPTS * config.rpc_timeout_seconds + 2 * IO_ATTEMPTS)


def rejection_dict(r: rb.Rejection) -> dict:
    return {"scid": r.scid, "role": r.role.value, "code": r.code, "reason": r.reason, "dest_scid": r.dest_scid}


def parse_capital(result: Any) -> rb.CapitalState | None:
    """listfunds → confirmed, unreserved on-chain outputs + our side of normal channels; None if unreadable."""
    try:
        onchain = sum(int(o["amount_msat"]) for o in result["outputs"]
                      if o.get("status") == "confirmed" and not o.get("reserved", False))
        local = sum(int(c.get("our_amount_msat", 0)) for c in result["channels"] if c.get("state") == "CHANNELD_NORMAL")
        return rb.CapitalState(onchain_msat=onchain, channels_local_msat=local)
    except (KeyError, TypeError, ValueError):
        return None


def channel_balance(result: Any, scid: str) -> tuple[int, int] | None:
    """listfunds → (our side, capacity) msat of the normal channel `scid`; None if absent or unreadable."""
    try:
        for c in result["channels"]:
            if c.get("short_channel_id") == scid and c.get("state") == "CHANNELD_NORMAL":
                return int(c["our_amount_msat"]), int(c["amount_msat"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None


def chain_costs(sat_vb: float) -> fees.ChainCosts:
    """Open and close costs at this feerate (reference §5.3.1: 140 vB open, 200 vB close, clamped)."""
    return fees.ChainCosts(open_cost_sat=min(50_000, max(500, int(sat_vb * 140))),
                           close_cost_sat=min(50_000, max(300, int(sat_vb * 200))), sat_per_vb=sat_vb)
