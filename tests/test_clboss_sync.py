"""The clboss hand-off's reconciliation (revops/clboss_sync.py), table by table: desired + observed + owned →
the calls, each with the peer's whole tag set (clboss-unmanage replaces it)."""
from __future__ import annotations

import pytest

from revops import clboss_sync as cs

A, B, C = "02" + "aa" * 32, "03" + "bb" * 32, "02" + "cc" * 32
F = frozenset


def test_parse_unmanaged_reads_clbosss_comma_space_lists_and_skips_the_comment():
    status = {"unmanaged": {"comment": "Use 'clboss-unmanage' to disable management of some nodes.",
                            A: "balance, lnfee", B: "close, open", C: ""}}
    assert cs.parse_unmanaged(status) == {A: F({"balance", "lnfee"}), B: F({"close", "open"})}
    assert cs.parse_unmanaged({"unmanaged": {A: "lnfee"}}) == {A: F({"lnfee"})}
    for bad in ({}, {"unmanaged": "x"}, None, []):
        with pytest.raises(ValueError):
            cs.parse_unmanaged(bad)


# (priced, observed, owned) → [(peer, kind, tags sent)]
PLAN_CASES = {
    "take: nothing there yet": ({A}, {}, set(), [(A, "take", "lnfee")]),
    "take keeps the operator's tags": ({A}, {A: F({"close", "open"})}, set(), [(A, "take", "close,lnfee,open")]),
    "in sync: ours": ({A}, {A: F({"lnfee"})}, {A}, []),
    "in sync: the operator's lnfee is not claimed": ({A}, {A: F({"lnfee", "balance"})}, set(), []),
    "take again after someone removed ours": ({A}, {A: F({"balance"})}, {A}, [(A, "take", "balance,lnfee")]),
    "hand back keeps the operator's tags": (set(), {A: F({"balance", "lnfee"})}, {A}, [(A, "hand_back", "balance")]),
    "hand back to fully managed": (set(), {A: F({"lnfee"})}, {A}, [(A, "hand_back", "")]),
    "never hand back an lnfee we did not add": (set(), {A: F({"lnfee"})}, set(), []),
    "forget: lnfee already gone": (set(), {}, {A}, [(A, "forget", None)]),
    "mixed": ({A, B}, {B: F({"open"}), C: F({"lnfee", "close"})}, {C},
              [(A, "take", "lnfee"), (C, "hand_back", "close"), (B, "take", "lnfee,open")]),   # by node id
}


@pytest.mark.parametrize("priced,observed,owned,expected", PLAN_CASES.values(), ids=PLAN_CASES.keys())
def test_plan(priced, observed, owned, expected):
    actions = cs.plan(priced, observed, owned)
    assert [(a.peer_id, a.kind, a.tags) for a in actions] == expected
    assert all(a.reason for a in actions)


def test_plan_reasons_name_what_is_kept_and_why_a_peer_goes_back():
    take, = cs.plan({A}, {A: F({"close"})}, set())
    assert "close" in take.reason and "kept" in take.reason
    back, = cs.plan(set(), {A: F({"lnfee"})}, {A}, "clboss_enabled is off")
    assert back.reason.startswith("clboss_enabled is off")


def test_operator_lnfee_lists_priced_peers_whose_lnfee_is_not_ours():
    observed = {A: F({"lnfee"}), B: F({"lnfee"}), C: F({"open"})}
    assert cs.operator_lnfee({A, B, C}, observed, {A}) == [B]


@pytest.mark.parametrize("failures,delay", [(0, cs.RESYNC_SECONDS), (1, 30), (2, 60), (3, 120), (7, 1920),
                                            (8, 3600), (50, 3600)])
def test_retry_delay_backs_off_exponentially_and_is_capped(failures, delay):
    assert cs.retry_delay(failures) == delay
