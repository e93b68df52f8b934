"""Refusals an operator must see (review2-operator #6): a foreign origin, a bad user_hash
and the per-IP socket caps each leave a WARNING on ``connectors.web``, at most once a
minute per reason, with the origin or IP but never a hash, token or secret."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from web_helpers import JWT_SECRET, ORIGIN, SECRET, SITE_KEY, MakeWeb, WebHarness

from connectors.web._throttle import RefusalWarnings

_LOGGER = "connectors.web"
_BAD_HASH = "ab" * 32


def _warnings(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == _LOGGER and r.levelno == logging.WARNING and needle in r.getMessage()
    ]


def _assert_no_secrets(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in record.getMessage()


async def test_foreign_origin_is_logged_once_with_the_origin(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    www = "https://www.shop.example"
    for _ in range(3):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await web.client.ws_connect("/ws", headers={"Origin": www})
        assert info.value.status == 403
    resp = await web.client.post("/api/session", json={"site_key": SITE_KEY},
                                 headers={"Origin": www})  # fmt: skip
    assert resp.status == 403
    (line,) = _warnings(caplog, "origin")
    assert www in line and "allowed_origins" in line
    # Matching is exact: the line must not suggest a www. variant of an origin matches.
    assert "with or without www" not in line and "are two origins" in line


async def test_forged_origin_cannot_forge_log_lines(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = await web.client.post(
        "/api/session", json={"site_key": SITE_KEY},
        headers={"Origin": "https://evil.example\u2028" + "x" * 5000},
    )  # fmt: skip
    assert resp.status == 403
    (line,) = _warnings(caplog, "origin")
    assert "\u2028" not in line and "\n" not in line
    assert len(line) < 500


async def test_bad_user_hash_logs_the_reason_code_only(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(2):
        v = await web.open()
        hello = {"type": "hello", "site_key": SITE_KEY, "user_id": "customer-42",
                 "user_hash": _BAD_HASH}  # fmt: skip
        await v.ws.send_json(hello)
        frame = await v.next()
        assert frame.get("code") == "invalid_identity", frame
        assert await v.wait_closed() == 4401
    resp = await web.client.post(
        "/api/session",
        json={"site_key": SITE_KEY, "user_id": "customer-42", "user_hash": _BAD_HASH},
        headers={"Origin": ORIGIN},
    )
    assert resp.status == 401
    (line,) = _warnings(caplog, "identity")
    assert "invalid_identity" in line
    _assert_no_secrets(caplog, _BAD_HASH, "customer-42", SECRET)


async def test_socket_caps_per_ip_are_logged_with_the_ip(
    make_web: MakeWeb, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    web = await make_web(max_connections_per_ip=2)
    await web.visitor()
    await web.visitor()
    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await web.client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert info.value.status == 429
    (line,) = _warnings(caplog, "max_connections_per_ip")
    assert "127.0.0.1" in line and "trust_forwarded_for" in line

    web = await make_web(connect_rate={"rate": 0.1, "burst": 1})
    await web.visitor()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await web.client.ws_connect("/ws", headers={"Origin": ORIGIN})
    resp = await web.client.post("/api/session", json={"site_key": SITE_KEY},
                                 headers={"Origin": ORIGIN})  # fmt: skip
    assert resp.status == 429
    (line,) = _warnings(caplog, "connect_rate")
    assert "127.0.0.1" in line


def test_refusals_are_throttled_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    refusals = RefusalWarnings(logging.getLogger(_LOGGER), clock=lambda: now[0])
    caplog.set_level(logging.INFO)
    for _ in range(5):
        refusals.origin("https://a.example")
        refusals.too_many_sockets("10.0.0.1")
        refusals.identity("invalid_identity")
        refusals.identity("unknown_site")
        refusals.identity("expired_token")  # the normal end of a visit: never logged
    assert len(caplog.records) == 4
    now[0] += 59.0
    refusals.origin("https://b.example")
    assert len(caplog.records) == 4
    now[0] += 2.0
    refusals.origin("https://b.example")
    assert len(caplog.records) == 5
    last = caplog.records[-1].getMessage()
    assert "https://b.example" in last and last.endswith("(5 more since the last warning)")
    assert "expired_token" not in caplog.text


async def test_a_wrong_site_key_is_logged_as_such_with_what_the_page_sent(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # An anonymous visitor: no user_hash or user_token is involved, so the line must not
    # send the operator to check them; nor does it show the configured site_key.
    caplog.set_level(logging.INFO)
    resp = await web.client.post("/api/session", json={"site_key": "x"},
                                 headers={"Origin": ORIGIN})  # fmt: skip
    assert resp.status == 401 and (await resp.json())["error"] == "unknown_site"
    (line,) = _warnings(caplog, "site_key")
    assert "'x'" in line and "[connectors.web] site_key" in line
    assert "user_hash" not in line and "user_token" not in line
    assert repr(SITE_KEY) not in line


@pytest.mark.parametrize(
    ("sent", "shown_as"),
    [
        (None, "no site_key"),
        (42, "not a string"),
        ("shop\n[ERROR] forged" + "y" * 500, "not a site_key"),
        ("k" * 70, "not a site_key"),
        (SECRET, "a secret"),
        (JWT_SECRET, "a secret"),
    ],
)
async def test_a_wrong_site_key_is_shown_only_when_safe(
    web: WebHarness, caplog: pytest.LogCaptureFixture, sent: object, shown_as: str
) -> None:
    caplog.set_level(logging.INFO)
    v = await web.open()
    await v.ws.send_json({"type": "hello", "site_key": sent})
    assert (await v.next()).get("code") == "unknown_site"
    (line,) = _warnings(caplog, "site_key")
    assert shown_as in line, line
    assert "\n" not in line and "forged" not in line and "k" * 65 not in line
    _assert_no_secrets(caplog, SECRET, JWT_SECRET)
