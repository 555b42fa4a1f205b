"""Channels that splice keep their history (issue 15): a channel's identity is its channel_id, its short channel
id an alias a splice changes (Core Lightning v26.04+). Real SQLite files, the simulated node's splice, the
plugin in-process; the whole path through the stand-in lightningd is in test_standin_splice.py."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from revops import experiment, identity, simulate, splice_join
from revops.costs import bookkeeper_costs
from revops.model import Forward
from revops.sim import node as simnode
from revops.sim.scenario import ScenarioError, loads_scenario
from revops.sim.sequences import run_sequence
from revops.sim.schemas import validate_notification, validate_response
from revops.sim.versions import VERSIONS as CLN_VERSIONS
from revops.store import MIGRATIONS, SCHEMA_VERSION, Store

DAY = 86400
SMALL = (Path(simnode.__file__).parent / "scenarios" / "small.toml").read_text()
OLD, NEW, CID, PEER = "103x2x0", "211x1x1", "ab" * 32, "02" + "11" * 32


def splice_scenario(channel: str = "acinq", at_day: float = 1.0, amount_sat: int = 2_000_000,
                    confirms: int = 3, fee_sat: int | None = None, open_fee_sat: int | None = None) -> str:
    """`small` with one splice; `open_fee_sat`: acinq (which we opened) paid that for its funding transaction."""
    base = SMALL if open_fee_sat is None else SMALL.replace('name = "acinq"\n',
                                                            f'name = "acinq"\nopen_fee_sat = {open_fee_sat}\n')
    return base + f"""
[[events]]
at_day = {at_day}
action = "splice"
channel = "{channel}"
amount_sat = {amount_sat}
confirms = {confirms}
""" + ("" if fee_sat is None else f"fee_sat = {fee_sat}\n")


def test_an_experiment_unit_follows_its_channel():
    exp = one_unit_experiment()
    moved = exp.renamed(OLD, NEW)
    assert moved.control_ppm(NEW, 10) == 100 and moved.arm(OLD, 10) is None and exp.renamed("1x1x1", NEW) is exp


def test_splices_are_channels_listed_under_another_scid():
    assert identity.splices({CID: OLD, "cd" * 32: "5x5x5"}, {CID: NEW, "cd" * 32: "5x5x5", "ef" * 32: "9x9x9"}) \
        == {OLD: NEW}
    assert identity.splices({CID: OLD}, {}) == {}, "a channel no longer listed closed; it did not splice"


# --- the store ---------------------------------------------------------------------------------
def fwd(in_channel: str, htlc: int, out_channel: str, fee: int, t: float) -> Forward:
    return Forward(in_channel=in_channel, in_htlc_id=htlc, out_channel=out_channel, in_msat=100_000 + fee,
                   out_msat=100_000, fee_msat=fee, status="settled", received_time=t, resolved_time=t + 1)


def old_database(path: str, scid: str = OLD, peer: str = PEER) -> None:
    """A database as the code before channel identities wrote it: every migration before channel_scids, and
    one channel's history (forwards both ways, a roll-up, its actor, decisions, a policy, a rebalance and a
    reservation) under its first short channel id."""
    before = next(i for i, m in enumerate(MIGRATIONS) if "channel_scids" in m)
    db = sqlite3.connect(path)
    for i in range(before):
        db.executescript(MIGRATIONS[i])
    db.execute(f"PRAGMA user_version={before}")
    db.executemany("INSERT INTO forwards VALUES (?,?,?,?,?,?,?,?,?,?,NULL,NULL)", [
        (scid, 1, "9x9x9", 101_000, 100_000, 1000, "settled", 1000.0, 1001.0, 1),
        ("9x9x9", 7, scid, 100_500, 100_000, 500, "settled", 2000.0, 2001.0, 2)])
    db.execute("INSERT INTO forward_rollups VALUES (0, '9x9x9', ?, 'settled', 3, 300000, 299000, 1000)", (scid,))
    db.execute("INSERT INTO channel_actors VALUES (?, ?, ?, 1, NULL)", (scid, peer, json.dumps({"version": 1})))
    db.execute("INSERT INTO fee_decisions(scid, at, old_fee_ppm, new_fee_ppm, branch, reason, inputs_json, "
               "broadcast, outcome) VALUES (?, 10, 100, 120, 'search', 'r', '{}', 1, 'applied')", (scid,))
    db.execute("INSERT INTO policies(peer_id, channel_id, strategy, rebalance_mode, fee_ppm_target, tags_json, "
               "updated_at) VALUES (?, ?, 'static', 'enabled', 321, '[]', 1)", (peer, scid))
    db.execute("INSERT INTO rebalances VALUES ('r1', ?, ?, 50000, 100, 40, 50000000, 'done', 'auto', 'ev', 5, 6)",
               (scid, json.dumps(["9x9x9"])))
    db.execute("INSERT INTO rebalances VALUES ('r2', '9x9x9', ?, 50000, 100, 40, 50000000, 'done', 'auto', 'ev', 7, 8)",
               (json.dumps([scid, "8x8x8"]),))
    db.execute("INSERT INTO budget_reservations(id, scid, reserved_msat, spent_msat, status, created_at) "
               "VALUES ('r1', ?, 100, 40, 'settled', 5)", (scid,))
    db.commit()
    db.close()


def one_unit_experiment() -> experiment.Experiment:
    """A live experiment whose control arm holds OLD at 100 ppm (revops/experiment.py)."""
    return experiment.Experiment(id=1, started_at=0, days=14, fraction=0.5, design="split", period_days=0, seed=1,
                                 units={OLD: experiment.Unit(arm=experiment.CONTROL, control_ppm=100,
                                                             capacity_msat=10**9, stratum="lower/none")})


def history(store: Store, scid: str) -> dict:
    q = store.db.execute
    return {"fees_out": store.channel_earnings(scid, 0)[0],
            "in": q("SELECT COUNT(*) FROM forwards WHERE in_channel=?", (scid,)).fetchone()[0],
            "rollup": q("SELECT SUM(fee_msat) FROM forward_rollups WHERE out_channel=?", (scid,)).fetchone()[0],
            "actor": q("SELECT COUNT(*) FROM channel_actors WHERE scid=?", (scid,)).fetchone()[0],
            "decisions": len(store.decisions(scid)),
            "policy": [r[0] for r in q("SELECT fee_ppm_target FROM policies WHERE channel_id=?", (scid,))],
            "rebalanced_into": q("SELECT COUNT(*) FROM rebalances WHERE to_channel=?", (scid,)).fetchone()[0],
            "source_of": q("SELECT COUNT(*) FROM rebalances WHERE from_channels LIKE ?", (f'%"{scid}"%',)).fetchone()[0],
            "reserved": q("SELECT COUNT(*) FROM budget_reservations WHERE scid=?", (scid,)).fetchone()[0]}


def test_an_old_database_migrates_and_its_channels_history_follows_a_splice(tmp_path):
    path = str(tmp_path / "revenue_ops.db")
    old_database(path)
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.save_experiment(1, experiment.to_json(one_unit_experiment()), 1)
    before = history(store, OLD)
    assert before["fees_out"] == 500 and before["actor"] == before["decisions"] == 1
    assert store.follow_channels([(OLD, CID, PEER)], 100) == {}, "the first listing only records identities"
    assert store.follow_channels([(NEW, CID, PEER)], 200) == {OLD: NEW}
    after = history(store, NEW)
    assert after == before, "every table keyed by the short channel id follows the channel"
    assert not any(history(store, OLD)[k] for k in ("fees_out", "in", "rollup", "actor", "decisions",
                                                    "rebalanced_into", "source_of", "reserved"))
    assert history(store, OLD)["policy"] == []
    units = experiment.from_json(store.latest_experiment()).units
    assert set(units) == {NEW} and units[NEW].arm == experiment.CONTROL, "the experiment's unit follows it"
    store.close()
    again = Store(path)    # the alias map comes back from the file
    assert again.canonical(OLD) == NEW and again.scid_history(OLD) == [OLD, NEW]
    assert not again.insert_forward(fwd("9x9x9", 7, OLD, 500, 2000.0)), \
        "listforwards keeps the old scid: the same forward read again is not counted twice"
    assert again.insert_forward(fwd(OLD, 2, "9x9x9", 700, 3000.0)), "a forward told late under the old scid"
    assert again.db.execute("SELECT COUNT(*) FROM forwards WHERE in_channel=?", (NEW,)).fetchone()[0] == 2
    again.close()


def test_a_splice_while_the_plugin_is_down_is_followed_at_the_next_start(tmp_path):
    path = str(tmp_path / "revenue_ops.db")
    store = Store(path)
    store.follow_channels([(OLD, CID, PEER)], 100)
    store.insert_forward(fwd("9x9x9", 1, OLD, 900, 1000.0))
    store.close()
    store = Store(path)    # the next start lists the channel under its new scid
    assert store.follow_channels([(NEW, CID, PEER), ("9x9x9", "cd" * 32, PEER)], 300) == {OLD: NEW}
    assert store.channel_earnings(NEW, 0) == (900, 1)
    store.close()


def test_a_second_splice_moves_every_earlier_alias_and_rollups_of_one_day_add_up(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    third = "300x1x0"
    store.follow_channels([(OLD, CID, PEER)], 1)
    for scid in (OLD, NEW):
        store.db.execute("INSERT INTO forward_rollups VALUES (0, '9x9x9', ?, 'settled', 1, 1000, 900, 100)", (scid,))
    store.follow_channels([(NEW, CID, PEER)], 2)
    store.follow_channels([(third, CID, PEER)], 3)
    assert store.canonical(OLD) == store.canonical(NEW) == third and store.scid_history(NEW) == [OLD, NEW, third]
    assert tuple(store.db.execute("SELECT forwards, fee_msat FROM forward_rollups WHERE out_channel=?",
                                  (third,)).fetchone()) == (2, 200)
    store.close()


def test_a_sling_job_keeps_the_name_sling_knows_it_by_and_notes_the_new_one_through_two_splices(tmp_path):
    """Our sling job registry is keyed by the short channel id sling knows the job by: a splice does not re-key
    the row (a row under the new name would be a job sling never had, booked twice), it notes the new name."""
    store = Store(str(tmp_path / "db.sqlite"))
    third = "300x1x0"
    store.follow_channels([(OLD, CID, PEER)], 1)
    store.db.execute("INSERT INTO sling_jobs VALUES (?, ?, 'running', 1, 1)",
                     (OLD, json.dumps({"job": {"scid": OLD}, "res_id": "rb-1", "sources": ["9x9x9"]})))
    store.follow_channels([(NEW, CID, PEER)], 2)
    store.follow_channels([(third, CID, PEER)], 3)
    rows = store.db.execute("SELECT scid, job_json FROM sling_jobs").fetchall()
    assert [(r[0], json.loads(r[1])["spliced_to"], json.loads(r[1])["job"]["scid"]) for r in rows] == [
        (OLD, third, OLD)]
    store.close()


def test_a_splice_before_the_upgrade_is_joined_only_where_one_funding_of_one_channel_matches():
    peer, other = "02" + "11" * 32, "03" + "22" * 32
    cid, cid2 = "ab" * 32, "cd" * 32

    def opened(txid: str, block: int, out: int = 0) -> dict:
        return {"account": "?", "type": "chain", "tag": "channel_open", "credit_msat": 0, "debit_msat": 0,
                "currency": "bc", "outpoint": f"{txid}:{out}", "timestamp": 1, "blockheight": block}
    events = {cid: [opened("aa" * 32, 103), opened("bb" * 32, 211, 1), opened("cc" * 32, 300)]}   # now: cc
    chans = [(cid, peer, "cc" * 32)]
    assert identity.pre_upgrade_joins({"103x2x0": peer, "211x5x1": peer}, chans, events) == {
        cid: ["103x2x0", "211x5x1"]}, "two splices before the upgrade, oldest first"
    assert identity.pre_upgrade_joins({"300x1x0": peer}, chans, events) == {}, "the funding in force is no splice"
    assert identity.pre_upgrade_joins({"103x2x0": other}, chans, events) == {}, "another peer's channel"
    assert identity.pre_upgrade_joins({"103x2x0": peer, "103x7x0": peer}, chans, events) == {}, \
        "two orphans at the same block and output: neither"
    assert identity.pre_upgrade_joins({"103x2x0": peer}, chans + [(cid2, peer, "dd" * 32)],
                                      {**events, cid2: [opened("ee" * 32, 103)]}) == {}, \
        "two channels of the peer funded at that block and output before: neither"
    assert identity.pre_upgrade_joins({"103x2x0": peer}, chans, {}) == {}, "no bookkeeper answer: nothing"


@pytest.mark.parametrize("bookkeeper", [True, False])
def test_a_splice_made_before_upgrading_is_joined_from_bookkeeper_at_the_first_start(tmp_path, bookkeeper):
    """The node spliced `acinq` while the plugin still ran code without channel ids (its database has the
    history under the first short channel id): at the first start of this version, bookkeeper's channel_open of
    that funding output joins it; without bookkeeper it stays apart, as before, and is tried again."""
    sc = loads_scenario(splice_scenario(confirms=3).replace("bookkeeper = true",
                                                            f"bookkeeper = {str(bookkeeper).lower()}"))
    node = simnode.SimNode(sc, seed=3)
    ch = node.by_name["acinq"]
    first = ch.scid
    node.run_days(2.0)
    assert ch.scid != first and ch.state == simnode.NORMAL
    path = str(tmp_path / "revenue_ops.db")
    old_database(path, first, ch.peer_id)
    closed = node.by_name["exchange"]          # a channel of another peer that closed before the upgrade
    db = sqlite3.connect(path)
    db.execute("INSERT INTO channel_actors VALUES ('100x9x0', ?, '{}', 1, 2)", (closed.peer_id,))
    db.commit()
    db.close()
    sim = simulate.start(sc, node=node, db_path=path)
    try:
        sim.advance(600)
        store = sim.store
        joined = store.canonical(first) == ch.scid
        assert joined is bookkeeper
        if bookkeeper:
            assert history(store, ch.scid)["fees_out"] >= 500 and history(store, ch.scid)["decisions"] >= 1
            assert history(store, ch.scid)["policy"] == [321] and store.scid_history(ch.scid)[:2] == [first, ch.scid]
            assert any(f"history under {first}" in text for _, text in sim.log_lines)
            assert store.canonical("100x9x0") == "100x9x0", "a channel that closed is joined to nothing"
            assert store.get_meta(splice_join.CHECKED_KEY) == "1"
        else:
            assert history(store, first)["decisions"] == 1 and store.get_meta(splice_join.CHECKED_KEY) is None
    finally:
        sim.close()


# --- the simulated node's splice ----------------------------------------------------------------
@pytest.mark.needs("shared")
@pytest.mark.parametrize("version", CLN_VERSIONS)
def test_the_simulated_node_splices_as_core_lightning_does(version):
    sc = loads_scenario(splice_scenario(confirms=3))
    node = simnode.SimNode(sc, seed=3, cln_version=version)
    seen: list[tuple[str, dict]] = []
    node.subscribe(lambda topic, params: seen.append((topic, params)))
    ch = node.by_name["acinq"]
    old, cid, cap, ours, funded = ch.scid, ch.channel_id, ch.capacity_msat, ch.to_us_msat, ch.funding_txid
    node.run_days(0.999)
    forwards_before = len(node.forwards)
    node.run_days(1.001)
    assert ch.state == simnode.SPLICING and ch.scid == old
    wallet, fee = node.onchain_msat, ch.splice["fee_msat"]
    listed = node.call("listpeerchannels", {"short_channel_id": old})
    validate_response("listpeerchannels", listed, version)
    assert listed["channels"][0]["inflight"][0]["splice_amount"] == 2_000_000
    node.run_days(1.3)
    assert any(old in (f["in_channel"], f.get("out_channel")) for f in node.forwards[forwards_before:]), \
        "a splicing channel keeps forwarding"
    node.run_days(2.0)
    assert ch.state == simnode.NORMAL and ch.scid != old and ch.channel_id == cid
    assert ch.capacity_msat == cap + 2_000_000_000 and ch.to_us_msat >= 0 and ours >= 0
    assert old not in node.channels and node.channels[ch.scid] is ch
    assert any(f["in_channel"] == old or f.get("out_channel") == old for f in node.call("listforwards")["forwards"]), \
        "listforwards keeps the scid that was current"
    changes = [p["channel_state_changed"] for t, p in seen if t == "channel_state_changed"
               and p["channel_state_changed"]["channel_id"] == cid]
    assert [(c["old_state"], c["new_state"], c["short_channel_id"], c["cause"]) for c in changes] == [
        ("CHANNELD_NORMAL", "CHANNELD_AWAITING_SPLICE", old, "user"),
        ("CHANNELD_AWAITING_SPLICE", "CHANNELD_NORMAL", ch.scid, "unknown")]
    opens = [p["coin_movement"] for t, p in seen if t == "coin_movement"
             and p["coin_movement"].get("primary_tag") == "channel_open" and p["coin_movement"]["account_id"] == cid]
    assert len(opens) == 1 and opens[0]["utxo_txid"] == ch.funding_txid and opens[0]["output_msat"] == ch.capacity_msat
    closes = [p["coin_movement"] for t, p in seen if t == "coin_movement"
              and p["coin_movement"].get("primary_tag") == "channel_close" and p["coin_movement"]["account_id"] == cid]
    assert [(c["extra_tags"], c["utxo"], c["spending_txid"]) for c in closes] == [
        (["splice"], f"{funded}:0", ch.funding_txid)], "the old funding output is spent by the splice"
    for topic, params in seen:
        if topic in ("channel_state_changed", "coin_movement"):
            validate_notification(topic, params, version)
    validate_response("listpeerchannels", node.call("listpeerchannels"), version)
    # bookkeeper: the old output leaves the account, the new one enters it, the splice's fee is the channel's
    assert fee > 0 and fee % 1000 == 0, "SPLICE_WEIGHT at the feerate when it splices, whole sats"
    assert node.onchain_msat == wallet - 2_000_000_000 - fee, "we spliced in from the wallet and paid the fee"
    events = node.call("bkpr-listaccountevents", {"account": cid})
    validate_response("bkpr-listaccountevents", events, version)
    assert [(e["type"], e["tag"], e.get("outpoint"), e.get("txid")) for e in events["events"]
            if e["type"] != "channel"] == [
        ("chain", "channel_open", f"{funded}:0", None), ("chain", "channel_close", f"{funded}:0", ch.funding_txid),
        ("chain", "channel_open", f"{ch.funding_txid}:0", None), ("onchain_fee", "onchain_fee", None, ch.funding_txid)]
    income = node.call("bkpr-listincome")
    validate_response("bkpr-listincome", income, version)
    assert [(e["account"], e["debit_msat"], e["txid"]) for e in income["income_events"]
            if e["tag"] == "onchain_fee"] == [(cid, fee, ch.funding_txid)]
    assert bookkeeper_costs(events["events"], {cid: (ch.scid, ch.funding_txid)})[ch.scid].open_cost_msat == fee


def test_a_splice_event_names_a_channel_and_an_amount():
    with pytest.raises(ScenarioError, match="unknown channel name"):
        loads_scenario(splice_scenario(channel="nobody"))
    with pytest.raises(ScenarioError, match="confirms"):
        loads_scenario(splice_scenario(confirms=0))
    with pytest.raises(ScenarioError, match="fee_sat"):
        loads_scenario(splice_scenario(fee_sat=-1))
    with pytest.raises(ScenarioError, match="only the opener pays"):
        loads_scenario(SMALL.replace('name = "merchant"\n', 'name = "merchant"\nopen_fee_sat = 1\n'))
    sc = loads_scenario(splice_scenario(fee_sat=1_234, open_fee_sat=5_000))
    assert (sc.events[0].fee_sat, sc.channel("acinq").open_fee_sat) == (1_234, 5_000)


# --- the plugin in-process ----------------------------------------------------------------------
def scid_to_channel(sim) -> dict[str, str]:
    """Every scid any channel ever had → its channel_id (the node's truth)."""
    return {r["scid"]: r["channel_id"] for r in sim.store.db.execute("SELECT scid, channel_id FROM channel_scids")}


def test_in_process_the_spliced_channel_keeps_its_actor_history_and_reports():
    sim = simulate.start(loads_scenario(splice_scenario()), seed=3)
    try:
        ch = sim.node.by_name["acinq"]
        old = ch.scid
        sim.advance(int(1.01 * DAY))
        assert ch.state == simnode.SPLICING
        assert old in {c["scid"] for c in sim.rpc("revenue-status")["channels"]}, "a splicing channel keeps its actor"
        other = sim.node.by_name["exchange"].scid
        with pytest.raises(Exception, match="is not a channel in CHANNELD_NORMAL"):
            sim.rpc("revenue-rebalance", {"from_channel": other, "to_channel": old, "amount_sats": 100_000})
        debug = sim.rpc("revenue-rebalance-debug")
        assert old not in {c["dest_scid"] for c in debug["candidates"]}, "no new job while it splices"
        decided = {d["id"] for d in sim.rpc("revenue-fee-debug", {"channel_id": old, "limit": 1000})["decisions"]}
        sim.advance(DAY)
        new = ch.scid
        assert new != old
        st = sim.rpc("revenue-status")["channels"]
        assert new in {c["scid"] for c in st} and old not in {c["scid"] for c in st}
        assert sum(c["restarts"] for c in st) == 0
        after = sim.rpc("revenue-fee-debug", {"channel_id": new, "limit": 1000})["decisions"]
        assert decided and decided < {d["id"] for d in after} and all(d["scid"] == new for d in after)
        assert sim.rpc("revenue-fee-debug", {"channel_id": old, "limit": 1000})["decisions"] == after, \
            "the old short channel id still names the channel"
        settled = sim.node.call("listforwards", {"status": "settled"})["forwards"]
        mine = sum(f["fee_msat"] for f in settled if f["out_channel"] in (old, new))
        assert mine > 0 and any(f["out_channel"] == old for f in settled)
        rows = [r for rs in sim.rpc("revenue-profitability")["channels_by_class"].values() for r in rs]
        assert {r["channel_id"]: r["revenue_msat"] for r in rows}[new] == mine
        assert sum(r["revenue_msat"] for r in rows) == sum(f["fee_msat"] for f in settled) \
            == sim.rpc("revenue-report", {"report_type": "summary"})["gross_revenue_msat"]
        assert scid_to_channel(sim)[old] == scid_to_channel(sim)[new] == ch.channel_id
    finally:
        sim.close()


def test_a_sling_job_running_when_its_channel_splices_is_stopped_and_booked_under_the_old_scid():
    """Sling knows a job by the short channel id it was created with; once the splice locks in that channel
    is gone for sling ("Channel not found"). The job is stopped, deleted and its stats read under the old name,
    booked to the channel (now under the new one), and the channel is free for a new job under the new one."""
    sim = simulate.start(loads_scenario(splice_scenario(confirms=1)), seed=3)
    try:
        ch, src = sim.node.by_name["acinq"], sim.node.by_name["exchange"]
        old = ch.scid
        sim.advance(int(0.98 * DAY))
        started = sim.rpc("revenue-rebalance", {"from_channel": src.scid, "to_channel": old, "amount_sats": 200_000})
        assert started["status"] == "initiated"
        sim.node.disconnect_peer(src.peer_id)          # no source: sling keeps the job, moving nothing
        while ch.scid == old:
            sim.advance(300)
            assert old in sim.rpc("revenue-rebalance-debug")["active_jobs"] or ch.scid != old
        new, locked_at = ch.scid, sim.node.now
        sim.advance(900)                               # a few minutes, far below sling_job_timeout_seconds
        assert sim.rpc("revenue-rebalance-debug")["active_jobs"] == {}, "the job ended"
        row = dict(sim.store.db.execute("SELECT * FROM rebalances WHERE id=?", (started["reservation_id"],)).fetchone())
        assert row["to_channel"] == new and row["status"] == "failed" and "channel spliced" in row["reason"]
        assert row["finished_at"] - locked_at < 900 < sim.runtime.config.sling_job_timeout_seconds
        assert sim.store.db.execute("SELECT status, scid FROM budget_reservations WHERE id=?",
                                    (started["reservation_id"],)).fetchone()[:] == ("settled", new)
        assert old not in sim.node.sling.jobs and not sim.store.db.execute("SELECT * FROM sling_jobs").fetchall()
        sim.node.connect_peer(src.peer_id)
        sim.advance(60)
        again = sim.rpc("revenue-rebalance", {"from_channel": src.scid, "to_channel": new, "amount_sats": 100_000})
        assert again["status"] == "initiated" and again["to_channel"] == new, "the channel is free under its new name"
    finally:
        sim.close()


# --- random sequences (revops/sim/sequences.py) with splices among the events ------------------------
SPLICE_SEQUENCES = 40


def test_random_sequences_with_splices_keep_every_invariant(tmp_path):
    """Splices among faults, kill -9, crashes, policy and config changes, dry-run and manual rebalances:
    every invariant holds, including that a spliced channel's fees are all stored under its scid now."""
    problems, renamed = {}, 0
    for seed in range(SPLICE_SEQUENCES):
        o = run_sequence(seed, db_dir=str(tmp_path), splices=True)
        if o.problems:
            problems[seed] = o.problems
        with sqlite3.connect(tmp_path / f"seq-{seed}.db") as db:
            renamed += db.execute("SELECT COUNT(*) - COUNT(DISTINCT channel_id) FROM channel_scids").fetchone()[0]
    assert not problems, problems
    assert renamed > SPLICE_SEQUENCES // 2, "the sequences must really splice"


def test_the_history_check_catches_a_splice_that_loses_the_history(tmp_path, monkeypatch):
    monkeypatch.setattr(Store, "follow_channels", lambda self, listed, now: {})   # record nothing, re-key nothing
    problems = run_sequence(1, db_dir=str(tmp_path), splices=True).problems
    assert any("earned under all its short channel ids" in p for p in problems), problems
