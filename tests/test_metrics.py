"""The Prometheus exporter of the real plugin under the stand-in lightningd, read back over real HTTP,
checked by promtool, and scraped by a real Prometheus server (Debian package `prometheus`, installed
by .ci/run)."""
from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from revops.sim.lightningd import StandinLightningd
from tests.needs import need
from tests.test_plugin_standin import PLUGIN, advance, normal_scids, running, wait_for

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, host: str = "127.0.0.1") -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def series(text: str, name: str) -> dict[str, float]:
    """{label text: value} of one metric's samples."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def channels_in(text: str, name: str = "revops_channel_fee_ppm") -> set[str]:
    return {labels.split('channel="')[1].split('"')[0] for labels in series(text, name)}


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on this port, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    need("prometheus")
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.2")
    port = free_port()
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False, plugin_opts={"revenue-ops-enable-prometheus": True,
                                                          "revenue-ops-prometheus-port": port}) as ld:
        running(ld)
        advance(ld, 6 * 3600)
        ld.metrics_port = port
        yield ld


def test_exporter_serves_per_channel_series_on_loopback_only(node):
    port = node.metrics_port
    text = wait_for(lambda: (t := scrape(port)) and "revops_channel_fee_ppm{" in t and t)
    assert channels_in(text) == normal_scids(node)
    for name in ("revops_channel_revenue_rate_msat_per_hour", "revops_channel_flow_class",
                 "revops_channel_local_balance_ratio", "revops_channel_search_centre_ppm",
                 "revops_channel_search_dwell_seconds", "revops_channel_rebalance_failures",
                 "revops_channel_messages_handled_total", "revops_channel_restarts_total",
                 "revops_channel_fees_30d_msat", "revops_channel_rebalance_cost_30d_msat"):
        assert channels_in(text, name) == normal_scids(node), name
    assert channels_in(text, "revops_channel_decisions_total") <= normal_scids(node)
    assert series(text, "revops_lightningd_rpc_seconds_count"), "io-pool calls are timed by method"
    assert 'revops_forwards_total{status="settled"}' in text
    settled = node.rpc.call("listforwards", {"status": "settled"})["forwards"]
    assert series(text, "revops_forwards_total")['{status="settled"}'] <= len(settled)
    check = promtool("check", "metrics", stdin=text)
    assert check.returncode == 0, check.stdout + check.stderr
    assert listening_addresses(port) == {"127.0.0.1"}


def test_a_closed_channels_series_disappear(node):
    port = node.metrics_port
    wait_for(lambda: channels_in(scrape(port)) == normal_scids(node))
    victim = sorted(normal_scids(node))[0]
    node.rpc.call("dev-sim-closechannel", {"short_channel_id": victim})
    advance(node, 600)
    text = wait_for(lambda: (t := scrape(port)) and victim not in t and t)
    assert channels_in(text) == normal_scids(node) and victim not in channels_in(text)


@contextlib.contextmanager
def prometheus_scraping(tmp_path: Path, target_port: int) -> Iterator[Callable[[str], list]]:
    """A real Prometheus server scraping 127.0.0.1:target_port every second; yields query(PromQL) -> result,
    [] while the server is not up, an AssertionError naming the expression if Prometheus refuses it."""
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
                   f"scrape_configs:\n  - job_name: cl-revenue-ops\n"
                   f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def query(expr: str) -> list:
        url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return json.load(r)["data"]["result"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"Prometheus refused {expr!r}: {e.read().decode()}") from e
        except OSError:
            return []
    try:
        yield query
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.needs("prometheus")
def test_prometheus_scrapes_the_plugin_and_serves_its_per_channel_series(node, tmp_path):
    with prometheus_scraping(tmp_path, node.metrics_port) as query:
        result = wait_for(lambda: query("revops_channel_local_balance_ratio"), timeout=30, interval=0.5)
        by_channel = {r["metric"]["channel"]: float(r["value"][1]) for r in result}
        assert set(by_channel) == normal_scids(node)
        status = {c["scid"]: c for c in node.rpc.call("revenue-status")["channels"]}
        for scid, ratio in by_channel.items():
            assert 0.0 <= ratio <= 1.0 and abs(ratio - status[scid]["local_ratio"]) < 0.2
            assert {r["metric"]["peer"] for r in result if r["metric"]["channel"] == scid} == {status[scid]["peer_id"]}
        up = query('up{job="cl-revenue-ops"}')
        assert up and up[0]["value"][1] == "1"


FILTER = re.compile(r"\s*(>|<|>=|<=|==|!=)\s*[0-9.]+\s*$")


@pytest.mark.needs("prometheus")
def test_every_grafana_panel_query_returns_data_from_a_real_prometheus(node, tmp_path):
    """Grafana itself is not installable here (not in Debian main, PyPI or npm as a server): every panel's
    PromQL runs on a real Prometheus scraping the real exporter instead. A target ending in a threshold
    filter (the bleeding panel's `> 0`) may be empty on a healthy node: its expression without the filter
    must return data."""
    panels = json.loads((DEPLOY / "grafana-dashboard.json").read_text())["panels"]
    with prometheus_scraping(tmp_path, node.metrics_port) as query:
        wait_for(lambda: len(query("revops_snapshot_timestamp_seconds[1h]")[0]["values"]) >= 3
                 if query("revops_snapshot_timestamp_seconds") else False, timeout=60, interval=0.5)
        advance(node, 3 * 3600)          # fee decisions and forwards while Prometheus watches
        time.sleep(3)
        empty = []
        for panel in panels:
            answered = []
            for target in panel["targets"]:
                expr = target["expr"]
                result = query(expr) or (query(FILTER.sub("", expr)) if FILTER.search(expr) else [])
                answered.append(bool(result))
                if not result:
                    empty.append((panel["title"], expr))
            assert any(answered), panel["title"]
        assert empty == [], empty


@pytest.mark.needs("prometheus")
def test_one_channel_is_followed_across_a_splice_by_its_channel_id(tmp_path, monkeypatch):
    """A splice gives `wallet_lsp` a new short channel id: its series go on under a new `channel` label, the
    others keep their labels (no channel_id on them: existing queries unchanged), and revops_channel_info
    names the same channel_id under both, so a real Prometheus joins them into one channel."""
    from tests.test_splice import splice_scenario
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.2")
    port = free_port()
    scenario = tmp_path / "small-splice.toml"
    scenario.write_text(splice_scenario(channel="wallet_lsp", at_day=0.5, amount_sat=1_000_000, confirms=3))
    with StandinLightningd(str(scenario), lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False, plugin_opts={"revenue-ops-enable-prometheus": True,
                                                          "revenue-ops-prometheus-port": port}) as ld:
        running(ld)
        with ld.locked_node() as n:
            ch = n.by_name["wallet_lsp"]
            old, cid, peer = ch.scid, ch.channel_id, ch.peer_id
        advance(ld, 6 * 3600)
        with prometheus_scraping(tmp_path, port) as query:
            text = wait_for(lambda: (t := scrape(port)) and channels_in(t, "revops_channel_info") == normal_scids(ld)
                            and t)
            assert series(text, "revops_channel_info")[f'{{channel="{old}",channel_id="{cid}",peer="{peer}"}}'] == 1
            assert all("channel_id" not in labels for labels in series(text, "revops_channel_fee_ppm"))
            wait_for(lambda: query(f'revops_channel_info{{channel_id="{cid}"}}'), timeout=30, interval=0.5)

            advance(ld, 86400)                           # the splice locks in under a new short channel id
            new = {c["channel_id"]: c["short_channel_id"] for c in ld.rpc.call("listpeerchannels")["channels"]}[cid]
            assert new != old
            text = wait_for(lambda: (t := scrape(port)) and new in channels_in(t, "revops_channel_info") and t)
            assert old not in channels_in(text) and old not in channels_in(text, "revops_channel_info")
            assert series(text, "revops_channel_info")[f'{{channel="{new}",channel_id="{cid}",peer="{peer}"}}'] == 1
            seen = wait_for(lambda: {r["metric"]["channel"] for r in query(
                f'count by (channel) (count_over_time(revops_channel_info{{channel_id="{cid}"}}[10m]))')} == {old, new},
                timeout=30, interval=0.5)
            assert seen
            joined = query(f'max by (channel_id) (revops_channel_fees_30d_msat * on (channel, peer) '
                           f'group_left (channel_id) revops_channel_info{{channel_id="{cid}"}})')
            status = {c["scid"]: c for c in ld.rpc.call("revenue-status")["channels"]}
            assert [r["metric"] for r in joined] == [{"channel_id": cid}] and new in status
