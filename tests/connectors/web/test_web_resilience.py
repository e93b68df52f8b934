"""Hostile text and a failing store: lone surrogates, deeply nested JSON, store outages
and unexpected exceptions answer cleanly (JSON errors, close codes), never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from web_helpers import ORIGIN, SITE_KEY, WebHarness, reply_to

from botkit.errors import StoreError
from botkit.events import OutboundReply
from connectors.web._frames import text_frames

_JSON = {"Origin": ORIGIN, "Content-Type": "application/json"}


# -- #8a: what the sockets are shown is the text as stored ---------------------------------


async def test_lone_surrogate_message_reaches_every_tab_sanitized(web: WebHarness) -> None:
    a = await web.visitor()
    b = await web.visitor(token=a.token)  # a second tab of the same visitor
    raw = {"type": "message", "client_id": "m1", "text": "hi \ud83d there\r\nx\x1b[31m"}
    await a.ws.send_str(json.dumps(raw))  # a valid JSON escape: "\\ud83d"
    ack = await a.until(lambda f: f["type"] in ("ack", "error"))
    assert ack["type"] == "ack"
    for v in (a, b):  # both sockets stay alive and see the reply
        await v.until(reply_to(1))
    stored = (await web.history(str(a.token)))[0]["text"]
    assert stored == "hi  there\nx[31m"
    live = [f["text"] for v in (a, b) for f in v.stored() if f["direction"] == "in"]
    assert live == [stored, stored]


async def test_lone_surrogate_in_http_message_does_not_kill_the_widget(web: WebHarness) -> None:
    v = await web.visitor()
    resp = await web.client.post(
        "/api/messages",
        data=b'{"client_id":"h1","text":"x \\udc00 y"}',
        headers={**_JSON, "Authorization": f"Bearer {v.token}"},
    )
    assert resp.status == 201, await resp.text()
    frame = await v.until(lambda f: f["type"] == "message")
    assert (frame["seq"], frame["text"], frame["client_id"]) == (1, "x  y", "h1")
    await v.until(reply_to(1))


def test_frames_of_unencodable_text_do_not_raise() -> None:
    assert text_frames(["a\ud800b"]) == bytes((0x81, 3)) + b"a?b"


async def test_notice_with_a_lone_surrogate_does_not_kill_the_socket(web: WebHarness) -> None:
    v = await web.visitor()
    key = web.connector.service.identity.verify_token(v.token).conversation_key
    await web.connector.send(OutboundReply(channel="web", conversation_key=key, text="x\udc00"))
    frame = await v.until(lambda f: f["type"] == "message")
    assert (frame["text"], frame["seq"]) == ("x?", None)
    await v.ws.send_json({"type": "ping"})
    assert (await v.next())["type"] == "pong"


# -- #9: JSON nested too deeply ------------------------------------------------------------


async def test_deeply_nested_hello_is_a_bad_hello(web: WebHarness) -> None:
    v = await web.open()
    await v.ws.send_str("[" * 15_000)  # fits max_message_bytes; json raises RecursionError
    assert await v.wait_closed() == 4400
    assert v.frames[-1]["code"] == "bad_hello"


async def test_deeply_nested_frame_is_a_bad_frame_error(web: WebHarness) -> None:
    v = await web.visitor()
    await v.ws.send_str('{"a":' * 2500 + "1" + "}" * 2500)
    frame = await v.next()
    assert (frame["type"], frame["code"]) == ("error", "bad_frame")
    await v.ws.send_json({"type": "ping"})  # the socket lives on
    assert (await v.next())["type"] == "pong"


async def test_deeply_nested_http_body_is_json_400(web: WebHarness) -> None:
    token = await web.session()
    for path, auth in (
        ("/api/session", {}),
        ("/api/messages", {"Authorization": f"Bearer {token}"}),
    ):
        resp = await web.client.post(path, data=b"[" * 15_000, headers={**_JSON, **auth})
        assert (resp.status, resp.content_type) == (400, "application/json"), path
        assert (await resp.json())["error"] == "bad_json"


# -- #10: the store fails, or something unexpected does ------------------------------------


def _break_history(web: WebHarness, exc: Exception) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise exc

    web.connector.service.history = down  # type: ignore[method-assign]


async def test_history_during_store_outage_is_json_503_with_cors(web: WebHarness) -> None:
    token = await web.session()
    _break_history(web, StoreError("database is unreachable"))
    for wait in (0, 1):
        resp = await web.client.get(
            "/api/messages",
            params={"wait": wait},
            headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
        )
        assert (resp.status, resp.content_type) == (503, "application/json")
        body = await resp.json()
        assert (body["error"], body["retry_after"]) == ("unavailable", 5.0)
        assert resp.headers["Retry-After"] == "5"
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_submit_during_store_outage_is_503_with_retry_after(web: WebHarness) -> None:
    token = await web.session()

    async def down(message: Any) -> Any:
        raise StoreError("database is unreachable")

    web.connector.service.core.submit = down  # type: ignore[method-assign]
    resp = await web.client.post(
        "/api/messages",
        json={"client_id": "m1", "text": "hi"},
        headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
    )
    body = await resp.json()
    # As a 429's: the wait in the header (whole seconds) and in the body.
    assert (resp.status, body["error"], body["retry_after"]) == (503, "unavailable", 5.0)
    assert resp.headers["Retry-After"] == "5"


async def test_unexpected_exception_is_json_500_with_cors(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    token = await web.session()
    _break_history(web, RuntimeError("a bug"))
    resp = await web.client.get(
        "/api/messages", headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    )
    assert (resp.status, resp.content_type) == (500, "application/json")
    assert (await resp.json())["error"] == "internal_error"
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "a bug" not in await resp.text()
    assert any("a bug" in (r.exc_text or "") for r in caplog.records)  # logged with traceback


async def test_store_outage_on_the_socket_closes_1013(web: WebHarness) -> None:
    first = await web.visitor()
    await first.send("hi", "c1")
    await first.until(reply_to(1))
    svc = web.connector.service

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("database is unreachable")

    # The hello's read of the conversation's last seq fails: try again later.
    svc.last_seq = down  # type: ignore[method-assign]
    v = await web.open()
    await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": first.token})
    assert (await v.next())["code"] == "unavailable"
    assert await v.wait_closed() == 1013
    # The history replay fails after the welcome: the same.
    del svc.last_seq
    _break_history(web, StoreError("database is unreachable"))
    v = await web.visitor(token=first.token)
    assert await v.wait_closed() == 1013
