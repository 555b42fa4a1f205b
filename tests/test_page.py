"""The status page of the real plugin under the stand-in lightningd, in a real headless browser.

Debian's chromium + chromium-driver, driven by selenium: every page loads with no console error, every
channel appears with the numbers of the RPC answers, a decision made after load shows on refresh, hostile
peer aliases stay text, the server listens on loopback only and survives 200 requests while the node
runs. Screenshots and measured figures go to tests/results/page/ (gitignored). Without chromium the tests
skip, saying how to install it; under CI they fail (tests/needs.py).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from revops.sim.lightningd import StandinLightningd
from revops.sim.scenario import SCENARIO_DIR
from tests.needs import need
from tests.test_metrics import free_port, listening_addresses
from tests.test_plugin_standin import PLUGIN, advance, normal_scids, running, wait_for

RESULTS = Path(__file__).resolve().parent / "results" / "page"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")
HOSTILE = {   # channel name in the small scenario -> peer alias (listnodes keeps 32 characters)
    "acinq": "<script>alert(1)</script>",
    "exchange": '"onmouseover="alert(2)',
    "merchant": "<img src=x onerror=alert(3)>",
    "hobbyist": "&amp; {{7*7}} </td></table>",
}
PAGES = ("/", "/channels", "/channel/{scid}", "/rebalancing")


def hostile_scenario(path: Path) -> Path:
    """The small scenario with hostile peer aliases (TOML literal strings: no escaping needed)."""
    lines = []
    for line in (SCENARIO_DIR / "small.toml").read_text().splitlines():
        lines.append(line)
        name = line.split('"')[1] if line.startswith("name = ") and line.count('"') == 2 else None
        if name in HOSTILE:
            lines.append(f"peer_alias = '{HOSTILE[name]}'")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    need("chromium")
    tmp = tmp_path_factory.mktemp("page")
    port = free_port()
    os.environ["REVOPS_TICK_SECONDS"] = "0.2"
    with StandinLightningd(str(hostile_scenario(tmp / "hostile.toml")), lightning_dir=str(tmp / "ld"), seed=3,
                           speed=0, plugins=[PLUGIN], log_stderr=False,
                           plugin_opts={"revenue-ops-enable-page": True, "revenue-ops-page-port": port}) as ld:
        running(ld)
        advance(ld, 3600, settle=1.0)
        chans = sorted(ld.rpc.call("revenue-status")["channels"], key=lambda c: c["local_ratio"])
        ld.rebalanced = chans[0]["scid"]      # a manual rebalance into the emptiest channel: a cost to show
        ld.rpc.call("revenue-rebalance", {"from_channel": chans[-1]["scid"], "to_channel": ld.rebalanced,
                                          "amount_sats": 100_000, "force": True})
        for _ in range(36):              # 36 fee cycles of 30 min: a history to show
            advance(ld, 1800, settle=0.25)
        advance(ld, 86400, settle=1.5)   # a daily snapshot and a day of P&L
        ld.page = f"http://127.0.0.1:{port}"
        ld.page_port = port
        yield ld


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    need("chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def first_scid(ld) -> str:
    return ld.rpc.call("revenue-status")["channels"][0]["scid"]


def load(driver, url: str) -> float:
    """Open `url`; the navigation's load time in ms (navigation start to load event end)."""
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", timeout=30)
    return driver.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                 "return n.loadEventEnd - n.startTime;")


def console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def record(name: str, figures: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=1) + "\n")


def fields(driver, scope_css: str) -> dict[str, str]:
    """{data-field: data-value} of every cell inside one element."""
    from selenium.webdriver.common.by import By
    scope = driver.find_element(By.CSS_SELECTOR, scope_css)
    return {c.get_attribute("data-field"): c.get_attribute("data-value")
            for c in scope.find_elements(By.CSS_SELECTOR, "[data-field]")}


def cells(driver, row_css: str, key: str) -> dict[str, dict[str, str]]:
    """{row key attribute: {data-field: data-value}} of a table's rows."""
    from selenium.webdriver.common.by import By
    out = {}
    for row in driver.find_elements(By.CSS_SELECTOR, row_css):
        out[row.get_attribute(key)] = {c.get_attribute("data-field"): c.get_attribute("data-value")
                                       for c in row.find_elements(By.CSS_SELECTOR, "[data-field]")}
    return out


def test_every_page_loads_without_console_errors_and_draws_its_charts(node, browser):
    from selenium.webdriver.common.by import By
    browser.get_log("browser")
    times = {}
    for page in PAGES:
        path = page.format(scid=first_scid(node))
        times[path] = round(load(browser, node.page + path), 1)
        assert console_errors(browser) == [], path
        charts = browser.find_elements(By.CSS_SELECTOR, ".plot[data-chart]")
        for chart in charts:          # uPlot drew a canvas into every chart
            assert chart.find_elements(By.TAG_NAME, "canvas"), (path, chart.get_attribute("data-chart"))
        name = page.strip("/").split("/")[0] or "summary"
        RESULTS.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1400, max(1000, height + 200))
        assert browser.save_screenshot(str(RESULTS / f"{name}.png"))
        browser.set_window_size(1400, 1000)
    record("load_times_ms", times)


def test_every_channel_appears_with_the_numbers_of_the_rpc_answers(node, browser):
    load(browser, node.page + "/channels")
    shown = cells(browser, "#channels tbody tr[data-scid]", "data-scid")
    status = {c["scid"]: c for c in node.rpc.call("revenue-status")["channels"]}
    assert set(shown) == set(status) == normal_scids(node)
    pnl = {r["channel_id"]: r for rows in node.rpc.call("revenue-profitability", {"window_days": 30})
           ["channels_by_class"].values() for r in rows}
    for scid, row in shown.items():
        assert int(row["fee_ppm"]) == status[scid]["fee_ppm"]
        assert int(row["capacity_msat"]) == status[scid]["capacity_msat"]
        assert float(row["local_ratio"]) == status[scid]["local_ratio"]
        assert int(row["revenue_msat"]) == pnl[scid]["revenue_msat"]
        assert int(row["cost_msat"]) == pnl[scid]["rebalance_cost_msat"]
        assert int(row["net_msat"]) == pnl[scid]["net_msat"]
        assert int(row["last_decision_at"]) == status[scid]["last_decision"]["at"]
    assert any(r["revenue_msat"] != "0" for r in shown.values()), "the node earned nothing: a test that cannot fail"

    load(browser, node.page + "/")
    pnl_rows = cells(browser, "#pnl tbody tr", "data-days")
    for days in ("1", "7", "30"):
        d = node.rpc.call("revenue-dashboard", {"window_days": int(days)})
        assert int(pnl_rows[days]["fees_msat"]) == d["period"]["gross_revenue_msat"]
        assert int(pnl_rows[days]["cost_msat"]) == d["period"]["rebalance_cost_msat"]
        assert int(pnl_rows[days]["net_msat"]) == d["financial_health"]["net_profit_msat"]
        assert float(pnl_rows[days]["roc_pct"]) == d["financial_health"]["return_on_capacity_pct"]

    load(browser, node.page + "/rebalancing")
    budget = fields(browser, "#budget")
    ledger = node.rpc.call("revenue-rebalance-debug")["ledger"]
    for field in ("daily_budget_msat", "spent_24h_msat", "reserved_msat", "remaining_msat"):
        assert int(budget[field]) == ledger[field], field
    shown = cells(browser, "#history tbody tr[data-rebalance]", "data-rebalance")
    assert {k: int(v["fee_msat"]) for k, v in shown.items()} == {r["id"]: r["fee_msat"] for r in ledger["history"]}
    mine = [r for r in ledger["history"] if r["to_channel"] == node.rebalanced]
    assert mine and mine[0]["fee_msat"] > 0, "the manual rebalance settled with a cost"
    touching = {r["id"]: r["fee_msat"] for r in ledger["history"]
                if node.rebalanced in [r["to_channel"], *r["from_channels"]]}
    load(browser, f"{node.page}/channel/{node.rebalanced}")
    assert {k: int(v["fee_msat"]) for k, v in cells(browser, "#rebalances tbody tr[data-rebalance]",
                                                     "data-rebalance").items()} == touching


def test_a_decision_made_after_load_appears_on_refresh(node, browser):
    from selenium.webdriver.common.by import By
    scid = first_scid(node)
    load(browser, f"{node.page}/channel/{scid}")
    before = {r.get_attribute("data-decision") for r in browser.find_elements(By.CSS_SELECTOR, "#decisions tr[data-decision]")}
    fee = node.rpc.call("revenue-status", {"channel_id": scid})["channels"][0]["fee_ppm"] + 7
    node.rpc.call("revenue-set-fee", {"channel_id": scid, "fee_ppm": fee})
    newest = node.rpc.call("revenue-fee-debug", {"channel_id": scid, "limit": 1})["decisions"][0]
    assert str(newest["id"]) not in before

    def shown() -> bool:
        browser.refresh()
        return bool(browser.find_elements(By.CSS_SELECTOR, f'#decisions tr[data-decision="{newest["id"]}"]'))
    wait_for(shown, timeout=15, interval=0.5)
    row = browser.find_element(By.CSS_SELECTOR, f'#decisions tr[data-decision="{newest["id"]}"]')
    assert f"revenue-set-fee {fee} ppm" in row.text
    assert int(fields(browser, "#facts")["fee_ppm"]) == fee
    assert console_errors(browser) == []


def test_hostile_peer_aliases_stay_text(node, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    status = node.rpc.call("revenue-status")["channels"]
    aliases = {n["nodeid"]: n["alias"] for n in node.rpc.call("listnodes")["nodes"]}
    hostile = {c["scid"]: aliases[c["peer_id"]] for c in status if aliases[c["peer_id"]] in HOSTILE.values()}
    assert len(hostile) == len(HOSTILE)
    for path in ["/channels", "/rebalancing"] + [f"/channel/{scid}" for scid in hostile]:
        load(browser, node.page + path)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        assert not browser.find_elements(By.CSS_SELECTOR, "img[src=x], [onmouseover], [onerror]"), path
        assert browser.execute_script("return document.querySelectorAll('script:not([src]):not([type])').length") == 0
        shown = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".alias")}
        if path == "/channels":
            assert set(hostile.values()) <= shown
        elif path.startswith("/channel/"):
            assert hostile[path.rsplit("/", 1)[1]] in shown
        with urllib.request.urlopen(node.page + path, timeout=10) as r:
            html = r.read().decode()
        for alias in HOSTILE.values():
            assert alias not in html, (path, alias)      # never raw: only its escaped form
        assert console_errors(browser) == [], path


def test_the_server_listens_on_loopback_only_and_refuses_foreign_host_names(node):
    assert listening_addresses(node.page_port) == {"127.0.0.1"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:   # this host's address on its network, if any
        try:
            s.connect(("192.0.2.1", 9))
            own = s.getsockname()[0]
        except OSError:
            own = None
    if own and not own.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((own, node.page_port), timeout=2).close()
    req = urllib.request.Request(node.page + "/", headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 421
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(node.page + "/", method="POST", data=b"x"), timeout=5)
    assert err.value.code == 501                      # read-only: GET and HEAD only


def test_survives_200_requests_while_the_node_runs(node):
    scid = first_scid(node)
    paths = [p.format(scid=scid) for p in PAGES] + ["/static/page.js"]
    stop = threading.Event()

    def run_node() -> None:
        while not stop.is_set():
            node.rpc.call("dev-sim-advance", {"seconds": 600})
            time.sleep(0.1)

    def get(i: int) -> tuple[int, float]:
        started = time.monotonic()
        with urllib.request.urlopen(node.page + paths[i % len(paths)], timeout=30) as r:
            r.read()
            return r.status, time.monotonic() - started

    mover = threading.Thread(target=run_node, daemon=True)
    mover.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(get, range(200)))
    finally:
        stop.set()
        mover.join(10)
    total = time.monotonic() - started
    assert [code for code, _ in results] == [200] * 200
    assert node.rpc.call("revenue-status")["status"] == "running"
    with urllib.request.urlopen(node.page + "/channels", timeout=10) as r:
        assert r.status == 200
    latencies = sorted(s for _, s in results)
    record("200_requests", {"requests": 200, "concurrency": 8, "total_s": round(total, 3),
                            "median_ms": round(1000 * statistics.median(latencies), 1),
                            "p95_ms": round(1000 * latencies[189], 1), "max_ms": round(1000 * latencies[-1], 1)})


def test_the_page_is_off_by_default_and_a_token_is_asked_once_then_kept_in_a_cookie(tmp_path, monkeypatch):
    monkeypatch.setenv("REVOPS_TICK_SECONDS", "0.2")
    with StandinLightningd("tiny", lightning_dir=str(tmp_path / "off"), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False) as ld:
        running(ld)
        assert not any("status page" in line for line in ld.log_lines())
        assert not listening_addresses(9801)
    port, token = free_port(), "s3cret-page-Token"
    with StandinLightningd("tiny", lightning_dir=str(tmp_path / "on"), seed=1, speed=0, plugins=[PLUGIN],
                           log_stderr=False, plugin_opts={"revenue-ops-enable-page": True,
                                                          "revenue-ops-page-port": port,
                                                          "revenue-ops-page-token": token}) as ld:
        running(ld)
        base = f"http://127.0.0.1:{port}"

        def status(path: str, **headers: str) -> tuple[int, dict]:
            class NoRedirect(urllib.request.HTTPRedirectHandler):
                def redirect_request(self, *args, **kwargs):
                    return None
            try:
                with urllib.request.build_opener(NoRedirect).open(
                        urllib.request.Request(base + path, headers=headers), timeout=10) as r:
                    return r.status, dict(r.headers)
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers)

        assert status("/")[0] == 401
        assert status("/channels?token=wrong")[0] == 401
        assert status("/static/page.js")[0] == 401
        code, headers = status("/channels?token=" + token + "&sort=fee")
        assert code == 303 and headers["Location"] == "/channels?sort=fee"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        assert status("/channels", Cookie=cookie)[0] == 200
        assert status("/", Authorization="Bearer " + token)[0] == 200
        assert status("/", Cookie=cookie.replace(token, token[:-1] + "x"))[0] == 401
        assert ld.rpc.call("revenue-config", {"action": "get", "key": "page_token"})["value"] == "(set)"


def test_without_javascript_the_tables_read_and_sort(node, browser):
    from selenium.webdriver.common.by import By
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        load(browser, node.page + "/channels")
        browser.find_element(By.LINK_TEXT, "fee ppm").click()      # a plain link: ?sort=fee&order=desc
        wait_for(lambda: "sort=fee" in browser.current_url)
        fees = [int(r["fee_ppm"]) for r in cells(browser, "#channels tbody tr[data-scid]", "data-scid").values()]
        assert len(fees) == len(normal_scids(node)) and fees == sorted(fees, reverse=True)
        browser.find_element(By.PARTIAL_LINK_TEXT, "fee ppm").click()
        wait_for(lambda: "order=asc" in browser.current_url)
        fees = [int(r["fee_ppm"]) for r in cells(browser, "#channels tbody tr[data-scid]", "data-scid").values()]
        assert fees == sorted(fees)
        load(browser, node.page + "/")
        assert not browser.find_elements(By.TAG_NAME, "canvas"), "no script ran"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#pnl tbody tr")) == 3
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
