"""A bot's reply is stored with what produced it (``source``) and, for a busy or
fallback reply, the failure it stands for (``source_error``), so "the model failed"
reads apart from "answered" in the database and (``source`` only) in ``botkit data
export``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from core_helpers import RecordingConnector, message, recorder

from botkit._data_cli import export_contact
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import BackendBusyError, BackendError
from botkit.events import Direction
from botkit.pipeline import Context, Handler
from botkit.pipeline.chain import SOURCE_ERROR
from botkit.store.records import MessageStatus, StoredMessage
from botkit.testing.backends import ScriptBackend


class _Failing(ScriptBackend):
    """Raises ``error`` at the reply's first delta (after ``words``, if any)."""

    name = "failing"

    def __init__(self, error: Exception | None, words: tuple[str, ...] = ()) -> None:
        self.error = error
        self.words = words

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        for word in self.words:
            yield word
        if self.error is not None:
            raise self.error


class _Broken(Handler):
    def check(self, ctx: Context) -> bool:
        return True

    async def handle(self, ctx: Context) -> None:
        raise RuntimeError("a plugin's bug")


async def _reply(bot: Bot, conversation: str = "c1") -> StoredMessage:
    (reply,) = [
        m
        for m in await bot.store.messages_after("test", conversation, 0, 10)
        if m.direction is Direction.OUTBOUND
    ]
    return reply


async def test_a_fallback_reply_keeps_the_backends_error_and_the_export_only_its_source(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    backend = _Failing(BackendError("the server answered HTTP 500: upstream down"))
    async with Bot(settings, backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello there", "k1"))
        (sent,) = await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot)
    # Answered, and said so, but not by the model: the database tells them apart.
    assert stored.status is MessageStatus.SENT and stored.error is None
    assert stored.source == "fallback"
    assert stored.source_error == "BackendError: the server answered HTTP 500: upstream down"
    assert SOURCE_ERROR not in sent.metadata  # diagnostics stay out of the channel's view

    exported = json.loads(await export_contact(settings.store, "test", "u1"))
    (conversation,) = exported["conversations"]
    (reply,) = [m for m in conversation["messages"] if m["direction"] == "out"]
    assert reply["source"] == "fallback"
    assert "source_error" not in reply  # operator data: `botkit conversations show` has it
    (asked,) = [m for m in conversation["messages"] if m["direction"] == "in"]
    assert "source" not in asked


async def test_a_model_reply_is_stored_as_the_backends_with_no_error(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello there", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot)
    assert (stored.source, stored.source_error) == ("backend", None)


async def test_a_busy_reply_keeps_the_reason_bounded_to_500_characters(
    make_settings: Callable[..., Settings],
) -> None:
    reason = "32 replies from http://llm:8000 are in progress and none finished " + "x" * 900
    async with Bot(make_settings(), backend=_Failing(BackendBusyError(reason))) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello there", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot)
    assert stored.source == "busy"
    assert stored.source_error is not None and len(stored.source_error) == 500
    assert stored.source_error.startswith("BackendBusyError: 32 replies from http://llm:8000")


async def test_a_fallback_after_part_of_the_reply_and_an_empty_reply_say_so(
    make_settings: Callable[..., Settings],
) -> None:
    backend = _Failing(BackendError("connection reset"), words=("Your order ",))
    async with Bot(make_settings(), backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello there", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot)
    assert stored.text.startswith("Your order ")
    assert (stored.source, stored.source_error) == ("fallback", "BackendError: connection reset")
    async with Bot(make_settings(), backend=_Failing(None)) as bot:  # no text at all
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hello there", "k2", conversation="c2"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot, "c2")
    assert stored.source == "fallback"
    assert stored.source_error == "reply source 'backend' gave no text"


async def test_a_fallback_the_pipeline_gave_keeps_the_plugins_error(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.pipeline.add_handler(_Broken())
        await bot.submit(message("hello there", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        stored = await _reply(bot)
    assert stored.source == "fallback"
    assert stored.source_error is not None
    assert stored.source_error.endswith("RuntimeError: a plugin's bug")
