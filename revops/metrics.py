"""Prometheus exporter: per-actor and node series, served on 127.0.0.1 by default.

Why a snapshot: the HTTP thread must never touch thespian or SQLite (only the actor-loop thread may).
The loop thread builds a `Snapshot` every few ticks from a status fan-out and a few store reads, and
swaps it in; a scrape only renders the latest snapshot. Series are rebuilt from it on every scrape,
so a channel that left CHANNELD_NORMAL (its actor retired) simply has no series any more.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric,
                                     SummaryMetricFamily)

from actors.messages import StatusRequest
from revops import finance, ladder

if TYPE_CHECKING:
    from revops.runtime import Runtime

CHANNEL_LABELS = ["channel", "peer"]


@attrs.frozen
class Snapshot:
    """Everything one scrape shows, read on the loop thread."""
    at: int
    channels: tuple[dict, ...]                        # revenue-status channel entries
    decisions: dict[tuple[str, str], int]             # (scid, branch) -> decisions recorded
    last_30d: finance.Window                          # per-channel fees and rebalance cost (plugin's record)
    node: dict[str, Any]                              # see build_snapshot
    rpc: dict[str, tuple[int, int, float]]            # method -> (calls, errors, seconds)


def build_snapshot(rt: "Runtime", status: dict) -> Snapshot:
    budget = rt.ledger.budget_state(rt.now, rt.config)
    totals = finance.lifetime_totals(rt.store)
    coord = status.get("coordinator") or {}
    node = {
        "forwards": totals.forwards_by_status, "fees_earned_msat": totals.fees_earned_msat,
        "rebalance_spent_msat": totals.rebalance_spent_msat, "rebalance_spent_24h_msat": budget.spent_24h_msat,
        "rebalance_reserved_msat": budget.reserved_msat, "rebalance_budget_msat": budget.daily_budget_msat,
        "fee_updates": {"applied": rt.counters["fee_changes_applied"], "failed": rt.counters["fee_changes_failed"],
                        "held": rt.counters["fee_changes_held"]},
        "actor_restarts": rt.counters["actor_restarts"], "queue_depth": rt.inbox.qsize(),
        "loop_lag_seconds": rt.loop_lag_seconds, "channel_actors": len(status.get("channels", [])),
        "waits_expired": dict(rt.waits_expired),
        "fee_cycle_age_seconds": rt.now - (coord.get("last_fee_cycle_at") or rt.started_at),
        "rebalance_cycle_age_seconds": rt.now - (coord.get("last_rebalance_done_at") or rt.started_at),
        "fee_interval_seconds": rt.config.fee_interval, "rebalance_interval_seconds": rt.config.rebalance_interval,
    }
    open_scids = {c["scid"] for c in status.get("channels", [])}
    decisions = {k: n for k, n in finance.decisions_by_branch(rt.store).items() if k[0] in open_scids}
    last_30d = finance.window(rt.store, rt.now - 30 * finance.DAY, rt.now + 1)
    return Snapshot(rt.now, tuple(status.get("channels", [])), decisions, last_30d, node,
                    {m: (s.calls, s.errors, s.seconds) for m, s in rt.rpc_stats.items()})


def families(snap: Snapshot) -> Iterator[Metric]:
    """The exposition of one snapshot (pure: tested without a server)."""
    yield from _channel_families(snap)
    n = snap.node
    forwards = CounterMetricFamily("revops_forwards", "Final forwards stored, by status", labels=["status"])
    for status, count in sorted(n["forwards"].items()):
        forwards.add_metric([status], count)
    yield forwards
    yield CounterMetricFamily("revops_fees_earned_msat", "Routing fees earned (settled forwards), msat",
                              value=n["fees_earned_msat"])
    yield CounterMetricFamily("revops_rebalance_spent_msat", "Rebalance fees paid (settled sling jobs), msat",
                              value=n["rebalance_spent_msat"])
    yield GaugeMetricFamily("revops_rebalance_spent_24h_msat", "Rebalance fees paid in the last 24 h, msat",
                            value=n["rebalance_spent_24h_msat"])
    yield GaugeMetricFamily("revops_rebalance_reserved_msat", "Budget reserved by running rebalances, msat",
                            value=n["rebalance_reserved_msat"])
    yield GaugeMetricFamily("revops_rebalance_budget_msat", "Daily rebalance budget, msat",
                            value=n["rebalance_budget_msat"])
    updates = CounterMetricFamily("revops_fee_updates", "Fee decisions since start, by outcome "
                                  "(held = gossip update held back by hysteresis or the daily budget)",
                                  labels=["outcome"])
    for outcome, count in sorted(n["fee_updates"].items()):
        updates.add_metric([outcome], count)
    yield updates
    yield CounterMetricFamily("revops_actor_restarts", "Actor crashes restored from a checkpoint since start",
                              value=n["actor_restarts"])
    yield GaugeMetricFamily("revops_channel_actors", "Live channel actors", value=n["channel_actors"])
    yield GaugeMetricFamily("revops_actor_loop_queue_depth", "Messages waiting in the actor-loop inbox",
                            value=n["queue_depth"])
    yield GaugeMetricFamily("revops_actor_loop_lag_seconds", "Time the actor loop spent on its last message",
                            value=n["loop_lag_seconds"])
    yield GaugeMetricFamily("revops_fee_cycle_age_seconds", "Time since the last fee cycle reached its decisions "
                            "(since start-up when none has)", value=n["fee_cycle_age_seconds"])
    yield GaugeMetricFamily("revops_rebalance_cycle_age_seconds", "Time since the last rebalance cycle reached its "
                            "decision (since start-up when none has)", value=n["rebalance_cycle_age_seconds"])
    yield GaugeMetricFamily("revops_fee_interval_seconds", "Configured fee_interval", value=n["fee_interval_seconds"])
    yield GaugeMetricFamily("revops_rebalance_interval_seconds", "Configured rebalance_interval",
                            value=n["rebalance_interval_seconds"])
    expired = CounterMetricFamily("revops_waits_expired", "Waits (fan-outs, cycles, RPC answers) that reached their "
                                  "deadline and were answered with what arrived", labels=["what"])
    for what, count in sorted(n["waits_expired"].items()):
        expired.add_metric([what], count)
    yield expired
    latency = SummaryMetricFamily("revops_lightningd_rpc_seconds", "lightningd RPC calls made by the io pool",
                                  labels=["method"])
    errors = CounterMetricFamily("revops_lightningd_rpc_errors", "lightningd RPC calls that failed",
                                 labels=["method"])
    for method, (calls, errs, seconds) in sorted(snap.rpc.items()):
        latency.add_metric([method], calls, seconds)
        errors.add_metric([method], errs)
    yield latency
    yield errors
    yield GaugeMetricFamily("revops_snapshot_timestamp_seconds", "Node time of the data shown", value=snap.at)


def _channel_families(snap: Snapshot) -> Iterator[Metric]:
    def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=CHANNEL_LABELS + (extra or []))

    fee = gauge("revops_channel_fee_ppm", "Published proportional fee, ppm")
    rate = gauge("revops_channel_revenue_rate_msat_per_hour", "Fees earned in the current fee window, msat/h")
    flow = gauge("revops_channel_flow_class", "Flow class (1 for the channel's current class)", ["class"])
    ratio = gauge("revops_channel_local_balance_ratio", "Local balance / capacity")
    centre = gauge("revops_channel_search_centre_ppm", "Centre of the revenue search's fee ladder (before its "
                   "first decision: the fee it starts from), ppm")
    dwell = gauge("revops_channel_search_dwell_seconds", "How long the search holds a level (grows on silence), s")
    failures = gauge("revops_channel_rebalance_failures", "Consecutive failed rebalances into the channel")
    fees_30d = gauge("revops_channel_fees_30d_msat", "Fees earned as outgoing channel, last 30 days, msat")
    cost_30d = gauge("revops_channel_rebalance_cost_30d_msat", "Rebalance fees paid to refill the channel, "
                     "last 30 days, msat (sling's whole-sat counters)")
    handled = CounterMetricFamily("revops_channel_messages_handled", "Messages the channel actor handled",
                                  labels=CHANNEL_LABELS)
    restarts = CounterMetricFamily("revops_channel_restarts", "Crashes of the channel actor restored from its "
                                   "checkpoint", labels=CHANNEL_LABELS)
    decisions = CounterMetricFamily("revops_channel_decisions", "Fee decisions recorded, by branch",
                                    labels=CHANNEL_LABELS + ["branch"])
    # the channel a short channel id names: a splice gives it a new one and keeps its channel_id, so joining
    # on `channel` (group_left(channel_id)) follows one channel across splices; one series per channel and
    # a new one only when it splices, while the other series keep their labels (docs/operations.md)
    info = InfoMetricFamily("revops_channel", "The channel_id of the channel a short channel id names (a splice "
                            "changes the short channel id, not the channel_id)", labels=CHANNEL_LABELS)
    for c in snap.channels:
        labels = [c["scid"], c["peer_id"]]
        if c.get("channel_id"):
            info.add_metric(labels, {"channel_id": c["channel_id"]})
        hill = c["hill_climb"]
        hours = max(snap.at - int(hill["window_start"]), 0) / 3600
        fee.add_metric(labels, c["fee_ppm"])
        rate.add_metric(labels, c["window_fees_msat"] / hours if hours else 0.0)
        flow.add_metric(labels + [c["flow_class"]], 1)
        ratio.add_metric(labels, c["local_ratio"])
        search = hill["ladder"]
        centre.add_metric(labels, hill["climb_fee_ppm"] if search["centre"] is None else ladder.fee_of(search["centre"]))
        dwell.add_metric(labels, search["dwell_hours"] * 3600)
        failures.add_metric(labels, c["rebalance_failures"])
        flow30 = snap.last_30d.channels.get(c["scid"])
        fees_30d.add_metric(labels, flow30.fees_msat if flow30 else 0)
        cost_30d.add_metric(labels, snap.last_30d.rebalance_cost_by_channel.get(c["scid"], 0))
        handled.add_metric(labels, c["messages_handled"])
        restarts.add_metric(labels, c["restarts"])
    peers = {c["scid"]: c["peer_id"] for c in snap.channels}
    for (scid, branch), count in sorted(snap.decisions.items()):
        decisions.add_metric([scid, peers[scid], branch], count)
    yield from (info, fee, rate, flow, ratio, centre, dwell, failures, fees_30d, cost_30d, handled, restarts,
                decisions)


class Exporter:
    """The /metrics HTTP server and the snapshot it shows; refreshed from the loop thread."""

    def __init__(self, address: str, port: int, refresh_seconds: float):
        self.address, self.port, self.refresh_seconds = address, port, refresh_seconds
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._server: Any = None
        self._refreshing = False
        self._last_refresh = float("-inf")

    def start(self) -> None:
        """Bind the socket (raises OSError if the address or port cannot be used)."""
        self.registry.register(self)
        self._server, _thread = start_http_server(self.port, self.address, registry=self.registry)
        self.port = self._server.server_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap = self._snapshot
        if snap is not None:
            yield from families(snap)

    def publish(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshot = snap

    def on_tick(self, rt: "Runtime") -> None:
        """Loop thread: ask the actors for their state at most every refresh_seconds, one request at a time."""
        if self._refreshing or time.monotonic() - self._last_refresh < self.refresh_seconds:
            return
        self._refreshing = True

        def done(result: Any, error: Exception | None) -> None:
            self._refreshing = False
            self._last_refresh = time.monotonic()
            if error is None:
                self.publish(build_snapshot(rt, result))
            else:
                rt.log("unusual", f"metrics refresh failed: {error}")

        rt.tell(StatusRequest(rt.expect_reply(done, "metrics refresh"), None))
