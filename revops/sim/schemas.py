"""Validation of JSON against Core Lightning's own JSON schemas (with CLN's type extensions).

Usable from tests::

    from revops.sim.schemas import validate_response, validate_notification, shape_mismatches
    validate_response("getinfo", node.call("getinfo"))

The schemas live in ``$REVOPS_SHARED_DIR/cln-schemas`` or else ``<repo>/../shared/cln-schemas``; they are not
part of the repository (tests that need them skip without them: tests/needs.py).
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft7Validator

CLN_VERSION = "v25.12.1"        # the default; every function takes a version (revops/sim/versions.py)
NOTIFICATION_ONLY_VERSION = "v26.06.6-notification-only"
LATER_VERSION = "v26.06.6"   # every notification schema; plugin_started/_stopped (added v25.02) only here

_HEX = re.compile(r"^([0-9a-fA-F]{2})*$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_PUBKEY = re.compile(r"^0[23][0-9a-fA-F]{64}$")
_SCID = re.compile(r"^[0-9]+x[0-9]+x[0-9]+$")
_SCID_DIR = re.compile(r"^[0-9]+x[0-9]+x[0-9]+/[01]$")
_OUTPOINT = re.compile(r"^[0-9a-fA-F]{64}:[0-9]+$")


def shared_dir() -> Path:
    """``$REVOPS_SHARED_DIR`` when set, else the project's shared directory beside the repository."""
    env = os.environ.get("REVOPS_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def schemas_dir() -> Path:
    return shared_dir() / "cln-schemas"


def fixtures_dir() -> Path:
    return shared_dir() / "cln-fixtures"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _uint(bits: int):
    top = (1 << bits) - 1
    return lambda _c, v: _is_int(v) and 0 <= v <= top


def _str_re(rx: re.Pattern):
    return lambda _c, v: isinstance(v, str) and bool(rx.match(v))


_EXTRA_TYPES = {
    "integer": lambda _c, v: _is_int(v),
    "number": lambda _c, v: (isinstance(v, (int, float)) and not isinstance(v, bool)),
    "u64": _uint(64),
    "u32": _uint(32),
    "u16": _uint(16),
    "u8": _uint(8),
    "msat": _uint(64),
    "sat": _uint(64),
    "msat_or_all": lambda _c, v: v == "all" or (_is_int(v) and v >= 0),
    "msat_or_any": lambda _c, v: v == "any" or (_is_int(v) and v >= 0),
    "sat_or_all": lambda _c, v: v == "all" or (_is_int(v) and v >= 0),
    "hex": _str_re(_HEX),
    "hash": _str_re(_HEX64),
    "secret": _str_re(_HEX64),
    "txid": _str_re(_HEX64),
    "pubkey": _str_re(_PUBKEY),
    "short_channel_id": _str_re(_SCID),
    "short_channel_id_dir": _str_re(_SCID_DIR),
    "outpoint": _str_re(_OUTPOINT),
    "signature": _str_re(_HEX),
    "bip340sig": _str_re(_HEX),
    "currency": lambda _c, v: isinstance(v, str),
    "feerate": lambda _c, v: isinstance(v, (str, int)) and not isinstance(v, bool),
    "outputdesc": lambda _c, v: isinstance(v, (dict, list)),
    "chain": lambda _c, v: isinstance(v, str),
    "channel": lambda _c, v: isinstance(v, str),
}

_TYPE_CHECKER = Draft7Validator.TYPE_CHECKER.redefine_many(_EXTRA_TYPES)
ClnValidator = jsonschema.validators.extend(Draft7Validator, type_checker=_TYPE_CHECKER)


@functools.lru_cache(maxsize=None)
def load_schema(name: str, version: str = CLN_VERSION) -> dict:
    """Load a schema file, e.g. ``load_schema("getinfo")`` or ``load_schema("notification/connect")``."""
    path = schemas_dir() / version / f"{name}.json"
    with open(path) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _validator(name: str, part: str, version: str) -> Any:
    sch = load_schema(name, version)[part]
    sch = dict(sch)
    sch.setdefault("type", "object")
    return ClnValidator(sch)


def has_schema(method: str, version: str = CLN_VERSION) -> bool:
    return (schemas_dir() / version / f"{method}.json").is_file()


def validate_response(method: str, result: Any, version: str = CLN_VERSION) -> None:
    """Validate an RPC result against the ``response`` part of ``<version>/<method>.json`` (raises ValidationError)."""
    _validator(method, "response", version).validate(result)


def validate_request(method: str, params: dict, version: str = CLN_VERSION) -> None:
    _validator(method, "request", version).validate(params)


def notification_schema_location(topic: str, version: str = CLN_VERSION) -> tuple[str, str] | None:
    """(schema name, folder) of a notification's schema: the version's own, else (v25.12.1 ships only six)
    the v26.06.6 copy."""
    if (schemas_dir() / version / "notification" / f"{topic}.json").is_file():
        return f"notification/{topic}", version
    if (schemas_dir() / NOTIFICATION_ONLY_VERSION / f"{topic}.json").is_file():
        return topic, NOTIFICATION_ONLY_VERSION
    if (schemas_dir() / LATER_VERSION / "notification" / f"{topic}.json").is_file():
        return f"notification/{topic}", LATER_VERSION
    return None


def validate_notification(topic: str, params: dict, version: str = CLN_VERSION) -> None:
    """Validate notification params (``{topic: {...}}``) against the topic's schema for ``version``.

    v25.12.1 ships schemas for block_added, channel_opened, channel_state_changed and connect;
    forward_event, coin_movement, balance_snapshot and disconnect use the v26.06.6 copies.
    Quirks of the real v25.12.1 payload (see cln-fixtures/notification-channel_state_changed.json):
    channel_state_changed sends ``"message": null`` on CLOSED and ``"old_state": "unknown"`` for a new
    channel; these are accepted for v25.12.1 only (v26.06 omits both). Both send ``"short_channel_id": null``
    before lockin (the schema's description says so).
    """
    loc = notification_schema_location(topic, version)
    if loc is None:
        raise KeyError(f"no schema for notification {topic!r}")
    if set(params) != {topic}:
        raise jsonschema.ValidationError(f"notification params must be {{{topic!r}: ...}}, got keys {sorted(params)}")
    body = params[topic]
    if topic == "channel_state_changed":
        v25 = version == CLN_VERSION
        body = {k: v for k, v in body.items() if not (v is None and (k == "short_channel_id" or v25 and k == "message"))}
        if v25 and body.get("old_state") == "unknown":  # deprecated value v25.12.1 still sends for new channels
            body["old_state"] = "OPENINGD"
    name, folder = loc
    _validator(name, "response", folder).validate(body)


def _tname(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if v is None:
        return "null"
    return type(v).__name__


def shape_mismatches(obj: Any, fixture: Any, path: str = "$", allow_extra: bool = True,
                     allow_missing: bool = True, _out: list | None = None) -> list[str]:
    """Compare key sets and value types of ``obj`` against a captured ``fixture``.

    Lists: every element of obj is compared with the union of the fixture elements' keys (first element
    with the same ``type``/``tag``/``status`` if present). Returns human-readable mismatches.
    int vs float is treated as a mismatch except that a fixture float accepts an int that is a whole number
    timestamp only when the fixture shows floats (CLN prints ``received_time`` as a float).
    """
    out = [] if _out is None else _out
    if isinstance(fixture, dict):
        if not isinstance(obj, dict):
            out.append(f"{path}: expected object, got {_tname(obj)}")
            return out
        for k, v in obj.items():
            if k in fixture:
                shape_mismatches(v, fixture[k], f"{path}.{k}", allow_extra, allow_missing, out)
            elif not allow_extra:
                out.append(f"{path}: extra key {k!r}")
        if not allow_missing:
            for k in fixture:
                if k not in obj:
                    out.append(f"{path}: missing key {k!r}")
        return out
    if isinstance(fixture, list):
        if not isinstance(obj, list):
            out.append(f"{path}: expected array, got {_tname(obj)}")
            return out
        if not fixture:
            return out
        for i, el in enumerate(obj):
            ref = fixture[0]
            if isinstance(el, dict) and all(isinstance(x, dict) for x in fixture):
                merged: dict = {}
                for x in fixture:
                    for k, v in x.items():
                        merged.setdefault(k, v)
                ref = merged
            shape_mismatches(el, ref, f"{path}[{i}]", allow_extra, allow_missing, out)
        return out
    ft, ot = _tname(fixture), _tname(obj)
    if ft != ot and not (ft == "float" and ot == "int") and not (ft == "null" or ot == "null"):
        out.append(f"{path}: type {ot} where fixture has {ft}")
    return out


def load_fixture(name: str) -> Any:
    with open(fixtures_dir() / (name if name.endswith(".json") else name + ".json")) as f:
        return json.load(f)
