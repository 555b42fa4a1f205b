"""An out-of-process stand-in for lightningd v25.12.1 around the simulated node.

It starts real plugin executables the way lightningd does (getmanifest, init,
JSON-RPC over the plugin's stdin/stdout, notifications, hooks, ``plugin
stop``), and serves the JSON-RPC unix socket ``DIR/regtest/lightning-rpc`` so
``pyln.client.LightningRpc`` works against it as against a real node. Every
RPC that is neither a plugin's nor one of the stand-in's own is answered by the
simulated node (:class:`revops.sim.node.SimNode`), whose virtual clock runs at
a chosen speed. See docs/standin.md.
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import functools
import itertools
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import contextlib
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from pyln.client import LightningRpc, RpcError

from revops.params import Parser, number
from revops.sim.jsonrpc import JsonParseError, JsonStreamDecoder, encode
from revops.sim.plugin_opts import json_text, option_value
from revops.sim.versions import DEFAULT_VERSION, VERSIONS, check_version

NETWORK = "regtest"
RPC_FILE = "lightning-rpc"
# The clock contract: a real lightningd never sets this variable.
SIM_CLOCK_ENV = "REVOPS_SIM_CLOCK"
SIM_CLOCK_METHOD = "dev-sim-time"

# lightningd's JSON-RPC error codes (common/jsonrpc_errors.h)
JSONRPC2_INVALID_REQUEST = -32600
JSONRPC2_METHOD_NOT_FOUND = -32601
JSONRPC2_INVALID_PARAMS = -32602
PLUGIN_ERROR = -3
PLUGIN_TERMINATED = -4
LIGHTNINGD_SHUTDOWN = -5

# lightningd: PLUGIN_MANIFEST_TIMEOUT, applied to getmanifest and again to init.
DEFAULT_HANDSHAKE_TIMEOUT = 60.0
# lightningd: plugin stop / node stop wait this long for a plugin that
# subscribed to `shutdown` to exit by itself.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

# feature_set as the v25.12.1 capture shows it in `init`.
FEATURE_SET = {
    "init": "0898880a8a59a1",
    "node": "8898880a8a59a1",
    "channel": "",
    "invoice": "02000002024100",
    "bolt12_offer": "",
    "bolt12_invreq": "",
    "bolt12_invoice": "020000",
}

_LEVELS = {"trace": 0, "io": 0, "debug": 1, "info": 2, "unusual": 3, "warn": 3, "broken": 4, "error": 4}
_LEVEL_NAMES = {0: "TRACE", 1: "DEBUG", 2: "INFO", 3: "UNUSUAL", 4: "**BROKEN**"}


SETCONFIG_FILE = "config.setconfig"
SETCONFIG_TIMEOUT = 60.0


class StandinError(RuntimeError):
    """The stand-in cannot start (the cases where lightningd would refuse to start)."""


class _PluginKilled(Exception):
    pass


# ----------------------------------------------------------------------------
# plugins


class _Pending:
    """One request we sent to a plugin, waiting for its reply."""

    __slots__ = ("method", "event", "response", "on_reply")

    def __init__(self, method: str, on_reply: Optional[Callable[[dict], None]] = None):
        self.method = method
        self.event = threading.Event()
        self.response: Optional[dict] = None
        self.on_reply = on_reply

    def complete(self, response: dict) -> None:
        self.response = response
        self.event.set()
        if self.on_reply is not None:
            self.on_reply(response)


class _PluginOpt:
    def __init__(self, spec: dict):
        self.name = spec["name"]
        self.type = spec["type"]
        self.multi = bool(spec.get("multi", False))
        self.dynamic = bool(spec.get("dynamic", False))
        self.description = spec.get("description", "")
        self.default: Any = None
        self.values: List[Any] = []
        d = spec.get("default")
        if self.type == "flag":
            d = None  # lightningd ignores a flag's default
        if d is not None:
            try:
                self.default = option_value(self.type, json_text(d))
            except ValueError as e:
                raise _PluginKilled(f"Invalid default '{json_text(d)}': {e}") from None

    def set(self, raw: str) -> Optional[str]:
        """Take the option's text as lightningd does; lightningd's error message (naming no option) if refused."""
        try:
            v = option_value(self.type, raw)
        except ValueError as e:
            return str(e)
        if self.multi:
            self.values.append(v)
        else:
            self.values = [v]
        return None


class Plugin:
    """A plugin process as lightningd sees it."""

    def __init__(self, ld: "StandinLightningd", path: str, start_options: Optional[Mapping[str, Any]] = None):
        self.ld = ld
        self.path = path
        self.shortname = os.path.basename(path)
        self.state = "unconfigured"
        self.start_options = dict(start_options or {})
        self.proc: Optional[subprocess.Popen] = None
        self.dynamic = False
        self.nonnumericids = False
        self.options: List[_PluginOpt] = []
        self.methods: List[str] = []
        self.method_specs: Dict[str, dict] = {}
        self.subscriptions: List[str] = []
        self.hooks: List[str] = []
        self.notification_topics: List[str] = []
        self.manifest: Optional[dict] = None
        self.init_result: Any = None
        self.dead = threading.Event()
        self.killed_by_us = False
        self.exit_reason: Optional[str] = None
        self._out: "queue.Queue[Optional[bytes]]" = queue.Queue()
        self._pending: Dict[Any, _Pending] = {}
        self._plock = threading.Lock()

    # -- process ---------------------------------------------------------------
    def spawn(self) -> None:
        env = dict(os.environ)
        env["LIGHTNINGD_PLUGIN"] = "1"
        env["LIGHTNINGD_VERSION"] = self.ld.cln_version
        env[SIM_CLOCK_ENV] = SIM_CLOCK_METHOD
        self.proc = subprocess.Popen(
            [self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # inherited, as lightningd's pipecmd_preserve does
            cwd=self.ld.network_dir,  # lightningd chdir()s to <lightning-dir>/<network>
            env=env,
            close_fds=True,
        )
        self.ld._log("DEBUG", "plugin-manager", f"started({self.proc.pid}) {self.path}")
        threading.Thread(target=self._writer, name=f"plugin-w-{self.shortname}", daemon=True).start()
        threading.Thread(target=self._reader, name=f"plugin-r-{self.shortname}", daemon=True).start()

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def active(self) -> bool:
        return self.state == "init_complete" and not self.dead.is_set()

    def subscribed(self, topic: str) -> bool:
        return topic in self.subscriptions or "*" in self.subscriptions

    # -- writing ---------------------------------------------------------------
    def send(self, msg: dict) -> None:
        if self.dead.is_set():
            return
        self.ld._trace_msg("to", self, msg)
        self._out.put(encode(msg))

    def close_stdin(self) -> None:
        self._out.put(None)

    def _writer(self) -> None:
        assert self.proc and self.proc.stdin
        stdin = self.proc.stdin
        while True:
            data = self._out.get()
            if data is None:
                break
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                break  # the reader notices the death
        try:
            stdin.close()
        except Exception:
            pass

    def _new_id(self, method: str, prefix: Optional[Any] = None) -> Any:
        n = next(self.ld._req_ids)
        if not self.nonnumericids:
            return n
        base = f"cln:{method}#{n}"
        return f"{prefix}/{base}" if prefix is not None else base

    def request(self, method: str, params: Any, *, msg: Optional[dict] = None,
                id_prefix: Any = None, on_reply: Optional[Callable[[dict], None]] = None) -> _Pending:
        """Send a request; the returned _Pending completes with the reply (or an error if the plugin dies)."""
        rid = self._new_id(method, id_prefix)
        pend = _Pending(method, on_reply)
        if msg is None:
            msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        else:
            msg = dict(msg)
            msg["id"] = rid
        with self._plock:
            if self.dead.is_set():
                dead = True
            else:
                dead = False
                self._pending[_idkey(rid)] = pend
        if dead:
            pend.complete(_terminated_error(rid))
            return pend
        self.send(msg)
        return pend

    def notify(self, topic: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": topic, "params": params})

    # -- reading ---------------------------------------------------------------
    def _reader(self) -> None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        dec = JsonStreamDecoder()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                msgs = dec.feed(data)
            except JsonParseError as e:
                self.kill(f"Failed to parse JSON response '{e.buffered.rstrip()}'", level="UNUSUAL")
                return
            for m in msgs:
                try:
                    self._handle(m)
                except _PluginKilled as e:
                    self.kill(str(e), level="UNUSUAL")
                    return
                if self.dead.is_set():
                    return
        # stdout closed: the plugin died (or is dying)
        if not self.dead.is_set():
            self.kill(f"exited {self.state_desc()}", level="DEBUG" if self.ld._stopping else "INFO", from_exit=True)

    def state_desc(self) -> str:
        return {
            "unconfigured": "unconfigured",
            "awaiting_getmanifest": "before replying to getmanifest",
            "needs_init": "before we sent init",
            "awaiting_init": "before replying to init",
            "init_complete": "during normal operation",
        }.get(self.state, self.state)

    def _handle(self, m: Any) -> None:
        self.ld._trace_msg("from", self, m)
        if not isinstance(m, dict):
            raise _PluginKilled("JSON-RPC message is not a valid JSON object type")
        if "jsonrpc" not in m:
            raise _PluginKilled('JSON-RPC message does not contain "jsonrpc" field')
        if "id" not in m:
            self._handle_notification(m)
            return
        with self._plock:
            pend = self._pending.pop(_idkey(m["id"]), None)
        if pend is None:
            raise _PluginKilled("Received a JSON-RPC response for non-existent request")
        pend.complete(m)

    def _handle_notification(self, m: dict) -> None:
        method, params = m.get("method"), m.get("params")
        if method is None or params is None:
            raise _PluginKilled(
                'Malformed JSON-RPC notification missing "method" or "params": ' + json.dumps(m))
        if method == "log":
            msg = params.get("message") if isinstance(params, dict) else None
            if not isinstance(msg, str):
                raise _PluginKilled('Log notification from plugin doesn\'t have a string "message" field')
            lvl = params.get("level", "info")
            if lvl not in _LEVELS or lvl == "io":
                raise _PluginKilled(
                    f'Unknown log-level {json.dumps(lvl)}, valid values are "debug", "info", "warn", or "error".')
            self.ld._log(_LEVEL_NAMES[_LEVELS[lvl]], f"plugin-{self.shortname}", msg)
            return
        if method in ("message", "progress"):
            return  # progress for an RPC caller: not relayed by the stand-in
        if method not in self.notification_topics:
            self.ld._log("UNUSUAL", f"plugin-{self.shortname}",
                         f'Plugin attempted to send a notification to topic "{method}" it hasn\'t declared in '
                         f"its manifest, not forwarding to subscribers.")
            return
        self.ld._broadcast(method, {"origin": self.shortname, "payload": params})

    # -- death -----------------------------------------------------------------
    def kill(self, reason: str, level: str = "INFO", from_exit: bool = False) -> None:
        """lightningd's plugin_kill(): log, SIGKILL, forget the plugin, fail what waits on it."""
        with self._plock:
            if self.dead.is_set():
                return
            was_running = self.state == "init_complete"
            self.exit_reason = reason
            self.killed_by_us = not from_exit
            self.ld._forget_plugin(self)  # gone from `plugin list` before anyone sees it dead
            self.dead.set()
            pending = list(self._pending.items())
            self._pending.clear()
        self.ld._log(level, f"plugin-{self.shortname}", f"Killing plugin: {reason}")
        if self.proc is not None:
            try:
                self.proc.kill()
            except Exception:
                pass
        self.close_stdin()
        for rid, pend in pending:
            pend.complete(_terminated_error(rid))
        if was_running:
            self.ld._broadcast_plugin_event("plugin_stopped", self)
        if self.proc is not None:
            threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        try:
            assert self.proc is not None
            self.proc.wait(timeout=10)
            for f in (self.proc.stdout,):
                if f:
                    f.close()
        except Exception:
            pass

    def list_entry(self) -> dict:
        return {"name": self.path, "active": self.active, "dynamic": self.dynamic}


def _idkey(rid: Any) -> str:
    return json.dumps(rid)


def _terminated_error(rid: Any) -> dict:
    return {"jsonrpc": "2.0", "id": rid,
            "error": {"code": PLUGIN_TERMINATED, "message": "Plugin terminated before replying to RPC call."}}


def _paths_match(cmd: str, name: str) -> bool:
    """lightningd's plugin_paths_match(): a path, or a bare basename."""
    if os.sep in name:
        if cmd == name:
            return True
        try:
            return os.path.realpath(name) == os.path.realpath(cmd) and os.path.exists(name)
        except OSError:
            return False
    return os.path.basename(cmd) == name


def _apply_filter(obj: Any, flt: Any) -> Any:
    """lightningd's response `filter`: keep only the members the filter names."""
    if flt is True:
        return obj
    if isinstance(flt, dict) and isinstance(obj, dict):
        out = {}
        for k, f in flt.items():
            if k in obj and f is not False:
                out[k] = _apply_filter(obj[k], f)
        return out
    if isinstance(flt, list) and isinstance(obj, list) and len(flt) == 1:
        return [_apply_filter(o, flt[0]) for o in obj]
    return obj


# ----------------------------------------------------------------------------
# the stand-in


class StandinLightningd:
    """lightningd v25.12.1 as plugins and RPC clients see it, around a SimNode.

    ``StandinLightningd(scenario, lightning_dir=DIR, seed=0, speed=1.0,
    plugins=[...], plugin_opts={...})``; use as a context manager, or
    ``start()`` / ``serve_forever()`` / ``stop()``. ``speed=0`` keeps the
    virtual clock paused (tests drive it with ``dev-sim-advance``).
    A ready-made node object can be given as ``node=`` instead of a scenario.
    """

    def __init__(self, scenario: Any = None, *, lightning_dir: str, seed: int = 0, speed: float = 1.0,
                 plugins: Sequence[str] = (), plugin_opts: Optional[Mapping[str, Any]] = None,
                 node: Any = None, handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT, trace: Optional[list] = None,
                 stderr_level: str = "info", log_stderr: bool = True, tick: float = 0.05,
                 cln_version: Optional[str] = None):
        if scenario is None and node is None:
            raise ValueError("give a scenario or a node")
        # the Core Lightning version answered as: the argument, else the node's / the scenario's
        self._cln_version = check_version(cln_version) if cln_version else None
        self.lightning_dir = os.path.abspath(lightning_dir)
        # The node decides the network (SimNode: the scenario's [node].network); regtest otherwise.
        self.network = _node_network(node) or NETWORK
        self.seed = seed
        self.speed = float(speed)
        self.handshake_timeout = handshake_timeout
        self.shutdown_timeout = shutdown_timeout
        self.trace = trace
        self.tick = tick
        self._scenario = scenario
        self._node = node
        self._plugin_paths = [os.path.abspath(p) for p in plugins]
        self._plugin_opts = dict(plugin_opts or {})
        self._stderr_level = _LEVELS.get(stderr_level, 2)
        self._log_stderr = log_stderr

        self.lock = threading.RLock()  # guards every access to the node
        self._plock = threading.RLock()  # guards the plugin list
        self._plugins: List[Plugin] = []
        self._req_ids = itertools.count(1)
        self._log_lock = threading.Lock()
        self._log_lines: List[str] = []
        self._logf = None
        self._sock: Optional[socket.socket] = None
        self._threads: List[threading.Thread] = []
        self._started = False
        self._stopping = False
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._startup = True
        # virtual clock
        self._clock_cv = threading.Condition()
        self._paused = self.speed <= 0
        self._vbase = 0.0
        self._rbase = 0.0
        self._builtin = self._builtin_methods()
        self._warned_wrap: set = set()

    @property
    def network_dir(self) -> str:
        return os.path.join(self.lightning_dir, self.network)

    @property
    def rpc_path(self) -> str:
        return os.path.join(self.network_dir, RPC_FILE)

    @property
    def log_path(self) -> str:
        return os.path.join(self.network_dir, "log")

    # -- life cycle ------------------------------------------------------------
    def __enter__(self) -> "StandinLightningd":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "StandinLightningd":
        if self._started:
            return self
        self._started = True
        if self._node is None:
            self._node = self._make_node()
            self.network = _node_network(self._node) or NETWORK
        os.makedirs(self.network_dir, exist_ok=True)
        self._logf = open(self.log_path, "a", encoding="utf-8")
        self._log("INFO", "lightningd", f"stand-in lightningd {self.cln_version} in {self.network_dir}")
        try:
            with self.lock:
                self._node.subscribe(self._on_node_notification)
                self._vbase = float(self._node.now)
            self._rbase = time.monotonic()
            self._bind_socket()
            self._spawn(self._accept_loop, "rpc-accept")
            self._start_plugins_at_startup()
            self._startup = False
            self._log("INFO", "lightningd", "Server started")
            self._spawn(self._clock_loop, "sim-clock")
        except BaseException:
            self.stop()
            raise
        return self

    def _make_node(self) -> Any:
        from revops.sim.node import SimNode  # the simulated node (another module)

        scenario = self._scenario
        if isinstance(scenario, (str, os.PathLike)):
            from revops.sim.scenario import load_scenario

            scenario = load_scenario(scenario)
        return SimNode(scenario, seed=self.seed, lightning_dir=self.lightning_dir, cln_version=self._cln_version)

    @property
    def cln_version(self) -> str:
        """The Core Lightning version this stand-in answers as (revops/sim/versions.py)."""
        return getattr(self._node, "cln_version", None) or self._cln_version or DEFAULT_VERSION

    def _spawn(self, fn: Callable[[], None], name: str) -> threading.Thread:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def request_stop(self) -> None:
        """Ask the stand-in to stop (signal handlers, `stop` RPC)."""
        self._stop_requested.set()

    def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM (when installed) or the `stop` RPC; then stop."""
        self._in_serve_forever = True
        try:
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stopping = True
            self._stop_requested.set()
            with self._clock_cv:
                self._clock_cv.notify_all()
            self._log("INFO", "lightningd", "Shutting down")
            self._close_listener()
            self._shutdown_plugins()
            try:
                if os.path.exists(self.rpc_path):
                    os.unlink(self.rpc_path)
            except OSError:
                pass
            self._stopped.set()
            self._log("INFO", "lightningd", "Shutdown complete")
            if self._logf is not None:
                with self._log_lock:
                    self._logf.close()
                    self._logf = None

    def wait_stopped(self, timeout: Optional[float] = None) -> bool:
        return self._stopped.wait(timeout)

    # -- public helpers --------------------------------------------------------
    @property
    def rpc(self) -> LightningRpc:
        return LightningRpc(self.rpc_path)

    @property
    def node(self) -> Any:
        """The SimNode. Not thread-safe: hold ``ld.lock`` (or use ``locked_node()``)."""
        return self._node

    @contextmanager
    def locked_node(self) -> Iterator[Any]:
        with self.lock:
            yield self._node

    def plugins(self) -> List[Plugin]:
        with self._plock:
            return list(self._plugins)

    def find_plugin(self, name: str) -> Optional[Plugin]:
        for p in self.plugins():
            if _paths_match(p.path, name):
                return p
        return None

    def plugin_pid(self, name: str) -> Optional[int]:
        p = self.find_plugin(name)
        return p.pid if p else None

    def log_lines(self) -> List[str]:
        with self._log_lock:
            return list(self._log_lines)

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if needle in line:
                    return line
            if time.monotonic() > end:
                raise TimeoutError(f"no log line contains {needle!r}")
            time.sleep(0.02)

    # -- logging ---------------------------------------------------------------
    def _log(self, level: str, prefix: str, msg: str) -> None:
        now = _dt.datetime.now(_dt.timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        line = f"{stamp} {level:<7} {prefix}: {msg}"
        lvl = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "UNUSUAL": 3, "**BROKEN**": 4}.get(level, 2)
        with self._log_lock:
            self._log_lines.append(line)
            if self._logf is not None:
                try:
                    self._logf.write(line + "\n")
                    self._logf.flush()
                except ValueError:
                    pass
        if self._log_stderr and lvl >= self._stderr_level:
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except Exception:
                pass

    def _trace_msg(self, direction: str, plugin: Plugin, msg: Any) -> None:
        if self.trace is not None:
            self.trace.append({"dir": direction, "plugin": plugin.shortname, "msg": copy.deepcopy(msg)})

    # -- plugins ---------------------------------------------------------------
    def _start_plugins_at_startup(self) -> None:
        started: List[Plugin] = []
        for path in self._plugin_paths:
            if not os.access(path, os.X_OK):
                raise StandinError(f"{path} is not executable: {os.strerror(13)}")
            p = Plugin(self, path)
            with self._plock:
                self._plugins.append(p)
            started.append(p)
        # every plugin's options: given by name, like lightningd's command line
        known = set()
        for p in started:
            p.spawn()
            p.state = "awaiting_getmanifest"
        manifests = [(p, p.request("getmanifest", {"allow-deprecated-apis": True})) for p in started]
        for p, pend in manifests:
            self._await_handshake(p, pend, "getmanifest", fatal=True)
            if p.dead.is_set():
                continue
            try:
                self._parse_manifest(p, pend.response or {})
            except _PluginKilled as e:
                p.kill(str(e), level="UNUSUAL")
                continue
            known.update(o.name for o in p.options)
        for name, value in self._plugin_opts.items():
            if name not in known:
                self.stop()
                raise StandinError(f"--{name}={value}: unrecognized option")
            for p in started:
                for o in p.options:
                    if o.name == name:
                        for v in (value if isinstance(value, (list, tuple)) else [value]):
                            err = o.set(json_text(v))
                            if err:
                                raise StandinError(f"--{name}={v}: {err}")
        inits = []
        for p in started:
            if not p.dead.is_set() and p.state == "needs_init":
                inits.append((p, self._send_init(p, startup=True)))
        for p, pend in inits:
            self._await_handshake(p, pend, "init", fatal=True)
            if not p.dead.is_set():
                self._finish_init(p, pend.response or {})

    def _await_handshake(self, p: Plugin, pend: _Pending, what: str, fatal: bool) -> None:
        if pend.event.wait(self.handshake_timeout):
            return
        p.kill(f"timed out {p.state_desc()}", level="UNUSUAL")
        if fatal and self._startup:
            self._log("**BROKEN**", "lightningd", "Can't recover from plugin failure, terminating.")
            raise StandinError(f"plugin {p.path} timed out {what}")

    def _parse_manifest(self, p: Plugin, resp: dict) -> None:
        if "error" in resp or not isinstance(resp.get("result"), dict):
            raise _PluginKilled(f"Invalid/missing result tok in '{json.dumps(resp)}'")
        res = resp["result"]
        p.manifest = res
        if "disable" in res:
            raise _PluginKilled(f"disabled itself: {res['disable']}")
        p.dynamic = bool(res.get("dynamic", False))
        p.nonnumericids = bool(res.get("nonnumericids", False))
        for n in res.get("notifications", []) or []:
            p.notification_topics.append(n.get("method"))
        if not isinstance(res.get("options"), list):
            raise _PluginKilled('"result.options" was not found in the manifest')
        for spec in res["options"]:
            if not all(k in spec for k in ("name", "type", "description")):
                raise _PluginKilled('An option is missing either "name", "description" or "type"')
            if spec["type"] not in ("string", "int", "bool", "flag"):
                raise _PluginKilled('Only "string", "int", "bool", and "flag" options are supported')
            p.options.append(_PluginOpt(spec))
            if p.options[-1].dynamic and self._node is not None:
                from revops.sim.node import DynamicOption
                self._node.dynamic_options[spec["name"]] = DynamicOption(
                    spec["type"], functools.partial(self._plugin_setconfig, p, p.options[-1]))
        if not isinstance(res.get("rpcmethods"), list):
            raise _PluginKilled('"result.rpcmethods" missing')
        with self._plock:
            for spec in res["rpcmethods"]:
                name = spec.get("name")
                if not isinstance(name, str):
                    raise _PluginKilled(f'rpcmethod does not have a string "name": {json.dumps(spec)}')
                owner = self._method_owner(name)
                if owner is not None or name in self._builtin:
                    raise _PluginKilled(
                        f'Could not register method "{name}", a method with that name is already registered'
                        + (f" by plugin {owner.path}" if owner else ""))
                p.methods.append(name)
                p.method_specs[name] = spec
        p.subscriptions = list(res.get("subscriptions", []) or [])
        for h in res.get("hooks", []) or []:
            name = h.get("name") if isinstance(h, dict) else h
            if name != "htlc_accepted":
                self._log("UNUSUAL", f"plugin-{p.shortname}",
                          f"hook '{name}' registered, but the stand-in only emulates htlc_accepted")
            p.hooks.append(name)
        # what setconfig persisted (lightningd's config includes config.setconfig), then `plugin start` options
        persisted = self._persisted_setconfig()
        for opt in p.options:
            err = opt.set(persisted[opt.name]) if opt.name in persisted else None
            if err:
                line = list(persisted).index(opt.name) + 2
                where = f"Config file {self.setconfig_path} line {line}: {opt.name}={persisted[opt.name]}: {err}"
                if self._startup:     # lightningd parses its config files at start, and exits on a bad line
                    raise StandinError(where)
                raise _PluginKilled(where)
        for k, v in p.start_options.items():
            opt = next((o for o in p.options if o.name == k), None)
            if opt is None:
                raise _PluginKilled(f'unknown parameter "{k}"')
            for one in (v if isinstance(v, list) else [v]):
                err = opt.set(json_text(one))
                if err:
                    raise _PluginKilled(err)
        p.state = "needs_init"

    # -- setconfig (dynamic plugin options) -------------------------------------------------------
    @property
    def setconfig_path(self) -> str:
        return os.path.join(self.network_dir, SETCONFIG_FILE)

    def _persisted_setconfig(self) -> Dict[str, str]:
        """name -> value lines of config.setconfig, as a previous run's setconfig wrote them."""
        try:
            with open(self.setconfig_path, encoding="utf-8") as f:
                lines = [line.strip() for line in f if "=" in line and not line.startswith("#")]
        except FileNotFoundError:
            return {}
        return dict(line.split("=", 1) for line in lines)

    def _plugin_setconfig(self, p: Plugin, opt: _PluginOpt, name: str, value: str) -> None:
        """lightningd's half of setconfig for a plugin option: the text, unparsed, to the plugin's own
        `setconfig`, which may refuse it."""
        if not p.active:
            raise RpcError("setconfig", {"config": name}, {"code": JSONRPC2_INVALID_PARAMS,
                                                            "message": f"Unknown config option {name}"})
        pend = p.request("setconfig", {"config": name, "val": value})
        if not pend.event.wait(SETCONFIG_TIMEOUT):
            raise RpcError("setconfig", {"config": name}, {"code": -1, "message": f"plugin {p.shortname} did "
                                                            f"not answer setconfig within {SETCONFIG_TIMEOUT} s"})
        error = (pend.response or _terminated_error(None)).get("error")
        if error is not None:
            raise RpcError("setconfig", {"config": name, "val": value}, error)
        if opt.set(value):       # a plugin took a word lightningd does not: what `init` would get is the text
            opt.values = [value]

    def _rpc_setconfig(self, params: Any) -> Any:
        """The simulated node hands the value to the plugin; here its text is written to config.setconfig
        (one `name=text` line per option, as lightningd keeps it), unless transient."""
        with self.lock:
            result = self._node.call("setconfig", params)
        if result["config"]["source"].endswith("transient"):
            return result
        values = self._persisted_setconfig()
        name = result["config"]["config"]
        values[name] = self._node.setconfig_values[name]
        with open(self.setconfig_path, "w", encoding="utf-8") as f:
            f.write("# Created and update by setconfig, but you can edit this manually when node is stopped.\n")
            f.writelines(f"{k}={v}\n" for k, v in values.items())
        result["config"]["source"] = f"{self.setconfig_path}:{list(values).index(name) + 2}"
        result["config"]["plugin"] = next((p.path for p in self._plugins if name in {o.name for o in p.options}),
                                          None)
        return result

    def _init_options(self, p: Plugin) -> dict:
        out: Dict[str, Any] = {}
        for o in p.options:
            vals = o.values or ([o.default] if o.default is not None else [])
            if not vals:
                continue
            if o.multi:
                out[o.name] = list(vals)
            elif o.type == "flag":
                if vals[0]:
                    out[o.name] = True
            else:
                out[o.name] = vals[0]
        return out

    def _send_init(self, p: Plugin, startup: bool) -> _Pending:
        params = {
            "options": self._init_options(p),
            "configuration": {
                "lightning-dir": self.network_dir,
                "rpc-file": RPC_FILE,
                "startup": startup,
                "network": self.network,
                "feature_set": dict(FEATURE_SET),
            },
        }
        p.state = "awaiting_init"
        return p.request("init", params)

    def _finish_init(self, p: Plugin, resp: dict) -> bool:
        res = resp.get("result")
        if isinstance(res, dict) and "disable" in res:
            p.kill(f"disabled itself at init: {res['disable']}", level="INFO")
            return False
        if "error" in resp:
            # lightningd only looks for result.disable; an error reply still completes init
            self._log("UNUSUAL", f"plugin-{p.shortname}", f"init returned error {json.dumps(resp['error'])}")
        p.init_result = res
        p.state = "init_complete"
        self._log("DEBUG", f"plugin-{p.shortname}", "initialized")
        self._broadcast_plugin_event("plugin_started", p)
        return True

    def _broadcast_plugin_event(self, topic: str, p: Plugin) -> None:
        """plugin_started / plugin_stopped (lightningd v25.02+), to every subscriber but the plugin itself."""
        self._broadcast(topic, {topic: {"plugin_name": p.shortname, "plugin_path": p.path,
                                        "methods": list(p.methods)}})

    def _method_owner(self, name: str) -> Optional[Plugin]:
        with self._plock:
            for p in self._plugins:
                if name in p.methods and not p.dead.is_set():
                    return p
        return None

    def _forget_plugin(self, p: Plugin) -> None:
        with self._plock:
            if p in self._plugins:
                self._plugins.remove(p)

    def start_plugin(self, path: str, options: Optional[Mapping[str, Any]] = None) -> List[dict]:
        """`plugin start` at runtime; returns the plugin list or raises RpcError like lightningd."""
        req = {"subcommand": "start", "plugin": path}
        req.update(options or {})
        return self._plugin_start(req)

    def _plugin_start(self, params: Mapping[str, Any]) -> dict:
        path = params.get("plugin")
        if not isinstance(path, str):
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, "missing required parameter: plugin")
        extra = {k: v for k, v in params.items() if k not in ("subcommand", "plugin", "options")}
        if isinstance(params.get("options"), list):
            if extra:
                raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS,
                                 "Cannot mix 'options' array with keyword options")
            for o in params["options"]:
                k, eq, v = str(o).partition("=")
                extra[k] = v if eq else True
        if not os.access(path, os.X_OK):
            alt = os.path.join(self.lightning_dir, "plugins", path)
            if os.access(alt, os.X_OK):
                path = alt
            elif not os.path.exists(path) and os.path.basename(path) in ("sling", "clboss"):
                return self._node_plugin_command(params)  # emulated by the node
            else:
                err = os.strerror(13 if os.path.exists(path) else 2)
                raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, f"{path} is not executable: {err}")
        abspath = os.path.realpath(path)
        if any(q.path == abspath for q in self.plugins()):
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, f"{abspath}: already registered")
        p = Plugin(self, abspath, extra)
        with self._plock:
            self._plugins.append(p)
        try:
            p.spawn()
        except OSError as e:
            p.kill(f"opening pipe: {e.strerror}", level="UNUSUAL")
            raise _rpc_error("plugin", params, PLUGIN_ERROR, f"{abspath}: opening pipe: {e.strerror}")
        p.state = "awaiting_getmanifest"
        pend = p.request("getmanifest", {"allow-deprecated-apis": True})
        self._await_handshake(p, pend, "getmanifest", fatal=False)
        if not p.dead.is_set():
            try:
                self._parse_manifest(p, pend.response or {})
                if not p.dynamic:
                    p.kill("Not a dynamic plugin", level="INFO")
            except _PluginKilled as e:
                p.kill(str(e), level="UNUSUAL")
        if not p.dead.is_set():
            pend = self._send_init(p, startup=False)
            self._await_handshake(p, pend, "init", fatal=False)
            if not p.dead.is_set():
                self._finish_init(p, pend.response or {})
        if p.dead.is_set():
            raise _rpc_error("plugin", params, PLUGIN_ERROR, f"{p.path}: {p.exit_reason}")
        return {"command": "start", "plugins": self._plugin_list()}

    def _plugin_list(self) -> List[dict]:
        return self._emulated_plugin_entries() + [p.list_entry() for p in self.plugins()]

    def _emulated_plugin_entries(self) -> List[dict]:
        """What the node itself lists: lightningd's built-in plugins and the emulated sling,
        clboss and bookkeeper (SimNode answers `plugin list`); or, for a node without
        that, its ``installed_plugins()``."""
        node = self._node
        with self.lock:
            try:
                res = node.call("plugin", {"subcommand": "list"})
                if isinstance(res, dict) and isinstance(res.get("plugins"), list):
                    return list(res["plugins"])
            except RpcError:
                pass
            v = getattr(node, "installed_plugins", None)
            v = v() if callable(v) else v
        names = [n for n, on in (v or {}).items() if on]
        return [{"name": f"/usr/local/libexec/c-lightning/plugins/{n}", "active": True,
                 "dynamic": n != "bookkeeper"} for n in names]

    def _node_plugin_command(self, params: Mapping[str, Any]) -> Any:
        """`plugin start|stop` for a plugin the node emulates (e.g. `plugin stop sling`)."""
        with self.lock:
            res = self._node.call("plugin", dict(params))
        if isinstance(res, dict) and res.get("command") == "start":
            res = {"command": "start", "plugins": self._plugin_list()}
        return res

    def stop_plugin(self, name: str) -> dict:
        return self._plugin_stop({"subcommand": "stop", "plugin": name})

    def _plugin_stop(self, params: Mapping[str, Any]) -> dict:
        name = params.get("plugin")
        if not isinstance(name, str):
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, "missing required parameter: plugin")
        p = self.find_plugin(name)
        if p is None:
            try:
                return self._node_plugin_command(params)
            except RpcError:
                pass
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, f"Could not find plugin {name}")
        if not p.dynamic:
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, f"{name} cannot be managed when lightningd is up")
        result = {"command": "stop", "result": f"Successfully stopped {p.shortname}."}
        if p.active and p.subscribed("shutdown"):
            p.notify("shutdown", {"shutdown": {}})
            if not p.dead.wait(self.shutdown_timeout):
                self._log("UNUSUAL", f"plugin-{p.shortname}", "Timeout on shutdown: killing anyway")
                p.kill("stopped by lightningd via RPC", level="INFO")
            return result
        p.kill("stopped by lightningd via RPC", level="INFO")
        return result

    def _plugin_startdir(self, params: Mapping[str, Any]) -> dict:
        d = params.get("directory")
        if not isinstance(d, str):
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, "missing required parameter: directory")
        if not os.path.exists(d):
            raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS, f"Could not open {d}")
        for entry in sorted(os.listdir(d)):
            full = os.path.join(d, entry)
            try:
                st = os.stat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not (st.st_mode & 0o111) or entry == "README.md":
                continue
            if any(q.path == os.path.realpath(full) for q in self.plugins()):
                continue
            try:
                self._plugin_start({"subcommand": "start", "plugin": full})
            except RpcError:
                pass
        return {"command": "startdir", "plugins": self._plugin_list()}

    def _shutdown_plugins(self) -> None:
        plugins = self.plugins()
        waiting = []
        for p in plugins:
            if p.active and p.subscribed("shutdown"):
                p.notify("shutdown", {"shutdown": {}})
                waiting.append(p)
            else:
                p.close_stdin()  # EOF; pyln plugins exit on it
                waiting.append(p)
        end = time.monotonic() + self.shutdown_timeout
        for p in waiting:
            if not p.dead.wait(max(0.0, end - time.monotonic())):
                p.close_stdin()
        for p in waiting:
            if not p.dead.wait(0.5 if p.subscribed("shutdown") else 0.0):
                self._log("DEBUG", "lightningd", f"{p.shortname}: failed to self-terminate in time, killing.")
                p.kill("failed to self-terminate in time", level="DEBUG")

    # -- notifications and hooks -----------------------------------------------
    def _on_node_notification(self, topic: str, params: Any) -> None:
        """Called by the SimNode (with self.lock held): fan the notification out."""
        if (isinstance(params, dict) and len(params) == 1 and isinstance(params.get(topic), dict)
                and len(params[topic]) == 1 and isinstance(params[topic].get(topic), dict)):
            # {topic: {topic: body}}: lightningd never sends that; a node bug, unwrapped here
            if topic not in self._warned_wrap:
                self._warned_wrap.add(topic)
                self._log("UNUSUAL", "lightningd", f"node sent {topic} params wrapped twice; unwrapping")
            params = params[topic]
        self._broadcast(topic, params)
        if topic == "forward_event":
            self._maybe_htlc_hook(params)

    def _broadcast(self, topic: str, params: Any) -> None:
        msg = {"jsonrpc": "2.0", "method": topic, "params": params}
        data = None
        for p in self.plugins():
            if p.state == "init_complete" and p.subscribed(topic) and not p.dead.is_set():
                if data is None:
                    data = encode(msg)
                self._trace_msg("to", p, msg)
                p._out.put(data)

    def _maybe_htlc_hook(self, params: Any) -> None:
        """htlc_accepted: observe-only (see docs/standin.md) for forwards the node announces as offered."""
        fe = params.get("forward_event") if isinstance(params, dict) else None
        if not fe or fe.get("status") != "offered":
            return
        hooked = [p for p in self.plugins() if p.active and "htlc_accepted" in p.hooks]
        if not hooked:
            return
        hp = _htlc_params(fe)
        ch = getattr(self._node, "channels", {}).get(fe.get("in_channel")) if isinstance(
            getattr(self._node, "channels", None), dict) else None
        if ch is not None and isinstance(getattr(ch, "peer_id", None), str):
            hp["peer_id"] = ch.peer_id
        for p in hooked:
            def on_reply(resp: dict, p: Plugin = p) -> None:
                res = resp.get("result") or {}
                if res.get("result") not in ("continue", None):
                    self._log("UNUSUAL", f"plugin-{p.shortname}",
                              f"htlc_accepted returned {res.get('result')!r}: not emulated, the forward stands")
            p.request("htlc_accepted", hp, on_reply=on_reply)

    # -- virtual clock -----------------------------------------------------------
    def _target_time(self) -> float:
        if self._paused or self.speed <= 0:
            return self._vbase
        return self._vbase + self.speed * (time.monotonic() - self._rbase)

    def _clock_loop(self) -> None:
        while not self._stop_requested.is_set():
            with self._clock_cv:
                self._clock_cv.wait(self.tick)
                target = int(self._target_time())
            if self._stop_requested.is_set():
                return
            with self.lock:
                if target > self._node.now:
                    try:
                        self._node.advance_to(target)
                    except Exception as e:  # keep the node serving RPC
                        self._log("**BROKEN**", "lightningd", f"simulation error at t={target}: {e!r}")
                        self._paused = True

    def sim_time(self) -> int:
        with self.lock:
            return int(self._node.now)

    def advance(self, seconds: float) -> int:
        with self._clock_cv:
            with self.lock:
                target = int(self._node.now + seconds)
                self._node.advance_to(target)
                now = int(self._node.now)
            self._vbase = float(now)
            self._rbase = time.monotonic()
            return now

    def pause(self) -> int:
        """Stop the virtual clock where it is now (events up to then are run first)."""
        with self._clock_cv:
            target = int(self._target_time())
            with self.lock:
                if target > self._node.now:
                    self._node.advance_to(target)
                now = int(self._node.now)
            self._vbase = float(now)
            self._paused = True
            return now

    def resume(self, speed: Optional[float] = None) -> None:
        with self._clock_cv:
            self._vbase = self._target_time() if not self._paused else self._vbase
            if speed is not None:
                self.speed = float(speed)
            self._rbase = time.monotonic()
            self._paused = self.speed <= 0
            self._clock_cv.notify_all()

    # -- RPC socket ----------------------------------------------------------------
    def _bind_socket(self) -> None:
        if os.path.exists(self.rpc_path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self._short_path(self.rpc_path))
                probe.close()
                raise StandinError(f"{self.rpc_path}: another lightningd is running")
            except OSError:
                os.unlink(self.rpc_path)
            finally:
                probe.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self._short_path(self.rpc_path))
        os.chmod(self.rpc_path, 0o600)
        s.listen(64)
        self._sock = s

    def _close_listener(self) -> None:
        """Wake the accept thread and let it finish before the fd is closed.

        Closing the socket under a thread about to call accept() let that thread accept on the fd
        number after it had been reused by the next stand-in's socket: a request for the new node was
        answered by the stopped one ("lightningd is shutting down"), a flaky failure in the tests.
        """
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            if t.name == "rpc-accept" and t is not threading.current_thread():
                t.join(2.0)
        with contextlib.suppress(OSError):
            self._sock.close()

    def _short_path(self, path: str) -> str:
        if len(path.encode()) < 100:
            return path
        # unix socket paths are limited to ~107 bytes; go through /proc like pyln does
        if not hasattr(self, "_dirfd"):
            self._dirfd = os.open(os.path.dirname(path), os.O_DIRECTORY | os.O_RDONLY)
        return f"/proc/self/fd/{self._dirfd}/{os.path.basename(path)}"

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), name="rpc-conn", daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        dec = JsonStreamDecoder()
        wlock = threading.Lock()
        inflight = threading.Semaphore(0)
        count = 0

        def reply(obj: dict) -> None:
            with wlock:
                try:
                    conn.sendall(encode(obj))
                except OSError:
                    pass

        def run(req: Any) -> None:
            try:
                reply(self._dispatch(req))
            finally:
                inflight.release()

        try:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    reqs = dec.feed(data)
                except JsonParseError:
                    reply({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32700, "message": "Parse error"}})
                    return
                for req in reqs:
                    # lightningd runs commands concurrently; replies carry their id
                    count += 1
                    threading.Thread(target=run, args=(req,), name="rpc-cmd", daemon=True).start()
        finally:
            for _ in range(count):
                inflight.acquire()
            try:
                conn.close()
            except OSError:
                pass

    def _dispatch(self, req: Any) -> dict:
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            return {"jsonrpc": "2.0", "id": req.get("id") if isinstance(req, dict) else None,
                    "error": {"code": JSONRPC2_INVALID_REQUEST, "message": "Expected method to be a string"}}
        rid = req.get("id")
        method = req["method"]
        params = req.get("params", {})
        if params is None:
            params = {}
        if self._stopping and method != "stop":
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": LIGHTNINGD_SHUTDOWN, "message": "lightningd is shutting down"}}
        try:
            owner = self._method_owner(method)
            if owner is not None and method not in self._builtin:
                resp = self._forward_to_plugin(owner, req)
                resp = dict(resp)
                resp["id"] = rid
                if "filter" in req and "result" in resp:
                    resp["result"] = _apply_filter(resp["result"], req["filter"])
                return resp
            if method in self._builtin:
                result = self._builtin[method](params)
            else:
                with self.lock:
                    result = self._node.call(method, params)
            if "filter" in req and req["filter"] is not None:
                result = _apply_filter(result, req["filter"])
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as e:
            err = e.error if isinstance(e.error, dict) else {"code": -1, "message": str(e.error)}
            return {"jsonrpc": "2.0", "id": rid, "error": err}
        except Exception as e:  # a bug in the node or the stand-in: keep serving
            self._log("**BROKEN**", "jsonrpc", f"{method}: {e!r}")
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": f"{method}: {e!r}"}}

    def _forward_to_plugin(self, p: Plugin, req: dict) -> dict:
        fwd = {k: v for k, v in req.items() if k != "id"}
        fwd.setdefault("params", {})
        pend = p.request(req["method"], None, msg=fwd, id_prefix=req.get("id"))
        pend.event.wait()
        return pend.response or _terminated_error(None)

    # -- built-in commands -------------------------------------------------------
    def _builtin_methods(self) -> Dict[str, Callable[[Any], Any]]:
        return {
            "plugin": self._rpc_plugin,
            "stop": self._rpc_stop,
            "help": self._rpc_help,
            "notifications": lambda params: {},
            "dev-sim-time": lambda params: {"now": self.sim_time()},
            "dev-sim-advance": self._rpc_advance,
            "dev-sim-pause": self._rpc_pause,
            "dev-sim-resume": self._rpc_resume,
            "dev-sim-openchannel": self._rpc_openchannel,
            "dev-sim-closechannel": self._rpc_closechannel,
            "dev-sim-ledger": self._rpc_ledger,
            "dev-sim-plugin-installed": self._rpc_plugin_installed,
            "setconfig": self._rpc_setconfig,
        }

    def _rpc_plugin(self, params: Any) -> Any:
        if isinstance(params, list):
            keys = {"start": ("subcommand", "plugin"), "stop": ("subcommand", "plugin"),
                    "startdir": ("subcommand", "directory"), "list": ("subcommand",), "rescan": ("subcommand",)}
            sub = params[0] if params else None
            params = dict(zip(keys.get(sub, ("subcommand",)), params))
        sub = params.get("subcommand")
        if sub == "start":
            return self._plugin_start(params)
        if sub == "stop":
            return self._plugin_stop(params)
        if sub == "startdir":
            return self._plugin_startdir(params)
        if sub in ("list", "rescan"):
            return {"command": sub, "plugins": self._plugin_list()}
        raise _rpc_error("plugin", params, JSONRPC2_INVALID_PARAMS,
                         "subcommand: should be one of start, stop, startdir, rescan, list")

    def _rpc_stop(self, params: Any) -> str:
        def later() -> None:
            time.sleep(0.05)  # let the reply go out first
            self.request_stop()
            if not self._serving_forever():
                self.stop()

        threading.Thread(target=later, daemon=True).start()
        return "Shutdown complete"

    def _serving_forever(self) -> bool:
        return getattr(self, "_in_serve_forever", False)

    def _rpc_help(self, params: Any) -> dict:
        cmd = params.get("command") if isinstance(params, dict) else (params[0] if params else None)
        entries = []
        names = list(self._builtin)
        node_methods = getattr(self._node, "methods", None)
        if node_methods is None:  # SimNode keeps its handler table at module level
            node_methods = getattr(sys.modules.get(type(self._node).__module__), "_HANDLERS", None)
        try:
            with self.lock:
                nm = node_methods() if callable(node_methods) else node_methods
            names += [n for n in (nm or ()) if n not in names]
        except Exception:
            pass
        for n in names:
            entries.append({"command": n, "category": "developer" if n.startswith("dev-") else "utility"})
        for p in self.plugins():
            for m in p.methods:
                entries.append({"command": m, "category": p.method_specs[m].get("category", "plugin")})
        if cmd:
            entries = [e for e in entries if e["command"] == cmd]
            if not entries:
                raise _rpc_error("help", params, JSONRPC2_METHOD_NOT_FOUND, f"Unknown command {cmd}")
        return {"help": entries}

    def _rpc_advance(self, params: Any) -> dict:
        secs = params.get("seconds") if isinstance(params, dict) else (params[0] if params else None)
        if not isinstance(secs, (int, float)) or isinstance(secs, bool) or secs < 0:
            raise _rpc_error("dev-sim-advance", params, JSONRPC2_INVALID_PARAMS, "seconds: should be a non-negative number")
        return {"now": self.advance(secs)}

    def _rpc_pause(self, params: Any) -> dict:
        return {"now": self.pause(), "paused": True}

    def _rpc_resume(self, params: Any) -> dict:
        speed = params.get("speed") if isinstance(params, dict) else None
        self.resume(speed)
        return {"now": self.sim_time(), "paused": self._paused, "speed": self.speed}

    def _rpc_openchannel(self, params: Any) -> dict:
        if not isinstance(params, dict):
            raise _rpc_error("dev-sim-openchannel", params, JSONRPC2_INVALID_PARAMS, "use named parameters")
        kw = {k: params[k] for k in ("peer_id", "capacity_sat", "local_sat", "opener") if k in params}
        with self.lock:
            scid = self._node.open_channel(**kw)
        return {"short_channel_id": scid}

    def _rpc_closechannel(self, params: Any) -> dict:
        scid = params.get("short_channel_id") if isinstance(params, dict) else (params[0] if params else None)
        if not isinstance(scid, str):
            raise _rpc_error("dev-sim-closechannel", params, JSONRPC2_INVALID_PARAMS, "short_channel_id: should be a string")
        with self.lock:
            self._node.close_channel(scid)
        return {"short_channel_id": scid}

    def _rpc_ledger(self, params: Any) -> Any:
        with self.lock:
            return _jsonable(self._node.ledger)

    def _rpc_plugin_installed(self, params: Any) -> dict:
        name, inst = params.get("name"), params.get("installed")
        if not isinstance(name, str) or not isinstance(inst, bool):
            raise _rpc_error("dev-sim-plugin-installed", params, JSONRPC2_INVALID_PARAMS,
                             "name: string, installed: bool")
        with self.lock:
            self._node.set_plugin_installed(name, inst)
        return {"name": name, "installed": inst}


def _node_network(node: Any) -> Optional[str]:
    try:
        net = node.scenario.node.network
    except AttributeError:
        net = getattr(node, "network", None)
    return net if isinstance(net, str) and net else None


def _rpc_error(method: str, params: Any, code: int, message: str) -> RpcError:
    return RpcError(method, params, {"code": code, "message": message})


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    for conv in ("to_dict", "as_dict", "_asdict"):
        f = getattr(v, conv, None)
        if callable(f):
            return _jsonable(f())
    try:
        import attrs

        if attrs.has(type(v)):
            return _jsonable(attrs.asdict(v))
    except ImportError:
        pass
    import dataclasses

    if dataclasses.is_dataclass(v):
        return _jsonable(dataclasses.asdict(v))
    if hasattr(v, "__dict__"):
        return _jsonable({k: x for k, x in vars(v).items() if not k.startswith("_")})
    return str(v)


def _htlc_params(fe: Mapping[str, Any]) -> dict:
    """htlc_accepted params shaped like the v25.12.1 capture, from an offered forward_event."""
    in_msat = int(fe.get("in_msat", 0))
    out_msat = int(fe.get("out_msat", in_msat))
    ph = fe.get("payment_hash", "00" * 32)
    return {
        "peer_id": fe.get("in_peer_id", "02" + "00" * 32),
        "onion": {
            "payload": "",
            "type": "tlv",
            "short_channel_id": fe.get("out_channel"),
            "forward_msat": out_msat,
            "outgoing_cltv_value": 119,
            "next_onion": "00" * 1366,
            "shared_secret": "00" * 32,
        },
        "forward_to": "00" * 32,
        "htlc": {
            "short_channel_id": fe.get("in_channel"),
            "id": int(fe.get("in_htlc_id", 0)),
            "amount_msat": in_msat,
            "cltv_expiry": 125,
            "cltv_expiry_relative": 17,
            "payment_hash": ph,
        },
    }


# ----------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    ap = Parser(prog="revops node", description=(
        "Run a stand-in lightningd (Core Lightning v25.12.1 or v26.06.6: plugin protocol and RPC socket) "
        "around the simulated node."))
    ap.add_argument("scenario", help="scenario name (e.g. small) or path to a scenario TOML")
    ap.add_argument("--lightning-dir", required=True, help="base dir; the RPC socket is DIR/NETWORK/lightning-rpc "
                    "(NETWORK: the scenario's, regtest if it names none)")
    ap.add_argument("--plugin", action="append", default=[], metavar="FILE", help="plugin executable (repeatable)")
    ap.add_argument("--plugin-opt", action="append", default=[], metavar="NAME=VALUE",
                    help="a plugin option, as lightningd's --NAME=VALUE (repeatable; a bare NAME sets a flag)")
    ap.add_argument("--speed", type=number(0), default=1.0,
                    help="virtual seconds per real second (3600 = an hour per second; 0 = paused)")
    ap.add_argument("--seed", type=number(0, integer=True), default=0)
    ap.add_argument("--cln-version", choices=VERSIONS, default=None,
                    help=f"the Core Lightning version to answer as (default: the scenario's [node] cln_version, "
                         f"else {DEFAULT_VERSION})")
    ap.add_argument("--handshake-timeout", type=number(0, lo_open=True), default=DEFAULT_HANDSHAKE_TIMEOUT, help=argparse.SUPPRESS)
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "unusual", "broken"],
                    help="stderr log level (the log file DIR/regtest/log gets everything)")
    return ap


def run_node(argv: Optional[Sequence[str]] = None) -> int:
    """`revops node SCENARIO --lightning-dir DIR [--plugin FILE ...] [--plugin-opt NAME=VALUE ...] [--speed X] [--seed S]`."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    opts: Dict[str, Any] = {}
    for kv in args.plugin_opt:
        k, eq, v = kv.partition("=")
        k = k.lstrip("-")
        val: Any = v if eq else True
        if k in opts:
            prev = opts[k]
            opts[k] = (prev if isinstance(prev, list) else [prev]) + [val]
        else:
            opts[k] = val
    ld = StandinLightningd(args.scenario, lightning_dir=args.lightning_dir, seed=args.seed, speed=args.speed,
                           plugins=args.plugin, plugin_opts=opts, handshake_timeout=args.handshake_timeout,
                           stderr_level=args.log_level, cln_version=args.cln_version)

    def on_signal(signum: int, frame: Any) -> None:
        ld.request_stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            ld.start()
        except StandinError as e:
            sys.stderr.write(f"lightningd: {e}\n")
            return 1
        sys.stderr.write(f"lightning-rpc: {ld.rpc_path}\n")
        ld.serve_forever()
        return 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_node())
