"""The cl-hive contract, replayed through the stand-in lightningd's socket against the real plugin file.

`HiveBridge` below makes the calls cl-hive's modules/bridge.py makes and parses the replies the way it
does (reference §11): detection through `plugin list`, the version check on `revenue-status`,
set_hive_policy, get_peer_policy, trigger_rebalance with cl-hive's own caps, get_fee_config and the
settlement read of `revenue-dashboard`. cl-hive prefers `lightning-cli -k` with a 5 s timeout and falls
back to direct RPC; this replays the direct-RPC path (same methods, same keyword parameters).
"""
from __future__ import annotations

import datetime
import os
import re
import time
from typing import Any

import pytest
from pyln.client import RpcError

from revops.sim.lightningd import StandinLightningd
from revops.sim.scenario import load_scenario

from tests.plugin_under_test import PLUGIN


class HiveBridge:
    """cl-hive's side of the contract: what it sends, and what it counts as success."""

    MIN_VERSION = (1, 4, 0)
    MAX_PER_CALL_SATS = 10_000_000
    MAX_PER_DAY_SATS = 50_000_000
    OK_STATUSES = {"success", "initiated", "pending"}
    FEE_RANGE_FALLBACK = [50, 2500]

    def __init__(self, rpc: Any):
        self.rpc = rpc
        self.pushed_by_day: dict[str, int] = {}
        self.calls: list[str] = []

    def call(self, method: str, **params: Any) -> Any:
        self.calls.append(method)
        return self.rpc.call(method, {k: v for k, v in params.items() if v is not None})   # None omitted

    # -- initialize -----------------------------------------------------------------------------
    def initialize(self) -> bool:
        plugins = self.call("plugin", subcommand="list")["plugins"]
        if not any("cl-revenue-ops" in p["name"] and p["active"] for p in plugins):
            return False
        return self.parse_version(self.call("revenue-status").get("version", "")) >= self.MIN_VERSION

    @staticmethod
    def parse_version(text: str) -> tuple[int, int, int]:
        m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", str(text))
        return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else (0, 0, 0)

    # -- policies -------------------------------------------------------------------------------
    def set_hive_policy(self, peer_id: str, is_member: bool) -> bool:
        params = ({"strategy": "hive", "rebalance": "enabled"} if is_member else {"strategy": "dynamic"})
        try:
            reply = self.call("revenue-policy", action="set", peer_id=peer_id, **params)
        except RpcError:
            return False
        return reply.get("status") == "success"

    def get_peer_policy(self, peer_id: str) -> dict:
        return self.call("revenue-policy", action="get", peer_id=peer_id)

    # -- rebalancing ----------------------------------------------------------------------------
    def first_normal_scid(self, peer_id: str) -> str | None:
        for ch in self.call("listpeerchannels", id=peer_id)["channels"]:
            if ch["state"] == "CHANNELD_NORMAL":
                return ch["short_channel_id"]
        return None

    def trigger_rebalance(self, target_peer: str, amount_sats: int, source_peer: str,
                          max_fee_sats: int | None = None) -> bool:
        day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        if amount_sats > self.MAX_PER_CALL_SATS:
            return False
        if self.pushed_by_day.get(day, 0) + amount_sats > self.MAX_PER_DAY_SATS:
            return False
        to_channel, from_channel = self.first_normal_scid(target_peer), self.first_normal_scid(source_peer)
        if to_channel is None or from_channel is None:
            return False
        try:
            reply = self.call("revenue-rebalance", from_channel=from_channel, to_channel=to_channel,
                              amount_sats=amount_sats, max_fee_sats=max_fee_sats)
        except RpcError:
            return False
        ok = reply.get("status") in self.OK_STATUSES
        if ok:
            self.pushed_by_day[day] = self.pushed_by_day.get(day, 0) + amount_sats
        return ok

    # -- later additions (HEAD) -----------------------------------------------------------------
    def get_fee_config(self) -> int:
        fee_range = self.call("revenue-status").get("config", {}).get("fee_range_ppm") or self.FEE_RANGE_FALLBACK
        return (fee_range[0] + fee_range[1]) // 2

    def settlement_figures(self) -> dict[str, int]:
        period = self.call("revenue-dashboard", window_days=7)["period"]
        return {k: int(period.get(k, 0)) for k in ("gross_revenue_sats", "total_forwards", "rebalance_cost_sats")}


def wait_for(fn, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, f"timed out waiting for {fn}"
        time.sleep(interval)
    return value


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The real plugin under the stand-in, with the fleet scenario, ready to rebalance."""
    os.environ["REVOPS_TICK_SECONDS"] = "0.1"
    with StandinLightningd(load_scenario("fleet"), lightning_dir=str(tmp_path_factory.mktemp("hive")), seed=1,
                           speed=0, plugins=[PLUGIN], log_stderr=False) as ld:
        wait_for(lambda: ld.rpc.call("revenue-status")["status"] == "running")
        wait_for(lambda: ld.rpc.call("revenue-rebalance-debug")["executor_ready"])
        yield ld


def peer_of(ld, name: str) -> str:
    return next(c.peer_id for c in ld.node.open_channels() if c.name == name)


def channel(ld, peer: str) -> dict:
    return next(c for c in ld.rpc.call("revenue-status")["channels"] if c["peer_id"] == peer)


def test_detection_version_and_fee_config(fleet):
    ld = fleet
    bridge = HiveBridge(ld.rpc)
    assert bridge.initialize() is True
    assert bridge.calls == ["plugin", "revenue-status"]
    assert HiveBridge.parse_version(ld.rpc.call("revenue-status")["version"]) >= (1, 4, 0)
    cfg = ld.rpc.call("revenue-config", {"action": "get"})["config"]
    assert bridge.get_fee_config() == (cfg["min_fee_ppm"] + cfg["max_fee_ppm"]) // 2


def test_set_hive_policy_for_members_and_non_members_and_get_peer_policy(fleet):
    ld = fleet
    bridge = HiveBridge(ld.rpc)
    member, other = peer_of(ld, "member"), peer_of(ld, "plain")
    assert bridge.set_hive_policy(member, True) is True
    assert bridge.set_hive_policy(other, False) is True
    policy = bridge.get_peer_policy(member)["policy"]
    assert (policy["peer_id"], policy["strategy"], policy["rebalance_mode"]) == (member, "hive", "enabled")
    assert bridge.get_peer_policy(other)["policy"]["strategy"] == "dynamic"
    # the signals reached the channel actors: membership and the last hive message, per channel
    st = wait_for(lambda: (c := channel(ld, member)["hive"])["last_message"] and c)
    assert st["member"] is True and st["last_message"]["type"] == "HiveMembership"
    assert channel(ld, other)["hive"] == {"member": False, "last_message": None}   # was never a member
    # a member leaving (neophyte, banned, left): strategy back to dynamic
    assert bridge.set_hive_policy(member, False) is True
    wait_for(lambda: channel(ld, member)["hive"]["last_message"]["member"] is False)
    assert bridge.get_peer_policy(member)["policy"]["strategy"] == "dynamic"
    # what cl-hive cannot mistake for success: a bad peer id is a JSON-RPC error, nothing written
    before = ld.rpc.call("revenue-policy", {"action": "list"})
    assert bridge.set_hive_policy("02" + "zz" * 32, True) is False
    assert ld.rpc.call("revenue-policy", {"action": "list"}) == before
    assert bridge.set_hive_policy(member, True) is True


def test_trigger_rebalance_caps_and_honest_status(fleet):
    ld = fleet
    bridge = HiveBridge(ld.rpc)
    member, source = peer_of(ld, "member"), peer_of(ld, "store")
    assert bridge.set_hive_policy(member, True)
    # cl-hive's own per-call cap: never reaches the plugin
    calls = len(bridge.calls)
    assert bridge.trigger_rebalance(member, 10_000_001, source) is False
    assert bridge.calls[calls:] == []
    # the plugin enforces its own caps too, whoever calls it
    ld.rpc.call("revenue-config", {"action": "set", "key": "hive_push_max_sats", "value": 200_000})
    ld.rpc.call("revenue-config", {"action": "set", "key": "hive_daily_push_sats", "value": 300_000})
    assert bridge.trigger_rebalance(member, 250_000, source, max_fee_sats=200) is False
    with pytest.raises(RpcError) as err:
        ld.rpc.call("revenue-rebalance", {"from_channel": bridge.first_normal_scid(source),
                                          "to_channel": bridge.first_normal_scid(member), "amount_sats": 250_000})
    assert err.value.error["code"] == -32602 and "hive_push_max_sats" in err.value.error["message"]
    # a push inside the caps starts a sling once-job: status `initiated` only after sling-once started it
    assert bridge.trigger_rebalance(member, 200_000, source, max_fee_sats=200) is True
    to_channel = bridge.first_normal_scid(member)
    assert to_channel in {r["scid"] for r in ld.rpc.call("sling-stats", {"json": True})}
    last = wait_for(lambda: channel(ld, member)["hive"]["last_message"]["type"] == "HivePush"
                    and channel(ld, member)["hive"]["last_message"])
    assert last["accepted"] is True and last["amount_sat"] == 200_000
    # a second push while the first runs, then beyond the plugin's 24 h cap: both refused, and told so
    assert bridge.trigger_rebalance(member, 100_000, source, max_fee_sats=100) is False

    def settled() -> bool:
        ld.rpc.call("dev-sim-advance", {"seconds": 600})
        time.sleep(0.1)
        rows = ld.rpc.call("revenue-rebalance-debug")["ledger"]["reservations"]
        return any(r["scid"] == to_channel and r["status"] == "settled" for r in rows)
    wait_for(settled, timeout=60)
    pushed = ld.rpc.call("revenue-rebalance-debug")["ledger"]["hive_pushed_24h_sat"]
    assert pushed > 100_000                                     # what sling really moved counts for 24 h
    assert bridge.trigger_rebalance(member, 200_000, source, max_fee_sats=200) is False
    assert "hive_daily_push" in channel(ld, member)["hive"]["last_message"]["reason"]
    # cl-hive counted only the push that really started against its own daily cap
    assert sum(bridge.pushed_by_day.values()) == 200_000


def test_dashboard_read_for_settlement(fleet):
    ld = fleet
    bridge = HiveBridge(ld.rpc)
    assert bridge.set_hive_policy(peer_of(ld, "member"), True)      # at 0 ppm the member routes
    for _ in range(6):
        ld.rpc.call("dev-sim-advance", {"seconds": 2 * 3600})
        time.sleep(0.2)
    now = ld.rpc.call("dev-sim-time")["now"]
    settled = [f for f in ld.rpc.call("listforwards", {"status": "settled"})["forwards"]
               if f["received_time"] >= now - 7 * 86400]
    assert settled
    figures = wait_for(lambda: (f := bridge.settlement_figures())["total_forwards"] == len(settled) and f)
    assert figures["gross_revenue_sats"] == sum(int(f["fee_msat"]) for f in settled) // 1000
    # what our pushes paid is what the settlement sees (sling books whole sats)
    jobs = [r for r in ld.rpc.call("revenue-rebalance-debug")["ledger"]["reservations"] if r["spent_msat"]]
    assert abs(figures["rebalance_cost_sats"] - sum(r["spent_msat"] for r in jobs) // 1000) <= len(jobs)
