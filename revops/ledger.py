"""The rebalance budget ledger and the sling job registry, on the Store (actor-loop thread only).

Reservations are taken in ONE SQLite transaction (BEGIN IMMEDIATE): the daily budget and the
per-channel cap are checked against what is in the database and the row is inserted before COMMIT,
so two reservations can never both pass a check that only one of them fits. Settlement books what
sling actually spent; release gives an unused reservation back.

A reservation ends only with its job: while a row of the sling job registry names it (from the provisional
row written before `sling-once` on), it counts against the budget whatever its age. Only a reservation that
no registry row names (a crash between the reservation and the row) stops counting after
`reservation_timeout_hours` and is marked `expired`.
"""
from __future__ import annotations

import json
from typing import Any

from revops import hive
from revops.anchor import HOME_MIN_FORWARDS
from revops import rebalance as rb
from revops.model import converter
from revops.store import Store

DAY = 86400
ACTIVE = "active"


class Ledger:
    def __init__(self, store: Store):
        self.store = store
        self.db = store.db
        # the reservations our job registry holds: live whatever their age (read from the row's JSON)
        self.db.execute("CREATE TEMP VIEW IF NOT EXISTS held_reservations AS "
                        "SELECT json_extract(job_json, '$.res_id') AS id FROM sling_jobs "
                        "WHERE json_extract(job_json, '$.res_id') IS NOT NULL")

    # -- figures --------------------------------------------------------------------------------
    def spent_24h_msat(self, now: int) -> int:
        return self.db.execute("SELECT COALESCE(SUM(spent_msat), 0) FROM budget_reservations "
                               "WHERE status!=? AND settled_at > ?", (ACTIVE, now - DAY)).fetchone()[0]

    def reserved_msat(self, now: int, timeout_s: float) -> int:
        return self.db.execute("SELECT COALESCE(SUM(reserved_msat), 0) FROM budget_reservations WHERE status=? "
                               "AND (created_at > ? OR id IN held_reservations)", (ACTIVE, now - timeout_s)).fetchone()[0]

    def channel_spend_30d(self, now: int, timeout_s: float) -> dict[str, int]:
        """Per destination scid: settled spend over 30 days plus live reservations."""
        out: dict[str, int] = {}
        for scid, msat in self.db.execute(
                "SELECT scid, SUM(CASE WHEN status=? THEN reserved_msat ELSE spent_msat END) FROM budget_reservations "
                "WHERE (status!=? AND settled_at > ?) OR (status=? AND (created_at > ? OR id IN held_reservations)) "
                "GROUP BY scid", (ACTIVE, ACTIVE, now - 30 * DAY, ACTIVE, now - timeout_s)):
            out[scid] = msat
        return out

    def settled_spend_30d(self, now: int) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT scid, SUM(spent_msat) FROM budget_reservations WHERE status!=? AND settled_at > ? GROUP BY scid",
            (ACTIVE, now - 30 * DAY))}

    def earnings_30d(self, now: int) -> tuple[dict[str, int], int | None]:
        """Fees earned per outgoing channel over 30 days, and from the same settled forwards the node's own
        going rate: fees over volume (None with fewer than anchor.HOME_MIN_FORWARDS: too few to stand for it)."""
        earned: dict[str, int] = {}
        count, fees, volume = 0, 0, 0
        for scid, fee, out, n in self.db.execute(
                "SELECT out_channel, SUM(fee_msat), SUM(out_msat), COUNT(*) FROM forwards WHERE status='settled' "
                "AND received_time >= ? GROUP BY out_channel", (now - 30 * DAY,)):
            earned[scid] = fee
            count, fees, volume = count + n, fees + (fee or 0), volume + (out or 0)
        return earned, (fees * 1_000_000 // volume if count >= HOME_MIN_FORWARDS and volume else None)

    def history_ppm(self, now: int) -> dict[str, list[int]]:
        """Per destination scid: the ppm actually paid by our successful rebalances (30 days)."""
        out: dict[str, list[int]] = {}
        for scid, fee, moved in self.db.execute(
                "SELECT to_channel, fee_msat, moved_msat FROM rebalances WHERE moved_msat > 0 AND finished_at > ?",
                (now - 30 * DAY,)):
            out.setdefault(scid, []).append(int(fee * 1_000_000 // moved))
        return out

    def drained_for(self, now: int, hours: float) -> dict[str, dict[str, int]]:
        """source scid → {dest scid: when}: which channels were offered as sources for which destination."""
        out: dict[str, dict[str, int]] = {}
        for dest, sources, at in self.db.execute(
                "SELECT to_channel, from_channels, created_at FROM rebalances WHERE created_at > ? ORDER BY created_at",
                (now - hours * 3600,)):
            for src in json.loads(sources):
                out.setdefault(src, {})[dest] = at
        return out

    def last_success(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT to_channel, MAX(finished_at) FROM rebalances WHERE moved_msat > 0 GROUP BY to_channel")}

    def hive_pushed_24h_sat(self, now: int) -> int:
        """Sats pushed into hive peers by jobs started in the last 24 h (running: the whole amount)."""
        return self.db.execute("SELECT COALESCE(SUM(hive_sat), 0) FROM budget_reservations "
                               "WHERE status!='released' AND created_at > ?", (now - DAY,)).fetchone()[0]

    def budget_state(self, now: int, cfg: Any) -> rb.BudgetState:
        revenue = self.store.revenue_msat(now - DAY, now + 1)[0]
        timeout = cfg.reservation_timeout_hours * 3600
        return rb.BudgetState(daily_budget_msat=rb.effective_daily_budget_msat(cfg, revenue),
                              spent_24h_msat=self.spent_24h_msat(now), reserved_msat=self.reserved_msat(now, timeout),
                              channel_spend_30d_msat=self.channel_spend_30d(now, timeout),
                              hive_pushed_24h_sat=self.hive_pushed_24h_sat(now))

    # -- reservations ---------------------------------------------------------------------------
    def reserve(self, res_id: str, scid: str, amount_msat: int, now: int, cfg: Any,
                cap_msat: int | None, hive_sat: int = 0) -> tuple[bool, str]:
        """Atomically check the daily budget (the channel cap and the hive push cap when given) and insert
        the reservation."""
        if amount_msat <= 0:
            return False, f"reservation of {amount_msat} msat refused"
        with self.store.tx():
            self.release_stale(now, cfg.reservation_timeout_hours * 3600)
            budget = self.budget_state(now, cfg)
            if amount_msat > budget.remaining_msat:
                return False, (f"budget: {amount_msat} msat > remaining {budget.remaining_msat} msat (daily "
                               f"{budget.daily_budget_msat}, spent {budget.spent_24h_msat}, "
                               f"reserved {budget.reserved_msat})")
            used = budget.channel_spend_30d_msat.get(scid, 0)
            if cap_msat is not None and used + amount_msat > cap_msat:
                return False, f"channel_cap: {used} + {amount_msat} msat > cap {cap_msat} msat (30 days)"
            if hive_sat and (why := hive.daily_push_refusal(budget.hive_pushed_24h_sat, hive_sat, cfg)):
                return False, why
            self.db.execute("INSERT INTO budget_reservations(id, scid, reserved_msat, spent_msat, status, created_at, "
                            "hive_sat) VALUES (?,?,?,0,?,?,?)", (res_id, scid, amount_msat, ACTIVE, now, hive_sat))
        return True, f"reserved {amount_msat} msat for {scid}"

    def settle(self, res_id: str, spent_msat: int, now: int, moved_msat: int | None = None) -> rb.Settlement | None:
        with self.store.tx():
            row = self.db.execute("SELECT reserved_msat, status, hive_sat FROM budget_reservations WHERE id=?",
                                  (res_id,)).fetchone()
            if row is None or row["status"] not in (ACTIVE, "expired"):
                return None
            s = rb.settle(row["reserved_msat"], spent_msat)
            # a hive push counts what sling really moved (sling may move more than one chunk before a poll)
            pushed = row["hive_sat"] if moved_msat is None or not row["hive_sat"] else moved_msat // 1000
            self.db.execute("UPDATE budget_reservations SET spent_msat=?, status='settled', settled_at=?, hive_sat=? "
                            "WHERE id=?", (s.book_msat, now, pushed, res_id))
        return s

    def release(self, res_id: str, now: int) -> None:
        self.db.execute("UPDATE budget_reservations SET status='released', settled_at=? WHERE id=? AND status=?",
                        (now, res_id, ACTIVE))

    def release_stale(self, now: int, timeout_s: float) -> int:
        """Expire active reservations older than the timeout that no registry row names (their job is gone)."""
        return self.db.execute("UPDATE budget_reservations SET status='expired', settled_at=? WHERE status=? "
                               "AND created_at <= ? AND id NOT IN held_reservations",
                               (now, ACTIVE, now - timeout_s)).rowcount

    def reservations(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM budget_reservations ORDER BY created_at, id")]

    # -- history --------------------------------------------------------------------------------
    def record_rebalance(self, res_id: str, to_channel: str, from_channels: list[str], amount_sat: int,
                         max_fee_msat: int, fee_msat: int, moved_msat: int, status: str, kind: str, reason: str,
                         created_at: int, finished_at: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO rebalances VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (res_id, to_channel, json.dumps(from_channels), amount_sat, max_fee_msat, fee_msat,
                         moved_msat, status, kind, reason, created_at, finished_at))

    def recent_rebalances(self, limit: int) -> list[dict]:
        """The last `limit` rebalances, newest first, each with its outcome, cost and reason."""
        rows = self.db.execute("SELECT * FROM rebalances ORDER BY created_at DESC, id LIMIT ?", (limit,))
        return [{**dict(r), "from_channels": json.loads(r["from_channels"])} for r in rows]

    # -- sling job registry ---------------------------------------------------------------------
    def save_job(self, job: rb.JobRecord, extra: dict, now: int) -> None:
        data = {"job": converter.unstructure(job), **extra}
        self.db.execute("INSERT INTO sling_jobs(scid, job_json, status, created_at, updated_at) VALUES (?,?,?,?,?) "
                        "ON CONFLICT(scid) DO UPDATE SET job_json=excluded.job_json, status=excluded.status, "
                        "updated_at=excluded.updated_at",
                        (job.scid, json.dumps(data, sort_keys=True), job.status.value, now, now))

    def delete_job(self, scid: str) -> None:
        self.db.execute("DELETE FROM sling_jobs WHERE scid=?", (scid,))

    def load_jobs(self) -> list[tuple[rb.JobRecord, dict]]:
        out = []
        for r in self.db.execute("SELECT job_json FROM sling_jobs ORDER BY scid"):
            data = json.loads(r[0])
            job = converter.structure(data.pop("job"), rb.JobRecord)
            out.append((job, data))
        return out
