"""Plugin options, their defaults and ranges, validation and hot-swap (revenue-config).

One declaration (OPTIONS) drives everything: the Config class, option registration with lightningd
(mutable options are dynamic: `setconfig` changes them), start-up parsing, validation, revenue-config,
the public dump and docs/configuration.md's table (`python -m revops.config` prints it). Pure logic:
lightningd persists values (its config file), the RPC layer turns ConfigError into JSON-RPC errors;
nothing here does I/O.

Every Config is complete and consistent: a value that fails its type, range or a cross-field rule is
never applied (fixes reference defects 18 and "min > max accepted").
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any, Callable

import attrs

from revops import params
from revops.params import MAX_SHOWN, shown

Scalar = int | float | bool | str
PREFIX = "revenue-ops-"
DB_FILE_NAME = "revenue_ops.db"


class ConfigError(ValueError):
    """A bad option or config value; names the field, its option and what is allowed."""

    def __init__(self, field: str, option_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.option_name = option_name
        self.message = message


@attrs.frozen
class Option:
    """One plugin option and the Config field it sets."""

    name: str
    field: str
    default: Scalar
    type: type
    bounds: tuple[int | float, int | float] | None = None   # inclusive
    choices: tuple[str, ...] | None = None
    pattern: str | None = None                             # free-form strings: full-match regex
    mutable: bool = True
    description: str = ""
    secret: bool = False                                   # shown as "(set)" / "" by revenue-config, never as is

    @property
    def allowed(self) -> str:
        """Human text of the allowed values, used in every error message and in the docs."""
        if self.type is bool:
            return params.BOOL_TEXT
        if self.bounds is not None:
            return f"{self.type.__name__} from {_fmt(self.bounds[0])} to {_fmt(self.bounds[1])}"
        if self.choices is not None:
            return "one of: " + ", ".join(self.choices)
        return f"string matching {self.pattern}"

    @property
    def lightningd_type(self) -> str:
        """opt_type to register with pyln: lightningd checks ints and bools itself; floats are strings."""
        return {int: "int", bool: "bool"}.get(self.type, "string")


def _fmt(x: int | float) -> str:
    return f"{x:,}" if isinstance(x, int) else repr(x)


def _int(suffix: str, field: str, default: int, lo: int, hi: int, desc: str, mutable: bool = True) -> Option:
    return Option(PREFIX + suffix, field, default, int, bounds=(lo, hi), mutable=mutable, description=desc)


def _float(suffix: str, field: str, default: float, lo: float, hi: float, desc: str) -> Option:
    return Option(PREFIX + suffix, field, default, float, bounds=(lo, hi), description=desc)


def _bool(suffix: str, field: str, default: bool, desc: str, mutable: bool = True) -> Option:
    return Option(PREFIX + suffix, field, default, bool, mutable=mutable, description=desc)


_HOST = r"[A-Za-z0-9.:\-]{1,253}"
_DAY = 86_400
_BTC = 100_000_000

OPTIONS: tuple[Option, ...] = (
    # --- reference §3.1 (baseline options), same names, defaults and meaning ---
    Option(PREFIX + "db-path", "db_path", "", str, pattern=r"[^\x00]*", mutable=False,
           description="SQLite file; empty = revenue_ops.db inside the node's network directory "
                       "(the init lightning-dir); '~' is expanded"),
    _int("fee-interval", "fee_interval", 1800, 60, _DAY, "fee cycle period, seconds"),
    _int("rebalance-interval", "rebalance_interval", 900, 60, _DAY, "rebalance cycle period, seconds"),
    _int("target-flow", "target_flow", 100_000, 0, 10 * _BTC,
         "legacy PID flow target, sats/day; only displayed by revenue-status"),
    _int("min-fee-ppm", "min_fee_ppm", 10, 5, 100_000, "fee floor, ppm (must be <= max-fee-ppm)"),
    _int("max-fee-ppm", "max_fee_ppm", 5000, 1, 100_000, "fee ceiling, ppm"),
    _int("rebalance-min-profit", "rebalance_min_profit", 10, 0, 1_000_000,
         "minimum expected profit of a rebalance, sats (used when rebalance-min-profit-ppm is 0)"),
    _int("flow-window-days", "flow_window_days", 7, 1, 90, "flow analysis window, days"),
    _bool("clboss-enabled", "clboss_enabled", True,
          "clboss leaves the channel fees of the peers we price to us: we add clboss's lnfee tag to them "
          "(clboss-unmanage, their other clboss tags kept); off = every lnfee we added is removed again"),
    _bool("clboss-handback-on-stop", "clboss_handback_on_stop", True,
          "when the plugin stops, remove the lnfee tags we added, so clboss sets those fees again "
          "(off = they stay ours until the next start)"),
    Option(PREFIX + "rebalancer", "rebalancer_plugin", "sling", str, choices=("sling",), mutable=False,
           description="rebalancer plugin; only sling is supported"),
    _int("daily-budget-sats", "daily_budget_sats", 5000, 0, 10_000_000,
         "rolling 24 h budget for rebalance fees, sats (the floor when proportional budget is on)"),
    _int("min-wallet-reserve", "min_wallet_reserve", 1_000_000, 0, _BTC,
         "confirmed on-chain + channel local balance must stay >= this, sats, or no rebalance starts"),
    _bool("proportional-budget", "enable_proportional_budget", False,
          "budget = max(daily-budget-sats, trailing 24 h routing revenue x proportional-budget-pct)"),
    _float("proportional-budget-pct", "proportional_budget_pct", 0.05, 0.0, 1.0,
           "share of trailing 24 h routing revenue usable as rebalance budget"),
    _bool("dry-run", "dry_run", False, "decide and log, but send nothing that changes state to lightningd or a "
                                       "plugin (changeable at runtime: the operator's kill switch)"),
    _float("htlc-congestion-threshold", "htlc_congestion_threshold", 0.8, 0.0, 1.0,
           "HTLC-slot utilisation at which a channel counts as congested"),
    _bool("enable-prometheus", "enable_prometheus", False, "start the Prometheus exporter",
          mutable=False),
    _int("prometheus-port", "prometheus_port", 9800, 1, 65_535, "Prometheus exporter port", mutable=False),
    _bool("enable-page", "enable_page", False, "serve the read-only status page on 127.0.0.1", mutable=False),
    _int("page-port", "page_port", 9801, 1, 65_535, "status page port (bound on 127.0.0.1 only)", mutable=False),
    Option(PREFIX + "page-token", "page_token", "", str, pattern=r"[A-Za-z0-9._~-]{0,128}", mutable=False,
           secret=True, description="status page token; empty = none (open the page once with ?token=...); "
                       "revenue-config get shows only (set)"),
    _bool("vegas-reflex", "enable_vegas_reflex", False, "raise the fee floor during mempool fee spikes"),
    _float("vegas-decay", "vegas_decay_rate", 0.85, 0.0, 1.0, "per-cycle decay of the Vegas intensity"),
    _bool("price-anchor", "price_anchor", True,
          "start a fee far below what other nodes charge toward the peer (gossip) at their median, once"),
    _bool("scarcity-pricing", "enable_scarcity_pricing", True, "fee premium when local balance is low"),
    _float("scarcity-threshold", "scarcity_threshold", 0.35, 0.0, 1.0,
           "local-balance ratio below which the scarcity premium starts"),
    _int("hive-fee-ppm", "hive_fee_ppm", 0, 0, 100_000, "fee charged on channels of hive-strategy peers, ppm"),
    _int("hive-rebalance-tolerance", "hive_rebalance_tolerance", 50, 0, 100_000,
         "expected loss accepted when filling a hive peer's channel, sats"),
    _int("rpc-timeout-seconds", "rpc_timeout_seconds", 15, 1, 300, "hard timeout of one lightningd call, s"),
    # --- added by the reference after the baseline ---
    _int("reservation-timeout-hours", "reservation_timeout_hours", 4, 1, 24,
         "a reservation no sling job of ours holds any more (a crash before its registry row) is released "
         "after this, hours; must be >= sling-job-timeout-seconds / 3600"),
    # --- reference §3.2 internal fields: here they are options too, so start-up and runtime agree ---
    _float("source-threshold", "source_threshold", 0.5, 0.0, 1.0,
           "flow ratio above which a channel is a source (draining)"),
    _float("sink-threshold", "sink_threshold", -0.5, -1.0, 0.0,
           "flow ratio below which a channel is a sink (filling)"),
    _int("base-fee-msat", "base_fee_msat", 0, 0, 1_000_000, "base fee written with every fee update, msat"),
    _int("rebalance-min-profit-ppm", "rebalance_min_profit_ppm", 0, 0, 100_000,
         "minimum expected profit per rebalanced amount, ppm; 0 = use rebalance-min-profit"),
    _int("rebalance-max-amount", "rebalance_max_amount", 5_000_000, 1_000, _BTC,
         "largest rebalance, sats"),
    _int("rebalance-min-amount", "rebalance_min_amount", 50_000, 1_000, _BTC,
         "smallest rebalance worth doing, sats (must be <= rebalance-max-amount)"),
    _float("low-liquidity-threshold", "low_liquidity_threshold", 0.2, 0.0, 1.0,
           "local ratio below which a channel needs filling (must be < high-liquidity-threshold)"),
    _float("high-liquidity-threshold", "high_liquidity_threshold", 0.8, 0.0, 1.0,
           "local ratio above which a channel can be drained"),
    _int("rebalance-cooldown-hours", "rebalance_cooldown_hours", 0, 0, 720,
         "no new rebalance into a channel within this many hours of the last one (0: none; every refill "
         "still passes the EV gate)"),
    _int("inbound-fee-estimate-ppm", "inbound_fee_estimate_ppm", 500, 0, 100_000,
         "assumed cost of routing into a channel when no history exists, ppm"),
    _int("max-concurrent-jobs", "max_concurrent_jobs", 5, 1, 50, "sling jobs running at once"),
    _int("sling-job-timeout-seconds", "sling_job_timeout_seconds", 7200, 60, _DAY,
         "a sling job is stopped after this long, s"),
    _int("sling-chunk-size-sats", "sling_chunk_size_sats", 500_000, 1, 50_000_000,
         "amount one sling job moves, sats"),
    _int("sling-max-hops", "sling_max_hops", 5, 2, 20, "sling route length limit"),
    _float("sling-target-sink", "sling_target_sink", 0.35, 0.1, 0.9,
           "a sink channel at or above this local ratio is not filled"),
    _float("sling-target-balanced", "sling_target_balanced", 0.5, 0.1, 0.9,
           "a balanced channel at or above this local ratio is not filled"),
    _float("sling-target-source", "sling_target_source", 0.65, 0.1, 0.9,
           "a source channel at or above this local ratio is not filled"),
    # --- new in this implementation ---
    _int("max-updates-per-day", "max_fee_updates_per_day", 2, 1, 48,
         "fee broadcasts per channel per 24 h (gossip budget)"),
    _float("gossip-hysteresis", "gossip_hysteresis", 0.05, 0.0, 0.5,
           "a new fee is broadcast only if it differs from the current one by >= this fraction"),
    _bool("htlc-max-valve", "htlc_max_valve", False,
          "advertise each channel's htlc_maximum_msat by flow class: 50 % of capacity for a source, 45 % "
          "balanced, 25 % sink (within the gossip budget; off leaves each limit as it is)"),
    Option(PREFIX + "prometheus-address", "prometheus_address", "127.0.0.1", str, pattern=_HOST,
           mutable=False,
           description="exporter bind address; a non-loopback address is allowed but logged as a warning "
                       "(/metrics has no authentication)"),
    _float("rebalance-channel-cap-pct", "channel_cap_pct", 0.5, 0.0, 1.0,
           "never spend on one channel more than this share of its trailing 30-day net earnings"),
    _int("pingpong-hours", "pingpong_hours", 48, 0, 720,
         "a channel filled (drained) is not drained (filled) again within this many hours; 0 = off"),
    _int("hive-daily-push-sats", "hive_daily_push_sats", 50_000_000, 0, 10 * _BTC,
         "sats pushed into hive peers (cl-hive pushes and automatic ones) per rolling 24 h"),
    _int("hive-push-max-sats", "hive_push_max_sats", 10_000_000, 0, 10 * _BTC,
         "sats one push into a hive peer may start with (must be <= hive-daily-push-sats)"),
    _bool("stop-jobs-on-shutdown", "stop_jobs_on_shutdown", False,
          "stop the sling jobs this plugin started when it shuts down"),
    _int("forward-retention-days", "forward_retention_days", 90, 31, 3650,
         "raw forwards older than this are folded into daily roll-ups (reports read both; the budget and flow code read 30 days raw)"),
)

# Options of earlier versions that never did anything (issue 14): still accepted, so an existing lightningd
# config keeps working, but registered as deprecated and warned about at start; not part of Config.
RETIRED: dict[str, str] = {
    PREFIX + "flow-interval": "flow analysis runs in every fee cycle (revenue-ops-fee-interval)",
    PREFIX + "enable-reputation": "peer reputation weighting was never implemented",
    PREFIX + "reputation-decay": "peer reputation weighting was never implemented",
    PREFIX + "enable-kelly": "Kelly sizing was never implemented; the EV gate and budget size rebalances",
    PREFIX + "kelly-fraction": "Kelly sizing was never implemented; the EV gate and budget size rebalances",
    PREFIX + "rpc-circuit-breaker-seconds": "calls have a timeout and bounded retry (revenue-ops-rpc-timeout-seconds); "
                                            "there is no circuit breaker",
    PREFIX + "estimated-open-cost-sats": "open costs come from bookkeeper, else from the current feerate",
    PREFIX + "sling-parallel-jobs": "sling's own default parallelism is used",
    PREFIX + "sling-outppm-fallback": "sources are chosen by the plugin (candidates), not by sling's outppm",
    PREFIX + "rollback-min-forwards": "the revenue search pools evidence per fee level; there is no rollback "
                                      "(docs/fees.md)",
    PREFIX + "rollback-drop": "the revenue search pools evidence per fee level; there is no rollback (docs/fees.md)",
}

_BY_FIELD: dict[str, Option] = {o.field: o for o in OPTIONS}
_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}

MUTABLE_KEYS: tuple[str, ...] = tuple(sorted(o.field for o in OPTIONS if o.mutable))
IMMUTABLE_KEYS: tuple[str, ...] = tuple(sorted(o.field for o in OPTIONS if not o.mutable))


def _config_class() -> type:
    """Config's fields come from OPTIONS (one declaration), plus the change counter `version`."""
    fields = {o.field: attrs.field(type=o.type) for o in OPTIONS} | {"version": attrs.field(type=int, default=0)}
    cls = attrs.make_class("Config", fields, frozen=True, slots=True)
    cls.__module__ = __name__
    cls.__doc__ = ("A complete, validated configuration. Build it only with parse_options / with_override / "
                   "with_default, which guarantee ranges and cross-field rules.")
    return cls


Config = _config_class()


@attrs.frozen
class Constraint:
    """lower must be <= upper x scale (< when strict); scale converts units (hours to seconds)."""

    lower: str
    upper: str
    strict: bool = False
    scale: int = 1

    def holds(self, cfg: Config) -> bool:
        lo, hi = getattr(cfg, self.lower), getattr(cfg, self.upper) * self.scale
        return lo < hi if self.strict else lo <= hi

    def message(self, cfg: Config) -> str:
        op = "<" if self.strict else "<="
        lo, hi = _BY_FIELD[self.lower], _BY_FIELD[self.upper]
        times = f" x {self.scale}" if self.scale != 1 else ""
        return (f"{lo.name} ({self.lower}={getattr(cfg, self.lower)}) must be {op} "
                f"{hi.name}{times} ({self.upper}={getattr(cfg, self.upper)})")


CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("min_fee_ppm", "max_fee_ppm"),
    Constraint("low_liquidity_threshold", "high_liquidity_threshold", strict=True),
    Constraint("sink_threshold", "source_threshold", strict=True),
    Constraint("sling_target_sink", "sling_target_balanced"),
    Constraint("sling_target_balanced", "sling_target_source"),
    Constraint("rebalance_min_amount", "rebalance_max_amount"),
    Constraint("hive_push_max_sats", "hive_daily_push_sats"),
    # a job is stopped at its timeout, before the backstop that expires a reservation no registry row names
    Constraint("sling_job_timeout_seconds", "reservation_timeout_hours", scale=3600),
)

# --- coercion: one function per type, chosen by the table ---


def _to_str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    return v.strip()


_COERCERS: dict[type, Callable[[Any], Scalar]] = {int: params.to_int, float: params.to_float,
                                                    bool: params.to_bool, str: _to_str}


def option_for(key: str) -> Option:
    """The option for a config field name or a plugin option name."""
    opt = (_BY_FIELD.get(key) or _BY_NAME.get(key)) if isinstance(key, str) else None
    if opt is None:
        raise ConfigError(str(key)[:MAX_SHOWN], None, f"Unknown config key: {shown(key)}{_suggest(key)} "
                                                      f"(revenue-config get lists every key)")
    return opt


def _suggest(key: Any) -> str:
    """'; did you mean ...?' with up to three close keys, or nothing."""
    if not isinstance(key, str) or len(key) > 100:
        return ""
    close = difflib.get_close_matches(key.removeprefix(PREFIX).replace("-", "_"), list(_BY_FIELD), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _check_value(opt: Option, value: Scalar) -> bool:
    if opt.bounds is not None:
        return opt.bounds[0] <= value <= opt.bounds[1]
    if opt.choices is not None:
        return value in opt.choices
    if opt.pattern is not None:
        return re.fullmatch(opt.pattern, value) is not None
    return True


def coerce(key: str, raw: Any) -> Scalar:
    """Convert a raw value (as lightningd or lightning-cli sends it) to the field's type and check range."""
    opt = option_for(key)
    try:
        value = _COERCERS[opt.type](raw)
    except (ValueError, TypeError):
        raise ConfigError(opt.field, opt.name,
                          f"Invalid value {shown(raw)} for {opt.name} ({opt.field}): expected {opt.allowed}") from None
    if not _check_value(opt, value):
        raise ConfigError(opt.field, opt.name,
                          f"Value {shown(raw)} out of range for {opt.name} ({opt.field}): expected {opt.allowed}")
    return value


def default_value(key: str) -> Scalar:
    return option_for(key).default


def _violations(cfg: Config) -> list[Constraint]:
    return [c for c in CONSTRAINTS if not c.holds(cfg)]


def _checked(cfg: Config, changed: str | None = None) -> Config:
    """cfg if every cross-field rule holds, else ConfigError naming the changed field (or the first)."""
    for c in _violations(cfg):
        field = changed if changed in (c.lower, c.upper) else c.lower
        raise ConfigError(field, _BY_FIELD[field].name, c.message(cfg))
    return cfg


def parse_options(raw: Mapping[str, Any]) -> Config:
    """Config from the init options (option name -> value); unknown names ignored, None = default."""
    values = {o.field: o.default if raw.get(o.name) is None else coerce(o.field, raw[o.name]) for o in OPTIONS}
    return _checked(Config(**values))


def retired_warnings(raw: Mapping[str, Any]) -> list[str]:
    """One warning for each retired option the operator still sets."""
    return [f"{name} is retired and has no effect ({why}): remove it from the config"
            for name, why in RETIRED.items() if raw.get(name) is not None]


def get_value(cfg: Config, key: str) -> Scalar:
    """Current value of a field (or option name); only table fields are reachable (no methods)."""
    return getattr(cfg, option_for(key).field)


def _set(cfg: Config, key: str, value_of: Callable[[Option], Scalar]) -> Config:
    opt = option_for(key)
    if not opt.mutable:
        raise ConfigError(opt.field, opt.name, immutable_message(opt))
    new = attrs.evolve(cfg, **{opt.field: value_of(opt), "version": cfg.version + 1})
    return _checked(new, changed=opt.field)


def immutable_message(opt: Option) -> str:
    return f"Key {opt.field!r} cannot be changed at runtime: set {opt.name} and restart the plugin"


def with_override(cfg: Config, key: str, raw: Any) -> Config:
    """New Config with key set to raw, checked for type, range and cross-field rules; version + 1."""
    return _set(cfg, key, lambda opt: coerce(opt.field, raw))


def with_default(cfg: Config, key: str) -> Config:
    """New Config with key back at its declared default; version + 1."""
    return _set(cfg, key, lambda opt: opt.default)


def to_public_dict(cfg: Config) -> dict[str, Scalar]:
    """Every field and the version, JSON-able; a secret only says whether it is set."""
    return {o.field: ("(set)" if getattr(cfg, o.field) else "") if o.secret else getattr(cfg, o.field)
            for o in OPTIONS} | {"version": cfg.version}


def legacy_override_warnings(overrides: Mapping[str, str]) -> list[str]:
    """Earlier versions kept revenue-config changes in their own database; now lightningd's config holds every
    value (setconfig), so those are not applied: say so, once per value, with the command that keeps it."""
    out = []
    for key, raw in sorted(overrides.items()):
        opt = _BY_FIELD.get(key)
        keep = (f"`lightning-cli setconfig {opt.name} {raw}` keeps it" if opt is not None and opt.mutable
                else "it is no longer a runtime setting")
        out.append(f"Value {key}={raw} stored by an earlier version is not applied (options live in lightningd's "
                   f"config now); {keep}")
    return out


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def runtime_warnings(cfg: Config) -> list[str]:
    """Valid but risky settings the runtime should log at start."""
    warnings = []
    if not is_loopback(cfg.prometheus_address):
        warnings.append(f"revenue-ops-prometheus-address={cfg.prometheus_address} is not a loopback address: "
                        "/metrics (no authentication) will be reachable from other hosts")
    return warnings


def db_file(cfg: Config, lightning_dir: str) -> str:
    """The SQLite path: db_path ('~' expanded) or revenue_ops.db in the init lightning-dir (network dir)."""
    return os.path.expanduser(cfg.db_path) if cfg.db_path else os.path.join(lightning_dir, DB_FILE_NAME)


DOCS_BEGIN = "<!-- options table: generated by `python -m revops.config` from revops/config.py OPTIONS -->"
DOCS_END = "<!-- end of options table -->"


def _doc_default(opt: Option) -> str:
    if opt.type is bool:
        return "`true`" if opt.default else "`false`"
    return f"`{opt.default}`" if opt.default != "" else '`""`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def docs_table() -> str:
    """docs/configuration.md's option table, derived from OPTIONS (a test keeps the file in step)."""
    rows = [DOCS_BEGIN, "", "| Option | Key | Default | Allowed | Dynamic | Meaning |", "|---|---|---|---|---|---|"]
    rows += [f"| `{o.name}` | `{o.field}` | {_doc_default(o)} | {_cell(o.allowed)} | "
             f"{'yes' if o.mutable else 'no'} | {_cell(o.description)} |" for o in OPTIONS]
    return "\n".join(rows + ["", DOCS_END])


if __name__ == "__main__":
    print(docs_table())
