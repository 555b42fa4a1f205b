"""The loop's inbox takes forward_events before other messages (a cycle started by a tick inside a burst
held the burst's forwards behind it: issue 15's ingestion rate halved), without starving the others."""
from __future__ import annotations

import threading

from actors.messages import Tick
from revops.runtime import FORWARD_STREAK, Inbox, Notification


def forward(i: int) -> Notification:
    return Notification("forward_event", {"forward_event": {"in_htlc_id": i}})


def drain(inbox: Inbox) -> list:
    out = []
    while not inbox.empty():
        out.append(inbox.get_nowait())
    return out


def test_forwards_queued_behind_a_tick_are_taken_first_the_rest_in_arrival_order():
    inbox = Inbox()
    other = Notification("connect", {"id": "02ab"})
    for msg in (Tick(1), forward(0), other, forward(1), Tick(2), forward(2)):
        inbox.put(msg)
    assert inbox.qsize() == 6
    assert drain(inbox) == [forward(0), forward(1), forward(2), Tick(1), other, Tick(2)]


def test_a_stream_of_forwards_never_starves_a_waiting_message():
    inbox = Inbox()
    inbox.put(Tick(1))
    for i in range(FORWARD_STREAK + 10):
        inbox.put(forward(i))
    out = drain(inbox)
    assert out[FORWARD_STREAK] == Tick(1)
    assert out[:FORWARD_STREAK] == [forward(i) for i in range(FORWARD_STREAK)]
    assert out[FORWARD_STREAK + 1:] == [forward(i) for i in range(FORWARD_STREAK, FORWARD_STREAK + 10)]


def test_a_blocked_get_wakes_for_either_kind():
    inbox = Inbox()
    got = []
    reader = threading.Thread(target=lambda: got.extend([inbox.get(timeout=5), inbox.get(timeout=5)]))
    reader.start()
    inbox.put(Tick(1))
    inbox.put(forward(0))
    reader.join(10)
    assert sorted(map(repr, got)) == sorted(map(repr, [Tick(1), forward(0)]))
