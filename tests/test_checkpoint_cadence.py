"""A fee cycle that changed only a channel's balance memory, its last decision and last_message_at is
checkpointed at most every LIGHT_CHECKPOINT_SECONDS (issue 15: 5,000 JSON states written every cycle);
a crash or a clean stop loses nothing of it, a kill -9 at most that much."""
from __future__ import annotations

import json

from actors.channel import LIGHT_CHECKPOINT_SECONDS
from revops import simulate
from revops.sim.scenario import load_scenario

LIGHT = ("last_decision", "last_message_at")


def stored(sim) -> dict[str, tuple[dict, int]]:
    return {scid: (json.loads(text), at) for scid, text, at in
            sim.store.db.execute("SELECT scid, state_json, updated_at FROM channel_actors WHERE closed_at IS NULL")}


def live(sim) -> dict[str, dict]:
    """revenue-status per channel, as JSON (as stored: the ladder's evidence is keyed by strings there)."""
    return {c["scid"]: json.loads(json.dumps(c)) for c in sim.rpc("revenue-status")["channels"]}


def without_light(hill: dict) -> dict:
    return {k: v for k, v in hill.items() if k != "balance"}


def start(db: str, node=None):
    return simulate.start(load_scenario("small"), seed=4, db_path=db, node=node)


def test_light_changes_are_written_at_the_cadence_and_a_kill_loses_at_most_that(tmp_path):
    db = str(tmp_path / "revenue_ops.db")
    sim = start(db)
    sim.advance(2 * 86400)
    now = sim.node.now
    before, rows = live(sim), stored(sim)
    put_off = 0
    for scid, c in before.items():
        state, updated_at = rows[scid]
        assert without_light(state["hill"]) == without_light(c["hill_climb"])   # all else is written at once
        assert now - updated_at < LIGHT_CHECKPOINT_SECONDS + 1800             # the rest at the cadence
        if state["hill"]["balance"] != c["hill_climb"]["balance"]:
            put_off += 1
            assert state["last_decision"]["at"] < c["last_decision"]["at"]
    assert put_off > 0          # some channels' light changes were put off (the old code wrote every cycle)
    # kill -9: the runtime is abandoned, never stopped; a new one starts on the same database and node
    sim2 = start(db, node=sim.node)
    after = live(sim2)
    for scid, c in before.items():
        assert without_light(after[scid]["hill_climb"]) == without_light(c["hill_climb"])
        assert after[scid]["hill_climb"]["balance"]["at"] >= now - LIGHT_CHECKPOINT_SECONDS - 1800
        assert (after[scid]["window_fees_msat"], after[scid]["window_forwards"]) == \
            (c["window_fees_msat"], c["window_forwards"])
    sim2.close()


def test_a_clean_stop_writes_every_put_off_checkpoint(tmp_path):
    db = str(tmp_path / "revenue_ops.db")
    sim = start(db)
    sim.advance(86400 + 3 * 3600)
    before = live(sim)
    assert any(state["hill"]["balance"] != before[scid]["hill_climb"]["balance"]
               for scid, (state, _) in stored(sim).items())
    node = sim.node
    sim.close()
    sim2 = start(db, node=node)
    after = live(sim2)
    for scid, c in before.items():
        assert after[scid]["hill_climb"] == c["hill_climb"]
        assert after[scid]["last_decision"] == c["last_decision"]
    sim2.close()
