"""Fault injection in front of the simulated node: what a real node's RPC socket does when things go wrong.

`FaultyRpc` is an RpcClient that passes calls to a SimNode unless a fault matches the method:

- ``error``   lightningd (or a plugin) answers a JSON-RPC error (a definite answer, never retried);
- ``timeout`` no answer within the socket timeout (``TimeoutError``, as `SocketRpc` raises it);
- ``lost``    the node carried the call out, but the answer never arrived (``TimeoutError`` after it);
- ``vanish``  the RPC socket file is gone (``FileNotFoundError`` on connect, as `SocketRpc` raises it);
- ``absent``  the method's plugin is not installed (``-32601 Unknown command``, lightningd's answer); the
              emulated plugins the pattern covers are stopped meanwhile (a missing sling rebalances nothing);
- ``slow``    the answer comes, after ``seconds`` of wall time (only meaningful in threaded mode);
- ``malformed`` the answer is not JSON (``json.JSONDecodeError``, what a raw parse of a garbled reply raises);
- ``truncated`` the node carried the call out, the answer was cut off (``json.JSONDecodeError`` after it);
- ``noresult``  the node carried the call out, the answer has no ``result`` (``KeyError``, as a raw
                ``reply["result"]`` raises);
- ``exception`` any other exception (``UnicodeDecodeError``, ``RuntimeError``, ``TypeError``, ... in turn),
                after the call was carried out: the runtime must answer every call whatever is raised.

A method pattern is an exact name, a prefix ending in ``*`` (``sling-*``) or ``*`` for everything.
`stick_sling_jobs` makes the emulated sling stop attempting without telling anyone (a stuck job).
Every call and every injected failure is counted, so tests can say how many faults were survived.
"""
from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable
from typing import Any

import attrs
from pyln.client import RpcError

from revops.sim.node import SimNode

PLUGIN_PREFIXES = {"sling": "sling-", "clboss": "clboss-", "bookkeeper": "bkpr-"}
WRITES = ("setchannel", "sling-once", "sling-job", "sling-go", "sling-stop", "sling-deletejob", "clboss-unmanage")
KINDS = ("error", "timeout", "lost", "vanish", "absent", "slow", "malformed", "truncated", "noresult", "exception")
AFTER = ("lost", "truncated", "noresult", "exception")      # the node carries the call out, then it fails
EXCEPTIONS: tuple[Callable[[str], Exception], ...] = (
    lambda m: UnicodeDecodeError("utf-8", b"\xff", 0, 1, f"{m}: invalid start byte (injected)"),
    lambda m: RuntimeError(f"{m}: injected"), lambda m: TypeError(f"{m}: injected"),
    lambda m: AttributeError(f"{m}: injected"), lambda m: IndexError(f"{m}: injected"),
    lambda m: ZeroDivisionError(f"{m}: injected"), lambda m: ValueError(f"{m}: injected"))


@attrs.define
class Fault:
    kind: str
    pattern: str
    code: int = -32603
    message: str = "injected fault"
    seconds: float = 0.0
    times: int | None = None        # fail only this many matching calls (None: until cleared)

    def matches(self, method: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.pattern.endswith("*"):
            return method.startswith(self.pattern[:-1])
        return method == self.pattern


@attrs.define
class FaultyRpc:
    node: SimNode
    sleep: Callable[[float], None] = time.sleep
    faults: list[Fault] = attrs.field(factory=list)
    calls: collections.Counter = attrs.field(factory=collections.Counter)
    injected: collections.Counter = attrs.field(factory=collections.Counter)
    delivered: list[tuple[int, str, Any]] = attrs.field(factory=list)   # (node time, method, params) of writes
    removed: set[str] = attrs.field(factory=set)        # emulated plugins stopped by an `absent` fault

    def inject(self, kind: str, pattern: str = "*", **kwargs: Any) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of: {', '.join(KINDS)}")
        fault = Fault(kind, pattern, **kwargs)
        self.faults.append(fault)
        if kind == "absent":
            for name, prefix in PLUGIN_PREFIXES.items():
                if fault.matches(prefix) and self.node.plugins[name]:
                    self.node.set_plugin_installed(name, False)
                    self.removed.add(name)
        return fault

    def clear(self, pattern: str | None = None) -> None:
        self.faults = [f for f in self.faults if pattern is not None and f.pattern != pattern]
        for name in sorted(self.removed):
            if not any(f.kind == "absent" and f.matches(PLUGIN_PREFIXES[name]) for f in self.faults):
                self.node.set_plugin_installed(name, True)
                self.removed.discard(name)

    def call(self, method: str, params: dict | list | None = None) -> Any:
        self.calls[method] += 1
        for fault in self.faults:
            if fault.matches(method) and fault.kind not in AFTER:
                self._fail(fault, method, params)
        result = self.node.call(method, params)
        if method in WRITES:
            self.delivered.append((self.node.now, method, params))
        after = next((f for f in self.faults if f.kind in AFTER and f.matches(method)), None)
        if after is not None:
            self._fail(after, method, params)
        return result

    def _fail(self, fault: Fault, method: str, params: Any) -> None:
        if fault.times is not None:
            fault.times -= 1
        if fault.kind == "slow":
            self.sleep(fault.seconds)
            return
        self.injected[fault.kind] += 1
        if fault.kind == "timeout":
            raise TimeoutError(f"{method}: timed out (injected)")
        if fault.kind == "lost":
            raise TimeoutError(f"{method}: the answer was lost (injected)")
        if fault.kind == "vanish":
            raise FileNotFoundError(2, "No such file or directory (injected: RPC socket gone)")
        if fault.kind in ("malformed", "truncated"):
            raise json.JSONDecodeError("Unterminated string starting at (injected)", '{"result": {"id": "02', 12)
        if fault.kind == "noresult":
            raise KeyError("result")
        if fault.kind == "exception":
            raise EXCEPTIONS[sum(self.injected.values()) % len(EXCEPTIONS)](method)
        if fault.kind == "absent":
            raise RpcError(method, params or {}, {"code": -32601, "message": f"Unknown command '{method}'"})
        raise RpcError(method, params or {}, {"code": fault.code, "message": f"{fault.message} ({method})"})


def stick_sling_jobs(node: SimNode) -> list[str]:
    """sling keeps its jobs 'running' but never attempts again (a wedged job); returns their scids."""
    stuck = sorted(node.sling.running)
    for scid in stuck:
        node.sling.running[scid] = -1      # no scheduled attempt carries generation -1
    return stuck
