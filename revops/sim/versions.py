"""The Core Lightning versions the simulated node answers as: v25.12.1 (default) and v26.06.6.

The market and the RPC handlers of revops/sim/node.py produce v25.12.1 shapes (the version of the captures
in ../shared/cln-fixtures). For v26.06.6 this module rewrites every answer and notification where the newer
lightningd differs, as found by diffing ../shared/cln-schemas/v25.12.1 against v26.06.6 (the table is in
docs/simulator.md, "Core Lightning versions"). Pure functions: no state, no random draw, so a run's market
is identical under both versions; only the JSON differs.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

V25 = "v25.12.1"
V26 = "v26.06.6"
VERSIONS = (V25, V26)
DEFAULT_VERSION = V25
# v26.04: a feerate for splices (Core Lightning's examples: the opening feerate + 5)
SPLICE_FEERATE_OVER_OPENING = 5


def check_version(version: Any) -> str:
    """The version itself, or ValueError naming the allowed ones."""
    if version not in VERSIONS:
        raise ValueError(f"Core Lightning version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return version


def call(version: str, node: Any, method: str, params: Any, dispatch: Callable[[Any, str, Any], dict]) -> dict:
    """node.call(method, params) as `version` answers it; `dispatch` answers as v25.12.1."""
    if version == V25:
        return dispatch(node, method, params)
    channel_id = None
    if method == "listpeerchannels" and isinstance(params, list) and len(params) == 3:   # id, scid, channel_id
        params = {k: v for k, v in zip(("id", "short_channel_id", "channel_id"), params) if v is not None}
    if method == "listpeerchannels" and isinstance(params, dict) and params.get("channel_id") is not None:
        params = dict(params)
        channel_id = params.pop("channel_id")
        if params.get("id") is not None or params.get("short_channel_id") is not None:
            raise node.rpc_error(method, params, -32602,
                                 "Can only specify one of id, short_channel_id or channel_id")
    result = dispatch(node, method, params)
    if channel_id is not None:
        result = {"channels": [c for c in result["channels"] if c.get("channel_id") == channel_id]}
    return _RESULTS.get(method, _same)(node, result)


def notification(version: str, topic: str, params: dict) -> dict:
    """A notification's params as `version` sends them (the node emits v25.12.1 ones plus a settled
    forward's `preimage`, which only v26.04+ sends)."""
    if version == V25:
        if topic == "forward_event" and "preimage" in params[topic]:
            params = {topic: {k: v for k, v in params[topic].items() if k != "preimage"}}
        return params
    if topic == "channel_state_changed":
        body = dict(params[topic])
        if body.get("old_state") == "unknown":     # v26.06 removed the deprecated 'unknown' for new channels
            del body["old_state"]
        if body.get("message") is None:            # omitted instead of null
            body.pop("message", None)
        return {topic: body}
    return params


def _same(_node: Any, result: dict) -> dict:
    return result


def _getinfo(_node: Any, result: dict) -> dict:
    return {**result, "version": V26}


def _listpeerchannels(_node: Any, result: dict) -> dict:
    # max_total_htlc_in_msat: deprecated in v25.02, removed in v26.06 (`direction`, which the v26.06 schema
    # adds, is no difference: v25.12.1 already sends it, see cln-fixtures/listpeerchannels.json)
    return {**result, "channels": [{k: v for k, v in ch.items() if k != "max_total_htlc_in_msat"}
                                   for ch in result["channels"]]}


def _feerates(_node: Any, result: dict) -> dict:
    result = copy.deepcopy(result)
    for style in ("perkw", "perkb"):
        body = result.get(style)
        if body is None or "opening" not in body:
            continue
        # keep lightningd's key order: splice comes right after penalty
        items = list(body.items())
        at = next((i + 1 for i, (k, _v) in enumerate(items) if k == "penalty"), len(items))
        items.insert(at, ("splice", body["opening"] + SPLICE_FEERATE_OVER_OPENING))
        result[style] = dict(items)
    return result


_RESULTS: dict[str, Callable[[Any, dict], dict]] = {
    "getinfo": _getinfo,
    "listpeerchannels": _listpeerchannels,
    "feerates": _feerates,
}
