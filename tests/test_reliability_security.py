"""Security: SQL is parameterised, nothing but JSON-RPC reaches the plugin's stdout, the exporter listens
on loopback by default and escapes label values. See docs/security.md."""
from __future__ import annotations

import ast
import os
import socket
import stat
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from revops import config as cfgmod
from revops import metrics, simulate
from revops.sim.jsonrpc import JsonStreamDecoder
from revops.sim.lightningd import StandinLightningd
from revops.sim.scenario import load_scenario
from tests.plugin_under_test import wait_running

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "cl-revenue-ops.py")
# SQL built from something other than literals and local literal-only names, each with why it is safe
SQL_ALLOWED = {
    ("revops/store.py", "stmt"): "a statement of the MIGRATIONS constant",
    ("revops/store.py", "f'PRAGMA user_version={target + 1}'"): "an int from range(len(MIGRATIONS))",
    ("revops/store.py", "f'UPDATE OR IGNORE {table} SET {column}=? WHERE {column}=?'"):
        "table and column names from the SCID_COLUMNS constant; the values are parameters",
    ("revops/store.py", "f'DELETE FROM {table} WHERE {column}=?'"): "the same SCID_COLUMNS names",
}
HOSTILE = 'a"b\\c\nd}{=,\x00é'


def _literal_names(fn: ast.AST) -> set[str]:
    """Names that, inside this function, are only ever assigned literal SQL (or literal-only f-strings)."""
    assigned: dict[str, bool] = {}
    for node in ast.walk(fn):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign, ast.For)) else []
        value = getattr(node, "value", None) if not isinstance(node, ast.For) else None
        for t in targets:
            if isinstance(t, ast.Name):
                assigned[t.id] = assigned.get(t.id, True) and value is not None and _literal(value, set())
    return {name for name, ok in assigned.items() if ok}


def _literal(expr: ast.AST, names: set[str]) -> bool:
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, str)
    if isinstance(expr, ast.JoinedStr):
        return all(_literal(v.value if isinstance(v, ast.FormattedValue) else v, names) for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _literal(expr.left, names) and _literal(expr.right, names)
    return isinstance(expr, ast.Name) and expr.id in names


def sql_not_literal() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted([*ROOT.glob("revops/*.py"), *ROOT.glob("actors/*.py"), ROOT / "cl-revenue-ops.py"]):
        tree = ast.parse(path.read_text())
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            names = _literal_names(fn)
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.args
                        and call.func.attr in ("execute", "executemany", "executescript")
                        and not _literal(call.args[0], names)):
                    rel = str(path.relative_to(ROOT))
                    if (rel, ast.unparse(call.args[0])) not in SQL_ALLOWED:
                        found.append((rel, call.lineno, ast.unparse(call.args[0])))
    return found


def test_every_sql_statement_is_a_literal_with_parameters():
    assert not sql_not_literal(), "SQL built from values: use ? parameters"


def test_the_sql_check_would_catch_a_formatted_statement(tmp_path, monkeypatch):
    bad = tmp_path / "revops" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("def f(db, peer):\n    db.execute(f\"SELECT * FROM policies WHERE peer_id='{peer}'\")\n"
                   "def g(db, peer):\n    sql = 'SELECT ' + peer\n    db.execute(sql)\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "cl-revenue-ops.py").write_text("")
    assert [f[1] for f in sql_not_literal()] == [2, 5]


def test_nothing_but_json_rpc_reaches_the_plugins_stdout(tmp_path):
    """The real plugin behind a tee that records every byte it writes to fd 1, driven through start,
    RPCs (good and bad), notifications, log lines, a policy change, and `plugin stop`."""
    tap = tmp_path / "stdout.bin"
    wrapper = tmp_path / "cl-revenue-ops-tap.py"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, {PLUGIN!r}], stdout=subprocess.PIPE)\n"
        f"with open({str(tap)!r}, 'wb') as tap:\n"
        "    while chunk := os.read(p.stdout.fileno(), 65536):\n"
        "        tap.write(chunk); tap.flush(); os.write(1, chunk)\n"
        "sys.exit(p.wait())\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd("tiny", lightning_dir=str(tmp_path / "ld"), seed=1, speed=0, plugins=[str(wrapper)],
                           log_stderr=False) as ld:
        wait_running(ld)
        peer = ld.rpc.call("revenue-status")["channels"][0]["peer_id"]
        ld.rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "strategy": "static", "fee_ppm": 100})
        for bad in ({"action": "set", "peer_id": HOSTILE}, {"action": "get", "peer_id": "x" * 10000}):
            with pytest.raises(Exception):
                ld.rpc.call("revenue-policy", bad)
        ld.rpc.call("dev-sim-advance", {"seconds": 6 * 3600})
        ld.wait_for_log("fee ", timeout=20)
        ld.rpc.call("plugin", {"subcommand": "stop", "plugin": wrapper.name})
    raw = tap.read_bytes()
    decoder = JsonStreamDecoder()
    messages = decoder.feed(raw)
    assert any(m.get("method") == "log" for m in messages) and all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in messages)
    assert decoder.feed(b"\n\n") == []          # nothing left over that is not a complete message
    assert {m.get("method") for m in messages if "id" not in m} <= {"log", "message", "progress"}


def test_the_exporter_listens_on_loopback_by_default_and_nowhere_else():
    cfg = cfgmod.parse_options({})
    assert cfg.prometheus_address == "127.0.0.1" and not cfg.enable_prometheus
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = metrics.Exporter(cfg.prometheus_address, port, refresh_seconds=1)
    exporter.start()
    try:
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).status == 200
        outside = [a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
                   if not a[4][0].startswith("127.")]
        for address in outside:
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()
    finally:
        exporter.stop()


def test_label_values_are_escaped(tmp_path):
    """A label value with quotes, backslashes, newlines and braces cannot break the exposition format."""
    sim = simulate.start(load_scenario("tiny"), seed=1)
    sim.advance(3600)
    status = sim.rpc("revenue-status")
    status["channels"][0]["peer_id"] = HOSTILE
    snapshot = metrics.build_snapshot(sim.runtime, status)
    registry = CollectorRegistry()
    registry.register(type("C", (), {"collect": lambda self: metrics.families(snapshot)})())
    text = generate_latest(registry).decode()
    peers = {s.labels.get("peer") for f in text_string_to_metric_families(text) for s in f.samples}
    assert HOSTILE in peers
    sim.close()
