"""The agent API reads bodies as every botkit server does (docs/web.md): a compressed
body or one that is not ``application/json`` is refused with 415, and only standard
JSON is read (``NaN`` and ``Infinity`` are not JSON). Real bot, real HTTP client."""

from __future__ import annotations

import codecs
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
from core_helpers import TOKEN, ApiBot, recorder
from multidict import CIMultiDict

from botkit.handoff._body import MAX_BODY
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


async def _chunked(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _twice(first: str, second: str) -> CIMultiDict[str]:
    """Two ``Content-Encoding`` headers (as a proxy that adds its own may send)."""
    return CIMultiDict([*JSON.items(), ("Content-Encoding", first), ("Content-Encoding", second)])


JSON = {"Content-Type": "application/json"}
GZ = gzip.compress(BODY)
# The same hostile bodies as the web channel's (tests/connectors/web/test_web_bodies.py):
# both servers read with botkit.http_json, each answering in its own error format.
HOSTILE: dict[str, tuple[Any, Any, int, str]] = {
    # name: (data, headers, status, words in "error")
    "2 MB body": (b'{"text": "' + b"x" * 2_000_000 + b'", "agent": "Ana"}', JSON, 413,
                  "Too Large"),
    "gzip body": (GZ, {**JSON, "Content-Encoding": "gzip"}, 415, "compressed"),
    "spaced gzip": (GZ, {**JSON, "Content-Encoding": " gzip "}, 415, "compressed"),
    "identity, gzip": (GZ, {**JSON, "Content-Encoding": "identity, gzip"}, 415, "compressed"),
    "gzip in a second header": (GZ, _twice("identity", "gzip"), 415, "compressed"),
    "NaN": (b'{"text": NaN, "agent": "Ana"}', JSON, 400, "JSON"),
    "a JSON array": (b'[{"text": "hi", "agent": "Ana"}]', JSON, 400, "JSON object"),
    "invalid UTF-8": (b'{"text": "\xff\xfe", "agent": "Ana"}', JSON, 400, "JSON"),
    "UTF-16": (codecs.BOM_UTF16_LE + BODY.decode().encode("utf-16-le"), JSON, 400, "JSON"),
    "a surrogate encoded as UTF-8": (b'{"text": "\xed\xa0\x80", "agent": "Ana"}', JSON, 400,
                                     "JSON"),
    "chunked, no Content-Length, over the limit": (_chunked, JSON, 413, "Too Large"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("route", ["messages", "release"])
async def test_hostile_bodies_are_refused_in_the_api_error_format(
    api_bot: ApiBot, case: str, route: str
) -> None:
    data, headers, status, words = HOSTILE[case]
    async with api_bot() as api:
        cid = await api.handed_off()
        before = len(recorder(api.bot).replies)
        sent = data(2_000_000) if callable(data) else data
        # Not api.call: its dict of headers would keep one Content-Encoding of two.
        all_headers = CIMultiDict(headers)
        all_headers["Authorization"] = f"Bearer {TOKEN}"
        url = f"{api.base}/v1/conversations/{cid}/{route}"
        async with api.session.post(url, data=sent, headers=all_headers) as response:
            got, body = response.status, await response.json()
        assert got == status, body
        assert set(body) == {"error"} and words in body["error"], body
        assert len(recorder(api.bot).replies) == before
        conversation = await api.bot.store.conversation_by_id(cid)
        assert conversation.status == ConversationStatus.WAITING_HUMAN


async def test_bodies_up_to_the_limit_are_read_with_or_without_a_length(
    api_bot: ApiBot,
) -> None:
    """A body of exactly the limit is read (its text is then too long: 422), declared or
    chunked; one byte more is 413; a UTF-8 byte order mark and a key given twice (the last
    counts) are read as before."""

    def exactly(size: int) -> bytes:
        head, tail = b'{"agent": "Ana", "text": "', b'"}'
        return head + b"x" * (size - len(head) - len(tail)) + tail

    async def chunks(raw: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 10_000):
            yield raw[start : start + 10_000]

    async with api_bot() as api:
        cid = await api.handed_off()
        path = f"/v1/conversations/{cid}/messages"
        for data in (exactly(MAX_BODY), chunks(exactly(MAX_BODY))):
            got, body = await api.call("POST", path, data=data, headers=JSON)
            assert (got, body.get("kind")) == (422, "invalid"), body
        got, body = await api.call("POST", path, data=chunks(exactly(MAX_BODY + 1)), headers=JSON)
        assert got == 413, body
        twice = codecs.BOM_UTF8 + b'{"text": "x", "text": "Hi, Ana here.", "agent": "Ana"}'
        got, body = await api.call("POST", path, data=twice, headers=JSON)
        assert got == 201, body
        assert body["message"]["text"] == "Hi, Ana here."
