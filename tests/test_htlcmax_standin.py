"""The htlcmax valve through the real plugin under the stand-in lightningd: `setchannel`'s htlcmax reaches the
node with the valve on; with dry-run nothing is sent, and the decision still says what it would do."""
from __future__ import annotations

import os
import time

import pytest

from revops.sim.lightningd import StandinLightningd

from tests.plugin_under_test import PLUGIN, wait_running

SHARES = {0.50, 0.45, 0.25}


def _local(ld) -> dict[str, tuple[int, int]]:
    """scid → (capacity, our htlc_maximum_msat) as listpeerchannels shows them."""
    return {c["short_channel_id"]: (c["total_msat"], c["updates"]["local"]["htlc_maximum_msat"])
            for c in ld.rpc.call("listpeerchannels")["channels"] if c["state"] == "CHANNELD_NORMAL"}


def _valve_decisions(ld, scid: str) -> list[dict]:
    rows = ld.rpc.call("revenue-fee-debug", {"channel_id": scid, "limit": 100})["decisions"]
    return [r for r in rows if "htlcmax valve" in r["reason"] and "capacity =" in r["reason"]]


def _run(tmp_path, dry_run: str) -> tuple[dict, dict, dict]:
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    opts = {"revenue-ops-htlc-max-valve": "true", "revenue-ops-dry-run": dry_run}
    with StandinLightningd("small", lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           plugin_opts=opts, log_stderr=False) as ld:
        wait_running(ld)
        before = _local(ld)
        deadline = time.monotonic() + 60
        decided: dict = {}
        while time.monotonic() < deadline and len(decided) < len(before):
            ld.rpc.call("dev-sim-advance", {"seconds": 1800})
            time.sleep(1.0)
            decided = {scid: d for scid in before if (d := _valve_decisions(ld, scid))}
        return before, _local(ld), decided


def test_the_valve_sets_htlcmax_through_setchannel_on_every_channel(tmp_path) -> None:
    before, after, decided = _run(tmp_path, "false")
    assert set(decided) == set(before), "every channel got a valve decision"
    for scid, (cap, most) in after.items():
        assert before[scid][1] == cap - cap // 100                      # lightningd's default before
        assert most / cap in SHARES, (scid, most, cap)
        applied = [d for d in decided[scid] if d["outcome"] == "applied"]
        assert applied and f"= {most} msat" in applied[0]["reason"]


def test_dry_run_sends_no_htlcmax_and_records_what_it_would_do(tmp_path) -> None:
    before, after, decided = _run(tmp_path, "true")
    assert after == before
    assert set(decided) == set(before)
    assert all(d["outcome"] == "dry_run" for rows in decided.values() for d in rows)
