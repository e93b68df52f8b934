"""A release landing between an agent's send taking the conversation over and storing
the agent's message (two transactions) refuses the message: 409 ``with_bot``, nothing
stored or sent, the bot still answering the customer, and the ``Idempotency-Key`` left
unused for a retry. Without this the customer got a human's message in a conversation
the bot had, and the bot went on as if nothing happened.

Both databases, real bot, real HTTP client; the release is made inside the store call
that writes the agent's message, before it runs, not by sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from core_helpers import Api, RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.store import ConversationStatus

ANA = "ana-own-token-0123456789abcdef"
BOB = "bob-own-token-0123456789abcdef"


@asynccontextmanager
async def _handed_off(settings: Settings) -> AsyncIterator[tuple[Api, int]]:
    """A started bot with the agent API and conversation "c1" waiting for a human."""
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            yield api, await api.handed_off()


async def _release(api: Api, cid: int, by: str) -> None:
    if by == "customer":  # /bot
        await api.bot.submit(message("/bot", "k-bot"))
        assert await api.bot.drain(30)
    else:  # another agent's own token, or a tool's shared one
        token = BOB if by == "agent" else None
        kw: dict[str, Any] = {} if token is None else {"token": token}
        status, body = await api.call("POST", f"/v1/conversations/{cid}/release", **kw)
        assert status == 200, body
    assert (await api.bot.store.conversation_by_id(cid)).status == ConversationStatus.BOT


@pytest.mark.parametrize("by", ["agent", "tool", "customer"])
async def test_a_release_between_the_takeover_and_the_message_refuses_it(
    agent_settings: Callable[..., Settings], by: str
) -> None:
    async with _handed_off(agent_settings(agents={"Ana": ANA, "Bob": BOB})) as (api, cid):
        store = api.bot.store
        real = store.append_outbound
        released: list[str] = []

        async def release_first(conversation_id: int, text: str, **kw: Any) -> Any:
            # Ana's send has taken the conversation over and is about to store her
            # message: the release lands now.
            if kw.get("agent") == "Ana" and not released:
                released.append(by)
                await _release(api, cid, by)
            return await real(conversation_id, text, **kw)

        store.append_outbound = release_first  # type: ignore[method-assign]
        sent = recorder(api.bot).replies
        path = f"/v1/conversations/{cid}/messages"
        status, body = await api.call(
            "POST", path, token=ANA, json={"text": "Ana here."}, headers={"Idempotency-Key": "1"}
        )
        assert released == [by]
        assert (status, body.get("kind")) == (409, "with_bot"), body
        assert "went back to the bot" in body["error"] and "nothing was sent" in body["error"]
        # Nothing of Ana's stored or sent; the bot has the conversation.
        stored = await store.messages_after("test", "c1", 0, 100)
        assert not [m for m in stored if m.agent == "Ana"]
        assert "Ana here." not in [r.text for r in sent]
        assert (await store.conversation_by_id(cid)).status == ConversationStatus.BOT
        assert await store.conversation_agent(cid) is None

        # The bot goes on answering the customer (the echo backend repeats them).
        await api.bot.submit(message("Still there?", "k-still"))
        assert await api.bot.drain(30)
        assert sent[-1].text.endswith("Still there?") and not sent[-1].metadata.get("agent")

        # The key stored nothing: Ana's retry, taking it over on purpose, is sent.
        status, body = await api.call(
            "POST", path, token=ANA, json={"text": "Ana here.", "take_over": True},
            headers={"Idempotency-Key": "1"},
        )  # fmt: skip
        assert (status, body["duplicate"], body["message"]["agent"]) == (201, False, "Ana"), body
        assert sent[-1].text == "Ana here."
        assert await store.conversation_agent(cid) == "Ana"


async def test_a_close_between_the_takeover_and_the_message_refuses_it(
    agent_settings: Callable[..., Settings],
) -> None:
    async with _handed_off(agent_settings()) as (api, cid):
        store = api.bot.store
        real = store.append_outbound

        async def close_first(conversation_id: int, text: str, **kw: Any) -> Any:
            if kw.get("agent") == "Ana":
                await store.set_conversation_status(cid, ConversationStatus.CLOSED)
            return await real(conversation_id, text, **kw)

        store.append_outbound = close_first  # type: ignore[method-assign]
        before = len(recorder(api.bot).replies)
        status, body = await api.send(cid, text="Ana here.")
        assert (status, body.get("kind")) == (409, "closed"), body
        assert len(recorder(api.bot).replies) == before
        assert (await store.conversation_by_id(cid)).last_seq == 2  # /human and its answer
