"""deploy/: the scrape config and alert rules pass promtool (the alerts fire in promtool's unit tests),
every metric they and the Grafana dashboard use is one the exporter really emits, and the example
lightningd config is accepted by the option parser."""
from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry, generate_latest

from revops import config as cfgmod
from revops import metrics, simulate
from revops.sim.scenario import load_scenario
from tests.test_metrics import DEPLOY, promtool

METRIC = re.compile(r"\b(revops_[a-z0-9_]+)")


def exposition() -> str:
    """What the exporter shows for the small scenario after a simulated day (in-process, real SQLite)."""
    sim = simulate.start(load_scenario("small"), seed=2)
    try:
        sim.advance(86400)
        snap = metrics.build_snapshot(sim.runtime, sim.rpc("revenue-status"))
    finally:
        sim.close()

    class One:
        def collect(self):
            return metrics.families(snap)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    return generate_latest(registry).decode()


def test_scrape_config_and_alert_rules_pass_promtool():
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml"),
                 ("test", "rules", "alerts.test.yml")):
        done = promtool(*args, cwd=DEPLOY)
        assert done.returncode == 0, done.stdout + done.stderr


def test_rules_and_dashboard_use_only_exported_metrics():
    text = exposition()
    assert promtool("check", "metrics", stdin=text).returncode == 0
    emitted = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("revops_")}
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(METRIC.findall((DEPLOY / "alerts.yml").read_text())) | set(METRIC.findall(" ".join(exprs)))
    assert used and used <= emitted, sorted(used - emitted)
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for topic in ("P&L", "Fee per channel", "Local balance", "decisions", "Rebalance spend"):
        assert topic in titles


def test_example_lightningd_config_is_accepted():
    lines = (DEPLOY / "lightningd.conf.example").read_text().splitlines()
    options = dict(line.split("=", 1) for line in lines if line.startswith("revenue-ops-"))
    assert len(options) >= 5
    cfg = cfgmod.parse_options(options)
    assert cfg.enable_prometheus and cfg.prometheus_address == "127.0.0.1"
