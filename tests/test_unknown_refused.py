"""Unknown things are refused by name (issue 14 item 12, seen on a CLN v25.12.1 node): a policy for a channel
that does not exist or belongs to another peer, a policy / ignore / unignore / remanage for a node that is
not a peer, a rebalance from a channel we do not have. Nothing is written when refused."""
from __future__ import annotations

import pytest
from pyln.client import RpcException

from revops import simulate
from revops.sim.scenario import load_scenario

STRANGER = "02" + "ab" * 32
NOWHERE = "999999x9x9"


@pytest.fixture(scope="module")
def sim():
    s = simulate.start(load_scenario("tiny"), seed=3)
    s.advance(3600)
    yield s
    s.close()


def refused(sim, method: str, params: dict, field: str, words: str) -> None:
    rows = sim.store.db.execute("SELECT COUNT(*) FROM policies").fetchone()[0]
    with pytest.raises(RpcException) as e:
        sim.rpc(method, params)
    assert e.value.code == -32602, e.value.message
    assert f"Invalid parameter '{field}'" in e.value.message and words in e.value.message
    assert sim.store.db.execute("SELECT COUNT(*) FROM policies").fetchone()[0] == rows


def test_a_policy_for_a_channel_of_another_peer_or_of_nobody_is_refused(sim):
    a, b = sim.node.open_channels()[:2]
    assert a.peer_id != b.peer_id
    refused(sim, "revenue-policy", {"action": "set", "peer_id": a.peer_id, "channel_id": b.scid,
                                    "strategy": "static", "fee_ppm": 100}, "channel_id",
            f"{b.scid} is a channel of peer {b.peer_id}, not of {a.peer_id}")
    refused(sim, "revenue-policy", {"action": "set", "peer_id": a.peer_id, "channel_id": NOWHERE,
                                    "strategy": "static", "fee_ppm": 100}, "channel_id",
            f"{NOWHERE} is not a channel of this node")
    sim.rpc("revenue-policy", {"action": "set", "peer_id": a.peer_id, "channel_id": a.scid, "strategy": "passive"})


@pytest.mark.parametrize("method, params", [
    ("revenue-policy", {"action": "set", "strategy": "passive"}),
    ("revenue-policy", {"action": "tag", "tag": "x"}),
    ("revenue-ignore", {}), ("revenue-unignore", {}), ("revenue-remanage", {})])
def test_a_node_that_is_not_a_peer_gets_no_rows(sim, method, params):
    refused(sim, method, {**params, "peer_id": STRANGER}, "peer_id", f"{STRANGER} is not a peer of this node")


def test_a_rebalance_from_a_channel_we_do_not_have_names_the_channel(sim):
    dst = sim.node.open_channels()[0].scid
    refused(sim, "revenue-rebalance", {"from_channel": NOWHERE, "to_channel": dst, "amount_sats": 10_000},
            "from_channel", f"{NOWHERE} is not a channel of this node")
    refused(sim, "revenue-rebalance", {"from_channel": dst, "to_channel": NOWHERE, "amount_sats": 10_000},
            "to_channel", f"{NOWHERE} is not a channel of this node")


def test_a_peer_whose_channels_closed_can_still_be_cleaned_up(sim):  # runs last: it empties the directory
    ch = sim.node.open_channels()[-1]
    sim.rpc("revenue-ignore", {"peer_id": ch.peer_id})
    sim.runtime.directory = type(sim.runtime.directory)({}, frozenset())   # as if its channels were forgotten
    assert sim.rpc("revenue-unignore", {"peer_id": ch.peer_id})["status"] == "success"
    refused(sim, "revenue-unignore", {"peer_id": ch.peer_id}, "peer_id", "is not a peer of this node")
