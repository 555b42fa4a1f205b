"""The fast unstructure hooks (revops/model.py FeeDecision.inputs, actors/channel.py ChannelState.last_decision)
give exactly what cattrs' own walk gives: same values, same types, for every kind of input value."""
from __future__ import annotations

import enum

import cattrs

from actors.channel import ChannelState
from revops import fees
from revops.model import FeeDecision, Strategy, converter, to_dict


def plain_converter() -> cattrs.Converter:
    c = cattrs.Converter()
    c.register_unstructure_hook(enum.Enum, lambda e: e.value)
    return c


def decision() -> FeeDecision:
    return FeeDecision(scid="100x1x0", at=1_750_000_000, old_fee_ppm=100, new_fee_ppm=120, branch="search",
                       reason="search: up", broadcast=True,
                       inputs={"rate_msat_h": 12.5, "forwards_out": 3, "shadow_ppm": 0, "flag": True, "none": None,
                               "estimates_msat_h": {100: 1.5, 200: 2}, "strategy": Strategy.HIVE, "pair": (1, 2),
                               "hill": fees.HillClimbState(climb_fee_ppm=1, last_broadcast_fee_ppm=1, window_start=0)})


def same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_a_decision_unstructures_as_cattrs_walks_it() -> None:
    assert same(to_dict(decision()), plain_converter().unstructure(decision()))


def test_a_channel_checkpoint_unstructures_as_cattrs_walks_it() -> None:
    state = ChannelState(hill=fees.HillClimbState(climb_fee_ppm=100, last_broadcast_fee_ppm=100, window_start=5),
                         buckets={19_000: [1, 2, 3, 4]}, last_decision=to_dict(decision()),
                         last_hive_message={"type": "HivePush", "amount_sat": 5})
    assert same(converter.unstructure(state), plain_converter().unstructure(state))
