"""Every RPC output and notification of a scenario run validates against CLN's schemas and matches fixtures."""
import pytest
from pyln.client import RpcError

from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario
from revops.sim.schemas import (load_fixture, shape_mismatches, validate_notification, validate_response)

DAY = 86400

FIXTURE_FOR = {
    ("getinfo", None): "getinfo",
    ("listpeerchannels", None): "listpeerchannels",
    ("listpeers", None): "listpeers",
    ("listfunds", None): "listfunds",
    ("listforwards", None): "listforwards",
    ("listchannels", None): "listchannels",
    ("listnodes", None): "listnodes",
    ("feerates", "perkw"): "feerates-perkw",
    ("feerates", "perkb"): "feerates-perkb",
    ("listconfigs", None): None,
    ("plugin", "list"): "plugin-list",
    ("listhtlcs", None): None,
    ("bkpr-listincome", None): "bkpr-listincome",
    ("bkpr-listaccountevents", None): "bkpr-listaccountevents",
    ("bkpr-listbalances", None): "bkpr-listbalances",
    ("bkpr-channelsapy", None): "bkpr-channelsapy",
}


@pytest.fixture(scope="module")
def run():
    sc = load_scenario("small")
    node = SimNode(sc, seed=3)
    notes = []
    node.subscribe(lambda topic, params: notes.append((topic, params)))
    node.advance_to(sc.start_time + 6 * DAY)
    scid = node.by_name["merchant"].scid
    node.call("setchannel", {"id": scid, "feebase": 0, "feeppm": 900})
    node.call("sling-job", {"scid": node.by_name["merchant"].scid, "direction": "pull", "amount": 50000,
                            "maxppm": 2000, "outppm": 2000})
    node.call("sling-go", {})
    new = node.open_channel(None, 2_000_000, 0, "remote", name="late")
    node.advance_to(sc.start_time + 9 * DAY)
    node.close_channel(node.by_name["newbie"].scid)
    node.disconnect_peer(node.by_name["acinq"].peer_id)
    node.connect_peer(node.by_name["acinq"].peer_id)
    node.advance_to(sc.start_time + 14 * DAY)
    return node, notes, new


def _check(method, arg, result):
    validate_response(method, result)
    fx = FIXTURE_FOR.get((method, arg))
    if fx:
        mism = shape_mismatches(result, load_fixture(fx))
        assert not mism, mism[:5]


@pytest.mark.needs("shared")
@pytest.mark.parametrize("method,arg", list(FIXTURE_FOR))
def test_rpc_outputs_validate_and_match_fixtures(run, method, arg):
    node, _notes, _ = run
    params = {}
    if method == "feerates":
        params = {"style": arg}
    if method == "plugin":
        params = {"subcommand": "list"}
    res = node.call(method, params)
    _check(method, arg, res)


@pytest.mark.needs("shared")
def test_listpeerchannels_has_all_fixture_keys(run):
    node, _, _ = run
    fx = load_fixture("listpeerchannels")["channels"][0]
    ch = node.call("listpeerchannels", {"id": node.by_name["acinq"].peer_id})["channels"][0]
    assert set(fx) - set(ch) == set()
    assert not shape_mismatches(ch, fx, allow_extra=False)


@pytest.mark.needs("shared")
def test_forward_records_shape(run):
    node, _, _ = run
    fx = load_fixture("listforwards")["forwards"]
    res = node.call("listforwards", {})["forwards"]
    by = {}
    for f in fx:
        by.setdefault(f["status"], f)
    for r in res:
        ref = by[r["status"]]
        assert set(r) == set(ref), (r, ref)
        assert not shape_mismatches(r, ref)


@pytest.mark.needs("shared")
def test_notifications_validate_and_match(run):
    node, notes, _ = run
    topics = {t for t, _ in notes}
    assert {"forward_event", "block_added", "channel_opened", "channel_state_changed", "connect", "disconnect",
            "coin_movement"} <= topics
    fixtures = {t: load_fixture(f"notification-{t}") for t in topics}
    for topic, params in notes:
        validate_notification(topic, params)
        fx = fixtures[topic]
        if topic == "forward_event":
            ref = next(f for f in fx if f["forward_event"]["status"] == params["forward_event"]["status"])
            assert set(params["forward_event"]) == set(ref["forward_event"]), params
        assert not shape_mismatches(params, fx[0] if topic != "coin_movement" else fx[-1]), (topic, params)


@pytest.mark.needs("shared")
def test_setchannel_errors_match_fixture(run):
    node, _, _ = run
    with pytest.raises(RpcError) as e:
        node.call("setchannel", {"id": "999x9x9", "feebase": 0, "feeppm": 250})
    assert e.value.error == load_fixture("setchannel-error-unknown-channel")


@pytest.mark.needs("shared")
def test_setchannel_output_matches_fixture(run):
    node, _, _ = run
    res = node.call("setchannel", {"id": node.by_name["acinq"].scid, "feebase": 0, "feeppm": 250})
    validate_response("setchannel", res)
    assert not shape_mismatches(res, load_fixture("setchannel"), allow_extra=False, allow_missing=False)


def test_unknown_command_and_bad_params(run):
    node, _, _ = run
    with pytest.raises(RpcError) as e:
        node.call("nosuchcmd", {})
    assert e.value.error == {"code": -32601, "message": "Unknown command 'nosuchcmd'"}
    with pytest.raises(RpcError) as e:
        node.call("listforwards", {"bogus": 1})
    assert e.value.error["code"] == -32602
    with pytest.raises(RpcError) as e:
        node.call("feerates", {})
    assert e.value.error == {"code": -32602, "message": "missing required parameter: style"}
    with pytest.raises(RpcError) as e:
        node.call("setchannel", {"id": node.by_name["acinq"].scid, "feeppm": -1})
    assert e.value.error["code"] == -32602 and e.value.error["message"].startswith("feeppm: ")


def test_positional_params(run):
    node, _, _ = run
    a = node.call("feerates", ["perkw"])
    assert "perkw" in a
    scid = node.by_name["acinq"].scid
    r = node.call("setchannel", [scid, 5, 77])
    assert r["channels"][0]["fee_proportional_millionths"] == 77
    assert node.call("listforwards", ["settled"])["forwards"][0]["status"] == "settled"


@pytest.mark.needs("shared")
def test_uninstalled_plugin_is_unknown_command():
    sc = load_scenario("small")
    node = SimNode(sc)
    node.set_plugin_installed("clboss", False)
    node.set_plugin_installed("bookkeeper", False)
    for m in ("clboss-status", "bkpr-listincome"):
        with pytest.raises(RpcError) as e:
            node.call(m, {})
        assert e.value.error == {"code": -32601, "message": f"Unknown command '{m}'"}
    node.set_plugin_installed("clboss", True)
    st = node.call("clboss-status")
    assert not shape_mismatches(st, load_fixture("clboss-status"))
    assert node.call("clboss-unmanage", {"nodeid": node.by_name["acinq"].peer_id, "tags": "lnfee"}) == {}
    st = node.call("clboss-status")
    assert st["unmanaged"][node.by_name["acinq"].peer_id] == "lnfee"
    names = [p["name"] for p in node.call("plugin", {"subcommand": "list"})["plugins"]]
    assert not any(n.endswith("/bookkeeper") for n in names)
