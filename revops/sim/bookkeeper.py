"""Emulated bookkeeper (built into CLN v25.12.1): account events and the bkpr-* RPCs.

The node always records events (real bookkeeper catches up from listchannelmoves/listchainmoves after a
restart); ``[plugins] bookkeeper = false`` only makes the bkpr-* commands answer "Unknown command".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .node import Chan, SimNode

BLOCKS_PER_YEAR = 52560


def _pct(num: int, den: int) -> str:
    return f"{(100.0 * num / den) if den else 0.0:.4f}%"


class Bookkeeper:
    METHODS = ("bkpr-listincome", "bkpr-listaccountevents", "bkpr-listbalances", "bkpr-channelsapy")

    def __init__(self, node: "SimNode"):
        self.node = node
        self.events: list[dict] = []
        self.income: list[dict] = []
        self.start_info: dict[str, dict] = {}  # channel_id -> {"our_start", "cap", "open_block", ...}
        self.apy: dict[str, dict] = {}
        cur = node.coin_type
        self.events.append({"account": "wallet", "type": "chain", "tag": "deposit", "credit_msat": node.onchain_msat,
                            "debit_msat": 0, "currency": cur,
                            "outpoint": f"{'%064x' % 1}:1", "timestamp": node.scenario.start_time - 90 * 86400,
                            "blockheight": node.scenario.node.blockheight - 1000})
        self.income.append({"account": "wallet", "tag": "deposit", "credit_msat": node.onchain_msat, "debit_msat": 0,
                            "currency": cur, "timestamp": node.scenario.start_time - 90 * 86400,
                            "outpoint": f"{'%064x' % 1}:1"})

    # ------------------------------------------------------------------ recording
    def _apy(self, ch: "Chan") -> dict:
        return self.apy.setdefault(ch.channel_id, dict.fromkeys(
            ["routed_out_msat", "routed_in_msat", "fees_out_msat", "fees_in_msat", "pushed_out_msat",
             "pushed_in_msat"], 0))

    def channel_opened(self, ch: "Chan", initial: bool, open_fee_msat: int = 0) -> None:
        """The channel account's chain channel_open and, when we opened it and paid `open_fee_msat`, its
        onchain_fee for the funding transaction (as bookkeeper books a funding fee: the whole fee on the
        channel account when our wallet and one channel take part; the capture's B–C open)."""
        node = self.node
        cur = node.coin_type
        ts = int(ch.opened_time)
        open_block = int(ch.scid.split("x")[0])
        local_funds = ch.capacity_msat if ch.opener == "local" else 0
        self.start_info[ch.channel_id] = {"our_start": local_funds, "cap": ch.capacity_msat,
                                          "open_block": open_block, "we_opened": ch.opener == "local"}
        a = self._apy(ch)
        outpoint = f"{ch.funding_txid}:{ch.funding_outnum}"
        self.events.append({"account": ch.channel_id, "type": "chain", "tag": "channel_open",
                            "credit_msat": local_funds, "debit_msat": 0, "currency": cur, "outpoint": outpoint,
                            "timestamp": ts, "blockheight": open_block})
        if open_fee_msat:
            self.onchain_fee(ch.channel_id, ch.funding_txid, open_fee_msat, ts)
        if ch.pushed_msat:
            credit = ch.pushed_msat if ch.opener == "remote" else 0
            debit = ch.pushed_msat if ch.opener == "local" else 0
            self.events.append({"account": ch.channel_id, "type": "channel", "tag": "pushed", "credit_msat": credit,
                                "debit_msat": debit, "currency": cur, "timestamp": ts, "is_rebalance": False})
            self.income.append({"account": ch.channel_id, "tag": "pushed", "credit_msat": credit, "debit_msat": debit,
                                "currency": cur, "timestamp": ts})
            a["pushed_in_msat"] += credit
            a["pushed_out_msat"] += debit
    def onchain_fee(self, account: str, txid: str, fee_msat: int, ts: int) -> None:
        """An on-chain fee charged to `account` for `txid`: listaccountevents books it as a credit,
        listincome as a debit (the bkpr-listaccountevents description; the capture shows both)."""
        cur = self.node.coin_type
        self.events.append({"account": account, "type": "onchain_fee", "tag": "onchain_fee", "credit_msat": fee_msat,
                            "debit_msat": 0, "currency": cur, "timestamp": ts, "txid": txid})
        self.income.append({"account": account, "tag": "onchain_fee", "credit_msat": 0, "debit_msat": fee_msat,
                            "currency": cur, "timestamp": ts, "txid": txid})

    def spliced(self, ch: "Chan", spent: str, spent_msat: int, balance_msat: int, fee_msat: int,
                mined_at: int) -> None:
        """A splice we made, as bookkeeper records it (CLN tests/test_splicing.py, plugins/bkpr/onchain_fee.c):
        the old funding output `spent` (of `spent_msat`) leaves the channel account (chain `channel_close` with
        the extra tag `splice`, debit our balance then, `balance_msat`; the account stays open), the new one
        enters it (`channel_open`, credit our balance now; `funding_confirmed` notifies it), and the splice
        transaction's fee is the channel account's onchain_fee for the splice txid: our wallet and one channel
        take part, so the wallet is skipped and the channel pays it all. `ch` is already spliced."""
        node = self.node
        cur, txid, ts = node.coin_type, ch.funding_txid, node.now
        self.events.append({"account": ch.channel_id, "type": "chain", "tag": "channel_close", "credit_msat": 0,
                            "debit_msat": balance_msat, "currency": cur, "outpoint": spent, "txid": txid,
                            "timestamp": ts, "blockheight": mined_at})
        self.events.append({"account": ch.channel_id, "type": "chain", "tag": "channel_open",
                            "credit_msat": ch.to_us_msat, "debit_msat": 0, "currency": cur,
                            "outpoint": f"{txid}:{ch.funding_outnum}", "timestamp": ts, "blockheight": mined_at})
        if fee_msat:
            self.onchain_fee(ch.channel_id, txid, fee_msat, ts)
        spent_txid, spent_vout = spent.split(":")
        node.emit_coin_movement("chain_mvt", {
            "account_id": ch.channel_id, "credit_msat": 0, "debit_msat": balance_msat, "timestamp": ts,
            "tags": ["channel_close", "splice"], "primary_tag": "channel_close", "extra_tags": ["splice"],
            "utxo": spent, "txid": txid, "spending_txid": txid, "utxo_txid": spent_txid, "vout": int(spent_vout),
            "peer_id": ch.peer_id, "output_msat": spent_msat,
            "output_count": 2, "blockheight": mined_at})

    def funding_confirmed(self, ch: "Chan", local_funds: int | None = None) -> None:
        """chain_mvt channel_open, emitted when the funding transaction confirms (lockin), and when a splice
        locks in (`local_funds`: our balance then; lightningd's channel_record_open)."""
        node = self.node
        outpoint = f"{ch.funding_txid}:{ch.funding_outnum}"
        if local_funds is None:
            local_funds = ch.capacity_msat if ch.opener == "local" else 0
        if True:
            node.emit_coin_movement("chain_mvt", {
                "account_id": ch.channel_id, "credit_msat": local_funds, "debit_msat": 0, "timestamp": node.now,
                "tags": ["channel_open"], "primary_tag": "channel_open", "extra_tags": [], "utxo": outpoint,
                "peer_id": ch.peer_id, "utxo_txid": ch.funding_txid, "vout": ch.funding_outnum,
                "output_msat": ch.capacity_msat, "blockheight": node.blockheight})

    def routed(self, src: "Chan", dst: "Chan", in_msat: int, out_msat: int, fee: int, phash: str, ts: int) -> None:
        cur = self.node.coin_type
        self.events.append({"account": dst.channel_id, "type": "channel", "tag": "routed", "credit_msat": 0,
                            "debit_msat": out_msat, "fees_msat": fee, "currency": cur, "payment_id": phash,
                            "part_id": 0, "timestamp": ts, "is_rebalance": False})
        self.events.append({"account": src.channel_id, "type": "channel", "tag": "routed", "credit_msat": in_msat,
                            "debit_msat": 0, "fees_msat": fee, "currency": cur, "payment_id": phash,
                            "part_id": 0, "timestamp": ts, "is_rebalance": False})
        self.income.append({"account": dst.channel_id, "tag": "routed", "credit_msat": fee, "debit_msat": 0,
                            "currency": cur, "timestamp": ts, "payment_id": phash})
        a = self._apy(dst)
        a["routed_out_msat"] += out_msat
        a["fees_out_msat"] += fee
        b = self._apy(src)
        b["routed_in_msat"] += in_msat
        b["fees_in_msat"] += fee
        for acct, cr, db in ((dst.channel_id, 0, out_msat), (src.channel_id, in_msat, 0)):
            self.node.emit_coin_movement("channel_mvt", {
                "account_id": acct, "credit_msat": cr, "debit_msat": db, "timestamp": ts, "tags": ["routed"],
                "primary_tag": "routed", "extra_tags": [], "payment_hash": phash, "fees_msat": fee})

    def rebalance(self, src: "Chan", dst: "Chan", amount: int, fee: int, phash: str, ts: int) -> None:
        cur = self.node.coin_type
        self.events.append({"account": src.channel_id, "type": "channel", "tag": "invoice", "credit_msat": 0,
                            "debit_msat": amount + fee, "fees_msat": fee, "currency": cur, "payment_id": phash,
                            "part_id": 0, "timestamp": ts, "is_rebalance": True})
        self.events.append({"account": dst.channel_id, "type": "channel", "tag": "invoice", "credit_msat": amount,
                            "debit_msat": 0, "currency": cur, "payment_id": phash, "part_id": 0, "timestamp": ts,
                            "is_rebalance": True})
        self.income.append({"account": src.channel_id, "tag": "rebalance_fee", "credit_msat": 0, "debit_msat": fee,
                            "currency": cur, "timestamp": ts, "payment_id": phash})
        self.node.emit_coin_movement("channel_mvt", {
            "account_id": src.channel_id, "credit_msat": 0, "debit_msat": amount + fee, "timestamp": ts,
            "tags": ["invoice"], "primary_tag": "invoice", "extra_tags": [], "payment_hash": phash, "part_id": 0,
            "group_id": 0, "fees_msat": fee})
        self.node.emit_coin_movement("channel_mvt", {
            "account_id": dst.channel_id, "credit_msat": amount, "debit_msat": 0, "timestamp": ts,
            "tags": ["invoice"], "primary_tag": "invoice", "extra_tags": [], "payment_hash": phash, "fees_msat": 0})

    def channel_closed(self, ch: "Chan") -> None:
        node = self.node
        cur = node.coin_type
        bal = ch.to_us_msat
        closing_txid = "%064x" % (int(ch.funding_txid, 16) ^ 0xC105E)
        self.events.append({"account": ch.channel_id, "type": "chain", "tag": "channel_close", "credit_msat": 0,
                            "debit_msat": bal, "currency": cur,
                            "outpoint": f"{ch.funding_txid}:{ch.funding_outnum}", "txid": closing_txid,
                            "timestamp": node.now, "blockheight": node.blockheight})
        self.events.append({"account": "wallet", "type": "chain", "tag": "deposit", "credit_msat": bal,
                            "debit_msat": 0, "currency": cur, "outpoint": f"{closing_txid}:0",
                            "timestamp": node.now, "blockheight": node.blockheight})
        node.onchain_msat += bal
        ch.to_us_msat = 0
        node.emit_coin_movement("chain_mvt", {
            "account_id": ch.channel_id, "credit_msat": 0, "debit_msat": bal, "timestamp": node.now,
            "tags": ["channel_close"], "primary_tag": "channel_close", "extra_tags": [],
            "utxo": f"{ch.funding_txid}:{ch.funding_outnum}", "txid": closing_txid, "spending_txid": closing_txid,
            "utxo_txid": ch.funding_txid, "vout": ch.funding_outnum, "output_msat": ch.capacity_msat,
            "output_count": 2, "blockheight": node.blockheight})

    # ------------------------------------------------------------------ RPCs
    def has(self, method: str) -> bool:
        return method in self.METHODS

    def call(self, method: str, params: Any) -> dict:
        from .node import parse_params
        if method == "bkpr-listincome":
            p = parse_params(method, params, [("consolidate_fees", "bool", False), ("start_time", "u32", False),
                                              ("end_time", "u32", False)])
            lo, hi = p.get("start_time", 0), p.get("end_time", 2**32 - 1)
            return {"income_events": [dict(e) for e in self.income if lo <= e["timestamp"] <= hi]}
        if method == "bkpr-listaccountevents":
            p = parse_params(method, params, [("account", "str", False), ("payment_id", "str", False)])
            ev = self.events
            if "account" in p:
                ev = [e for e in ev if e["account"] == p["account"]]
            if "payment_id" in p:
                ev = [e for e in ev if e.get("payment_id") == p["payment_id"]]
            return {"events": [dict(e) for e in ev]}
        if method == "bkpr-listbalances":
            parse_params(method, params, [])
            return self._listbalances()
        if method == "bkpr-channelsapy":
            p = parse_params(method, params, [("start_time", "u64", False), ("end_time", "u64", False)])
            return self._channelsapy()
        raise AssertionError(method)

    def _listbalances(self) -> dict:
        node = self.node
        out = []
        for ch in node.channels.values():
            info = self.start_info[ch.channel_id]
            d = {"account": ch.channel_id, "peer_id": ch.peer_id, "we_opened": info["we_opened"],
                 "account_closed": ch.closed_height is not None,
                 "account_resolved": ch.state == "CLOSED"}
            if ch.state == "CLOSED":
                d["resolved_at_block"] = ch.closed_height + 100
            d["balances"] = [{"balance_msat": ch.to_us_msat, "coin_type": node.coin_type}]
            out.append(d)
        out.append({"account": "wallet", "balances": [{"balance_msat": max(0, node.onchain_msat),
                                                       "coin_type": node.coin_type}]})
        return {"accounts": out}

    def _channelsapy(self) -> dict:
        node = self.node
        rows = []
        net = dict.fromkeys(["routed_out_msat", "routed_in_msat", "pushed_out_msat", "pushed_in_msat",
                             "our_start_balance_msat", "channel_start_balance_msat", "fees_out_msat",
                             "fees_in_msat"], 0)
        net_blocks = 1
        for ch in node.channels.values():
            info = self.start_info[ch.channel_id]
            a = self._apy(ch)
            our_start = info["our_start"] - a["pushed_out_msat"] + a["pushed_in_msat"]
            blocks = max(1, node.blockheight - info["open_block"] + 1)
            net_blocks = max(net_blocks, blocks)
            r = {"account": ch.channel_id, "routed_out_msat": a["routed_out_msat"],
                 "routed_in_msat": a["routed_in_msat"], "lease_fee_paid_msat": 0, "lease_fee_earned_msat": 0,
                 "pushed_out_msat": a["pushed_out_msat"], "pushed_in_msat": a["pushed_in_msat"],
                 "our_start_balance_msat": our_start, "channel_start_balance_msat": info["cap"],
                 "fees_out_msat": a["fees_out_msat"], "fees_in_msat": a["fees_in_msat"]}
            self._apy_fields(r, blocks)
            rows.append(r)
            for k in net:
                net[k] += r[k]
        n = {"account": "net", "routed_out_msat": net["routed_out_msat"], "routed_in_msat": net["routed_in_msat"],
             "lease_fee_paid_msat": 0, "lease_fee_earned_msat": 0, "pushed_out_msat": net["pushed_out_msat"],
             "pushed_in_msat": net["pushed_in_msat"], "our_start_balance_msat": net["our_start_balance_msat"],
             "channel_start_balance_msat": net["channel_start_balance_msat"], "fees_out_msat": net["fees_out_msat"],
             "fees_in_msat": net["fees_in_msat"]}
        self._apy_fields(n, net_blocks)
        rows.append(n)
        return {"channels_apy": rows}

    @staticmethod
    def _apy_fields(r: dict, blocks: int) -> None:
        cap, our = r["channel_start_balance_msat"], r["our_start_balance_msat"]
        their = cap - our
        yr = BLOCKS_PER_YEAR / blocks
        r["utilization_out"] = _pct(r["routed_out_msat"], cap)
        r["utilization_out_initial"] = _pct(r["routed_out_msat"], our)
        r["utilization_in"] = _pct(r["routed_in_msat"], cap)
        r["utilization_in_initial"] = _pct(r["routed_in_msat"], their)
        r["apy_out"] = _pct(int(r["fees_out_msat"] * yr), cap)
        r["apy_out_initial"] = _pct(int(r["fees_out_msat"] * yr), our)
        r["apy_in"] = _pct(int(r["fees_in_msat"] * yr), cap)
        r["apy_in_initial"] = _pct(int(r["fees_in_msat"] * yr), their)
        r["apy_total"] = _pct(int((r["fees_out_msat"] + r["fees_in_msat"]) * yr), cap)
        r["apy_total_initial"] = r["apy_total"]
