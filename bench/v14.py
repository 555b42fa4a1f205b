"""Controller (e): a faithful port of the reference cl-revenue-ops v1.4 fee controller (reference §5.3).

Ported with its constants AND its flaws, on purpose (reference §10):
* revenue is modelled as outbound volume × the current fee (not the fees earned), reputation-weighted
  unless the channel is PROFITABLE, times 24 h uptime;
* the liquidity and profitability multipliers multiply the fee itself every cycle, so they compound;
* the 5 % gossip gate is strict (`>`), with an observation pause when a move is held;
* the Vegas Reflex is computed but never applied (so it is left out: it cannot change a fee);
* Virgin-channel amnesty never applies (the fee loop has no `opener`);
* fire sale (1 ppm) for old UNDERWATER channels with ROI < −50 %.
Not ported: the EV rebalancer (no rebalancing), the zero-fee probe (only started by the never-invoked
defibrillator), the HTLC stall premium (simulated HTLCs resolve in ~1.5 s, so it would never trigger),
the ±20 % flow-loop jitter.
"""
from __future__ import annotations

import attrs

from bench.controllers import DAY, HOUR, Chan, ForwardLog, read_channels, set_fee
from revops.sim.node import SimNode

STEP_PPM, MIN_STEP_PPM, MAX_STEP_PPM, MAX_CONSECUTIVE = 50, 10, 200, 5
STEP_PERCENT, DAMPENING = 0.05, 0.5
MIN_OBSERVATION_HOURS = 1.0
VOLATILITY, STABILITY, WAKE_UP = 0.50, 0.01, 0.20
SLEEP_CYCLES, STABLE_CYCLES_REQUIRED = 4, 3
MIN_FEE, MAX_FEE = 10, 5000
FEE_INTERVAL, FLOW_INTERVAL = 1800, 3600
FLOW_WINDOW_DAYS = 7
CONGESTION = 0.8
SCARCITY = 0.35
REPUTATION_DECAY = 0.98
OPEN_COST_FALLBACK_SAT = 5000
STATIC_FLOOR_PPM = 21
LIQUIDITY_BUCKETS = ((0.10, 3.0), (0.25, 2.0), (0.40, 1.25), (0.60, 1.0), (0.75, 0.85), (0.90, 0.7))


def liquidity_multiplier(ratio: float) -> float:
    for upper, mult in LIQUIDITY_BUCKETS:
        if ratio < upper:
            return mult
    return 0.5


def profitability_multiplier(marginal_roi: float) -> float:
    if marginal_roi > 0.20:
        return 0.95
    if marginal_roi >= 0:
        return 1.0
    if marginal_roi >= -0.20:
        return 1.05
    return 1.10 if marginal_roi >= -0.50 else 1.15


def economic_floor(sat_vb: float) -> int:
    """§5.3.3 without the stall premium: static 21 ppm, replacement cost, 3 ppm per sat/vB risk premium."""
    floor = float(STATIC_FLOOR_PPM)
    open_cost = min(50_000, max(500, int(sat_vb * 140)))
    close_cost = min(50_000, max(300, int(sat_vb * 200)))
    floor = max(floor, (open_cost + close_cost) / (1_000_000 * 365) * 1e6)
    if sat_vb > 0:
        floor = max(floor, sat_vb * 150 * 0.001 / 50_000 * 1e6)
    return max(1, int(floor))


@attrs.define
class HillState:
    last_revenue_rate: float = 0.0
    last_fee_ppm: int = 0
    trend: int = 1
    step: int = STEP_PPM
    last_update: int = 0
    consecutive: int = 0
    sleeping: bool = False
    sleep_until: int = 0
    stable_cycles: int = 0
    last_broadcast: int = 0
    last_state: str = "balanced"


@attrs.define
class V14HillClimber:
    name: str = "v1.4"
    interval_s: int = FEE_INTERVAL
    log: ForwardLog = attrs.field(factory=ForwardLog)
    states: dict[str, HillState] = attrs.field(factory=dict)
    flow_state: dict[str, str] = attrs.field(factory=dict)
    reputation: dict[str, list[float]] = attrs.field(factory=dict)   # incoming peer -> [successes, failures]
    uptime: dict[str, list[tuple[int, bool]]] = attrs.field(factory=dict)
    fees_out: dict[str, int] = attrs.field(factory=dict)          # scid -> lifetime fees as outgoing, sat
    last_routed: dict[str, float] = attrs.field(factory=dict)     # scid -> newest settled outgoing forward
    outgoing: dict[str, list[tuple[float, int, str]]] = attrs.field(factory=dict)  # scid -> (time, sat, in_channel)
    next_flow: int = 0

    # ---------------------------------------------------------------- observations
    def _ingest(self, node: SimNode, peer_of: dict[str, str]) -> None:
        for f in self.log.poll(node):
            if f["status"] == "settled" and f.get("out_channel"):
                out = f["out_channel"]
                self.fees_out[out] = self.fees_out.get(out, 0) + int(f["fee_msat"]) // 1000
                self.last_routed[out] = f["received_time"]
                self.outgoing.setdefault(out, []).append((f["received_time"], f["out_msat"] // 1000, f["in_channel"]))
            peer = peer_of.get(f["in_channel"])
            if peer is None or f["status"] == "offered":
                continue
            rep = self.reputation.setdefault(peer, [0.0, 0.0])
            rep[0 if f["status"] == "settled" else 1] += 1

    def _flow_analysis(self, chans: list[Chan], now: int) -> None:
        """§5.1: 7 daily buckets weighted 0.8^k; source/sink by (ema_out − ema_in)/capacity; else balance."""
        buckets: dict[str, list[list[int]]] = {c.scid: [[0, 0] for _ in range(FLOW_WINDOW_DAYS)] for c in chans}
        for f in reversed(self.log.rows):
            if now - f["received_time"] > FLOW_WINDOW_DAYS * DAY:
                break
            if f["status"] != "settled":
                continue
            k = min(FLOW_WINDOW_DAYS - 1, int((now - f["received_time"]) // DAY))
            if f["in_channel"] in buckets:
                buckets[f["in_channel"]][k][0] += f["in_msat"] // 1000
            if f.get("out_channel") in buckets:
                buckets[f["out_channel"]][k][1] += f["out_msat"] // 1000
        weights = [0.8 ** k for k in range(FLOW_WINDOW_DAYS)]
        for c in chans:
            b = buckets[c.scid]
            cap = c.capacity_msat // 1000
            if c.htlcs / max(1, c.max_htlcs) > CONGESTION:
                self.flow_state[c.scid] = "congested"
            elif any(i or o for i, o in b):
                ema_in = sum(w * x[0] for w, x in zip(weights, b)) / sum(weights)
                ema_out = sum(w * x[1] for w, x in zip(weights, b)) / sum(weights)
                ratio = (ema_out - ema_in) / cap if cap else 0.0
                self.flow_state[c.scid] = "source" if ratio > 0.5 else "sink" if ratio < -0.5 else "balanced"
            else:
                r = c.local_ratio
                self.flow_state[c.scid] = "source" if r < 0.30 else "sink" if r > 0.70 else "balanced"
        for rep in self.reputation.values():
            rep[0], rep[1] = float(int(rep[0] * REPUTATION_DECAY)), float(int(rep[1] * REPUTATION_DECAY))

    def _score(self, peer: str | None) -> float:
        s, f = self.reputation.get(peer or "", (None, None))
        return 0.5 if s is None else (s + 1) / (s + f + 2)

    def _uptime(self, peer: str, now: int) -> float:
        samples = self.uptime.get(peer, [])
        return 100.0 if len(samples) < 2 else 100.0 * sum(up for _, up in samples) / len(samples)

    # ---------------------------------------------------------------- profitability (§5.6, no rebalancing)
    def _profitability(self, ch: Chan, now_height: int, now: int) -> tuple[str, float, float, int]:
        """(class, roi, marginal_roi, days_open) from lifetime fees and the open cost."""
        fees = self.fees_out.get(ch.scid, 0)
        cost = OPEN_COST_FALLBACK_SAT if ch.opener == "local" else 0
        roi = (fees - cost) / cost if cost else (1.0 if fees > 0 else 0.0)
        marginal = 1.0 if fees > 0 else 0.0
        days_open = max(0, (now_height - ch.height) * 600 // DAY)
        last_routed = self.last_routed.get(ch.scid)
        idle_days = days_open if last_routed is None else (now - last_routed) / DAY
        if idle_days >= 7 and roi < -0.10:
            klass = "stagnant_candidate"
        elif roi > 0.10:
            klass = "profitable"
        elif roi < -0.10:
            klass = "underwater"
        else:
            klass = "break_even"
        return klass, roi, marginal, days_open

    # ---------------------------------------------------------------- the fee loop
    def step(self, node: SimNode, now: int) -> None:
        chans = read_channels(node)
        peer_of = {c.scid: c.peer_id for c in chans}
        self._ingest(node, peer_of)
        for c in chans:
            samples = self.uptime.setdefault(c.peer_id, [])
            samples.append((now, c.connected))
            while samples[0][0] < now - DAY:
                samples.pop(0)
        if now >= self.next_flow:
            self._flow_analysis(chans, now)
            self.next_flow = now + FLOW_INTERVAL
        perkb = node.call("feerates", {"style": "perkb"})["perkb"]
        sat_vb = (perkb.get("opening") or perkb.get("mutual_close") or perkb.get("floor") or 1000) / 1000
        height = node.call("getinfo", {})["blockheight"]
        for c in chans:
            if c.scid in self.flow_state:
                self._adjust(node, c, now, sat_vb, height, peer_of)

    def _adjust(self, node: SimNode, c: Chan, now: int, sat_vb: float, height: int,
                peer_of: dict[str, str]) -> None:
        st = self.states.setdefault(c.scid, HillState())
        first = st.last_update == 0
        raw_fee = c.fee_ppm
        current = raw_fee or MIN_FEE
        klass, roi, marginal, days_open = self._profitability(c, height, now)
        fire_sale = days_open > 90 and klass == "underwater" and roi < -0.5
        if fire_sale and marginal > 0.05 and days_open < 180:
            fire_sale = False
        rate = self._rate(c, st, now, klass == "profitable", peer_of)
        if st.sleeping:
            if now > st.sleep_until:
                st.sleeping, st.stable_cycles = False, 0
            elif abs(rate - st.last_revenue_rate) / max(1.0, st.last_revenue_rate) <= WAKE_UP:
                return
            else:
                st.sleeping = False
        hours = (now - st.last_update) / HOUR
        if not first and hours < MIN_OBSERVATION_HOURS:
            return
        flow = self.flow_state[c.scid]
        floor = max(1, int(max(economic_floor(sat_vb), MIN_FEE) * {"source": 1.25, "sink": 0.80}.get(flow, 1.0)))
        ceiling = MAX_FEE
        trend, step, consecutive, stable = st.trend, st.step, st.consecutive, st.stable_cycles
        if flow == "congested":
            decision, target = "congestion", ceiling
        elif fire_sale:
            decision, target = "fire_sale", 1
        else:
            decision = "hill_climb"
            ratio = (abs(rate - st.last_revenue_rate) / max(1.0, st.last_revenue_rate)
                     if st.last_update > 0 and st.last_revenue_rate > 0 else 0.0)
            if ratio > VOLATILITY:
                step, stable = STEP_PPM, 0
            if st.last_update > 0 and ratio < STABILITY:
                stable += 1
                if stable >= STABLE_CYCLES_REQUIRED:
                    st.sleeping, st.sleep_until, st.stable_cycles = True, now + FEE_INTERVAL * SLEEP_CYCLES, 0
                    st.last_revenue_rate, st.last_fee_ppm, st.last_update = rate, current, now
                    return
            else:
                stable = 0
            if first:
                trend = 1
            elif rate > st.last_revenue_rate:
                consecutive += 1
                if ratio > 0.20:
                    step = min(MAX_STEP_PPM, step * 2)
            else:
                trend, consecutive, step = -trend, 0, max(MIN_STEP_PPM, int(step * DAMPENING))
            step = min(max(step, int(max(current * STEP_PERCENT, MIN_STEP_PPM))), MAX_STEP_PPM)
            if consecutive > MAX_CONSECUTIVE:
                step = max(MIN_STEP_PPM, step // 2)
            base = current + trend * step
            target = int(base * liquidity_multiplier(c.local_ratio) * profitability_multiplier(marginal))
            if c.local_ratio < SCARCITY:
                target = int(target * min(3.0, max(1.0, 1 + 2 * (1 - c.local_ratio / SCARCITY))))
            target = max(floor, min(ceiling, target))
        emergency = decision in ("congestion", "fire_sale")
        need = 1 if current < 100 else max(5, int(current * 0.03))
        if not emergency and abs(target - current) < need:
            return
        leaving = st.last_state in ("congestion", "fire_sale") and decision != st.last_state
        if not (abs(target - st.last_broadcast) > 0.05 * st.last_broadcast or st.last_broadcast <= 1
                or target <= 1 or (emergency and decision != st.last_state) or leaving):
            st.last_revenue_rate, st.trend, st.step = rate, trend, step
            st.consecutive, st.stable_cycles = consecutive, stable
            return
        if target != raw_fee:
            set_fee(node, c.scid, 0, target)
        st.last_fee_ppm, st.last_broadcast, st.last_update = current, target, now
        st.last_revenue_rate, st.trend, st.step = rate, trend, step
        st.consecutive, st.stable_cycles, st.last_state = consecutive, stable, decision

    def _rate(self, c: Chan, st: HillState, now: int, shielded: bool, peer_of: dict[str, str]) -> float:
        """§5.3.2 f–h: (reputation-weighted) outbound sats since last_update × fee / 1e6, per hour."""
        since = st.last_update
        volume = 0.0
        for t, sats, in_channel in reversed(self.outgoing.get(c.scid, [])):
            if t < since:
                break
            volume += sats * (1.0 if shielded else self._score(peer_of.get(in_channel)))
        volume *= self._uptime(c.peer_id, now) / 100
        hours = max(MIN_OBSERVATION_HOURS, (now - since) / HOUR) if since else 1.0
        return int(volume * (c.fee_ppm or MIN_FEE) // 1_000_000) / hours
