"""Giving another agent's conversation back to the bot takes the same explicit intent as
writing into it: with an agent's own token, ``take_over`` or 409 ``taken`` naming who has
it. The shared token (a tool's, which assigns on its own) is not refused. Real bot,
real HTTP client."""

from __future__ import annotations

import logging

import pytest
from core_helpers import ApiBot, message

from botkit.store import ConversationStatus

ANA = "ana-own-token-0123456789abcdef"
BOB = "bob-own-token-0123456789abcdef"


async def test_an_agent_gives_back_anothers_conversation_only_on_purpose(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot(agents={"Ana": ANA, "Bob": BOB}) as api:
        cid = await api.handed_off()
        path = f"/v1/conversations/{cid}/messages"
        assert (await api.call("POST", path, token=ANA, json={"text": "Ana here."}))[0] == 201
        release = f"/v1/conversations/{cid}/release"

        status, body = await api.call("POST", release, token=BOB)
        assert (status, body["kind"], body["agent"]) == (409, "taken", "Ana"), body
        status, body = await api.call("POST", release, token=BOB, json={"take_over": False})
        assert (status, body["kind"]) == (409, "taken"), body
        status, body = await api.call("POST", release, token=BOB, json={"take_over": "yes"})
        assert status == 400, body
        conversation = await api.bot.store.conversation_by_id(cid)
        assert conversation.status == ConversationStatus.WITH_HUMAN
        assert await api.bot.store.conversation_agent(cid) == "Ana"

        with caplog.at_level(logging.INFO):
            status, body = await api.call("POST", release, token=BOB, json={"take_over": True})
        assert status == 200, body
        assert body["conversation"]["status"] == "bot"
        assert "given back to the bot by Bob (taken over from Ana)" in caplog.text


async def test_an_agent_gives_back_their_own_and_the_tool_any(api_bot: ApiBot) -> None:
    async with api_bot(agents={"Ana": ANA, "Bob": BOB}) as api:
        for turn in range(2):
            await api.bot.submit(message("/human", f"h{turn}"))
            assert await api.bot.drain(30)
            cid = await api.conversation_id()
            path = f"/v1/conversations/{cid}/messages"
            assert (await api.call("POST", path, token=ANA, json={"text": "Ana."}))[0] == 201
            # Ana's own token, or the shared one (a tool's; the confirmation is sent).
            token = ANA if turn == 0 else None
            kw = {} if token is None else {"token": token}
            status, body = await api.call("POST", f"/v1/conversations/{cid}/release", **kw)
            assert status == 200, body
