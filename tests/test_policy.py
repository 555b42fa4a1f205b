"""revops.policy: parsing of revenue-policy (keyword and positional), merge, effective policy, gates."""
from __future__ import annotations

import json

import attrs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.model import Policy, RebalanceMode, Strategy
from revops.policy import (
    ACTIONS, PARAMS, PolicyCommand, PolicyError, effective_policy, expires_at, manages_fees, may_drain,
    may_fill, merge, parse_expires_in_hours, parse_fee_ppm, parse_policy_request, parse_rebalance_mode,
    parse_strategy, parse_tag, policy_to_dict, validate_peer_id, validate_scid,
)

P = "02" + "ab" * 32
Q = "03" + "cd" * 32
NOW = 1_700_000_000


def err(fn, *args, **kw) -> PolicyError:
    with pytest.raises(PolicyError) as e:
        fn(*args, **kw)
    return e.value


# --- single values ---

def test_peer_id_normalised() -> None:
    assert validate_peer_id(P.upper().replace("0X", "0x")) == P
    assert validate_peer_id(f" {Q} ") == Q


@pytest.mark.parametrize("bad", ["02deadbeef", "04" + "ab" * 32, "02" + "ab" * 32 + "a", "02" + "zz" * 32,
                                 "", None, 2, ["02" + "ab" * 32]])
def test_peer_id_rejected(bad: object) -> None:
    e = err(validate_peer_id, bad)
    assert e.field == "peer_id" and "66 hex" in e.message


@pytest.mark.parametrize("raw,norm", [("103x2x0", "103x2x0"), ("103:2:0", "103x2x0"), (" 1x0x1 ", "1x0x1"),
                                      ("16777215x16777215x65535", "16777215x16777215x65535")])
def test_scid_normalised(raw: str, norm: str) -> None:
    assert validate_scid(raw) == norm


@pytest.mark.parametrize("bad", ["103x2", "103x2:0", "a1x2x3", "", "16777216x1x1", "1x1x65536", 103, None,
                                 "1x2x3x4", "-1x2x3"])
def test_scid_rejected(bad: object) -> None:
    assert err(validate_scid, bad).field == "channel_id"


@pytest.mark.parametrize("parse,field,enum_cls", [(parse_strategy, "strategy", Strategy),
                                                  (parse_rebalance_mode, "rebalance", RebalanceMode)])
def test_enums_case_insensitive_and_errors_list_values(parse, field, enum_cls) -> None:
    for e in enum_cls:
        assert parse(e.value.upper()) is e and parse(e) is e and parse(f" {e.value} ") is e
    e = err(parse, "turbo")
    assert e.field == field and e.allowed == tuple(x.value for x in enum_cls)
    assert all(x.value in e.message for x in enum_cls)
    assert err(parse, 3).field == field


@pytest.mark.parametrize("raw,value", [(0, 0), (100_000, 100_000), ("250", 250), (250.0, 250), ("+7", 7)])
def test_fee_ppm_ok(raw: object, value: int) -> None:
    assert parse_fee_ppm("fee_ppm", raw) == value


@pytest.mark.parametrize("bad", [-5, 100_001, True, False, 1.5, "abc", "1.0", "", None, [1], float("nan")])
def test_fee_ppm_rejected_naming_field(bad: object) -> None:
    e = err(parse_fee_ppm, "fee_min_ppm", bad)
    assert e.field == "fee_min_ppm" and "fee_min_ppm" in e.message and "100000" in e.message


@pytest.mark.parametrize("tag", ["whale", "a", "x" * 64, "hive:member", "A_b.c-9"])
def test_tag_ok(tag: str) -> None:
    assert parse_tag(tag) == tag


@pytest.mark.parametrize("bad", ["", "x" * 65, "two words", "é", "a/b", 5, None, ["whale"]])
def test_tag_rejected(bad: object) -> None:
    assert err(parse_tag, bad).field == "tag"


def test_expiry() -> None:
    assert expires_at(0, NOW) is None
    assert expires_at(1, NOW) == NOW + 3600
    assert expires_at(0.5, NOW) == NOW + 1800
    assert parse_expires_in_hours("2.5") == 2.5
    for bad in (-1, 721, "x", True, None, float("inf")):
        assert err(parse_expires_in_hours, bad).field == "expires_in_hours"


# --- parse_policy_request: every action, keyword and positional ---

REQUESTS = [
    ({"action": "list"}, ["list"], PolicyCommand("list", NOW)),
    ({"action": "get", "peer_id": P}, ["get", P], PolicyCommand("get", NOW, peer_id=P)),
    ({"action": "get", "peer_id": P, "channel_id": "1:2:3"}, ["get", P, None, None, None, None, "1x2x3"],
     PolicyCommand("get", NOW, peer_id=P, channel_id="1x2x3")),
    ({"action": "set", "peer_id": P, "strategy": "static", "fee_ppm": 250},
     ["set", P, "static", None, 250],
     PolicyCommand("set", NOW, peer_id=P, strategy=Strategy.STATIC, fee_ppm_target=250)),
    ({"action": "set", "peer_id": P, "strategy": "hive", "rebalance": "enabled"}, ["set", P, "hive", "enabled"],
     PolicyCommand("set", NOW, peer_id=P, strategy=Strategy.HIVE, rebalance_mode=RebalanceMode.ENABLED)),
    ({"action": "set", "peer_id": P, "rebalance": "sink_only", "channel_id": "5x6x7", "fee_min_ppm": 10,
      "fee_max_ppm": 900, "expires_in_hours": 2},
     ["set", P, None, "sink_only", None, None, "5x6x7", 10, 900, 2],
     PolicyCommand("set", NOW, peer_id=P, rebalance_mode=RebalanceMode.SINK_ONLY, channel_id="5x6x7",
                   fee_min_ppm=10, fee_max_ppm=900, expires_in_hours=2.0)),
    ({"action": "delete", "peer_id": P}, ["delete", P], PolicyCommand("delete", NOW, peer_id=P)),
    ({"action": "tag", "peer_id": P, "tag": "whale"}, ["tag", P, "whale"],
     PolicyCommand("tag", NOW, peer_id=P, tag="whale")),
    ({"action": "untag", "peer_id": P, "tag": "whale"}, ["untag", P, "whale"],
     PolicyCommand("untag", NOW, peer_id=P, tag="whale")),
    ({"action": "find", "tag": "whale"}, ["find", "whale"], PolicyCommand("find", NOW, tag="whale")),
]


@pytest.mark.parametrize("kw,pos,expected", REQUESTS, ids=[r[0]["action"] for r in REQUESTS])
def test_keyword_and_positional_forms(kw: dict, pos: list, expected: PolicyCommand) -> None:
    assert parse_policy_request(kw, NOW) == expected
    assert parse_policy_request(pos, NOW) == expected


@pytest.mark.parametrize("kw,expected", [
    # what lightningd hands us after binding positional `tag <peer> whale` / `find whale` to the reference
    # signature (action, peer_id, strategy, ...): the tag sits in strategy / peer_id
    ({"action": "tag", "peer_id": P, "strategy": "whale"}, PolicyCommand("tag", NOW, peer_id=P, tag="whale")),
    ({"action": "untag", "peer_id": P, "strategy": "whale"}, PolicyCommand("untag", NOW, peer_id=P, tag="whale")),
    ({"action": "find", "peer_id": "whale"}, PolicyCommand("find", NOW, tag="whale")),
])
def test_positional_binding_via_lightningd_names(kw: dict, expected: PolicyCommand) -> None:
    assert parse_policy_request(kw, NOW) == expected


def test_action_case_and_none_params() -> None:
    cmd = parse_policy_request({"action": "GET", "peer_id": P, "strategy": None, "tag": None}, NOW)
    assert cmd == PolicyCommand("get", NOW, peer_id=P)


def test_expires_at_property() -> None:
    cmd = parse_policy_request({"action": "set", "peer_id": P, "expires_in_hours": 1}, NOW)
    assert cmd.expires_at == NOW + 3600


@pytest.mark.parametrize("params,field", [
    ({"action": "frobnicate"}, "action"),
    ({}, "action"),
    ({"action": 3}, "action"),
    ({"action": "get"}, "peer_id"),
    ({"action": "delete"}, "peer_id"),
    ({"action": "set", "strategy": "static"}, "peer_id"),
    ({"action": "set", "peer_id": P}, "strategy"),
    ({"action": "tag", "peer_id": P}, "tag"),
    ({"action": "untag", "tag": "x"}, "peer_id"),
    ({"action": "find"}, "tag"),
    ({"action": "get", "peer_id": "02deadbeef"}, "peer_id"),
    ({"action": "set", "peer_id": P, "strategy": "turbo"}, "strategy"),
    ({"action": "set", "peer_id": P, "rebalance": "sometimes"}, "rebalance"),
    ({"action": "set", "peer_id": P, "fee_ppm": -5}, "fee_ppm"),
    ({"action": "set", "peer_id": P, "fee_ppm": "abc"}, "fee_ppm"),
    ({"action": "set", "peer_id": P, "fee_ppm": 200_000}, "fee_ppm"),
    ({"action": "set", "peer_id": P, "fee_min_ppm": 1.5}, "fee_min_ppm"),
    ({"action": "set", "peer_id": P, "fee_max_ppm": True}, "fee_max_ppm"),
    ({"action": "set", "peer_id": P, "expires_in_hours": 10_000}, "expires_in_hours"),
    ({"action": "set", "peer_id": P, "channel_id": "nonsense", "fee_ppm": 1}, "channel_id"),
    ({"action": "set", "peer_id": P, "fee_ppm": 1, "tag": "x"}, "tag"),
    ({"action": "list", "peer_id": P}, "peer_id"),
    ({"action": "get", "peer_id": P, "strategy": "static"}, "strategy"),
    ({"action": "tag", "peer_id": P, "tag": "ok", "strategy": "static"}, "strategy"),
    ({"action": "tag", "peer_id": P, "tag": "bad tag"}, "tag"),
    ({"action": "tag", "peer_id": P, "strategy": "bad tag"}, "tag"),
    ({"action": "find", "peer_id": P}, "tag"),
    ({"action": "find", "tag": "x", "channel_id": "1x2x3"}, "channel_id"),
    ({"action": "get", "peer_id": P, "frob": 1}, "frob"),
])
def test_bad_requests_name_the_field(params: dict, field: str) -> None:
    e = err(parse_policy_request, params, NOW)
    assert e.field == field, e.message


def test_unknown_action_lists_actions() -> None:
    e = err(parse_policy_request, {"action": "frob"}, NOW)
    assert e.allowed == ACTIONS
    assert e.message == ("Unknown action: 'frob'. Use 'list', 'get', 'set', 'delete', 'tag', 'untag', or 'find'")


def test_too_many_positional() -> None:
    assert err(parse_policy_request, ["get", P] + [None] * len(PARAMS), NOW).field == "params"


SET_JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=70),
                     st.lists(st.integers(), max_size=1))


@settings(max_examples=300, deadline=None)
@given(param=st.sampled_from(["strategy", "rebalance", "fee_ppm", "fee_min_ppm", "fee_max_ppm",
                              "expires_in_hours", "channel_id"]),
       junk=SET_JUNK)
def test_any_set_value_parses_or_names_its_field(param: str, junk: object) -> None:
    params = {"action": "set", "peer_id": P, "fee_ppm": 5, "fee_max_ppm": 10, param: junk}
    try:
        parse_policy_request(params, NOW)
    except PolicyError as e:
        assert e.field == param


# --- merge ---

def cmd(**kw) -> PolicyCommand:
    kw.setdefault("action", "set")
    return parse_policy_request({"peer_id": P, **kw}, NOW)


STORED = Policy(peer_id=P, strategy=Strategy.STATIC, rebalance_mode=RebalanceMode.DISABLED, fee_ppm_target=300,
                fee_min_ppm=100, fee_max_ppm=900, tags=("whale",), updated_at=5)


@pytest.mark.parametrize("stored,kw,expected", [
    (None, {"strategy": "hive"}, Policy(peer_id=P, strategy=Strategy.HIVE, updated_at=NOW)),
    (None, {"strategy": "static", "fee_ppm": 250},
     Policy(peer_id=P, strategy=Strategy.STATIC, fee_ppm_target=250, updated_at=NOW)),
    (STORED, {"fee_ppm": 400}, Policy(peer_id=P, strategy=Strategy.STATIC, rebalance_mode=RebalanceMode.DISABLED,
                                      fee_ppm_target=400, fee_min_ppm=100, fee_max_ppm=900, tags=("whale",),
                                      updated_at=NOW)),
    (STORED, {"rebalance": "enabled"}, Policy(peer_id=P, strategy=Strategy.STATIC, fee_ppm_target=300,
                                               fee_min_ppm=100, fee_max_ppm=900, tags=("whale",), updated_at=NOW)),
    (STORED, {"strategy": "dynamic", "fee_min_ppm": 0},
     Policy(peer_id=P, rebalance_mode=RebalanceMode.DISABLED, fee_ppm_target=300, fee_min_ppm=0,
            fee_max_ppm=900, tags=("whale",), updated_at=NOW)),
    (STORED, {"action": "tag", "tag": "fleet"},
     Policy(peer_id=P, strategy=Strategy.STATIC, rebalance_mode=RebalanceMode.DISABLED, fee_ppm_target=300,
            fee_min_ppm=100, fee_max_ppm=900, tags=("whale", "fleet"), updated_at=NOW)),
    (STORED, {"action": "tag", "tag": "whale"}, attrs.evolve(STORED, updated_at=NOW)),
    (STORED, {"action": "untag", "tag": "whale"},
     Policy(peer_id=P, strategy=Strategy.STATIC, rebalance_mode=RebalanceMode.DISABLED, fee_ppm_target=300,
            fee_min_ppm=100, fee_max_ppm=900, updated_at=NOW)),
    (None, {"action": "untag", "tag": "whale"}, Policy(peer_id=P, updated_at=NOW)),
    (None, {"strategy": "passive", "expires_in_hours": 2},
     Policy(peer_id=P, strategy=Strategy.PASSIVE, expires_at=NOW + 7200, updated_at=NOW)),
])
def test_merge_changes_only_given_fields(stored, kw, expected) -> None:
    assert merge(stored, cmd(**kw)) == expected


def test_merge_clears_expiry_with_zero_hours() -> None:
    p = merge(None, cmd(strategy="passive", expires_in_hours=2))
    assert merge(p, cmd(expires_in_hours=0)).expires_at is None


@pytest.mark.parametrize("stored,kw,field", [
    (None, {"strategy": "static"}, "fee_ppm"),                       # defect 17: static needs a target
    (Policy(peer_id=P), {"strategy": "static"}, "fee_ppm"),
    (None, {"fee_min_ppm": 500, "fee_max_ppm": 100}, "fee_min_ppm"),
    (STORED, {"fee_max_ppm": 50}, "fee_min_ppm"),
    (STORED, {"fee_ppm": 1000}, "fee_ppm"),                          # static target above own max
    (STORED, {"fee_ppm": 50}, "fee_ppm"),                            # below own min
    (None, {"action": "get"}, "action"),
])
def test_merge_rejects_inconsistent_rows(stored, kw, field) -> None:
    assert err(merge, stored, cmd(**kw)).field == field


def test_merge_static_target_from_stored_is_enough() -> None:
    stored = Policy(peer_id=P, fee_ppm_target=250)
    assert merge(stored, cmd(strategy="static")).strategy is Strategy.STATIC


def test_merge_rejects_foreign_stored_row() -> None:
    assert err(merge, Policy(peer_id=Q), cmd(strategy="hive")).field == "peer_id"


def test_merge_tag_limit() -> None:
    stored = Policy(peer_id=P, tags=tuple(f"t{i}" for i in range(32)))
    assert err(merge, stored, cmd(action="tag", tag="one-more")).field == "tag"


def test_new_channel_row_starts_from_base() -> None:
    c = cmd(channel_id="1x2x3", fee_min_ppm=200)
    row = merge(None, c, base=STORED)
    assert (row.channel_id, row.strategy, row.fee_ppm_target, row.fee_min_ppm, row.tags) == (
        "1x2x3", Strategy.STATIC, 300, 200, ())
    assert merge(None, c).strategy is Strategy.DYNAMIC


# --- effective policy ---

PEER = Policy(peer_id=P, strategy=Strategy.STATIC, rebalance_mode=RebalanceMode.SINK_ONLY, fee_ppm_target=300,
              fee_min_ppm=100, fee_max_ppm=900, tags=("whale",), updated_at=10)
CHAN = Policy(peer_id=P, channel_id="1x2x3", strategy=Strategy.DYNAMIC, rebalance_mode=RebalanceMode.DISABLED,
              tags=("fleet", "whale"), updated_at=20)


def test_effective_defaults_and_single_rows() -> None:
    assert effective_policy(None, None, NOW, peer_id=P) == Policy(peer_id=P)
    assert effective_policy(PEER, None, NOW) == PEER
    assert effective_policy(None, CHAN, NOW) == CHAN
    with pytest.raises(ValueError):
        effective_policy(None, None, NOW)


def test_effective_channel_overrides_peer_field_by_field() -> None:
    eff = effective_policy(PEER, CHAN, NOW)
    assert (eff.strategy, eff.rebalance_mode, eff.fee_ppm_target, eff.fee_min_ppm, eff.fee_max_ppm) == (
        Strategy.DYNAMIC, RebalanceMode.DISABLED, 300, 100, 900)
    assert eff.tags == ("whale", "fleet") and eff.channel_id == "1x2x3" and eff.updated_at == 20


def test_effective_channel_band_replaces_peer_band() -> None:
    chan = Policy(peer_id=P, channel_id="1x2x3", strategy=Strategy.STATIC, fee_ppm_target=50, fee_max_ppm=60)
    eff = effective_policy(PEER, chan, NOW)
    assert (eff.fee_ppm_target, eff.fee_min_ppm, eff.fee_max_ppm) == (50, None, 60)


@pytest.mark.parametrize("peer_exp,chan_exp,expect", [
    (NOW - 1, None, "chan"),          # expired peer row is absent
    (None, NOW, "peer"),              # expiry at now counts as expired
    (NOW - 1, NOW - 1, "default"),
    (NOW + 10, NOW + 5, "both"),
])
def test_effective_expiry(peer_exp, chan_exp, expect) -> None:
    peer = attrs.evolve(PEER, expires_at=peer_exp)
    chan = attrs.evolve(CHAN, expires_at=chan_exp)
    eff = effective_policy(peer, chan, NOW)
    if expect == "chan":
        assert eff == chan
    elif expect == "peer":
        assert eff == peer
    elif expect == "default":
        assert eff == Policy(peer_id=P)
    else:
        assert eff.expires_at == NOW + 5 and eff.strategy is Strategy.DYNAMIC


# --- gates ---

@pytest.mark.parametrize("mode,fill,drain", [
    (RebalanceMode.ENABLED, True, True),
    (RebalanceMode.DISABLED, False, False),
    (RebalanceMode.SOURCE_ONLY, False, True),   # drained, never filled
    (RebalanceMode.SINK_ONLY, True, False),     # filled, never drained
])
def test_may_fill_may_drain(mode, fill, drain) -> None:
    p = Policy(peer_id=P, rebalance_mode=mode)
    assert (may_fill(p), may_drain(p)) == (fill, drain)


@pytest.mark.parametrize("strategy,manages", [(Strategy.DYNAMIC, True), (Strategy.STATIC, True),
                                              (Strategy.HIVE, True), (Strategy.PASSIVE, False)])
def test_manages_fees(strategy, manages) -> None:
    assert manages_fees(Policy(peer_id=P, strategy=strategy, fee_ppm_target=1)) is manages


def test_policy_to_dict() -> None:
    d = policy_to_dict(PEER)
    assert json.loads(json.dumps(d)) == d
    assert d == {"peer_id": P, "strategy": "static", "rebalance_mode": "sink_only", "fee_ppm_target": 300,
                 "tags": ["whale"], "updated_at": 10, "channel_id": None, "fee_min_ppm": 100, "fee_max_ppm": 900,
                 "expires_at": None}
    assert list(d)[:6] == ["peer_id", "strategy", "rebalance_mode", "fee_ppm_target", "tags", "updated_at"]
