"""The shared ``api_token`` is nobody's: a message sent with it must name its agent
(docs/agents.md: 1-100 characters, anything else refused with 422). Real bot, real HTTP
client."""

from __future__ import annotations

import logging

import pytest
from core_helpers import ApiBot, recorder

from botkit.store import ConversationStatus


@pytest.mark.parametrize("agent", [None, "", "   \t"])
async def test_a_message_with_the_shared_token_names_its_agent(
    api_bot: ApiBot, agent: str | None
) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        before = len(recorder(api.bot).replies)
        body = {"text": "no name"} if agent is None else {"text": "no name", "agent": agent}
        status, answer = await api.call("POST", f"/v1/conversations/{cid}/messages", json=body)
        assert status == 422, answer
        assert answer["kind"] == "invalid" and answer["error"].startswith("agent:")
        # Nothing sent, nothing taken.
        assert len(recorder(api.bot).replies) == before
        conversation = await api.bot.store.conversation_by_id(cid)
        assert conversation.status == ConversationStatus.WAITING_HUMAN


async def test_a_nameless_takeover_cannot_happen(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        assert (await api.send(cid, text="Bob here.", agent="Bob Smith"))[0] == 201
        with caplog.at_level(logging.INFO):
            status, _ = await api.send(cid, text="me now", agent="", take_over=True)
        assert status == 422
        assert "by an agent" not in caplog.text
        assert await api.bot.store.conversation_agent(cid) == "Bob Smith"
