"""In-process simulation: the plugin runtime driven by the simulated node and a stepped virtual clock.

The very same actors and decision code as inside lightningd; only the RPC adapter (the SimNode) and the
clock differ. A run is deterministic for a scenario and seed.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from revops import config as cfgmod
from revops.runtime import Runtime, Tick
from revops import rpc as rpc_layer
from revops.sim.node import SIM_VERSION, DynamicOption, SimNode
from revops.sim.scenario import Scenario
from revops.store import Store

STEP_SECONDS = 300
WAIT_TICK = 5          # the threaded runtime's tick: how often deadlines are swept while an answer is awaited
CONTROLLERS = ("revops", "static")


@attrs.define
class Simulation:
    """A node with (or without) the plugin attached, advanced together in virtual time."""

    node: SimNode
    runtime: Runtime | None
    store: Store | None
    step_seconds: int = STEP_SECONDS
    log_lines: list[tuple[str, str]] = attrs.field(factory=list)
    rpc_waits: list[tuple[str, int]] = attrs.field(factory=list)   # (method, virtual s) of late answers

    def advance(self, seconds: int) -> None:
        end = self.node.now + seconds
        while self.node.now < end:
            t = min(self.node.now + self.step_seconds, end)
            self.node.advance_to(t)
            if self.runtime is not None:
                self.runtime.post(Tick(t))
                self.runtime.run_until_idle()

    def rpc(self, method: str, params: dict | None = None) -> Any:
        """Call one of the plugin's RPC methods as lightning-cli would; raises what the plugin answers.

        An answer that does not come at once is waited for as lightning-cli would, while virtual time
        passes in ticks of WAIT_TICK s, up to 3 x rpc_timeout_seconds; each such wait is recorded in
        `rpc_waits` (the invariants check it stays within 2 x rpc_timeout_seconds); none at all raises."""
        assert self.runtime is not None, "no plugin attached (controller 'static')"
        answer: dict[str, Any] = {}
        self.runtime.call_rpc(method, params or {}, lambda r, e: answer.update(result=r, error=e))
        self.runtime.run_until_idle()
        if not answer:
            started, limit = self.node.now, 3 * self.runtime.config.rpc_timeout_seconds
            while not answer and self.node.now - started < limit:
                self.node.advance_to(self.node.now + WAIT_TICK)
                self.runtime.post(Tick(self.node.now))
                self.runtime.run_until_idle()
            self.rpc_waits.append((method, self.node.now - started))
            if not answer:
                raise TimeoutError(f"{method}: no answer from the plugin after {self.node.now - started} s")
        if answer.get("error") is not None:
            raise answer["error"]
        return answer["result"]

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.stop("simulation finished")


def start(scenario: Scenario, *, seed: int = 0, controller: str = "revops",
          options: Mapping[str, Any] | None = None, db_path: str | None = None,
          log: Callable[[str, str], None] | None = None, step_seconds: int = STEP_SECONDS,
          node: SimNode | None = None, rpc: Any = None) -> Simulation:
    """Attach the plugin to a new node (or to `node`, e.g. to restart the plugin on a running one);
    `rpc` stands between the plugin and the node when given (revops.sim.faults.FaultyRpc)."""
    if controller not in CONTROLLERS:
        raise ValueError(f"unknown controller {controller!r}; choose one of: {', '.join(CONTROLLERS)}")
    node = node or SimNode(scenario, seed=seed)
    if controller == "static":
        return Simulation(node, None, None, step_seconds)
    lines: list[tuple[str, str]] = []
    path = db_path or os.path.join(tempfile.mkdtemp(prefix="revops-sim-"), "revenue_ops.db")
    store = Store(path)
    # as lightningd would: the options given, then what setconfig persisted in its config (node.setconfig_values)
    config = cfgmod.parse_options({**dict(options or {}), **node.setconfig_values})
    config = attrs.evolve(config, version=store.config_version())
    runtime = Runtime(rpc_factory=lambda: rpc or node, store=store, config=config,
                      clock=lambda: node.now,
                      log=log or (lambda level, text: lines.append((level, text))), threaded=False)
    node.subscribe(runtime.notify)
    node.dynamic_options = {o.name: DynamicOption(o.lightningd_type, lambda name, value: rpc_layer.apply_option(
        runtime, name, value)) for o in cfgmod.OPTIONS if o.mutable}
    runtime.start()
    return Simulation(node, runtime, store, step_seconds, lines)


PROGRESS_CHUNK = 6 * 3600      # a multiple of every step: chunking never changes the run


def run(scenario: Scenario, days: float, on_progress: Callable[[int, int], None] | None = None,
        **kwargs: Any) -> dict:
    """Run a scenario for `days` and return the P&L summary (integer msat); `on_progress(done, total)` is called
    with virtual seconds after each chunk."""
    sim = start(scenario, **kwargs)
    try:
        total = int(days * 86400)
        for done in range(0, total, PROGRESS_CHUNK):
            sim.advance(min(PROGRESS_CHUNK, total - done))
            if on_progress is not None:
                on_progress(min(done + PROGRESS_CHUNK, total), total)
        return summary(sim, days)
    finally:
        sim.close()


def summary(sim: Simulation, days: float) -> dict:
    ledger = sim.node.ledger
    fees = int(ledger.fees_earned_msat)
    cost = int(ledger.rebalance_cost_msat)
    updates = sum(sum(per_day.values()) for per_day in ledger.fee_updates.values())
    channels = []
    for ch in sim.node.open_channels():
        earned = int(ledger.fees_by_channel_msat.get(ch.scid, 0))
        channels.append({"scid": ch.scid, "name": ch.name, "peer_id": ch.peer_id, "fee_ppm": ch.fee_ppm,
                         "local_ratio": round(ch.to_us_msat / ch.capacity_msat, 4),
                         "fees_earned_msat": earned,
                         "fee_updates": sum(ledger.fee_updates.get(ch.scid, {}).values())})
    n = max(1, len(channels))
    return {
        "days": days, "channels": len(channels), "sim_version": SIM_VERSION,
        "net_profit_msat": int(ledger.net_profit_msat), "fees_earned_msat": fees, "rebalance_cost_msat": cost,
        "onchain_cost_msat": int(ledger.onchain_cost_msat), "force_closes": ledger.force_closes,
        "wtp_msat": int(ledger.wtp_msat), "wtp_share": round(fees / ledger.wtp_msat, 6) if ledger.wtp_msat else 0.0,
        "payments_wanted": ledger.payments_wanted,
        "forwards": ledger.forwards_settled,
        "failed_forwards": ledger.forwards_failed_liquidity + ledger.forwards_failed_fee,
        "failed_liquidity": ledger.forwards_failed_liquidity, "failed_fee": ledger.forwards_failed_fee,
        "priced_out": ledger.payments_priced_out,
        "fee_updates": updates, "fee_updates_per_channel_day": round(updates / n / max(days, 1e-9), 4),
        "fee_updates_not_relayed": ledger.gossip_suppressed,
        "per_channel": channels,
    }
