"""A channel splices under the real plugin, started by the stand-in lightningd as lightningd starts it (issue 15).

The stand-in answers as Core Lightning v26.06.6 (splicing on by default since v26.04). The simulated node splices a busy channel of `small` (`wallet_lsp`, one of its two best earners; a scheduled `[[events]]` splice: NORMAL →
CHANNELD_AWAITING_SPLICE, six blocks later a new short channel id and 2,000,000 sat more capacity, back to
NORMAL). Before and after are one channel in every report, its actor is never retired, a policy set by the old
short channel id still applies, and the totals agree to the msat with the node's listforwards.
"""
from __future__ import annotations

import os
import time

from revops.sim.lightningd import StandinLightningd
from revops.sim.versions import V26

from tests.plugin_under_test import PLUGIN
from tests.test_plugin_standin import wait_for
from tests.test_splice import splice_scenario

DAY = 86400


def advance(ld, seconds, step=3 * 3600, settle=0.3):
    """Move virtual time in steps the plugin's 0.2 s clock follows (fee cycles, channel refreshes)."""
    while seconds > 0:
        ld.rpc.call("dev-sim-advance", {"seconds": min(step, seconds)})
        seconds -= step
        time.sleep(settle)


def channels(ld) -> dict[str, dict]:
    return {c["scid"]: c for c in ld.rpc.call("revenue-status")["channels"]}


def test_a_spliced_channel_is_one_channel_in_every_report(tmp_path):
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    scenario = tmp_path / "small-splice.toml"
    scenario.write_text(splice_scenario(channel="wallet_lsp", at_day=1.0, amount_sat=2_000_000, confirms=6))
    with StandinLightningd(str(scenario), lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False, cln_version=V26) as ld:     # splicing on by default
        wait_for(lambda: ld.rpc.call("revenue-status")["status"] == "running")
        with ld.locked_node() as node:
            ch = node.by_name["wallet_lsp"]
            old, peer, cid, cap = ch.scid, ch.peer_id, ch.channel_id, ch.capacity_msat
        ld.rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "channel_id": old,
                                       "rebalance": "disabled", "fee_min_ppm": 50})
        advance(ld, int(0.99 * DAY))
        before = wait_for(lambda: channels(ld).get(old))
        assert before["channel_id"] == cid
        assert before["rebalance_mode"] == "disabled"

        advance(ld, int(0.01 * DAY) + 120, step=600)    # the splice starts: CHANNELD_AWAITING_SPLICE
        listed = {c["short_channel_id"]: c for c in ld.rpc.call("listpeerchannels")["channels"]}
        assert listed[old]["state"] == "CHANNELD_AWAITING_SPLICE"
        time.sleep(1.0)                                  # the plugin has seen channel_state_changed and relisted
        splicing = channels(ld).get(old)
        assert splicing is not None, "a splicing channel keeps its actor"
        assert splicing["messages_handled"] > before["messages_handled"]

        advance(ld, DAY)                                 # locked in under a new short channel id
        listed = {c["channel_id"]: c for c in ld.rpc.call("listpeerchannels")["channels"]}
        new = listed[cid]["short_channel_id"]
        assert new != old and listed[cid]["state"] == "CHANNELD_NORMAL" and listed[cid]["total_msat"] == cap + 2 * 10**9
        after = wait_for(lambda: channels(ld).get(new))
        assert old not in channels(ld) and after["channel_id"] == cid
        assert after["restarts"] == 0 and after["messages_handled"] > splicing["messages_handled"], \
            "the same actor, not a new one"
        assert after["capacity_msat"] == cap + 2 * 10**9, "the new capacity is picked up"
        assert after["rebalance_mode"] == "disabled" and after["fee_ppm"] >= 50, \
            "the policy set by the old short channel id still applies"
        policy = ld.rpc.call("revenue-policy", {"action": "get", "peer_id": peer, "channel_id": old})["policy"]
        assert policy["channel_id"] == new and policy["fee_min_ppm"] == 50
        assert not any(f"channel {old} left" in line for line in ld.log_lines())
        assert any(f"channel {old} is now {new}" in line for line in ld.log_lines())
        assert ld.rpc.call("revenue-status")["counters"]["channels_spliced"] == 1

        settled = ld.rpc.call("listforwards", {"status": "settled"})["forwards"]
        total = sum(f["fee_msat"] for f in settled)
        mine = sum(f["fee_msat"] for f in settled if f["out_channel"] in (old, new))
        assert any(f["out_channel"] == old for f in settled) and any(f["out_channel"] == new for f in settled)
        summary = wait_for(lambda: (s := ld.rpc.call("revenue-report", {"report_type": "summary"}))[
            "gross_revenue_msat"] == total and s)
        assert summary["forwards"]["settled"] == len(settled)

        peer_report = ld.rpc.call("revenue-report", {"report_type": "peer", "peer_id": peer})
        assert peer_report["revenue_msat"] == mine and [c["channel_id"] for c in peer_report["channels"]] == [new]
        pnl = ld.rpc.call("revenue-profitability")
        rows = {r["channel_id"]: r for rs in pnl["channels_by_class"].values() for r in rs}
        assert old not in rows and rows[new]["revenue_msat"] == mine and rows[new]["class"] != "zombie"
        assert sum(r["revenue_msat"] for r in rows.values()) == summary["gross_revenue_msat"] == total
        assert ld.rpc.call("revenue-profitability", {"channel_id": old})["profitability"]["channel_id"] == new
        capacity = ld.rpc.call("revenue-capacity-report")
        assert new not in {r["channel_id"] for r in capacity["losers"]}
        assert not [r for r in capacity["recommendations"] if r["channel_id"] in (old, new) and r["action"] == "close"]
        history = ld.rpc.call("revenue-history")
        assert history["lifetime_revenue_msat"] == total and history["lifetime_forward_count"] == len(settled)
        decisions = ld.rpc.call("revenue-fee-debug", {"channel_id": new, "limit": 1000})["decisions"]
        splice_at = before["last_message_at"]
        assert any(d["at"] <= splice_at for d in decisions) and all(d["scid"] == new for d in decisions), \
            "decisions made before the splice are the channel's"


def test_a_spliced_channel_costs_its_open_and_its_splice_in_every_report(tmp_path):
    """`acinq`, which we opened (its funding fee 5,000 sat in bookkeeper), splices in 1,000,000 sat paying 1,234
    sat: bookkeeper books the splice fee on the channel's account under the splice txid. The channel's open cost
    is both fees (not the splice's alone), the lifetime on-chain costs count both once, and profitability and
    the capacity report still show one channel under its new short channel id."""
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    scenario = tmp_path / "small-splice-fees.toml"
    scenario.write_text(splice_scenario(channel="acinq", at_day=1.0, amount_sat=1_000_000, confirms=6,
                                        fee_sat=1_234, open_fee_sat=5_000))
    with StandinLightningd(str(scenario), lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[PLUGIN],
                           log_stderr=False, cln_version=V26) as ld:
        wait_for(lambda: ld.rpc.call("revenue-status")["status"] == "running")
        with ld.locked_node() as node:
            old, cid = node.by_name["acinq"].scid, node.by_name["acinq"].channel_id
        advance(ld, int(0.5 * DAY))                      # bookkeeper read, fee cycles run
        economics = ld.rpc.call("revenue-analyze", {"channel_id": old})["channel"]["economics"]
        assert economics["open_cost_msat"] == 5_000_000, "before the splice: the open alone"

        advance(ld, 2 * DAY)                             # spliced, then bookkeeper read again (daily)
        new = {c["channel_id"]: c["short_channel_id"] for c in ld.rpc.call("listpeerchannels")["channels"]}[cid]
        assert new != old
        fees = [e for e in ld.rpc.call("bkpr-listincome")["income_events"] if e["tag"] == "onchain_fee"]
        assert sorted((e["account"], e["debit_msat"]) for e in fees) == [(cid, 1_234_000), (cid, 5_000_000)]
        for scid in (old, new):                          # the old short channel id still names the channel
            wait_for(lambda s=scid: ld.rpc.call("revenue-analyze", {"channel_id": s})["channel"]["economics"]
                     ["open_cost_msat"] == 6_234_000)
        history = ld.rpc.call("revenue-history")
        assert history["lifetime_channel_onchain_costs_msat"] == 6_234_000
        assert history["lifetime_total_costs_msat"] == history["lifetime_rebalance_costs_msat"] + 6_234_000

        settled = ld.rpc.call("listforwards", {"status": "settled"})["forwards"]
        mine = sum(f["fee_msat"] for f in settled if f["out_channel"] in (old, new))
        rows = {r["channel_id"]: r for rs in ld.rpc.call("revenue-profitability")["channels_by_class"].values()
                for r in rs}
        assert old not in rows and rows[new]["revenue_msat"] == mine and rows[new]["capacity_msat"] == 11 * 10**9
        capacity = ld.rpc.call("revenue-capacity-report")
        named = {r["channel_id"] for r in capacity["winners"] + capacity["losers"] + capacity["recommendations"]}
        assert old not in named
        assert not [r for r in capacity["recommendations"] if r["channel_id"] == new and r["action"] == "close"]


def test_a_splice_made_before_upgrading_is_joined_when_the_real_plugin_starts(tmp_path):
    """The node spliced `acinq` while the plugin ran code that kept no channel ids (its database, schema 5, has
    the channel's history under the first short channel id). The real plugin, started afterwards, finds the
    earlier funding in bookkeeper (its io pool, before the actors load) and joins that history."""
    from tests.test_splice import old_database
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    scenario = tmp_path / "small-splice.toml"
    scenario.write_text(splice_scenario(channel="acinq", at_day=0.5, amount_sat=1_000_000, confirms=3))
    with StandinLightningd(str(scenario), lightning_dir=str(tmp_path), seed=3, speed=0, plugins=[],
                           log_stderr=False, cln_version=V26) as ld:
        with ld.locked_node() as node:
            ch = node.by_name["acinq"]
            first, cid = ch.scid, ch.channel_id
            old_database_args = (first, ch.peer_id)
        ld.rpc.call("dev-sim-advance", {"seconds": DAY})
        new = {c["channel_id"]: c["short_channel_id"] for c in ld.rpc.call("listpeerchannels")["channels"]}[cid]
        assert new != first
        (tmp_path / "regtest").mkdir(exist_ok=True)
        old_database(str(tmp_path / "regtest" / "revenue_ops.db"), *old_database_args)
        ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN})
        wait_for(lambda: ld.rpc.call("revenue-status")["status"] == "running")
        assert any(f"the history under {first}" in line for line in ld.log_lines())
        decisions = wait_for(lambda: ld.rpc.call("revenue-fee-debug", {"channel_id": first, "limit": 1000})[
            "decisions"])
        assert {d["scid"] for d in decisions} == {new} and any(d["at"] == 10 for d in decisions), \
            "the decision made before the upgrade, under the short channel id in force"
        policy = ld.rpc.call("revenue-policy", {"action": "get", "peer_id": old_database_args[1], "channel_id": first})
        assert policy["policy"]["channel_id"] == new and policy["policy"]["fee_ppm_target"] == 321
