"""Helpers for the core tests: a connector that records what it is asked to send, a
message builder, and a client of the agent API. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
from sqlalchemy import create_engine, text

from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.events import Contact, InboundMessage, OutboundReply
from botkit.handoff.api import AgentApi
from botkit.handoff.desk import HandoffDesk
from connectors.base import Connector, ConnectorConfig

__all__ = [
    "TOKEN",
    "Api",
    "ApiBot",
    "RecordingConnector",
    "age_processes",
    "backdate_messages",
    "closed_on_saturday",
    "message",
    "recorder",
]


class RecordingConnector(Connector[ConnectorConfig]):
    """A connector for a channel named "test" that keeps every delivered reply.

    ``fail_with`` makes ``send_stream`` raise (after reading ``fail_after`` deltas).
    """

    name: ClassVar[str] = "test"

    def __init__(self, core: Any) -> None:
        super().__init__(ConnectorConfig(), core)
        self.replies: list[OutboundReply] = []
        self.deltas: list[list[str]] = []
        self.fail_with: Exception | None = None
        self.fail_after = 0
        self._changed = asyncio.Condition()

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        self.replies.append(reply)

    async def send_stream(self, stream: ReplyStream) -> None:
        assert isinstance(stream, ReplyStream)  # the bot's stream honours the protocol
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            if self.fail_with is not None and len(parts) >= self.fail_after:
                raise self.fail_with
        if self.fail_with is not None:
            raise self.fail_with
        self.deltas.append(parts)
        self.replies.append(await stream.final())
        async with self._changed:
            self._changed.notify_all()

    async def disconnect(self) -> None:
        pass

    async def wait_for(self, count: int, within: float = 30.0) -> list[OutboundReply]:
        """Wait until ``count`` replies were delivered (fails after ``within`` seconds)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.replies) >= count)
        return self.replies


def message(
    text: str,
    key: str,
    *,
    conversation: str = "c1",
    user: str = "u1",
    channel: str = "test",
    language_hint: str | None = None,
) -> InboundMessage:
    """An inbound message on the "test" channel (idempotency key ``key``)."""
    return InboundMessage(
        channel=channel,
        conversation_key=conversation,
        contact=Contact(channel=channel, external_id=user, language_hint=language_hint),
        text=text,
        idempotency_key=key,
    )


def recorder(bot: Bot) -> RecordingConnector:
    connector = bot.connectors["test"]
    assert isinstance(connector, RecordingConnector)
    return connector


def backdate_messages(settings: Settings, seconds: float) -> None:
    """Move every stored message ``seconds`` into the past (stored that long ago).

    Works on the SQLite file of ``settings`` directly, with no bot running.
    """
    _backdate(settings, "messages", "created_at", seconds)


def age_processes(settings: Settings, seconds: float) -> None:
    """Move every process's last heartbeat ``seconds`` into the past (a process that
    crashed that long ago). SQLite file of ``settings``, no bot running."""
    _backdate(settings, "processes", "heartbeat_at", seconds)


def _backdate(settings: Settings, table: str, column: str, seconds: float) -> None:
    url = settings.store.url.replace("sqlite+aiosqlite://", "sqlite://", 1)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(text(f"SELECT rowid, {column} FROM {table}")).all()
            for rowid, value in rows:
                when = datetime.fromisoformat(str(value)) - timedelta(seconds=seconds)
                conn.execute(
                    text(f"UPDATE {table} SET {column} = :t WHERE rowid = :i"),
                    {"t": when, "i": rowid},
                )
    finally:
        engine.dispose()


TOKEN = "agents-secret-token-0123456789"


class Api:
    """An HTTP client of one bot's agent API."""

    def __init__(self, bot: Bot, session: aiohttp.ClientSession) -> None:
        plugin = bot.plugins.get("handoff")
        assert plugin is not None
        api = getattr(plugin, "api", None)
        assert isinstance(api, AgentApi) and api.port
        self.bot = bot
        self.base = f"http://127.0.0.1:{api.port}"
        self.session = session

    async def call(
        self, method: str, path: str, *, token: str | None = TOKEN, **kw: Any
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        headers |= kw.pop("headers", {})
        async with self.session.request(
            method, self.base + path, headers=headers, **kw
        ) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json()

    async def conversation_id(self, key: str = "c1") -> int:
        status, body = await self.call(
            "GET", "/v1/conversations", params={"channel": "test", "key": key}
        )
        assert status == 200, body
        return int(body["conversation"]["id"])

    async def handed_off(self, key: str = "c1") -> int:
        """The id of conversation ``key`` once its customer asked for a human (/human)."""
        await self.bot.submit(message("/human", "k-handoff", conversation=key))
        assert await self.bot.drain(30)
        return await self.conversation_id(key)

    async def send(self, conversation_id: int, **body: Any) -> tuple[int, Any]:
        """Send an agent's message with the shared token, as agent "Ana" unless
        ``agent`` is given (the shared token requires a name)."""
        body.setdefault("agent", "Ana")
        return await self.call("POST", f"/v1/conversations/{conversation_id}/messages", json=body)


# ``api_bot`` (conftest.py): a started bot with the agent API, and its client.
ApiBot = Callable[..., AbstractAsyncContextManager[Api]]


def closed_on_saturday(monkeypatch: Any) -> dict[str, Any]:
    """Office hours (``[plugins.handoff.hours]``) of Mondays 09:00-17:00 UTC with
    ``outside = "bot"``, and the hand-off desk's clock on the Saturday before."""
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    monkeypatch.setattr(HandoffDesk, "clock", staticmethod(lambda: saturday))
    return {"timezone": "UTC", "mon": "09:00-17:00", "outside": "bot"}
