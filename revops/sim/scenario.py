"""Scenario files (TOML) for the simulated node and market.

Every key is documented in docs/simulator.md. Parsing is strict: an unknown key, a wrong type or an
out-of-range value raises :class:`ScenarioError` whose message starts with the dotted key path,
e.g. ``channels[2].capacity_sat: must be an integer > 0``.
"""
from __future__ import annotations

import hashlib
import math
import random
import tomllib
from pathlib import Path
from typing import Any

import attrs

from revops.sim.versions import DEFAULT_VERSION as DEFAULT_CLN_VERSION, VERSIONS as CLN_VERSIONS

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_START_TIME = 1767225600  # 2026-01-01T00:00:00Z


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the offending key."""


# --------------------------------------------------------------------------- data classes


@attrs.frozen
class NodeSpec:
    id: str
    alias: str
    start_time: int
    blockheight: int
    network: str
    color: str
    cln_version: str = DEFAULT_CLN_VERSION   # the Core Lightning version the node answers as (revops/sim/versions.py)


@attrs.frozen
class MarketSpec:
    gossip_delay_s: int = 900
    gossip_updates_per_day: float = 2.0   # token refill of the network's channel_update rate limit; 0 = none
    gossip_burst: int = 4                 # bucket size: updates that propagate back to back
    competitor_sigma: float = 0.5         # spread of competing channels' fees around the market price
    enforcedelay_s: int = 600
    downstream_fail_rate: float = 0.02
    settle_delay_ms: int = 1500
    block_interval_s: int = 600
    htlc_force_close_rate: float = 2e-5        # per forwarded HTLC: stuck, resolved on chain (docs/simulator.md)
    mpp_split_on_failure: bool = False         # a liquidity failure is retried once with half (docs/simulator.md)
    onchain_demand_elasticity: float = 0.1     # payment rate ∝ (feerate / baseline)^this during spikes
    onchain_tolerance_elasticity: float = 0.1  # fee tolerance ∝ (feerate / baseline)^this during spikes


@attrs.frozen
class ChannelSpec:
    name: str
    peer_id: str
    peer_alias: str
    capacity_sat: int
    local_sat: int
    opener: str
    age_days: float
    max_accepted_htlcs: int
    fee_base_msat: int
    fee_ppm: int
    open_fee_sat: int = 0   # the funding transaction's fee we paid (opener local): bookkeeper's onchain_fee


@attrs.frozen
class DemandSpec:
    name: str
    src: str  # channel name the payments come in through ("from" in TOML)
    dst: str  # channel name the payments leave through ("to" in TOML)
    rate_per_hour: float
    amount_dist: str
    median_sat: float
    sigma: float
    min_sat: int
    max_sat: int
    market_ppm: float
    market_base_msat: int
    tolerance_sigma: float
    start_day: float = 0.0
    end_day: float | None = None


@attrs.frozen
class ShiftSpec:
    at_day: float
    demand: tuple[str, ...]  # demand names; empty = all
    rate_multiplier: float
    market_ppm_multiplier: float


@attrs.frozen
class DrainSpec:
    channel: str
    direction: str  # "out": liquidity leaves via channel; "in": arrives via channel
    at_day: float
    duration_days: float
    rate_per_hour: float
    amount_sat: int
    market_ppm: float
    tolerance_sigma: float
    counterpart: tuple[str, ...]


@attrs.frozen
class SpikeSpec:
    at_day: float
    duration_hours: float
    multiplier: float


@attrs.frozen
class MempoolSpec:
    baseline: tuple[tuple[float, float], ...]  # (day, sat/vB) points, linearly interpolated
    spikes: tuple[SpikeSpec, ...]


@attrs.frozen
class CongestionSpec:
    channel: str
    at_day: float
    duration_hours: float
    slots: int
    value_sat: int
    direction: str


@attrs.frozen
class DisconnectSpec:
    peer: str  # a channel name or a peer id
    at_day: float
    duration_hours: float


@attrs.frozen
class RebalanceSpec:
    cost_ppm_median: float = 300.0
    cost_ppm_sigma: float = 0.6
    failure_probability: float = 0.35
    attempt_interval_s: int = 120


@attrs.frozen
class PluginsSpec:
    sling: bool = True
    clboss: bool = False
    bookkeeper: bool = True


@attrs.frozen
class EventSpec:
    at_day: float
    action: str  # "open" | "close" | "splice"
    channel: str  # name (close, splice: existing channel name; open: name of the new channel)
    peer_id: str | None
    capacity_sat: int
    local_sat: int
    opener: str
    fee_base_msat: int
    fee_ppm: int
    amount_sat: int = 0   # splice: sats spliced in (> 0) or out (< 0)
    confirms: int = 6     # splice: blocks until it locks in under a new short channel id
    fee_sat: int | None = None   # splice: the splice transaction's fee we pay (None: from the feerate)


@attrs.frozen
class Scenario:
    name: str
    node: NodeSpec
    market: MarketSpec
    channels: tuple[ChannelSpec, ...]
    demand: tuple[DemandSpec, ...]
    shifts: tuple[ShiftSpec, ...]
    drains: tuple[DrainSpec, ...]
    mempool: MempoolSpec
    congestion: tuple[CongestionSpec, ...]
    disconnects: tuple[DisconnectSpec, ...]
    rebalance: RebalanceSpec
    plugins: PluginsSpec
    events: tuple[EventSpec, ...]
    duration_days: float

    @property
    def start_time(self) -> int:
        return self.node.start_time

    def channel(self, name: str) -> ChannelSpec:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)


# --------------------------------------------------------------------------- helpers


def fake_pubkey(label: str) -> str:
    h = hashlib.sha256(label.encode()).hexdigest()
    return ("02" if int(h[-1], 16) % 2 == 0 else "03") + h


_MISSING = object()


class _T:
    """A TOML table being consumed with strict checking."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise ScenarioError(f"{where}: must be a table")
        self.d = dict(data)
        self.where = where
        self.used: set[str] = set()

    def _k(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key not in self.d:
            if default is _MISSING:
                raise ScenarioError(f"{self._k(key)}: required key missing")
            return default
        return self.d[key]

    def int(self, key: str, default: Any = _MISSING, lo: int | None = None, hi: int | None = None) -> int:
        v = self.get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, int) or isinstance(v, bool):
            raise ScenarioError(f"{self._k(key)}: must be an integer, got {v!r}")
        if lo is not None and v < lo:
            raise ScenarioError(f"{self._k(key)}: must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise ScenarioError(f"{self._k(key)}: must be <= {hi}, got {v}")
        return v

    def num(self, key: str, default: Any = _MISSING, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> float:
        v = self.get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ScenarioError(f"{self._k(key)}: must be a number, got {v!r}")
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ScenarioError(f"{self._k(key)}: must be {'>' if lo_open else '>='} {lo}, got {v}")
        if hi is not None and v > hi:
            raise ScenarioError(f"{self._k(key)}: must be <= {hi}, got {v}")
        return v

    def str(self, key: str, default: Any = _MISSING, choices: tuple[str, ...] | None = None) -> str:
        v = self.get(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, str):
            raise ScenarioError(f"{self._k(key)}: must be a string, got {v!r}")
        if choices is not None and v not in choices:
            raise ScenarioError(f"{self._k(key)}: must be one of {list(choices)}, got {v!r}")
        return v

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise ScenarioError(f"{self._k(key)}: must be true or false, got {v!r}")
        return v

    def strlist(self, key: str, default: Any = ()) -> tuple[str, ...]:
        v = self.get(key, default)
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ScenarioError(f"{self._k(key)}: must be a string or a list of strings")
        return tuple(v)

    def done(self) -> None:
        extra = sorted(set(self.d) - self.used)
        if extra:
            raise ScenarioError(f"{self._k(extra[0])}: unknown key")


def _tables(root: _T, key: str) -> list[_T]:
    v = root.get(key, [])
    if not isinstance(v, list):
        raise ScenarioError(f"{key}: must be an array of tables ([[{key}]])")
    return [_T(x, f"{key}[{i}]") for i, x in enumerate(v)]


_PUBKEY_HEX = set("0123456789abcdef")


def _check_pubkey(v: str, where: str) -> str:
    if len(v) != 66 or v[:2] not in ("02", "03") or not set(v) <= _PUBKEY_HEX:
        raise ScenarioError(f"{where}: must be a 33-byte compressed public key in lowercase hex")
    return v


# --------------------------------------------------------------------------- parsing


def _check_finite(value: Any, where: str) -> None:
    """TOML has inf and nan; no scenario number may be either (inf rates never finish, nan compares false)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(f"{where or 'scenario'}: must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def parse_scenario(data: dict, name: str = "scenario") -> Scenario:
    _check_finite(data, "")
    root = _T(data, "")
    sim_days = root.num("duration_days", 30.0, lo=0.0)

    nt = _T(root.get("node", {}), "node")
    node_id = nt.str("id", None)
    if node_id is None:
        node_id = fake_pubkey(f"simnode:{name}")
    _check_pubkey(node_id, "node.id")
    node = NodeSpec(
        id=node_id,
        alias=nt.str("alias", "SIMNODE"),
        start_time=nt.int("start_time", DEFAULT_START_TIME, lo=0),
        blockheight=nt.int("blockheight", 930000, lo=200),
        network=nt.str("network", "regtest", choices=("bitcoin", "testnet", "signet", "regtest")),
        color=nt.str("color", node_id[:6]),
        cln_version=nt.str("cln_version", DEFAULT_CLN_VERSION, choices=CLN_VERSIONS),
    )
    nt.done()

    mt = _T(root.get("market", {}), "market")
    market = MarketSpec(
        gossip_delay_s=mt.int("gossip_delay_s", 900, lo=0),
        gossip_updates_per_day=mt.num("gossip_updates_per_day", 2.0, lo=0.0),
        gossip_burst=mt.int("gossip_burst", 4, lo=1),
        competitor_sigma=mt.num("competitor_sigma", 0.5, lo=0.0, hi=3.0),
        enforcedelay_s=mt.int("enforcedelay_s", 600, lo=0),
        downstream_fail_rate=mt.num("downstream_fail_rate", 0.02, lo=0.0, hi=1.0),
        settle_delay_ms=mt.int("settle_delay_ms", 1500, lo=0, hi=60000),
        block_interval_s=mt.int("block_interval_s", 600, lo=1),
        htlc_force_close_rate=mt.num("htlc_force_close_rate", 2e-5, lo=0.0, hi=1.0),
        mpp_split_on_failure=mt.bool("mpp_split_on_failure", False),
        onchain_demand_elasticity=mt.num("onchain_demand_elasticity", 0.1, lo=0.0, hi=2.0),
        onchain_tolerance_elasticity=mt.num("onchain_tolerance_elasticity", 0.1, lo=0.0, hi=2.0),
    )
    mt.done()

    gen = root.get("generate", None)
    raw_channels = root.get("channels", [])
    raw_demand = root.get("demand", [])
    if gen is not None:
        gch, gdem = _generate(_T(gen, "generate"))
        raw_channels = list(raw_channels) + gch
        raw_demand = list(raw_demand) + gdem
    root.d["channels"] = raw_channels
    root.d["demand"] = raw_demand

    channels: list[ChannelSpec] = []
    names: set[str] = set()
    for t in _tables(root, "channels"):
        cname = t.str("name")
        if cname in names:
            raise ScenarioError(f"{t.where}.name: duplicate channel name {cname!r}")
        names.add(cname)
        cap = t.int("capacity_sat", lo=20000)
        local = t.int("local_sat", cap // 2, lo=0, hi=cap)
        pid = t.str("peer_id", None)
        if pid is None:
            pid = fake_pubkey(f"peer:{name}:{cname}")
        _check_pubkey(pid, f"{t.where}.peer_id")
        channels.append(ChannelSpec(
            name=cname, peer_id=pid, peer_alias=t.str("peer_alias", cname),
            capacity_sat=cap, local_sat=local,
            opener=t.str("opener", "remote", choices=("local", "remote")),
            age_days=t.num("age_days", 90.0, lo=0.0),
            max_accepted_htlcs=t.int("max_accepted_htlcs", 483, lo=1, hi=483),
            fee_base_msat=t.int("fee_base_msat", 1000, lo=0, hi=2**32 - 1),
            fee_ppm=t.int("fee_ppm", 10, lo=0, hi=2**32 - 1),
            open_fee_sat=t.int("open_fee_sat", 0, lo=0),
        ))
        if channels[-1].open_fee_sat and channels[-1].opener != "local":
            raise ScenarioError(f"{t.where}.open_fee_sat: only the opener pays the funding fee (opener = \"local\")")
        t.done()
    if not channels:
        raise ScenarioError("channels: a scenario needs at least one channel")

    def chan_ref(v: str, where: str) -> str:
        if v not in names:
            raise ScenarioError(f"{where}: unknown channel name {v!r}")
        return v

    demand: list[DemandSpec] = []
    dnames: set[str] = set()
    for i, t in enumerate(_tables(root, "demand")):
        dname = t.str("name", f"d{i}")
        if dname in dnames:
            raise ScenarioError(f"{t.where}.name: duplicate demand name {dname!r}")
        dnames.add(dname)
        src = chan_ref(t.str("from"), f"{t.where}.from")
        dst = chan_ref(t.str("to"), f"{t.where}.to")
        if src == dst:
            raise ScenarioError(f"{t.where}.to: must differ from 'from'")
        mn = t.int("min_sat", 1, lo=1)
        mx = t.int("max_sat", 5_000_000, lo=mn)
        end_day = t.num("end_day", None, lo=0.0)
        demand.append(DemandSpec(
            name=dname, src=src, dst=dst,
            rate_per_hour=t.num("rate_per_hour", lo=0.0),
            amount_dist=t.str("amount_dist", "lognormal", choices=("lognormal", "fixed")),
            median_sat=t.num("median_sat", 50_000.0, lo=1.0),
            sigma=t.num("sigma", 1.0, lo=0.0),
            min_sat=mn, max_sat=mx,
            market_ppm=t.num("market_ppm", lo=0.0),
            market_base_msat=t.int("market_base_msat", 1000, lo=0),
            tolerance_sigma=t.num("tolerance_sigma", 0.5, lo=0.0),
            start_day=t.num("start_day", 0.0, lo=0.0),
            end_day=end_day,
        ))
        t.done()

    shifts: list[ShiftSpec] = []
    for t in _tables(root, "shifts"):
        ds = t.strlist("demand", ())
        for d in ds:
            if d not in dnames:
                raise ScenarioError(f"{t.where}.demand: unknown demand name {d!r}")
        shifts.append(ShiftSpec(
            at_day=t.num("at_day", lo=0.0), demand=ds,
            rate_multiplier=t.num("rate_multiplier", 1.0, lo=0.0),
            market_ppm_multiplier=t.num("market_ppm_multiplier", 1.0, lo=0.0, lo_open=True),
        ))
        t.done()

    drains: list[DrainSpec] = []
    for t in _tables(root, "drains"):
        ch = chan_ref(t.str("channel"), f"{t.where}.channel")
        cps = t.strlist("counterpart", ())
        for c in cps:
            chan_ref(c, f"{t.where}.counterpart")
        drains.append(DrainSpec(
            channel=ch, direction=t.str("direction", "out", choices=("out", "in")),
            at_day=t.num("at_day", lo=0.0), duration_days=t.num("duration_days", lo=0.0, lo_open=True),
            rate_per_hour=t.num("rate_per_hour", lo=0.0, lo_open=True),
            amount_sat=t.int("amount_sat", lo=1),
            market_ppm=t.num("market_ppm", 2000.0, lo=0.0),
            tolerance_sigma=t.num("tolerance_sigma", 0.3, lo=0.0),
            counterpart=cps,
        ))
        t.done()

    mpt = _T(root.get("mempool", {}), "mempool")
    base = mpt.get("baseline_sat_vb", 10.0)
    if isinstance(base, (int, float)) and not isinstance(base, bool):
        if base <= 0:
            raise ScenarioError("mempool.baseline_sat_vb: must be > 0")
        baseline = ((0.0, float(base)),)
    elif isinstance(base, list) and base and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)
            for p in base):
        baseline = tuple(sorted((float(a), float(b)) for a, b in base))
        if any(b <= 0 for _a, b in baseline):
            raise ScenarioError("mempool.baseline_sat_vb: values must be > 0")
    else:
        raise ScenarioError("mempool.baseline_sat_vb: must be a number or a list of [day, sat_per_vB] pairs")
    spikes = []
    for t in _tables(mpt, "spikes"):
        t.where = "mempool." + t.where
        spikes.append(SpikeSpec(at_day=t.num("at_day", lo=0.0), duration_hours=t.num("duration_hours", lo=0.0, lo_open=True),
                                multiplier=t.num("multiplier", lo=0.0, lo_open=True)))
        t.done()
    mpt.done()
    mempool = MempoolSpec(baseline=baseline, spikes=tuple(spikes))

    congestion = []
    for t in _tables(root, "congestion"):
        ch = chan_ref(t.str("channel"), f"{t.where}.channel")
        congestion.append(CongestionSpec(
            channel=ch, at_day=t.num("at_day", lo=0.0), duration_hours=t.num("duration_hours", lo=0.0, lo_open=True),
            slots=t.int("slots", lo=1, hi=483), value_sat=t.int("value_sat", 0, lo=0),
            direction=t.str("direction", "out", choices=("out", "in"))))
        t.done()

    peer_ids = {c.peer_id for c in channels}
    disconnects = []
    for t in _tables(root, "disconnects"):
        p = t.str("peer")
        if p not in names and p not in peer_ids:
            raise ScenarioError(f"{t.where}.peer: unknown channel name or peer id {p!r}")
        disconnects.append(DisconnectSpec(peer=p, at_day=t.num("at_day", lo=0.0),
                                          duration_hours=t.num("duration_hours", lo=0.0, lo_open=True)))
        t.done()

    rt = _T(root.get("rebalance", {}), "rebalance")
    rebalance = RebalanceSpec(
        cost_ppm_median=rt.num("cost_ppm_median", 300.0, lo=0.0),
        cost_ppm_sigma=rt.num("cost_ppm_sigma", 0.6, lo=0.0),
        failure_probability=rt.num("failure_probability", 0.35, lo=0.0, hi=1.0),
        attempt_interval_s=rt.int("attempt_interval_s", 120, lo=1),
    )
    rt.done()

    pt = _T(root.get("plugins", {}), "plugins")
    plugins = PluginsSpec(sling=pt.bool("sling", True), clboss=pt.bool("clboss", False),
                          bookkeeper=pt.bool("bookkeeper", True))
    pt.done()

    events = []
    for t in _tables(root, "events"):
        action = t.str("action", choices=("open", "close", "splice"))
        ch = t.str("channel")
        if action == "splice":
            chan_ref(ch, f"{t.where}.channel")
            events.append(EventSpec(at_day=t.num("at_day", lo=0.0), action=action, channel=ch, peer_id=None,
                                    capacity_sat=0, local_sat=0, opener="local", fee_base_msat=1000, fee_ppm=10,
                                    amount_sat=t.int("amount_sat"), confirms=t.int("confirms", 6, lo=1, hi=1000),
                                    fee_sat=t.int("fee_sat", None, lo=0)))
        elif action == "close":
            chan_ref(ch, f"{t.where}.channel")
            events.append(EventSpec(at_day=t.num("at_day", lo=0.0), action=action, channel=ch, peer_id=None,
                                    capacity_sat=0, local_sat=0, opener="local", fee_base_msat=1000, fee_ppm=10))
        else:
            if ch in names:
                raise ScenarioError(f"{t.where}.channel: channel name {ch!r} already used")
            names.add(ch)
            cap = t.int("capacity_sat", lo=20000)
            pid = t.str("peer_id", None)
            if pid is not None:
                _check_pubkey(pid, f"{t.where}.peer_id")
            events.append(EventSpec(
                at_day=t.num("at_day", lo=0.0), action=action, channel=ch, peer_id=pid,
                capacity_sat=cap, local_sat=t.int("local_sat", cap, lo=0, hi=cap),
                opener=t.str("opener", "local", choices=("local", "remote")),
                fee_base_msat=t.int("fee_base_msat", 1000, lo=0), fee_ppm=t.int("fee_ppm", 10, lo=0)))
        t.done()
    root.used.add("generate")
    root.str("name", name)
    root.str("description", "")
    root.done()

    return Scenario(name=name, node=node, market=market, channels=tuple(channels), demand=tuple(demand),
                    shifts=tuple(shifts), drains=tuple(drains), mempool=mempool, congestion=tuple(congestion),
                    disconnects=tuple(disconnects), rebalance=rebalance, plugins=plugins, events=tuple(events),
                    duration_days=sim_days)


def _generate(t: _T) -> tuple[list[dict], list[dict]]:
    """Deterministically build channel and demand tables from ``[generate]``."""
    seed = t.int("seed", 1)
    n = t.int("channels", lo=2, hi=10_000)
    pairs = t.int("demand_pairs", n * 2, lo=0)
    cap_min = t.int("capacity_sat_min", 1_000_000, lo=20000)
    cap_max = t.int("capacity_sat_max", 20_000_000, lo=cap_min)
    ppm_med = t.num("market_ppm_median", 400.0, lo=0.0, lo_open=True)
    ppm_sig = t.num("market_ppm_sigma", 0.8, lo=0.0)
    rate_total = t.num("rate_per_hour_total", float(n) * 2.0, lo=0.0)
    amt_med = t.num("median_sat", 60_000.0, lo=1.0)
    amt_sig = t.num("sigma", 1.2, lo=0.0)
    tol = t.num("tolerance_sigma", 0.5, lo=0.0)
    local_frac = t.num("local_opener_fraction", 0.5, lo=0.0, hi=1.0)
    alpha = t.num("popularity_alpha", 1.5, lo=0.0, lo_open=True)
    balance = t.str("local_balance", "opener", choices=("opener", "bimodal"))
    floor_share = t.num("rate_floor_share", 0.0, lo=0.0, hi=1.0)
    t.done()
    rng = random.Random(seed)
    chans = []
    weights = []
    for i in range(n):
        cap = int(round(cap_min * (cap_max / cap_min) ** rng.random(), -3))
        cap = max(cap_min, min(cap_max, cap))
        opener = "local" if rng.random() < local_frac else "remote"
        if balance == "bimodal":   # liquidity sits at one end of most channels (Pickhardt et al.)
            share = min(0.99, max(0.01, rng.betavariate(0.3, 0.3)))
        else:
            share = rng.uniform(0.5, 0.95) if opener == "local" else rng.uniform(0.05, 0.5)
        local = int(cap * share)
        chans.append({"name": f"g{i:04d}", "capacity_sat": cap, "local_sat": local, "opener": opener,
                      "age_days": round(rng.uniform(5, 700), 1), "fee_base_msat": 1000, "fee_ppm": 10})
        weights.append(rng.paretovariate(alpha))  # heavy-tailed peer popularity
    dem = []
    idx = list(range(n))
    raw = []
    for j in range(pairs):
        a = rng.choices(idx, weights)[0]
        b = rng.choices(idx, weights)[0]
        while b == a:
            b = rng.choices(idx, weights)[0]
        raw.append((a, b, weights[a] * weights[b]))
    tot = sum(r[2] for r in raw) or 1.0
    core = rate_total * (1.0 - floor_share)

    def pair(name: str, a: int, b: int, rate: float) -> dict:
        return {"name": name, "from": f"g{a:04d}", "to": f"g{b:04d}", "rate_per_hour": round(rate, 6),
                "median_sat": round(amt_med * math_exp(rng.gauss(0, 0.5))), "sigma": amt_sig,
                "max_sat": 5_000_000,
                "market_ppm": round(ppm_med * math_exp(rng.gauss(0, ppm_sig)), 1),
                "tolerance_sigma": tol}

    for j, (a, b, w) in enumerate(raw):
        dem.append(pair(f"gd{j:05d}", a, b, core * w / tot))
    if floor_share > 0:   # a trickle out through every channel, from a random other one
        for b in range(n):
            a = rng.choice([i for i in idx if i != b])
            dem.append(pair(f"gf{b:05d}", a, b, rate_total * floor_share / n))
    return chans, dem


def math_exp(x: float) -> float:
    import math
    return math.exp(x)


def load_scenario(path_or_name: str) -> Scenario:
    """Load a scenario from a path, or a bundled name like ``"small"`` / ``"small.toml"``."""
    p = Path(path_or_name)
    if not p.is_file():
        cand = SCENARIO_DIR / (path_or_name if path_or_name.endswith(".toml") else path_or_name + ".toml")
        if cand.is_file():
            p = cand
        else:
            raise ScenarioError(f"scenario {path_or_name!r}: no such file or bundled scenario")
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p.name}: TOML syntax error: {e}") from e
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{p.name}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ScenarioError(f"{p}: {e.strerror or e}") from None
    name = data.get("name") if isinstance(data.get("name"), str) else p.stem
    return parse_scenario(data, name=name)


def loads_scenario(text: str, name: str = "inline") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{name}: TOML syntax error: {e}") from e
    return parse_scenario(data, name=name)
