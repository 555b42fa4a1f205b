"""The plugin's JSON-RPC methods: parameter lists, validation, and what each one does.

Handlers run on the actor-loop thread (they may use the Store and tell actors). Bad input raises
`InputError`, which becomes a JSON-RPC error (-32602) naming the parameter and what is allowed;
validation happens before anything is written, so nothing is ever half-applied.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from pyln.client import RpcException

from actors.messages import (ConfigChanged, HiveMembership, ManualFee, ManualRebalance, PoliciesChanged,
                             RebalanceDebugRequest, StatusRequest)
from revops import config as cfgmod
from revops import hive
from revops import policy as policy_rules
from revops import backtest_rpc, experiment_rpc, reports_rpc
from revops.model import Policy, RebalanceMode, Strategy
from revops.params import BOOL_TEXT, MAX_SHOWN, int_within, shown, to_bool

if TYPE_CHECKING:
    from revops.runtime import Runtime, RpcCall

VERSION = "2.0.0"
Respond = Callable[[Any, Exception | None], None]


class InputError(RpcException):
    """Bad input: names the parameter and what is allowed (JSON-RPC 'Invalid params')."""

    def __init__(self, field: str, message: str):
        field = str(field)[:MAX_SHOWN]
        super().__init__(f"Invalid parameter '{field}': {message}", -32602)
        self.field = field


@attrs.frozen
class MethodSpec:
    name: str
    params: tuple[str, ...]
    doc: str
    handler: Callable[["Runtime", dict, Respond], None]


def dispatch(rt: "Runtime", call: "RpcCall") -> None:
    spec = BY_NAME[call.method]
    unknown = sorted(set(call.params) - set(spec.params))
    if unknown:
        raise unknown_parameter(spec, unknown[0])
    try:
        spec.handler(rt, call.params, call.respond)
    except (cfgmod.ConfigError, policy_rules.PolicyError) as e:
        raise InputError(e.field, str(e)) from e


def unknown_parameter(spec: MethodSpec, name: str) -> InputError:
    return InputError(name, f"unknown parameter; {spec.name} takes: {', '.join(spec.params) or 'none'}")


# --- revenue-status --------------------------------------------------------------------------
def revenue_status(rt: "Runtime", params: dict, respond: Respond) -> None:
    scid = _opt_scid(rt, params, "channel_id")

    def finish(result: Any, error: Exception | None) -> None:
        if error is None and scid is not None and result is not None and not result["channels"]:
            error = _no_actor(scid)
        if error is not None:
            respond(None, error)
            return
        respond({
            "status": "running" if rt.started else "starting",
            "version": VERSION,
            "node_id": rt.node_id,
            "config": {"fee_range_ppm": [rt.config.min_fee_ppm, rt.config.max_fee_ppm],
                       "target_flow_sats": rt.config.target_flow,
                       "rebalance_min_profit_sats": rt.config.rebalance_min_profit,
                       "dry_run": rt.config.dry_run, "version": rt.config.version},
            "health": rt.health,
            "clboss": rt.clboss_report,
            "counters": rt.counters,
            "experiment": experiment_rpc.status_line(rt),
            "actor_loop": {"queue_depth": rt.inbox.qsize(), "last_message_seconds": round(rt.loop_lag_seconds, 6)},
            **(result or {"channels": [], "coordinator": None}),
        }, None)

    if not rt.started:
        finish(None, None)
        return
    rt.tell(StatusRequest(rt.expect_reply(finish, "revenue-status"), scid))


def _no_actor(scid: str) -> InputError:
    return InputError("channel_id", f"no channel actor for {scid}; revenue-status lists the channels")


# --- revenue-config --------------------------------------------------------------------------
CONFIG_ACTIONS = ("get", "set", "reset", "list-mutable")


CONFIG_ACTION_PARAMS = {"get": ("key",), "set": ("key", "value"), "reset": ("key",), "list-mutable": ()}


def revenue_config(rt: "Runtime", params: dict, respond: Respond) -> None:
    action = _choice(params, "action", CONFIG_ACTIONS)
    _only(params, action, CONFIG_ACTION_PARAMS[action])
    if action == "list-mutable":
        respond({"mutable_keys": list(cfgmod.MUTABLE_KEYS), "count": len(cfgmod.MUTABLE_KEYS)}, None)
        return
    public = cfgmod.to_public_dict(rt.config)
    if action == "get" and params.get("key") is None:
        respond({"config": public, "version": rt.config.version}, None)
        return
    if params.get("key") is None:
        raise InputError("key", f"required for {action}: a config key (revenue-config list-mutable lists them)")
    key = _config_key(params["key"])
    if action == "get":
        respond({"key": key, "value": public[key], "version": rt.config.version}, None)
        return
    if key not in cfgmod.MUTABLE_KEYS:
        raise InputError("key", cfgmod.immutable_message(cfgmod.option_for(key)))
    if action == "set" and "value" not in params:
        raise InputError("value", f"required for set; allowed: {cfgmod.option_for(key).allowed}")
    # checked here first (same function as on_change) so a bad value is refused without a round trip
    new = (cfgmod.with_override(rt.config, key, params["value"]) if action == "set"
           else cfgmod.with_default(rt.config, key))
    opt = cfgmod.option_for(key)

    def applied(answers: list[tuple[Any, dict | None]]) -> None:
        _, error = answers[0]
        if error is not None:
            respond(None, RpcException(f"setconfig {opt.name}: {error['message']}", error.get("code") or -32000))
            return
        respond({"status": "success", "action": action, "key": key, "old_value": public[key],
                 "new_value": getattr(rt.config, key), "version": rt.config.version,
                 "option": opt.name}, None)
    # through lightningd, so its config file holds the value (persisted once) and `listconfigs` shows it;
    # lightningd hands it back to App.on_option_change, which applies it (apply_option)
    rt.run_io([("setconfig", {"config": opt.name, "val": _wire(getattr(new, key), opt)})], applied)


def _wire(value: Any, opt: cfgmod.Option) -> Any:
    """The value as setconfig takes it for the option's lightningd type (floats travel as strings)."""
    return value if opt.lightningd_type in ("int", "bool") else str(value)


def apply_option(rt: "Runtime", name: str, raw: Any) -> Any:
    """Validate and apply one option value from lightningd's setconfig: the one place a running plugin's
    configuration changes. Raises InputError (nothing changed) when type, range or a cross-field rule fails."""
    try:
        new = cfgmod.with_override(rt.config, name, raw)
    except cfgmod.ConfigError as e:
        raise InputError(e.field, str(e)) from e
    rt.config = attrs.evolve(new, version=rt.store.note_config_change(rt.now))
    rt.tell(ConfigChanged(rt.config))
    return rt.config


def _config_key(key: Any) -> str:
    """The config field for a key given as field or option name; unknown keys get close suggestions."""
    try:
        return cfgmod.option_for(key).field
    except cfgmod.ConfigError as e:
        raise InputError("key", e.message) from None


def _only(params: dict, action: str, used: tuple[str, ...]) -> None:
    """Refuse a parameter the action does not use (it would otherwise be silently ignored)."""
    unused = sorted(set(params) - {"action", *used})
    if unused:
        raise InputError(unused[0], f"not used by action {action}, which takes: {', '.join(used) or 'no other parameter'}")


# --- revenue-policy --------------------------------------------------------------------------
def load_policies(store: Any) -> tuple[Policy, ...]:
    return tuple(_policy_from_row(r) for r in store.load_policies())


def _policy_from_row(r: dict) -> Policy:
    return Policy(peer_id=r["peer_id"], strategy=Strategy(r["strategy"]),
                  rebalance_mode=RebalanceMode(r["rebalance_mode"]), fee_ppm_target=r["fee_ppm_target"],
                  fee_min_ppm=r["fee_min_ppm"], fee_max_ppm=r["fee_max_ppm"], tags=tuple(r["tags"]),
                  channel_id=r["channel_id"] or None, expires_at=r["expires_at"], updated_at=r["updated_at"])


def revenue_policy(rt: "Runtime", params: dict, respond: Respond) -> None:
    cmd = policy_rules.parse_policy_request(params, rt.now)
    if cmd.channel_id is not None:   # a short channel id the channel had before a splice names it still
        cmd = attrs.evolve(cmd, channel_id=rt.store.canonical(cmd.channel_id))
    if cmd.action in ROW_CREATING:
        _known_peer(rt, cmd.peer_id)
        if cmd.channel_id is not None:
            _channel_of(rt, cmd.channel_id, "channel_id", cmd.peer_id)
    respond(_apply_policy_commands(rt, [cmd]), None)


ROW_CREATING = ("set", "tag", "untag")


def _directory(rt: "Runtime") -> tuple[dict[str, str], frozenset[str]] | None:
    """Channels (scid → peer) and peers lightningd lists; before start-up completes, the stored actors';
    None when nothing is known yet (a new database whose first channel list has not been read)."""
    if rt.started:
        return rt.directory.channels, rt.directory.peers
    stored = {r[0]: r[1] for r in rt.store.db.execute("SELECT scid, peer_id FROM channel_actors")}
    return (stored, frozenset(stored.values())) if stored else None


def _known_peer(rt: "Runtime", peer_id: str) -> None:
    """Refuse, by name, a well-formed node id that is not a peer of this node (no row is ever written).
    Until a channel list was ever read it cannot be checked: accepted, and logged (an outage at first start
    must not keep the operator from setting policies)."""
    directory = _directory(rt)
    if directory is None:
        rt.log("unusual", f"peer_id {peer_id} accepted unchecked: no channel list read yet")
    elif peer_id not in directory[1]:
        raise InputError("peer_id", f"{peer_id} is not a peer of this node (no channel with it in "
                                    "listpeerchannels)")


def _channel_of(rt: "Runtime", scid: str, field: str, peer_id: str | None = None) -> None:
    """Refuse, by name, a channel we do not have, or one of another peer than `peer_id`."""
    directory = _directory(rt)
    if directory is None:
        rt.log("unusual", f"{field} {scid} accepted unchecked: no channel list read yet")
        return
    owner = directory[0].get(scid)
    if owner is None:
        raise InputError(field, f"{scid} is not a channel of this node (see listpeerchannels)")
    if peer_id is not None and owner != peer_id:
        raise InputError(field, f"{scid} is a channel of peer {owner}, not of {peer_id}")


def _apply_policy_commands(rt: "Runtime", cmds: list[policy_rules.PolicyCommand]) -> dict:
    """Apply validated commands as one: each sees the previous ones' rows; one transaction; last reply."""
    policies = {(p.peer_id, p.channel_id): p for p in load_policies(rt.store)}
    before = dict(policies)
    changed: dict[PolicyKey, Policy | None] = {}
    result: dict = {}
    for cmd in cmds:
        result, rows = _policy_action(cmd, policies)
        for key, pol in rows.items():
            changed[key] = pol
            if pol is None:
                policies.pop(key, None)
            else:
                policies[key] = pol
    if changed:
        with rt.store.tx():
            for (peer_id, channel_id), pol in changed.items():
                if pol is None:
                    rt.store.delete_policy(peer_id, channel_id)
                else:
                    rt.store.save_policy(policy_rules.policy_to_dict(pol))
        rt.tell(PoliciesChanged(load_policies(rt.store)))
        for change in hive.membership_changes(before, {**before, **changed}):
            rt.tell(HiveMembership(change.peer_id, change.member, change.reason, rt.now))
    return result


PolicyKey = tuple[str, str | None]


def _policy_action(cmd: policy_rules.PolicyCommand,
                   policies: dict[PolicyKey, Policy]) -> tuple[dict, dict[PolicyKey, Policy | None]]:
    """What a validated revenue-policy command answers and which rows it writes (None = delete)."""
    as_dict = policy_rules.policy_to_dict
    key = (cmd.peer_id, cmd.channel_id)
    if cmd.action == "list":
        rows = [as_dict(p) for p in policies.values()]
        return {"policies": rows, "count": len(rows)}, {}
    if cmd.action == "find":
        peers = sorted({p.peer_id for p in policies.values() if cmd.tag in p.tags})
        return {"peers": peers, "count": len(peers), "tag": cmd.tag}, {}
    if cmd.action == "get":
        effective = policy_rules.effective_policy(policies.get((cmd.peer_id, None)), policies.get(key), cmd.now,
                                                  peer_id=cmd.peer_id)
        return {"policy": as_dict(effective), "stored": key in policies}, {}
    if cmd.action == "delete":
        if key not in policies:
            return {"status": "noop", "message": "No policy existed for this peer"}, {}
        return {"status": "success", "peer_id": cmd.peer_id, "channel_id": cmd.channel_id,
                "message": f"Policy deleted for {cmd.peer_id[:12]}..."}, {key: None}
    base = policies.get((cmd.peer_id, None)) if cmd.channel_id is not None else None
    merged = policy_rules.merge(policies.get(key), cmd, base)
    if cmd.action in ("tag", "untag"):
        return {"status": "success", "peer_id": cmd.peer_id, "tags": list(merged.tags)}, {key: merged}
    return {"status": "success", "policy": as_dict(merged),
            "message": f"Policy updated for peer {cmd.peer_id[:12]}..."}, {key: merged}


# --- revenue-fee-debug / revenue-analyze ------------------------------------------------------
def revenue_fee_debug(rt: "Runtime", params: dict, respond: Respond) -> None:
    scid = _opt_scid(rt, params, "channel_id")
    limit = _int(params, "limit", 1, 1000, default=20)
    respond({"channel_id": scid, "dry_run": rt.config.dry_run,
             "decisions": rt.store.decisions(scid, limit)}, None)


def revenue_analyze(rt: "Runtime", params: dict, respond: Respond) -> None:
    scid = _opt_scid(rt, params, "channel_id")

    def finish(result: Any, error: Exception | None) -> None:
        if error is not None:
            respond(None, error)
            return
        channels = result["channels"]
        if scid is not None and not channels:
            respond(None, _no_actor(scid))
            return
        keys = ("scid", "peer_id", "flow_class", "flow_ratio", "local_ratio", "capacity_msat", "local_msat",
                "fee_ppm", "window_fees_msat", "window_forwards", "flow", "economics")
        rows = [{k: c[k] for k in keys} for c in channels]
        respond({"channel": rows[0]} if scid else {"channels": rows, "count": len(rows)}, None)

    if not rt.started:
        respond(None, RpcException("cl-revenue-ops is still loading channels", -32000))
        return
    rt.tell(StatusRequest(rt.expect_reply(finish, "revenue-analyze"), scid))


# --- revenue-rebalance / revenue-rebalance-debug ---------------------------------------------
REBALANCE_HISTORY = 100     # rebalances revenue-rebalance-debug lists, newest first
def revenue_rebalance(rt: "Runtime", params: dict, respond: Respond) -> None:
    """Start one sling job now. Answers `initiated` only once sling-once started it."""
    for field in ("from_channel", "to_channel", "amount_sats"):
        if params.get(field) is None:
            raise InputError(field, "required")
    src, dst = _opt_scid(rt, params, "from_channel"), _opt_scid(rt, params, "to_channel")
    if src == dst:
        raise InputError("to_channel", "must differ from from_channel")
    amount = _int(params, "amount_sats", 1, 21 * 10**14, default=0)
    max_fee = None if params.get("max_fee_sats") is None else _int(params, "max_fee_sats", 1, amount, default=0)
    force = _bool(params, "force")
    _require_started(rt)
    _channel_of(rt, src, "from_channel")
    _channel_of(rt, dst, "to_channel")
    rt.tell(ManualRebalance(rt.expect_reply(respond, "revenue-rebalance"), src, dst, amount, max_fee, force, rt.now))


def revenue_rebalance_debug(rt: "Runtime", params: dict, respond: Respond) -> None:
    def finish(result: Any, error: Exception | None) -> None:
        if error is not None:
            respond(None, error)
            return
        now = rt.now
        budget = rt.ledger.budget_state(now, rt.config)
        respond({**result, "ledger": {
            "daily_budget_msat": budget.daily_budget_msat, "spent_24h_msat": budget.spent_24h_msat,
            "reserved_msat": budget.reserved_msat, "remaining_msat": budget.remaining_msat,
            "hive_pushed_24h_sat": budget.hive_pushed_24h_sat,
            "reservations": rt.ledger.reservations()[-20:],
            "history": rt.ledger.recent_rebalances(REBALANCE_HISTORY),
            "registry": [{"scid": j.scid, "status": j.status.value, **extra} for j, extra in rt.ledger.load_jobs()]},
            "config": {k: getattr(rt.config, k) for k in (
                "daily_budget_sats", "enable_proportional_budget", "proportional_budget_pct", "min_wallet_reserve",
                "channel_cap_pct", "max_concurrent_jobs", "rebalance_interval", "reservation_timeout_hours")}},
            None)

    if not rt.started:
        respond(None, RpcException("cl-revenue-ops is still loading channels", -32000))
        return
    rt.tell(RebalanceDebugRequest(rt.expect_reply(finish, "revenue-rebalance-debug")))


# --- revenue-set-fee ------------------------------------------------------------------------
def revenue_set_fee(rt: "Runtime", params: dict, respond: Respond) -> None:
    """Set one channel's fee now, through its actor; answers success only once setchannel succeeded."""
    for field in ("channel_id", "fee_ppm"):
        if params.get(field) is None:
            raise InputError(field, "required")
    scid = _opt_scid(rt, params, "channel_id")
    fee = _int(params, "fee_ppm", 0, policy_rules.MAX_FEE_PPM, default=0)
    force = _bool(params, "force")
    _require_started(rt)
    rt.tell(ManualFee(rt.expect_reply(respond, "revenue-set-fee"), scid, fee, force, rt.now))


# --- deprecated ignore family (reference §2.11), kept as policy shorthands ---------------------
DEPRECATED = "DEPRECATED: use 'revenue-policy set' instead."


def revenue_ignore(rt: "Runtime", params: dict, respond: Respond) -> None:
    """ignore = passive strategy, rebalancing disabled, tagged 'ignored' (+ the reason)."""
    peer_id = _peer(params)
    reason = "manual" if params.get("reason") is None else params["reason"]
    cmds = [{"action": "set", "peer_id": peer_id, "strategy": "passive", "rebalance": "disabled"},
            {"action": "tag", "peer_id": peer_id, "tag": "ignored"}]
    if reason != "manual":
        cmds.append({"action": "tag", "peer_id": peer_id, "tag": reason})
    try:
        parsed = [policy_rules.parse_policy_request(c, rt.now) for c in cmds]
    except policy_rules.PolicyError as e:   # the reason becomes a tag: name the field the caller gave
        raise InputError("reason" if e.field == "tag" else e.field, str(e)) from e
    _known_peer(rt, peer_id)      # after the syntax checks: a bad reason is named first
    _apply_policy_commands(rt, parsed)
    rt.log("unusual", f"revenue-ignore is deprecated: {DEPRECATED}")
    respond({"status": "success", "action": "ignore", "peer_id": peer_id, "reason": reason,
             "message": f"Peer {peer_id[:12]}... is now passive with rebalancing disabled", "warning": DEPRECATED},
            None)


def revenue_unignore(rt: "Runtime", params: dict, respond: Respond) -> None:
    peer_id = _peer(params)
    if not any(p.peer_id == peer_id for p in load_policies(rt.store)):
        _known_peer(rt, peer_id)     # a peer that closed its channels can still be cleaned up
    _apply_policy_commands(rt, [policy_rules.parse_policy_request({"action": "delete", "peer_id": peer_id}, rt.now)])
    rt.log("unusual", f"revenue-unignore is deprecated: {DEPRECATED}")
    respond({"status": "success", "action": "unignore", "peer_id": peer_id,
             "message": f"Policy of {peer_id[:12]}... removed: back to dynamic", "warning": DEPRECATED}, None)


def revenue_list_ignored(rt: "Runtime", params: dict, respond: Respond) -> None:
    ignored = [{"peer_id": p.peer_id, "reason": next((t for t in p.tags if t != "ignored"), "manual"),
                "ignored_at": p.updated_at} for p in load_policies(rt.store)
               if p.channel_id is None and p.strategy is Strategy.PASSIVE and p.rebalance_mode is RebalanceMode.DISABLED]
    respond({"ignored_peers": ignored, "count": len(ignored), "warning": DEPRECATED}, None)


def _peer(params: dict) -> str:
    if params.get("peer_id") is None:
        raise InputError("peer_id", "required: a 66-hex-character node id")
    return policy_rules.validate_peer_id(params["peer_id"])   # a PolicyError names peer_id (see dispatch)


# --- clboss (reference §2.7, §2.10; docs/clboss.md) ------------------------------------------------
def revenue_clboss_status(rt: "Runtime", params: dict, respond: Respond) -> None:
    """The clboss hand-off: whether clboss answers now (probed with clboss-status, not remembered), the peers
    whose lnfee tag we added, those handed back, what is pending and why, and the last failure."""
    _require_started(rt)

    def probed(answers: list[tuple[Any, dict | None]]) -> None:
        result, error = answers[0]
        available = error is None
        if available != (rt.health["clboss"]["status"] == "ok"):   # noticed here first: the hand-off reacts
            rt.observe_clboss(available, "revenue-clboss-status probe")
        respond({"clboss_enabled": rt.config.clboss_enabled, "clboss_available": available,
                 "clboss_error": None if available else error.get("message"), "clboss_health": rt.health["clboss"],
                 **{k: v for k, v in rt.clboss_report.items() if k not in ("clboss_enabled", "clboss_seen_available")}},
                None)

    rt.run_io([("clboss-status", {})], probed)


def revenue_remanage(rt: "Runtime", params: dict, respond: Respond) -> None:
    """Hand a peer's fees back to clboss: its policy becomes passive, and the hand-off removes our lnfee tag."""
    peer_id = _peer(params)
    _known_peer(rt, peer_id)
    before = next((p for p in load_policies(rt.store) if p.peer_id == peer_id and p.channel_id is None), None)
    policy = _apply_policy_commands(rt, [policy_rules.parse_policy_request(
        {"action": "set", "peer_id": peer_id, "strategy": "passive"}, rt.now)])["policy"]
    if before is None:
        undo = {"action": "delete", "peer_id": peer_id}
    elif before.strategy is not Strategy.PASSIVE:
        undo = {"action": "set", "peer_id": peer_id, "strategy": before.strategy.value}
    else:
        undo = None
    hint = ("it was passive already" if undo is None else
            "undo with: lightning-cli -k revenue-policy " + " ".join(f"{k}={v}" for k, v in undo.items()))
    respond({"status": "success", "action": "remanage", "peer_id": peer_id, "policy": policy, "undo": undo,
             "message": f"cl-revenue-ops no longer sets fees for {peer_id}; clboss manages them again once our "
                        f"lnfee tag is removed (revenue-clboss-status); {hint}"}, None)


# --- parameter helpers -----------------------------------------------------------------------
def _require_started(rt: "Runtime") -> None:
    if not rt.started:
        raise RpcException("cl-revenue-ops is still loading channels", -32000)


def _bool(params: dict, field: str) -> bool:
    value = params.get(field, False)
    try:
        return to_bool(value)
    except ValueError:
        raise InputError(field, f"must be {BOOL_TEXT} (got {shown(value)})") from None


def _choice(params: dict, field: str, allowed: tuple[str, ...]) -> str:
    value = params.get(field)
    if value not in allowed:
        raise InputError(field, f"must be one of: {', '.join(allowed)} (got {shown(value)})")
    return value


def _opt_scid(rt: "Runtime", params: dict, field: str) -> str | None:
    """A channel named by a short channel id, as the one in force (an earlier one, before a splice, names it too)."""
    if params.get(field) is None:
        return None
    try:
        return rt.store.canonical(policy_rules.validate_scid(params[field]))
    except policy_rules.PolicyError as e:
        raise InputError(field, str(e)) from e


def _int(params: dict, field: str, lo: int, hi: int, default: int) -> int:
    value = params.get(field, default)
    number = int_within(value, lo, hi)
    if number is None:
        raise InputError(field, f"must be an integer from {lo} to {hi} (got {shown(value)})")
    return number


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("revenue-status", ("channel_id",), "Plugin health, configuration and every channel actor's live state.",
               revenue_status),
    MethodSpec("revenue-config", ("action", "key", "value"),
               "Read or change configuration at runtime: get [key] | set key value | reset key | list-mutable.",
               revenue_config),
    MethodSpec("revenue-policy", ("action", "peer_id", "strategy", "rebalance", "fee_ppm", "tag", "channel_id",
                                  "fee_min_ppm", "fee_max_ppm", "expires_in_hours"),
               "Per-peer and per-channel policies: list | get | set | delete | tag | untag | find.",
               revenue_policy),
    MethodSpec("revenue-fee-debug", ("channel_id", "limit"),
               "Recent fee decisions with the branch, inputs and reason of each.", revenue_fee_debug),
    MethodSpec("revenue-analyze", ("channel_id",),
               "Flow analysis (SOURCE / SINK / BALANCED / CONGESTED) of one channel or all.", revenue_analyze),
    MethodSpec("revenue-rebalance", ("from_channel", "to_channel", "amount_sats", "max_fee_sats", "force"),
               "Start a sling job moving amount_sats from from_channel into to_channel, inside the daily budget.",
               revenue_rebalance),
    MethodSpec("revenue-rebalance-debug", (),
               "Rebalancing: capital controls, budget, active jobs, last candidates, every rejection and the "
               "last 100 rebalances with cost and reason.",
               revenue_rebalance_debug),
    MethodSpec("revenue-set-fee", ("channel_id", "fee_ppm", "force"),
               "Set one channel's fee now (within its bounds unless force); hill climbing goes on from it.",
               revenue_set_fee),
    MethodSpec("revenue-ignore", ("peer_id", "reason"),
               "Deprecated: revenue-policy set peer_id strategy=passive rebalance=disabled (tagged ignored).",
               revenue_ignore),
    MethodSpec("revenue-unignore", ("peer_id",), "Deprecated: revenue-policy delete peer_id.", revenue_unignore),
    MethodSpec("revenue-list-ignored", (), "Deprecated: peers whose policy is passive with rebalancing disabled.",
               revenue_list_ignored),
    MethodSpec("revenue-clboss-status", (),
               "clboss hand-off: is clboss answering, peers whose lnfee tag we added, handed back, pending.",
               revenue_clboss_status),
    MethodSpec("revenue-remanage", ("peer_id",), "Hand a peer's fees back to clboss (sets its policy passive).",
               revenue_remanage),
)
METHODS += tuple(MethodSpec(*m) for m in reports_rpc.METHODS + backtest_rpc.METHODS + experiment_rpc.METHODS)
BY_NAME = {m.name: m for m in METHODS}
