"""The ClbossActor alone in a thespian ActorSystem, the test playing the runtime: answers that never come end in
the logged, visible "expired" path and a retry with backoff; late answers are ignored."""
from __future__ import annotations

import pytest
from thespian.actors import Actor, ActorExitRequest, ActorSystem

from actors.clboss import ClbossActor
from actors.messages import ClbossDesired, ClbossInit, ClbossOwned, ClbossReport, IoRequest, IoResult, LogLine, Tick
from revops import clboss_sync as cs
from revops import config as cfgmod

PEER = "02" + "aa" * 32
STATUS = {"unmanaged": {"comment": "Use 'clboss-unmanage' to disable management of some nodes.", PEER: "balance"}}


class Parent(Actor):
    """Creates the actor with the test's own address as its runtime, then forwards what the test sends."""

    def receiveMessage(self, msg, sender):
        if isinstance(msg, ClbossInit):
            self.child = self.createActor(ClbossActor)
            self.send(self.child, ClbossInit(msg.config, sender, msg.owned, msg.now))
        elif not isinstance(msg, ActorExitRequest):
            self.send(self.child, msg)


@pytest.fixture
def system():
    asys = ActorSystem("simpleSystemBase", logDefs=False, transientUnique=True)
    parent = asys.createActor(Parent)
    out: list = []

    def tell(msg):
        asys.tell(parent, msg)
        while (m := asys.listen(0)) is not None:
            out.append(m)
        return out

    yield asys, tell, out
    asys.shutdown()


def requests(out, method):
    return [m for m in out if isinstance(m, IoRequest) and m.method == method]


def test_an_unmanage_answer_that_never_comes_expires_is_logged_and_retried(system):
    asys, tell, out = system
    config = cfgmod.parse_options({})
    tell(ClbossInit(config, None, {}, 1000))
    tell(ClbossDesired(frozenset({PEER})))
    status, = requests(out, "clboss-status")
    asys.tell(status.reply_to, IoResult(status.req_id, status.tag, STATUS))
    tell(Tick(1001))
    unmanage, = requests(out, "clboss-unmanage")
    assert unmanage.params == {"nodeid": PEER, "tags": "balance,lnfee"}
    owned = [m for m in out if isinstance(m, ClbossOwned)]
    assert owned and PEER in owned[-1].owned, "ownership is persisted before the call that adds the tag"
    deadline = 1000 + max(60, 4 * config.rpc_timeout_seconds)
    tell(Tick(deadline))                                      # still waiting: not yet expired
    assert not any(isinstance(m, LogLine) and "expired" in m.text for m in out)
    tell(Tick(deadline + 1))
    assert any(isinstance(m, LogLine) and m.level == "unusual" and "expired" in m.text and PEER in m.text
               for m in out)
    report = [m.report for m in out if isinstance(m, ClbossReport)][-1]
    assert report["failures"] == 1 and "expired" in report["last_error"]
    assert report["next_sync_at"] == deadline + 1 + cs.retry_delay(1) and report["phase"] == "idle"
    asys.tell(unmanage.reply_to, IoResult(unmanage.req_id, unmanage.tag, {}))   # the late answer changes nothing
    tell(Tick(deadline + 2))
    assert [m.report for m in out if isinstance(m, ClbossReport)][-1]["failures"] == 1
    assert len(requests(out, "clboss-status")) == 1
    tell(Tick(deadline + 1 + cs.retry_delay(1)))             # the retry reads clboss again
    assert len(requests(out, "clboss-status")) == 2
