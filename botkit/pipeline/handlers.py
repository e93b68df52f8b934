"""Handlers: a cheap ``check`` and an async ``handle``, run in ordered groups."""

from __future__ import annotations

from abc import ABC, abstractmethod

from botkit.pipeline.context import Context

__all__ = ["Handler", "StopPropagation"]


class StopPropagation(Exception):
    """Raise from ``Handler.handle`` to stop the pipeline after this handler.

    No later group and not the generation fallback runs; the reply set so far (if any)
    is delivered.
    """


class Handler(ABC):
    """A step that may answer a message.

    Within one group the first handler whose ``check`` is true handles the message and
    the others in that group are skipped; then the next group runs (groups ascending),
    unless the handler set a reply: the first group that answers is the answer, and
    later groups do not run (as after ``StopPropagation``). When no handler set a reply
    and nothing stopped propagation, the generation fallback answers.
    """

    @property
    def name(self) -> str:
        return type(self).__name__

    def check(self, ctx: Context) -> bool:
        """Whether this handler wants the message. Must be cheap and side-effect free."""
        return True

    @abstractmethod
    async def handle(self, ctx: Context) -> None:
        """Act on the message: usually ``ctx.set_reply(...)``; may raise StopPropagation."""
