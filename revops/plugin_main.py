"""Glue between pyln's Plugin and the runtime: options, RPC registration, notifications, teardown.

pyln runs every handler one at a time on its main thread; these handlers only validate the framing
and put a message on the runtime's inbox, so a slow report never blocks another command.
"""
from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from pyln.client import Plugin, RpcException

from revops import config as cfgmod
from revops import rpc
from revops.metrics import Exporter
from revops.node import SocketRpc
from revops.page_server import PageServer
from revops.runtime import TOPICS, Continue, Runtime
from revops.store import Store, StoreError

SUBSCRIPTIONS = TOPICS
SIM_CLOCK_ENV = "REVOPS_SIM_CLOCK"      # set only by the stand-in lightningd, never by a real one
LEVELS = {"debug": "debug", "info": "info", "unusual": "warn", "broken": "error"}


MAX_ERROR_CHARS = 1000
RESERVED_KEYWORDS = frozenset({"plugin", "request"})   # pyln fills these itself and drops what a caller sent


class RevopsPlugin(Plugin):
    """pyln's Plugin, with the error answers this plugin promises: no `traceback` field (it carries absolute
    paths and says nothing to a caller), a bounded message, and a `plugin` or `request` keyword refused by
    name instead of silently replaced by pyln's own objects."""

    def _exec_func(self, func: Callable[..., Any], request: Any) -> Any:
        spec = rpc.BY_NAME.get(request.method)
        if spec is not None and isinstance(request.params, dict):
            reserved = sorted(RESERVED_KEYWORDS & request.params.keys())
            if reserved:
                request.set_exception(rpc.unknown_parameter(spec, reserved[0]))
                return None
        return super()._exec_func(func, request)

    def _write_locked(self, obj: Any) -> None:
        error = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message", ""))
            if len(message) > MAX_ERROR_CHARS:
                message = message[:MAX_ERROR_CHARS] + f"... ({len(message):,} characters)"
            obj = {**obj, "error": {k: v for k, v in error.items() if k != "traceback"} | {"message": message}}
        super()._write_locked(obj)


# lightningd's log and `getlog` show every non-ASCII character as '?' (seen on v25.12.1)
_ASCII = str.maketrans({"→": "->", "←": "<-", "×": "x", "≤": "<=", "≥": ">=", "≈": "~", "—": "-", "–": "-",
                        "…": "...", "µ": "u", "°": " deg"})


def ascii_log(text: str) -> str:
    """A log line lightningd shows as written: the usual symbols spelled in ASCII, anything else escaped."""
    return text.translate(_ASCII).encode("ascii", "backslashreplace").decode("ascii")


def plugin_options(on_change: Callable[[Plugin, str, Any], None]) -> Iterator[dict]:
    """Every option as pyln's add_option wants it, from the one declaration (revops/config.py OPTIONS): the
    mutable ones are dynamic, so `lightning-cli setconfig` changes them (and lightningd persists them) through
    `on_change`. Values are validated at init and in on_change, with the same function. Retired options are
    registered as deprecated so an old config still starts; init warns about them."""
    for opt in cfgmod.OPTIONS:
        default = opt.default if opt.lightningd_type != "string" else str(opt.default)
        yield {"name": opt.name, "default": default, "description": f"{opt.description} ({opt.allowed})",
               "opt_type": opt.lightningd_type, "dynamic": opt.mutable,
               "on_change": on_change if opt.mutable else None}
    for name, why in cfgmod.RETIRED.items():
        yield {"name": name, "default": None, "description": f"retired, no effect: {why}", "opt_type": "string",
               "deprecated": True}


def rpc_methods(app: "App") -> Iterator[tuple[str, Callable]]:
    for spec in rpc.METHODS:
        yield spec.name, _handler(app, spec)


def _handler(app: "App", spec: rpc.MethodSpec) -> Callable:
    """A pyln handler whose signature is the method's parameter list (pyln derives usage from it)."""
    P = inspect.Parameter
    signature = inspect.Signature(
        [P("plugin", P.POSITIONAL_OR_KEYWORD), P("request", P.POSITIONAL_OR_KEYWORD)]
        + [P(name, P.POSITIONAL_OR_KEYWORD, default=None) for name in spec.params]
        + [P("extra", P.VAR_POSITIONAL), P("unknown", P.VAR_KEYWORD)])

    def handler(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs).arguments
        request = bound["request"]
        if bound.get("extra"):
            request.set_exception(RpcException(
                f"{spec.name}: too many positional parameters (takes {', '.join(spec.params) or 'none'})", -32602))
            return
        params = {k: v for k, v in bound.items() if k in spec.params and v is not None}
        params.update(bound.get("unknown", {}))   # unknown keywords: rejected by name in rpc.dispatch
        app.call(spec.name, params, request)

    handler.__signature__ = signature
    handler.__doc__ = spec.doc
    handler.__name__ = spec.name.replace("-", "_")
    return handler


class App:
    def __init__(self, plugin: Plugin):
        self.plugin = plugin
        self.runtime: Runtime | None = None
        self._stop_lock = threading.Lock()
        self.notification_handler = _presigned(self.on_notification)

    def log(self, level: str, text: str) -> None:
        self.plugin.log(ascii_log(text), level=LEVELS.get(level, "info"))

    def init(self, options: dict, configuration: dict) -> dict | None:
        """Answer lightningd's init: None when running, {"disable": why} when we cannot run (lightningd then
        stops the plugin and logs why; a plugin that stayed "active" answering nothing would hide it)."""
        try:
            return self._init(options, configuration)
        except Exception as e:  # noqa: BLE001 - any start-up fault disables the plugin visibly
            self.runtime = None
            return {"disable": f"cl-revenue-ops could not start: {type(e).__name__}: {e}"}

    def _init(self, options: dict, configuration: dict) -> dict | None:
        try:
            config = cfgmod.parse_options(options)
        except cfgmod.ConfigError as e:
            return {"disable": str(e)}
        lightning_dir = configuration["lightning-dir"]
        rpc_path = os.path.join(lightning_dir, configuration["rpc-file"])
        db_path = cfgmod.db_file(config, lightning_dir)
        try:
            store = Store(db_path)
            config = attrs.evolve(config, version=store.config_version())
            warnings = cfgmod.legacy_override_warnings(store.load_overrides())
        except Exception as e:  # noqa: BLE001 - never "active" without a database: lightningd disables us
            why = str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {e}"
            return {"disable": f"revenue-ops-db-path ({db_path}) cannot be used: {why}"}
        for w in cfgmod.retired_warnings(options) + warnings + cfgmod.runtime_warnings(config):
            self.log("unusual", w)
        clock_method = os.environ.get(SIM_CLOCK_ENV)
        if clock_method:
            self.log("info", f"virtual clock: time comes from the node's {clock_method} RPC (simulation)")
        self.runtime = Runtime(
            rpc_factory=lambda: SocketRpc(rpc_path, timeout=config.rpc_timeout_seconds),
            store=store, config=config, clock=_clock(rpc_path, clock_method), log=self.log, threaded=True,
            tick_seconds=float(os.environ.get("REVOPS_TICK_SECONDS", "1" if clock_method else "5")))
        if config.enable_prometheus:
            self.runtime.exporter = start_exporter(config, self.runtime.tick_seconds, self.log)
        if config.enable_page:
            self.runtime.page = start_page(self.runtime, config, self.log)
        self.runtime.start()
        self.log("info", f"cl-revenue-ops {rpc.VERSION} initialised; database {db_path}")
        return None

    def call(self, method: str, params: dict, request: Any) -> None:
        if self.runtime is None:
            request.set_exception(RpcException("cl-revenue-ops is not initialised yet", -32000))
            return

        def respond(result: Any, error: Exception | None) -> None:
            if error is None:
                request.set_result(result)
            elif isinstance(error, RpcException):
                request.set_exception(error)
            else:
                request.set_exception(RpcException(f"{method}: {error}", -32000))
        self.runtime.call_rpc(method, params, respond)

    def on_option_change(self, plugin: Plugin, name: str, value: Any) -> None:
        """lightningd's `setconfig` of one of our dynamic options (also how `revenue-config set` applies):
        validated and applied on the actor loop; raising refuses it, and lightningd then persists nothing."""
        runtime = self.runtime
        if runtime is None:
            raise RpcException("cl-revenue-ops is not initialised yet", -32000)
        outcome: list[Any] = []
        done = threading.Event()

        def apply() -> None:
            try:
                outcome.append(rpc.apply_option(runtime, name, value))
            except Exception as e:  # noqa: BLE001 - handed back to pyln, which answers setconfig with it
                outcome.append(e)
            done.set()
        runtime.post(Continue(apply))
        if not done.wait(2 * runtime.config.rpc_timeout_seconds):
            raise RpcException(f"setconfig {name}: the plugin did not apply it within "
                               f"{2 * runtime.config.rpc_timeout_seconds} s; nothing changed", -32000)
        if isinstance(outcome[0], Exception):
            raise outcome[0]

    def on_notification(self, plugin: Plugin, **kwargs: Any) -> None:
        if self.runtime is None:
            return
        topic = next((k for k in kwargs if k in SUBSCRIPTIONS), None)
        if topic is not None:
            self.runtime.notify(topic, {topic: kwargs[topic]})

    def stop(self, reason: str) -> None:
        with self._stop_lock:
            if self.runtime is not None:
                self.runtime.stop(reason)
                self.runtime = None

    def on_shutdown(self, plugin: Plugin, **kwargs: Any) -> None:
        self.stop("shutdown notification")
        os._exit(0)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop("SIGTERM")
        os._exit(0)


def _presigned(method: Callable[..., None]) -> Callable[..., None]:
    """`method` as a plain function carrying its signature: pyln runs inspect.signature on the handler for
    every notification, and a precomputed one is ~10x cheaper than a bound method's (forward bursts)."""
    def handler(plugin: Plugin, **kwargs: Any) -> None:
        method(plugin, **kwargs)
    handler.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return handler


def start_exporter(config: Any, tick_seconds: float, log: Callable[[str, str], None]) -> Exporter | None:
    """Bind /metrics; a busy port is logged (the exporter-down alert fires) but fees still run."""
    exporter = Exporter(config.prometheus_address, config.prometheus_port, refresh_seconds=3 * tick_seconds)
    try:
        exporter.start()
    except OSError as e:
        log("broken", f"Prometheus exporter could not bind {config.prometheus_address}:"
                      f"{config.prometheus_port}: {e}; running without it")
        return None
    log("info", f"Prometheus exporter on http://{config.prometheus_address}:{exporter.port}/metrics")
    return exporter


def start_page(rt: Runtime, config: Any, log: Callable[[str, str], None]) -> PageServer | None:
    """Bind the status page on 127.0.0.1; a busy port is logged, and fees still run (like the exporter)."""
    page = PageServer(rt, config.page_port, config.page_token)
    try:
        page.start()
    except OSError as e:
        log("broken", f"status page could not bind 127.0.0.1:{config.page_port}: {e}; running without it")
        return None
    log("info", f"status page on http://127.0.0.1:{page.port}/" + (" (token required)" if config.page_token else ""))
    return page


def _clock(rpc_path: str, method: str | None) -> Callable[[], int]:
    if not method:
        return lambda: int(time.time())
    client = SocketRpc(rpc_path, timeout=5.0)
    return lambda: int(client.call(method, {})["now"])
