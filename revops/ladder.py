"""The revenue search: Thompson sampling over a small ladder of fee levels around a centre.

Hill climbing's identity is kept — perturb (visit a level), observe (what it earned while in force), move
toward what earns more (the centre climbs when a neighbour clearly earns more) — but every visit to a level
adds to that level's evidence, so the noise of single windows averages out instead of steering the fee.
Levels sit on one geometric grid (fee = 1.2^level ppm), so evidence gathered around an old centre still
counts after the centre moves. When the going rate moves, the evidence moves with it (it says how a fee
relative to the going rate sells), and it fades (half-life one week) so the search follows a moving market.

Each level's demand is a Gamma posterior on its forwards per hour. Its prior is the channel's pooled rate
moved by unit price elasticity (twice the fee, half the forwards): the prior alone favours no level, so only
evidence moves the fee, and silence is never read as a signal. The value of a level is what it earns net of
the liquidity it sells: forwards × volume × (fee − shadow price), where the shadow price is what refilling
the channel costs (the rebalancer's own inbound estimate), positive when the channel is emptier than half,
negative when fuller (never more than the channel's own fee: no refill that costs more than routing earns is
ever bought).

Pure functions; time and randomness arrive as arguments. docs/fees.md §4 explains one channel's story.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

import attrs

RATIO = 1.2                  # one level = ×1.2: four times the 5 % gossip gate, so every move is relayed
HALF_WIDTH = 2               # the ladder: centre − 2 … centre + 2, i.e. ×0.69 … ×1.44 around the centre
DWELL_HOURS = 12.0           # a level is held ≥ 12 h: at most 2 moves a day, the relay budget per channel
MAX_DWELL_HOURS = 7 * 24.0   # a silent channel's probing backs off (×2 per silent dwell) to once a week
HALF_LIFE_HOURS = 7 * 24.0   # evidence halves every week
PRIOR_FORWARDS = 2.0         # the prior weighs as much as two forwards: wide, so untried levels get tried
CLEARLY = 0.8                # the centre moves when a neighbour earns more in ≥ 80 % of posterior draws
DRAWS = 64                   # posterior draws for that probability
SIGNAL_FORWARDS = 3.0        # fewer (decayed) forwards than this on the whole ladder: too little to search on
FULL_SHARE = 0.9             # a silent channel this full is priced where nobody pays: its centre steps down
MIN_RATE_PER_HOUR = 1 / 168  # prior demand when a channel has no history: one forward a week
SHADOW_SHARE = 0.5           # at half full a sold sat is worth nothing extra; empty: its refill cost; full: minus
                             # that, at most minus the fee


@attrs.frozen
class Evidence:
    """What one fee level earned while in force (decayed sums)."""

    hours: float = 0.0
    forwards: float = 0.0
    fees_msat: float = 0.0   # a decayed sum: a rate-like quantity, not a balance


@attrs.frozen
class LadderState:
    """The search's memory for one channel."""

    centre: int | None = None                       # None until the first decision (then: the fee in force)
    evidence: dict[int, Evidence] = attrs.field(factory=dict)
    evidence_at: int = 0                            # when the evidence was last decayed
    dwell_hours: float = DWELL_HOURS
    max_settled_ppm: int = 0                        # the highest fee at which forwards ever settled
    anchor_ppm: int | None = None                   # the going rate the centre last followed
    chosen_because: str = ""                        # the reason of the last choice (revenue-status)


def level_of(ppm: int) -> int:
    return round(math.log(max(1, ppm)) / math.log(RATIO))


def fee_of(level: int) -> int:
    return max(1, round(RATIO ** level))


def shadow_ppm(refill_ppm: int | None, local_ratio: float, fee_ppm: int) -> int:
    """What a sold sat of outbound liquidity is worth beyond its fee: +refill cost when the channel is empty
    (it must be bought back), 0 at half full, linear in between. Selling from a full channel frees inbound
    that would otherwise have to be bought, but only a refill the rebalancer would make: it pays no more
    for liquidity than routing earns, so that side is worth at most the channel's own fee (−fee at full)."""
    if not refill_ppm:
        return 0
    side = 1.0 - local_ratio / SHADOW_SHARE
    return round(refill_ppm * side) if side >= 0 else round(min(refill_ppm, fee_ppm) * max(-1.0, side))


def decay(state: LadderState, now: int) -> LadderState:
    """Fade all evidence to `now`."""
    hours = max(0, now - state.evidence_at) / 3600
    if not state.evidence or hours == 0:
        return attrs.evolve(state, evidence_at=now)
    k = 0.5 ** (hours / HALF_LIFE_HOURS)
    faded = {lv: Evidence(e.hours * k, e.forwards * k, e.fees_msat * k) for lv, e in state.evidence.items()}
    return attrs.evolve(state, evidence={lv: e for lv, e in faded.items() if e.hours >= 0.01}, evidence_at=now)


def record(state: LadderState, now: int, fee_ppm: int, hours: float, forwards: int, fees_msat: int,
           local_ratio: float) -> LadderState:
    """Add one window at `fee_ppm` to its level's evidence, and adapt the dwell to silence or signal (a full,
    silent channel keeps the short dwell: it is stepping down, not probing)."""
    s = decay(state, now)
    lv = level_of(fee_ppm)
    e = s.evidence.get(lv, Evidence())
    evidence = {**s.evidence, lv: Evidence(e.hours + hours, e.forwards + forwards, e.fees_msat + fees_msat)}
    dwell = DWELL_HOURS if forwards or local_ratio >= FULL_SHARE else min(MAX_DWELL_HOURS, s.dwell_hours * 2)
    settled = max(s.max_settled_ppm, fee_ppm) if forwards else s.max_settled_ppm
    return attrs.evolve(s, evidence=evidence, dwell_hours=dwell, max_settled_ppm=settled)


def follow_market(state: LadderState, anchor_ppm: int | None) -> tuple[LadderState, int]:
    """Move the centre with the going rate when it moved by a level or more, and carry the evidence along:
    senders weigh our fee against the going rate, so what a level earned says how a fee that far above or
    below the going rate sells, wherever the going rate is now. The demand band moves with it; the
    evidence weighs half, since the market that moved may also have changed its volume.
    Returns the new state and the levels moved (0 = none)."""
    if anchor_ppm is None or state.centre is None:
        return state, 0
    if state.anchor_ppm is None:
        return attrs.evolve(state, anchor_ppm=anchor_ppm), 0
    shift = level_of(anchor_ppm) - level_of(state.anchor_ppm)
    if shift == 0:
        return state, 0
    moved = {lv + shift: Evidence(e.hours / 2, e.forwards / 2, e.fees_msat / 2) for lv, e in state.evidence.items()}
    band = fee_of(level_of(state.max_settled_ppm) + shift) if state.max_settled_ppm else 0
    return attrs.evolve(state, centre=state.centre + shift, anchor_ppm=anchor_ppm, evidence=moved,
                        max_settled_ppm=band), shift


@attrs.frozen
class Posterior:
    """Per-level demand posteriors and the volume per forward pooled over the ladder."""

    shape: dict[int, float]
    rate: dict[int, float]
    msat_per_ppm: float      # fee earned per forward per ppm of fee (= volume per forward / 1e6)

    def mean_value(self, level: int, shadow: int) -> float:
        return self.shape[level] / self.rate[level] * self.msat_per_ppm * (fee_of(level) - shadow)

    def draw_value(self, level: int, shadow: int, rng: random.Random) -> float:
        demand = rng.gammavariate(self.shape[level], 1.0 / self.rate[level])
        return demand * self.msat_per_ppm * (fee_of(level) - shadow)


def posterior(state: LadderState, levels: Sequence[int]) -> Posterior:
    """Gamma posteriors on forwards per hour, the prior pooled over all evidence with unit elasticity."""
    ev = state.evidence
    hours = sum(e.hours for e in ev.values())
    forwards = sum(e.forwards for e in ev.values())
    pooled = max(MIN_RATE_PER_HOUR, forwards / hours) if hours > 0 else MIN_RATE_PER_HOUR
    # the pooled rate is the demand at the hours-weighted mean level of the evidence
    ref = sum(lv * e.hours for lv, e in ev.items()) / hours if hours > 0 else float(state.centre or 0)
    weighted = sum(e.forwards * fee_of(lv) for lv, e in ev.items())
    msat_per_ppm = sum(e.fees_msat for e in ev.values()) / weighted if weighted > 0 else 1.0
    shape, rate = {}, {}
    for lv in levels:
        e = ev.get(lv, Evidence())
        prior_rate = pooled * RATIO ** (ref - lv)
        shape[lv] = PRIOR_FORWARDS + e.forwards
        rate[lv] = PRIOR_FORWARDS / prior_rate + e.hours
    return Posterior(shape, rate, msat_per_ppm)


@attrs.frozen
class Choice:
    """One decision of the search, with what it rests on (shown in fee-debug and revenue-status)."""

    level: int
    state: LadderState
    reason: str
    estimates: dict[int, float]    # level → posterior mean value, msat/h


def choose(state: LadderState, fee_in_force: int, low_ppm: int, high_ppm: int, shadow: int,
           local_ratio: float, rng: random.Random) -> Choice:
    """Pick the level to publish next: re-centre if a neighbour clearly earns more, then one Thompson draw
    per level within the ladder, the fee bounds and the demand band."""
    s = state if state.centre is not None else attrs.evolve(state, centre=level_of(fee_in_force))
    lo, hi = level_of(low_ppm), level_of(high_ppm)
    centre = min(max(s.centre, lo), hi)
    forwards = sum(e.forwards for e in s.evidence.values())
    if forwards < SIGNAL_FORWARDS:
        # too little to search on: sit at the centre (the going rate or the operator's fee); a full channel
        # that nobody pays at this price steps down a level per silent dwell
        why = f"{forwards:.1f} forwards on the ladder: too few to search, holding the centre"
        if local_ratio >= FULL_SHARE and centre > lo:
            centre -= 1
            why = f"{forwards:.1f} forwards and {local_ratio:.0%} full: nobody pays this price, centre steps down"
        return Choice(centre, attrs.evolve(s, centre=centre, chosen_because=why), why, {})
    band = level_of(s.max_settled_ppm) + 1 if s.max_settled_ppm else centre
    levels = [lv for lv in range(centre - HALF_WIDTH - 1, centre + HALF_WIDTH + 2) if lo <= lv <= min(hi, band)] \
        or [min(centre, band, hi)]
    post = posterior(s, levels)
    centre = _recentre(post, centre, levels, shadow, rng)
    ladder = [lv for lv in levels if abs(lv - centre) <= HALF_WIDTH] or [centre]
    draws = {lv: post.draw_value(lv, shadow, rng) for lv in ladder}
    level = max(ladder, key=lambda lv: (draws[lv], -abs(lv - centre)))
    estimates = {lv: post.mean_value(lv, shadow) for lv in ladder}
    capped = f", demand band ≤ {fee_of(band)} ppm" if band < centre + HALF_WIDTH else ""
    why = (f"Thompson draw picks {fee_of(level)} ppm (est. {estimates[level] / 1000:.1f} sat/h) on the ladder "
           f"{fee_of(ladder[0])}–{fee_of(ladder[-1])} ppm around {fee_of(centre)} ppm{capped}"
           + (f", net of a {shadow} ppm refill value" if shadow else ""))
    return Choice(level, attrs.evolve(s, centre=centre, chosen_because=why), why, estimates)


def _recentre(post: Posterior, centre: int, levels: Sequence[int], shadow: int, rng: random.Random) -> int:
    """One step toward a neighbour that earns more than the centre in ≥ CLEARLY of the posterior draws."""
    neighbours = [lv for lv in (centre - 1, centre + 1) if lv in levels]
    if centre not in levels or not neighbours:
        return centre if centre in levels else max(levels) if centre > max(levels) else min(levels)
    wins = dict.fromkeys(neighbours, 0)
    for _ in range(DRAWS):
        c = post.draw_value(centre, shadow, rng)
        for lv in neighbours:
            wins[lv] += post.draw_value(lv, shadow, rng) > c
    best = max(neighbours, key=lambda lv: wins[lv])
    return best if wins[best] >= CLEARLY * DRAWS else centre


def describe(state: LadderState, shadow: int = 0) -> dict:
    """The search's state for revenue-status: the ladder, each level's evidence and estimate."""
    if state.centre is None:
        return {"started": False}
    levels = sorted(set(state.evidence) | set(range(state.centre - HALF_WIDTH, state.centre + HALF_WIDTH + 1)))
    post = posterior(state, levels)
    return {
        "started": True, "centre_ppm": fee_of(state.centre), "dwell_hours": state.dwell_hours,
        "max_settled_ppm": state.max_settled_ppm, "anchor_ppm": state.anchor_ppm, "shadow_ppm": shadow,
        "chosen_because": state.chosen_because,
        "levels": [{"fee_ppm": fee_of(lv), "on_ladder": abs(lv - state.centre) <= HALF_WIDTH,
                    "hours": round(state.evidence.get(lv, Evidence()).hours, 1),
                    "forwards": round(state.evidence.get(lv, Evidence()).forwards, 1),
                    "estimate_msat_per_hour": round(post.mean_value(lv, shadow))} for lv in levels],
    }
