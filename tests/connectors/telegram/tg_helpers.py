"""Helpers for the Telegram tests: the REAL bot (echo backend, temp SQLite) and the REAL
python-telegram-bot client, pointed at the fake Bot API server."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from botkit.bot import Bot
from botkit.channel import HistoryItem, IntakeReceipt
from botkit.config import Settings, settings_from_mapping
from botkit.events import InboundMessage
from botkit.testing.fake_telegram import FakeTelegram, SentMessage
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from botkit.testing.telegram_updates import UpdateFactory
from connectors.telegram import TelegramConnector
from connectors.telegram.webhook import SECRET_HEADER

TOKEN = "123456789:AAtest-token_0123456789abcdefghijkl"
SECRET = "webhook-secret-0123456789"
WEBHOOK_PATH = "/telegram/webhook"


def webhook_section(**extra: Any) -> dict[str, Any]:
    """``[connectors.telegram]`` in webhook mode on a free loopback port (``extra`` goes
    into its ``webhook`` table)."""
    return {
        "mode": "webhook",
        "webhook": {
            "url": "https://bot.example/telegram/webhook",
            "secret_token": "${BOTKIT_TEST_TG_SECRET}",
            "port": 0,
            "path": WEBHOOK_PATH,
            **extra,
        },
    }


async def post_update(
    tg: TgHarness, body: bytes | dict[str, Any], secret: str | None = SECRET, **headers: str
) -> int:
    """POST ``body`` to the connector's webhook as Telegram would; the HTTP status."""
    if secret is not None:
        headers[SECRET_HEADER] = secret
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"http://127.0.0.1:{tg.connector.port}{WEBHOOK_PATH}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers) as resp,
    ):
        return resp.status


BOT_NAME = "botkit_test_bot"

# Fast, generous limits so tests that are not about limits never wait on one.
FAST_FLOOD: dict[str, Any] = {
    "per_chat_interval_s": 0.0,
    "group_max_messages": 1000,
    "group_window_s": 1.0,
    "global_per_second": 1000,
}
FAST_RETRY: dict[str, Any] = {"attempts": 3, "initial_backoff_s": 0.02, "max_backoff_s": 0.1}

MakeTg = Callable[..., Awaitable["TgHarness"]]


def tg_settings(
    db: Path,
    fake: FakeTelegram,
    telegram: dict[str, Any] | None = None,
    *,
    bot: dict[str, Any] | None = None,
    word_delay: float = 0.0,
    plugins: dict[str, Any] | None = None,
    store_url: str | None = None,
) -> Settings:
    """Settings for a bot on ``fake``, its store the SQLite file ``db`` (or ``store_url``:
    a database of either backend, e.g. ``migrated_db_url``)."""
    tg = dict(telegram or {})
    section = {
        "token": "${BOTKIT_TEST_TG_TOKEN}",
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout_s": 1,
        "edit_interval_s": 0.3,
        "typing_interval_s": 5.0,
        "shutdown_grace_s": 2.0,
        **tg,
        "flood": {**FAST_FLOOD, **tg.get("flood", {})},
        "retry": {**FAST_RETRY, **tg.get("retry", {})},
    }
    return settings_from_mapping(
        {
            "store": {"url": store_url or f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo", "echo": {"word_delay_seconds": word_delay}},
            "bot": {"rate_limit": {"enabled": False}, "shutdown_grace_seconds": 5, **(bot or {})},
            "language": {"detector": {"kind": "none"}},
            "connectors": {"telegram": section},
            "plugins": plugins or {},
        },
        environ={"BOTKIT_TEST_TG_TOKEN": TOKEN, "BOTKIT_TEST_TG_SECRET": SECRET},
    )


@dataclass
class TgHarness:
    """A started ``Bot`` whose Telegram connector talks to ``fake``."""

    bot: Bot
    connector: TelegramConnector
    fake: FakeTelegramDrafts
    run_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Connect and listen in the background, as ``botkit run`` does."""
        self.run_task = asyncio.create_task(self.bot.run())
        # The last call of connect(): deleteWebhook (polling) or setWebhook (webhook).
        fake = self.fake
        await fake.wait_until(
            lambda: bool(fake.calls_to("deleteWebhook") or fake.calls_to("setWebhook")), 30
        )

    async def stop(self) -> None:
        if self.run_task is not None:
            self.bot.stop()
            await asyncio.gather(self.run_task, return_exceptions=True)
            self.run_task = None

    def answers(self, chat_id: int | None = None) -> list[str]:
        """Final texts of the messages the bot sent (to ``chat_id``)."""
        return [m.text for m in self.fake.messages(chat_id)]

    async def wait_answers(
        self, count: int, chat_id: int | None = None, within: float = 30.0
    ) -> list[SentMessage]:
        await self.fake.wait_until(lambda: len(self.fake.messages(chat_id)) >= count, within)
        return self.fake.messages(chat_id)

    async def history(self, chat_id: int) -> list[HistoryItem]:
        return await self.bot.history("telegram", str(chat_id))

    async def settle(self, within: float = 30.0) -> None:
        """Wait until every reply the bot started has finished."""
        assert await self.bot.drain(within)


@dataclass
class CoreProxy:
    """Wraps the bot as the connector's core, to inject failures around ``submit``."""

    inner: Bot
    crash_after: int | None = None  # raise after this many stored submissions
    fail_first: int = 0  # raise StoreError on the first N submissions (nothing stored)
    submitted: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds each submission takes on top (a slow database)

    async def submit_or_keep(
        self, message: InboundMessage, *, existing_conversation_only: bool = False
    ) -> IntakeReceipt | None:
        from botkit.errors import StoreError

        await asyncio.sleep(self.delay)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise StoreError("database unavailable (simulated)")
        receipt = await self.inner.submit_or_keep(
            message, existing_conversation_only=existing_conversation_only
        )
        self.submitted.append(message.idempotency_key)
        if self.crash_after is not None and len(self.submitted) == self.crash_after:
            raise RuntimeError("simulated crash after storing, before confirming")
        return receipt

    async def history(
        self, channel: str, conversation_key: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryItem]:
        return await self.inner.history(channel, conversation_key, after_seq=after_seq, limit=limit)

    async def ready(self) -> bool:
        return await self.inner.ready()

    async def with_human(self, channel: str, conversation_key: str) -> bool:
        return await self.inner.with_human(channel, conversation_key)

    async def move_conversation(self, channel: str, old_key: str, new_key: str) -> bool:
        return await self.inner.move_conversation(channel, old_key, new_key)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


_DROP = object()

# Updates whose fields have types the Bot API never sends: (kind, path, value, the
# problem the warning names). ``_DROP`` removes the field.
WRONG_TYPES: list[tuple[str, tuple[str, ...], object, str]] = [
    ("message", ("chat", "id"), "210", "message.chat.id is a string, not an integer"),
    ("message", ("chat", "type"), 1, "message.chat.type is an integer, not a string"),
    ("message", ("message_thread_id",), "7", "message.message_thread_id is a string, not an"),
    ("message", ("text",), 5, "message.text is an integer, not a string"),
    ("message", ("from",), [4242], "message.from is a list, not an object"),  # PTB fails
    ("message", ("from", "language_code"), 7, "message.from.language_code is an integer"),
    (
        "message",
        ("entities",),
        [{"type": "mention", "offset": "0", "length": 4}],
        "message.entities[0].offset is a string",
    ),
    ("callback", ("from",), _DROP, "callback_query.from is missing"),
    ("callback", ("from",), [4242], "callback_query.from is a list, not an object"),
    ("callback", ("message", "chat", "id"), "210", "callback_query.message.chat.id is a string"),
]


def garbled(
    updates: UpdateFactory, kind: str, path: tuple[str, ...], value: object
) -> dict[str, Any]:
    """A well-formed update to private chat 210 with the field at ``path`` (inside its
    message or callback query) set to ``value``."""
    if kind == "message":
        update = updates.message(210, "@botkit_test_bot hello", thread_id=7)
    else:
        update = updates.callback(210, "yes")
    node = update["message" if kind == "message" else "callback_query"]
    for key in path[:-1]:
        node = node[key]
    if value is _DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return update
