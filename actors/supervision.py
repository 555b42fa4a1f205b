"""Crash containment shared by our actors.

thespian would retry a failing message and then bounce it as a PoisonMessage, leaving the actor with
whatever half-updated state the exception left behind. Instead, an actor here keeps a checkpoint of
the state it last persisted; an exception restores that checkpoint, counts a restart and tells the
runtime, which logs it. The plugin never stops because one actor failed.
"""
from __future__ import annotations

import traceback
from typing import Any

from thespian.actors import Actor, ActorExitRequest

from actors.messages import ActorRestarted


class SupervisedActor(Actor):
    name = "actor"

    def __init__(self) -> None:
        super().__init__()
        self.runtime: Any = None
        self.restarts = 0
        self.messages_handled = 0

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ActorExitRequest):
            return
        try:
            self.messages_handled += 1
            self.handle(msg, sender)
        except Exception as e:  # noqa: BLE001 - containment is the point
            self.restarts += 1
            self.restore_checkpoint()
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            if self.runtime is not None:
                self.send(self.runtime, ActorRestarted(self.name, f"{type(msg).__name__}: {detail}", self.restarts))

    def handle(self, msg: Any, sender: Any) -> None:
        raise NotImplementedError

    def restore_checkpoint(self) -> None:
        raise NotImplementedError
