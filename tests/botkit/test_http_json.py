"""``botkit.http_json``: standard JSON in UTF-8 only, and the body reader's header and
size checks on requests built here (hostile bodies through both servers, each in its
error format: test_agent_api_bodies.py and tests/connectors/web/test_web_bodies.py)."""

from __future__ import annotations

import asyncio
import codecs
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from botkit.http_json import JsonBodyError, loads_json, read_json_object


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        '{"n": Infinity}',
        "[-Infinity]",
        b'{"t": "\xff"}',  # not UTF-8
        b'{"t": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 (json.loads takes it)
        codecs.BOM_UTF16_LE + '{"t": 1}'.encode("utf-16-le"),  # json.loads guesses UTF-16
        '{"t": 1',
    ],
)
def test_what_is_not_standard_json_in_utf8_is_refused(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads_json(text)


def test_standard_json_is_read_as_json_loads_reads_it() -> None:
    assert loads_json('{"a": 1, "a": 2, "f": 1.5e3}') == {"a": 2, "f": 1500.0}  # last wins
    assert loads_json(codecs.BOM_UTF8 + '{"é": "ü"}'.encode()) == {"é": "ü"}
    assert loads_json('"\\ud800"') == "\ud800"  # an escape is JSON text, as before
    with pytest.raises(RecursionError):
        loads_json("[" * 100_000)


def _request(headers: list[tuple[str, str]], body: bytes) -> web.Request:
    """A request as the parser hands it over, with ``body`` arrived, header values as
    given (a parser strips spaces round them; a proxy before it may not have)."""
    stream = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    heads = CIMultiDict([("Content-Type", "application/json"), *headers])
    return make_mocked_request("POST", "/", headers=heads, payload=stream)


@pytest.mark.parametrize(
    ("codings", "compressed"),
    [
        ([], False),
        ([" Identity "], False),
        (["identity, "], False),  # an empty list element is no coding (RFC 9110 5.6.1)
        (["identity", "IDENTITY"], False),
        (["gzip"], True),
        (["\tGZip "], True),
        (["identity, br"], True),
        (["identity", "deflate"], True),  # a second header counts too
        (["x-gzip"], True),
    ],
)
async def test_any_content_coding_but_identity_is_refused(
    codings: list[str], compressed: bool
) -> None:
    request = _request([("Content-Encoding", c) for c in codings], b'{"a": 1}')
    if not compressed:
        assert await read_json_object(request, max_bytes=100) == {"a": 1}
        return
    with pytest.raises(JsonBodyError) as info:
        await read_json_object(request, max_bytes=100)
    assert (info.value.reason, info.value.status) == ("compressed", 415)


async def test_the_bound_is_counted_as_the_body_arrives() -> None:
    """Without a Content-Length (chunked), and whatever the request's client_max_size."""
    assert await read_json_object(_request([], b'{"a": "xx"}'), max_bytes=11) == {"a": "xx"}
    with pytest.raises(JsonBodyError) as info:
        await read_json_object(_request([], b'{"a": "xxx"}'), max_bytes=11)
    assert (info.value.reason, info.value.status) == ("too_large", 413)
    bodiless = make_mocked_request("POST", "/")  # no body at all: optional reads {}
    assert await read_json_object(bodiless, max_bytes=11, optional=True) == {}
