"""`revenue-backtest`: the backtest of revops/backtest.py on this node's stored history.

Parameters are validated first (a PolicyError names the field). lightningd is read through the io pool
(channels now, and the gossip anchor of every peer: `listchannels destination=peer`), the history is read
from the store on the loop thread, and the replay runs in a child process started from the io pool, so
neither the loop nor lightningd waits on it; a child past its budget is killed and the answer says so.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyln.client import RpcException

from revops import backtest as bt
from revops import policy as policy_rules
from revops.params import shown, to_int

if TYPE_CHECKING:
    from revops.runtime import Runtime

Respond = Callable[[Any, Exception | None], None]
DAYS_DEFAULT = 30
DAYS_MAX = 365
REPLAY_DAYS_MAX = 60


def _int_param(params: dict, name: str, default: int | None, lo: int, hi: int) -> int | None:
    if name not in params or params[name] is None:
        return default
    value = params[name]
    try:
        n = to_int(value)
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        raise policy_rules.PolicyError(name, f"{name} must be an integer from {lo} to {hi} (got {shown(value)})")
    return n


def revenue_backtest(rt: "Runtime", params: dict, respond: Respond) -> None:
    days = _int_param(params, "days", DAYS_DEFAULT, 1, DAYS_MAX)
    seeds = _int_param(params, "seeds", bt.SEEDS_DEFAULT, 1, bt.SEEDS_MAX)
    replay = _int_param(params, "replay_days", None, 1, REPLAY_DAYS_MAX)

    def fail(what: str, error: dict) -> None:
        respond(None, RpcException(f"{what} failed: {error['message']}", -32000))

    def surveyed(chans: dict, peers: list[str], answers: list[tuple[Any, dict | None]]) -> None:
        surveys = {p: result for p, (result, error) in zip(peers, answers) if error is None}
        channels = bt.channels_from(chans, surveys, rt.node_id)
        history = bt.history_from_store(rt.store, channels, rt.now, days)
        why = bt.refusal(history)
        if why is not None:        # answered at once: no worker for a history too short to use
            respond({"status": "refused", "reason": why, "history": bt.basis(history)}, None)
            return
        rt.run_job(lambda: bt.run_worker(history, seeds, replay, bt.BUDGET_S),
                   lambda result, error: respond(result, None if error is None else RpcException(
                       f"backtest failed: {type(error).__name__}: {error}", -32000)))

    def listed(answers: list[tuple[Any, dict | None]]) -> None:
        chans, error = answers[0]
        if error is not None:
            fail("listpeerchannels", error)
            return
        peers = sorted({c["peer_id"] for c in chans.get("channels", [])})
        rt.run_io([("listchannels", {"destination": p}) for p in peers], lambda a: surveyed(chans, peers, a))

    rt.run_io([("listpeerchannels", {})], listed)


# (name, params, doc, handler): rpc.py wraps these in MethodSpec
METHODS: tuple[tuple[str, tuple[str, ...], str, Callable[["Runtime", dict, Respond], None]], ...] = (
    ("revenue-backtest", ("days", "seeds", "replay_days"),
     "Replay this node's stored history (default 30 days) on the simulated node: current fees, ours and the best "
     "static fee per channel side by side, mean and 95 % interval over demand seeds (default 5). docs/backtest.md.",
     revenue_backtest),
)
