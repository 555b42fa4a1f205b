"""The stand-in's stream decoder (revops/sim/jsonrpc.py) against what lightningd would read: wherever the
reads cut a stream of messages — small or megabytes, separated by blank lines or by nothing, with brackets,
quotes, backslashes and non-ASCII characters (pyln escapes them as \\uXXXX) inside strings — each read
returns exactly the messages it completed, no sooner and no later."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.sim.jsonrpc import JsonParseError, JsonStreamDecoder

TEXT = st.text(alphabet=st.sampled_from('ab{}[]"\\:, \u00e9\U0001F600\n'), max_size=12)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
VALUE = st.recursive(SCALAR,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                     max_leaves=20)
MESSAGE = st.dictionaries(TEXT, VALUE, max_size=5) | st.lists(VALUE, max_size=5)


def stream(messages: list, seps: list[str]) -> tuple[bytes, list[int]]:
    """The bytes, and where each message's last byte ends."""
    data, ends = b"", []
    for m, sep in zip(messages, seps):
        data += json.dumps(m).encode()
        ends.append(len(data))
        data += sep.encode()
    return data, ends


def check(messages: list, data: bytes, ends: list[int], cuts: list[int]) -> None:
    decoder, got = JsonStreamDecoder(), []
    for a, b in zip([0] + cuts, cuts + [len(data)]):
        got += decoder.feed(data[a:b])
        assert len(got) == sum(1 for e in ends if e <= b), (a, b)
    assert got == messages


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGE, min_size=1, max_size=4), st.data())
def test_small_messages_cut_anywhere(messages, data):
    seps = data.draw(st.lists(st.sampled_from(["", "\n\n", " ", "\n"]), min_size=len(messages), max_size=len(messages)))
    raw, ends = stream(messages, seps)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=8))))
    check(messages, raw, ends, cuts)


@pytest.mark.parametrize("seed", range(6))
def test_megabyte_messages_in_reads_of_any_size(seed):
    """Large messages (past the size where every read is tried) cut into reads of 1 byte to 64 KiB."""
    rng = random.Random(seed)
    messages = [{"id": i, "result": {"channels": [{"alias": rng.choice(['{x}', '[', '"]', '\\', 'caf\u00e9 \U0001F600']),
                                                     "n": rng.random(), "v": [j, None, True]}
                                                    for j in range(rng.choice([1, 3000, 30000]))]}}
                for i in range(3)]
    raw, ends = stream(messages, [rng.choice(["", "\n\n"]) for _ in messages])
    cuts, at = [], 0
    while True:
        at += rng.choice([1, 7, 4096, 65536, rng.randrange(1, 65536)])
        if at >= len(raw):
            break
        cuts.append(at)
    check(messages, raw, ends, cuts)


def test_an_error_inside_a_large_value_is_found_by_the_time_it_closes():
    good = json.dumps({"a": ["x" * 100] * 500})
    decoder = JsonStreamDecoder()
    assert decoder.feed(good[:-1].encode()) == []
    with pytest.raises(JsonParseError):
        decoder.feed(b', nope]}')
