"""An agent's send stores its message under the takeover's ``status_seq`` as well as its
time (``append_outbound(held_seq=...)``): which hand-off the message belongs to does not
rest on the hosts' clocks alone (tests/botkit/store/test_store_held_seq.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from core_helpers import Api, RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings

ANA = "ana-own-token-0123456789abcdef"


async def test_the_agents_message_is_held_by_the_takeovers_seq(
    agent_settings: Callable[..., Settings],
) -> None:
    async with Bot(agent_settings(agents={"Ana": ANA})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        async with aiohttp.ClientSession() as session:
            api = Api(bot, session)
            cid = await api.handed_off()
            store = bot.store
            real = store.append_outbound
            held: list[dict[str, Any]] = []

            async def spy(conversation_id: int, text: str, **kw: Any) -> Any:
                if kw.get("agent") == "Ana":
                    held.append(kw)
                return await real(conversation_id, text, **kw)

            store.append_outbound = spy  # type: ignore[method-assign]
            status, body = await api.call(
                "POST", f"/v1/conversations/{cid}/messages", token=ANA, json={"text": "Hi."}
            )
            assert status in (200, 201), body
            now = await store.conversation_by_id(cid)
    (kw,) = held
    assert kw["held_seq"] == now.status_seq and kw["held_since"] == now.status_since
