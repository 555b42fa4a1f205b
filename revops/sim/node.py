"""SimNode: one simulated Core Lightning v25.12.1 node and its market.

Answers JSON-RPC calls like lightningd (plus emulated sling / clboss / bookkeeper), emits notifications
shaped like the captured fixtures, and advances a virtual clock through a heap of timed events.
See docs/simulator.md.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import itertools
import json
import os
import random
from datetime import datetime, timezone
from typing import Any, Callable

import attrs
from pyln.client import RpcError

from . import market as mk
from .bookkeeper import Bookkeeper
from .clboss import Clboss
from .competitors import Competitor, Competitors
from .scenario import Scenario
from .plugin_opts import json_text, option_value
from .sling import Sling
from . import versions

DAY = 86400
NORMAL = "CHANNELD_NORMAL"
AWAITING = "CHANNELD_AWAITING_LOCKIN"
SPLICING = "CHANNELD_AWAITING_SPLICE"   # forwards as in NORMAL (lightningd's channel_state_changed schema)
LIVE = (NORMAL, SPLICING)
U32 = 2**32 - 1
U64MAX = 18446744073709551615

WIRE_TEMPORARY_CHANNEL_FAILURE = (4103, "WIRE_TEMPORARY_CHANNEL_FAILURE")
WIRE_FEE_INSUFFICIENT = (4108, "WIRE_FEE_INSUFFICIENT")
WIRE_AMOUNT_BELOW_MINIMUM = (4107, "WIRE_AMOUNT_BELOW_MINIMUM")

COMMIT_WEIGHT = 2905      # weight CLN reserves for the opener's commitment tx fee (anchors, 1 spare HTLC)
ANCHOR_SAT = 660          # two 330-sat anchor outputs, paid by the opener
# A force close resolved on chain (docs/simulator.md "Force closes"): CLN's unilateral-close estimate for an
# anchor channel without HTLCs (feerates `unilateral_close_satoshis`), BOLT 3's weight per untrimmed HTLC
# output on the commitment, and BOLT 3's second-stage HTLC transactions.
UNILATERAL_CLOSE_WEIGHT = 1112
HTLC_OUTPUT_WEIGHT = 172
HTLC_TIMEOUT_WEIGHT = 663
# A splice transaction we build: the old funding input (2-of-2 witness), one wallet input, the new funding
# output and change, about 250 vB (docs/simulator.md "Splices"); its fee is ours.
SPLICE_WEIGHT = 1000
HTLC_SUCCESS_WEIGHT = 703
DUST_LIMIT_MSAT = 546_000  # an HTLC below it is trimmed from the commitment: its value goes to the miners
# Bumped whenever a change to the market model changes run results: bench caches key on it.
SIM_VERSION = 3


@functools.lru_cache(maxsize=1 << 16)
def _h(*parts: Any) -> str:
    """Deterministic fake ids/txids/addresses; memoised: listpeerchannels asks for the same ones each call."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int((t % 1) * 1000):03d}Z"


def cln_fee(base: int, ppm: int, amount_msat: int) -> int:
    """CLN's forwarding fee: base + floor(ppm * amount / 1e6)."""
    return base + (ppm * amount_msat) // 1_000_000


@attrs.define
class Ledger:
    """Ground truth of a run (integer msat for money)."""
    fees_earned_msat: int = 0
    forwards_settled: int = 0
    forwards_failed_liquidity: int = 0
    forwards_failed_fee: int = 0
    forwards_failed_downstream: int = 0
    forwards_failed_other: int = 0
    payments_priced_out: int = 0
    gossip_suppressed: int = 0     # fee updates the network's rate limit did not propagate
    payments_no_inbound: int = 0
    payments_arrived: int = 0
    payments_wanted: int = 0       # every payment that wanted to route through us (priced out or not)
    wtp_msat: int = 0              # the market's willingness to pay: the sum of those payments' fee tolerances
    volume_settled_msat: int = 0
    rebalance_cost_msat: int = 0
    rebalanced_msat: int = 0
    rebalances_succeeded: int = 0
    rebalances_failed: int = 0
    force_closes: int = 0          # channels forced on chain by a stuck HTLC
    onchain_fee_msat: int = 0      # their commitment, anchor and HTLC claim fees
    htlc_lost_msat: int = 0        # HTLC values trimmed or not worth claiming at the feerate then
    fee_updates: dict = attrs.field(factory=dict)          # scid -> {day_index: count}
    fees_by_channel_msat: dict = attrs.field(factory=dict)  # scid (outgoing) -> msat
    volume_out_by_channel_msat: dict = attrs.field(factory=dict)

    def as_dict(self) -> dict:
        return attrs.asdict(self)

    @property
    def onchain_cost_msat(self) -> int:
        return self.onchain_fee_msat + self.htlc_lost_msat

    @property
    def net_profit_msat(self) -> int:
        """What every benchmark ranks by: fees earned − rebalance fees − on-chain cost of force closes."""
        return self.fees_earned_msat - self.rebalance_cost_msat - self.onchain_cost_msat


@attrs.define(eq=False)
class Chan:
    name: str
    peer_id: str
    scid: str
    channel_id: str
    funding_txid: str
    funding_outnum: int
    capacity_msat: int
    to_us_msat: int
    opener: str
    fee_base: int
    fee_ppm: int
    htlcmin: int
    htlcmax: int
    max_accepted_htlcs: int
    opened_time: float
    pushed_msat: int
    state: str = NORMAL
    prev_fee: tuple | None = None
    prev_fee_until: float = 0.0
    fee_hist_t: list = attrs.field(factory=list)
    fee_hist_v: list = attrs.field(factory=list)
    gossip_t: list = attrs.field(factory=list)   # the updates the network relayed: what senders price
    gossip_v: list = attrs.field(factory=list)   # (fee base, fee ppm, htlc_maximum_msat) of each
    gossip_tokens: float = 0.0      # the network's rate-limit bucket for this channel's updates
    gossip_token_t: float = 0.0
    remote_fee_base: int = 1000
    remote_fee_ppm: int = 100
    state_changes: list = attrs.field(factory=list)
    held: list = attrs.field(factory=list)
    next_in_id: int = 0
    next_out_id: int = 0
    stats: dict = attrs.field(factory=lambda: dict.fromkeys(
        ["in_payments_offered", "in_offered_msat", "in_payments_fulfilled", "in_fulfilled_msat",
         "out_payments_offered", "out_offered_msat", "out_payments_fulfilled", "out_fulfilled_msat"], 0))
    min_to_us: int = 0
    max_to_us: int = 0
    last_update: int = 0
    closed_height: int | None = None
    lockin_at: float | None = None
    splice: dict | None = None      # the splice in flight: its funding outpoint, amount and lock-in height
    first_scid: str = ""            # the scid it opened with: its scid aliases never change
    past_scids: list = attrs.field(factory=list)   # the short channel ids it had before each splice

    @property
    def reserve(self) -> int:
        return max(546000, self.capacity_msat // 100 // 1000 * 1000)

    def set_to_us(self, v: int) -> None:
        self.to_us_msat = v
        if v < self.min_to_us:
            self.min_to_us = v
        if v > self.max_to_us:
            self.max_to_us = v


@attrs.frozen
class DynamicOption:
    """A plugin's dynamic option as lightningd knows it: its type and the plugin's side of `setconfig`."""

    type: str                                  # the manifest's type: "int", "bool" or "string"
    on_change: Callable[[str, Any], None]      # raises RpcException / RpcError to refuse the value


def setconfig_result(name: str, value: Any, source: str, plugin: str | None = None) -> dict:
    """setconfig's answer (the `config` object, as listconfigs shows one entry)."""
    kind = {bool: "value_bool", int: "value_int"}.get(type(value), "value_str")
    return {"config": {"config": name, "source": source, **({"plugin": plugin} if plugin else {}), "dynamic": True,
                       kind: value}}


class SimNode:
    def __init__(self, scenario: Scenario, seed: int = 0, lightning_dir: str | None = None,
                 cln_version: str | None = None):
        self.scenario = sc = scenario
        # the Core Lightning version whose JSON the node answers in: the argument, else the scenario's
        self.cln_version = versions.check_version(cln_version or sc.node.cln_version)
        self.seed = seed
        # every purpose draws from its own stream, so what a controller changes (which payments we forward,
        # which rebalances run) never shifts another purpose's draws (docs/simulator.md "Random streams");
        # the payments' draws are each demand stream's own (Stream.rng)
        self.block_rng = random.Random(f"blocks:{seed}")
        self.htlc_rng = random.Random(f"htlc-timing:{seed}")     # when an HTLC arrives and resolves
        self.onchain_rng = random.Random(f"onchain:{seed}")
        self.lightning_dir = lightning_dir
        self.now: int = sc.start_time
        self._t: float = float(sc.start_time)
        self.ledger = Ledger()
        self.id = sc.node.id
        self.blockheight = sc.node.blockheight
        self.mempool = mk.Mempool(sc.mempool, sc.start_time)
        self._subs: list[Callable[[str, dict], None]] = []
        self._heap: list = []
        self._seq = 0
        self.channels: dict[str, Chan] = {}        # scid -> Chan (including closed)
        self.by_name: dict[str, Chan] = {}
        self.by_chanid: dict[str, Chan] = {}
        self.by_peer: dict[str, list[Chan]] = {}    # a peer's channels, in the order of self.channels
        self.peers: dict[str, dict] = {}
        self.forwards: list[dict] = []             # listforwards entries, by created_index-1
        self._updated: list[dict] = []             # forwards with updated_index, in order
        self._updated_index = 0
        self._payment_n = 0
        self._scid_tx = 0
        self._mvt_index = {"chain_mvt": 0, "channel_mvt": 0}
        self.coin_type = {"bitcoin": "bc", "regtest": "bcrt", "testnet": "tb", "signet": "tbs"}[sc.node.network]
        self.onchain_msat = 5_000_000_000
        self.plugins = {"sling": sc.plugins.sling, "clboss": sc.plugins.clboss, "bookkeeper": sc.plugins.bookkeeper}
        self.extra_plugins: list[dict] = []
        # lightningd's side of dynamic plugin options: registered by the plugin host, and what setconfig persisted
        self.dynamic_options: dict[str, DynamicOption] = {}
        self.setconfig_values: dict[str, Any] = {}
        self.bkpr = Bookkeeper(self)
        for spec in sc.channels:
            self._add_channel(spec.name, spec.peer_id, spec.peer_alias, spec.capacity_sat, spec.local_sat, spec.opener,
                              spec.age_days, spec.max_accepted_htlcs, spec.fee_base_msat, spec.fee_ppm, initial=True,
                              open_fee_msat=spec.open_fee_sat * 1000)
        self.streams = mk.demand_streams(sc, seed)
        self.shifts_applied = 0
        self._stream_by_name = {s.name: s for s in self.streams}
        for i, s in enumerate(self.streams):
            self._sched_stream(i, float(sc.start_time))
        for i, sh in enumerate(sc.shifts):
            self._push(sc.start_time + sh.at_day * DAY, "shift", i)
        for c in sc.congestion:
            self._push(sc.start_time + c.at_day * DAY, "cong", c)
        for d in sc.disconnects:
            self._push(sc.start_time + d.at_day * DAY, "disc", d)
        for e in sc.events:
            self._push(sc.start_time + e.at_day * DAY, "event", e)
        self._spikes_on: set[int] = set()
        if sc.market.onchain_demand_elasticity or sc.market.onchain_tolerance_elasticity:
            for i, sp in enumerate(sc.mempool.spikes):
                self._push(sc.start_time + sp.at_day * DAY, "spike", (i, True))
                self._push(sc.start_time + (sp.at_day + sp.duration_hours / 24.0) * DAY, "spike", (i, False))
        self._push(self._t + self.block_rng.expovariate(1.0 / sc.market.block_interval_s), "block", None)
        self.sling = Sling(self)
        self.clboss = Clboss(self)
        self.competitors = Competitors(self)

    # ------------------------------------------------------------------ infrastructure
    def _push(self, t: float, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, data))

    def subscribe(self, callback: Callable[[str, dict], None]) -> None:
        self._subs.append(callback)

    def _emit(self, topic: str, params: dict) -> None:
        """params is exactly what lightningd sends: ``{topic: {...}}``."""
        if self._subs:
            params = versions.notification(self.cln_version, topic, params)
            for cb in list(self._subs):
                cb(topic, params)

    def next_event_time(self) -> int | None:
        while self._heap:
            t, _s, kind, data = self._heap[0]
            if kind == "pay" and data[1] != self.streams[data[0]].generation:
                heapq.heappop(self._heap)
                continue
            if kind == "sling" and not self.sling.event_valid(data):
                heapq.heappop(self._heap)
                continue
            return max(self.now, int(-(-t // 1)))
        return None

    def advance_to(self, t: int) -> None:
        while self._heap and self._heap[0][0] <= t:
            et, _s, kind, data = heapq.heappop(self._heap)
            if et > self._t:
                self._t = et
                self.now = int(et)
            getattr(self, "_ev_" + kind)(data)
        if t > self._t:
            self._t = float(t)
        self.now = max(self.now, int(t))

    def run_days(self, days: float) -> None:
        self.advance_to(int(self.scenario.start_time + days * DAY))

    @property
    def day_index(self) -> int:
        return int((self._t - self.scenario.start_time) // DAY)

    # ------------------------------------------------------------------ channels
    def _new_scid(self, height: int) -> tuple[str, str, int]:
        self._scid_tx += 1
        txid = _h("funding", self.scenario.name, self._scid_tx)
        return f"{height}x{self._scid_tx}x0", txid, 0

    @staticmethod
    def channel_id_from(txid: str, outnum: int) -> str:
        b = bytearray(bytes.fromhex(txid)[::-1])
        b[30] ^= (outnum >> 8) & 0xFF
        b[31] ^= outnum & 0xFF
        return b.hex()

    def _ensure_peer(self, peer_id: str, alias: str) -> dict:
        p = self.peers.get(peer_id)
        if p is None:
            n = len(self.peers)
            p = {"id": peer_id, "alias": alias, "connected": True, "since": self._t,
                 "netaddr": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}:9735", "direction": "in" if n % 2 else "out"}
            self.peers[peer_id] = p
        return p

    def _add_channel(self, name, peer_id, alias, cap_sat, local_sat, opener, age_days, max_htlcs, base, ppm,
                     initial: bool, open_fee_msat: int = 0) -> Chan:
        height = max(1, self.blockheight - int(age_days * 144)) if initial else self.blockheight + 1
        scid, txid, outnum = self._new_scid(height)
        cap = cap_sat * 1000
        local = local_sat * 1000
        pushed = (cap - local) if opener == "local" else local
        ch = Chan(name=name, peer_id=peer_id, scid=scid, first_scid=scid, channel_id=self.channel_id_from(txid, outnum),
                  funding_txid=txid, funding_outnum=outnum, capacity_msat=cap, to_us_msat=local, opener=opener,
                  fee_base=base, fee_ppm=ppm, htlcmin=0, htlcmax=cap - cap // 100, max_accepted_htlcs=max_htlcs,
                  opened_time=self._t - age_days * DAY, pushed_msat=pushed, min_to_us=local, max_to_us=local,
                  last_update=int(self._t - min(age_days * DAY, 3600)))
        ch.remote_fee_base = 1000
        ch.remote_fee_ppm = max(1, int(self.scenario.rebalance.cost_ppm_median * 0.5 *
                                       (2.718281828 ** (0.7 * random.Random(f"remote-fee:{self.seed}:{name}")
                                                        .gauss(0, 1)))))
        ch.fee_hist_t.append(float("-inf"))
        ch.fee_hist_v.append((base, ppm))
        ch.gossip_t.append(float("-inf"))
        ch.gossip_v.append((base, ppm, ch.htlcmax))
        ch.gossip_tokens, ch.gossip_token_t = float(self.scenario.market.gossip_burst), self._t
        self._ensure_peer(peer_id, alias)
        self.channels[scid] = ch
        self.by_name[name] = ch
        self.by_chanid[ch.channel_id] = ch
        self.by_peer.setdefault(peer_id, []).append(ch)
        ts = ch.opened_time
        ch.state_changes.append({"timestamp": _iso(max(0, ts)), "old_state": AWAITING, "new_state": NORMAL,
                                 "cause": "user" if opener == "local" else "remote", "message": "Lockin complete"})
        if not initial:
            ch.state = AWAITING
            ch.state_changes = []
        self.bkpr.channel_opened(ch, initial, open_fee_msat)
        return ch

    def spendable_msat(self, ch: Chan, commit_fee_msat: int | None = None) -> int:
        """`commit_fee_msat`: the commitment fee now, when the caller has it (listpeerchannels: every channel)."""
        held = sum(h["amount_msat"] for h in ch.held if h["direction"] == "out")
        fee = (self._commit_fee_msat() if commit_fee_msat is None else commit_fee_msat) if ch.opener == "local" else 0
        return max(0, ch.to_us_msat - ch.reserve - held - fee)

    def receivable_msat(self, ch: Chan, commit_fee_msat: int | None = None) -> int:
        held = sum(h["amount_msat"] for h in ch.held if h["direction"] == "in")
        fee = (self._commit_fee_msat() if commit_fee_msat is None else commit_fee_msat) if ch.opener == "remote" else 0
        return max(0, ch.capacity_msat - ch.to_us_msat - ch.reserve - held - fee)

    def _commit_perkw(self) -> int:
        return self.mempool.estimates_perkw(self._t)[6]

    def _commit_fee_msat(self) -> int:
        return (ANCHOR_SAT + -(-COMMIT_WEIGHT * self._commit_perkw() // 1000)) * 1000

    def usable(self, ch: Chan) -> bool:
        return ch.state in LIVE and self.peers[ch.peer_id]["connected"]

    def open_channels(self) -> list[Chan]:
        return [c for c in self.channels.values() if c.state in LIVE]

    def set_fee(self, ch: Chan, base: int | None, ppm: int | None, enforcedelay: int | None = None,
                htlcmax: int | None = None) -> bool:
        """One `setchannel` on one channel: a new fee and/or htlc_maximum_msat is one channel_update, relayed
        if the network's rate limit has a token for it. Returns False when nothing changed (no update)."""
        nb = ch.fee_base if base is None else base
        np_ = ch.fee_ppm if ppm is None else ppm
        nmax = ch.htlcmax if htlcmax is None else min(htlcmax, ch.capacity_msat - ch.capacity_msat // 100)
        if (nb, np_, nmax) == (ch.fee_base, ch.fee_ppm, ch.htlcmax):
            return False
        if nb > ch.fee_base or np_ > ch.fee_ppm:
            delay = self.scenario.market.enforcedelay_s if enforcedelay is None else enforcedelay
            ch.prev_fee = (ch.fee_base, ch.fee_ppm)
            ch.prev_fee_until = self._t + delay
        if (nb, np_) != (ch.fee_base, ch.fee_ppm):
            ch.fee_hist_t.append(self._t)
            ch.fee_hist_v.append((nb, np_))
        ch.fee_base, ch.fee_ppm, ch.htlcmax = nb, np_, nmax
        if self._propagates(ch):
            ch.gossip_t.append(self._t)
            ch.gossip_v.append((nb, np_, nmax))
        else:
            self.ledger.gossip_suppressed += 1
        ch.last_update = self.now
        per = self.ledger.fee_updates.setdefault(ch.scid, {})
        per[self.day_index] = per.get(self.day_index, 0) + 1
        return True

    def _propagates(self, ch: Chan) -> bool:
        """The network's channel_update rate limit (a token bucket, like gossipd's): an update without a
        token is enforced by us but not relayed, so senders keep pricing our previous fee."""
        market = self.scenario.market
        if market.gossip_updates_per_day <= 0:
            return True
        refill = (self._t - ch.gossip_token_t) * market.gossip_updates_per_day / DAY
        ch.gossip_tokens = min(float(market.gossip_burst), ch.gossip_tokens + refill)
        ch.gossip_token_t = self._t
        if ch.gossip_tokens < 1.0:
            return False
        ch.gossip_tokens -= 1.0
        return True

    def _gossip(self, ch: Chan, t: float) -> tuple[int, int, int]:
        """The channel_update of ours the rest of the network holds at time t (gossip lag)."""
        i = bisect.bisect_right(ch.gossip_t, t - self.scenario.market.gossip_delay_s) - 1
        return ch.gossip_v[max(0, i)]

    def gossip_fee(self, ch: Chan, t: float) -> tuple[int, int]:
        """Fee the rest of the network believes we charge at time t (gossip lag)."""
        return self._gossip(ch, t)[:2]

    def gossip_htlcmax(self, ch: Chan, t: float) -> int:
        """htlc_maximum_msat the rest of the network believes we relay at time t (gossip lag)."""
        return self._gossip(ch, t)[2]

    # ------------------------------------------------------------------ events
    def _sched_stream(self, i: int, t: float) -> None:
        s = self.streams[i]
        nxt = s.next_arrival(t)
        if nxt is not None:
            self._push(nxt, "pay", (i, s.generation))

    def _ev_pay(self, data) -> None:
        i, gen = data
        s = self.streams[i]
        if gen != s.generation:
            return
        self._sched_stream(i, self._t)
        self._payment(s)

    def _ev_shift(self, i: int) -> None:
        sh = self.scenario.shifts[i]
        self.shifts_applied += 1
        targets = sh.demand or tuple(d.name for d in self.scenario.demand)
        for name in targets:
            s = self._stream_by_name[name]
            s.market_ppm *= sh.market_ppm_multiplier
            if sh.rate_multiplier != 1.0:
                s.rate_per_hour *= sh.rate_multiplier
                s.generation += 1
                self._sched_stream(self.streams.index(s), self._t)

    def _ev_block(self, _data) -> None:
        self.blockheight += 1
        self._emit("block_added", {"block_added": {"hash": _h("block", self.seed, self.blockheight),
                                                   "height": self.blockheight}})
        for ch in list(self.channels.values()):
            if ch.splice is not None and self.blockheight >= ch.splice["lock_at"]:
                self._splice_locked(ch)
            elif ch.lockin_at is not None and self.blockheight >= ch.lockin_at:
                ch.lockin_at = None
                self.bkpr.funding_confirmed(ch)
                self._set_state(ch, NORMAL, "user" if ch.opener == "local" else "remote", "Lockin complete")
            elif ch.closed_height is not None:
                if ch.state == "CLOSINGD_COMPLETE":
                    self._set_state(ch, "FUNDING_SPEND_SEEN", "user", "Onchain funding spend")
                    self._set_state(ch, "ONCHAIN", "user", "Onchain init reply")
                    self.bkpr.channel_closed(ch)
                elif ch.state == "ONCHAIN" and self.blockheight >= ch.closed_height + 100:
                    self._set_state(ch, "CLOSED", "unknown", None)
        self._push(self._t + self.block_rng.expovariate(1.0 / self.scenario.market.block_interval_s), "block", None)

    def _ev_spike(self, data: tuple[int, bool]) -> None:
        """On-chain substitution: while the feerate is m × its baseline, every stream's payment rate is
        × m^demand_elasticity and its fee tolerance × m^tolerance_elasticity (docs/simulator.md)."""
        i, on = data
        (self._spikes_on.add if on else self._spikes_on.discard)(i)
        m = 1.0
        for k in self._spikes_on:
            m *= self.scenario.mempool.spikes[k].multiplier
        market = self.scenario.market
        rate, tol = m ** market.onchain_demand_elasticity, m ** market.onchain_tolerance_elasticity
        for j, s in enumerate(self.streams):
            s.tolerance_factor = tol
            if s.rate_factor != rate:
                s.rate_factor = rate
                s.generation += 1
                self._sched_stream(j, self._t)

    def _ev_cong(self, c) -> None:
        ch = self.by_name[c.channel]
        if ch.state not in LIVE:
            return
        per = c.value_sat * 1000 // c.slots
        hs = []
        for k in range(c.slots):
            if c.direction == "out":
                hid = ch.next_out_id
                ch.next_out_id += 1
            else:
                hid = ch.next_in_id
                ch.next_in_id += 1
            hs.append({"direction": c.direction, "id": hid, "amount_msat": per,
                       "expiry": self.blockheight + 144, "payment_hash": _h("cong", ch.scid, hid, self._t),
                       "state": "SENT_ADD_ACK_REVOCATION" if c.direction == "out" else "RCVD_ADD_ACK_REVOCATION"})
        ch.held.extend(hs)
        self._push(self._t + c.duration_hours * 3600, "uncong", (ch, hs))

    def _ev_uncong(self, data) -> None:
        ch, hs = data
        ids = {id(h) for h in hs}
        ch.held = [h for h in ch.held if id(h) not in ids]

    def _ev_disc(self, d) -> None:
        pid = self.by_name[d.peer].peer_id if d.peer in self.by_name else d.peer
        if self.peers[pid]["connected"]:
            self.disconnect_peer(pid)
            self._push(self._t + d.duration_hours * 3600, "reconn", pid)

    def _ev_reconn(self, pid) -> None:
        self.connect_peer(pid)

    def _ev_event(self, e) -> None:
        if e.action == "splice":
            ch = self.by_name[e.channel]
            if ch.state == NORMAL:
                self.splice_channel(ch.scid, e.amount_sat, e.confirms, e.fee_sat)
        elif e.action == "close":
            ch = self.by_name[e.channel]
            if ch.state == NORMAL:
                self.close_channel(ch.scid)
        else:
            self.open_channel(e.peer_id, e.capacity_sat, e.local_sat, e.opener, name=e.channel,
                              fee_base_msat=e.fee_base_msat, fee_ppm=e.fee_ppm)

    def _ev_sling(self, data) -> None:
        self.sling.on_event(data)

    def _ev_clboss(self, data) -> None:
        self.clboss.on_event(data)

    def _ev_call(self, fn) -> None:
        fn()

    def schedule(self, t: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at virtual time t (for emulated plugins and tests)."""
        self._push(t, "call", fn)

    # ------------------------------------------------------------------ payments
    @staticmethod
    def _pick(candidates: list[Chan], weight: Callable[[Chan], int], u: float) -> Chan | None:
        """A candidate drawn with probability proportional to its weight, by the uniform u (as
        ``random.choices`` draws: the first whose cumulative weight exceeds u × total)."""
        cum = list(itertools.accumulate(weight(c) for c in candidates))
        if not cum or cum[-1] <= 0:
            return None
        return candidates[bisect.bisect(cum, u * cum[-1], 0, len(cum) - 1)]

    def _payment(self, s: mk.Stream) -> None:
        led = self.ledger
        pay = s.draw_payment()
        amount, tol = pay.amount_msat, pay.tolerance_msat
        led.payments_wanted += 1
        led.wtp_msat += tol
        if s.drain_side is None:
            src = self.by_name.get(s.src)
            dst = self.by_name.get(s.dst)
        else:
            fixed = self.by_name.get(s.src or s.dst)
            if s.counterparts:
                others = [self.by_name[n] for n in s.counterparts if n in self.by_name]
            else:
                others = [c for c in self.channels.values() if c is not fixed]
            others = [c for c in others if c.state in LIVE and c is not fixed]
            if s.drain_side == "out":
                dst, src = fixed, self._pick(others, lambda c: self.receivable_msat(c) if self.usable(c) else 0,
                                                 pay.pick_u)
            else:
                src, dst = fixed, self._pick(others, lambda c: self.spendable_msat(c) if self.usable(c) else 0,
                                                 pay.pick_u)
        if src is None or dst is None or dst.state not in LIVE or src.state not in LIVE:
            led.payments_no_inbound += 1
            return
        base, ppm, most = self._gossip(dst, self._t)
        splittable = amount <= self._default_htlcmax(dst)   # larger: attempted whole, as before (docs/simulator.md)
        if splittable and amount > most:
            # multi-part payment: one part of at most our relayed htlc_maximum_msat goes through us, the rest
            # takes other routes; the part's fee tolerance is the payment's, pro rata (docs/simulator.md)
            amount, tol = most, self._part_tolerance(s, tol, amount, most)
        believed = cln_fee(base, ppm, amount)
        if believed > tol:
            led.payments_priced_out += 1
            return
        in_msat = amount + believed
        if not self.usable(src) or self.receivable_msat(src) < in_msat:
            led.payments_no_inbound += 1  # the upstream peer cannot send it to us; no HTLC reaches us
            return
        led.payments_arrived += 1
        ok = self._forward(src, dst, amount, in_msat, self._t, pay.settle_u)
        if ok == "fee":
            cur = cln_fee(dst.fee_base, dst.fee_ppm, amount)
            if cur <= tol and self.receivable_msat(src) >= amount + cur:
                # the sender learns our new channel_update from the error and retries once
                self._forward(src, dst, amount, amount + cur, self._t + 0.5, pay.settle_u)
        elif ok == "htlcmax" and splittable and dst.htlcmax >= dst.htlcmin:
            # a lowered htlc_maximum_msat not yet in the sender's gossip: it learns the update from the
            # error and retries once with a part that fits, like a fee raise above
            self._retry_part(s, pay, src, dst, amount, dst.htlcmax)
        elif ok == "liquidity" and self.scenario.market.mpp_split_on_failure:
            # opt-in (docs/simulator.md): an MPP sender splits after a failure and retries half through us
            self._retry_part(s, pay, src, dst, amount, amount // 2)

    def _retry_part(self, s: mk.Stream, pay: mk.Payment, src: Chan, dst: Chan, amount: int, part: int) -> None:
        """The sender's one retry through us with a part of the payment, at our current fee, if it pays
        (the same downstream route: the same downstream outcome)."""
        cur = cln_fee(dst.fee_base, dst.fee_ppm, part)
        if cur <= self._part_tolerance(s, pay.tolerance_msat, amount, part) and self.receivable_msat(src) >= part + cur:
            self._forward(src, dst, part, part + cur, self._t + 0.5, pay.settle_u)

    @staticmethod
    def _default_htlcmax(ch: Chan) -> int:
        """lightningd's htlc_maximum_msat for a new channel here: capacity − 1 % (what nobody lowered)."""
        return ch.capacity_msat - ch.capacity_msat // 100

    @staticmethod
    def _part_tolerance(s: mk.Stream, tol: int, amount: int, part: int) -> int:
        """The fee tolerance of one part: the stream's base fee plus the payment's ppm tolerance on the part."""
        return s.market_base_msat + (tol - s.market_base_msat) * part // amount

    def _forward(self, src: Chan, dst: Chan, out_msat: int, in_msat: int, t: float, settle_u: float) -> str:
        """One HTLC arriving on src for dst; settle_u (the payment's draw) decides a downstream failure.
        Returns 'settled' | 'failed' | 'liquidity' | 'fee' | 'htlcmax' | 'other'."""
        led = self.ledger
        self._payment_n += 1
        preimage = _h("pay", self.seed, self._payment_n)
        phash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
        in_id = src.next_in_id
        src.next_in_id += 1
        created = len(self.forwards) + 1
        rt = round(t + self.htlc_rng.random() * 0.001, 6)
        paid = in_msat - out_msat
        need = cln_fee(dst.fee_base, dst.fee_ppm, out_msat)
        fail = None
        if paid < need and not (dst.prev_fee is not None and t < dst.prev_fee_until
                                and paid >= cln_fee(dst.prev_fee[0], dst.prev_fee[1], out_msat)):
            fail, kind = WIRE_FEE_INSUFFICIENT, "fee"
        elif out_msat < dst.htlcmin:
            fail, kind = WIRE_AMOUNT_BELOW_MINIMUM, "other"
        elif out_msat > dst.htlcmax:
            fail, kind = WIRE_TEMPORARY_CHANNEL_FAILURE, "htlcmax"
        elif not self.peers[dst.peer_id]["connected"]:
            fail, kind = WIRE_TEMPORARY_CHANNEL_FAILURE, "liquidity"
        elif sum(1 for h in dst.held if h["direction"] == "out") >= dst.max_accepted_htlcs:
            fail, kind = WIRE_TEMPORARY_CHANNEL_FAILURE, "liquidity"
        elif out_msat > self.spendable_msat(dst):
            fail, kind = WIRE_TEMPORARY_CHANNEL_FAILURE, "liquidity"
        src.stats["in_payments_offered"] += 1
        src.stats["in_offered_msat"] += in_msat
        if fail is not None:
            rec = {"created_index": created, "in_channel": src.scid, "in_htlc_id": in_id, "out_channel": dst.scid,
                   "in_msat": in_msat, "status": "local_failed", "failcode": fail[0], "failreason": fail[1],
                   "style": "tlv", "received_time": rt}
            self.forwards.append(rec)
            if kind == "fee":
                led.forwards_failed_fee += 1
            elif kind == "liquidity":
                led.forwards_failed_liquidity += 1
            else:
                led.forwards_failed_other += 1     # below htlcmin, above htlcmax
            if self._subs:
                self._emit("forward_event", {"forward_event": {
                    "created_index": created, "payment_hash": phash, "in_channel": src.scid, "in_htlc_id": in_id,
                    "out_channel": dst.scid, "in_msat": in_msat, "status": "local_failed", "failcode": fail[0],
                    "failreason": fail[1], "style": "tlv", "received_time": rt}})
            return kind
        out_id = dst.next_out_id
        dst.next_out_id += 1
        dst.stats["out_payments_offered"] += 1
        dst.stats["out_offered_msat"] += out_msat
        settled = settle_u >= self.scenario.market.downstream_fail_rate
        resolved = round(rt + self.scenario.market.settle_delay_ms / 1000.0 * (0.5 + self.htlc_rng.random()), 6)
        rate = self.scenario.market.htlc_force_close_rate
        if rate and self.onchain_rng.random() < rate:
            # stuck: a peer stops answering with the HTLC in flight; with even odds it is the downstream
            # peer (we time out the offered HTLC on chain, the forward fails) or the upstream one (the
            # payment settled downstream, we claim the received HTLC on chain with the preimage)
            if self.onchain_rng.random() < 0.5:
                settled = False
                self.force_close_onchain(dst, out_msat, offered=True)
            elif settled:
                self.force_close_onchain(src, in_msat, offered=False)
        self._updated_index += 1
        status = "settled" if settled else "failed"
        rec = {"created_index": created, "updated_index": self._updated_index, "in_channel": src.scid,
               "in_htlc_id": in_id, "out_channel": dst.scid, "out_htlc_id": out_id, "in_msat": in_msat,
               "out_msat": out_msat, "fee_msat": paid, "status": status, "style": "tlv",
               "received_time": rt, "resolved_time": resolved}
        self.forwards.append(rec)
        self._updated.append(rec)
        if self._subs:
            base = {"payment_hash": phash, "in_channel": src.scid, "in_htlc_id": in_id, "out_channel": dst.scid,
                    "in_msat": in_msat, "out_msat": out_msat, "fee_msat": paid}
            self._emit("forward_event", {"forward_event": {"created_index": created, **base, "status": "offered",
                                                           "style": "tlv", "received_time": rt}})
        if settled:
            src.set_to_us(src.to_us_msat + in_msat)
            dst.set_to_us(dst.to_us_msat - out_msat)
            src.stats["in_payments_fulfilled"] += 1
            src.stats["in_fulfilled_msat"] += in_msat
            dst.stats["out_payments_fulfilled"] += 1
            dst.stats["out_fulfilled_msat"] += out_msat
            led.forwards_settled += 1
            led.fees_earned_msat += paid
            led.volume_settled_msat += out_msat
            led.fees_by_channel_msat[dst.scid] = led.fees_by_channel_msat.get(dst.scid, 0) + paid
            led.volume_out_by_channel_msat[dst.scid] = led.volume_out_by_channel_msat.get(dst.scid, 0) + out_msat
        else:
            led.forwards_failed_downstream += 1
        if self._subs:
            self._emit("forward_event", {"forward_event": {"updated_index": self._updated_index, **base,
                                                           "status": status, "style": "tlv", "received_time": rt,
                                                           "resolved_time": resolved,
                                                           **({"preimage": preimage} if settled else {})}})
        if settled:
            self.bkpr.routed(src, dst, in_msat, out_msat, paid, phash, int(resolved))
        return status

    def force_close_onchain(self, ch: Chan, amount_msat: int, offered: bool) -> int:
        """Book the on-chain resolution of a channel forced closed with a stuck HTLC of `amount_msat`
        (offered by us: HTLC-timeout; received: HTLC-success) and the HTLCs held on it, at the 6-block
        feerate now. An HTLC below the dust limit is trimmed, one worth less than its claim is abandoned:
        either way its value is lost. Paid from the on-chain wallet; the channel is treated as reopened at
        once with the same balance (docs/simulator.md "Force closes"). Returns the cost in msat."""
        perkw = self._commit_perkw()           # sat per 1000 weight units = msat per weight unit
        ours = [(amount_msat, HTLC_TIMEOUT_WEIGHT if offered else HTLC_SUCCESS_WEIGHT)]
        ours += [(h["amount_msat"], HTLC_TIMEOUT_WEIGHT) for h in ch.held if h["direction"] == "out"]
        theirs = [h["amount_msat"] for h in ch.held if h["direction"] == "in"]   # no preimage: not ours to claim
        untrimmed = sum(1 for a in theirs if a >= DUST_LIMIT_MSAT)
        fee = lost = 0
        for amount, weight in ours:
            claim = weight * perkw
            if amount >= DUST_LIMIT_MSAT:
                untrimmed += 1
            if amount < DUST_LIMIT_MSAT or amount <= claim:
                lost += amount
            else:
                fee += claim
        fee += (UNILATERAL_CLOSE_WEIGHT + HTLC_OUTPUT_WEIGHT * untrimmed) * perkw
        led = self.ledger
        led.force_closes += 1
        led.onchain_fee_msat += fee
        led.htlc_lost_msat += lost
        self.onchain_msat -= fee + lost
        ch.held = []    # resolved on chain with the old channel
        return fee + lost

    # ------------------------------------------------------------------ rebalancing (used by sling)
    def rebalance(self, src: Chan, dst: Chan, amount_msat: int, fee_msat: int, label: str = "sling") -> None:
        """A circular self-payment: src loses amount+fee, dst gains amount."""
        src.set_to_us(src.to_us_msat - amount_msat - fee_msat)
        dst.set_to_us(dst.to_us_msat + amount_msat)
        src.stats["out_payments_offered"] += 1
        src.stats["out_offered_msat"] += amount_msat + fee_msat
        src.stats["out_payments_fulfilled"] += 1
        src.stats["out_fulfilled_msat"] += amount_msat + fee_msat
        dst.stats["in_payments_offered"] += 1
        dst.stats["in_offered_msat"] += amount_msat
        dst.stats["in_payments_fulfilled"] += 1
        dst.stats["in_fulfilled_msat"] += amount_msat
        self.ledger.rebalance_cost_msat += fee_msat
        self.ledger.rebalanced_msat += amount_msat
        self.ledger.rebalances_succeeded += 1
        self._payment_n += 1
        self.bkpr.rebalance(src, dst, amount_msat, fee_msat, _h("reb", self.seed, self._payment_n), self.now)

    # ------------------------------------------------------------------ coin movements
    def emit_coin_movement(self, mtype: str, body: dict) -> None:
        self._mvt_index[mtype] += 1
        if not self._subs:
            return
        m = {"version": 2, "coin_type": self.coin_type, "node_id": self.id, "type": mtype,
             "created_index": self._mvt_index[mtype]}
        m.update(body)
        self._emit("coin_movement", {"coin_movement": m})

    # ------------------------------------------------------------------ public actions
    def _set_state(self, ch: Chan, new: str, cause: str, message: str | None) -> None:
        old = ch.state
        ch.state = new
        ts = _iso(self._t)
        ch.state_changes.append({"timestamp": ts, "old_state": old, "new_state": new, "cause": cause,
                                 **({"message": message} if message is not None else {})})
        self._emit("channel_state_changed", {"channel_state_changed": {
            "peer_id": ch.peer_id, "channel_id": ch.channel_id,
            "short_channel_id": ch.scid if new != AWAITING else None, "timestamp": ts, "old_state": old,
            "new_state": new, "cause": cause, "message": message}})

    def open_channel(self, peer_id: str | None = None, capacity_sat: int = 2_000_000, local_sat: int | None = None,
                     opener: str = "remote", **kw) -> str:
        name = kw.get("name") or f"opened{len(self.channels)}"
        if peer_id is None:
            peer_id = "02" + _h("newpeer", self.scenario.name, name)
        if local_sat is None:
            local_sat = capacity_sat if opener == "local" else 0
        if opener not in ("local", "remote") or not 0 <= local_sat <= capacity_sat:
            raise ValueError("bad open_channel arguments")
        new_peer = peer_id not in self.peers
        ch = self._add_channel(name, peer_id, kw.get("alias", name), capacity_sat, local_sat, opener, 0.0,
                               kw.get("max_accepted_htlcs", 483), kw.get("fee_base_msat", 1000),
                               kw.get("fee_ppm", 10), initial=False)
        if new_peer:
            self._emit_connect(peer_id)
        self._emit("channel_opened", {"channel_opened": {"id": peer_id, "funding_msat": ch.capacity_msat,
                                                         "funding_txid": ch.funding_txid, "channel_ready": False}})
        cause = "user" if opener == "local" else "remote"
        ts = _iso(self._t)
        self._emit("channel_state_changed", {"channel_state_changed": {
            "peer_id": peer_id, "channel_id": ch.channel_id, "short_channel_id": None, "timestamp": ts,
            "old_state": "unknown", "new_state": AWAITING, "cause": cause, "message": "new channel opened"}})
        ch.lockin_at = self.blockheight + kw.get("confirms", 3)
        if kw.get("confirms", 3) == 0:
            ch.lockin_at = None
            self.bkpr.funding_confirmed(ch)
            self._set_state(ch, NORMAL, cause, "Lockin complete")
        if opener == "local":
            self.onchain_msat -= ch.capacity_msat
        return ch.scid

    def splice_channel(self, scid: str, amount_sat: int, confirms: int = 6, fee_sat: int | None = None) -> None:
        """Splice `amount_sat` into (> 0, from the on-chain wallet) or out of (< 0) a channel, as Core Lightning
        does (lightningd/channel_control.c): NORMAL → CHANNELD_AWAITING_SPLICE once the splice is signed; the
        channel forwards meanwhile; `confirms` blocks after the splice transaction is mined it locks in under a
        new short channel id (same channel_id), back to NORMAL, with the old funding output's spend and the new
        one in bookkeeper. We pay the splice's fee (`fee_sat`, default SPLICE_WEIGHT at the current feerate) from
        the wallet (docs/simulator.md)."""
        ch = self.channels[scid]
        if ch.state != NORMAL or ch.splice is not None:
            raise ValueError(f"channel {scid} is in state {ch.state}: only a CHANNELD_NORMAL channel splices")
        if ch.capacity_msat + amount_sat * 1000 < 20_000_000 or ch.to_us_msat + amount_sat * 1000 < 0 or confirms < 1:
            raise ValueError(f"splice of {amount_sat} sat: the channel would hold less than 20000 sat, or we would "
                             "splice out more than our side, or confirms < 1")
        self._scid_tx += 1
        txid = _h("splice", self.scenario.name, self._scid_tx)
        # mined in the next block; channeld sends splice_locked at depth `confirms`
        if fee_sat is None:
            fee_sat = -(-SPLICE_WEIGHT * max(253, self._commit_perkw()) // 1000)
        ch.splice = {"funding_txid": txid, "amount_sat": amount_sat, "tx": self._scid_tx, "fee_msat": fee_sat * 1000,
                     "mined_at": self.blockheight + 1, "lock_at": self.blockheight + confirms}
        self._set_state(ch, SPLICING, "user", "Splice signatures sent")

    def _splice_locked(self, ch: Chan) -> None:
        sp, ch.splice = ch.splice, None
        old, spent = ch.scid, f"{ch.funding_txid}:{ch.funding_outnum}"
        spent_msat, balance = ch.capacity_msat, ch.to_us_msat
        del self.channels[old]
        ch.past_scids.append(old)
        ch.scid = f"{sp['mined_at']}x{sp['tx']}x0"
        self.channels[ch.scid] = ch
        self.by_peer[ch.peer_id].remove(ch)     # last in self.channels now, so last among its peer's too
        self.by_peer[ch.peer_id].append(ch)
        amount = sp["amount_sat"] * 1000
        default = self._default_htlcmax(ch)
        ch.capacity_msat += amount
        ch.set_to_us(ch.to_us_msat + amount)
        # a maximum left at its default follows the capacity; one set lower (setchannel) stays, within it
        ch.htlcmax = self._default_htlcmax(ch) if ch.htlcmax == default else min(ch.htlcmax,
                                                                                   self._default_htlcmax(ch))
        ch.funding_txid, ch.funding_outnum = sp["funding_txid"], 0
        self.onchain_msat -= amount + sp["fee_msat"]
        self.bkpr.spliced(ch, spent, spent_msat, balance, sp["fee_msat"], sp["mined_at"])
        self.bkpr.funding_confirmed(ch, ch.to_us_msat)
        self._set_state(ch, NORMAL, "unknown", "Lockin complete")

    def close_channel(self, scid: str) -> None:
        ch = self.channels[scid]
        if ch.state not in (NORMAL, AWAITING):
            raise ValueError(f"channel {scid} is not open")
        self._set_state(ch, "CHANNELD_SHUTTING_DOWN", "user", "User or plugin invoked close command")
        self._set_state(ch, "CLOSINGD_SIGEXCHANGE", "user", "Start closingd")
        self._set_state(ch, "CLOSINGD_COMPLETE", "user", "Closing complete")
        ch.closed_height = self.blockheight + 1
        ch.held = []

    def _emit_connect(self, pid: str) -> None:
        p = self.peers[pid]
        host, port = p["netaddr"].rsplit(":", 1)
        self._emit("connect", {"connect": {"id": pid, "direction": p["direction"],
                                           "address": {"type": "ipv4", "address": host, "port": int(port)}}})

    def disconnect_peer(self, peer_id: str) -> None:
        p = self.peers[peer_id]
        if p["connected"]:
            p["connected"] = False
            self._emit("disconnect", {"disconnect": {"id": peer_id}})

    def connect_peer(self, peer_id: str) -> None:
        p = self.peers[peer_id]
        if not p["connected"]:
            p["connected"] = True
            p["since"] = self._t
            self._emit_connect(peer_id)

    def set_plugin_installed(self, name: str, installed: bool) -> None:
        if name not in self.plugins:
            raise ValueError(f"unknown emulated plugin {name!r}")
        was = self.plugins[name]
        self.plugins[name] = installed
        if name == "sling" and was != installed:
            (self.sling.start_plugin if installed else self.sling.stop_plugin)()
        if name == "clboss" and was != installed and installed:
            self.clboss.start_plugin()
        if name in PLUGIN_PATHS and was != installed:     # lightningd tells every subscriber (since v25.02)
            topic = "plugin_started" if installed else "plugin_stopped"
            self._emit(topic, {topic: {"plugin_name": name, "plugin_path": PLUGIN_PATHS[name],
                                       "methods": list({"sling": self.sling, "clboss": self.clboss}[name].METHODS)}})

    # ------------------------------------------------------------------ JSON-RPC
    def call(self, method: str, params: dict | list | None = None) -> dict:
        return versions.call(self.cln_version, self, method, params, _dispatch)

    def rpc_error(self, method: str, params: Any, code: int, message: str) -> RpcError:
        return RpcError(method, params if params is not None else {}, {"code": code, "message": message})

    # ------------------------------------------------------------------ helpers for tests/benchmarks
    def local_balance_total_msat(self) -> int:
        return sum(c.to_us_msat for c in self.channels.values() if c.closed_height is None)

    def snapshot(self) -> str:
        return json.dumps(self.ledger.as_dict(), sort_keys=True)


# ====================================================================== JSON-RPC layer (lightningd v25.12.1)

INVALID_PARAMS = -32602
_BADTOK = "invalid token (see logs for details)"
PLUGIN_DIR = "/usr/local/libexec/c-lightning/plugins"
PLUGIN_PATHS = {"sling": "/usr/local/lib/cln-plugins/sling", "clboss": "/usr/local/bin/clboss"}
_BUILTIN_PLUGINS = [("autoclean", False), ("chanbackup", False), ("bcli", False), ("commando", False),
                    ("funder", True), ("topology", False), ("exposesecret", True), ("keysend", False),
                    ("offers", True), ("pay", True), ("recklessrpc", True), ("recover", False),
                    ("txprepare", True), ("cln-renepay", True), ("cln-xpay", True), ("spenderp", False),
                    ("cln-askrene", True), ("sql", True)]


class _BadParam(Exception):
    def __init__(self, message: str):
        self.message = message


def _conv(kind: str, name: str, v: Any) -> Any:
    def bad(desc: str):
        raise _BadParam(f"{name}: {desc}: {_BADTOK}")
    if kind == "any":
        return v
    if kind == "str":
        if not isinstance(v, str):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return str(v)
            bad("should be a string")
        return v
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if v in ("true", "false"):
            return v == "true"
        bad("should be 'true' or 'false'")
    if kind in ("u32", "u64", "u16"):
        bits = {"u32": 32, "u64": 64, "u16": 16}[kind]
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**bits:
            return v
        bad(f"should be an unsigned {bits} bit integer")
    if kind == "msat":
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
        if isinstance(v, str):
            s = v.strip()
            try:
                if s.endswith("msat") and s[:-4].isdigit():
                    return int(s[:-4])
                if s.endswith("sat"):
                    num = s[:-3]
                    if num.isdigit():
                        return int(num) * 1000
                    if "." in num and len(num.split(".")[1]) == 3:
                        a, b = num.split(".")
                        return int(a) * 1000 + int(b)
                if s.endswith("btc"):
                    a, _, b = s[:-3].partition(".")
                    if a.isdigit() and (not b or (b.isdigit() and len(b) <= 11)):
                        return int(a) * 100_000_000_000 + int((b + "0" * 11)[:11])
                if s.isdigit():
                    return int(s)
            except ValueError:
                pass
        bad("should be a millisatoshi amount")
    if kind == "pubkey":
        if isinstance(v, str) and len(v) == 66 and v[:2] in ("02", "03"):
            try:
                bytes.fromhex(v)
                return v
            except ValueError:
                pass
        bad("should be a node id")
    if kind == "scid":
        if isinstance(v, str):
            parts = v.split("x")
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                return v
        bad("should be a short_channel_id of form NxNxN")
    if kind.startswith("enum:"):
        opts = kind[5:].split(",")
        if v in opts:
            return v
        bad("should be one of " + ", ".join(f"'{o}'" for o in opts))
    raise AssertionError(kind)


_PARAMS: dict[str, list[tuple[str, str, bool]]] = {
    "getinfo": [],
    "listpeerchannels": [("id", "pubkey", False), ("short_channel_id", "scid", False)],
    "listpeers": [("id", "pubkey", False), ("level", "str", False)],
    "listfunds": [("spent", "bool", False)],
    "listforwards": [("status", "enum:offered,settled,local_failed,failed", False), ("in_channel", "scid", False),
                     ("out_channel", "scid", False), ("index", "enum:created,updated", False),
                     ("start", "u64", False), ("limit", "u32", False)],
    "listchannels": [("short_channel_id", "scid", False), ("source", "pubkey", False),
                     ("destination", "pubkey", False)],
    "listnodes": [("id", "pubkey", False)],
    "feerates": [("style", "enum:perkb,perkw", True)],
    "setchannel": [("id", "str", True), ("feebase", "msat", False), ("feeppm", "u32", False),
                   ("htlcmin", "msat", False), ("htlcmax", "msat", False), ("enforcedelay", "u32", False),
                   ("ignorefeelimits", "bool", False)],
    "listconfigs": [("config", "str", False)],
    "setconfig": [("config", "str", True), ("val", "any", False), ("transient", "bool", False)],
    "plugin": [("subcommand", "enum:start,stop,rescan,startdir,list", True), ("plugin", "str", False),
               ("options", "any", False)],
    "listhtlcs": [("id", "str", False), ("index", "enum:created,updated", False), ("start", "u64", False),
                  ("limit", "u32", False)],
}


def parse_params(method: str, params: dict | list | None, spec: list[tuple[str, str, bool]],
                 allow_extra: bool = False) -> dict:
    """Map positional or keyword params onto ``spec`` like lightningd's json_param.c."""
    if params is None:
        params = {}
    out: dict = {}
    if isinstance(params, list):
        if len(params) > len(spec) and not allow_extra:
            raise _BadParam(f"too many parameters: got {len(params)}, expected {len(spec)}")
        for (name, kind, _req), v in zip(spec, params):
            if v is not None:
                out[name] = _conv(kind, name, v)
    elif isinstance(params, dict):
        names = {s[0]: s for s in spec}
        for k, v in params.items():
            if k not in names:
                if allow_extra:
                    out[k] = v
                    continue
                raise _BadParam(f"unknown parameter: {k}, this may be caused by a failure to autodetect "
                                f"key=value-style parameters. Please try using the -k flag and explicit "
                                f"key=value pairs of parameters.")
            if v is not None:
                out[k] = _conv(names[k][1], k, v)
    else:
        raise _BadParam("Expected array or object for params")
    for name, _kind, req in spec:
        if req and name not in out:
            raise _BadParam(f"missing required parameter: {name}")
    return out


def _dispatch(node: SimNode, method: str, params: dict | list | None) -> dict:
    handler = _HANDLERS.get(method)
    owner = None
    if handler is None:
        for prefix, plug in (("bkpr-", "bookkeeper"), ("sling-", "sling"), ("clboss-", "clboss")):
            if method.startswith(prefix):
                owner = plug
                break
        if owner is not None and node.plugins[owner]:
            target = {"bookkeeper": node.bkpr, "sling": node.sling, "clboss": node.clboss}[owner]
            if target.has(method):
                try:
                    return target.call(method, params)
                except _BadParam as e:
                    raise node.rpc_error(method, params, INVALID_PARAMS, e.message)
        raise node.rpc_error(method, params, -32601, f"Unknown command '{method}'")
    try:
        p = parse_params(method, params, _PARAMS[method])
        return handler(node, p)
    except _BadParam as e:
        raise node.rpc_error(method, params, INVALID_PARAMS, e.message)


def _peer_chan_json(node: SimNode, ch: Chan, perkw: int, commit_fee_msat: int) -> dict:
    """One channel of listpeerchannels; `perkw` and `commit_fee_msat` are the same for every channel of a call."""
    peer = node.peers[ch.peer_id]
    conn = peer["connected"]
    cap = ch.capacity_msat
    d: dict = {"peer_id": ch.peer_id, "peer_connected": conn}
    if conn:
        d["reestablished"] = True
    d["channel_type"] = {"bits": [12, 22], "names": ["static_remotekey/even", "anchors/even"]}
    d["ignore_fee_limits"] = True
    d["updates"] = {
        "local": {"htlc_minimum_msat": ch.htlcmin, "htlc_maximum_msat": ch.htlcmax, "cltv_expiry_delta": 34,
                  "fee_base_msat": ch.fee_base, "fee_proportional_millionths": ch.fee_ppm},
        "remote": {"htlc_minimum_msat": 0, "htlc_maximum_msat": cap - cap // 100, "cltv_expiry_delta": 80,
                   "fee_base_msat": ch.remote_fee_base, "fee_proportional_millionths": ch.remote_fee_ppm}}
    if conn and node._t - peer["since"] >= 60:
        d["last_stable_connection"] = int(peer["since"]) + 60
    d["state"] = ch.state
    d["scratch_txid"] = _h("scratch", ch.scid, ch.to_us_msat)
    d["last_tx_fee_msat"] = commit_fee_msat
    d["lost_state"] = False
    d["feerate"] = {"perkw": perkw, "perkb": perkw * 4}
    if ch.state in (*LIVE, AWAITING, "CHANNELD_SHUTTING_DOWN") and conn:
        d["owner"] = "channeld"
    elif ch.state.startswith("CLOSINGD") and conn:
        d["owner"] = "closingd"
    elif ch.state in ("ONCHAIN", "FUNDING_SPEND_SEEN"):
        d["owner"] = "onchaind"
    if ch.state != AWAITING:
        d["short_channel_id"] = ch.scid
        d["direction"] = 0 if node.id < ch.peer_id else 1
    d["channel_id"] = ch.channel_id
    d["funding_txid"] = ch.funding_txid
    d["funding_outnum"] = ch.funding_outnum
    d["close_to_addr"] = "bc1p" + _h("addr", ch.scid)[:58]
    d["close_to"] = "5120" + _h("spk", ch.scid)
    d["private"] = False
    d["opener"] = ch.opener
    if ch.state != AWAITING:
        local_alias, remote_alias = _aliases(ch.first_scid or ch.scid)
        d["alias"] = {"local": local_alias, "remote": remote_alias}
    d["features"] = ["option_static_remotekey", "option_anchors"]
    if ch.splice is not None:
        sp = ch.splice
        d["inflight"] = [{"funding_txid": sp["funding_txid"], "funding_outnum": 0, "feerate": f"{perkw}perkw",
                          "total_funding_msat": ch.capacity_msat + sp["amount_sat"] * 1000,
                          "splice_amount": sp["amount_sat"], "our_funding_msat": ch.to_us_msat + sp["amount_sat"] * 1000,
                          "scratch_txid": _h("scratch", sp["funding_txid"], ch.to_us_msat)}]
        # required with `inflight` (the schema); lightningd's feerates of the splice negotiation, the next one +25%
        d["initial_feerate"] = d["last_feerate"] = f"{perkw}perkw"
        d["next_feerate"] = f"{perkw * 5 // 4}perkw"
    d["funding"] = {"local_funds_msat": cap if ch.opener == "local" else 0,
                    "remote_funds_msat": 0 if ch.opener == "local" else cap,
                    "pushed_msat": ch.pushed_msat, "withheld": False}
    d["to_us_msat"] = ch.to_us_msat
    d["min_to_us_msat"] = ch.min_to_us
    d["max_to_us_msat"] = ch.max_to_us
    d["total_msat"] = cap
    d["fee_base_msat"] = ch.fee_base
    d["fee_proportional_millionths"] = ch.fee_ppm
    d["dust_limit_msat"] = 546000
    d["max_total_htlc_in_msat"] = U64MAX
    d["their_max_htlc_value_in_flight_msat"] = U64MAX
    d["our_max_htlc_value_in_flight_msat"] = U64MAX
    d["their_reserve_msat"] = ch.reserve
    d["our_reserve_msat"] = ch.reserve
    d["spendable_msat"] = node.spendable_msat(ch, commit_fee_msat)
    d["receivable_msat"] = node.receivable_msat(ch, commit_fee_msat)
    d["minimum_htlc_in_msat"] = 0
    d["minimum_htlc_out_msat"] = ch.htlcmin
    d["maximum_htlc_out_msat"] = ch.htlcmax
    d["their_to_self_delay"] = 144
    d["our_to_self_delay"] = 144
    d["max_accepted_htlcs"] = ch.max_accepted_htlcs
    d["state_changes"] = [dict(change) for change in ch.state_changes]   # flat dicts of strings
    d["status"] = [f"{ch.state}:Reconnected, and reestablished.", f"{ch.state}:Channel ready for use."] if conn \
        else [f"{ch.state}:Peer not connected."]
    d.update(ch.stats)
    d["htlcs"] = [dict(h) for h in ch.held]
    return d


@functools.lru_cache(maxsize=1 << 16)
def _aliases(scid: str) -> tuple[str, str]:
    """A channel's (local, remote) scid aliases, fixed for its life."""
    return (f"{int(_h('al', scid)[:5], 16)}x{int(_h('al2', scid)[:5], 16)}x1",
            f"{int(_h('ar', scid)[:5], 16)}x{int(_h('ar2', scid)[:5], 16)}x1")


def _visible_peer_chans(node: SimNode) -> list[Chan]:
    return [c for c in node.channels.values() if c.state != "CLOSED"]


def _h_getinfo(node: SimNode, p: dict) -> dict:
    chans = _visible_peer_chans(node)
    return {
        "id": node.id, "alias": node.scenario.node.alias, "color": node.scenario.node.color,
        "num_peers": sum(1 for x in node.peers.values() if x["connected"]),
        "num_pending_channels": sum(1 for c in chans if c.state == AWAITING),
        "num_active_channels": sum(1 for c in chans if c.state in LIVE),
        "num_inactive_channels": sum(1 for c in chans if c.state not in (*LIVE, AWAITING)),
        "address": [], "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": 9735}],
        "version": "v25.12.1", "blockheight": node.blockheight, "network": node.scenario.node.network,
        "fees_collected_msat": node.ledger.fees_earned_msat,
        "lightning-dir": os.path.join(node.lightning_dir or "/var/lib/simnode", node.scenario.node.network),
        "our_features": {"init": "0898880a8a59a1", "node": "8898880a8a59a1", "channel": "",
                         "invoice": "02000002024100"}}


def _h_listpeerchannels(node: SimNode, p: dict) -> dict:
    if "id" in p and "short_channel_id" in p:
        raise _BadParam("Cannot specify both short_channel_id and id")
    out = []
    perkw, commit_fee_msat = max(253, node._commit_perkw()), node._commit_fee_msat()
    for c in _visible_peer_chans(node):
        if "id" in p and c.peer_id != p["id"]:
            continue
        if "short_channel_id" in p and c.scid != p["short_channel_id"]:
            continue
        out.append(_peer_chan_json(node, c, perkw, commit_fee_msat))
    return {"channels": out}


def _h_listpeers(node: SimNode, p: dict) -> dict:
    out = []
    for pid, peer in node.peers.items():
        if "id" in p and pid != p["id"]:
            continue
        n = sum(1 for c in node.channels.values() if c.peer_id == pid and c.state != "CLOSED")
        if not peer["connected"] and n == 0:
            continue
        d = {"id": pid, "connected": peer["connected"], "num_channels": n}
        if peer["connected"]:
            d["netaddr"] = [peer["netaddr"]]
        d["features"] = "0898880a8a59a1"
        out.append(d)
    return {"peers": out}


def _h_listfunds(node: SimNode, p: dict) -> dict:
    txid = _h("wallet-utxo", node.scenario.name)
    outputs = [{"txid": txid, "output": 1, "amount_msat": max(0, node.onchain_msat),
                "scriptpubkey": "5120" + _h("wspk"), "address": "bc1p" + _h("waddr")[:58], "status": "confirmed",
                "blockheight": node.scenario.node.blockheight - 1000, "reserved": False}]
    chans = []
    for c in node.channels.values():
        if c.state == "CLOSED":
            continue
        d = {"peer_id": c.peer_id, "connected": node.peers[c.peer_id]["connected"], "state": c.state,
             "channel_id": c.channel_id}
        if c.state != AWAITING:
            d["short_channel_id"] = c.scid
        d.update({"our_amount_msat": c.to_us_msat, "amount_msat": c.capacity_msat, "funding_txid": c.funding_txid,
                  "funding_output": c.funding_outnum})
        chans.append(d)
    return {"outputs": outputs, "channels": chans}


def _h_listforwards(node: SimNode, p: dict) -> dict:
    index = p.get("index")
    if ("start" in p or "limit" in p) and index is None:
        raise _BadParam("index: Can only specify start/limit with index")
    start = p.get("start", 0)
    if index == "updated":
        lo = bisect.bisect_left([r["updated_index"] for r in node._updated], start) if start else 0
        src = node._updated[lo:]
    elif index == "created":
        src = node.forwards[max(0, start - 1):]
    else:
        src = node.forwards
    st, ic, oc = p.get("status"), p.get("in_channel"), p.get("out_channel")
    limit = p.get("limit")
    out = []
    for r in src:
        if st is not None and r["status"] != st:
            continue
        if ic is not None and r["in_channel"] != ic:
            continue
        if oc is not None and r.get("out_channel") != oc:
            continue
        out.append(dict(r))
        if limit is not None and len(out) >= limit:
            break
    return {"forwards": out}


def _h_listhtlcs(node: SimNode, p: dict) -> dict:
    out = []
    for c in node.channels.values():
        if "id" in p and p["id"] not in (c.scid, c.channel_id):
            continue
        for h in c.held:
            out.append({"short_channel_id": c.scid, "id": h["id"], "expiry": h["expiry"],
                        "direction": h["direction"], "amount_msat": h["amount_msat"],
                        "payment_hash": h["payment_hash"], "state": h["state"]})
    return {"htlcs": out}


def _chan_dir(node: SimNode, ch: Chan, from_us: bool) -> dict:
    src, dst = (node.id, ch.peer_id) if from_us else (ch.peer_id, node.id)
    cap = ch.capacity_msat
    return {"source": src, "destination": dst, "short_channel_id": ch.scid, "direction": 0 if src < dst else 1,
            "public": True, "amount_msat": cap, "message_flags": 1, "channel_flags": 0 if src < dst else 1,
            "active": node.peers[ch.peer_id]["connected"],
            "last_update": ch.last_update if from_us else int(ch.opened_time) + 3600,
            "base_fee_millisatoshi": ch.fee_base if from_us else ch.remote_fee_base,
            "fee_per_millionth": ch.fee_ppm if from_us else ch.remote_fee_ppm,
            "delay": 34 if from_us else 80,
            "htlc_minimum_msat": ch.htlcmin if from_us else 0,
            "htlc_maximum_msat": ch.htlcmax if from_us else cap - cap // 100, "features": ""}


_GOSSIPED = frozenset((*LIVE, "CHANNELD_SHUTTING_DOWN"))


def _h_listchannels(node: SimNode, p: dict) -> dict:
    if sum(k in p for k in ("short_channel_id", "source", "destination")) > 1:
        raise _BadParam("Can only specify one of short_channel_id, source or destination")
    filters = [(k, p[k]) for k in ("short_channel_id", "source", "destination") if k in p]

    def keep(src: str, dst: str, scid: str) -> bool:   # filter before building each entry
        return all({"source": src, "destination": dst, "short_channel_id": scid}[k] == v for k, v in filters)

    end = p.get("source", p.get("destination"))
    # one peer's end (the price-anchor survey asks 100 times a fee cycle): one pass over its channels only
    listed = [c for c in node.by_peer.get(end, ()) if c.state in _GOSSIPED] if end is not None and end != node.id \
        else []
    if listed:
        peer_ids = {end}
    else:
        listed = [c for c in node.channels.values() if c.state in _GOSSIPED]
        peer_ids = {c.peer_id for c in listed}
    out = [_chan_dir(node, c, from_us) for c, from_us in _our_directions(node, listed, filters)]
    if end is not None and end == node.id:
        peers = []
    elif end is not None and end in peer_ids:
        peers = [end]               # a competitor's node is never us or one of our peers
    else:
        peers = sorted(peer_ids)    # (sorted only when listed: a survey of 100 peers sorted 5,000 ids per call)
    prices = node.competitors.market_ppm() if peers else {}
    for pid in peers:
        for comp, ppm in node.competitors.fees(pid, prices):
            out += [_competitor_dir(node, comp, pid, ppm, to_peer) for to_peer in (True, False)
                    if keep(*((comp.node_id, pid) if to_peer else (pid, comp.node_id)), comp.scid)]
    return {"channels": out}


def _our_directions(node: SimNode, listed: list[Chan], filters: list[tuple[str, str]]) -> list[tuple[Chan, bool]]:
    """(channel, from_us) of our channels' directions that match the filter; each of ours runs us ↔ a peer."""
    if not filters:
        return [(c, from_us) for c in listed for from_us in (True, False)]
    ((key, value),) = filters
    if key == "short_channel_id":
        return [(c, from_us) for c in listed if c.scid == value for from_us in (True, False)]
    if value == node.id:
        return [(c, key == "source") for c in listed]
    return [(c, key == "destination") for c in listed if c.peer_id == value]


def _competitor_dir(node: SimNode, comp: Competitor, peer_id: str, ppm: int, to_peer: bool) -> dict:
    """One direction of a competitor's channel with our peer (revops/sim/competitors.py)."""
    src, dst = (comp.node_id, peer_id) if to_peer else (peer_id, comp.node_id)
    cap = comp.capacity_msat
    return {"source": src, "destination": dst, "short_channel_id": comp.scid, "direction": 0 if src < dst else 1,
            "public": True, "amount_msat": cap, "message_flags": 1, "channel_flags": 0 if src < dst else 1,
            "active": True, "last_update": node.scenario.node.start_time - 86_400,
            "base_fee_millisatoshi": 1000, "fee_per_millionth": ppm, "delay": 80,
            "htlc_minimum_msat": 0, "htlc_maximum_msat": cap - cap // 100, "features": ""}


def _h_listnodes(node: SimNode, p: dict) -> dict:
    ids = [node.id] + [pid for pid in node.peers
                       if any(c.peer_id == pid and c.state in LIVE for c in node.channels.values())]
    out = []
    for nid in ids:
        if "id" in p and p["id"] != nid:
            continue
        alias = node.scenario.node.alias if nid == node.id else node.peers[nid]["alias"]
        out.append({"nodeid": nid, "alias": alias[:32], "color": nid[2:8],
                    "last_timestamp": node.scenario.start_time - 3600, "features": "8898880a8a59a1",
                    "addresses": []})
    return {"nodes": out}


def _h_feerates(node: SimNode, p: dict) -> dict:
    est = node.mempool.estimates_perkw(node._t)
    kw = {"opening": est[12], "mutual_close": est[100], "unilateral_close": est[6],
          "unilateral_anchor_close": max(1250, est[100]), "penalty": est[12],
          "min_acceptable": max(253, est[100] // 2), "max_acceptable": est[2] * 10, "floor": 253}
    style = p["style"]
    mul = 4 if style == "perkb" else 1
    body = {k: v * mul for k, v in kw.items()}
    body["estimates"] = [{"blockcount": b, "feerate": est[b] * mul, "smoothed_feerate": est[b] * mul}
                         for b in (2, 6, 12, 100)]
    return {style: body, "onchain_fee_estimates": {
        "opening_channel_satoshis": kw["opening"] * 702 // 1000,
        "mutual_close_satoshis": kw["mutual_close"] * 673 // 1000,
        "unilateral_close_satoshis": kw["unilateral_anchor_close"] * 1112 // 1000,
        "unilateral_close_nonanchor_satoshis": kw["unilateral_close"] * 598 // 1000,
        "htlc_timeout_satoshis": kw["unilateral_close"] * 663 // 1000,
        "htlc_success_satoshis": kw["unilateral_close"] * 703 // 1000}}


def _h_setchannel(node: SimNode, p: dict) -> dict:
    ident = p["id"]
    ok_states = (*LIVE, AWAITING)
    if ident == "all":
        targets = [c for c in node.channels.values() if c.state in ok_states]
    elif ident in node.channels:
        targets = [node.channels[ident]]
        if targets[0].state not in ok_states:
            raise _BadParam(f"id: Channel is in state {targets[0].state}: {_BADTOK}")
    elif ident in node.by_chanid:
        targets = [node.by_chanid[ident]]
    elif ident in node.peers:
        targets = [c for c in node.channels.values() if c.peer_id == ident and c.state in ok_states]
        if not targets:
            raise _BadParam(f"id: Could not find any active channels of peer with that id: {_BADTOK}")
    else:
        raise _BadParam(f"id: Short channel id not found: {_BADTOK}")
    if "htlcmin" in p and "htlcmax" in p and p["htlcmin"] > p["htlcmax"]:
        raise _BadParam("htlcmax: htlcmax cannot be less than htlcmin")
    out = []
    for c in targets:
        if "htlcmin" in p:
            c.htlcmin = p["htlcmin"]
        node.set_fee(c, p.get("feebase"), p.get("feeppm"), p.get("enforcedelay"), p.get("htlcmax"))
        out.append({"peer_id": c.peer_id, "channel_id": c.channel_id, "short_channel_id": c.scid,
                    "fee_base_msat": c.fee_base, "fee_proportional_millionths": c.fee_ppm,
                    "minimum_htlc_out_msat": c.htlcmin, "maximum_htlc_out_msat": c.htlcmax,
                    "ignore_fee_limits": p.get("ignorefeelimits", True)})
        if c.state == AWAITING:
            del out[-1]["short_channel_id"]
    return {"channels": out}


def _configs(node: SimNode) -> dict:
    net = node.scenario.node.network
    ld = node.lightning_dir or "/var/lib/simnode"
    plugins = [x["name"] for x in _plugin_list(node) if x["name"].startswith("/") and not x["name"].startswith(PLUGIN_DIR)]
    c = {
        "developer": {"set": False, "source": "default"},
        "lightning-dir": {"value_str": ld, "source": "cmdline"},
        "network": {"value_str": net, "source": "default" if net == "bitcoin" else "cmdline"},
        "mainnet": {"set": net == "bitcoin", "source": "default"},
        "regtest": {"set": net == "regtest", "source": "default"},
        "testnet": {"set": net == "testnet", "source": "default"},
        "signet": {"set": net == "signet", "source": "default"},
        "rpc-file": {"value_str": "lightning-rpc", "source": "default"},
        "allow-deprecated-apis": {"value_bool": True, "source": "default"},
        "alias": {"value_str": node.scenario.node.alias, "source": f"{ld}/config:1"},
        "rgb": {"value_str": node.scenario.node.color, "source": "default"},
        "ignore-fee-limits": {"value_bool": False, "source": "default"},
        "funding-confirms": {"value_int": 3, "source": "default"},
        "cltv-delta": {"value_int": 34, "source": "default"},
        "cltv-final": {"value_int": 18, "source": "default"},
        "fee-base": {"value_int": 1000, "source": "default"},
        "fee-per-satoshi": {"value_int": 10, "source": "default"},
        "htlc-minimum-msat": {"value_msat": 0, "source": "default"},
        "htlc-maximum-msat": {"value_msat": U64MAX, "source": "default"},
        "max-concurrent-htlcs": {"value_int": 30, "source": "default"},
        "max-dust-htlc-exposure-msat": {"value_msat": 50000000, "source": "default"},
        "min-capacity-sat": {"value_int": 10000, "source": "default", "dynamic": True},
        "commit-fee": {"value_int": 100, "source": "default"},
        "log-level": {"value_str": "info", "source": "default"},
    }
    if plugins:
        c["plugin"] = {"values_str": plugins, "sources": [f"{ld}/config:2"] * len(plugins)}
    return c


def _h_listconfigs(node: SimNode, p: dict) -> dict:
    c = _configs(node)
    if "config" in p:
        if p["config"] not in c:
            raise _BadParam(f"config: Unknown config option {p['config']}: {_BADTOK}")
        return {"configs": {p["config"]: c[p["config"]]}}
    return {"configs": c}


def _plugin_list(node: SimNode) -> list[dict]:
    out = [{"name": f"{PLUGIN_DIR}/{n}", "active": True, "dynamic": d} for n, d in _BUILTIN_PLUGINS]
    if node.plugins["bookkeeper"]:
        out.append({"name": f"{PLUGIN_DIR}/bookkeeper", "active": True, "dynamic": False})
    for name, path in PLUGIN_PATHS.items():
        # clboss too is dynamic: cln-fixtures' clboss was "loaded dynamically" (plugin start) on node B
        if node.plugins[name]:
            out.append({"name": path, "active": True, "dynamic": True})
    out.extend(node.extra_plugins)
    return out


def _h_plugin(node: SimNode, p: dict) -> dict:
    sub = p["subcommand"]
    if sub == "list":
        return {"command": "list", "plugins": _plugin_list(node)}
    name = os.path.basename(p.get("plugin", ""))
    if sub in ("start", "stop") and name in ("sling", "clboss"):
        if sub == "stop":
            if not node.plugins[name]:
                raise _BadParam(f"Could not find plugin {name}")
            node.set_plugin_installed(name, False)
            return {"command": "stop", "result": f"Successfully stopped {name}."}
        node.set_plugin_installed(name, True)
        return {"command": "start", "plugins": _plugin_list(node)}
    if sub == "stop" and name == "bookkeeper":
        raise _BadParam("bookkeeper cannot be managed when --plugin-dir or --plugin is not dynamic")
    if "plugin" not in p and sub in ("start", "stop", "startdir"):
        raise _BadParam("missing required parameter: plugin")
    raise _BadParam(f"{p.get('plugin')}: plugin not known to the simulated node")


def _h_setconfig(node: SimNode, p: dict) -> dict:
    """lightningd's setconfig of a plugin option: it does not parse the value, it hands the text to the plugin
    (which may refuse it), answers with the value as it reads it, and keeps `name=text` (config.setconfig,
    parsed again at the next start: revops/sim/plugin_opts.py) unless transient."""
    name = p["config"]
    opt = node.dynamic_options.get(name)
    if opt is None:
        raise _BadParam(f"Unknown config option {name}")
    if p.get("val") is None:
        raise _BadParam(f"{name} requires a value")
    text = json_text(p["val"])
    try:
        opt.on_change(name, text)
    except RpcError:
        raise
    except Exception as e:  # noqa: BLE001 - the plugin's refusal, answered as lightningd does
        raise node.rpc_error("setconfig", p, getattr(e, "code", -32602), getattr(e, "message", str(e))) from None
    try:
        value = option_value(opt.type, text)
    except ValueError:   # a plugin took a word lightningd does not: it shows false, and will not start with it
        value = False if opt.type == "bool" else text
    if p.get("transient"):
        return setconfig_result(name, value, "setconfig transient")
    node.setconfig_values[name] = text
    line = list(node.setconfig_values).index(name) + 1
    return setconfig_result(name, value, f"{node.lightning_dir or '.'}/config.setconfig:{line}")


_HANDLERS: dict[str, Callable[[SimNode, dict], dict]] = {
    "getinfo": _h_getinfo, "listpeerchannels": _h_listpeerchannels, "listpeers": _h_listpeers,
    "listfunds": _h_listfunds, "listforwards": _h_listforwards, "listchannels": _h_listchannels,
    "listnodes": _h_listnodes, "feerates": _h_feerates, "setchannel": _h_setchannel,
    "listconfigs": _h_listconfigs, "plugin": _h_plugin, "listhtlcs": _h_listhtlcs, "setconfig": _h_setconfig,
}
