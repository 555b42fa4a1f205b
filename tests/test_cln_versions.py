"""The plugin works unchanged on both Core Lightning versions the stand-in answers as (v25.12.1, v26.06.6):
it starts, sets fees within bounds, counts every forward and reports them to the msat (issue 15)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pyln.client import LightningRpc

from revops.sim.lightningd import StandinLightningd
from revops.sim.versions import V26, VERSIONS
from tests.plugin_under_test import PLUGIN
from tests.test_plugin_standin import advance, running, settled_in_db, settled_in_node, wait_for

REPO = Path(__file__).resolve().parents[1]


def fees(ld) -> dict[str, int]:
    return {c["short_channel_id"]: c["fee_proportional_millionths"]
            for c in ld.rpc.call("listpeerchannels")["channels"] if c["state"] == "CHANNELD_NORMAL"}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_plugin_works_unchanged_on_both_versions(tmp_path, version):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False, cln_version=version) as ld:
        assert ld.rpc.getinfo()["version"] == version
        st = running(ld)                                                       # starts
        assert {c["scid"] for c in st["channels"]} == set(fees(ld))
        before = fees(ld)
        for _ in range(4):
            advance(ld, 3 * 3600)
        lo, hi = st["config"]["fee_range_ppm"]
        wait_for(lambda: fees(ld) != before)                                   # sets fees, within bounds
        changed = {k: v for k, v in fees(ld).items() if v != before[k]}
        assert changed and all(lo <= v <= hi for v in changed.values()), changed
        expected = settled_in_node(ld)                                         # counts every forward
        assert len(expected) > 10
        wait_for(lambda: settled_in_db(str(tmp_path / "regtest" / "revenue_ops.db")) == expected)
        settled = ld.rpc.call("listforwards", {"status": "settled"})["forwards"]
        summary = ld.rpc.call("revenue-report", {"report_type": "summary"})   # reports them to the msat
        assert summary["gross_revenue_msat"] == sum(f["fee_msat"] for f in settled) > 0
        assert summary["forwards"]["settled"] == len(settled)
        assert not [line for line in ld.log_lines() if "**BROKEN**" in line or "Traceback" in line]
    with sqlite3.connect(str(tmp_path / "regtest" / "revenue_ops.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM forwards WHERE status='settled'").fetchone()[0] == len(settled)


@pytest.mark.parametrize("version", VERSIONS)
def test_plugins_are_told_the_version(tmp_path, version):
    """lightningd sets LIGHTNINGD_VERSION in every plugin's environment."""
    from tests.test_standin_lightningd import make_plugin
    with StandinLightningd("tiny", lightning_dir=str(tmp_path / "ln"), speed=0, plugins=[make_plugin(tmp_path)],
                           log_stderr=False, cln_version=version) as ld:
        assert ld.rpc.call("tp-state")["env"]["LIGHTNINGD_VERSION"] == version


def test_revops_node_answers_as_the_version_asked_for(tmp_path):
    """`revops node --cln-version v26.06.6` answers getinfo as v26.06.6; an unknown version is refused."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from revops.sim.lightningd import run_node; sys.exit(run_node(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "tiny", "--lightning-dir", str(tmp_path), "--speed", "0",
                             "--cln-version", V26], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rpc_path = tmp_path / "regtest" / "lightning-rpc"
        wait_for(lambda: proc.poll() is not None or rpc_path.exists())
        assert proc.poll() is None, proc.stderr.read().decode()
        assert LightningRpc(str(rpc_path)).getinfo()["version"] == V26
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bad = subprocess.run([sys.executable, "-c", code, "tiny", "--lightning-dir", str(tmp_path), "--cln-version",
                          "v24.11"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "v25.12.1" in bad.stderr and "v26.06.6" in bad.stderr
