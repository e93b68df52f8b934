"""The pipeline: a middleware chain with an explicit ``next``, then handler groups, then
the generation fallback.

Every middleware and handler is registered with an owner ("core" or a plugin's name).
Whatever one of them raises is contained where it happens: the error is logged with the
owner's name and the conversation gets the configured fallback reply, while middleware
further out still completes normally. That includes ``SystemExit`` (a ``sys.exit`` in a
plugin must not end the bot) and a ``CancelledError`` while nothing cancels the reply (a
plugin's own cancelled future). ``MessageRejectedError`` and ``BackendBusyError`` are
expected outcomes, answered with their own replies.

The first handler group whose handler sets a reply answers the message: later groups
do not run, as if it had raised ``StopPropagation``. A reply is one answer, and two
handlers acting on one message (a plugin's answer, then the hand-off taking the
conversation) would do what neither meant.

``DatabaseUnavailableError`` is not contained: a database outage is no step's failure,
and the same message gets its real answer once the database is back (the reply task
waits for it and runs the pipeline again, see ``botkit._replies``), where the fallback
reply would answer it for good with an apology.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import insort
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from botkit.errors import BackendBusyError, DatabaseUnavailableError, MessageRejectedError
from botkit.language.default_texts import BUSY_REPLIES, FALLBACK_REPLIES, set_default_reply
from botkit.pipeline.context import Context
from botkit.pipeline.handlers import Handler, StopPropagation

__all__ = ["CORE", "SOURCE_ERROR", "STREAM_WRAPPERS", "Middleware", "Next", "Pipeline"]

CORE = "core"
# ``Reply.metadata`` key: who wrapped the reply's stream, innermost first.
STREAM_WRAPPERS = "stream_wrapped_by"
# ``Reply.metadata`` key of a busy or fallback reply the pipeline gave: the failure it
# stands for (``Type: message``), stored with the reply.
SOURCE_ERROR = "source_error"

Next = Callable[[], Awaitable[None]]

_log = logging.getLogger("botkit.pipeline")


class Middleware(Protocol):
    """A cross-cutting step. Call ``await next()`` to continue; skip it to stop.

    Code before ``next()`` sees the message on its way in, code after it sees
    ``ctx.reply`` on its way out.
    """

    async def __call__(self, ctx: Context, next: Next) -> None: ...


@dataclass(frozen=True, slots=True)
class _MiddlewareEntry:
    middleware: Middleware
    owner: str


@dataclass(order=True, slots=True)
class _HandlerEntry:
    group: int
    order: int
    handler: Handler = field(compare=False)
    owner: str = field(compare=False)


class Pipeline:
    """Runs one ``Context`` through middleware, handler groups and the fallback."""

    def __init__(self, *, fallback: Handler | None = None) -> None:
        self._middleware: list[_MiddlewareEntry] = []
        self._handlers: list[_HandlerEntry] = []
        self._counter = 0
        self.fallback = fallback

    def add_middleware(
        self, middleware: Middleware, *, owner: str = CORE, before: type | None = None
    ) -> None:
        """Append ``middleware`` to the chain (runs after those added before it).

        With ``before``, insert it right ahead of the first middleware that is an
        instance of that class instead (appended when there is none).
        """
        entry = _MiddlewareEntry(middleware, owner)
        if before is not None:
            for index, existing in enumerate(self._middleware):
                if isinstance(existing.middleware, before):
                    self._middleware.insert(index, entry)
                    return
        self._middleware.append(entry)

    def add_handler(self, handler: Handler, *, group: int = 0, owner: str = CORE) -> None:
        """Add ``handler`` to ``group``; groups run in ascending order, handlers within a
        group in the order they were added."""
        self._counter += 1
        insort(self._handlers, _HandlerEntry(group, self._counter, handler, owner))

    @property
    def owners(self) -> list[str]:
        """Owners in registration order, without repeats."""
        seen = [m.owner for m in self._middleware] + [h.owner for h in self._handlers]
        return list(dict.fromkeys(seen))

    async def run(self, ctx: Context) -> None:
        """Run the whole pipeline for ``ctx``; afterwards ``ctx.reply`` holds the answer.

        Never raises for errors of middleware or handlers (they are contained as
        described in the module docstring); ``asyncio.CancelledError`` and
        ``DatabaseUnavailableError`` propagate.

        Raises:
            DatabaseUnavailableError: a step met a database outage (through every
                middleware further out, which does not contain it either).
        """
        chain = tuple(self._middleware)

        async def call(index: int) -> None:
            if index == len(chain):
                await self._dispatch(ctx)
                return
            entry = chain[index]
            called = False
            inner: object = None  # the reply's stream as the steps inside left it

            async def next_() -> None:
                nonlocal called, inner
                if called:
                    raise RuntimeError("next() called twice by one middleware")
                called = True
                await call(index + 1)
                inner = None if ctx.reply is None else ctx.reply.stream

            label = _label(entry.middleware)
            await self._step(ctx, entry.owner, label, lambda: entry.middleware(ctx, next_))
            reply = ctx.reply
            stream = None if reply is None else reply.stream
            if called and reply is not None and stream is not None and stream is not inner:
                # It wrapped the stream (translating it, say): a failure of the stream
                # may be its own, so the delivery's log names it beside the source.
                who = label if entry.owner == CORE else f"plugin {entry.owner!r}"
                reply.metadata.setdefault(STREAM_WRAPPERS, []).append(who)

        await call(0)

    async def _dispatch(self, ctx: Context) -> None:
        # A reply set before the handlers (by a middleware that went on) does not stop
        # them; one set by a handler does (see the module docstring).
        before = ctx.reply
        done_group: int | None = None
        for entry in tuple(self._handlers):
            if ctx.reply is not before:
                return  # an earlier group answered
            if entry.group == done_group:
                continue  # one handler per group

            async def handle_if_wanted(entry: _HandlerEntry = entry) -> None:
                nonlocal done_group
                if entry.handler.check(ctx):
                    done_group = entry.group
                    await entry.handler.handle(ctx)

            if await self._step(ctx, entry.owner, entry.handler.name, handle_if_wanted):
                return
        fallback = self.fallback
        if fallback is None or ctx.reply is not None:
            return

        async def fall_back(fallback: Handler = fallback) -> None:
            if fallback.check(ctx):
                await fallback.handle(ctx)

        await self._step(ctx, CORE, fallback.name, fall_back)

    async def _step(
        self, ctx: Context, owner: str, step: str, run: Callable[[], Awaitable[None]]
    ) -> bool:
        """Run one middleware or handler, containing what it raises (see the module
        docstring); True when the pipeline stops there (``StopPropagation``, or a
        failure answered with its reply)."""
        try:
            await run()
        except StopPropagation:
            return True
        except DatabaseUnavailableError:
            raise  # not contained (see the module docstring)
        except Exception as exc:
            self._contain(ctx, exc, owner, step)
            return True
        except (SystemExit, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                raise  # the reply is cancelled (shutdown, a takeover): not the step's
            failure = RuntimeError(f"{type(exc).__name__} raised")
            failure.__cause__ = exc
            self._contain(ctx, failure, owner, step)
            return True
        return False

    @staticmethod
    def _contain(ctx: Context, exc: Exception, owner: str, step: str) -> None:
        bot = ctx.settings.bot
        if isinstance(exc, MessageRejectedError):
            ctx.logger.info("%s: message rejected by %s: %s", ctx.describe(), step, exc.reason)
            ctx.set_reply(exc.user_reply, source="rejected")
            return
        if isinstance(exc, BackendBusyError):
            ctx.logger.warning("%s: backend busy (%s)", ctx.describe(), step)
            busy = set_default_reply(ctx, bot.busy_reply, BUSY_REPLIES, source="busy")
            busy.metadata[SOURCE_ERROR] = f"{step}: {type(exc).__name__}: {exc}"
            return
        who = "core" if owner == CORE else f"plugin {owner!r}"
        ctx.logger.error(
            "%s: %s failed in %s: %s: %s",
            ctx.describe(),
            who,
            step,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        ctx.state["failed_owner"] = owner
        fallback = set_default_reply(ctx, bot.fallback_reply, FALLBACK_REPLIES, source="fallback")
        fallback.metadata[SOURCE_ERROR] = f"{who} failed in {step}: {type(exc).__name__}: {exc}"


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _label(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__
