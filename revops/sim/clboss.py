"""Emulated clboss (v0.16.3 where the hand-off is concerned): clboss-status / clboss-unmanage, and its fees.

Like the real one (Boss/Mod/UnmanagedManager.cpp, ChannelFeeSetter.cpp):
- `clboss-unmanage nodeid tags` REPLACES the node's whole tag set with `tags` (comma-separated; "" = fully
  managed again) and answers `{}`; the tags are lnfee, open, close and balance, anything else fails with
  -32602 "Parameter error: Unknown tag: X";
- `clboss-status` lists `unmanaged` as {"comment": ..., node id: tags joined by ", "}, fully managed nodes
  left out;
- the tags live in clboss's own database: they survive clboss stopping and starting (this object lives as
  long as the node);
- its fee setter surveys when it starts (60 virtual seconds later) and every 6 virtual hours, and sets the
  fee of every channel whose peer does not carry ``lnfee`` to ``multiplier × median`` of the competing fees
  (see docs/simulator.md).
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .node import SimNode

CLBOSS_INTERVAL_S = 6 * 3600
INVALID_PARAMS = -32602
TAGS = ("balance", "close", "lnfee", "open")
PATH = "/usr/local/bin/clboss"


class Clboss:
    METHODS = ("clboss-status", "clboss-unmanage")   # the ones emulated; plugin_started lists them

    def __init__(self, node: "SimNode"):
        self.node = node
        self.unmanaged: dict[str, list[str]] = {}
        self.multipliers: dict[str, float] = {}
        self._gen = 0
        if node.plugins["clboss"]:
            self.start_plugin()

    def start_plugin(self) -> None:
        self._gen += 1
        self.node._push(self.node._t + 60, "clboss", self._gen)

    def _median_fees(self, peer_id: str) -> tuple[int, int]:
        """clboss's competitor survey: the median fee of the other channels toward the peer."""
        return 1000, self.node.competitors.median_ppm(peer_id)

    def _lnfee(self, peer_id: str) -> dict:
        mb, mp = self._median_fees(peer_id)
        m = self.multipliers.setdefault(peer_id, round(math.exp(
            random.Random(f"clboss-multiplier:{self.node.seed}:{peer_id}").gauss(0, 0.5)), 5))
        return {"median_base": mb, "median_proportional": mp, "multiplier": m,
                "final_base": int(mb * m), "final_proportional": int(mp * m)}

    def on_event(self, gen: int) -> None:
        if gen != self._gen or not self.node.plugins["clboss"]:
            return
        for ch in list(self.node.channels.values()):
            if ch.state != "CHANNELD_NORMAL" or "lnfee" in self.unmanaged.get(ch.peer_id, []):
                continue
            f = self._lnfee(ch.peer_id)
            self.node.set_fee(ch, f["final_base"], f["final_proportional"])
        self.node._push(self.node._t + CLBOSS_INTERVAL_S, "clboss", gen)

    def has(self, method: str) -> bool:
        return method in self.METHODS

    def call(self, method: str, params: Any) -> dict:
        from .node import parse_params
        if method == "clboss-unmanage":
            p = parse_params(method, params, [("nodeid", "pubkey", True), ("tags", "str", True)])
            tags = [t for t in p["tags"].split(",") if t]
            for t in tags:
                if t not in TAGS:
                    raise self.node.rpc_error(method, params, INVALID_PARAMS, f"Parameter error: Unknown tag: {t}")
            self.unmanaged[p["nodeid"]] = sorted(set(tags))
            if not self.unmanaged[p["nodeid"]]:
                del self.unmanaged[p["nodeid"]]
            return {}
        parse_params(method, params, [])
        return self._status()

    def _status(self) -> dict:
        node = self.node
        peers = sorted({c.peer_id for c in node.channels.values() if c.state == "CHANNELD_NORMAL"})
        now = node._t
        human = datetime.fromtimestamp(now, tz=timezone.utc).strftime("UTC %Y-%m-%d %H:%M:%S.000")
        perkw = node.mempool.estimates_perkw(now)[6]
        unmanaged: dict = {"comment": "Use 'clboss-unmanage' to disable management of some nodes."}
        for pid, tags in sorted(self.unmanaged.items()):
            unmanaged[pid] = ", ".join(tags)
        return {
            "channel_candidates": [],
            "closed_peer_complaints": {},
            "incoming_capacity_swapper": {"status": "idle", "message": "Newly-started"},
            "info": {"version": "v0.15.1", "git_commit_hash": "3f6db14208b76f9a85fa04f167d1ee53282ce36f",
                     "git_describe": "v0.15.1"},
            "internet": {"connection": "online", "checking_connectivity": False},
            "lnfee": {pid: self._lnfee(pid) for pid in peers},
            "my_uptime": {"past_3_days": 1, "past_2_weeks": 1, "past_1_month": 1},
            "needs_onchain_funds_swapper": {"status": "idle", "message": "Newly-started"},
            "offchain_earnings_tracker": {"total": {
                "in_earnings": 0, "in_forwarded": 0, "in_expenditures": 0, "in_rebalanced": 0,
                "out_earnings": node.ledger.fees_earned_msat, "out_forwarded": node.ledger.volume_settled_msat,
                "out_expenditures": node.ledger.rebalance_cost_msat, "out_rebalanced": node.ledger.rebalanced_msat}},
            "onchain_feerate": {"hi_to_lo": perkw, "init_mid": perkw, "lo_to_hi": perkw, "last_feerate_perkw": perkw,
                                "judgment": "high fees" if perkw > 2500 else "low fees"},
            "peer_complaints": {},
            "peer_metrics": {},
            "price_theory_investigating": {},
            "should_monitor_onchain_funds": {
                "status": "notice", "now": float(now), "now_human": human, "disable_until": 0,
                "disable_until_human": "UTC 1970-01-01 00:00:00.000",
                "comment": "`clboss-ignore-onchain` to ignore onchain funds temporarily."},
            "swap_manager": [],
            "swap_report": {"swaps": [], "total_amount_sent": "0msat", "total_amount_received": "0msat",
                            "loss": "0msat", "percent_loss": 0},
            "unmanaged": unmanaged,
        }
