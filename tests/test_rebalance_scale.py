"""The rebalance cycle at scale: find_candidates prices every destination from one sweep over the sources
(revops/rebalance.py _dearest_kept) and must decide exactly as the per-destination sort and scan it
replaced — same candidates, same source lists, same rejections in the same order — with work that grows
about linearly with the channel count, not as destinations x sources."""
from __future__ import annotations

import random
import sys
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops import rebalance as rb
from revops.model import FlowClass, RebalanceMode, Strategy
from tests.test_rebalance import CFG, NOW, SAT, budget, chan, inbound


def scan_find_candidates(channels, inbound_estimates, bud, capital, active_jobs, now, cfg, unavailable=frozenset()):
    """find_candidates as it was before the sweep (commit b998f69): every destination sorted and scanned
    in full by _evaluate, its source rejections built during the cycle."""
    blocked = rb._node_block(bud, capital, active_jobs, cfg)
    if blocked:
        return [], [blocked]
    ratios = rb._peer_ratios(channels)
    peer_of = {ch.scid: ch.peer_id for ch in channels}
    busy_peers = {peer_of[s] for s in active_jobs if s in peer_of}
    rejections, pool = [], []
    for ch in channels:
        why = rb._source_block(ch, ratios.get(ch.peer_id, 0.0), active_jobs, unavailable, cfg)
        if why:
            rejections.append(rb.Rejection(ch.scid, rb.Role.SOURCE, *why))
        else:
            pool.append(ch)
    sources = rb._SourcePool(pool, cfg)
    evaluated = []
    for ch in channels:
        ratio = ratios.get(ch.peer_id, 0.0)
        why = rb._destination_block(ch, ratio, busy_peers, now, cfg)
        if why:
            rejections.append(rb.Rejection(ch.scid, rb.Role.DESTINATION, *why))
            continue
        cand, rejected = rb._evaluate(ch, ratio, inbound_estimates.get(ch.peer_id), sources, peer_of, bud, now, cfg)
        rejections += rejected
        if cand:
            evaluated.append(cand)
    ranked = sorted(evaluated, key=lambda c: (c.hive, -c.expected_profit_msat, c.dest_scid))
    chosen, rejected = rb._allocate(ranked, bud, cfg.max_concurrent_jobs - len(active_jobs), cfg)
    return chosen, rejections + rejected


def random_node(rng: random.Random, n: int) -> tuple[list[rb.ChannelEcon], dict, Any]:
    """n channels on n // 3 + 1 peers (several channels per peer): depleted destinations and full sources of
    every kind, fees and demands drawn so that many costs tie or sit right at the gate's threshold."""
    peers = max(2, n // 3 + 1)
    fees = [0, 1, 50, 100, 100, 250, 300, 500, 1000, 1000, 2500]
    channels = []
    for k in range(n):
        scid = f"{100 + k}x{rng.randrange(1, 4)}x0"
        depleted = rng.random() < 0.4
        out_3d = rng.choice([0, 0, 30_000, 150_000, 1_500_000, rng.randrange(0, 3_000_000)])
        out_window = rng.choice([0, out_3d * 2, rng.randrange(0, 7_000_000)])
        channels.append(chan(
            scid, rng.randrange(1, peers + 1),
            cap_sat=rng.choice([200_000, 600_000, 1_000_000, 5_000_000, rng.randrange(100_000, 16_000_000)]),
            ratio=rng.uniform(0.0, 0.18) if depleted else rng.choice([0.5, rng.uniform(0.4, 1.0), 0.95]),
            fee=rng.choice(fees) if rng.random() < 0.8 else rng.randrange(0, 5000),
            flow=rng.choice([FlowClass.BALANCED, FlowClass.SOURCE, FlowClass.BALANCED, FlowClass.SINK]),
            out_3d=out_3d, out_window=out_window, earned=rng.choice([0, 10_000, 100_000, 1_000_000]) * SAT,
            spend=rng.choice([0, 0, 5_000 * SAT]),
            mode=rng.choice([RebalanceMode.ENABLED] * 6 + [RebalanceMode.SINK_ONLY, RebalanceMode.SOURCE_ONLY]),
            strategy=Strategy.HIVE if rng.random() < 0.1 else Strategy.DYNAMIC,
            connected=rng.random() < 0.95,
            failure_count=rng.choice([0, 0, 0, 2]), last_failure_at=NOW - rng.choice([600, 20_000]),
            last_drained_for={})
        )
    scids = [c.scid for c in channels]
    channels = [attrs.evolve(c, last_drained_for={rng.choice(scids): NOW - rng.choice([3600, 3600, 300_000])
                                                  for _ in range(rng.choice([0, 1, 3, 8]))}) for c in channels]
    estimates = {p: rb.InboundEstimate(rng.choice([0, 100, 300, 500, 900, rng.randrange(0, 2000)]), "history")
                 for p in {c.peer_id for c in channels}}
    cfg = attrs.evolve(CFG, max_concurrent_jobs=rng.choice([1, 5, 50]),
                       rebalance_min_amount=rng.choice([50_000, 10_000, 1]),
                       rebalance_cooldown_hours=rng.choice([24, 6, 72]),
                       rebalance_min_profit_ppm=rng.choice([0, 0, 10]),
                       sling_chunk_size_sats=rng.choice([500_000, 123_457, 2_000_000]),
                       daily_budget_sats=rng.choice([5_000, 100_000]))
    return channels, estimates, cfg


def same_decisions(channels, estimates, cfg, bud=None, active=(), unavailable=()) -> None:
    bud = bud or budget(daily_budget_msat=cfg.daily_budget_sats * SAT)
    capital = rb.CapitalState(onchain_msat=10**12, channels_local_msat=10**12)
    new_cands, new_rej = rb.find_candidates(channels, estimates, bud, capital, active, NOW, cfg, unavailable)
    old_cands, old_rej = scan_find_candidates(channels, estimates, bud, capital, active, NOW, cfg, unavailable)
    assert new_cands == old_cands
    assert list(new_rej) == old_rej


@pytest.mark.parametrize("seed", range(150))
def test_sweep_decides_as_the_per_destination_scan_on_random_nodes(seed: int) -> None:
    rng = random.Random(seed)
    channels, estimates, cfg = random_node(rng, rng.choice([2, 5, 12, 40, 90, 160]))
    active = tuple(rng.sample([c.scid for c in channels], k=min(2, len(channels)))) if seed % 5 == 0 else ()
    same_decisions(channels, estimates, cfg, active=active)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 1, 99, 100, 101, 1000]),
                          st.integers(0, 2_000_000), st.floats(0.0, 1.0), st.sampled_from([200_000, 1_000_000])),
                min_size=1, max_size=12),
       st.integers(0, 1500), st.integers(1, 600_000))
def test_sweep_decides_as_the_scan_on_ties_and_thresholds(rows, inbound_ppm, chunk) -> None:
    """Small nodes drawn to hit equal costs, zero demand, zero fees and amounts at the spare boundary."""
    channels = [chan(f"{100 + k}x1x0", peer_n + 1, cap_sat=cap, ratio=ratio, fee=fee, out_3d=out, out_window=out)
                for k, (peer_n, fee, out, ratio, cap) in enumerate(rows)]
    estimates = {c.peer_id: rb.InboundEstimate(inbound_ppm, "history") for c in channels}
    same_decisions(channels, estimates, attrs.evolve(CFG, sling_chunk_size_sats=chunk, rebalance_min_amount=1))


def calls_in_cycle(n: int, find=rb.find_candidates) -> int:
    """Python calls made by one rebalance cycle at n channels, a tenth of them depleted destinations."""
    rng = random.Random(n)
    channels = []
    for k in range(n):
        depleted = k % 10 == 0                           # a tenth of the channels want filling
        channels.append(chan(f"{100 + k}x1x0", k + 1, cap_sat=rng.randrange(1_000_000, 16_000_000),
                             ratio=0.05 if depleted else rng.uniform(0.85, 1.0), fee=rng.randrange(1, 2000),
                             out_3d=rng.randrange(0, 3_000_000), out_window=rng.randrange(0, 7_000_000),
                             earned=10**8))
    estimates = inbound(*range(1, n + 1), ppm=200)
    args = (channels, estimates, budget(daily_budget_msat=10**9), rb.CapitalState(10**12, 10**12), (), NOW, CFG)
    ops = [0]

    def count(frame: Any, event: str, arg: Any) -> None:
        ops[0] += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        find(*args)
    finally:
        sys.setprofile(None)
    return ops[0]


def test_the_cycles_work_grows_about_linearly_not_as_destinations_times_sources() -> None:
    """4x the channels (4x destinations and 4x sources: 16x the pairs) costs about 4x the calls, not 16x;
    the per-destination scan made ~14x here."""
    small, large = calls_in_cycle(500), calls_in_cycle(2000)
    assert large / small < 6, (small, large)
