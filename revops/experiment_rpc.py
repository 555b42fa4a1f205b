"""revenue-experiment (start | status | stop) and revenue-report uplift: the live experiment's RPCs.

Handlers run on the actor-loop thread: they validate every parameter before anything is written, keep the
experiment in the store (one row, rewritten when it stops) and tell the coordinator, which holds the control
arm's fees from the next fee cycle on. The method is in revops/experiment.py and docs/experiment.md.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from pyln.client import RpcException

from actors.messages import ExperimentChanged
from revops import experiment as ex
from revops import finance
from revops import policy as policy_rules
from revops.model import ChannelView, Strategy
from revops.node import parse_channel
from revops.params import int_within, shown, to_float

if TYPE_CHECKING:
    from revops.runtime import Runtime

Respond = Callable[[Any, Exception | None], None]
ACTIONS = ("start", "status", "stop")
FRACTION_RANGE = (0.1, 0.9)
MAX_DAYS = 90
DEFAULT_DAYS = 28
DEFAULT_DESIGN = "switchback"
DEFAULT_PERIOD_DAYS = 3
LOOKBACK_DAYS = 30           # past earnings that define the strata
PARAMS = ("action", "fraction", "days", "design", "period_days", "seed")


def load(store: Any) -> ex.Experiment | None:
    data = store.latest_experiment()
    return None if data is None else ex.from_json(data)


def _error(field: str, message: str) -> Exception:
    from revops.rpc import InputError  # the RPC layer imports this module; import late to avoid a cycle
    return InputError(field, message)


def _fraction(params: dict) -> float:
    value = params.get("fraction", 0.5)
    lo, hi = FRACTION_RANGE
    try:
        f = to_float(value)
    except ValueError:
        f = -1.0
    if not lo <= f <= hi:
        raise _error("fraction", f"the control arm's share of the channels, a number from {lo} to {hi} "
                                 f"(got {shown(value)})")
    return f


def _int_param(params: dict, field: str, lo: int, hi: int, default: int, what: str) -> int:
    value = params.get(field, default)
    n = int_within(value, lo, hi)
    if n is None:
        raise _error(field, f"{what}, an integer from {lo} to {hi} (got {shown(value)})")
    return n


def revenue_experiment(rt: "Runtime", params: dict, respond: Respond) -> None:
    action = params.get("action", "status")
    if action not in ACTIONS:
        raise _error("action", f"must be one of: {', '.join(ACTIONS)} (got {shown(action)})")
    if action != "start":
        extra = sorted(set(params) - {"action"})
        if extra:
            raise _error(extra[0], f"only 'revenue-experiment start' uses it; give {action} nothing but the action")
    exp = load(rt.store)
    if action == "status":
        respond(_status(exp, rt.now, detail=True), None)
    elif action == "stop":
        _stop(rt, exp, respond)
    else:
        _start(rt, params, exp, respond)


def _status(exp: ex.Experiment | None, now: int, detail: bool = False) -> dict:
    if exp is None:
        return {"state": "none", "message": "no experiment was ever started: revenue-experiment start"}
    out = ex.summary(exp, now)
    if detail:
        out["arms"] = {scid: {"arm_now": exp.arm(scid, now), "first_arm": u.arm, "control_ppm": u.control_ppm,
                              "capacity_msat": u.capacity_msat, "stratum": u.stratum}
                       for scid, u in sorted(exp.units.items())}
    return out


def status_line(rt: "Runtime") -> dict | None:
    """What revenue-status shows: the latest experiment's summary (None when there never was one)."""
    exp = load(rt.store)
    return None if exp is None else _status(exp, rt.now)


def _stop(rt: "Runtime", exp: ex.Experiment | None, respond: Respond) -> None:
    if exp is None or not exp.active(rt.now):
        raise RpcException("no experiment is running (revenue-experiment status shows the last one)", -32000)
    stopped = attrs.evolve(exp, stopped_at=rt.now, stop_reason="stopped by the operator")
    rt.store.save_experiment(stopped.id, ex.to_json(stopped), rt.now)
    rt.tell(ExperimentChanged(stopped))
    rt.log("info", f"experiment {exp.id} stopped by the operator; every channel is managed again")
    respond({**_status(stopped, rt.now), "message": "stopped: every channel is managed as usual again from the "
             "next fee cycle; revenue-report uplift still reports the complete days it ran"}, None)


def _start(rt: "Runtime", params: dict, exp: ex.Experiment | None, respond: Respond) -> None:
    fraction = _fraction(params)
    days = _int_param(params, "days", 7, min(MAX_DAYS, rt.config.forward_retention_days), DEFAULT_DAYS,
                      "the experiment's length in days (at most forward-retention-days, so no forward it counts "
                      "is pruned)")
    design = params.get("design", DEFAULT_DESIGN)
    if design not in ex.DESIGNS:
        raise _error("design", f"must be one of: {', '.join(ex.DESIGNS)} (got {shown(design)})")
    if design == "split":
        if "period_days" in params:
            raise _error("period_days", "only design=switchback switches arms; design=split has no period")
        period = 0
    else:
        period = _int_param(params, "period_days", 1, max(1, days // 2), min(DEFAULT_PERIOD_DAYS, days // 2),
                            "how many days a channel stays in one arm before switching (at most half of days)")
    seed = _int_param(params, "seed", 0, 2 ** 31 - 1, -1, "the assignment's random seed (default: the "
                      "experiment's number)") if "seed" in params else None
    if not rt.started:
        raise RpcException("cl-revenue-ops is still loading channels", -32000)
    if exp is not None and exp.active(rt.now):
        raise RpcException(f"experiment {exp.id} is running until {exp.ends_at}; revenue-experiment stop "
                           "ends it first", -32000)

    def chosen(answers: list[tuple[Any, dict | None]]) -> None:
        result, error = answers[0]
        if error is not None:
            respond(None, RpcException(f"listpeerchannels failed: {error['message']}", -32000))
            return
        try:
            respond(_begin(rt, result, fraction, days, design, period, seed), None)
        except RpcException as e:
            respond(None, e)
    rt.run_io([("listpeerchannels", {})], chosen)


def _begin(rt: "Runtime", channels: dict, fraction: float, days: int, design: str, period: int,
           seed: int | None) -> dict:
    """Assign the channels whose fees we manage (a pinned or passive channel is in neither arm), save, tell."""
    from revops.rpc import load_policies  # the RPC layer imports this module; import late to avoid a cycle
    now = rt.now
    rows = {(p.peer_id, p.channel_id): p for p in load_policies(rt.store)}
    views = [ChannelView(**parse_channel(c)) for c in channels.get("channels", [])]
    managed = [v for v in views if v.is_normal and v.scid and policy_rules.effective_policy(
        rows.get((v.peer_id, None)), rows.get((v.peer_id, v.scid)), now, peer_id=v.peer_id).strategy
        is Strategy.DYNAMIC]
    fees, spend = rt.store.daily_fees_and_spend(now - LOOKBACK_DAYS * ex.DAY, now)
    past = {scid: sum(d.values()) for scid, d in ex.daily_net(fees, spend).items()}
    candidates = [ex.Candidate(v.scid, v.capacity_msat, past.get(v.scid, 0), v.fee_ppm) for v in managed]
    exp_id = rt.store.new_experiment_id()
    seed = exp_id if seed is None else seed
    units = ex.assign(candidates, fraction, design, seed)
    arms = [u.arm for u in units.values()]
    if min(arms.count(ex.CONTROL), arms.count(ex.MANAGED)) < 2:
        raise _error("fraction", f"{len(candidates)} channels with a dynamic fee policy give "
                                 f"{arms.count(ex.CONTROL)} control and {arms.count(ex.MANAGED)} managed; each arm "
                                 "needs at least 2 (choose a fraction nearer 0.5, or more channels)")
    exp = ex.Experiment(id=exp_id, started_at=now, days=days, fraction=fraction, design=design,
                        period_days=period, seed=seed, units=units)
    rt.store.save_experiment(exp_id, ex.to_json(exp), now)
    rt.tell(ExperimentChanged(exp))
    rt.log("info", f"experiment {exp_id} started: {design}, {arms.count(ex.CONTROL)} of {len(arms)} channels in "
                   f"the control arm, {days} days")
    return {**_status(exp, now, detail=True),
            "message": f"{arms.count(ex.CONTROL)} of {len(arms)} channels keep their fee (control) "
                       + (f"and switch arms every {period} days " if design == "switchback" else "")
                       + f"for {days} days; revenue-report uplift gives the effect so far"}


def uplift_report(rt: "Runtime") -> dict:
    """revenue-report uplift: the effect on net earnings per BTC of capacity, complete days only."""
    exp = load(rt.store)
    if exp is None:
        raise policy_rules.PolicyError("report_type", "uplift needs an experiment: revenue-experiment start")
    complete = ex.complete_days(exp, rt.now)
    end = exp.started_at + complete * ex.DAY
    fees, spend = rt.store.daily_fees_and_spend(exp.started_at, end)
    cds = ex.channel_days(exp, rt.now, ex.daily_net(fees, spend), rt.store.closed_channels())
    u = ex.uplift(cds, complete, seed=exp.seed)
    pruned = finance.pruned_before(rt.store) > exp.started_at
    return {"experiment": _status(exp, rt.now), "unit": "sat per day per BTC of capacity",
            "counted_until": end, **attrs.asdict(u),
            "relative": None if not u.control_rate or u.managed_rate is None
            else round(u.managed_rate / u.control_rate - 1, 4),
            "warning": "forwards of the experiment's days were pruned (forward-retention-days): the figures "
                       "undercount" if pruned else None,
            "method": "each arm's net earnings (fees out minus rebalance spend in) over its capacity x days; "
                      "95 % Student t interval on a bootstrap over channels within strata (docs/experiment.md)"}


# (name, params, doc, handler): rpc.py wraps these in MethodSpec
METHODS = (
    ("revenue-experiment", PARAMS,
     "Live experiment: start [fraction] [days] [design] [period_days] [seed] | status | stop. A stratified random "
     "share of the channels keeps its fee (control); revenue-report uplift gives the effect.", revenue_experiment),
)
