"""The agent API reads bodies as every botkit server does (docs/web.md): a compressed
body or one that is not ``application/json`` is refused with 415, and only standard
JSON is read (``NaN`` and ``Infinity`` are not JSON). Real bot, real HTTP client."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from core_helpers import ApiBot, recorder

from botkit.store import ConversationStatus

BODY = b'{"text": "Hi, Ana here.", "agent": "Ana"}'


@pytest.mark.parametrize(
    ("kw", "status", "words"),
    [
        ({"data": gzip.compress(BODY), "headers": {"Content-Type": "application/json",
                                                 "Content-Encoding": "gzip"}}, 415, "compressed"),
        ({"data": BODY, "headers": {"Content-Type": "application/json",
                                    "Content-Encoding": "br"}}, 415, "compressed"),
        ({"data": BODY, "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
        ({"data": BODY}, 415, "application/json"),  # application/octet-stream
        ({"data": b'{"text": NaN, "agent": "Ana"}',
          "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"data": b'{"text": "hi", "agent": "Ana", "n": -Infinity}',
          "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
    ],
)  # fmt: skip
async def test_bodies_other_than_plain_json_are_refused(
    api_bot: ApiBot, kw: dict[str, Any], status: int, words: str
) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        before = len(recorder(api.bot).replies)
        got, body = await api.call("POST", f"/v1/conversations/{cid}/messages", **kw)
        assert got == status, body
        assert words in body["error"]
        assert len(recorder(api.bot).replies) == before
        conversation = await api.bot.store.conversation_by_id(cid)
        assert conversation.status == ConversationStatus.WAITING_HUMAN
        # The same body as JSON, with a charset, is taken.
        got, body = await api.call(
            "POST", f"/v1/conversations/{cid}/messages", data=BODY,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )  # fmt: skip
        assert got == 201, body
