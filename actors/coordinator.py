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

from actors.channel import ChannelActor
from actors.messages import (BlockAdded, ChannelInit, Crash, ChannelRetired, ChannelsChanged, ChannelStatus,
                             ChannelStatusQuery, ChannelUpdate, ConfigChanged, FeeCycle, ForwardSettled,
                             HealthChanged, IoRequest, IoResult, PeerConnection, PersistFeerate,
                             PoliciesChanged, PolicyUpdate, Retire, RpcReply, Start, StatusRequest, Tick)
from actors.supervision import SupervisedActor
from revops import fees, policy as policy_rules
from revops.model import ChannelView, Policy
from revops.node import parse_channel, sat_per_vb

FIRST_CYCLE_DELAY = 60


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


class CoordinatorActor(SupervisedActor):
    name = "coordinator"

    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.state = CoordinatorState()
        self.checkpoint = CoordinatorState()
        self.children: dict[str, Any] = {}        # scid → ChannelActor address
        self.views: dict[str, ChannelView] = {}
        self.policies: dict[tuple[str, str | None], Policy] = {}
        self.health: dict[str, dict] = {}
        self.node_id = ""
        self.rng = random.Random(0)
        self.next_req = 0
        self.inflight: dict[int, str] = {}        # req_id → tag
        self.cycle: dict[str, Any] = {}           # results gathered for the running fee cycle
        self.status_calls: dict[int, dict] = {}   # req_id → {"expect": n, "channels": [...]}
        self.clboss_unmanaged: dict[str, bool] = {}   # peer → lnfee unmanaged (True) / handed back (False)
        self.restored: dict[str, dict] = {}
        self.restore_buckets: dict[str, list[dict]] = {}
        self.routed_out: frozenset[str] = frozenset()

    def restore_checkpoint(self) -> None:
        self.state = copy.deepcopy(self.checkpoint)
        self.cycle.clear()

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, Start):
            self.on_start(msg, sender)
        elif isinstance(msg, Tick):
            self.on_tick(msg.now)
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
            self.request("listpeerchannels", {}, "channels")
        elif isinstance(msg, BlockAdded):
            self.state.blockheight = msg.height
        elif isinstance(msg, ConfigChanged):
            self.config = msg.config
        elif isinstance(msg, PoliciesChanged):
            self.set_policies(msg.policies)
        elif isinstance(msg, HealthChanged):
            self.health = msg.health
            self.sync_clboss()
        elif isinstance(msg, ChannelRetired):
            self.send(self.runtime, msg)
        elif isinstance(msg, Crash):
            if msg.scid is None:
                raise RuntimeError(msg.text)
            self.send(self.children[msg.scid], msg)

    def request(self, method: str, params: dict, tag: str) -> None:
        self.next_req += 1
        self.inflight[self.next_req] = tag
        self.send(self.runtime, IoRequest(self.next_req, method, params, tag, self.myAddress))

    # -- start ----------------------------------------------------------------------------------
    def on_start(self, msg: Start, sender: Any) -> None:
        self.runtime, self.config, self.node_id, self.health = sender, msg.config, msg.node_id, msg.health
        self.rng = random.Random(msg.node_id)
        self.state.now = msg.now
        self.state.next_fee_at = msg.now + FIRST_CYCLE_DELAY
        self.state.feerate_samples = list(msg.feerate_samples)
        self.restored, self.restore_buckets, self.routed_out = msg.actor_states, msg.buckets, msg.routed_out
        self.policies = {(p.peer_id, p.channel_id): p for p in msg.policies}
        self.sync_channels(msg.channels, msg.now)
        self.checkpoint = copy.deepcopy(self.state)

    def effective_policy(self, view: ChannelView) -> Policy:
        return policy_rules.effective_policy(self.policies.get((view.peer_id, None)),
                                             self.policies.get((view.peer_id, view.scid)), self.state.now,
                                             peer_id=view.peer_id)

    def set_policies(self, policies: tuple[Policy, ...]) -> None:
        self.policies = {(p.peer_id, p.channel_id): p for p in policies}
        for scid, addr in self.children.items():
            self.send(addr, PolicyUpdate(self.effective_policy(self.views[scid])))
        self.sync_clboss()

    def sync_clboss(self) -> None:
        """clboss must not fight our fees: unmanage `lnfee` for peers we price, hand passive ones back.

        Skipped (and shown as such in revenue-status health) when clboss is absent or disabled.
        """
        if not self.config.clboss_enabled or self.health.get("clboss", {}).get("status") != "ok":
            return
        for peer in sorted({v.peer_id for v in self.views.values()}):
            manage = any(policy_rules.manages_fees(self.effective_policy(v))
                         for v in self.views.values() if v.peer_id == peer)
            if self.clboss_unmanaged.get(peer) != manage:
                self.clboss_unmanaged[peer] = manage
                self.request("clboss-unmanage", {"nodeid": peer, "tags": "lnfee" if manage else ""},
                             "clboss")
    def sync_channels(self, channels: tuple[ChannelView, ...], now: int) -> None:
        """Spawn actors for new normal channels, update the others, retire those that left."""
        normal = {c.scid: c for c in channels if c.is_normal and c.scid}
        for scid in [s for s in self.children if s not in normal]:
            self.send(self.children.pop(scid), Retire(now))
            self.views.pop(scid, None)
        for scid, view in normal.items():
            self.views[scid] = view
            if scid in self.children:
                self.send(self.children[scid], ChannelUpdate(view, now))
                continue
            addr = self.createActor(ChannelActor)
            self.children[scid] = addr
            self.send(addr, ChannelInit(view=view, state=self.restored.pop(scid, None),
                                        buckets=self.restore_buckets.pop(scid, []),
                                        routed_out=scid in self.routed_out, policy=self.effective_policy(view),
                                        config=self.config, now=now, runtime=self.runtime))
        self.sync_clboss()

    # -- time -----------------------------------------------------------------------------------
    def on_tick(self, now: int) -> None:
        self.state.now = now
        if now >= self.state.next_fee_at and not self.cycle:
            self.state.next_fee_at = now + self.config.fee_interval
            self.cycle = {"at": now}
            self.request("feerates", {"style": "perkb"}, "cycle_feerates")
            self.request("listpeerchannels", {}, "cycle_channels")

    def on_io_result(self, msg: IoResult) -> None:
        tag = self.inflight.pop(msg.req_id, msg.tag)
        if tag == "clboss" and msg.error is not None:
            self.clboss_unmanaged.clear()   # retried at the next sync
            return
        if tag == "channels":
            if msg.error is None:
                self.sync_channels(self.parse_channels(msg.result), self.state.now)
            return
        if tag in ("cycle_feerates", "cycle_channels") and self.cycle:
            self.cycle[tag] = msg
            if "cycle_feerates" in self.cycle and "cycle_channels" in self.cycle:
                self.run_fee_cycle()

    @staticmethod
    def parse_channels(result: dict) -> tuple[ChannelView, ...]:
        return tuple(ChannelView(**parse_channel(c)) for c in result.get("channels", []))

    def run_fee_cycle(self) -> None:
        cycle, self.cycle = self.cycle, {}
        now = cycle["at"]
        channels_reply, feerates_reply = cycle["cycle_channels"], cycle["cycle_feerates"]
        if channels_reply.error is not None:
            return  # without fresh balances no fee is decided this cycle; the next one retries
        self.sync_channels(self.parse_channels(channels_reply.result), now)
        chain = self.update_vegas(now, feerates_reply)
        multiplier = fees.vegas_floor_multiplier(self.state.vegas)
        self.state.floor_ppm = fees.economic_floor_ppm(chain, multiplier, False, self.config)
        self.state.fee_cycles += 1
        self.state.last_fee_cycle_at = now
        for addr in self.children.values():
            self.send(addr, FeeCycle(now, self.state.floor_ppm, multiplier, self.config))
        self.checkpoint = copy.deepcopy(self.state)

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


    # -- status ---------------------------------------------------------------------------------
    def on_status_request(self, msg: StatusRequest) -> None:
        targets = {s: a for s, a in self.children.items() if msg.scid in (None, s)}
        call = {"expect": len(targets), "channels": [], "scid": msg.scid}
        self.status_calls[msg.req_id] = call
        if not targets:
            self.finish_status(msg.req_id)
        for addr in targets.values():
            self.send(addr, ChannelStatusQuery(msg.req_id))

    def on_channel_status(self, msg: ChannelStatus) -> None:
        call = self.status_calls.get(msg.req_id)
        if call is None:
            return
        call["channels"].append(msg.status)
        if len(call["channels"]) >= call["expect"]:
            self.finish_status(msg.req_id)

    def finish_status(self, req_id: int) -> None:
        call = self.status_calls.pop(req_id)
        s = self.state
        self.send(self.runtime, RpcReply(req_id, {
            "channels": sorted(call["channels"], key=lambda c: c["scid"]),
            "coordinator": {
                "now": s.now, "blockheight": s.blockheight, "fee_cycles": s.fee_cycles,
                "last_fee_cycle_at": s.last_fee_cycle_at, "next_fee_cycle_at": s.next_fee_at,
                "floor_ppm": s.floor_ppm, "vegas_intensity": round(s.vegas.intensity, 4),
                "vegas_floor_multiplier": round(fees.vegas_floor_multiplier(s.vegas), 4),
                "channel_actors": len(self.children), "restarts": self.restarts,
                "messages_handled": self.messages_handled,
            },
        }))


def chain_costs(sat_vb: float) -> fees.ChainCosts:
    """Open and close costs at this feerate (reference §5.3.1: 140 vB open, 200 vB close, clamped)."""
    return fees.ChainCosts(open_cost_sat=min(50_000, max(500, int(sat_vb * 140))),
                           close_cost_sat=min(50_000, max(300, int(sat_vb * 200))), sat_per_vb=sat_vb)
