"""Plugin `bool` options take exactly what lightningd takes (issue 15): true/false/yes/no in any case.

The stand-in lightningd parses them as lightningd/plugin.c does (revops/sim/plugin_opts.py), with
lightningd's own messages, which name no option; the plugin (`setconfig`, `revenue-config set`) refuses
anything else with -32602 naming the field and the allowed values, so lightningd never persists a value
it would then refuse to start with.
"""
from __future__ import annotations

import os

import pytest
from pyln.client import RpcError

from revops import params
from revops.sim.lightningd import StandinError, StandinLightningd
from revops.sim.plugin_opts import option_value
from tests.plugin_under_test import NAME, PLUGIN
from tests.test_plugin_standin import running

WORDS = ["true", "false", "yes", "no", "TRUE", "False", "YES", "No", "tRuE", "on", "off", "1", "0", "y", "n", "",
         " true", "true ", "ｔｒｕｅ", "Yes!", "enable"]
ALLOWED = "true, false, yes or no (any case)"


def standin(tmp_path, **kw):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    return StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, log_stderr=False, **kw)


@pytest.mark.parametrize("word", WORDS)
def test_the_plugin_takes_exactly_the_words_lightningd_takes(word):
    try:
        lightningd = option_value("bool", word)
    except ValueError:
        lightningd = None
    try:
        plugin = params.to_bool(word)
    except ValueError:
        plugin = None
    assert plugin == lightningd
    assert (lightningd is not None) == (word.lower() in ("true", "false", "yes", "no"))


@pytest.mark.parametrize("word,message", [("on", "Invalid argument 'on'"), ("Off", "Invalid argument 'Off'"),
                                          ("1", "boolean plugin arguments must be true or false"),
                                          ("0", "boolean plugin arguments must be true or false")])
def test_lightningd_refuses_other_words_without_naming_the_option(tmp_path, word, message):
    with standin(tmp_path) as ld:
        with pytest.raises(RpcError) as e:
            ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN, "revenue-ops-dry-run": word})
        assert e.value.error["message"].endswith(f": {message}") and "dry-run" not in e.value.error["message"]
        assert NAME not in str(ld.rpc.call("plugin", {"subcommand": "list"}))
    with pytest.raises(StandinError, match=f"^--revenue-ops-dry-run={word}: {message}$"):
        standin(tmp_path / "start", plugins=[PLUGIN], plugin_opts={"revenue-ops-dry-run": word}).start()


def test_any_case_starts_and_setconfig_keeps_the_text_given(tmp_path):
    with standin(tmp_path, plugins=[PLUGIN], plugin_opts={"revenue-ops-dry-run": "TRUE"}) as ld:
        assert running(ld)["config"]["dry_run"] is True
        answer = ld.rpc.call("setconfig", {"config": "revenue-ops-price-anchor", "val": "No"})
        assert answer["config"]["value_bool"] is False
        for word in ("on", "1", "enable"):
            with pytest.raises(RpcError) as e:
                ld.rpc.call("setconfig", {"config": "revenue-ops-price-anchor", "val": word})
            assert e.value.error["code"] == -32602
            assert "'price_anchor'" in e.value.error["message"] and ALLOWED in e.value.error["message"]
        with pytest.raises(RpcError) as e:
            ld.rpc.call("revenue-config", {"action": "set", "key": "dry_run", "value": "off"})
        assert e.value.error["code"] == -32602 and "'dry_run'" in e.value.error["message"]
        assert ALLOWED in e.value.error["message"]
        ld.rpc.call("revenue-config", {"action": "set", "key": "dry_run", "value": "YES"})
        with open(ld.setconfig_path) as f:
            lines = [line.strip() for line in f if not line.startswith("#")]
        assert lines == ["revenue-ops-price-anchor=No", "revenue-ops-dry-run=true"]
    with standin(tmp_path, plugins=[PLUGIN]) as ld:     # and lightningd starts again with what it kept
        cfg = running(ld)["config"]
        assert ld.rpc.call("revenue-config", {"action": "get", "key": "price_anchor"})["value"] is False
        assert cfg["dry_run"] is True


def test_a_persisted_word_lightningd_does_not_take_stops_it_from_starting(tmp_path):
    """What lightningd does with a config.setconfig line a plugin took but lightningd does not."""
    os.makedirs(tmp_path / "regtest")
    (tmp_path / "regtest" / "config.setconfig").write_text("# Created and update by setconfig\n"
                                                           "revenue-ops-dry-run=on\n")
    with pytest.raises(StandinError) as e:
        standin(tmp_path, plugins=[PLUGIN]).start()
    assert str(e.value) == (f"Config file {tmp_path}/regtest/config.setconfig line 2: revenue-ops-dry-run=on: "
                            "Invalid argument 'on'")
