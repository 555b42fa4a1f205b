"""Every RPC in rpc.METHODS (iterated, so new methods are fuzzed automatically) and every option, fed
junk with hypothesis: wrong types, out-of-range numbers, unknown keys, malformed peer ids and scids, huge
strings. The answer is a result or a JSON-RPC error; an 'Invalid params' error names a field that was
given or that the method takes; on any error the plugin's state is unchanged (nothing half-applied).

In-process (stepped runtime, real SQLite) for volume; a seeded batch through the real plugin under the
stand-in lightningd checks the same through pyln's parameter binding and the JSON-RPC framing.
"""
from __future__ import annotations

import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyln.client import RpcError, RpcException

from revops import config as cfgmod
from revops import rpc as rpcmod
from revops import simulate
from revops.params import MAX_SHOWN
from revops.plugin_main import App
from revops.sim.lightningd import StandinLightningd
from revops.sim.scenario import load_scenario

from tests.plugin_under_test import PLUGIN, wait_running
WORDS = ("get", "set", "reset", "list-mutable", "list", "delete", "tag", "untag", "find", "dynamic", "static",
         "passive", "hive", "enabled", "disabled", "sink_only", "source_only", "true", "false", "max_fee_ppm",
         "min_fee_ppm", "dry_run", "daily_budget_sats", "fee_interval", "whale", "")
STATE_TABLES = ("policies", "config_overrides", "budget_reservations", "sling_jobs", "rebalances")
FUZZ_STATS = {"calls": 0, "errors": 0}


def junk() -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
        st.sampled_from((0, 1, -1, 5, 100, 5000, 100_001, 2**31, 2**63, 10**18)),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS),
        st.text(max_size=40), st.text(min_size=5000, max_size=5000, alphabet="x\x00é\n\"'; DROP TABLE"),
        st.sampled_from(("١٢٣", "²", "1_000", "9" * 5000, "1e400", " 42 ", "0x10")),
        st.sampled_from(("02" + "ab" * 32, "03" + "zz" * 32, "02deadbeef", "02" + "ab" * 33, "886800x3x0",
                         "1x1x1", "0x0x0", "886800x3", "886800:3:0", "99999999999x1x1", "-1x-1x-1")))
    return st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))


def params_for(spec: rpcmod.MethodSpec) -> st.SearchStrategy:
    known = st.dictionaries(st.sampled_from(spec.params), junk(), max_size=len(spec.params)) if spec.params \
        else st.just({})
    unknown = st.dictionaries(st.sampled_from(("bogus", "Action", "peer id", "x" * 300)), junk(), max_size=1)
    return st.tuples(known, st.one_of(st.just({}), unknown)).map(lambda kv: {**kv[0], **kv[1]})


CALLS = st.sampled_from(rpcmod.METHODS).flatmap(lambda spec: st.tuples(st.just(spec.name), params_for(spec)))


@pytest.fixture(scope="module")
def sim():
    s = simulate.start(load_scenario("tiny"), seed=1)
    s.advance(2 * 3600)
    yield s
    s.close()


def state(sim) -> tuple:
    db = sim.store.db
    tables = tuple(json.dumps([tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1")]) for t in STATE_TABLES)
    return tables, sim.runtime.config


# what a Python exception's text looks like; never part of an answer (issue 16: 28 such answers)
PYTHON_TEXT = ("invalid literal", "Exceeds the limit", "int too large", "could not convert", "object is not",
               "NoneType", "Traceback", "unhashable", "takes no", "argument")


def check_error(method: str, params: dict, e: Exception) -> None:
    assert isinstance(e, RpcException), f"{method} {params!r}: {type(e).__name__}: {e}"
    assert len(e.message) <= 600, (method, len(e.message))
    assert not any(t in e.message for t in PYTHON_TEXT), (method, params, e.message)
    if e.code == -32602:
        # the field is a parameter, or for revenue-config the configuration key being set
        named = set(params) | set(rpcmod.BY_NAME[method].params) | {str(params.get("key"))}
        assert any(f"'{str(field)[:MAX_SHOWN]}'" in e.message for field in named), (method, params, e.message)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(call=CALLS)
def test_every_rpc_answers_junk_with_a_named_error_and_changes_nothing(sim, call):
    method, params = call
    before = state(sim)
    FUZZ_STATS["calls"] += 1
    try:
        sim.rpc(method, params)
    except Exception as e:  # noqa: BLE001 - what the plugin answered is under test
        FUZZ_STATS["errors"] += 1
        check_error(method, params, e)
        assert state(sim) == before, f"{method} {params!r} failed ({e}) but changed the state"


def test_a_bad_ignore_reason_is_named_as_the_reason(sim):
    """Found by the fuzzer: the reason becomes a tag, and the error named 'tag', a field the caller never gave."""
    with pytest.raises(RpcException, match="'reason'"):
        sim.rpc("revenue-ignore", {"peer_id": "02" + "ab" * 32, "reason": False})


@pytest.mark.parametrize("method,field,value", [
    ("revenue-rebalance", "amount_sats", "١٢٣"), ("revenue-set-fee", "fee_ppm", "١٢٣"),
    ("revenue-fee-debug", "limit", "²"), ("revenue-dashboard", "window_days", "9" * 5000),
    ("revenue-policy", "fee_ppm", "1_000"), ("revenue-config", "value", "١٢٣")])
def test_only_ascii_digits_are_numbers(sim, method, field, value):
    """int() takes Arabic-Indic digits, superscripts and underscores; a rebalance of '١٢٣' sats started a job."""
    base = {"revenue-rebalance": {"from_channel": "1x1x1", "to_channel": "1x1x2"},
            "revenue-set-fee": {"channel_id": "1x1x1"}, "revenue-config": {"action": "set", "key": "max_fee_ppm"},
            "revenue-policy": {"action": "set", "peer_id": "02" + "ab" * 32}}.get(method, {})
    with pytest.raises(RpcException) as e:
        sim.rpc(method, {**base, field: value})
    named = "max_fee_ppm" if method == "revenue-config" else field   # revenue-config names the key being set
    assert e.value.code == -32602 and f"'{named}'" in e.value.message and len(e.value.message) < 300, e.value.message


def test_revenue_config_refuses_what_its_action_does_not_use(sim):
    for params, field in (({"action": "get", "key": "max_fee_ppm", "value": 5}, "value"),
                          ({"action": "list-mutable", "key": "max_fee_ppm"}, "key"),
                          ({"action": "reset", "key": "max_fee_ppm", "value": 5}, "value")):
        with pytest.raises(RpcException, match=f"Invalid parameter '{field}': not used by action"):
            sim.rpc("revenue-config", params)


def test_an_unknown_config_key_gets_close_matches_not_the_whole_list(sim):
    with pytest.raises(RpcException) as e:
        sim.rpc("revenue-config", {"action": "set", "key": "max_fee_pmm", "value": 5})
    assert "did you mean max_fee_ppm" in e.value.message and "rebalance_interval" not in e.value.message
    assert sim.rpc("revenue-config", {"action": "get", "key": "revenue-ops-max-fee-ppm"})["key"] == "max_fee_ppm"


def test_fuzz_counts(capsys):
    with capsys.disabled():
        print(f"\n[fuzz] in-process: {FUZZ_STATS['calls']} RPC calls over {len(rpcmod.METHODS)} methods, "
              f"{FUZZ_STATS['errors']} answered with an error, 0 unnamed or half-applied")


class FakePlugin:
    def log(self, text: str, level: str = "info") -> None:
        pass


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from([o.name for o in cfgmod.OPTIONS]), value=junk())
def test_a_bad_option_disables_the_plugin_with_a_message_naming_it(name, value):
    try:
        cfgmod.parse_options({name: value})
    except cfgmod.ConfigError:
        answer = App(FakePlugin()).init({name: value}, {"lightning-dir": "/nonexistent", "rpc-file": "x"})
        assert answer is not None and name in answer["disable"], (name, value, answer)


def test_junk_through_the_real_plugin_under_the_standin(tmp_path, capsys):
    """The same promise through pyln's binding (keyword and positional) and the real framing."""
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    rng = random.Random(9)
    values = [None, True, -1, 0, 2**64, 1.5, "", "x" * 20000, "02deadbeef", "886800x3x0", "get", "set", [1], {"a": 1},
              "\x00\n\n{}", "'; DROP TABLE policies; --"]
    sent = 0
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        wait_running(ld)
        before = ld.rpc.call("revenue-policy", {"action": "list"}), ld.rpc.call("revenue-config", {"action": "get"})
        for spec in rpcmod.METHODS:
            for _ in range(12):
                n = rng.randint(0, len(spec.params) + 1)
                keyword = rng.random() < 0.7
                args = [rng.choice(values) for _ in range(n)]
                params = dict(zip(spec.params + ("bogus",), args)) if keyword else args
                if spec.name in ("revenue-policy", "revenue-config") and keyword:
                    params.setdefault("action", rng.choice(("list", "get", "frob")))
                sent += 1
                try:
                    ld.rpc.call(spec.name, params)
                except RpcError as e:
                    message = e.error["message"]
                    assert "traceback" not in e.error and len(message) <= 1100, (spec.name, sorted(e.error))
                    if e.error.get("code") == -32602:   # a field by name, or (too many positionals) the list
                        assert "'" in message or all(p in message for p in spec.params), (spec.name, params, message)
        for word in ("plugin", "request"):   # pyln fills these itself: a caller's value is refused, not dropped
            with pytest.raises(RpcError) as e:
                ld.rpc.call("revenue-fee-debug", {word: 5})
            assert e.value.error["code"] == -32602 and f"'{word}'" in e.value.error["message"], e.value.error
        with pytest.raises(RpcError) as e:
            ld.rpc.call("revenue-config", {"action": "get", "key": "x" * 100_000})
        assert len(json.dumps(e.value.error)) < 400 and "traceback" not in e.value.error, len(json.dumps(e.value.error))
        assert ld.rpc.call("revenue-status")["status"] == "running"
        after = ld.rpc.call("revenue-policy", {"action": "list"}), ld.rpc.call("revenue-config", {"action": "get"})
        assert after[1] == before[1]
    with capsys.disabled():
        print(f"\n[fuzz] through the stand-in: {sent} RPC calls, plugin still running")
