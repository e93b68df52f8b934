"""Who has a conversation is decided on its status now, not on the one read earlier.

A message is stored (and its conversation read) when it arrives; detecting and
translating it may take seconds, and an agent may take the conversation over or give it
back meanwhile. The bot decides whether it answers on the status after those steps, and
its own status changes (an intent's close, a hand-off) are compare-and-sets that an
agent's takeover wins.

The timing is held with events: a translator that waits before translating one text (the
slow step before the decision), a middleware that waits after the decision (before the
handlers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from core_helpers import TOKEN, Api, RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import ConversationClosed, Direction, HandoffRequested, SystemEvent
from botkit.pipeline import Context, Next
from botkit.pipeline.middleware import conversation as conversation_middleware
from botkit.store import ConversationStatus, MessageStatus
from botkit.testing.translator import MarkingTranslator

DETECT = {"detector": {"kind": "langdetect", "processes": 0}}
SPANISH = "Hola, mi pedido todavía no ha llegado y necesito saber dónde está."
QUESTION = "¿Y cuánto cuesta el envío a Canadá, por favor?"
INTENTS = {
    "intent": [
        {
            "name": "goodbye",
            "action": "close",
            "keywords": ["bye for now"],
            "reply": {"en": "Goodbye!"},
        },
        {
            "name": "sales",
            "action": "handoff",
            "keywords": ["talk to sales"],
            "reply": {"en": "A colleague from sales will answer here."},
        },
    ]
}


@dataclass
class _HeldTranslator(MarkingTranslator):
    """Holds the translation of a text containing ``hold`` until ``go`` is set
    (``held`` is set once it waits)."""

    hold: str | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if self.hold is not None and any(self.hold in t for t in texts):
            self.held.set()
            await self.go.wait()
        return await super().translate(texts, source, target)


class _HoldAfterGate:
    """Middleware appended after the conversation gate (before the handlers): holds a
    message containing ``hold`` until ``go`` is set."""

    def __init__(self, hold: str) -> None:
        self.hold = hold
        self.held = asyncio.Event()
        self.go = asyncio.Event()

    async def __call__(self, ctx: Context, next: Next) -> None:
        if self.hold in ctx.text:
            self.held.set()
            await self.go.wait()
        await next()


@asynccontextmanager
async def _agent_bot(
    make_settings: Callable[..., Settings],
    translator: MarkingTranslator | None = None,
    plugins: dict[str, Any] | None = None,
) -> AsyncIterator[Api]:
    handoff = {"api_listen": "127.0.0.1:0", "api_token": TOKEN}
    settings = make_settings(
        plugins={"handoff": handoff, **(plugins or {})}, language=DETECT if translator else {}
    )
    async with Bot(settings, translator=translator) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            yield Api(bot, session)


async def _inbound(bot: Bot, text: str) -> MessageStatus:
    stored = await bot.store.messages_after("test", "c1", 0, 100)
    [found] = [m for m in stored if m.direction == Direction.INBOUND and m.text == text]
    return found.status


async def _status(bot: Bot) -> ConversationStatus:
    conversation = await bot.store.get_conversation("test", "c1")
    assert conversation is not None
    return conversation.status


async def _peer_takes_over(bot: Bot, conversation_id: int) -> None:
    """An agent takes the conversation over through another bot process: in the
    database only, so this process learns of it from the store."""
    taken = await bot.store.change_conversation_status(
        conversation_id, ConversationStatus.WITH_HUMAN, only_from=(ConversationStatus.BOT,)
    )
    assert taken is not None


async def _wait(event: asyncio.Event) -> None:
    async with asyncio.timeout(30):
        await event.wait()


# ------------------------------------------------------------- the gate reads it again
async def test_a_message_sent_while_the_agent_releases_is_answered_by_the_bot(
    make_settings: Callable[..., Settings],
) -> None:
    translator = _HeldTranslator()
    async with _agent_bot(make_settings, translator) as api:
        bot = api.bot
        await bot.submit(message(SPANISH, "k1"))
        assert await bot.drain(30)
        cid = await api.conversation_id()
        status, body = await api.send(cid, text="Ana here", agent="Ana", take_over=True,
                                      translate=False)  # fmt: skip
        assert status == 201, body
        translator.hold = QUESTION
        await bot.submit(message(QUESTION, "k2"))  # stored while Ana has it...
        await _wait(translator.held)  # ...and being translated when she gives it back
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
        assert status == 200, body
        translator.go.set()
        assert await bot.drain(30)
        assert await _status(bot) == ConversationStatus.BOT
        assert await _inbound(bot, QUESTION) == MessageStatus.ANSWERED
    assert f"es(echo: en({QUESTION}))" in [r.text for r in recorder(bot).replies]


async def test_a_message_being_translated_when_a_peer_takes_over_is_left_to_the_agent(
    make_settings: Callable[..., Settings],
) -> None:
    # Taken over in the database only, as through another bot process: this process's
    # replies hear of it only from the status.
    translator = _HeldTranslator()
    async with _agent_bot(make_settings, translator) as api:
        bot = api.bot
        await bot.submit(message(SPANISH, "k1"))
        assert await bot.drain(30)
        translator.hold = QUESTION
        receipt = await bot.submit(message(QUESTION, "k2"))
        await _wait(translator.held)
        await _peer_takes_over(bot, receipt.conversation_id)
        translator.go.set()
        assert await bot.drain(30)
        assert await _status(bot) == ConversationStatus.WITH_HUMAN
        assert await _inbound(bot, QUESTION) == MessageStatus.ANSWERED  # the agent has it
    assert len(recorder(bot).replies) == 1  # only the answer to the first message


# ---------------------------------------------- the bot's status changes lose to a takeover
ACTIONS = [
    ("see you, bye for now", ConversationClosed, "Goodbye!"),
    ("I want to talk to sales", HandoffRequested, "A colleague from sales will answer here."),
]


@pytest.mark.parametrize(("text", "event", "reply"), ACTIONS, ids=["close", "handoff"])
async def test_an_agents_takeover_stands_against_the_intent_being_carried_out(
    make_settings: Callable[..., Settings], text: str, event: type, reply: str
) -> None:
    async with _agent_bot(make_settings, plugins={"intents": INTENTS}) as api:
        bot = api.bot
        published: list[SystemEvent] = []

        async def record(e: SystemEvent) -> None:
            published.append(e)

        bot.events.subscribe(record)
        hold = _HoldAfterGate(text)
        bot.pipeline.add_middleware(hold)
        await bot.submit(message("hello", "k1"))
        assert await bot.drain(30)
        cid = await api.conversation_id()
        await bot.submit(message(text, "k2"))
        await _wait(hold.held)  # the bot decided to answer; the intent is about to act
        status, body = await api.send(cid, text="Ana here", agent="Ana", take_over=True)
        assert status == 201, body
        hold.go.set()
        assert await bot.drain(30)
        assert await _status(bot) == ConversationStatus.WITH_HUMAN
        assert await _inbound(bot, text) == MessageStatus.ANSWERED
        status, body = await api.send(cid, text="Found your order", agent="Ana")
        assert status == 201, body  # still hers: not closed, not waiting for someone
    assert not any(isinstance(e, event) for e in published)
    texts = [r.text for r in recorder(bot).replies]
    assert texts == ["echo: hello", "Ana here", "Found your order"]
    assert reply not in texts


@pytest.mark.parametrize(("text", "event", "reply"), ACTIONS, ids=["close", "handoff"])
async def test_a_peers_takeover_stands_and_the_intents_reply_is_not_sent(
    make_settings: Callable[..., Settings], text: str, event: type, reply: str
) -> None:
    # Taken over in the database only (another bot process): the lost compare-and-set
    # is how this process learns of it, and the reply that went with it is not sent.
    async with _agent_bot(make_settings, plugins={"intents": INTENTS}) as api:
        bot = api.bot
        hold = _HoldAfterGate(text)
        bot.pipeline.add_middleware(hold)
        await bot.submit(message("hello", "k1"))
        assert await bot.drain(30)
        receipt = await bot.submit(message(text, "k2"))
        await _wait(hold.held)
        await _peer_takes_over(bot, receipt.conversation_id)
        hold.go.set()
        assert await bot.drain(30)
        assert await _status(bot) == ConversationStatus.WITH_HUMAN
        assert await _inbound(bot, text) == MessageStatus.ANSWERED
        stored = await bot.store.messages_after("test", "c1", 0, 100)
    assert [r.text for r in recorder(bot).replies] == ["echo: hello"]
    assert [m.text for m in stored if m.direction == Direction.OUTBOUND] == ["echo: hello"]


async def test_the_gate_reads_the_status_again_only_when_it_may_be_stale(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read per message cost a third of the core's throughput: a status read moments
    # ago (no translation, no slow step) is taken as current; an older one is read again.
    async def reads_with(fresh_for_s: float) -> int:
        monkeypatch.setattr(conversation_middleware, "FRESH_FOR_S", fresh_for_s)
        async with Bot(make_settings()) as bot:
            bot.attach_connector(RecordingConnector(bot))
            calls: list[int] = []
            real = bot.store.conversation_by_id

            async def counted(conversation_id: int) -> Any:
                calls.append(conversation_id)
                return await real(conversation_id)

            monkeypatch.setattr(bot.store, "conversation_by_id", counted)
            # A key and a conversation of its own: both runs share the database.
            key = f"fresh-{fresh_for_s}"
            await bot.submit(message("hello there", key, conversation=key))
            await recorder(bot).wait_for(1)
            assert await bot.drain(10)
        return len(calls)

    assert await reads_with(0.0) == await reads_with(60.0) + 1


# --------------------------------- a release racing a message on its way to the agent
# A message that arrives while an agent has the conversation is the agent's, not the
# bot's; "the agent's" is decided where the bot records that it is done with the
# message, as a compare-and-set on the conversation's status. A release committed before
# that step gives the message to the bot (the agent has left: someone must answer); one
# committed after it leaves the message with the agent, who had it before they left.
@asynccontextmanager
async def _with_ana(settings: Settings) -> AsyncIterator[tuple[Api, int]]:
    """A started bot whose conversation "c1" Ana has taken over (and its id)."""
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            await bot.submit(message("hello", "k1"))
            assert await bot.drain(30)
            cid = await api.conversation_id()
            status, body = await api.send(cid, text="Ana here", agent="Ana", take_over=True)
            assert status == 201, body
            yield api, cid


def _release_before_finishing(api: Api, cid: int, text: str) -> list[int]:
    """Hooks the store's last step for the inbound message ``text`` (the bot recording
    that it is done with it): the agent releases the conversation first, through the
    API. Returns the release's HTTP statuses (one per hooked call)."""
    store = api.bot.store
    real = store.finish_inbound
    released: list[int] = []

    async def release_first(finish: Any, **kw: Any) -> Any:
        if finish.message.text == text and not released:
            status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
            assert status == 200, body
            released.append(status)
        return await real(finish, **kw)

    store.finish_inbound = release_first  # type: ignore[method-assign]
    return released


async def test_a_release_racing_the_last_step_gives_the_message_to_the_bot(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _with_ana(agent_settings()) as (api, cid):
        bot = api.bot
        released = _release_before_finishing(api, cid, "where is my order?")
        await bot.submit(message("where is my order?", "k2"))  # routed to Ana...
        assert await bot.drain(30)  # ...who gives it back just before it reaches her
        assert released == [200]
        assert await _status(bot) == ConversationStatus.BOT
        assert await _inbound(bot, "where is my order?") == MessageStatus.ANSWERED
        texts = [r.text for r in recorder(bot).replies]
    assert "echo: where is my order?" in texts  # the customer is answered
    assert texts.index("Ana here") < texts.index("echo: where is my order?")


async def test_a_release_just_after_the_status_was_read_gives_the_message_to_the_bot(
    agent_settings: Callable[..., Settings],
) -> None:
    # No slow step before the gate: the status read when the message was stored is
    # taken as current (FRESH_FOR_S) and says Ana has it; she gave it back meanwhile,
    # through another bot process (the database only).
    async with _with_ana(agent_settings()) as (api, cid):
        bot = api.bot

        async def release_meanwhile(ctx: Context, next: Next) -> None:
            if ctx.text == "are you there?":
                released = await bot.store.change_conversation_status(
                    cid, ConversationStatus.BOT,
                    only_from=(ConversationStatus.WITH_HUMAN,),
                )  # fmt: skip
                assert released is not None
            await next()

        bot.pipeline.add_middleware(
            release_meanwhile, before=conversation_middleware.CurrentConversationMiddleware
        )
        await bot.submit(message("are you there?", "k2"))
        assert await bot.drain(30)
        assert await _inbound(bot, "are you there?") == MessageStatus.ANSWERED
    assert "echo: are you there?" in [r.text for r in recorder(bot).replies]


async def test_a_photo_on_its_way_to_the_agent_when_she_leaves_gets_the_bots_answer(
    agent_settings: Callable[..., Settings],
) -> None:
    # A message without text is kept for the agent without a reply (the sanitize step):
    # after a release, the bot's answer to it is the empty-message reply.
    async with _with_ana(agent_settings()) as (api, cid):
        bot = api.bot
        released = _release_before_finishing(api, cid, "")
        await bot.submit(message("", "k2"))
        assert await bot.drain(30)
        assert released == [200]
        assert await _inbound(bot, "") == MessageStatus.ANSWERED
    assert bot.settings.bot.empty_reply in [r.text for r in recorder(bot).replies]


async def test_a_message_the_agent_had_before_she_released_stays_hers(
    agent_settings: Callable[..., Settings],
) -> None:
    # The other order: the bot recorded the message as the agent's, then she released.
    # The bot does not answer it (she had it); the customer is told the bot is back.
    async with _with_ana(agent_settings()) as (api, cid):
        bot = api.bot
        await bot.submit(message("thanks, bye", "k2"))
        assert await bot.drain(30)
        assert await _inbound(bot, "thanks, bye") == MessageStatus.ANSWERED
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release")
        assert status == 200, body
        assert await bot.drain(30)
        texts = [r.text for r in recorder(bot).replies]
    assert "echo: thanks, bye" not in texts
    assert texts[-1] == body["message"]["text"]  # the return confirmation
