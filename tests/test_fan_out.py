"""A fan-out to the channel actors goes a chunk at a time (thespian's queue is a list taken from its head:
5,000 messages queued at once moved ~400 MB per fee cycle at 5,000 channels, issue 15). Chunked or not,
every actor gets the same messages in the same order, so a run decides the same."""
from __future__ import annotations

from actors import coordinator
from revops import simulate
from revops.sim.scenario import load_scenario


def run(monkeypatch, chunk: int) -> tuple[list, list, list[int]]:
    monkeypatch.setattr(coordinator, "FAN_OUT_CHUNK", chunk)
    sizes: list[int] = []
    fan_out = coordinator.CoordinatorActor.fan_out

    def recording(self, messages):
        sizes.append(len(messages))
        fan_out(self, messages)
    monkeypatch.setattr(coordinator.CoordinatorActor, "fan_out", recording)
    sim = simulate.start(load_scenario("small"), seed=3)
    sim.advance(86_400)
    decisions = sim.store.db.execute("SELECT scid, at, old_fee_ppm, new_fee_ppm, branch, reason, outcome "
                                     "FROM fee_decisions ORDER BY id").fetchall()
    rebalances = sim.store.db.execute("SELECT * FROM rebalances ORDER BY id").fetchall()
    sim.close()
    return [tuple(r) for r in decisions], [tuple(r) for r in rebalances], sizes


def test_a_fan_out_in_chunks_decides_as_one_sent_at_once(monkeypatch):
    decisions, rebalances, sizes = run(monkeypatch, 2)
    assert decisions and max(sizes) > 2
    assert [s for s in sizes if s <= 2] and all(s - 2 in sizes for s in sizes if s > 2)   # chunk by chunk
    assert run(monkeypatch, 10**9)[:2] == (decisions, rebalances)
