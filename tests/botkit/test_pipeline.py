"""Pipeline order and propagation: middleware around handlers, groups, stop, fallback,
and containment of errors by owner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from core_helpers import message, recorder

from botkit.backends.echo import EchoBackend
from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import BackendBusyError, MessageRejectedError
from botkit.events import Contact, Direction, InboundMessage, utcnow
from botkit.pipeline import Context, Handler, Next, Pipeline, StopPropagation
from botkit.pipeline.generation import GenerationHandler
from botkit.pipeline.middleware import RateLimitMiddleware, SanitizeMiddleware
from botkit.store import ConversationStore
from botkit.store.records import (
    ConversationRecord,
    ConversationStatus,
    MessageStatus,
    StoredMessage,
)

SETTINGS: Settings = settings_from_mapping({"bot": {"max_message_chars": 10}}, environ={})


def make_ctx(text: str = "hello", settings: Settings = SETTINGS) -> Context:
    now = utcnow()
    msg = InboundMessage("test", "c1", Contact("test", "u1"), text, "k1")
    conv = ConversationRecord(1, "test", "c1", 1, ConversationStatus.BOT, None, now, now, 1)
    stored = StoredMessage(
        1, 1, 1, Direction.INBOUND, text, None, None, MessageStatus.RECEIVED, now, "k1", None
    )
    return Context(
        message=msg,
        text=text,
        conversation=conv,
        inbound=stored,
        settings=settings,
        store=ConversationStore(settings.store),  # never opened: these steps don't use it
        backend=EchoBackend(),
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def middleware(self, name: str, *, call_next: bool = True):  # type: ignore[no-untyped-def]
        async def mw(ctx: Context, next: Next) -> None:
            self.events.append(f"{name}:in")
            if call_next:
                await next()
            self.events.append(f"{name}:out")

        return mw

    def handler(
        self, name: str, *, match: bool = True, reply: str | None = None, stop: bool = False
    ) -> Handler:
        events = self.events

        class H(Handler):
            def check(self, ctx: Context) -> bool:
                events.append(f"{name}:check")
                return match

            async def handle(self, ctx: Context) -> None:
                events.append(f"{name}:handle")
                if reply is not None:
                    ctx.set_reply(reply)
                if stop:
                    raise StopPropagation

        return H()


async def reply_text(ctx: Context) -> str | None:
    if ctx.reply is None:
        return None
    return "".join([d async for d in ctx.reply.deltas()])


async def test_middleware_wraps_handlers_in_order() -> None:
    rec = Recorder()
    pipeline = Pipeline()
    pipeline.add_middleware(rec.middleware("a"))
    pipeline.add_middleware(rec.middleware("b"))
    pipeline.add_handler(rec.handler("h"))
    await pipeline.run(make_ctx())
    assert rec.events == ["a:in", "b:in", "h:check", "h:handle", "b:out", "a:out"]


async def test_middleware_that_skips_next_stops_the_chain() -> None:
    rec = Recorder()
    pipeline = Pipeline(fallback=rec.handler("fallback"))
    pipeline.add_middleware(rec.middleware("a"))
    pipeline.add_middleware(rec.middleware("gate", call_next=False))
    pipeline.add_middleware(rec.middleware("never"))
    await pipeline.run(make_ctx())
    assert rec.events == ["a:in", "gate:in", "gate:out", "a:out"]


async def test_groups_run_ascending_first_match_per_group() -> None:
    rec = Recorder()
    pipeline = Pipeline()
    pipeline.add_handler(rec.handler("g1-no", match=False), group=1)
    pipeline.add_handler(rec.handler("g1-yes"), group=1)
    pipeline.add_handler(rec.handler("g1-skipped"), group=1)
    pipeline.add_handler(rec.handler("g-1"), group=-1)
    pipeline.add_handler(rec.handler("g0"), group=0)
    await pipeline.run(make_ctx())
    assert rec.events == [
        "g-1:check", "g-1:handle",
        "g0:check", "g0:handle",
        "g1-no:check", "g1-yes:check", "g1-yes:handle",
    ]  # fmt: skip


async def test_stop_propagation_skips_later_groups_and_fallback() -> None:
    rec = Recorder()
    pipeline = Pipeline(fallback=rec.handler("fallback", reply="generated"))
    pipeline.add_handler(rec.handler("faq", reply="faq answer", stop=True), group=0)
    pipeline.add_handler(rec.handler("later"), group=1)
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert rec.events == ["faq:check", "faq:handle"]
    assert await reply_text(ctx) == "faq answer"


async def test_the_first_group_that_replies_answers_and_later_groups_do_not_run() -> None:
    # A plugin's handler at -300 answered; the hand-off's at -200 ran after it all the
    # same, took the conversation and replaced the answer.
    rec = Recorder()
    pipeline = Pipeline(fallback=rec.handler("fallback", reply="generated"))
    pipeline.add_handler(rec.handler("observer"), group=-400)  # acts, sets no reply
    pipeline.add_handler(rec.handler("plugin", reply="plugin answer"), group=-300)
    pipeline.add_handler(rec.handler("handoff", reply="a colleague will take over"), group=-200)
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert rec.events == ["observer:check", "observer:handle", "plugin:check", "plugin:handle"]
    assert await reply_text(ctx) == "plugin answer"


async def test_a_reply_set_by_middleware_does_not_stop_the_handlers() -> None:
    async def notice(ctx: Context, next: Next) -> None:
        ctx.set_reply("a notice")  # e.g. what a middleware says, then goes on
        await next()

    rec = Recorder()
    pipeline = Pipeline()
    pipeline.add_middleware(notice)
    pipeline.add_handler(rec.handler("first"), group=0)
    pipeline.add_handler(rec.handler("second", reply="the answer"), group=1)
    pipeline.add_handler(rec.handler("third"), group=2)
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert rec.events == ["first:check", "first:handle", "second:check", "second:handle"]
    assert await reply_text(ctx) == "the answer"


@pytest.mark.parametrize("raised", [SystemExit(3), asyncio.CancelledError()])
async def test_a_plugin_raising_an_exit_or_a_stray_cancellation_is_contained(
    raised: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    # sys.exit() in a plugin ended the whole bot, with no log line; a CancelledError of
    # its own (a future it awaited was cancelled) left the message without any reply.
    class Exits(Handler):
        async def handle(self, ctx: Context) -> None:
            raise raised

    pipeline = Pipeline(fallback=Recorder().handler("fallback", reply="generated"))
    pipeline.add_handler(Exits(), owner="exits")
    ctx = make_ctx()
    with caplog.at_level(logging.ERROR, logger="botkit.pipeline"):
        await pipeline.run(ctx)
    assert await reply_text(ctx) == SETTINGS.bot.fallback_reply
    assert f"plugin 'exits' failed in Exits: RuntimeError: {type(raised).__name__}" in caplog.text


async def test_a_cancelled_reply_still_stops_inside_a_plugin() -> None:
    entered = asyncio.Event()

    class Waits(Handler):
        async def handle(self, ctx: Context) -> None:
            entered.set()
            await asyncio.sleep(60)

    pipeline = Pipeline()
    pipeline.add_handler(Waits(), owner="waits")
    running = asyncio.create_task(pipeline.run(make_ctx()))
    await entered.wait()
    running.cancel()  # shutdown, or an agent's takeover
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_fallback_runs_only_without_a_reply() -> None:
    rec = Recorder()
    pipeline = Pipeline(fallback=GenerationHandler(SETTINGS.bot))
    pipeline.add_handler(rec.handler("observer"), group=0)  # handles but does not reply
    ctx = make_ctx("hi there")
    await pipeline.run(ctx)
    assert ctx.reply is not None and ctx.reply.source == "backend"
    assert await reply_text(ctx) == "echo: hi there"

    pipeline.add_handler(rec.handler("answer", reply="known answer"), group=5)
    ctx = make_ctx("hi there")
    await pipeline.run(ctx)
    assert await reply_text(ctx) == "known answer"


async def test_middleware_sees_reply_on_the_way_out() -> None:
    seen: list[str | None] = []

    async def outer(ctx: Context, next: Next) -> None:
        await next()
        seen.append(ctx.reply.text if ctx.reply else None)
        if ctx.reply is not None and ctx.reply.text is not None:
            ctx.set_reply(ctx.reply.text.upper())

    pipeline = Pipeline()
    pipeline.add_middleware(outer)
    pipeline.add_handler(Recorder().handler("h", reply="hello"))
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert seen == ["hello"]
    assert await reply_text(ctx) == "HELLO"


async def test_failing_plugin_handler_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Handler):
        async def handle(self, ctx: Context) -> None:
            raise ValueError("kaboom")

    rec = Recorder()
    pipeline = Pipeline(fallback=rec.handler("fallback"))
    pipeline.add_middleware(rec.middleware("core-mw"))
    pipeline.add_handler(Broken(), owner="shaky")
    pipeline.add_handler(rec.handler("later"), group=1)
    ctx = make_ctx()
    with caplog.at_level(logging.ERROR, logger="botkit.pipeline"):
        await pipeline.run(ctx)
    assert await reply_text(ctx) == SETTINGS.bot.fallback_reply
    assert rec.events == ["core-mw:in", "core-mw:out"]  # outer middleware completes
    assert ctx.state["failed_owner"] == "shaky"
    assert "plugin 'shaky' failed in Broken: ValueError: kaboom" in caplog.text


async def test_failing_plugin_middleware_and_check_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def bad_mw(ctx: Context, next: Next) -> None:
        raise RuntimeError("mw broke")

    class BadCheck(Handler):
        def check(self, ctx: Context) -> bool:
            raise KeyError("check broke")

        async def handle(self, ctx: Context) -> None:
            raise AssertionError("not reached")

    rec = Recorder()
    pipeline = Pipeline()
    pipeline.add_middleware(rec.middleware("outer"))
    pipeline.add_middleware(bad_mw, owner="mw-plugin")
    ctx = make_ctx()
    with caplog.at_level(logging.ERROR):
        await pipeline.run(ctx)
    assert await reply_text(ctx) == SETTINGS.bot.fallback_reply
    assert rec.events == ["outer:in", "outer:out"]
    assert "plugin 'mw-plugin' failed" in caplog.text

    pipeline = Pipeline()
    pipeline.add_handler(BadCheck(), owner="check-plugin")
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert await reply_text(ctx) == SETTINGS.bot.fallback_reply
    assert "plugin 'check-plugin' failed in BadCheck" in caplog.text


async def test_expected_refusals_get_their_own_replies() -> None:
    class Refuse(Handler):
        async def handle(self, ctx: Context) -> None:
            raise MessageRejectedError("spam", "Please don't send links.")

    class Busy(Handler):
        async def handle(self, ctx: Context) -> None:
            raise BackendBusyError("queue full")

    for handler, expected in ((Refuse(), "Please don't send links."),
                              (Busy(), SETTINGS.bot.busy_reply)):  # fmt: skip
        pipeline = Pipeline()
        pipeline.add_handler(handler, owner="p")
        ctx = make_ctx()
        await pipeline.run(ctx)
        assert await reply_text(ctx) == expected
        assert "failed_owner" not in ctx.state


async def test_next_twice_is_an_error_of_that_middleware() -> None:
    async def twice(ctx: Context, next: Next) -> None:
        await next()
        await next()

    rec = Recorder()
    pipeline = Pipeline()
    pipeline.add_middleware(twice, owner="twice")
    pipeline.add_handler(rec.handler("h"))
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert rec.events == ["h:check", "h:handle"]  # the handler ran once
    assert ctx.state["failed_owner"] == "twice"


@pytest.mark.parametrize(
    ("text", "too_long", "expected"),
    [
        ("a" * 11, False, "too long (11 characters, the limit is 10)"),
        ("short", True, "too long (5 characters"),  # flagged at intake
        (" \n\t ", False, SETTINGS.bot.empty_reply),
    ],
)
async def test_sanitize_middleware_answers_instead_of_passing_on(
    text: str, too_long: bool, expected: str
) -> None:
    rec = Recorder()
    pipeline = Pipeline(fallback=rec.handler("fallback"))
    pipeline.add_middleware(SanitizeMiddleware(SETTINGS.bot))
    ctx = make_ctx(text)
    ctx.too_long = too_long
    await pipeline.run(ctx)
    assert expected in (await reply_text(ctx) or "")
    assert rec.events == []


async def test_sanitize_middleware_cleans_text() -> None:
    pipeline = Pipeline(fallback=GenerationHandler(SETTINGS.bot))
    pipeline.add_middleware(SanitizeMiddleware(SETTINGS.bot))
    ctx = make_ctx("a\x00b\ud800c")
    await pipeline.run(ctx)
    assert ctx.text == "abc"
    assert await reply_text(ctx) == "echo: abc"


async def test_rate_limit_per_contact_tells_once() -> None:
    now = [0.0]
    settings = settings_from_mapping(
        {"bot": {"rate_limit": {"messages": 2, "window_seconds": 10}}}, environ={}
    )
    limiter = RateLimitMiddleware(settings.bot.rate_limit, clock=lambda: now[0])
    results = [limiter.allow("test", "u1") for _ in range(4)]
    assert results == [(True, False), (True, False), (False, True), (False, False)]
    assert limiter.allow("test", "u2") == (True, False)  # other contacts unaffected
    now[0] = 5.0  # one token refilled (2 per 10 s)
    assert limiter.allow("test", "u1") == (True, False)
    assert limiter.allow("test", "u1") == (False, True)

    pipeline = Pipeline()
    pipeline.add_middleware(limiter)
    ctx = make_ctx()
    await pipeline.run(ctx)
    assert ctx.state.get("rate_limited") and ctx.reply is None  # already told


async def test_rate_limit_table_is_bounded() -> None:
    settings = settings_from_mapping(
        {"bot": {"rate_limit": {"max_tracked_contacts": 3}}}, environ={}
    )
    limiter = RateLimitMiddleware(settings.bot.rate_limit)
    for i in range(100):
        limiter.allow("test", f"user-{i}")
    assert limiter.tracked == 3


async def _stream() -> AsyncIterator[str]:
    yield "x"


async def test_reply_deltas_for_text_and_stream() -> None:
    ctx = make_ctx()
    assert [d async for d in ctx.set_reply("whole").deltas()] == ["whole"]
    assert [d async for d in ctx.set_stream(_stream()).deltas()] == ["x"]


async def test_a_failing_stream_wrapper_is_named_beside_the_source(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    # A plugin's middleware may wrap the model's stream after next() (Reply allows it);
    # when its wrapper raised, the log blamed the backend alone.
    async def shouting(ctx: Context, next: Next) -> None:
        await next()
        if ctx.reply is not None and ctx.reply.stream is not None:
            inner = ctx.reply.stream

            async def wrapped() -> AsyncIterator[str]:
                async for delta in inner:
                    yield delta.upper()
                raise RuntimeError("boom in the wrapper")

            ctx.reply.stream = wrapped()

    bot.pipeline.add_middleware(shouting, owner="shouter")
    with caplog.at_level(logging.ERROR):
        await bot.submit(message("hello there", "k1"))
        (reply,) = await recorder(bot).wait_for(1)
    assert reply.text.startswith("ECHO: HELLO THERE")
    assert (
        "reply source 'backend' (its stream wrapped by plugin 'shouter') failed: "
        "RuntimeError: boom in the wrapper"
    ) in caplog.text
