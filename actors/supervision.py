"""Crash containment shared by our actors.

thespian would retry a failing message and then bounce it as a PoisonMessage, leaving the actor with
whatever half-updated state the exception left behind. Instead, an actor here keeps a checkpoint of
the state it last persisted; an exception restores that checkpoint, counts a restart and tells the
runtime, which logs it. The plugin never stops because one actor failed.

An actor that fails on its first message (`init_message`: nothing to restore to) becomes degraded: it
answers every query with its error (`answer_degraded`) instead of dropping messages, so no caller waits.
"""
from __future__ import annotations

import traceback
from typing import Any

from thespian.actors import Actor, ActorExitRequest

from actors.messages import ActorRestarted, LogLine


class SupervisedActor(Actor):
    name = "actor"
    init_message: type | None = None     # the message that starts the actor

    def __init__(self) -> None:
        super().__init__()
        self.runtime: Any = None
        self.restarts = 0
        self.messages_handled = 0
        self.degraded: str | None = None  # why the actor could not start

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ActorExitRequest):
            return
        try:
            self.messages_handled += 1
            if self.degraded is not None:
                self.answer_degraded(msg, sender)
            else:
                self.handle(msg, sender)
        except Exception as e:  # noqa: BLE001 - containment is the point
            detail = f"{type(msg).__name__}: " + "".join(traceback.format_exception_only(type(e), e)).strip()
            if self.init_message is not None and isinstance(msg, self.init_message):
                self.degraded = f"{self.name} could not start: {detail}"
                if self.runtime is not None:
                    self.send(self.runtime, LogLine("broken", f"{self.degraded}; it answers every query with "
                                                              "this error"))
                return
            self.restarts += 1
            self.restore_checkpoint()
            if self.runtime is not None:
                self.send(self.runtime, ActorRestarted(self.name, detail, self.restarts))

    def answer_degraded(self, msg: Any, sender: Any) -> None:
        """Answer a query with `self.degraded`; others are dropped (an actor that never started does nothing)."""

    def handle(self, msg: Any, sender: Any) -> None:
        raise NotImplementedError

    def restore_checkpoint(self) -> None:
        raise NotImplementedError
