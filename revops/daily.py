"""Once per UTC day: fold old forwards into roll-ups and write a financial snapshot.

Runs on the loop thread from the runtime's tick; the snapshot's lightningd reads (listfunds) go
through the io pool. The day last done is the newest snapshot's, so a restart never repeats a day and
never skips one it missed (it runs on the first tick after start).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from revops import finance, reports

if TYPE_CHECKING:
    from revops.runtime import Runtime


class DailyJobs:
    def __init__(self) -> None:
        self._running = False

    def on_tick(self, rt: "Runtime") -> None:
        last = finance.last_snapshot_at(rt.store)
        if self._running or (last is not None and last // finance.DAY >= rt.now // finance.DAY):
            return
        self._running = True
        pruned = finance.prune_forwards(rt.store, rt.now, finance.keep_days(rt.config))
        if pruned:
            rt.log("info", f"{pruned} forwards older than {finance.keep_days(rt.config)} days folded into daily "
                           "roll-ups")
        rt.run_io([("listfunds", {})], lambda answers: self._snapshot(rt, answers[0]))

    def _snapshot(self, rt: "Runtime", answer: tuple) -> None:
        self._running = False
        funds, error = answer
        if error is not None:
            rt.log("unusual", f"daily financial snapshot skipped: listfunds failed: {error['message']}")
            return
        totals = finance.lifetime_totals(rt.store)
        finance.save_snapshot(rt.store, rt.now, reports.snapshot_data(reports.net_worth(funds), totals))
