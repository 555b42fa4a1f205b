"""Adapters to lightningd and the plugins beside it (sling, clboss, bookkeeper).

Every external call goes through `call_with_retry`: a timeout per attempt and a bounded retry on
transport faults (tenacity). A JSON-RPC error answer is a definite answer and is never retried.

pyln's LightningRpc opens a socket per call with no timeout, so a wedged lightningd would hang an io
thread forever; `SocketRpc` speaks the same JSON-RPC framing with a socket timeout instead.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Protocol

import tenacity
from pyln.client import RpcError

OPTIONAL_PLUGINS = ("sling", "clboss", "bookkeeper")
NOT_SENT = -32099        # our own error code: the call was refused before it left the plugin (dry-run, no registry row)
# calls that only read: everything else (setchannel, sling-once/job/go/stop/deletejob, clboss-unmanage, any method
# added later) counts as changing state and is never sent in dry-run (fail closed)
OWN_OPTION_PREFIX = "revenue-ops-"
READ_ONLY = frozenset({"getinfo", "listpeerchannels", "listforwards", "listfunds", "listchannels", "listpeers",
                       "listnodes", "feerates", "sling-jobsettings", "sling-stats", "sling-version",
                       "clboss-status", "bkpr-listaccountevents", "bkpr-listincome", "bkpr-listbalances"})


# Calls never retried on a transport fault: a `sling-once` whose answer was lost may have started the job, and
# sent again it is refused ("There is already a job for that scid running!") as if nothing had started; its
# lost answer must reach the job table as lost (the executor then looks whether sling runs it).
NOT_RETRIED = frozenset({"sling-once"})

# Ending one of our jobs only ends spending: a job that runs when the kill switch is thrown must stop, not
# spend on (found by the sequence run, seeds 1439, 1634, 3408, 4626, 5373), and its final stats are then read
# and its spend booked in dry-run too. `sling-deletejob` (only for a continuous sling-job left by an earlier
# release, which it stops first) passes only for one job with its stats kept (`ends_spending`): refusing it
# left such a job between stop and booking for as long as dry-run was on (seed 4118). Fail closed.
STOPS_SPENDING = frozenset({"sling-stop", "sling-deletejob"})


def ends_spending(method: str, params: Any = None) -> bool:
    """`sling-stop`, or `sling-deletejob` of one job keeping sling's records (never `all`, never its stats)."""
    if method == "sling-deletejob":
        return (isinstance(params, dict) and params.get("delete_stats") is False
                and params.get("job") not in (None, "all"))
    return method in STOPS_SPENDING


def changes_state(method: str, params: Any = None) -> bool:
    """Whether a call may change the node or a plugin in a way dry-run forbids (`plugin` only reads with
    subcommand list; ending one of our sling jobs only ends spending, `ends_spending`). `setconfig` of one of
    our own options is the operator's `revenue-config set`, never a decision of the plugin: it passes in
    dry-run too (it is how dry-run is switched off)."""
    if ends_spending(method, params):
        return False
    if method == "setconfig" and isinstance(params, dict):
        return not str(params.get("config", "")).startswith(OWN_OPTION_PREFIX)
    if method == "plugin":
        sub = params.get("subcommand") if isinstance(params, dict) else (params[0] if params else None)
        return sub != "list"
    return method not in READ_ONLY


class MalformedReply(ValueError):
    """lightningd's answer could not be read (cut off, not JSON, not UTF-8, neither result nor error).

    Not retried: the call may have been carried out. The runtime answers it as a call without a definite
    answer (like a timeout), so a write whose answer was unreadable is treated as possibly applied.
    """


class RpcClient(Protocol):
    def call(self, method: str, params: dict | list | None = None) -> dict: ...


_RECV_BYTES = 1 << 18


class SocketRpc:
    """Minimal JSON-RPC 2.0 client for lightningd's unix socket, with a timeout."""

    _ids = iter(range(1, 1 << 62))
    _lock = threading.Lock()

    def __init__(self, path: str, timeout: float = 15.0):
        self.path = path
        self.timeout = timeout

    def call(self, method: str, params: dict | list | None = None) -> dict:
        with self._lock:
            req_id = f"cl-revenue-ops:{method}#{next(self._ids)}"
        if isinstance(params, dict):
            params = {k: v for k, v in params.items() if v is not None}
        request = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or {}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            sock.sendall(json.dumps(request).encode())
            reply = self._read(sock)
        if not isinstance(reply, dict) or ("error" not in reply and "result" not in reply):
            raise MalformedReply(f"{method}: reply has neither 'result' nor 'error': {str(reply)[:200]}")
        if "error" in reply:
            raise RpcError(method, params or {}, reply["error"])
        return reply["result"]

    @staticmethod
    def _read(sock: socket.socket) -> dict:
        """lightningd ends every reply with a blank line; JSON strings can never contain one raw.

        Each chunk is searched from where the last one ended (a 13 MB listpeerchannels at 5,000 channels
        arrives in hundreds of chunks: searching and copying the whole buffer per chunk was quadratic)."""
        buf = bytearray()
        end = -1
        while end < 0:
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                if buf.strip():
                    break
                raise ConnectionError("lightningd closed the RPC connection")
            start = max(len(buf) - 1, 0)        # a blank line may straddle two chunks
            buf += chunk
            end = buf.find(b"\n\n", start)
        try:
            return json.loads(buf[:end] if end >= 0 else buf)
        except ValueError as e:     # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            raise MalformedReply(f"unreadable reply ({len(buf)} bytes): {type(e).__name__}: {e}") from e


def plugin_group(method: str) -> str:
    """Which dependency answers a method: the health of that one degrades when it fails."""
    if method.startswith("sling-"):
        return "sling"
    if method.startswith("clboss-"):
        return "clboss"
    if method.startswith("bkpr-"):
        return "bookkeeper"
    return "lightningd"


def is_unknown_command(err: RpcError) -> bool:
    error = err.error if isinstance(err.error, dict) else {}
    return error.get("code") == -32601 or "Unknown command" in str(error.get("message", ""))


def call_with_retry(client: RpcClient, method: str, params: dict | list | None,
                    attempts: int = 3, backoff: float = 0.2) -> tuple[Any, float]:
    """Call with bounded retries on transport faults; returns (result, seconds of the last attempt)."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff, max=2.0) if backoff > 0 else tenacity.wait_none(),
        retry=tenacity.retry_if_exception_type((OSError, TimeoutError, ConnectionError)),
        reraise=True)
    for attempt in retrying:
        with attempt:
            started = time.monotonic()
            result = client.call(method, params)
            return result, time.monotonic() - started
    raise AssertionError("unreachable")  # pragma: no cover


def is_clboss(plugin_event: dict) -> bool:
    """Is a plugin_started / plugin_stopped payload about clboss? (by its methods, else its file name)"""
    methods = plugin_event.get("methods") or []
    name = str(plugin_event.get("plugin_name") or plugin_event.get("plugin_path") or "")
    return any(str(m).startswith("clboss-") for m in methods) or "clboss" in name.rsplit("/", 1)[-1].lower()


def installed_plugins(plugin_list: dict) -> dict[str, bool]:
    """From `plugin list`: which optional plugins run (by file name, as cl-hive detects us)."""
    names = [p.get("name", "").rsplit("/", 1)[-1].lower() for p in plugin_list.get("plugins", [])
             if p.get("active", True)]
    return {dep: any(dep in n for n in names) for dep in OPTIONAL_PLUGINS}


def parse_channel(ch: dict, connected: bool | None = None) -> dict:
    """listpeerchannels entry → ChannelView fields (msat as int)."""
    get = ch.get     # 5,000 entries a fee cycle at the largest nodes: one bound lookup, not nineteen
    local = get("updates", {}).get("local", {})
    htlcs = get("htlcs", [])
    return {
        "scid": get("short_channel_id", ""),
        "peer_id": ch["peer_id"],
        "channel_id": get("channel_id", ""),
        "state": ch["state"],
        "opener": get("opener", "local"),
        "capacity_msat": int(get("total_msat", 0)),
        "local_msat": int(get("to_us_msat", 0)),
        "spendable_msat": int(get("spendable_msat", 0)),
        "receivable_msat": int(get("receivable_msat", 0)),
        "fee_base_msat": int(local.get("fee_base_msat", get("fee_base_msat", 0))),
        "fee_ppm": int(local.get("fee_proportional_millionths", get("fee_proportional_millionths", 0))),
        "htlc_count": len(htlcs),
        "htlc_value_msat": sum(int(h.get("amount_msat", 0)) for h in htlcs) if htlcs else 0,
        "max_accepted_htlcs": int(get("max_accepted_htlcs", 483)),
        "peer_connected": bool(get("peer_connected", True) if connected is None else connected),
        "funding_txid": get("funding_txid", ""),
        "htlc_max_msat": int(local.get("htlc_maximum_msat", get("maximum_htlc_out_msat", 0))),
    }


def sat_per_vb(feerates: dict) -> float | None:
    """The opening estimate of `feerates perkb` in sat/vB (reference §5.3.1); None when unknown."""
    perkb = feerates.get("perkb", {})
    for key in ("opening", "mutual_close", "unilateral_close", "floor"):
        if perkb.get(key):
            return perkb[key] / 1000.0
    return None
