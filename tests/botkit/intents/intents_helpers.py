"""Helpers for the intents plugin's tests: a shop's intents, a started bot with them, and
a way to say something and read the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from core_helpers import RecordingConnector, message, recorder

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import GenerationBackend, Translator
from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.events import Contact, Direction, InboundMessage, OutboundReply, utcnow
from botkit.pipeline import Context
from botkit.store import ConversationStatus, ConversationStore
from botkit.store.records import ConversationRecord, MessageStatus, StoredMessage
from botkit.testing.backends import RecordingEcho

__all__ = [
    "HOURS_EN",
    "HOURS_ES",
    "REFUND_POLICY",
    "SHOP",
    "IntentsBot",
    "RecordingEcho",
    "Say",
    "make_ctx",
    "make_intents_bot",
    "status",
]

HOURS_EN = "We are open Monday to Friday, from nine to six."
HOURS_ES = "Abrimos de lunes a viernes, de nueve a seis."
REFUND_POLICY = "Refunds: within 30 days of delivery, to the original payment method."

# A shop's intents, one per action.
SHOP: dict[str, Any] = {
    "intent": [
        {
            "name": "opening_hours",
            "action": "reply",
            "examples": [
                "What are your opening hours?",
                "When are you open?",
                "Are you open on Saturday?",
                "¿A qué hora abren?",
                "Wann haben Sie geöffnet?",
            ],
            "keywords": ["opening hours", "horario"],
            "reply": {"en": HOURS_EN, "es": HOURS_ES},
            "buttons": [
                {"label": {"en": "Our address", "es": "Nuestra dirección"}, "value": "address"}
            ],
        },
        {
            "name": "talk_to_sales",
            "action": "handoff",
            "examples": ["I want to talk to your sales team", "Can I speak with sales?"],
        },
        {
            "name": "goodbye",
            "action": "close",
            "examples": ["Thanks, goodbye!", "That's all, bye"],
            "reply": {"en": "Goodbye, have a nice day!"},
        },
        {
            "name": "refund",
            "action": "instruct",
            "examples": ["I want a refund", "How do I get my money back?"],
            "instruction": REFUND_POLICY,
        },
        {
            "name": "invoice_copy",
            "action": "reply",
            "keywords": ["invoice", "dirección de factura"],
            "reply": {"en": "You find every invoice under Account > Invoices."},
        },
    ]
}


class Say:
    """Sends messages to one started bot and returns its answers."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._keys = 0

    async def __call__(self, text: str, conversation: str = "c1") -> OutboundReply | None:
        """Submit ``text``; the reply it got, or None when the bot stayed silent."""
        self._keys += 1
        before = len(recorder(self.bot).replies)
        await self.bot.submit(message(text, f"k{self._keys}", conversation=conversation))
        assert await self.bot.drain(30)
        replies = recorder(self.bot).replies
        assert len(replies) <= before + 1
        return replies[-1] if len(replies) > before else None

    async def text(self, text: str, conversation: str = "c1") -> str | None:
        reply = await self(text, conversation)
        return None if reply is None else reply.text


async def status(bot: Bot, key: str = "c1") -> ConversationStatus:
    conversation = await bot.store.get_conversation("test", key)
    assert conversation is not None
    return conversation.status


IntentsBot = Callable[..., AbstractAsyncContextManager[Say]]


def make_intents_bot(make_settings: Callable[..., Settings]) -> IntentsBot:
    """``async with intents_bot(config, language=..., translator=..., backend=...,
    handoff=...) as say`` (``handoff``: enable that plugin too, with this config)."""

    @asynccontextmanager
    async def started(
        config: dict[str, Any] | None = None,
        *,
        language: dict[str, Any] | None = None,
        bot: dict[str, Any] | None = None,
        translator: Translator | None = None,
        backend: GenerationBackend | None = None,
        handoff: dict[str, Any] | None = None,
    ) -> AsyncIterator[Say]:
        plugins = {"intents": SHOP if config is None else config}
        if handoff is not None:
            plugins["handoff"] = handoff
        settings = make_settings(
            plugins=plugins,
            language=language or {},
            bot=bot or {},
        )
        async with Bot(settings, translator=translator, backend=backend) as running:
            running.attach_connector(RecordingConnector(running))
            yield Say(running)

    return started


def make_ctx(text: str, settings: Settings | None = None) -> Context:
    """A context for ``text`` in a conversation the bot answers, outside a bot (for
    handler checks)."""
    settings = settings or settings_from_mapping({}, environ={})
    now = utcnow()
    return Context(
        message=InboundMessage("test", "c1", Contact("test", "u1"), text, "k1"),
        text=text,
        conversation=ConversationRecord(
            1, "test", "c1", 1, ConversationStatus.BOT, None, now, now, 1
        ),
        inbound=StoredMessage(
            1, 1, 1, Direction.INBOUND, text, None, None, MessageStatus.RECEIVED, now, "k1", None
        ),
        settings=settings,
        store=ConversationStore(settings.store),  # never opened: checks do not use it
        backend=EchoBackend(),
    )
