"""revops.config: the option table against the reference, coercion, ranges, cross-field rules, hot-swap."""
from __future__ import annotations

import json
import re
import pathlib

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops import config as C
from revops.config import ConfigError

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

# Reference §3.1 (31 baseline options): option -> (field, default). db-path: ours is "" (network dir).
REFERENCE_OPTIONS = {
    "db-path": ("db_path", ""),
    "flow-interval": ("flow_interval", 3600),
    "fee-interval": ("fee_interval", 1800),
    "rebalance-interval": ("rebalance_interval", 900),
    "target-flow": ("target_flow", 100_000),
    "min-fee-ppm": ("min_fee_ppm", 10),
    "max-fee-ppm": ("max_fee_ppm", 5000),
    "rebalance-min-profit": ("rebalance_min_profit", 10),
    "flow-window-days": ("flow_window_days", 7),
    "clboss-enabled": ("clboss_enabled", True),
    "rebalancer": ("rebalancer_plugin", "sling"),
    "daily-budget-sats": ("daily_budget_sats", 5000),
    "min-wallet-reserve": ("min_wallet_reserve", 1_000_000),
    "proportional-budget": ("enable_proportional_budget", False),
    "proportional-budget-pct": ("proportional_budget_pct", 0.05),
    "dry-run": ("dry_run", False),
    "htlc-congestion-threshold": ("htlc_congestion_threshold", 0.8),
    "enable-reputation": ("enable_reputation", True),
    "reputation-decay": ("reputation_decay", 0.98),
    "enable-prometheus": ("enable_prometheus", False),
    "prometheus-port": ("prometheus_port", 9800),
    "enable-kelly": ("enable_kelly", False),
    "kelly-fraction": ("kelly_fraction", 0.5),
    "vegas-reflex": ("enable_vegas_reflex", False),
    "vegas-decay": ("vegas_decay_rate", 0.85),
    "scarcity-pricing": ("enable_scarcity_pricing", True),
    "scarcity-threshold": ("scarcity_threshold", 0.35),
    "hive-fee-ppm": ("hive_fee_ppm", 0),
    "hive-rebalance-tolerance": ("hive_rebalance_tolerance", 50),
    "rpc-timeout-seconds": ("rpc_timeout_seconds", 15),
    "rpc-circuit-breaker-seconds": ("rpc_circuit_breaker_seconds", 60),
}

# Reference §3.2 internal fields (defaults) that are hot-swappable in the reference (§3.3).
INTERNAL_FIELDS = {
    "source_threshold": 0.5, "sink_threshold": -0.5, "base_fee_msat": 0, "rebalance_min_profit_ppm": 0,
    "rebalance_max_amount": 5_000_000, "rebalance_min_amount": 50_000, "low_liquidity_threshold": 0.2,
    "high_liquidity_threshold": 0.8, "inbound_fee_estimate_ppm": 500,
    "rebalance_cooldown_hours": 0,   # the reference's 24 h blocked refills a depleted earner (docs/rebalancing.md)
    "estimated_open_cost_sats": 5000, "max_concurrent_jobs": 5, "sling_job_timeout_seconds": 7200,
    "sling_chunk_size_sats": 500_000, "sling_max_hops": 5, "sling_parallel_jobs": 1,
    "sling_target_sink": 0.35, "sling_target_source": 0.65, "sling_target_balanced": 0.50,
    "sling_outppm_fallback": 500,
}

# Later reference option and ours: option -> (field, default, (lo, hi)).
ADDED_OPTIONS = {
    "reservation-timeout-hours": ("reservation_timeout_hours", 4, (1, 24)),
    "max-updates-per-day": ("max_fee_updates_per_day", 2, (1, 48)),
    "gossip-hysteresis": ("gossip_hysteresis", 0.05, (0, 0.5)),
    "htlc-max-valve": ("htlc_max_valve", False, None),
    "price-anchor": ("price_anchor", True, None),
    "rebalance-channel-cap-pct": ("channel_cap_pct", 0.5, (0, 1)),
    "pingpong-hours": ("pingpong_hours", 48, (0, 720)),
    "hive-daily-push-sats": ("hive_daily_push_sats", 50_000_000, None),
    "hive-push-max-sats": ("hive_push_max_sats", 10_000_000, None),
    "stop-jobs-on-shutdown": ("stop_jobs_on_shutdown", False, None),
    "clboss-handback-on-stop": ("clboss_handback_on_stop", True, None),
    "forward-retention-days": ("forward_retention_days", 90, (31, 3650)),
    "prometheus-address": ("prometheus_address", "127.0.0.1", None),
    "enable-page": ("enable_page", False, None),
    "page-port": ("page_port", 9801, (1, 65_535)),
    "page-token": ("page_token", "", None),
}

# Reference §3.3 ranges.
REFERENCE_RANGES = {
    "min_fee_ppm": (5, 100_000), "max_fee_ppm": (1, 100_000), "daily_budget_sats": (0, 10_000_000),
    "min_wallet_reserve": (0, 100_000_000), "low_liquidity_threshold": (0, 1), "high_liquidity_threshold": (0, 1),
    "htlc_congestion_threshold": (0, 1), "reputation_decay": (0, 1), "proportional_budget_pct": (0, 1),
    "kelly_fraction": (0, 1), "vegas_decay_rate": (0, 1), "scarcity_threshold": (0, 1),
    "hive_fee_ppm": (0, 100_000), "hive_rebalance_tolerance": (0, 100_000),
    "sling_chunk_size_sats": (1, 50_000_000), "sling_max_hops": (2, 20), "sling_parallel_jobs": (1, 10),
    "sling_target_sink": (0.1, 0.9), "sling_target_source": (0.1, 0.9), "sling_target_balanced": (0.1, 0.9),
    "sling_outppm_fallback": (0, 10_000), "rebalance_min_profit_ppm": (0, 100_000),
    "rpc_timeout_seconds": (1, 300), "rpc_circuit_breaker_seconds": (0, 3600),
    "reservation_timeout_hours": (1, 24),
}

# issue 14: these did nothing; retired (accepted as deprecated options, warned about, not in Config)
RETIRED_FIELDS = {"flow_interval", "enable_reputation", "reputation_decay", "enable_kelly", "kelly_fraction",
                  "rpc_circuit_breaker_seconds", "estimated_open_cost_sats", "sling_parallel_jobs",
                  "sling_outppm_fallback"}
BY_FIELD = {o.field: o for o in C.OPTIONS}
NUMERIC = [o for o in C.OPTIONS if o.bounds is not None]
DEFAULTS = C.parse_options({})


# --- the table against the reference ---

@pytest.mark.parametrize("suffix", sorted(REFERENCE_OPTIONS))
def test_reference_option_present_with_same_default(suffix: str) -> None:
    field, default = REFERENCE_OPTIONS[suffix]
    if field in RETIRED_FIELDS:
        assert "revenue-ops-" + suffix in C.RETIRED and field not in BY_FIELD
        return
    opt = C.option_for("revenue-ops-" + suffix)
    assert (opt.field, opt.default) == (field, default)
    assert type(opt.default) is opt.type


@pytest.mark.parametrize("field", sorted(set(INTERNAL_FIELDS) - RETIRED_FIELDS))
def test_internal_field_present_and_mutable(field: str) -> None:
    assert BY_FIELD[field].default == INTERNAL_FIELDS[field]
    assert field in C.MUTABLE_KEYS


@pytest.mark.parametrize("suffix", sorted(ADDED_OPTIONS))
def test_added_options(suffix: str) -> None:
    field, default, bounds = ADDED_OPTIONS[suffix]
    opt = C.option_for("revenue-ops-" + suffix)
    assert (opt.field, opt.default) == (field, default)
    if bounds is not None:
        assert opt.bounds == bounds


@pytest.mark.parametrize("field", sorted(set(REFERENCE_RANGES) - RETIRED_FIELDS))
def test_reference_ranges(field: str) -> None:
    assert BY_FIELD[field].bounds == REFERENCE_RANGES[field]


def test_table_is_exactly_reference_internal_and_added() -> None:
    names = {o.name for o in C.OPTIONS}
    expected = {"revenue-ops-" + s for s in [*REFERENCE_OPTIONS, *ADDED_OPTIONS]} - set(C.RETIRED)
    assert expected <= names and not names & set(C.RETIRED)
    assert {o.field for o in C.OPTIONS} == ({f for f, _ in REFERENCE_OPTIONS.values()} | set(INTERNAL_FIELDS)
                                           | {v[0] for v in ADDED_OPTIONS.values()}) - RETIRED_FIELDS
    assert len(names) == len(C.OPTIONS) == len({o.field for o in C.OPTIONS})
    assert all(n.startswith("revenue-ops-") for n in names)


@pytest.mark.parametrize("opt", C.OPTIONS, ids=lambda o: o.field)
def test_every_option_has_a_range_or_choices_and_valid_default(opt: C.Option) -> None:
    assert opt.type is bool or opt.bounds or opt.choices or opt.pattern
    assert C.coerce(opt.field, opt.default) == opt.default
    assert C.default_value(opt.field) == opt.default
    assert getattr(DEFAULTS, opt.field) == opt.default
    assert opt.description


def test_config_fields_match_table_and_types() -> None:
    fields = {f.name: f.type for f in attrs.fields(C.Config)}
    assert list(fields) == [o.field for o in C.OPTIONS] + ["version"]
    for o in C.OPTIONS:
        assert fields[o.field] is o.type


def test_mutable_and_immutable_keys() -> None:
    assert list(C.MUTABLE_KEYS) == sorted(C.MUTABLE_KEYS)
    assert set(C.MUTABLE_KEYS) | set(C.IMMUTABLE_KEYS) == set(BY_FIELD)
    assert not set(C.MUTABLE_KEYS) & set(C.IMMUTABLE_KEYS)
    assert "db_path" in C.IMMUTABLE_KEYS and "dry_run" in C.MUTABLE_KEYS   # dry_run: the kill switch


def test_lightningd_types() -> None:
    assert BY_FIELD["min_fee_ppm"].lightningd_type == "int"
    assert BY_FIELD["dry_run"].lightningd_type == "bool"
    assert BY_FIELD["gossip_hysteresis"].lightningd_type == "string"
    assert BY_FIELD["db_path"].lightningd_type == "string"


# --- coercion and ranges ---

@pytest.mark.parametrize("opt", NUMERIC, ids=lambda o: o.field)
def test_bounds_inclusive(opt: C.Option) -> None:
    lo, hi = opt.bounds
    assert C.coerce(opt.field, lo) == lo and C.coerce(opt.field, hi) == hi
    assert C.coerce(opt.field, str(lo)) == lo
    step = 1 if opt.type is int else 0.001
    for bad in (lo - step, hi + step, str(hi + step)):
        with pytest.raises(ConfigError) as e:
            C.coerce(opt.field, bad)
        assert (e.value.field, e.value.option_name) == (opt.field, opt.name)
        assert opt.name in str(e.value) and opt.allowed in str(e.value)


@pytest.mark.parametrize("opt", C.OPTIONS, ids=lambda o: o.field)
@pytest.mark.parametrize("junk", ["abc", "", [1], {"a": 1}, "1e400x", object()])
def test_junk_rejected_naming_option(opt: C.Option, junk: object) -> None:
    if opt.pattern is not None and isinstance(junk, str) and re.fullmatch(opt.pattern, junk):
        return  # free-form strings (paths, host names) may legitimately look like this
    with pytest.raises(ConfigError) as e:
        C.coerce(opt.name, junk)
    assert e.value.field == opt.field and opt.name in e.value.message


def _valid(opt: C.Option, v: object) -> bool:
    if opt.bounds is not None:
        return isinstance(v, opt.type) and not isinstance(v, bool) and opt.bounds[0] <= v <= opt.bounds[1]
    if opt.choices is not None:
        return v in opt.choices
    return isinstance(v, opt.type)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                 st.lists(st.integers(), max_size=2), st.sampled_from(["yes", "OFF", " 7 ", "0x10", "1.5", "-0"]))


@settings(max_examples=400, deadline=None)
@given(opt=st.sampled_from(C.OPTIONS), raw=JUNK)
def test_any_input_is_a_valid_value_or_a_named_error(opt: C.Option, raw: object) -> None:
    try:
        v = C.coerce(opt.field, raw)
    except ConfigError as e:
        assert e.field == opt.field and e.option_name == opt.name and opt.name in e.message
    else:
        assert _valid(opt, v)


@pytest.mark.parametrize("raw,expected", [
    ("true", True), ("TRUE", True), ("Yes", True), (True, True),
    ("false", False), ("No", False), (False, False)])
def test_bool_spellings(raw: object, expected: bool) -> None:
    """Exactly what lightningd (since v25.05) accepts for a plugin bool option."""
    assert C.coerce("dry_run", raw) is expected


@pytest.mark.parametrize("raw", ["on", "OFF", "1", "0", 1, 0, "y", "", "ｔｒｕｅ"])
def test_bool_spellings_lightningd_refuses_are_refused(raw: object) -> None:
    with pytest.raises(C.ConfigError, match="true, false, yes or no"):
        C.coerce("dry_run", raw)


@pytest.mark.parametrize("raw", ["maybe", "tru", 2, -1, 0.5, "", None])
def test_bool_junk_rejected(raw: object) -> None:
    with pytest.raises(ConfigError, match="revenue-ops-dry-run"):
        C.coerce("dry_run", raw)


@pytest.mark.parametrize("raw,expected", [(42, 42), ("42", 42), (42.0, 42), ("+42", 42)])
def test_int_tolerant_forms(raw: object, expected: int) -> None:
    assert C.coerce("max_fee_ppm", raw) == expected


@pytest.mark.parametrize("raw", [42.5, "42.0", True, "4 2", "0x2a"])
def test_int_rejects(raw: object) -> None:
    with pytest.raises(ConfigError):
        C.coerce("max_fee_ppm", raw)


@pytest.mark.parametrize("raw", ["nan", float("nan"), "inf", float("-inf"), True])
def test_float_rejects_non_finite_and_bool(raw: object) -> None:
    with pytest.raises(ConfigError):
        C.coerce("gossip_hysteresis", raw)


def test_float_accepts_int_and_string() -> None:
    assert C.coerce("proportional_budget_pct", 1) == 1.0 and isinstance(C.coerce("proportional_budget_pct", 1), float)
    assert C.coerce("proportional_budget_pct", "0.25") == 0.25


def test_choices_and_patterns() -> None:
    assert C.coerce("rebalancer_plugin", "sling") == "sling"
    with pytest.raises(ConfigError, match="one of: sling"):
        C.coerce("rebalancer_plugin", "circular")
    assert C.coerce("prometheus_address", "0.0.0.0") == "0.0.0.0"
    with pytest.raises(ConfigError, match="revenue-ops-prometheus-address"):
        C.coerce("prometheus_address", "bad host")


def test_unknown_key() -> None:
    with pytest.raises(ConfigError, match="Unknown config key") as e:
        C.coerce("nosuchkey", 1)
    assert e.value.field == "nosuchkey" and e.value.option_name is None


# --- parse_options ---

def test_parse_options_defaults_and_values() -> None:
    cfg = C.parse_options({"revenue-ops-fee-interval": 60, "revenue-ops-max-fee-ppm": "3000",
                           "revenue-ops-dry-run": "TRUE", "revenue-ops-db-path": "/tmp/x.db",
                           "revenue-ops-gossip-hysteresis": "0.25", "some-other-plugin-opt": "zzz",
                           "revenue-ops-min-fee-ppm": None})
    assert (cfg.fee_interval, cfg.max_fee_ppm, cfg.dry_run, cfg.db_path, cfg.gossip_hysteresis) == (
        60, 3000, True, "/tmp/x.db", 0.25)
    assert cfg.min_fee_ppm == 10 and cfg.version == 0


@pytest.mark.parametrize("opt", C.OPTIONS, ids=lambda o: o.field)
def test_parse_options_refuses_bad_value(opt: C.Option) -> None:
    bad = "not-a-valid-value" if opt.type is not str or opt.choices else "bad\x00path host"
    with pytest.raises(ConfigError) as e:
        C.parse_options({opt.name: bad})
    assert e.value.field == opt.field and opt.name in str(e.value)


# --- cross-field rules ---

CROSS_CASES = [
    ({"min_fee_ppm": 9999, "max_fee_ppm": 3000}, "min_fee_ppm"),
    ({"low_liquidity_threshold": 0.5, "high_liquidity_threshold": 0.5}, "low_liquidity_threshold"),
    ({"sink_threshold": 0.0, "source_threshold": 0.0}, "sink_threshold"),
    ({"sling_target_sink": 0.6}, "sling_target_sink"),
    ({"sling_target_source": 0.4}, "sling_target_balanced"),
    ({"rebalance_min_amount": 6_000_000}, "rebalance_min_amount"),
    ({"hive_push_max_sats": 60_000_000}, "hive_push_max_sats"),
    ({"sling_job_timeout_seconds": 14_401}, "sling_job_timeout_seconds"),      # > 4 h x 3600
]


@pytest.mark.parametrize("values,field", CROSS_CASES)
def test_cross_field_at_startup(values: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        C.parse_options({BY_FIELD[k].name: v for k, v in values.items()})
    assert e.value.field == field and "must be" in e.value.message


def test_every_constraint_has_a_case() -> None:
    fields = {f for values, _ in CROSS_CASES for f in values}
    assert all(c.lower in fields or c.upper in fields for c in C.CONSTRAINTS)


def test_cross_field_on_override_names_the_changed_key_and_applies_nothing() -> None:
    cfg = C.with_override(DEFAULTS, "max_fee_ppm", 3000)
    with pytest.raises(ConfigError) as e:
        C.with_override(cfg, "min_fee_ppm", 9999)
    assert e.value.field == "min_fee_ppm" and "revenue-ops-max-fee-ppm" in e.value.message
    with pytest.raises(ConfigError) as e:
        C.with_override(cfg, "max_fee_ppm", 5)
    assert e.value.field == "max_fee_ppm"
    assert cfg.min_fee_ppm == 10 and cfg.max_fee_ppm == 3000 and cfg.version == 1


def test_equal_bounds_allowed_where_not_strict() -> None:
    cfg = C.with_override(C.with_override(DEFAULTS, "max_fee_ppm", 100), "min_fee_ppm", 100)
    assert (cfg.min_fee_ppm, cfg.max_fee_ppm, cfg.version) == (100, 100, 2)


# --- hot-swap ---

@pytest.mark.parametrize("key", C.IMMUTABLE_KEYS)
def test_immutable_keys_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="cannot be changed at runtime") as e:
        C.with_override(DEFAULTS, key, C.default_value(key))
    assert e.value.field == key
    with pytest.raises(ConfigError):
        C.with_default(DEFAULTS, key)


def test_override_accepts_option_name_and_string_values() -> None:
    cfg = C.with_override(DEFAULTS, "revenue-ops-price-anchor", "no")
    assert cfg.price_anchor is False and cfg.version == 1


def test_override_reset_round_trip_restores_memory() -> None:
    cfg = C.with_override(DEFAULTS, "max_fee_ppm", "3000")
    back = C.with_default(cfg, "max_fee_ppm")
    assert back.max_fee_ppm == 5000 and back.version == 2
    assert attrs.evolve(back, version=0) == DEFAULTS


def test_reset_that_would_break_a_rule_is_refused() -> None:
    cfg = C.with_override(C.with_override(DEFAULTS, "max_fee_ppm", 20000), "min_fee_ppm", 9000)
    cfg = C.with_override(cfg, "min_fee_ppm", 6000)
    with pytest.raises(ConfigError) as e:
        C.with_default(cfg, "max_fee_ppm")
    assert e.value.field == "max_fee_ppm"


@pytest.mark.parametrize("key", C.MUTABLE_KEYS)
def test_every_mutable_key_round_trips(key: str) -> None:
    opt = BY_FIELD[key]
    cfg = C.with_override(DEFAULTS, key, opt.default)
    assert C.get_value(cfg, key) == opt.default and cfg.version == 1


def test_public_dict_is_json_and_complete() -> None:
    d = C.to_public_dict(C.with_override(DEFAULTS, "max_fee_ppm", 3000))
    assert json.loads(json.dumps(d)) == d
    assert set(d) == set(BY_FIELD) | {"version"} and d["version"] == 1 and d["max_fee_ppm"] == 3000


@pytest.mark.parametrize("key", ["snapshot", "__class__", "version", "_version", "sling_available"])
def test_get_value_only_reaches_fields(key: str) -> None:
    with pytest.raises(ConfigError, match="Unknown config key"):
        C.get_value(DEFAULTS, key)


# --- retired options and values stored by earlier versions ---

def test_retired_options_warn_and_change_nothing() -> None:
    raw = {"revenue-ops-kelly-fraction": "0.3", "revenue-ops-flow-interval": 600, "revenue-ops-max-fee-ppm": 3000}
    assert attrs.evolve(C.parse_options(raw), max_fee_ppm=5000) == DEFAULTS
    warnings = C.retired_warnings(raw)
    assert len(warnings) == 2 and all("is retired and has no effect" in w for w in warnings)


def test_values_an_earlier_version_stored_are_named_with_the_setconfig_that_keeps_them() -> None:
    warnings = C.legacy_override_warnings({"max_fee_ppm": "3000", "kelly_fraction": "0.3"})
    assert "not applied" in warnings[1] and "lightning-cli setconfig revenue-ops-max-fee-ppm 3000" in warnings[1]
    assert "no longer a runtime setting" in warnings[0]


# --- runtime helpers ---

@pytest.mark.parametrize("address,warns", [("127.0.0.1", False), ("127.0.0.2", False), ("::1", False),
                                           ("localhost", False), ("0.0.0.0", True), ("192.0.2.2", True),
                                           ("::", True), ("metrics.example", True)])
def test_runtime_warning_for_exposed_exporter(address: str, warns: bool) -> None:
    cfg = C.parse_options({"revenue-ops-prometheus-address": address})
    assert bool(C.runtime_warnings(cfg)) is warns


def test_db_file() -> None:
    assert C.db_file(DEFAULTS, "/home/u/.lightning/bitcoin") == "/home/u/.lightning/bitcoin/revenue_ops.db"
    cfg = C.parse_options({"revenue-ops-db-path": "/var/lib/x.db"})
    assert C.db_file(cfg, "/ignored") == "/var/lib/x.db"


# --- docs stay in sync with the table ---

def test_the_docs_table_is_generated_from_the_declaration() -> None:
    """docs/configuration.md holds exactly docs_table() (regenerate: python -m revops.config)."""
    text = DOCS.read_text()
    start, end = text.index(C.DOCS_BEGIN), text.index(C.DOCS_END) + len(C.DOCS_END)
    assert text[start:end] == C.docs_table()
    for opt in C.OPTIONS:
        row = next(line for line in C.docs_table().splitlines() if line.startswith(f"| `{opt.name}` "))
        assert f"`{opt.field}`" in row and opt.allowed in row and ("yes" if opt.mutable else "no") in row


def test_bool_options_say_exactly_what_lightningd_accepts() -> None:
    """lightningd (since v25.05) takes only true/false/yes/no for a plugin bool option: help and docs say so."""
    from revops.plugin_main import plugin_options
    helps = {o["name"]: o["description"] for o in plugin_options(lambda *a: None)}
    for opt in (o for o in C.OPTIONS if o.type is bool):
        assert helps[opt.name].endswith("(true, false, yes or no (any case))")
    assert "`true`, `false`, `yes` or `no`" in DOCS.read_text()


def test_a_secret_option_is_never_shown_by_value() -> None:
    """revenue-config get answers whether the page token is set, never the token itself."""
    assert C.to_public_dict(DEFAULTS)["page_token"] == ""
    with_token = C.parse_options({"revenue-ops-page-token": "s3cret-Token"})
    assert with_token.page_token == "s3cret-Token"
    assert C.to_public_dict(with_token)["page_token"] == "(set)"
    assert "s3cret" not in str(C.to_public_dict(with_token))


def test_the_config_version_never_goes_back_across_reset_and_restart(tmp_path):
    """Issue 14 item 9: `version` went backwards after a reset and was 0 after a restart."""
    from revops import simulate
    from revops.sim.node import SimNode
    from revops.sim.scenario import load_scenario
    scenario = load_scenario("tiny")
    node, db = SimNode(scenario, seed=1), str(tmp_path / "r.db")
    sim = simulate.start(scenario, node=node, db_path=db)
    seen = [sim.rpc("revenue-config", {"action": "get"})["version"]]
    for params in ({"action": "set", "key": "max_fee_ppm", "value": 3000},
                   {"action": "set", "key": "min_fee_ppm", "value": 20},
                   {"action": "reset", "key": "min_fee_ppm"}, {"action": "reset", "key": "max_fee_ppm"}):
        seen.append(sim.rpc("revenue-config", params)["version"])
    again = simulate.start(scenario, node=node, db_path=db)       # restart on the same database
    seen.append(again.rpc("revenue-config", {"action": "get"})["version"])
    seen.append(again.rpc("revenue-config", {"action": "set", "key": "max_fee_ppm", "value": 2500})["version"])
    assert seen == [0, 1, 2, 3, 4, 4, 5], seen
    again.close()
