"""The clboss hand-off as a reconciliation: what clboss should hold for each peer against what it reports.

For every peer whose fees we set, clboss must carry the unmanagement tag `lnfee` (it then leaves that peer's
channel fees alone); for every peer we took and no longer price it must not. `clboss-unmanage nodeid tags`
replaces the peer's whole tag set, so each change is computed from the tags `clboss-status` reports now: only
`lnfee` is added or removed, the operator's `open`, `close` and `balance` are sent back unchanged.

We own a peer's `lnfee` only if we added it. Ownership is recorded before the call that adds it (a crash
between the two then ends in a harmless "forget" or a repeat, never in an `lnfee` nobody hands back), and an
`lnfee` the operator set is never claimed, so it is never removed either.

Pure functions: the actor in actors/clboss.py and the runtime's shutdown hand-back only apply the actions.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

LNFEE = "lnfee"
# the periodic pass: clboss may have restarted, or someone changed tags behind our back
RESYNC_SECONDS = 600
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
TAKE, HAND_BACK, FORGET = "take", "hand_back", "forget"


@attrs.frozen
class Action:
    """One step toward the desired state; `tags` is the whole set `clboss-unmanage` gets (None: no call)."""

    peer_id: str
    kind: str
    tags: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "action": self.kind, "tags": self.tags, "reason": self.reason}


def parse_unmanaged(status: Any) -> dict[str, frozenset[str]]:
    """`clboss-status` → {node id: its unmanagement tags}.

    clboss prints `"unmanaged": {"comment": "...", "<node id>": "balance, lnfee"}` (its tags joined by ", ",
    fully managed nodes left out). Raises ValueError when the answer has no such object.
    """
    section = status.get("unmanaged") if isinstance(status, dict) else None
    if not isinstance(section, dict):
        raise ValueError("clboss-status answered without an 'unmanaged' object")
    out: dict[str, frozenset[str]] = {}
    for node_id, text in section.items():
        if node_id == "comment" or not isinstance(text, str):
            continue
        tags = frozenset(t.strip() for t in text.split(",") if t.strip())
        if tags:
            out[node_id] = tags
    return out


def tag_text(tags: Iterable[str]) -> str:
    """The `tags` parameter of clboss-unmanage: comma-separated, "" = fully managed again."""
    return ",".join(sorted(tags))


def plan(priced: Iterable[str], observed: Mapping[str, frozenset[str]], owned: Iterable[str],
         release_reason: str = "we no longer set its fees") -> list[Action]:
    """What to send so that clboss holds `lnfee` exactly for the peers we price (and took).

    priced: peers whose fees we set now (empty while clboss_enabled is off or when handing everything back);
    observed: clboss's tags per peer; owned: peers whose `lnfee` we added; release_reason: why a peer we own
    is no longer priced, for the log and the status.
    """
    priced, owned = frozenset(priced), frozenset(owned)
    actions: list[Action] = []
    for peer in sorted(priced | owned):
        tags = observed.get(peer, frozenset())
        kept = f"; its other clboss tags ({tag_text(tags - {LNFEE})}) are kept" if tags - {LNFEE} else ""
        if peer in priced:
            if LNFEE not in tags:
                actions.append(Action(peer, TAKE, tag_text(tags | {LNFEE}),
                                      f"we set this peer's fees and clboss still manages them{kept}"))
        elif LNFEE in tags:
            actions.append(Action(peer, HAND_BACK, tag_text(tags - {LNFEE}),
                                  f"{release_reason}: clboss manages its fees again{kept}"))
        else:
            actions.append(Action(peer, FORGET, None,
                                  f"{release_reason}, and clboss already manages its fees (lnfee was removed "
                                  f"by someone else): nothing to send"))
    return actions


def operator_lnfee(priced: Iterable[str], observed: Mapping[str, frozenset[str]], owned: Iterable[str]) -> list[str]:
    """Priced peers whose `lnfee` the operator set: left alone, and never handed back by us."""
    owned = frozenset(owned)
    return sorted(p for p in priced if p not in owned and LNFEE in observed.get(p, frozenset()))


def retry_delay(failures: int) -> int:
    """Seconds before the next attempt after `failures` failed passes in a row (exponential, capped)."""
    if failures <= 0:
        return RESYNC_SECONDS
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(failures - 1, 16))
