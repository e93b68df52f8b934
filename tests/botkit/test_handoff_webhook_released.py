"""The hand-off webhook is also told when a conversation goes back to the bot: the
customer's return command, or an agent's release through the agent API. Real bot, a
local agents' tool (``agents_tool``, from test_handoff_plugin.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from core_helpers import ApiBot, message
from test_handoff_plugin import agents_tool  # noqa: F401 (a fixture)

ANA = "ana-own-token-0123456789abcdef"
Tool = tuple[str, list[dict[str, Any]], asyncio.Event]


async def _arrived(tool: Tool, count: int) -> None:
    _, received, arrived = tool
    async with asyncio.timeout(30):
        while True:
            arrived.clear()  # then checked, with nothing in between: no wake-up is lost
            if len(received) >= count:
                return
            await arrived.wait()


async def test_the_tool_hears_each_return_to_the_bot(
    api_bot: ApiBot,
    agents_tool: Tool,  # noqa: F811
) -> None:
    base, received, _ = agents_tool
    async with api_bot(webhook_url=f"{base}/hook", agents={"Ana": ANA}) as api:
        bot = api.bot
        await bot.submit(message("/human", "k1"))
        await bot.submit(message("/bot", "k2"))
        assert await bot.drain(30)
        await _arrived(agents_tool, 2)
        assert [b["type"] for b in received] == ["handoff_requested", "handoff_released"]
        released = received[1]
        assert released == {
            "type": "handoff_released", "channel": "test", "conversation_key": "c1",
            "by": "customer", "agent": None, "at": released["at"],
        }  # fmt: skip
        assert released["at"].endswith("+00:00")

        await bot.submit(message("/human", "k3"))
        assert await bot.drain(30)
        cid = await api.conversation_id()
        release = f"/v1/conversations/{cid}/release"
        assert (await api.call("POST", release, token=ANA))[0] == 200
        await _arrived(agents_tool, 4)
        assert received[3]["type"] == "handoff_released"
        assert (received[3]["by"], received[3]["agent"]) == ("agent", "Ana")

        await bot.submit(message("/human", "k4"))
        assert await bot.drain(30)
        assert (await api.call("POST", release))[0] == 200  # the shared token
        await _arrived(agents_tool, 6)
        assert (received[5]["by"], received[5]["agent"]) == ("agent", None)
        # A release that releases nothing tells nobody.
        assert (await api.call("POST", release))[0] == 409
        await asyncio.sleep(0.2)
        assert len(received) == 6


async def test_the_tool_hears_a_conversation_move_once(
    api_bot: ApiBot,
    agents_tool: Tool,  # noqa: F811
) -> None:
    base, received, _ = agents_tool
    async with api_bot(webhook_url=f"{base}/hook", agents={"Ana": ANA}) as api:
        bot = api.bot
        await bot.submit(message("/human", "k1", conversation="old"))
        assert await bot.drain(30)
        await _arrived(agents_tool, 1)
        assert await bot.move_conversation("test", "old", "new") is True
        assert await bot.move_conversation("test", "old", "new") is False  # no second event
        await _arrived(agents_tool, 2)
        moved = received[1]
        assert moved == {
            "type": "conversation_moved", "channel": "test", "conversation_key": "new",
            "old_key": "old", "at": moved["at"],
        }  # fmt: skip
        (waiting,) = (await api.call("GET", "/v1/handoffs"))[1]["conversations"]
        assert (waiting["key"], waiting["id"]) == ("new", await api.conversation_id("new"))
        await asyncio.sleep(0.2)
        assert len(received) == 2
