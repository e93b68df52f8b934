"""An agent's takeover racing the bot's reply: the customer gets exactly one answer.

- Taken over and given back while the bot writes its reply: the cut reply is no answer,
  and the agent, who left before the message was theirs, did not answer either. The
  bot answers it again (``Bot._reply_to``): whose the message is, is decided where the
  bot records it, as a compare-and-set on the status (``Context.keep_for_agent``).
- Taken over in this process just after the message was stored: the status the intake
  read is stale; the bot reads it again and stays silent (the agent answers).

Both databases. The timing is held with hooks on the store (a release just before a
write) and with events (a connector holding a reply after its first words, a
middleware holding it after the gate), not with sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from core_helpers import Api, RecordingConnector, message, recorder

from botkit._delivery import SUPERSEDED
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.events import Direction
from botkit.pipeline import Context, Next
from botkit.store import ConversationStatus, MessageStatus, StoredMessage

QUESTION = "where is my order?"
NO_DETECTION = {"detector": {"kind": "none"}}


class _HoldsFirstWords(RecordingConnector):
    """Shows the first words of the reply to ``QUESTION``, then waits for ``go`` before
    reading on (a slow platform call), the first time only."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.showing = asyncio.Event()
        self.go = asyncio.Event()

    async def send_stream(self, stream: ReplyStream) -> None:
        if self.showing.is_set() or stream.in_reply_to_seq != 3:  # "hello", its echo, QUESTION
            await super().send_stream(stream)
            return
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            if len(parts) == 1:
                self.showing.set()
                await self.go.wait()
        self.deltas.append(parts)
        self.replies.append(await stream.final())


class _HoldAfterGate:
    """Middleware after the conversation gate: holds ``QUESTION`` until ``go`` (the
    bot decided to answer it and is preparing its reply), the first time only."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.go = asyncio.Event()

    async def __call__(self, ctx: Context, next: Next) -> None:
        if ctx.text == QUESTION and not self.held.is_set():
            self.held.set()
            await self.go.wait()
        await next()


@asynccontextmanager
async def _bot(
    settings: Settings, connector: Callable[[Bot], RecordingConnector] = RecordingConnector
) -> AsyncIterator[tuple[Api, int]]:
    """A started bot with the agent API whose conversation "c1" the bot answered once."""
    async with Bot(settings) as bot:
        bot.attach_connector(connector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            await bot.submit(message("hello", "k1"))
            assert await bot.drain(30)
            yield api, await api.conversation_id()


async def _wait(event: asyncio.Event) -> None:
    async with asyncio.timeout(30):
        await event.wait()


async def _take_over(api: Api, cid: int) -> None:
    status, body = await api.send(cid, text="Ana here", agent="Ana", take_over=True)
    assert status == 201, body


async def _release(api: Api, cid: int) -> dict[str, Any]:
    status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
    assert status == 200, body
    return dict(body)


async def _stored(bot: Bot) -> list[StoredMessage]:
    return await bot.store.messages_after("test", "c1", 0, 100)


async def _outcome(api: Api, cid: int) -> tuple[ConversationStatus, MessageStatus, list[str]]:
    """The conversation's status, the question's, and the answers the customer got
    (complete replies: a cut one is not an answer)."""
    bot = api.bot
    stored = await _stored(bot)
    [question] = [m for m in stored if m.direction == Direction.INBOUND and m.text == QUESTION]
    conversation = await bot.store.conversation_by_id(cid)
    answers = [r.text for r in recorder(bot).replies if not r.superseded]
    return conversation.status, question.status, answers


# ------------------------------------------------ taken over and given back mid-reply
async def test_a_reply_cut_by_an_agent_who_then_gives_it_back_is_answered_again(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _bot(agent_settings(), _HoldsFirstWords) as (api, cid):
        bot = api.bot
        holding = recorder(bot)
        assert isinstance(holding, _HoldsFirstWords)
        store = bot.store
        real = store.append_outbound
        released: list[dict[str, Any]] = []

        async def release_first(conversation_id: int, text: str, **kw: Any) -> Any:
            # Ana gives the conversation back just before the bot records the reply she
            # cut: the message never became hers.
            if kw.get("error") == SUPERSEDED and not released:
                released.append(await _release(api, cid))
            return await real(conversation_id, text, **kw)

        store.append_outbound = release_first  # type: ignore[method-assign]
        await bot.submit(message(QUESTION, "k2"))
        await _wait(holding.showing)  # "echo: " is out...
        await _take_over(api, cid)  # ...when Ana takes over, which cuts the reply
        holding.go.set()
        assert await bot.drain(30)
        assert len(released) == 1
        status, question, answers = await _outcome(api, cid)
        stored = await _stored(bot)
    assert (status, question) == (ConversationStatus.BOT, MessageStatus.ANSWERED)
    confirmation = released[0]["message"]["text"]
    assert answers == ["echo: hello", "Ana here", confirmation, f"echo: {QUESTION}"]
    out = [(m.text, m.status) for m in stored if m.direction == Direction.OUTBOUND]
    assert ("echo: ", MessageStatus.FAILED) in out  # the cut reply, never in the history
    assert out[-1] == (f"echo: {QUESTION}", MessageStatus.SENT)


async def test_a_reply_stopped_before_it_went_out_is_answered_if_the_agent_leaves(
    agent_settings: Callable[..., Settings],
) -> None:
    # Taken over while the reply was being prepared: nothing of it is sent. Ana gives
    # the conversation back just before the bot records the message as hers.
    async with _bot(agent_settings()) as (api, cid):
        bot = api.bot
        hold = _HoldAfterGate()
        bot.pipeline.add_middleware(hold)
        store = bot.store
        real = store.finish_inbound
        released: list[dict[str, Any]] = []

        async def release_first(finish: Any, **kw: Any) -> Any:
            if finish.message.text == QUESTION and not released:
                released.append(await _release(api, cid))
            return await real(finish, **kw)

        store.finish_inbound = release_first  # type: ignore[method-assign]
        await bot.submit(message(QUESTION, "k2"))
        await _wait(hold.held)
        await _take_over(api, cid)
        hold.go.set()
        assert await bot.drain(30)
        assert len(released) == 1
        status, question, answers = await _outcome(api, cid)
    assert (status, question) == (ConversationStatus.BOT, MessageStatus.ANSWERED)
    confirmation = released[0]["message"]["text"]
    assert answers == ["echo: hello", "Ana here", confirmation, f"echo: {QUESTION}"]


async def test_a_reply_cut_by_an_agent_who_keeps_the_conversation_is_not_answered_again(
    agent_settings: Callable[..., Settings],
) -> None:
    # The usual case: Ana keeps it; the message is hers, the bot says nothing more.
    async with _bot(agent_settings(), _HoldsFirstWords) as (api, cid):
        bot = api.bot
        holding = recorder(bot)
        assert isinstance(holding, _HoldsFirstWords)
        await bot.submit(message(QUESTION, "k2"))
        await _wait(holding.showing)
        await _take_over(api, cid)
        holding.go.set()
        assert await bot.drain(30)
        status, question, answers = await _outcome(api, cid)
        cut = holding.replies[-1]
    assert (status, question) == (ConversationStatus.WITH_HUMAN, MessageStatus.ANSWERED)
    assert answers == ["echo: hello", "Ana here"]
    assert (cut.text, cut.superseded) == ("echo: ", True)
    assert cut.metadata["superseded"] is True  # still there for connectors that read it


# ---------------------------------------------------- taken over just after the intake
async def test_a_takeover_just_after_the_message_was_stored_keeps_the_bot_silent(
    agent_settings: Callable[..., Settings],
) -> None:
    # The intake read the status (the bot's); Ana takes over in this process before the
    # reply task starts. Nothing reads the conversation again on the way (no language
    # detection, which stores a first detected language): only the takeover says that
    # status is stale.
    async with _bot(agent_settings(language=NO_DETECTION)) as (api, cid):
        bot = api.bot
        store = bot.store
        real = store.intake
        taken: list[int] = []

        async def take_over_after(event: Any, **kw: Any) -> Any:
            result = await real(event, **kw)
            if event.text == QUESTION:
                assert result.conversation.status == ConversationStatus.BOT
                await _take_over(api, cid)
                taken.append(cid)
            return result

        store.intake = take_over_after  # type: ignore[method-assign]
        await bot.submit(message(QUESTION, "k2"))
        assert await bot.drain(30)
        assert taken == [cid]
        status, question, answers = await _outcome(api, cid)
    assert (status, question) == (ConversationStatus.WITH_HUMAN, MessageStatus.ANSWERED)
    assert answers == ["echo: hello", "Ana here"]  # the bot did not answer after Ana
