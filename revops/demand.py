"""Demand and fee tolerance estimated from a node's own forwards: the market of the backtest.

The data are censored: a payment reaches us only when its fee tolerance is at least the fee the sender
believed we charge, so the forwards seen at a fee f count the demand *above* f, never the demand. The model
(docs/backtest.md, "The estimator"), per outgoing channel c:

* payments that want to leave through c arrive as a Poisson process of rate λ_c;
* each tolerates a fee (ppm of its amount) drawn from LogNormal(μ_c, σ), σ shared by the whole node;
* in a fee epoch k (length T_k, believed fee f_k: the fee in force one gossip delay earlier) the arrivals
  are Poisson(λ_c T_k S(f_k)), S the lognormal survival function;
* a fee-insufficient failure (the sender believed a lower fee f_b than the one in force, f_a) is retried
  only when the tolerance covers f_a: a retry is evidence of tolerance ≥ f_a, none of f_b ≤ tolerance < f_a.

λ_c is profiled out (λ̂ = N / Σ T_k S(f_k)), μ_c and σ are found on a grid by maximum a posteriori: μ_c has a
prior centred on what gossip says other nodes charge toward the same peer (the price anchor, revops/anchor.py),
σ a weak one. With one fee level only, the forwards say nothing about μ_c: the prior decides, and the channel
is reported as not identified.
"""
from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

import attrs

GOSSIP_LAG_S = 900          # senders see our fee as it was this long ago (a fee change needs gossip to spread)
RETRY_WINDOW_S = 5.0        # a forward on the same pair this soon after a fee-insufficient failure is its retry
FEE_INSUFFICIENT = 4108     # WIRE_FEE_INSUFFICIENT
MU_GRID = tuple(i * 0.05 for i in range(0, 217))          # ln ppm: 1 … 50,000 ppm
SIGMA_GRID = tuple(round(0.2 + 0.1 * i, 2) for i in range(14))   # 0.2 … 1.5
SIGMA_PRIOR = (math.log(0.6), 0.6)     # ln σ ~ N(ln 0.6, 0.6): weak, the data decide when fees varied
ANCHOR_TAU = 0.7            # sd of μ_c around ln(anchor): gossip is a noisy reading of the going rate
FALLBACK_TAU = 1.0          # sd around the node's median anchor (or 2 × its median fee) when the peer has none
LEVEL_STEP = 1.2            # fee levels count as distinct when they differ by this factor
MIN_ARRIVALS = 10           # a channel needs this many arrivals for its own rate and tolerance
MIN_REACH = 0.2             # an arrival stands for at most 1 / this payments (see Arrival.weight)


@attrs.frozen
class Arrival:
    """One HTLC that asked to leave through a channel (a forward of any status) as the estimator sees it."""
    in_channel: str
    out_channel: str
    at: float
    amount_msat: int | None      # out_msat, or in_msat for a local failure (no out amount is recorded)
    status: str                  # settled | failed | local_failed
    failcode: int | None = None
    # 1 / the chance that a payment like this one could reach us at all: a payment whose incoming channel had
    # too little inbound liquidity never became an HTLC here (inverse-probability weight, ≥ 1)
    weight: float = 1.0


@attrs.frozen
class Epoch:
    start: float
    end: float
    believed_ppm: float       # what senders believed we charge (the fee one gossip delay earlier)
    actual_ppm: float         # what we charged


@attrs.frozen
class ChannelDemand:
    scid: str
    arrivals: int
    rate_per_hour: float          # λ: payments per hour that want to leave through it, before the fee filter
    tolerance_ppm: float          # exp(μ): the median fee tolerance
    tolerance_ppm_lo: float       # the 95 % likelihood interval of the median tolerance
    tolerance_ppm_hi: float
    fee_levels: int               # distinct believed fee levels seen (1: tolerance from the prior only)
    identified: bool              # enough arrivals at ≥ 2 fee levels: the data, not the prior, set the tolerance
    prior_ppm: float | None       # centre of the prior (the gossip anchor, or the fallback)
    amount_median_sat: float
    amount_sigma: float
    sources: tuple[tuple[str, float], ...]   # (incoming channel, payments per hour from it), summing to rate
    fee_insufficient: int         # fee-insufficient failures seen


@attrs.frozen
class MarketEstimate:
    sigma: float
    sigma_lo: float
    sigma_hi: float
    channels: tuple[ChannelDemand, ...]

    def channel(self, scid: str) -> ChannelDemand:
        for c in self.channels:
            if c.scid == scid:
                return c
        raise KeyError(scid)


def survival(x_ppm: float, mu: float, sigma: float) -> float:
    """P(tolerance ≥ x) for tolerance ~ LogNormal(mu, sigma)."""
    if x_ppm <= 0:
        return 1.0
    return 0.5 * math.erfc((math.log(x_ppm) - mu) / (sigma * math.sqrt(2.0)))


def fee_epochs(changes: Sequence[tuple[float, int]], initial_ppm: int, start: float, end: float,
               lag: float = GOSSIP_LAG_S) -> list[Epoch]:
    """Split [start, end) where the actual or the believed fee changes. `changes`: (time, new ppm), any order."""
    changes = sorted(changes)
    times = [t for t, _ in changes]
    values = [initial_ppm] + [p for _, p in changes]

    def fee_at(t: float) -> int:
        return values[bisect.bisect_right(times, t)]

    cuts = sorted({start, end, *(t for t in times if start < t < end), *(t + lag for t in times if start < t + lag < end)})
    return [Epoch(a, b, float(fee_at(a - lag)), float(fee_at(a))) for a, b in zip(cuts, cuts[1:]) if b > a]


def _levels(epochs: Iterable[Epoch]) -> int:
    fees = sorted({e.believed_ppm for e in epochs if e.end > e.start})
    n, last = 0, None
    for f in fees:
        if last is None or f > last * LEVEL_STEP:
            n, last = n + 1, f
    return n


@attrs.frozen
class _Data:
    """One channel's sufficient statistics: exposure and arrivals per believed fee level, and retry evidence."""
    exposure: tuple[tuple[float, float, float], ...]   # (threshold ppm, seconds, weighted arrivals)
    retries: tuple[tuple[float, float, bool], ...]      # (believed, actual threshold ppm, retried?)
    arrivals: int
    weighted: float           # the arrivals' total weight: the payments they stand for
    levels: int
    fee_insufficient: int


def _threshold(ppm: float, base_msat: int, amount_msat: float) -> float:
    """The fee a payment of the typical amount pays, in ppm of it (the base fee converted at that amount)."""
    return ppm + base_msat * 1e6 / amount_msat if amount_msat > 0 else ppm


def _channel_data(epochs: Sequence[Epoch], arrivals: Sequence[Arrival], base_msat: int, amount_msat: float) -> _Data:
    starts = [e.start for e in epochs]

    def epoch_at(t: float) -> Epoch | None:
        i = bisect.bisect_right(starts, t) - 1
        return epochs[i] if 0 <= i < len(epochs) and t < epochs[i].end else None

    by_fee: dict[float, list] = {}
    for e in epochs:
        b = by_fee.setdefault(_threshold(e.believed_ppm, base_msat, amount_msat), [0.0, 0.0])
        b[0] += e.end - e.start
    failures = [a for a in arrivals if a.status == "local_failed" and a.failcode == FEE_INSUFFICIENT]
    retried, retries = set(), []
    by_pair: dict[str, list[Arrival]] = {}
    for a in arrivals:
        if a.status in ("settled", "failed"):
            by_pair.setdefault(a.in_channel, []).append(a)
    for f in failures:
        e = epoch_at(f.at)
        retry = next((a for a in by_pair.get(f.in_channel, ()) if 0 <= a.at - f.at <= RETRY_WINDOW_S
                      and id(a) not in retried), None)
        if retry is not None:
            retried.add(id(retry))
        if e is not None and e.actual_ppm > e.believed_ppm:
            retries.append((_threshold(e.believed_ppm, base_msat, amount_msat),
                            _threshold(e.actual_ppm, base_msat, amount_msat), retry is not None))
    n, w = 0, 0.0
    for a in arrivals:
        if id(a) in retried:
            continue      # the same payment as its fee-insufficient failure, counted once
        e = epoch_at(a.at)
        if e is None:
            continue
        by_fee[_threshold(e.believed_ppm, base_msat, amount_msat)][1] += a.weight
        n, w = n + 1, w + a.weight
    return _Data(tuple((f, t, k) for f, (t, k) in sorted(by_fee.items())), tuple(retries), n, w, _levels(epochs),
                 len(failures))


def _loglik(d: _Data, mu: float, sigma: float) -> float:
    """Profile log-likelihood (λ maximised out) of one channel's data at (μ, σ)."""
    ll, expo = 0.0, 0.0
    for fee, seconds, k in d.exposure:
        s = survival(fee, mu, sigma)
        if k:
            if s <= 0.0:
                return -math.inf
            ll += k * math.log(s)
        expo += seconds * s
    if d.weighted:
        if expo <= 0.0:
            return -math.inf
        ll -= d.weighted * math.log(expo)
    for fb, fa, ok in d.retries:
        sb = survival(fb, mu, sigma)
        p = survival(fa, mu, sigma) / sb if sb > 0 else 0.0
        p = min(max(p, 1e-9), 1 - 1e-9)
        ll += math.log(p if ok else 1.0 - p)
    return ll


def _interval(xs: Sequence[float], lp: Sequence[float]) -> tuple[float, float]:
    top = max(lp)
    inside = [x for x, v in zip(xs, lp) if v >= top - 1.92]
    return min(inside), max(inside)


def _lognormal_fit(amounts: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """(median sat, σ) of weighted amounts (msat, weight)."""
    pts = [(math.log(a / 1000), w) for a, w in amounts if a >= 1000]
    if not pts:
        return 60_000.0, 1.0
    total = sum(w for _, w in pts)
    mean = sum(x * w for x, w in pts) / total
    sd = math.sqrt(sum(w * (x - mean) ** 2 for x, w in pts) / total) if len(pts) > 1 else 1.0
    return math.exp(mean), sd


def estimate(arrivals: Iterable[Arrival], epochs: Mapping[str, Sequence[Epoch]], base_msat: Mapping[str, int],
             anchors: Mapping[str, float | None]) -> MarketEstimate:
    """The market behind `arrivals` (each counted with its weight). `epochs`: each channel's fee epochs over the
    observed window (the channels to estimate); `anchors`: each channel's gossip anchor ppm (None: unknown)."""
    per: dict[str, list[Arrival]] = {scid: [] for scid in epochs}
    for a in arrivals:
        if a.out_channel in per:
            per[a.out_channel].append(a)
    amount = {scid: _lognormal_fit([(a.amount_msat, a.weight) for a in xs if a.amount_msat]) for scid, xs in per.items()}
    data = {scid: _channel_data(epochs[scid], per[scid], base_msat.get(scid, 0), amount[scid][0] * 1000)
            for scid in per}
    known = [a for a in anchors.values() if a]
    fees = [e.actual_ppm for es in epochs.values() for e in es]
    fallback = statistics.median(known) if known else 2.0 * max(1.0, statistics.median(fees) if fees else 100.0)
    prior = {scid: (anchors.get(scid) or fallback, ANCHOR_TAU if anchors.get(scid) else FALLBACK_TAU) for scid in per}

    def log_prior_mu(scid: str, mu: float) -> float:
        centre, tau = prior[scid]
        return -0.5 * ((mu - math.log(max(centre, 1.0))) / tau) ** 2

    # the node's σ: the joint posterior, each channel's μ maximised at every σ
    sig_lp = []
    for sigma in SIGMA_GRID:
        total = -0.5 * ((math.log(sigma) - SIGMA_PRIOR[0]) / SIGMA_PRIOR[1]) ** 2
        for scid, d in data.items():
            if d.arrivals or d.retries:
                total += max(_loglik(d, mu, sigma) + log_prior_mu(scid, mu) for mu in MU_GRID)
        sig_lp.append(total)
    sigma = SIGMA_GRID[max(range(len(SIGMA_GRID)), key=sig_lp.__getitem__)]
    s_lo, s_hi = _interval(SIGMA_GRID, sig_lp)

    out = []
    for scid, d in data.items():
        lp = [_loglik(d, mu, sigma) + log_prior_mu(scid, mu) for mu in MU_GRID]
        mu = MU_GRID[max(range(len(MU_GRID)), key=lp.__getitem__)]
        lo, hi = _interval(MU_GRID, lp)
        expo = sum(sec * survival(fee, mu, sigma) for fee, sec, _ in d.exposure)
        rate = d.weighted / expo * 3600 if expo > 0 else 0.0
        counts: dict[str, float] = {}
        for a in per[scid]:
            counts[a.in_channel] = counts.get(a.in_channel, 0.0) + a.weight
        total = sum(counts.values())
        sources = sorted(((k, rate * v / total) for k, v in counts.items()), key=lambda kv: -kv[1])
        out.append(ChannelDemand(
            scid=scid, arrivals=d.arrivals, rate_per_hour=sum(r for _, r in sources), tolerance_ppm=math.exp(mu),
            tolerance_ppm_lo=math.exp(lo), tolerance_ppm_hi=math.exp(hi), fee_levels=d.levels,
            identified=d.arrivals >= MIN_ARRIVALS and d.levels >= 2, prior_ppm=prior[scid][0],
            amount_median_sat=amount[scid][0], amount_sigma=amount[scid][1],
            sources=tuple(sources),
            fee_insufficient=d.fee_insufficient))
    return MarketEstimate(sigma=sigma, sigma_lo=s_lo, sigma_hi=s_hi, channels=tuple(out))
