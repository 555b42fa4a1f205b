"""One config surface (issue 16): every mutable setting is a dynamic plugin option, so lightningd's
`setconfig`, `revenue-config set` and the config file are one value, validated by one function and
persisted once (lightningd's config.setconfig), through the real plugin under the stand-in lightningd."""
from __future__ import annotations

import os

import pytest
from pyln.client import RpcError

from revops import simulate
from revops.sim.lightningd import StandinLightningd
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario
from tests.plugin_under_test import PLUGIN
from tests.test_plugin_standin import running


def get(ld, key):
    return ld.rpc.call("revenue-config", {"action": "get", "key": key})["value"]


def persisted(ld) -> dict:
    with open(ld.setconfig_path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#"))


def test_setconfig_and_revenue_config_are_the_same_value_and_survive_a_restart(tmp_path):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        running(ld)
        version = ld.rpc.call("revenue-config", {"action": "get"})["version"]
        answer = ld.rpc.call("setconfig", {"config": "revenue-ops-max-fee-ppm", "val": 3000})
        assert answer["config"]["source"] == f"{ld.setconfig_path}:2" and answer["config"]["value_int"] == 3000
        assert get(ld, "max_fee_ppm") == 3000
        done = ld.rpc.call("revenue-config", {"action": "set", "key": "min_fee_ppm", "value": 50})
        assert (done["option"], done["new_value"], done["version"]) == ("revenue-ops-min-fee-ppm", 50, version + 2)
        ld.rpc.call("setconfig", {"config": "revenue-ops-price-anchor", "val": "no"})
        assert get(ld, "price_anchor") is False
        assert persisted(ld) == {"revenue-ops-max-fee-ppm": "3000", "revenue-ops-min-fee-ppm": "50",
                                 "revenue-ops-price-anchor": "no"}      # lightningd keeps the text given
        # refused by the plugin (cross-field rule) or by lightningd (not a bool it takes): nothing changes
        for name, val, field in (("revenue-ops-min-fee-ppm", 4000, "min_fee_ppm"),
                                 ("revenue-ops-dry-run", "1", None), ("revenue-ops-prometheus-port", 9900, None)):
            with pytest.raises(RpcError) as e:
                ld.rpc.call("setconfig", {"config": name, "val": val})
            assert e.value.error["code"] == -32602 and (field is None or f"'{field}'" in e.value.error["message"])
        with pytest.raises(RpcError, match="must be <="):
            ld.rpc.call("revenue-config", {"action": "set", "key": "max_fee_ppm", "value": 20})
        assert (get(ld, "min_fee_ppm"), get(ld, "max_fee_ppm"), get(ld, "dry_run")) == (50, 3000, False)
        assert len(persisted(ld)) == 3
        reset = ld.rpc.call("revenue-config", {"action": "reset", "key": "price_anchor"})
        assert reset["new_value"] is True and persisted(ld)["revenue-ops-price-anchor"] == "true"
        last = ld.rpc.call("revenue-config", {"action": "get"})["version"]
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        running(ld)
        assert (get(ld, "min_fee_ppm"), get(ld, "max_fee_ppm")) == (50, 3000)
        assert ld.rpc.call("revenue-config", {"action": "get"})["version"] == last


def test_in_process_the_simulated_lightningd_keeps_setconfig_values_across_a_plugin_restart(tmp_path):
    node = SimNode(load_scenario("tiny"), seed=1)
    db = str(tmp_path / "revenue_ops.db")
    sim = simulate.start(load_scenario("tiny"), node=node, db_path=db)
    sim.rpc("revenue-config", {"action": "set", "key": "max_fee_ppm", "value": 2500})
    assert node.setconfig_values == {"revenue-ops-max-fee-ppm": "2500"}    # the text, as in config.setconfig
    sim.close()
    again = simulate.start(load_scenario("tiny"), node=node, db_path=db)
    assert again.runtime.config.max_fee_ppm == 2500 and again.runtime.config.version == 1
    again.close()


def test_docs_quote_the_errors_and_defaults_the_code_gives():
    from pathlib import Path

    from revops import config as cfgmod
    from revops.sim import scenario
    docs = Path(__file__).resolve().parents[1] / "docs"
    flat = " ".join((docs / "configuration.md").read_text().split())
    example = cfgmod.Option("revenue-ops-x", "x", 0, int, bounds=(0, 1), mutable=False)
    assert f"(`{cfgmod.immutable_message(example)}`)" in flat
    simulator = (docs / "simulator.md").read_text()
    network = scenario.load_scenario("tiny").node.network    # tiny.toml names no network: the default
    assert f"| `[node] network` | `{network}` |" in simulator
    for toml in sorted((Path(scenario.__file__).parent / "scenarios").glob("*.toml")):
        assert f"`{toml.name}`" in simulator, toml.name
