"""The price anchor: the gossip survey (pure), the controller's one-time start, the simulated competitors
and the network's channel_update rate limit they are measured against, and the whole path in a sim."""
from __future__ import annotations

import os
import statistics

import attrs
import pytest

from revops import ladder, simulate
from revops.ledger import Ledger
from revops.model import Forward
from revops.store import Store
from revops.anchor import REFRESH_SECONDS, anchored_start, competitor_anchor, peers_due
from revops.fees import decide
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario, loads_scenario
from revops.sim.schemas import validate_response
from revops.sim.versions import VERSIONS
from tests.test_fees import CFG, H, chan, obs, state, unchanged

US, PEER = "02" + "1" * 64, "03" + "2" * 64
DAY = 86_400


def gossip(*ppms: int, source: str = "x", active: bool = True) -> list[dict]:
    return [{"source": f"{source}{i}", "destination": PEER, "fee_per_millionth": p, "active": active}
            for i, p in enumerate(ppms)]


# ------------------------------------------------------------------------------------ survey (pure)

def test_anchor_is_the_median_of_other_nodes_channels_toward_the_peer() -> None:
    ours = {"source": US, "destination": PEER, "fee_per_millionth": 10}
    elsewhere = {"source": "y", "destination": "03" + "9" * 64, "fee_per_millionth": 9000}
    assert competitor_anchor([ours, elsewhere, *gossip(100, 300, 500, 2000)], US, PEER) == 400


def test_no_anchor_from_fewer_than_three_active_competitors() -> None:
    assert competitor_anchor(gossip(100, 300), US, PEER) is None
    assert competitor_anchor(gossip(100, 300) + gossip(900, source="z", active=False), US, PEER) is None


def test_each_peer_is_surveyed_at_most_daily_oldest_first() -> None:
    surveyed = {"a": 0, "b": 5_000, "c": 90_000}
    assert peers_due(["a", "b", "c", "d", "a"], surveyed, now=REFRESH_SECONDS + 5_000) == ["d", "a", "b"]
    assert peers_due(["c"], surveyed, now=100_000) == []


@pytest.mark.parametrize("climb, anchor, start", [(10, 400, 400), (199, 400, 400), (200, 400, None),
                                                  (5000, 400, None), (10, None, None)])
def test_only_a_fee_under_half_the_going_rate_starts_at_it(climb: int, anchor: int | None, start: int | None) -> None:
    assert anchored_start(climb, anchor) == start


# ------------------------------------------------------------------------------------ controller

def test_an_under_priced_channel_starts_its_climb_at_the_anchor_once() -> None:
    s0 = state(climb_fee_ppm=10, last_broadcast_fee_ppm=10)
    d, s1 = decide(s0, obs(now=2 * H, channel=chan(fee=10), anchor_ppm=420), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("anchor", 420, True)
    assert "median 420 ppm" in d.reason and d.inputs["anchor_ppm"] == 420
    assert s1.anchored and s1.climb_fee_ppm == 420 and s1.window_start == 2 * H and s1.ladder.centre == ladder.level_of(420)
    # never again, even if the going rate moves far away: from here the climber decides
    d2, s2 = decide(s1, obs(now=3 * H, channel=chan(fee=420), anchor_ppm=5000, window_start=2 * H), CFG)
    assert d2.branch != "anchor" and s2.anchored


def test_a_channel_near_the_going_rate_is_only_marked_checked() -> None:
    d, s1 = decide(state(), obs(anchor_ppm=600), CFG)
    assert d.branch != "anchor" and s1.anchored


def test_an_anchor_start_held_by_the_daily_budget_is_tried_again() -> None:
    s0 = state(climb_fee_ppm=10, last_broadcast_fee_ppm=10, update_times=(H, H + 60))
    d, s1 = decide(s0, obs(now=2 * H, channel=chan(fee=10), anchor_ppm=420), CFG)
    assert d.branch == "anchor" and not d.broadcast and "limit 2" in d.reason
    assert unchanged(s1, s0) and not s1.anchored


def test_where_gossip_shows_no_going_rate_the_nodes_own_rate_starts_the_search() -> None:
    s0 = state(climb_fee_ppm=10, last_broadcast_fee_ppm=10)
    d, s1 = decide(s0, obs(now=2 * H, channel=chan(fee=10), home_ppm=150), CFG)
    assert (d.branch, d.new_fee_ppm, d.broadcast) == ("anchor", 150, True)
    assert "too few channels toward this peer" in d.reason and d.inputs["home_ppm"] == 150
    # it starts the search but is never followed: the ladder knows no going rate to track
    assert s1.anchored and s1.ladder.anchor_ppm is None
    d2, s2 = decide(s1, obs(now=15 * H, fwds=3, rate=500.0, channel=chan(fee=150), home_ppm=900,
                            window_start=2 * H), CFG)
    assert d2.branch == "search" and "going rate moved" not in d2.reason and s2.ladder.anchor_ppm is None
    # gossip's going rate comes first
    d, _ = decide(s0, obs(now=2 * H, channel=chan(fee=10), anchor_ppm=420, home_ppm=150), CFG)
    assert d.new_fee_ppm == 420 and "median 420 ppm" in d.reason


def test_the_nodes_own_rate_is_its_fees_over_its_volume_of_30_days(tmp_path) -> None:
    store = Store(str(tmp_path / "l.db"))
    ledger = Ledger(store)
    now = 40 * DAY

    def fwd(i: int, t: float, out_msat: int, fee: int, status: str = "settled") -> Forward:
        return Forward("1x1x1", i, "2x2x2", out_msat + fee, out_msat, fee, status, t)
    store.insert_forwards([fwd(i, now - DAY, 1_000_000_000, 100_000) for i in range(9)])
    assert ledger.earnings_30d(now)[1] is None                      # 9 forwards: too few to stand for the node
    store.insert_forwards([fwd(9, now - DAY, 3_000_000_000, 100_000), fwd(10, now - 31 * DAY, 1_000, 900),
                               fwd(11, now - DAY, 5_000_000_000, 0, "failed")])
    assert ledger.earnings_30d(now)[1] == 83    # 1,000,000 msat of fees on 12,000,000,000 msat out; old and failed left out


def test_congestion_comes_before_the_anchor_and_the_option_turns_it_off() -> None:
    s0 = state(climb_fee_ppm=10, last_broadcast_fee_ppm=10)
    d, s1 = decide(s0, obs(channel=chan(fee=10, htlcs=450), anchor_ppm=420), CFG)
    assert d.branch == "congestion" and not s1.anchored
    d, s1 = decide(s0, obs(channel=chan(fee=10), anchor_ppm=420), attrs.evolve(CFG, price_anchor=False))
    assert d.branch != "anchor" and not s1.anchored


# ------------------------------------------------------------------------------------ simulator

@pytest.mark.needs("shared")
@pytest.mark.parametrize("version", VERSIONS)
def test_sim_shows_competitors_toward_each_peer_around_the_market_price(version: str) -> None:
    node = SimNode(load_scenario("small"), seed=2, cln_version=version)
    ch = node.by_name["acinq"]
    answer = node.call("listchannels", {"destination": ch.peer_id})
    validate_response("listchannels", answer, version)
    others = [c for c in answer["channels"] if c["source"] != node.id]
    assert 3 <= len(others) <= 12 and all(c["destination"] == ch.peer_id for c in others)
    market = statistics.median(s.market_ppm for s in node.streams if s.dst == "acinq")
    assert 0.4 * market < statistics.median(c["fee_per_millionth"] for c in others) < 2.5 * market
    # our own direction toward the peer is listed too, with our fee; nothing toward us is a competitor
    assert any(c["source"] == node.id and c["fee_per_millionth"] == ch.fee_ppm for c in answer["channels"])
    assert all(c["source"] in {ch.peer_id for ch in node.channels.values()}
               for c in node.call("listchannels", {"destination": node.id})["channels"])
    # the same competitors on every call, and clboss's survey is their median
    assert node.call("listchannels", {"destination": ch.peer_id}) == answer
    assert node.clboss._median_fees(ch.peer_id)[1] == int(statistics.median(c["fee_per_millionth"] for c in others))


def test_sim_competitors_follow_a_market_shift() -> None:
    path = os.path.join(os.path.dirname(__file__), "..", "bench", "scenarios", "surge.toml")
    node = SimNode(load_scenario(path), seed=1)        # day 10: every stream's market price × 1.3
    peer = next(iter(node.channels.values())).peer_id

    def competing() -> list[int]:
        return sorted(c["fee_per_millionth"] for c in node.call("listchannels", {"destination": peer})["channels"]
                      if c["source"] != node.id)
    before = competing()
    node.advance_to(node.scenario.start_time + 11 * DAY)
    assert [round(after / b, 2) for b, after in zip(before, competing())] == [1.3] * len(before)


def test_sim_listchannels_filters_agree_with_the_full_listing() -> None:
    node = SimNode(load_scenario("small"), seed=2)
    everything = node.call("listchannels")["channels"]
    peer = node.by_name["acinq"].peer_id
    competitor = next(c["source"] for c in everything if c["destination"] == peer and c["source"] != node.id)
    probes = [("destination", peer), ("destination", node.id), ("destination", competitor), ("source", peer),
              ("source", node.id), ("source", competitor), ("short_channel_id", everything[-1]["short_channel_id"])]
    for key, value in probes:
        expected = [c for c in everything if c[key] == value]
        assert expected and node.call("listchannels", {key: value})["channels"] == expected, (key, value)
    # a peer's second channel, then a splice of its first (re-listed last under a new short channel id)
    spliced = node.by_name["acinq"].scid
    node.open_channel(peer, confirms=0)
    node.splice_channel(spliced, 100_000, confirms=1)
    while node.by_name["acinq"].splice is not None:
        node.advance_to(node.now + 600)
    everything = node.call("listchannels")["channels"]
    ours = [c["short_channel_id"] for c in everything if c["destination"] == peer and c["source"] == node.id]
    assert len(ours) == 2 and ours[-1] == node.by_name["acinq"].scid != spliced
    for key, value in (("destination", peer), ("source", peer)):
        expected = [c for c in everything if c[key] == value]
        assert node.call("listchannels", {key: value})["channels"] == expected, (key, value)


def test_sim_relays_at_most_the_rate_limit_of_fee_updates() -> None:
    sc = loads_scenario("""
[market]
gossip_delay_s = 0
gossip_updates_per_day = 2
gossip_burst = 4
[[channels]]
name = "a"
capacity_sat = 1_000_000
local_sat = 500_000
""", name="ratelimit")
    node = SimNode(sc, seed=1)
    ch = node.by_name["a"]
    for ppm in (20, 30, 40, 50, 60, 70):                # six updates back to back: the burst is four
        node.call("setchannel", {"id": ch.scid, "feeppm": ppm})
    assert ch.fee_ppm == 70 and node.gossip_fee(ch, node.now)[1] == 50
    assert node.ledger.gossip_suppressed == 2
    node.advance_to(node.now + DAY // 2)                 # 12 h refill one token
    node.call("setchannel", {"id": ch.scid, "feeppm": 80})
    assert node.gossip_fee(ch, node.now)[1] == 80 and node.ledger.gossip_suppressed == 2


# ------------------------------------------------------------------------------------ whole plugin

def test_plugin_moves_default_fees_to_the_going_rate_within_hours() -> None:
    sim = simulate.start(load_scenario("small"), seed=5)
    try:
        for ch in sim.node.open_channels():
            sim.node.set_fee(ch, 1000, 10)
        sim.advance(6 * 3600)
        anchored = [d for ch in sim.node.open_channels()
                    for d in sim.rpc("revenue-fee-debug", {"channel_id": ch.scid})["decisions"] if d["branch"] == "anchor"]
        assert anchored, "no channel was anchored"
        for d in anchored:
            ch = sim.node.channels[d["scid"]]
            going = sim.node.clboss._median_fees(ch.peer_id)[1]
            assert d["outcome"] == "applied" and d["inputs"]["anchor_ppm"] == going == d["inputs"]["climb_fee_ppm"] <= d["new_fee_ppm"]
            assert d["old_fee_ppm"] < going / 2
    finally:
        sim.close()


def test_plugin_starts_a_channel_gossip_cannot_price_at_the_nodes_own_rate() -> None:
    # a seed whose node has forwards paying over twice the channel's floor by the first fee cycle (with
    # none yet the search starts at its floor and the start does not apply, which another seed shows)
    sim = simulate.start(load_scenario("small"), seed=1)
    try:
        lonely = sim.node.open_channels()[0]
        competitors = sim.node.competitors
        competitors._by_peer[lonely.peer_id] = competitors.of(lonely.peer_id)[:2]   # gossip shows two, too few
        sim.node.set_fee(lonely, 1000, 10)
        sim.advance(2 * DAY)
        started = [d for d in sim.rpc("revenue-fee-debug", {"channel_id": lonely.scid})["decisions"]
                   if d["branch"] == "anchor"]
        assert len(started) == 1 and started[0]["outcome"] == "applied", started
        d = started[0]
        assert d["inputs"]["anchor_ppm"] is None and d["inputs"]["home_ppm"] == d["new_fee_ppm"] > 20
        assert "this node's forwards paid" in d["reason"]
    finally:
        sim.close()
