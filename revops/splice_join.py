"""Splices made before upgrading (issue 15): their channel's history is joined from bookkeeper, best effort.

A database from before channel ids were recorded (schema < 6) keeps a channel that spliced before the upgrade
under its first short channel id, which no channel is listed under any more. At start-up, before the actors
load (so they start with the joined history), and only until one pass has been answered for every candidate:
bookkeeper's account events of the listed channels whose peer has such a short channel id are read, and
`identity.pre_upgrade_joins` joins an orphan only when its peer, block and output are those of one earlier
funding output of one channel and of no other orphan's. Anything else (bookkeeper missing or failing, two
candidates) leaves the history apart, as before, and the start-up goes on either way.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from revops import identity

if TYPE_CHECKING:
    from revops.runtime import Bootstrapped, Runtime

CHECKED_KEY = "pre_upgrade_splices_checked"     # meta: every candidate was checked once with bookkeeper answering


def ask_bookkeeper(rt: "Runtime", b: "Bootstrapped", resume: Callable[[], None]) -> bool:
    """True when bookkeeper is being asked: `resume` then runs on the loop thread once every call has
    answered (each call has the io pool's timeout and bounded retry), whatever the answers."""
    if rt.store.get_meta(CHECKED_KEY):
        return False
    orphans = rt.store.pre_upgrade_orphans({c.scid for c in b.channels if c.scid})
    peers = set(orphans.values())
    candidates = [c for c in b.channels if c.peer_id in peers and c.channel_id]
    if not candidates:     # nothing listed now can have spliced before the upgrade (later ones are recorded)
        rt.store.set_meta(CHECKED_KEY, "1")
        return False
    if not b.plugins.get("bookkeeper"):
        rt.log("unusual", f"{len(orphans)} short channel id(s) from before the upgrade are no channel's now; "
                          "without bookkeeper a splice among them cannot be told: their history stays apart "
                          "(checked again at the next start)")
        return False

    def then(answers: list[tuple[Any, dict | None]]) -> None:
        try:
            events = {c.channel_id: (result or {}).get("events", [])
                      for c, (result, error) in zip(candidates, answers) if error is None}
            joins = identity.pre_upgrade_joins(orphans, [(c.channel_id, c.peer_id, c.funding_txid)
                                                         for c in candidates], events)
            peer_of = {c.channel_id: c.peer_id for c in candidates}
            for cid, earlier in joins.items():
                rt.store.join_pre_upgrade(cid, peer_of[cid], earlier)
                rt.log("info", f"channel {cid}: the history under {', '.join(earlier)} (spliced before the upgrade, "
                               "its funding found in bookkeeper) is joined to it")
            if len(events) == len(candidates):
                rt.store.set_meta(CHECKED_KEY, "1")
        except Exception as e:  # noqa: BLE001 - best effort: the start-up must go on
            rt.log("unusual", f"joining splices made before the upgrade failed ({type(e).__name__}: {e}); "
                              "checked again at the next start")
        finally:
            resume()
    rt.run_io([("bkpr-listaccountevents", {"account": c.channel_id}) for c in candidates], then)
    return True
