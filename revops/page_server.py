"""The read-only status page: an HTTP server on 127.0.0.1, in its own threads.

Why through the inbox: only the loop thread may touch the actors and the Store (simpleSystemBase is
single-threaded). A page asks the plugin's own RPCs exactly as lightning-cli does (`Runtime.call_rpc` puts
them on the inbox) and waits for the answers with a deadline. Answers are kept CACHE_SECONDS and shared by
concurrent requests, so a burst of page loads costs the loop one call of each kind per few seconds and never
holds it. An answer that does not come in time is shown as expired, with the rest of the page.
"""
from __future__ import annotations

import datetime
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs
import jinja2

from revops import page_data
from revops import policy as policy_rules
from revops.runtime import Continue

if TYPE_CHECKING:
    from revops.runtime import Runtime

ADDRESS = "127.0.0.1"
CACHE_SECONDS = 2.0
DEADLINE_SECONDS = 10.0
COOKIE = "revops_page_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Query = tuple[str, str, dict]      # ("rpc" | "lightningd", method, params)


@attrs.frozen
class Answer:
    result: Any
    error: str | None


@attrs.define
class _Pending:
    asked_at: float
    done: threading.Event = attrs.field(factory=threading.Event)
    answer: Answer | None = None


class LoopAnswers:
    """RPC answers (and lightningd reads) asked through the runtime's inbox, cached and shared."""

    def __init__(self, rt: "Runtime", max_age: float = CACHE_SECONDS, deadline: float = DEADLINE_SECONDS):
        self.rt, self.max_age, self.deadline = rt, max_age, deadline
        self._lock = threading.Lock()
        self._entries: dict[str, _Pending] = {}

    def ask(self, queries: dict[str, Query]) -> dict[str, Answer]:
        """Every query's answer; one not answered within the deadline is an 'expired' error."""
        started = time.monotonic()
        entries = {name: self._entry(q, started) for name, q in queries.items()}
        out = {}
        for name, entry in entries.items():
            entry.done.wait(max(0.0, self.deadline - (time.monotonic() - started)))
            out[name] = entry.answer or Answer(None, f"expired: {queries[name][1]} did not answer within "
                                                     f"{self.deadline:.0f} s")
        return out

    def _entry(self, q: Query, now: float) -> _Pending:
        key = json.dumps(q, sort_keys=True)
        with self._lock:
            entry = self._entries.get(key)
            fresh = entry is not None and (entry.answer is None and now - entry.asked_at < 2 * self.deadline
                                           or entry.answer is not None and now - entry.asked_at < self.max_age)
            if fresh:
                return entry
            # forget answers nobody can reuse any more (one entry per channel page asked, at most)
            self._entries = {k: e for k, e in self._entries.items()
                             if e.answer is None or now - e.asked_at < self.max_age}
            entry = self._entries[key] = _Pending(now)
        self._send(q, entry)
        return entry

    def _send(self, q: Query, entry: _Pending) -> None:
        def respond(result: Any, error: Any) -> None:
            message = None if error is None else error.get("message", str(error)) if isinstance(error, dict) \
                else str(error)
            entry.answer = Answer(result if error is None else None, message)
            entry.done.set()

        kind, method, params = q
        if kind == "rpc":
            self.rt.call_rpc(method, dict(params), respond)
        else:      # run_io answers on the loop thread; ask it from there too
            self.rt.post(Continue(lambda: self.rt.run_io([(method, params)], lambda a: respond(*a[0]))))


def _sats(msat: int | None) -> str:
    return "—" if msat is None else f"{msat / 1000:,.3f}"


def _when(at: int | None) -> str:
    return "—" if not at else datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    h, m = divmod(max(seconds, 0) // 60, 60)
    return f"{h} h {m:02d} m" if h else f"{m} m {max(seconds, 0) % 60:02d} s"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("revops", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(sats=_sats, when=_when, age=_age, pct=lambda x: "—" if x is None else f"{100 * x:.1f} %")
    return env


def _static_files() -> dict[str, bytes]:
    root = resources.files("revops") / "static"
    return {f.name: f.read_bytes() for f in root.iterdir() if f.is_file()}


class PageServer:
    """The pages (see docs/operations.md) on 127.0.0.1:port; `token` (if any) is asked once, then kept in a cookie."""

    def __init__(self, rt: "Runtime", port: int, token: str):
        self.rt, self.port, self.token = rt, port, token
        self.answers = LoopAnswers(rt)
        self.env = templates()
        self.static = _static_files()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Bind the socket (raises OSError if the port cannot be used) and serve from a daemon thread."""
        page = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "cl-revenue-ops"

            def do_GET(self) -> None:          # noqa: N802 - http.server's naming
                page.handle(self)

            def do_HEAD(self) -> None:         # noqa: N802
                page.handle(self, body=False)

            def log_message(self, format: str, *args: Any) -> None:   # noqa: A002 - quiet: lightningd's log
                pass

        self._server = ThreadingHTTPServer((ADDRESS, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, name="revops-page", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- requests -------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler, body: bool = True) -> None:
        url = urllib.parse.urlsplit(req.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        host = req.headers.get("Host")
        if host is not None and urllib.parse.urlsplit("//" + host).hostname not in LOOPBACK_HOSTS:     # a page fetched through a rebinding DNS name is refused
            self._send(req, HTTPStatus.MISDIRECTED_REQUEST, "text/plain", b"loopback host names only\n", body)
            return
        if self.token and not self._authorised(req, query):
            self._send(req, HTTPStatus.UNAUTHORIZED, "text/plain",
                       b"token required: open this page once with ?token=<revenue-ops-page-token>\n", body)
            return
        if self.token and "token" in query:       # keep it in a cookie, and out of the address bar
            rest = urllib.parse.urlencode({k: v for k, v in query.items() if k != "token"})
            req.send_response(HTTPStatus.SEE_OTHER)
            req.send_header("Location", url.path + (f"?{rest}" if rest else ""))
            req.send_header("Set-Cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        try:
            status, ctype, payload = self._route(url.path, query)
        except page_data.PageInputError as e:
            status, ctype, payload = HTTPStatus.BAD_REQUEST, "text/plain", f"{e}\n".encode()
        except Exception as e:  # noqa: BLE001 - a page fault is a 500 page, never a dead server thread
            status, ctype = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain"
            payload = f"page failed: {type(e).__name__}: {e}\n".encode()
        self._send(req, status, ctype, payload, body)

    def _authorised(self, req: BaseHTTPRequestHandler, query: dict[str, str]) -> bool:
        offered = [query.get("token", "")]
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append(auth[len("Bearer "):])
        try:
            cookie = SimpleCookie(req.headers.get("Cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        if COOKIE in cookie:
            offered.append(cookie[COOKIE].value)
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered if o)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, ctype: str, payload: bytes, body: bool) -> None:
        req.send_response(status)
        req.send_header("Content-Type", f"{ctype}; charset=utf-8")
        req.send_header("Content-Length", str(len(payload)))
        for k, v in HEADERS.items():
            req.send_header(k, v)
        req.end_headers()
        if body:
            req.wfile.write(payload)

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            ext = name[name.rfind("."):] if "." in name else ""
            if name in self.static and ext in STATIC_TYPES:
                return HTTPStatus.OK, STATIC_TYPES[ext], self.static[name]
            return HTTPStatus.NOT_FOUND, "text/plain", b"not found\n"
        pages: dict[str, Callable[[dict[str, str]], tuple[str, dict]]] = {
            "/": self._summary, "/channels": self._channels, "/rebalancing": self._rebalancing}
        if path.startswith("/channel/"):
            template, ctx = self._channel(path[len("/channel/"):])
        elif path in pages:
            template, ctx = pages[path](query)
        else:
            return HTTPStatus.NOT_FOUND, "text/plain", b"not found\n"
        html = self.env.get_template(template).render(path=path, **ctx)
        return HTTPStatus.OK, "text/html", html.encode()

    # -- pages ----------------------------------------------------------------------------------
    def _ask(self, queries: dict[str, Query]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Results by name, and (what, why) for each that failed or expired (shown on the page)."""
        answers = self.answers.ask(queries)
        return ({k: a.result for k, a in answers.items()},
                [(f"{queries[k][1]} {json.dumps(queries[k][2]) if queries[k][2] else ''}".strip(), a.error)
                 for k, a in answers.items() if a.error is not None])

    def _summary(self, query: dict[str, str]) -> tuple[str, dict]:
        asked = {"status": ("rpc", "revenue-status", {})}
        asked |= {f"d{n}": ("rpc", "revenue-dashboard", {"window_days": n}) for n in page_data.SUMMARY_WINDOWS}
        got, errors = self._ask(asked)
        status = got["status"] or {}
        data = page_data.summary(status, {n: got[f"d{n}"] for n in page_data.SUMMARY_WINDOWS})
        trend = data["trend"]
        chart = {"title": "Lifetime fees earned and rebalance spend at each daily snapshot (sats)",
                 "x": [t["at"] for t in trend],
                 "series": [{"label": "fees earned", "values": [t["fees_earned_sats"] for t in trend]},
                            {"label": "rebalance spend", "values": [t["rebalance_spent_sats"] for t in trend]}]}
        return "summary.html", {"s": data, "errors": errors, "trend_chart": chart, "dry_run": data["dry_run"]}

    def _channels(self, query: dict[str, str]) -> tuple[str, dict]:
        sort, order = query.get("sort", "net"), query.get("order", "desc")
        got, errors = self._ask({"status": ("rpc", "revenue-status", {}),
                                 "pnl": ("rpc", "revenue-profitability", {"window_days": page_data.PROFIT_DAYS}),
                                 "nodes": ("lightningd", "listnodes", {})})
        status = got["status"] or {}
        rows = page_data.channels(status, got["pnl"], page_data.aliases(got["nodes"]), sort, order)
        return "channels.html", {"rows": rows, "errors": errors, "sort": sort, "order": order,
                                 "sort_keys": page_data.SORT_KEYS, "days": page_data.PROFIT_DAYS,
                                 "dry_run": status.get("config", {}).get("dry_run")}

    def _channel(self, raw: str) -> tuple[str, dict]:
        try:
            scid = policy_rules.validate_scid(urllib.parse.unquote(raw))
        except policy_rules.PolicyError as e:
            raise page_data.PageInputError("channel", str(e)) from e
        got, errors = self._ask({
            "status": ("rpc", "revenue-status", {"channel_id": scid}),
            "fees": ("rpc", "revenue-fee-debug", {"channel_id": scid, "limit": page_data.DECISION_LIMIT}),
            "pnl": ("rpc", "revenue-profitability", {"channel_id": scid, "window_days": page_data.PROFIT_DAYS}),
            "rebalance": ("rpc", "revenue-rebalance-debug", {}), "nodes": ("lightningd", "listnodes", {})})
        status = got["status"] or {}
        if not status.get("channels"):
            return "missing.html", {"scid": scid, "errors": errors, "dry_run": status.get("config", {}).get("dry_run")}
        data = page_data.channel(status, got["fees"], got["pnl"], got["rebalance"], page_data.aliases(got["nodes"]))
        ch = data["chart"]
        charts = [{"title": "Fee in force (ppm) and what the channel earned at it (msat/h)", "x": ch["at"],
                   "series": [{"label": "fee ppm", "values": ch["fee_ppm"], "scale": "ppm", "step": True},
                              {"label": "earned msat/h", "values": ch["rate_msat_h"], "scale": "rate"}]},
                  {"title": "Local balance (share of capacity) at each decision", "x": ch["at"],
                   "series": [{"label": "local balance", "values": ch["local_ratio"], "scale": "ratio"}]}]
        return "channel.html", {"c": data, "errors": errors, "charts": charts, "days": page_data.PROFIT_DAYS,
                                "dry_run": status.get("config", {}).get("dry_run")}

    def _rebalancing(self, query: dict[str, str]) -> tuple[str, dict]:
        got, errors = self._ask({"debug": ("rpc", "revenue-rebalance-debug", {}),
                                 "status": ("rpc", "revenue-status", {}), "nodes": ("lightningd", "listnodes", {})})
        status = got["status"] or {}
        peers = {c["scid"]: c["peer_id"] for c in status.get("channels", [])}
        data = None if got["debug"] is None else page_data.rebalancing(got["debug"], page_data.aliases(got["nodes"]),
                                                                       peers)
        return "rebalancing.html", {"r": data, "errors": errors, "dry_run": status.get("config", {}).get("dry_run")}
