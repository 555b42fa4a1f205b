"""The status page's data, in-process on the simulated node (real runtime, real SQLite): the joins and sorts
of revops/page_data.py over real RPC answers, and how the page server's LoopAnswers asks the loop (one
call for concurrent asks, cached answers, a visible expiry when the loop does not answer)."""
from __future__ import annotations

import threading
import time

import pytest

from revops import page_data, simulate
from revops.page_server import LoopAnswers
from revops.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def sim():
    s = simulate.start(load_scenario("small"), seed=2)
    s.advance(2 * 86400)
    yield s
    s.close()


def test_channels_join_the_actor_state_with_the_30_day_pnl_and_mark_earners_and_bleeders(sim):
    status = sim.rpc("revenue-status")
    pnl = sim.rpc("revenue-profitability", {"window_days": page_data.PROFIT_DAYS})
    rows = page_data.channels(status, pnl, {c["peer_id"]: f"alias-{c['scid']}" for c in status["channels"]})
    assert [r["scid"] for r in sorted(rows, key=lambda r: r["scid"])] == [c["scid"] for c in status["channels"]]
    by_scid = {r["channel_id"]: r for group in pnl["channels_by_class"].values() for r in group}
    for r in rows:
        assert r["alias"] == f"alias-{r['scid']}"
        assert r["net_msat"] == by_scid[r["scid"]]["net_msat"]
        assert r["mark"] == ("earner" if r["net_msat"] > 0 else "bleeder" if r["net_msat"] < 0 else None)
    assert any(r["mark"] == "earner" for r in rows)


@pytest.mark.parametrize("sort", sorted(page_data.SORT_KEYS))
def test_every_sort_key_orders_both_ways(sim, sort):
    status, pnl = sim.rpc("revenue-status"), sim.rpc("revenue-profitability", {"window_days": 30})
    key = page_data.SORT_KEYS[sort]
    up = [key(r) for r in page_data.channels(status, pnl, {}, sort, "asc")]
    down = [key(r) for r in page_data.channels(status, pnl, {}, sort, "desc")]
    assert up == sorted(up) and down == sorted(down, reverse=True)


@pytest.mark.parametrize("sort,order,field", [("bogus", "asc", "sort"), ("net", "sideways", "order")])
def test_a_bad_sort_names_the_parameter_and_what_is_allowed(sim, sort, order, field):
    with pytest.raises(page_data.PageInputError) as err:
        page_data.channels(sim.rpc("revenue-status"), None, {}, sort, order)
    assert err.value.field == field and f"'{field}'" in str(err.value)


def test_fee_periods_group_the_decisions_taken_under_one_fee(sim):
    scid = sim.rpc("revenue-status")["channels"][0]["scid"]
    decisions = sim.rpc("revenue-fee-debug", {"channel_id": scid, "limit": 1000})["decisions"]
    periods = page_data.fee_periods(decisions)
    assert sum(p["decisions"] for p in periods) == len(decisions) > 10
    assert all(a["fee_ppm"] != b["fee_ppm"] for a, b in zip(periods, periods[1:]))
    assert [p["from"] for p in periods] == sorted(p["from"] for p in periods)
    measured = [p for p in periods if p["rate_msat_h"] is not None]
    assert measured and all(p["hours"] is not None and p["fees_earned_msat"] is not None for p in measured)


def test_loop_answers_expire_visibly_then_are_shared_and_cached(sim):
    rt = sim.runtime
    answers = LoopAnswers(rt, max_age=30.0, deadline=0.3)
    query = {"status": ("rpc", "revenue-status", {})}
    started = time.monotonic()
    got: list = []
    asker = threading.Thread(target=lambda: got.append(answers.ask(query)))
    asker.start()
    first = answers.ask(query)                  # the stepped loop is not run: nobody answers
    asker.join()
    assert time.monotonic() - started < 2
    assert first["status"].result is None and first["status"].error.startswith("expired: revenue-status")
    assert rt.inbox.qsize() == 1, "two concurrent asks put one call on the inbox"
    rt.run_until_idle()
    second = answers.ask(query)
    assert second["status"].error is None and second["status"].result["status"] == "running"
    assert answers.ask(query)["status"] is second["status"] and rt.inbox.qsize() == 0, "cached, not asked again"


def test_loop_answers_forget_stale_answers(sim):
    answers = LoopAnswers(sim.runtime, max_age=0.0, deadline=0.01)
    for c in sim.rpc("revenue-status")["channels"]:
        answers.ask({"c": ("rpc", "revenue-status", {"channel_id": c["scid"]})})    # expires: loop not run
        sim.runtime.run_until_idle()                                                 # now answered, then stale
    assert len(answers._entries) == 1, "one entry kept, not one per channel ever asked"

