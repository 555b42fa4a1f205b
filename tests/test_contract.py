"""The reference's observable contract kept: revenue-set-fee and the deprecated ignore family."""
from __future__ import annotations

import pytest
from pyln.client import RpcException

from revops import simulate
from revops.sim.scenario import load_scenario


@pytest.fixture
def sim():
    s = simulate.start(load_scenario("small"), seed=1)
    s.advance(3600)
    yield s
    s.close()


def node_fee(sim, scid):
    return next(c["fee_proportional_millionths"] for c in sim.node.call("listpeerchannels")["channels"]
                if c["short_channel_id"] == scid)


def first_channel(sim):
    return sim.rpc("revenue-status")["channels"][0]


def test_set_fee_applies_on_the_node_records_a_manual_decision_and_the_climber_continues_from_it(sim):
    c = first_channel(sim)
    reply = sim.rpc("revenue-set-fee", {"channel_id": c["scid"], "fee_ppm": 333})
    assert reply["status"] == "success" and reply["new_fee_ppm"] == 333 and reply["old_fee_ppm"] == c["fee_ppm"]
    assert node_fee(sim, c["scid"]) == 333
    latest = sim.rpc("revenue-fee-debug", {"channel_id": c["scid"], "limit": 1})["decisions"][0]
    assert (latest["branch"], latest["outcome"], latest["new_fee_ppm"]) == ("manual", "applied", 333)
    hill = next(x for x in sim.rpc("revenue-status")["channels"] if x["scid"] == c["scid"])["hill_climb"]
    assert hill["climb_fee_ppm"] == 333 and hill["last_branch"] == "manual"


def test_set_fee_outside_the_bounds_needs_force_and_nothing_changes_without_it(sim):
    c = first_channel(sim)
    before = node_fee(sim, c["scid"])
    with pytest.raises(RpcException, match="'fee_ppm'.*outside this channel's range \\[10, 5000\\]"):
        sim.rpc("revenue-set-fee", {"channel_id": c["scid"], "fee_ppm": 9999})
    assert node_fee(sim, c["scid"]) == before
    sim.rpc("revenue-policy", {"action": "set", "peer_id": c["peer_id"], "fee_max_ppm": 800})
    with pytest.raises(RpcException, match=r"\[10, 800\]"):
        sim.rpc("revenue-set-fee", {"channel_id": c["scid"], "fee_ppm": 900})
    assert sim.rpc("revenue-set-fee", {"channel_id": c["scid"], "fee_ppm": 900, "force": "true"})["new_fee_ppm"] == 900
    assert node_fee(sim, c["scid"]) == 900


@pytest.mark.parametrize("params,field", [
    ({"channel_id": "1x1x1", "fee_ppm": 10}, "channel_id"),
    ({"channel_id": "nonsense", "fee_ppm": 10}, "channel_id"),
    ({"fee_ppm": 10}, "channel_id"),
    ({"channel_id": "872400x1x0"}, "fee_ppm"),
    ({"channel_id": "872400x1x0", "fee_ppm": -5}, "fee_ppm"),
    ({"channel_id": "872400x1x0", "fee_ppm": "abc"}, "fee_ppm"),
    ({"channel_id": "872400x1x0", "fee_ppm": 10, "force": "maybe"}, "force"),
])
def test_set_fee_bad_input_names_the_field(sim, params, field):
    with pytest.raises(RpcException) as err:
        sim.rpc("revenue-set-fee", params)
    assert f"'{field}'" in err.value.message and err.value.code == -32602


def test_dry_run_set_fee_is_recorded_not_applied():
    sim = simulate.start(load_scenario("small"), seed=1, options={"revenue-ops-dry-run": "true"})
    sim.advance(3600)
    c = first_channel(sim)
    before = node_fee(sim, c["scid"])
    reply = sim.rpc("revenue-set-fee", {"channel_id": c["scid"], "fee_ppm": 444})
    assert "dry run" in reply["message"] and node_fee(sim, c["scid"]) == before
    assert sim.rpc("revenue-fee-debug", {"channel_id": c["scid"], "limit": 1})["decisions"][0]["outcome"] == "dry_run"


def test_ignore_family_maps_onto_policies(sim):
    c = first_channel(sim)
    reply = sim.rpc("revenue-ignore", {"peer_id": c["peer_id"], "reason": "testing"})
    assert reply["status"] == "success" and "DEPRECATED" in reply["warning"]
    policy = sim.rpc("revenue-policy", {"action": "get", "peer_id": c["peer_id"]})["policy"]
    assert (policy["strategy"], policy["rebalance_mode"], policy["tags"]) == ("passive", "disabled", ["ignored", "testing"])
    listed = sim.rpc("revenue-list-ignored")
    assert listed["count"] == 1 and listed["ignored_peers"][0]["reason"] == "testing"
    sim.rpc("revenue-unignore", {"peer_id": c["peer_id"]})
    assert sim.rpc("revenue-list-ignored")["count"] == 0
    assert sim.rpc("revenue-policy", {"action": "get", "peer_id": c["peer_id"]})["stored"] is False
    with pytest.raises(RpcException, match="'peer_id'"):
        sim.rpc("revenue-ignore", {"peer_id": "02deadbeef"})


def test_clboss_status_and_remanage_hand_fees_back():
    from tests.test_runtime import with_plugins
    from revops.sim.scenario import loads_scenario
    sim = simulate.start(loads_scenario(with_plugins(clboss=True)), seed=1)
    sim.advance(3600)
    peers = sorted({c["peer_id"] for c in sim.rpc("revenue-status")["channels"]})
    status = sim.rpc("revenue-clboss-status")
    assert status["clboss_available"] and status["unmanaged_lnfee"] == peers and status["handed_back"] == []
    reply = sim.rpc("revenue-remanage", {"peer_id": peers[0]})
    assert reply["status"] == "success" and reply["policy"]["strategy"] == "passive"
    sim.advance(600)
    status = sim.rpc("revenue-clboss-status")
    assert status["handed_back"] == [peers[0]] and peers[0] not in status["unmanaged_lnfee"]
    assert peers[0] not in sim.node.call("clboss-status")["unmanaged"]


def test_clboss_status_when_clboss_is_absent(sim):
    status = sim.rpc("revenue-clboss-status")
    assert status["clboss_available"] is False and status["clboss_health"]["status"] == "missing"
    assert status["unmanaged_lnfee"] == []
