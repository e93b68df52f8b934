"""Hostile JSON bodies on the web channel's HTTP API (``botkit.http_json``, read as the
agent API reads them: tests/botkit/test_agent_api_bodies.py), each refused in this API's
documented error format (docs/web.md, "HTTP API"): ``{"error": code, "message": text}``
with its status, and nothing stored. Real app, real HTTP client."""

from __future__ import annotations

import asyncio
import codecs
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from web_helpers import ORIGIN, MakeWeb

from connectors.web._http import BadRequest, read_json

LIMIT = 4096  # max_message_bytes here
JSON = {"Content-Type": "application/json"}
OK = b'{"client_id": "c1", "text": "hello"}'
GZ = gzip.compress(OK)


async def _chunked(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _twice(first: str, second: str) -> CIMultiDict[str]:
    """Two ``Content-Encoding`` headers (as a proxy that adds its own may send)."""
    return CIMultiDict([*JSON.items(), ("Content-Encoding", first), ("Content-Encoding", second)])


CASES: dict[str, tuple[Any, Any, int, str]] = {
    # name: (data, headers, status, error code)
    "2 MB body": (b'{"text": "' + b"x" * 2_000_000 + b'"}', JSON, 413, "too_large"),
    "gzip body": (GZ, {**JSON, "Content-Encoding": "gzip"}, 415,
                  "unsupported_encoding"),
    "spaced gzip": (GZ, {**JSON, "Content-Encoding": " gzip "}, 415, "unsupported_encoding"),
    "identity, gzip": (GZ, {**JSON, "Content-Encoding": "identity, gzip"}, 415,
                       "unsupported_encoding"),
    "gzip in a second header": (GZ, _twice("identity", "gzip"), 415, "unsupported_encoding"),
    "not application/json": (OK, {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    "NaN": (b'{"client_id": "c1", "text": NaN}', JSON, 400, "bad_json"),
    "Infinity": (b'{"client_id": "c1", "text": "hi", "n": Infinity}', JSON, 400, "bad_json"),
    "a JSON array": (b'[{"client_id": "c1", "text": "hello"}]', JSON, 400, "bad_json"),
    "invalid UTF-8": (b'{"client_id": "c1", "text": "\xff\xfe"}', JSON, 400, "bad_json"),
    "UTF-16": (codecs.BOM_UTF16_LE + OK.decode().encode("utf-16-le"), JSON, 400, "bad_json"),
    "a surrogate encoded as UTF-8": (b'{"client_id": "c1", "text": "\xed\xa0\x80"}', JSON, 400,
                                     "bad_json"),
    "chunked, no Content-Length, over the limit": (_chunked, JSON, 413, "too_large"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_bodies_are_refused_in_the_api_error_format(
    make_web: MakeWeb, case: str
) -> None:
    data, headers, status, code = CASES[case]
    web = await make_web(max_message_bytes=LIMIT)
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    sent = data(2_000_000) if callable(data) else data
    all_headers = CIMultiDict(headers)
    all_headers.extend(auth)
    resp = await web.client.post("/api/messages", data=sent, headers=all_headers)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["error"] == code, body
    assert set(body) == {"error", "message"} and isinstance(body["message"], str)
    # Nothing was taken: the history is empty, and the same message as plain JSON is.
    resp = await web.client.get("/api/messages", headers=auth)
    assert (await resp.json())["messages"] == []
    resp = await web.client.post("/api/messages", data=OK, headers={**JSON, **auth})
    assert resp.status == 201, await resp.text()


async def test_bodies_up_to_the_limit_are_taken_with_or_without_a_length(
    make_web: MakeWeb,
) -> None:
    """Exactly ``max_message_bytes`` is taken, declared or chunked; a UTF-8 byte order mark
    and a key given twice (the last counts) are read as before; one byte more is 413."""
    web = await make_web(max_message_bytes=LIMIT)
    token = await web.session()
    auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN, **JSON}

    def exactly(client_id: str, size: int) -> bytes:
        head = json.dumps({"client_id": client_id, "text": ""})[:-2].encode()
        return head + b"x" * (size - len(head) - 2) + b'"}'

    async def chunks(raw: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 1000):
            yield raw[start : start + 1000]

    full = exactly("full", LIMIT)
    assert len(full) == LIMIT
    resp = await web.client.post("/api/messages", data=full, headers=auth)
    assert resp.status == 201, await resp.text()
    resp = await web.client.post("/api/messages", data=chunks(exactly("chunked", LIMIT)),
                                 headers=auth)  # fmt: skip
    assert resp.status == 201, await resp.text()
    resp = await web.client.post("/api/messages", data=chunks(exactly("over", LIMIT + 1)),
                                 headers=auth)  # fmt: skip
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    bom = codecs.BOM_UTF8 + b'{"client_id": "x", "client_id": "bom", "text": "hi"}'
    resp = await web.client.post("/api/messages", data=bom, headers=auth)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["client_id"] == "bom"


@pytest.mark.parametrize(("coding", "taken"), [(" identity ", True), ("Identity,", True),
                                               (" gzip ", False)])  # fmt: skip
async def test_content_encoding_is_read_spaces_and_case_aside(coding: str, taken: bool) -> None:
    """Header values as a proxy may pass them on (aiohttp's own parser strips the spaces
    round a value; the agent API already stripped them itself)."""
    stream = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(OK)
    stream.feed_eof()
    headers = {**JSON, "Content-Encoding": coding}
    request = make_mocked_request("POST", "/api/messages", headers=headers, payload=stream)
    if taken:
        assert await read_json(request, LIMIT) == json.loads(OK)
        return
    with pytest.raises(BadRequest) as info:
        await read_json(request, LIMIT)
    assert (info.value.status, info.value.code) == (415, "unsupported_encoding")
