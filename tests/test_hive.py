"""Fleet mode in-process, on the simulated node with its emulated sling: cl-hive's signals reach the
channel actors, hive peers are priced at hive_fee_ppm, a 0-ppm hive peer is refilled under the strategic
exemption, and pushes are bounded per call and per 24 h by this plugin (docs/hive.md)."""
from __future__ import annotations

import pytest
from pyln.client import RpcException

from revops import hive, simulate
from revops.model import Policy, Strategy
from revops.sim.scenario import SCENARIO_DIR, loads_scenario
from revops.sim.sling import SlingError

DAY = 86400

FLEET = (SCENARIO_DIR / "fleet.toml").read_text()
# a 500k-sat push may lose up to 600 sat: 1200 ppm, above the 1000 ppm inbound estimate of an unknown peer
FLEET_OPTIONS = {"revenue-ops-hive-rebalance-tolerance": 600, "revenue-ops-rebalance-cooldown-hours": 6}


def chans(sim) -> dict[str, object]:
    return {c.name: c for c in sim.node.open_channels()}


def channel_status(sim, scid: str) -> dict:
    return sim.rpc("revenue-status", {"channel_id": scid})["channels"][0]


def join(sim, peer: str) -> dict:
    return sim.rpc("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "hive", "rebalance": "enabled"})


# ---------------------------------------------------------------------------------------------- pure rules

P, Q = "02" + "11" * 32, "03" + "22" * 32


@pytest.mark.parametrize("before,after,expected", [
    ({}, {(P, None): Policy(peer_id=P, strategy=Strategy.HIVE)}, [(P, True)]),
    ({(P, None): Policy(peer_id=P, strategy=Strategy.HIVE)}, {(P, None): Policy(peer_id=P)}, [(P, False)]),
    ({(P, None): Policy(peer_id=P, strategy=Strategy.HIVE)}, {(P, None): None}, [(P, False)]),
    ({(P, None): Policy(peer_id=P, strategy=Strategy.HIVE)},
     {(P, None): Policy(peer_id=P, strategy=Strategy.HIVE, fee_ppm_target=5)}, []),
    ({}, {(P, "1x1x1"): Policy(peer_id=P, strategy=Strategy.HIVE, channel_id="1x1x1")}, []),
    ({(Q, None): Policy(peer_id=Q, strategy=Strategy.STATIC)},
     {(Q, None): Policy(peer_id=Q, strategy=Strategy.HIVE), (P, None): Policy(peer_id=P)}, [(Q, True)]),
])
def test_membership_changes_are_peer_level_strategy_transitions(before, after, expected):
    assert [(c.peer_id, c.member) for c in hive.membership_changes(before, after)] == expected


# ---------------------------------------------------------------------------------------------- signals

def test_joining_and_leaving_reach_every_channel_actor_of_the_peer_and_show_in_status():
    sim = simulate.start(loads_scenario(FLEET), seed=1)
    c = chans(sim)
    member, plain = c["member"], c["plain"]
    assert channel_status(sim, member.scid)["hive"] == {"member": False, "last_message": None}
    assert join(sim, member.peer_id)["status"] == "success"
    st = channel_status(sim, member.scid)["hive"]
    assert st["member"] is True
    assert st["last_message"]["type"] == "HiveMembership" and st["last_message"]["member"] is True
    assert channel_status(sim, plain.scid)["hive"]["last_message"] is None     # other peers untouched
    # a second identical set is not a new signal
    join(sim, member.peer_id)
    coordinator = sim.rpc("revenue-status")["coordinator"]["hive"]
    assert coordinator == {"member_peers": [member.peer_id], "signals_handled": 1}
    sim.rpc("revenue-policy", {"action": "set", "peer_id": member.peer_id, "strategy": "dynamic"})
    st = channel_status(sim, member.scid)["hive"]
    assert st["member"] is False and st["last_message"]["member"] is False
    assert "left the fleet" in st["last_message"]["reason"]
    join(sim, member.peer_id)
    sim.rpc("revenue-policy", {"action": "delete", "peer_id": member.peer_id})
    st = channel_status(sim, member.scid)["hive"]
    assert st["member"] is False and st["last_message"]["reason"] == "hive policy deleted: left the fleet"
    assert sim.rpc("revenue-status")["coordinator"]["hive"] == {"member_peers": [], "signals_handled": 4}


def test_hive_peer_is_routed_at_hive_fee_ppm_without_scarcity_or_climbing_and_leaving_restores_climbing():
    sim = simulate.start(loads_scenario(FLEET), seed=2, options={"revenue-ops-hive-fee-ppm": 7})
    member = chans(sim)["member"]
    join(sim, member.peer_id)
    sim.advance(3 * DAY)
    decisions = sim.rpc("revenue-fee-debug", {"channel_id": member.scid, "limit": 1000})["decisions"]
    assert decisions and {d["branch"] for d in decisions} == {"hive"}
    assert [d["new_fee_ppm"] for d in decisions if d["outcome"] == "applied"] == [7]   # set once, never moved
    assert chans(sim)["member"].fee_ppm == 7
    sim.rpc("revenue-policy", {"action": "set", "peer_id": member.peer_id, "strategy": "dynamic"})
    sim.advance(DAY)
    later = sim.rpc("revenue-fee-debug", {"channel_id": member.scid, "limit": 1000})["decisions"]
    assert {d["branch"] for d in later if d["id"] > max(x["id"] for x in decisions)} - {"hive"}


def test_a_zero_ppm_hive_peer_is_refilled_at_a_bounded_loss(capsys):
    sim = simulate.start(loads_scenario(FLEET), seed=3, options=FLEET_OPTIONS)
    member = chans(sim)["member"]
    join(sim, member.peer_id)
    sim.advance(4 * DAY)
    rows = sim.store.db.execute("SELECT r.amount_sat, r.moved_msat, r.fee_msat, r.max_fee_msat, b.hive_sat "
                                "FROM rebalances r JOIN budget_reservations b ON b.id = r.id "
                                "WHERE r.to_channel=?", (member.scid,)).fetchall()
    moved = sum(r["moved_msat"] for r in rows)
    fee = sum(r["fee_msat"] for r in rows)
    assert len(rows) >= 3 and moved >= 2_000_000_000 and chans(sim)["member"].fee_ppm == 0   # refilled at 0 ppm
    tolerance_msat = FLEET_OPTIONS["revenue-ops-hive-rebalance-tolerance"] * 1000
    for r in rows:
        assert r["max_fee_msat"] <= tolerance_msat                    # worst case of one chunk within tolerance
        # sling may move more than one chunk between two polls, never at a higher rate than the job allowed
        assert r["fee_msat"] * r["amount_sat"] * 1000 <= r["max_fee_msat"] * r["moved_msat"]
        assert r["hive_sat"] == r["moved_msat"] // 1000               # the day's push count is what was moved
    assert sim.runtime.ledger.hive_pushed_24h_sat(sim.node.now) <= sim.runtime.config.hive_daily_push_sats
    with capsys.disabled():
        print(f"\n[hive] 0-ppm member refilled in 4 days: {len(rows)} pushes, moved {moved // 1000} sat for "
              f"{fee / 1000:.0f} sat ({fee * 1_000_000 // max(moved, 1)} ppm); per push paid "
              f"{min(r['fee_msat'] for r in rows) // 1000}-{max(r['fee_msat'] for r in rows) // 1000} sat for "
              f"{min(r['moved_msat'] for r in rows) // 1000}-{max(r['moved_msat'] for r in rows) // 1000} sat moved; "
              f"tolerance {tolerance_msat // 1000} sat per 500k chunk")


def test_without_the_hive_strategy_the_same_zero_ppm_channel_is_never_refilled():
    sim = simulate.start(loads_scenario(FLEET.replace("fee_ppm = 300", "fee_ppm = 0")), seed=3,
                         options=FLEET_OPTIONS)
    member = chans(sim)["member"]
    sim.rpc("revenue-policy", {"action": "set", "peer_id": member.peer_id, "strategy": "static", "fee_ppm": 0})
    sim.advance(2 * DAY)
    assert not sim.store.db.execute("SELECT 1 FROM rebalances WHERE to_channel=?", (member.scid,)).fetchall()


# ---------------------------------------------------------------------------------------------- pushes

PUSH_OPTIONS = {"revenue-ops-hive-push-max-sats": 300_000, "revenue-ops-hive-daily-push-sats": 500_000,
                "revenue-ops-rebalance-interval": 600}


def push(sim, src, dst, amount, **extra):
    return sim.rpc("revenue-rebalance", {"from_channel": src.scid, "to_channel": dst.scid, "amount_sats": amount,
                                         **extra})


def test_pushes_into_a_hive_peer_are_capped_per_call_and_per_24h_by_this_plugin():
    sim = simulate.start(loads_scenario(FLEET), seed=4, options=PUSH_OPTIONS)
    sim.advance(600)
    c = chans(sim)
    member, big, plain = c["member"], c["big"], c["plain"]
    join(sim, member.peer_id)
    with pytest.raises(RpcException, match="amount_sats.*hive_push_max_sats") as err:
        push(sim, big, member, 300_001, max_fee_sats=300)
    assert err.value.code == -32602
    last = channel_status(sim, member.scid)["hive"]["last_message"]
    assert last["type"] == "HivePush" and last["accepted"] is False and last["amount_sat"] == 300_001
    assert channel_status(sim, big.scid)["hive"]["last_message"] == last          # the source is told too
    # force overrides policies, never the hive caps
    with pytest.raises(RpcException, match="hive_push_max_sats"):
        push(sim, big, member, 400_000, max_fee_sats=300, force=True)
    # no max fee: the strategic exemption's tolerance (50 sat) bounds the loss
    res = push(sim, big, member, 300_000)
    assert res["status"] == "initiated" and res["reserved_msat"] == 49_800      # 166 ppm of 300k sat
    assert channel_status(sim, member.scid)["hive"]["last_message"]["accepted"] is True
    assert sim.node.sling.once[member.scid]["job"]["maxppm"] == 166
    sim.advance(6 * 3600)
    # at 166 ppm against routes of ~300 ppm this push may move nothing; one allowed 1,000 ppm moves
    push(sim, big, member, 300_000, max_fee_sats=300)
    sim.advance(6 * 3600)
    rows = [r for r in sim.runtime.ledger.reservations() if r["scid"] == member.scid]
    assert len(rows) == 2 and all(r["status"] == "settled" for r in rows)
    pushed = sim.runtime.ledger.hive_pushed_24h_sat(sim.node.now)
    assert pushed == sum(r["hive_sat"] for r in rows) and 200_000 <= pushed <= 500_000
    # the rest of the day's allowance is all a further push may use, however it is split
    with pytest.raises(RpcException, match="hive_daily_push"):
        push(sim, big, member, 500_000 - pushed + 1, max_fee_sats=300)
    last = channel_status(sim, member.scid)["hive"]["last_message"]
    assert last["accepted"] is False and "hive_daily_push" in last["reason"]
    # a push into an ordinary peer is not a hive push: no hive cap, no hive message
    res = push(sim, big, plain, 400_000, max_fee_sats=400)
    assert res["status"] == "initiated"
    assert channel_status(sim, plain.scid)["hive"]["last_message"] is None
    # 24 h later this push no longer counts (the automatic cycle's own small pushes may)
    sim.advance(DAY)
    recent = [r for r in sim.runtime.ledger.reservations()
              if r["created_at"] > sim.node.now - DAY and r["status"] != "released"]
    assert not {r["id"] for r in rows} & {r["id"] for r in recent}
    # what counts now is the last day's pushes only, and they too stay within the day's allowance
    assert sim.runtime.ledger.hive_pushed_24h_sat(sim.node.now) == sum(r["hive_sat"] for r in recent) <= 500_000


def test_a_push_refused_by_sling_is_released_and_does_not_count_against_the_day():
    sim = simulate.start(loads_scenario(FLEET), seed=5, options=PUSH_OPTIONS)
    sim.advance(600)
    c = chans(sim)
    join(sim, c["member"].peer_id)
    sim.node.sling._rpc_once = lambda params: (_ for _ in ()).throw(SlingError("once refused"))
    with pytest.raises(RpcException, match="sling-once refused"):
        push(sim, c["big"], c["member"], 300_000, max_fee_sats=100)
    assert [r["status"] for r in sim.runtime.ledger.reservations()] == ["released"]
    assert sim.runtime.ledger.hive_pushed_24h_sat(sim.node.now) == 0


def test_with_default_settings_a_zero_ppm_hive_peer_is_refilled_in_tolerance_sized_pushes():
    """Defaults: tolerance 50 sat. Pushes shrink until their expected route fee fits it (last-hop gossip
    estimate), so the member is refilled slowly, each push's worst case within the tolerance."""
    sim = simulate.start(loads_scenario(FLEET), seed=3)
    member = chans(sim)["member"]
    join(sim, member.peer_id)
    sim.advance(4 * DAY)
    rows = sim.store.db.execute("SELECT amount_sat, moved_msat, fee_msat, max_fee_msat FROM rebalances "
                                "WHERE to_channel=? AND moved_msat > 0", (member.scid,)).fetchall()
    assert len(rows) >= 2
    tolerance_msat = sim.runtime.config.hive_rebalance_tolerance * 1000
    for r in rows:
        assert r["amount_sat"] < 500_000 and r["max_fee_msat"] <= tolerance_msat
        assert r["fee_msat"] * r["amount_sat"] * 1000 <= r["max_fee_msat"] * r["moved_msat"]
