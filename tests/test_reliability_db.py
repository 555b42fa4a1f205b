"""A database that cannot be used: corrupt or locked at start (the plugin refuses with a clear message and
never touches the file), or refusing writes while running (disk full, read-only remount: the plugin keeps
going, shows it, and loses no forward)."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from pyln.client import RpcError

from actors.messages import ForwardSettled
from actors.channel import LIGHT_CHECKPOINT_SECONDS
from revops import simulate
from revops.plugin_main import App
from revops.sim.faults import FaultyRpc
from revops.sim.invariants import check_all
from revops.sim.lightningd import StandinLightningd
from revops.sim.node import SimNode
from revops.sim.scenario import load_scenario

from tests.plugin_under_test import PLUGIN
HOUR = 3600
WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_corrupt_or_locked_database_is_refused_with_a_message_and_left_untouched(tmp_path):
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, log_stderr=False) as ld:
        corrupt = tmp_path / "corrupt.db"
        corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
        before = digest(corrupt)
        with pytest.raises(RpcError) as err:
            ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN, "revenue-ops-db-path": str(corrupt)})
        assert "disabled itself" in err.value.error["message"] and "left untouched" in err.value.error["message"]
        assert digest(corrupt) == before

        assert "cl-revenue-ops" not in str(ld.rpc.call("plugin", {"subcommand": "list"}))


class FakePlugin:
    def log(self, text: str, level: str = "info") -> None:
        pass


def test_a_locked_database_is_refused_at_init_after_the_busy_timeout(tmp_path):
    locked = tmp_path / "locked.db"
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN EXCLUSIVE")
    before = digest(locked)
    answer = App(FakePlugin()).init({"revenue-ops-db-path": str(locked)},
                                    {"lightning-dir": str(tmp_path), "rpc-file": "lightning-rpc"})
    holder.execute("ROLLBACK")
    holder.close()
    assert answer is not None and "database is locked" in answer["disable"] and "untouched" in answer["disable"]
    assert digest(locked) == before


def test_a_database_refusing_writes_degrades_visibly_and_loses_no_forward():
    """Found here: the first failed write (an INSERT of a forward) killed the actor loop for good."""
    scenario = load_scenario("tiny")
    node = SimNode(scenario, seed=2)
    rpc = FaultyRpc(node)
    sim = simulate.start(scenario, node=node, rpc=rpc)
    sim.advance(HOUR)
    sim.store.db.set_authorizer(lambda action, *a: sqlite3.SQLITE_DENY if action in WRITES else sqlite3.SQLITE_OK)
    # long enough for a write whatever happens: a checkpoint put off is written within LIGHT_CHECKPOINT_SECONDS
    sim.advance(LIGHT_CHECKPOINT_SECONDS + HOUR)
    health = sim.rpc("revenue-status")["health"]["database"]
    assert health["status"] == "error" and "not authorized" in health["last_error"]
    sim.store.db.set_authorizer(None)
    sim.advance(2 * HOUR)
    status = sim.rpc("revenue-status")
    assert status["health"]["database"]["status"] == "ok" and status["status"] == "running"
    assert not check_all(sim, rpc)



def test_a_forward_batch_failing_halfway_is_retried_whole_and_each_forward_told_once():
    """forward_events queued together are stored in one transaction (docs/reliability.md): a write that fails
    halfway rolls the batch back and tells no actor; the retry tells each forward exactly once."""
    scenario = load_scenario("small")
    node = SimNode(scenario, seed=2)
    rpc = FaultyRpc(node)
    sim = simulate.start(scenario, node=node, rpc=rpc)
    sim.advance(HOUR)
    stored_before = {tuple(r) for r in sim.store.db.execute("SELECT in_channel, in_htlc_id FROM forwards")}
    told: list[tuple[str, int]] = []
    tell = sim.runtime.tell

    def spy(msg):
        if isinstance(msg, ForwardSettled):
            told.append((msg.forward.in_channel, msg.forward.in_htlc_id))
        tell(msg)

    sim.runtime.tell = spy
    # every third forward fails: a batch has inserted some rows when the failure rolls them all back
    sim.store.db.execute("CREATE TEMP TRIGGER every_third BEFORE INSERT ON forwards WHEN NEW.in_htlc_id % 3 = 2 "
                         "BEGIN SELECT RAISE(FAIL, 'disk I/O error (test)'); END")
    node.advance_to(node.now + 12 * HOUR)    # twelve hours of forward_events queued together
    sim.runtime.run_until_idle()
    assert sim.runtime.health["database"]["errors"] > 0 and sim.runtime.unsaved
    sim.store.db.execute("DROP TRIGGER every_third")
    sim.advance(HOUR)
    settled = {tuple(r) for r in sim.store.db.execute(
        "SELECT in_channel, in_htlc_id FROM forwards WHERE status='settled'")} - stored_before
    assert not sim.runtime.unsaved and len(settled) > 10
    assert sorted(told) == sorted(settled)           # each told once, none lost
    assert not check_all(sim, rpc)


def test_an_uncreatable_database_path_disables_the_plugin_naming_the_option(tmp_path):
    """Issue 14 item 8: a missing parent that cannot be made left a plugin `plugin list` showed active while
    every RPC answered "not initialised yet", for ever."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with StandinLightningd("tiny", lightning_dir=str(tmp_path), seed=1, speed=0, log_stderr=False) as ld:
        with pytest.raises(RpcError) as err:
            ld.rpc.call("plugin", {"subcommand": "start", "plugin": PLUGIN,
                                   "revenue-ops-db-path": str(blocker / "sub" / "revenue_ops.db")})
        message = err.value.error["message"]
        assert "disabled itself" in message and "revenue-ops-db-path" in message and "cannot create" in message
        assert "cl-revenue-ops" not in str(ld.rpc.call("plugin", {"subcommand": "list"}))
