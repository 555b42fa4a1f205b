"""SQLite persistence: schema, forward-only migrations (PRAGMA user_version), queries.

One Store is owned by the actor-loop thread only, so it needs no locking. Writes that belong together
run in one explicit transaction (`with store.tx():`), so a crash never leaves half of them applied.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from revops import identity
from revops.model import Forward

# Each entry migrates the schema from version i to i+1. Never edit a shipped entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE forwards (
        in_channel TEXT NOT NULL, in_htlc_id INTEGER NOT NULL, out_channel TEXT,
        in_msat INTEGER NOT NULL, out_msat INTEGER, fee_msat INTEGER, status TEXT NOT NULL,
        received_time REAL NOT NULL, resolved_time REAL, updated_index INTEGER,
        failcode INTEGER, failreason TEXT,
        PRIMARY KEY (in_channel, in_htlc_id));
    CREATE INDEX forwards_out_time ON forwards(out_channel, received_time);
    CREATE INDEX forwards_in_time ON forwards(in_channel, received_time);
    CREATE INDEX forwards_time ON forwards(received_time);
    CREATE TABLE channel_actors (
        scid TEXT PRIMARY KEY, peer_id TEXT NOT NULL, state_json TEXT NOT NULL,
        updated_at INTEGER NOT NULL, closed_at INTEGER);
    CREATE TABLE fee_decisions (
        id INTEGER PRIMARY KEY, scid TEXT NOT NULL, at INTEGER NOT NULL,
        old_fee_ppm INTEGER NOT NULL, new_fee_ppm INTEGER NOT NULL, branch TEXT NOT NULL,
        reason TEXT NOT NULL, inputs_json TEXT NOT NULL, broadcast INTEGER NOT NULL,
        outcome TEXT NOT NULL);
    CREATE INDEX fee_decisions_scid_at ON fee_decisions(scid, at);
    CREATE TABLE policies (
        peer_id TEXT NOT NULL, channel_id TEXT NOT NULL DEFAULT '',
        strategy TEXT NOT NULL, rebalance_mode TEXT NOT NULL, fee_ppm_target INTEGER,
        fee_min_ppm INTEGER, fee_max_ppm INTEGER, tags_json TEXT NOT NULL DEFAULT '[]',
        expires_at INTEGER, updated_at INTEGER NOT NULL,
        PRIMARY KEY (peer_id, channel_id));
    CREATE TABLE config_overrides (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE feerate_samples (at INTEGER PRIMARY KEY, sat_per_vb REAL NOT NULL);
    CREATE TABLE budget_reservations (
        id TEXT PRIMARY KEY, scid TEXT NOT NULL, reserved_msat INTEGER NOT NULL,
        spent_msat INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
        created_at INTEGER NOT NULL, settled_at INTEGER);
    CREATE INDEX budget_status_time ON budget_reservations(status, created_at);
    CREATE TABLE sling_jobs (
        scid TEXT PRIMARY KEY, job_json TEXT NOT NULL, status TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE rebalances (
        id TEXT PRIMARY KEY, to_channel TEXT NOT NULL, from_channels TEXT NOT NULL,
        amount_sat INTEGER NOT NULL, max_fee_msat INTEGER NOT NULL, fee_msat INTEGER,
        moved_msat INTEGER, status TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
        created_at INTEGER NOT NULL, finished_at INTEGER);
    CREATE TABLE financial_snapshots (
        at INTEGER PRIMARY KEY, data_json TEXT NOT NULL);
    """,
    # daily roll-ups of pruned forwards (revops/finance.py): windows read them together with raw forwards
    """
    CREATE TABLE forward_rollups (
        day INTEGER NOT NULL, in_channel TEXT NOT NULL, out_channel TEXT NOT NULL, status TEXT NOT NULL,
        forwards INTEGER NOT NULL, in_msat INTEGER NOT NULL, out_msat INTEGER NOT NULL, fee_msat INTEGER NOT NULL,
        PRIMARY KEY (day, in_channel, out_channel, status));
    """,
    # sats a reservation's job pushes into a hive peer (0 = not a hive push); counted against
    # hive_daily_push_sats, set to what was really moved when the job settles
    """
    ALTER TABLE budget_reservations ADD COLUMN hive_sat INTEGER NOT NULL DEFAULT 0;
    """,
    # the exporter counts decisions by channel and branch on every refresh
    """
    CREATE INDEX fee_decisions_scid_branch ON fee_decisions(scid, branch);
    """,
    # a channel actor's stored state that no longer structures is kept here (the channel starts fresh)
    """
    CREATE TABLE quarantined_states (
        id INTEGER PRIMARY KEY, scid TEXT NOT NULL, peer_id TEXT NOT NULL, state_json TEXT NOT NULL,
        error TEXT NOT NULL, at INTEGER NOT NULL);
    """,
    # a channel's identity is its channel_id; every short channel id it was listed under (a splice changes it)
    """
    CREATE TABLE channel_scids (
        scid TEXT PRIMARY KEY, channel_id TEXT NOT NULL, peer_id TEXT NOT NULL, first_seen INTEGER NOT NULL);
    CREATE INDEX channel_scids_channel ON channel_scids(channel_id, first_seen);
    """,
    # the live experiment (revops/experiment.py): its assignment and state, one row per experiment
    """
    CREATE TABLE experiments (id INTEGER PRIMARY KEY, data_json TEXT NOT NULL, created_at INTEGER NOT NULL);
    """,
)

# (table, column) pairs keyed by a short channel id: a splice re-keys them (Store.rename_channel). The sling
# job registry is not among them: a running job is sling's, under the short channel id it was started with.
SCID_COLUMNS: tuple[tuple[str, str], ...] = (
    ("forwards", "in_channel"), ("forwards", "out_channel"), ("channel_actors", "scid"), ("fee_decisions", "scid"),
    ("quarantined_states", "scid"), ("budget_reservations", "scid"), ("rebalances", "to_channel"),
    ("policies", "channel_id"))

SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The database cannot be used safely; the message says why and what to do."""


def _forward_row(f: Forward) -> tuple:
    return (f.in_channel, f.in_htlc_id, f.out_channel, f.in_msat, f.out_msat, f.fee_msat, f.status,
            f.received_time, f.resolved_time, f.updated_index, f.failcode, f.failreason)


class Store:
    def __init__(self, path: str):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:       # a missing parent that cannot be made (a file on the way, no permission)
            raise StoreError(f"cannot create the directory {parent} for database {path}: "
                             f"{e.strerror or e}") from e
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
            self._load_aliases()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open database {path}: {e}. The file was left untouched; "
                             "move it aside or restore a backup, then start again") from e
        self._in_tx = False

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"database {self.path} has schema version {version}, newer than this "
                             f"plugin understands ({SCHEMA_VERSION}); refusing to touch it")
        for target in range(version, SCHEMA_VERSION):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[target].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute(f"PRAGMA user_version={target + 1}")
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def tx(self) -> Iterator[None]:
        """One atomic unit of writes (nested calls join the outer transaction)."""
        if self._in_tx:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self._in_tx = False

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()

    # -- meta -----------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, str(value)))

    # -- channel identity (revops/identity.py) ---------------------------------------------------
    def _load_aliases(self) -> None:
        """channel_id → the short channel id in force, and every earlier one → that one."""
        self.current_scid: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        rows = self.db.execute("SELECT scid, channel_id FROM channel_scids ORDER BY channel_id, first_seen, rowid")
        by_channel: dict[str, list[str]] = {}
        for scid, cid in rows:
            by_channel.setdefault(cid, []).append(scid)
        for cid, scids in by_channel.items():
            self.current_scid[cid] = scids[-1]
            self.aliases.update({s: scids[-1] for s in scids[:-1]})

    def canonical(self, scid: str | None) -> str | None:
        """The short channel id in force for a channel named by any it ever had (itself when not spliced)."""
        return None if scid is None else self.aliases.get(scid, scid)

    def scid_history(self, scid: str) -> list[str]:
        """Every short channel id of the channel `scid` names, oldest first (just [scid] when unknown)."""
        cur = self.canonical(scid)
        rows = [r[0] for r in self.db.execute(
            "SELECT scid FROM channel_scids WHERE channel_id=(SELECT channel_id FROM channel_scids WHERE scid=?) "
            "ORDER BY first_seen, rowid", (cur,))]
        return rows or [cur]

    def follow_channels(self, listed: Iterable[tuple[str, str, str]], now: int) -> dict[str, str]:
        """Record (scid, channel_id, peer_id) as lightningd lists them now; re-key the history of every channel
        whose short channel id changed (a splice, also one that happened while the plugin was down).
        Returns {old scid: new scid}."""
        listed = [(s, c, p) for s, c, p in listed if s and c]
        renames = identity.splices(self.current_scid, {c: s for s, c, _ in listed})
        with self.tx():
            for old, new in renames.items():
                self.rename_channel(old, new)
            self.db.executemany("INSERT OR IGNORE INTO channel_scids(scid, channel_id, peer_id, first_seen) "
                                "VALUES (?,?,?,?)", [(s, c, p, now) for s, c, p in listed])
        for s, c, _ in listed:
            if self.current_scid.get(c) != s:
                self.current_scid[c] = s
        return renames

    def pre_upgrade_orphans(self, listed: set[str]) -> dict[str, str]:
        """Short channel ids with a saved actor that were never recorded with a channel_id and are not listed
        now (from before schema 6: closed, or spliced, before the upgrade) → the actor's peer."""
        return {scid: peer for scid, peer in self.db.execute(
            "SELECT scid, peer_id FROM channel_actors WHERE scid NOT IN (SELECT scid FROM channel_scids)")
            if scid not in listed}

    def join_pre_upgrade(self, channel_id: str, peer_id: str, earlier: list[str]) -> None:
        """Record `earlier` (oldest first) as the channel's short channel ids before those recorded, and move
        their history along them to the newest: to the one in force now, or, for a channel not recorded yet,
        follow_channels moves it when it records the one listed."""
        with self.tx():
            first = self.db.execute("SELECT MIN(first_seen) FROM channel_scids WHERE channel_id=?",
                                    (channel_id,)).fetchone()[0]
            base = (first or 0) - len(earlier)
            self.db.executemany("INSERT OR IGNORE INTO channel_scids(scid, channel_id, peer_id, first_seen) "
                                "VALUES (?,?,?,?)", [(s, channel_id, peer_id, base + i) for i, s in enumerate(earlier)])
            chain = earlier + [self.current_scid[channel_id]] if channel_id in self.current_scid else earlier
            for old, new in zip(chain, chain[1:]):
                self.rename_channel(old, new)
        self.current_scid.setdefault(channel_id, earlier[-1])

    def rename_channel(self, old: str, new: str) -> None:
        """Re-key everything stored under `old` to `new` (one channel, spliced). A row already under `new`
        (a forward both names were told about, the actor's own newer checkpoint) wins over the old one."""
        with self.tx():
            for table, column in SCID_COLUMNS:
                self.db.execute(f"UPDATE OR IGNORE {table} SET {column}=? WHERE {column}=?", (new, old))
                self.db.execute(f"DELETE FROM {table} WHERE {column}=?", (old,))
            self.db.execute(   # roll-ups of one day under both names add up
                "INSERT INTO forward_rollups SELECT day, CASE in_channel WHEN :o THEN :n ELSE in_channel END, "
                "CASE out_channel WHEN :o THEN :n ELSE out_channel END, status, forwards, in_msat, out_msat, fee_msat "
                "FROM forward_rollups WHERE in_channel=:o OR out_channel=:o ON CONFLICT(day, in_channel, out_channel, "
                "status) DO UPDATE SET forwards=forwards+excluded.forwards, in_msat=in_msat+excluded.in_msat, "
                "out_msat=out_msat+excluded.out_msat, fee_msat=fee_msat+excluded.fee_msat", {"o": old, "n": new})
            self.db.execute("DELETE FROM forward_rollups WHERE in_channel=? OR out_channel=?", (old, old))
            for rid, sources in self.db.execute("SELECT id, from_channels FROM rebalances WHERE from_channels LIKE ?",
                                                (f'%"{old}"%',)).fetchall():
                self.db.execute("UPDATE rebalances SET from_channels=? WHERE id=?",
                                (json.dumps([new if s == old else s for s in json.loads(sources)]), rid))
            for scid, text in self.db.execute(   # sling knows a job by the scid it was created with: that stays
                    "SELECT scid, job_json FROM sling_jobs WHERE scid=? OR json_extract(job_json, '$.spliced_to')=?",
                    (old, old)).fetchall():
                self.db.execute("UPDATE sling_jobs SET job_json=? WHERE scid=?",
                                (json.dumps({**json.loads(text), "spliced_to": new}, sort_keys=True), scid))
            for eid, text in self.db.execute("SELECT id, data_json FROM experiments WHERE data_json LIKE ?",
                                             (f'%"{old}"%',)).fetchall():
                data = json.loads(text)           # an experiment's units (revops/experiment.py) follow the channel
                if old in data.get("units", {}):
                    data["units"][new] = data["units"].pop(old)
                    self.db.execute("UPDATE experiments SET data_json=? WHERE id=?",
                                    (json.dumps(data, sort_keys=True), eid))
        for alias, cur in list(self.aliases.items()):
            if cur == old:
                self.aliases[alias] = new
        self.aliases[old] = new
        self.aliases.pop(new, None)

    def canonical_forward(self, f: Forward) -> Forward:
        """The forward with its channels named by the short channel ids in force (listforwards keeps the one
        that was current when the HTLC arrived)."""
        i, o = self.canonical(f.in_channel), self.canonical(f.out_channel)
        return f if (i, o) == (f.in_channel, f.out_channel) else attrs.evolve(f, in_channel=i, out_channel=o)

    # -- forwards -------------------------------------------------------------------------------
    def insert_forward(self, f: Forward, bump_index: bool = True) -> bool:
        """Store one final forward (under the short channel ids in force); True only the first time this
        forward is seen. `bump_index=False` keeps the listforwards index where it is (a live forward arriving
        before hydration finished must not move the index past forwards not yet read)."""
        f = self.canonical_forward(f)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO forwards VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _forward_row(f))
        if bump_index and f.updated_index is not None:
            self._bump_index("forwards_updated_index", f.updated_index)
        if bump_index and f.created_index is not None:
            self._bump_index("forwards_created_index", f.created_index)
        return cur.rowcount == 1

    def insert_forwards(self, forwards: Iterable[Forward]) -> list[Forward]:
        """Store many; returns those that were new."""
        with self.tx():
            return [f for f in forwards if self.insert_forward(f)]

    def _bump_index(self, key: str, idx: int) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value=MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (key, str(idx)))

    def forwards_index(self, kind: str) -> int:
        """The highest listforwards index seen: 'updated' (settled/failed) or 'created' (local_failed)."""
        return int(self.get_meta(f"forwards_{kind}_index", "0") or 0)

    def forward_count(self, status: str | None = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM forwards").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM forwards WHERE status=?", (status,)).fetchone()[0]

    def daily_buckets(self, scids: Iterable[str] | None, now: int, days: int) -> dict[str, list[dict]]:
        """Per channel, settled flow per day age (0 = last 24 h): in/out/fee msat and counts."""
        since = now - days * 86400
        out: dict[str, dict[int, dict]] = {}
        wanted = set(scids) if scids is not None else None

        def bucket(scid: str, age: int) -> dict | None:
            if wanted is not None and scid not in wanted:
                return None
            return out.setdefault(scid, {}).setdefault(
                age, {"day_age": age, "in_msat": 0, "out_msat": 0, "fee_msat": 0, "forwards": 0})

        age_sql = "CAST((? - received_time) / 86400 AS INTEGER)"
        for row in self.db.execute(
                f"SELECT out_channel, {age_sql} AS age, SUM(out_msat), SUM(fee_msat), COUNT(*) FROM forwards "
                "WHERE status='settled' AND received_time > ? GROUP BY out_channel, age", (now, since)):
            b = bucket(row[0], row[1])
            if b is not None:
                b["out_msat"] += row[2]
                b["fee_msat"] += row[3]
                b["forwards"] += row[4]
        for row in self.db.execute(
                f"SELECT in_channel, {age_sql} AS age, SUM(in_msat) FROM forwards "
                "WHERE status='settled' AND received_time > ? GROUP BY in_channel, age", (now, since)):
            b = bucket(row[0], row[1])
            if b is not None:
                b["in_msat"] += row[2]
        return {scid: [by_age[a] for a in sorted(by_age)] for scid, by_age in out.items()}

    def channel_earnings(self, scid: str, since: float, until: float | None = None) -> tuple[int, int]:
        """(fee msat earned as outgoing channel, settled forwards out) since a time (until one, inclusive)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(fee_msat), 0), COUNT(*) FROM forwards WHERE status='settled' AND out_channel=? "
            "AND received_time >= ? AND received_time <= ?", (scid, since, 1e18 if until is None else until)).fetchone()
        return row[0], row[1]

    def revenue_msat(self, since: float, until: float | None = None) -> tuple[int, int]:
        """(fees earned msat, settled forwards) in [since, until)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(fee_msat), 0), COUNT(*) FROM forwards WHERE status='settled' "
            "AND received_time >= ? AND received_time < ?", (since, until if until is not None else 1e18)
        ).fetchone()
        return row[0], row[1]

    # -- channel actor state --------------------------------------------------------------------
    def save_actor_states(self, states: Mapping[str, tuple[str, dict]], now: int) -> None:
        with self.tx():
            self.db.executemany(
                "INSERT INTO channel_actors(scid, peer_id, state_json, updated_at, closed_at) "
                "VALUES(?,?,?,?,NULL) ON CONFLICT(scid) DO UPDATE SET peer_id=excluded.peer_id, "
                "state_json=excluded.state_json, updated_at=excluded.updated_at, closed_at=NULL",
                [(scid, peer, json.dumps(state, sort_keys=True), now) for scid, (peer, state) in states.items()])

    def load_actor_states(self) -> dict[str, dict | str]:
        """scid → stored state; the raw text when it is not JSON (the actor quarantines it)."""
        def parsed(text: str) -> dict | str:
            try:
                return json.loads(text)
            except ValueError:
                return text
        return {r["scid"]: parsed(r["state_json"]) for r in
                self.db.execute("SELECT scid, state_json FROM channel_actors WHERE closed_at IS NULL")}

    def quarantine_state(self, scid: str, peer_id: str, state: Any, error: str, now: int) -> None:
        self.db.execute("INSERT INTO quarantined_states(scid, peer_id, state_json, error, at) VALUES (?,?,?,?,?)",
                        (scid, peer_id, state if isinstance(state, str) else json.dumps(state, sort_keys=True,
                                                                                         default=str), error, now))

    def quarantined_states(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM quarantined_states ORDER BY id")]

    def mark_closed(self, scid: str, now: int) -> None:
        self.db.execute("UPDATE channel_actors SET closed_at=? WHERE scid=?", (now, scid))

    # -- fee decisions --------------------------------------------------------------------------
    def broadcast_times(self, scid: str, since: int) -> tuple[int, ...]:
        """When fee updates of this channel were broadcast (applied, or failed: maybe applied), congestion
        moves aside (never counted): what max_fee_updates_per_day counts, rebuilt after a state was lost."""
        return tuple(r[0] for r in self.db.execute(
            "SELECT DISTINCT at FROM fee_decisions WHERE scid=? AND broadcast=1 AND outcome IN ('applied', 'failed') "
            "AND branch != 'congestion' AND at > ? ORDER BY at", (scid, since)))

    def record_decision(self, d: Any, outcome: str) -> None:
        self.db.execute(
            "INSERT INTO fee_decisions(scid, at, old_fee_ppm, new_fee_ppm, branch, reason, inputs_json, "
            "broadcast, outcome) VALUES (?,?,?,?,?,?,?,?,?)",
            (d.scid, d.at, d.old_fee_ppm, d.new_fee_ppm, d.branch, d.reason,
             json.dumps(d.inputs, sort_keys=True, default=str), int(d.broadcast), outcome))

    def decisions(self, scid: str | None = None, limit: int = 50) -> list[dict]:
        sql = "SELECT * FROM fee_decisions"
        args: tuple = ()
        if scid is not None:
            sql += " WHERE scid=?"
            args = (scid,)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self.db.execute(sql, args + (limit,)).fetchall()
        return [{**{k: r[k] for k in r.keys() if k != "inputs_json"}, "inputs": json.loads(r["inputs_json"]),
                 "broadcast": bool(r["broadcast"])} for r in rows]

    # -- policies -------------------------------------------------------------------------------
    def load_policies(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM policies ORDER BY peer_id, channel_id").fetchall()
        return [{**dict(r), "tags": json.loads(r["tags_json"])} for r in rows]

    def save_policy(self, p: Mapping[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO policies(peer_id, channel_id, strategy, rebalance_mode, fee_ppm_target, fee_min_ppm, "
            "fee_max_ppm, tags_json, expires_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(peer_id, channel_id) DO UPDATE SET strategy=excluded.strategy, "
            "rebalance_mode=excluded.rebalance_mode, fee_ppm_target=excluded.fee_ppm_target, "
            "fee_min_ppm=excluded.fee_min_ppm, fee_max_ppm=excluded.fee_max_ppm, tags_json=excluded.tags_json, "
            "expires_at=excluded.expires_at, updated_at=excluded.updated_at",
            (p["peer_id"], p.get("channel_id") or "", p["strategy"], p["rebalance_mode"], p.get("fee_ppm_target"),
             p.get("fee_min_ppm"), p.get("fee_max_ppm"), json.dumps(list(p.get("tags", ()))),
             p.get("expires_at"), p["updated_at"]))

    def delete_policy(self, peer_id: str, channel_id: str | None) -> bool:
        cur = self.db.execute("DELETE FROM policies WHERE peer_id=? AND channel_id=?", (peer_id, channel_id or ""))
        return cur.rowcount > 0

    # -- configuration ---------------------------------------------------------------------------
    # Option values live in lightningd's config (setconfig persists them); the store only counts changes.
    def load_overrides(self) -> dict[str, str]:
        """Values an earlier version stored itself (no longer applied: start-up warns about each)."""
        return {r[0]: r[1] for r in self.db.execute("SELECT key, value FROM config_overrides")}

    def config_version(self) -> int:
        """How many configuration changes were ever applied (monotonic, across restarts)."""
        legacy = self.db.execute("SELECT COALESCE(MAX(version), 0) FROM config_overrides").fetchone()[0]
        return max(int(self.get_meta("config_version", "0") or 0), legacy)

    def config_changed_at(self) -> int:
        return int(self.get_meta("config_changed_at", "0") or 0)

    def note_config_change(self, now: int) -> int:
        """Count one applied change; returns the new version."""
        with self.tx():
            version = self.config_version() + 1
            self.set_meta("config_version", version)
            self.set_meta("config_changed_at", now)
        return version

    # -- feerate samples ------------------------------------------------------------------------
    def add_feerate_sample(self, at: int, sat_per_vb: float) -> None:
        """Store a Vegas Reflex sample (restored into the coordinator at start); keep 48 h."""
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO feerate_samples(at, sat_per_vb) VALUES (?,?)", (at, sat_per_vb))
            self.db.execute("DELETE FROM feerate_samples WHERE at < ?", (at - 2 * 86400,))

    # -- the live experiment ----------------------------------------------------------------------
    def new_experiment_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM experiments").fetchone()[0])

    def save_experiment(self, exp_id: int, data: Mapping[str, Any], now: int) -> None:
        self.db.execute("INSERT INTO experiments(id, data_json, created_at) VALUES (?,?,?) ON CONFLICT(id) "
                        "DO UPDATE SET data_json=excluded.data_json", (exp_id, json.dumps(data, sort_keys=True), now))

    def latest_experiment(self) -> dict | None:
        row = self.db.execute("SELECT data_json FROM experiments ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])

    def daily_fees_and_spend(self, since: int, until: int) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
        """Per channel and whole day since `since` (day 0 = its first 24 h): fees earned as the outgoing
        channel, and rebalance spend settled into it as the destination (msat)."""
        fees = [tuple(r) for r in self.db.execute(
            "SELECT out_channel, CAST((received_time - ?) / 86400 AS INTEGER), SUM(fee_msat) FROM forwards "
            "WHERE status='settled' AND received_time >= ? AND received_time < ? GROUP BY 1, 2",
            (since, since, until))]
        spend = [tuple(r) for r in self.db.execute(
            "SELECT scid, CAST((settled_at - ?) / 86400 AS INTEGER), SUM(spent_msat) FROM budget_reservations "
            "WHERE status!='active' AND settled_at >= ? AND settled_at < ? GROUP BY 1, 2", (since, since, until))]
        return fees, spend

    def closed_channels(self) -> dict[str, int]:
        """scid → when its actor was retired (the channel left CHANNELD_NORMAL)."""
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT scid, closed_at FROM channel_actors WHERE closed_at IS NOT NULL")}
