"""Every RPC output and notification of a scenario run validates against CLN's schemas and matches fixtures,
for both Core Lightning versions the simulated node answers as (v25.12.1, v26.06.6)."""
import hashlib

import pytest
from pyln.client import RpcError

from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario
from revops.sim.schemas import (load_fixture, shape_mismatches, validate_notification, validate_response)
from revops.sim.versions import V25, V26, VERSIONS

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


# What a v26.06.6 answer has that the v25.12.1 captures do not (+) or lacks (-): docs/simulator.md's table
V26_VS_FIXTURES = {
    "listpeerchannels": {"-": {"max_total_htlc_in_msat"}, "+": set()},
    "forward_event settled": {"-": set(), "+": {"preimage"}},
}


@pytest.fixture(scope="module", params=VERSIONS)
def run(request):
    sc = load_scenario("small")
    node = SimNode(sc, seed=3, cln_version=request.param)
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


def _check(method, arg, result, version):
    validate_response(method, result, version)
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
    _check(method, arg, res, node.cln_version)


@pytest.mark.needs("shared")
def test_listpeerchannels_has_all_fixture_keys(run):
    node, _, _ = run
    fx = load_fixture("listpeerchannels")["channels"][0]
    ch = node.call("listpeerchannels", {"id": node.by_name["acinq"].peer_id})["channels"][0]
    gone = V26_VS_FIXTURES["listpeerchannels"]["-"] if node.cln_version == V26 else set()
    assert set(fx) - set(ch) == gone
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
        validate_notification(topic, params, node.cln_version)
        fx = fixtures[topic]
        if topic == "forward_event":
            status = params["forward_event"]["status"]
            ref = next(f for f in fx if f["forward_event"]["status"] == status)
            extra = V26_VS_FIXTURES["forward_event settled"]["+"] if (node.cln_version, status) == (V26, "settled") \
                else set()
            assert set(params["forward_event"]) == set(ref["forward_event"]) | extra, params
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
    validate_response("setchannel", res, node.cln_version)
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


# ---------------------------------------------------------------- the differences between the two versions
@pytest.mark.needs("shared")
def test_each_version_answers_in_its_own_shape(run):
    """The differences of docs/simulator.md's table, each checked against the version's own schema."""
    node, notes, _ = run
    v26 = node.cln_version == V26
    assert node.call("getinfo")["version"] == node.cln_version
    perkw = node.call("feerates", {"style": "perkw"})["perkw"]
    assert ("splice" in perkw) is v26 and (not v26 or perkw["splice"] == perkw["opening"] + 5)
    chans = node.call("listpeerchannels")["channels"]
    assert all(("max_total_htlc_in_msat" in c) is not v26 for c in chans)
    settled = [p["forward_event"] for t, p in notes if t == "forward_event" and p["forward_event"]["status"] == "settled"]
    assert settled and all(("preimage" in f) is v26 for f in settled)
    for f in settled if v26 else ():
        assert hashlib.sha256(bytes.fromhex(f["preimage"])).hexdigest() == f["payment_hash"]
    assert not any("preimage" in p["forward_event"] for t, p in notes
                   if t == "forward_event" and p["forward_event"]["status"] != "settled")
    states = [p["channel_state_changed"] for t, p in notes if t == "channel_state_changed"]
    opened = [s for s in states if s["new_state"] == "CHANNELD_AWAITING_LOCKIN"]
    closed = [s for s in states if s["new_state"] == "CLOSED"]
    assert opened and closed
    if v26:     # v26.06 omits what v25.12.1 sends as a deprecated 'unknown' and as null
        assert all("old_state" not in s for s in opened) and all("message" not in s for s in closed)
    else:
        assert all(s["old_state"] == "unknown" for s in opened) and all(s["message"] is None for s in closed)


@pytest.mark.needs("shared")
def test_listpeerchannels_by_channel_id_only_on_v26(run):
    node, _, _ = run
    ch = node.call("listpeerchannels")["channels"][2]
    if node.cln_version == V26:
        assert node.call("listpeerchannels", {"channel_id": ch["channel_id"]})["channels"] == [ch]
        assert node.call("listpeerchannels", [None, None, ch["channel_id"]])["channels"] == [ch]
        with pytest.raises(RpcError) as e:
            node.call("listpeerchannels", {"channel_id": ch["channel_id"], "id": ch["peer_id"]})
        assert e.value.error["code"] == -32602
    else:
        with pytest.raises(RpcError) as e:
            node.call("listpeerchannels", {"channel_id": ch["channel_id"]})
        assert e.value.error["code"] == -32602 and e.value.error["message"].startswith("unknown parameter: channel_id")
        with pytest.raises(RpcError) as e:
            node.call("listpeerchannels", [None, None, ch["channel_id"]])
        assert e.value.error["message"] == "too many parameters: got 3, expected 2"


@pytest.mark.needs("shared")
def test_a_v25_answer_is_not_valid_as_v26_and_back():
    """The schema tests can tell the versions apart: each version's schema refuses the other's difference."""
    import jsonschema
    sc = load_scenario("tiny")
    old, new = SimNode(sc, seed=1, cln_version=V25), SimNode(sc, seed=1, cln_version=V26)
    with pytest.raises(jsonschema.ValidationError):
        validate_response("feerates", new.call("feerates", {"style": "perkw"}), V25)
    with pytest.raises(jsonschema.ValidationError):
        validate_response("listpeerchannels", old.call("listpeerchannels"), V26)
    closed = {"channel_state_changed": {"peer_id": "02" + "11" * 32, "channel_id": "ab" * 32,
                                        "short_channel_id": "1x1x1", "timestamp": "2026-01-01T00:00:00.000Z",
                                        "old_state": "ONCHAIN", "new_state": "CLOSED", "cause": "unknown",
                                        "message": None}}
    validate_notification("channel_state_changed", closed, V25)
    with pytest.raises(jsonschema.ValidationError):
        validate_notification("channel_state_changed", closed, V26)


def test_the_version_comes_from_the_scenario_or_the_caller(tmp_path):
    from revops.sim.scenario import ScenarioError, parse_scenario
    base = {"channels": [{"name": "a", "capacity_sat": 1_000_000}]}
    assert SimNode(parse_scenario(base)).cln_version == V25
    sc = parse_scenario({**base, "node": {"cln_version": V26}})
    assert SimNode(sc).cln_version == V26 and SimNode(sc, cln_version=V25).cln_version == V25
    with pytest.raises(ScenarioError, match=r"node\.cln_version"):
        parse_scenario({**base, "node": {"cln_version": "v24.11"}})
    with pytest.raises(ValueError, match="v25.12.1, v26.06.6"):
        SimNode(sc, cln_version="v27.03")
