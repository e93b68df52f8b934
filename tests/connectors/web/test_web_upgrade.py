"""Upgrading (review 2, #3): a JWT sent while JWT sign-in is off is logged (throttled,
never the token), and tokens keyed the old way stay refused: no transition window."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from web_helpers import ORIGIN, SECRET, SITE_KEY, MakeWeb, WebHarness

from connectors.web import IdentityError
from connectors.web._throttle import ThrottledWarning
from connectors.web.identity import IdentityService

_LOGGER = "connectors.web.identity"
_OLD_LABEL = b"botkit-web/session-token/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(secret: str, sub: str = "c42", exp: float | None = None) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": sub, "exp": exp or int(time.time()) + 600}).encode())
    sig = _b64(hmac.new(secret.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest())
    return f"{head}.{claims}.{sig}"


def _jwt_off_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == _LOGGER and r.levelno == logging.WARNING and "user_token" in r.getMessage()
    ]  # fmt: skip


def _assert_no_token(caplog: pytest.LogCaptureFixture, token: str) -> None:
    for part in (token, *token.split(".")):
        assert part not in caplog.text
        for record in caplog.records:
            assert part not in record.getMessage() and part not in repr(record.args)


# -- (a) JWT sign-in off: one warning a minute -----------------------------------------------


def test_jwt_while_sign_in_is_off_logs_a_throttled_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1_700_000_000.0]
    ids = IdentityService(
        site_key=SITE_KEY, site_secret=SECRET, session_ttl_s=3600,
        user_token_max_ttl_s=3600, require_identity=False, clock=lambda: now[0],
    )  # fmt: skip
    token = _jwt(SECRET, exp=now[0] + 600)  # signed as the previous docs said
    caplog.set_level(logging.INFO)

    def refuse() -> None:
        with pytest.raises(IdentityError) as err:
            ids.resolve(site_key=SITE_KEY, user_token=token)
        assert err.value.code == "identity_unsupported"

    for _ in range(3):
        refuse()
    (first,) = _jwt_off_warnings(caplog)
    text = first.getMessage()
    for needed in ("JWT sign-in is off", "user_token_secret is not set", "not site_secret",
                   "re-sign"):  # fmt: skip
        assert needed in text, text
    now[0] += 59.0
    refuse()
    assert len(_jwt_off_warnings(caplog)) == 1  # still within the minute
    now[0] += 2.0
    refuse()
    warnings = _jwt_off_warnings(caplog)
    assert len(warnings) == 2
    assert warnings[1].getMessage().endswith("(3 more since the last warning)")
    _assert_no_token(caplog, token)


async def test_jwt_while_sign_in_is_off_is_logged_once_over_socket_and_http(
    make_web: MakeWeb, caplog: pytest.LogCaptureFixture
) -> None:
    web = await make_web(user_token_secret=None)  # a config from before the upgrade
    token = _jwt(SECRET)
    caplog.set_level(logging.INFO)
    for _ in range(2):
        v = await web.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "user_token": token})
        frame = await v.next()
        assert frame.get("code") == "identity_unsupported", frame
        assert await v.wait_closed() == 4401
        resp = await web.client.post(
            "/api/session",
            json={"site_key": SITE_KEY, "user_token": token},
            headers={"Origin": ORIGIN},
        )
        assert resp.status == 401 and (await resp.json())["error"] == "identity_unsupported"
    assert len(_jwt_off_warnings(caplog)) == 1
    _assert_no_token(caplog, token)


async def test_no_jwt_warning_where_jwt_sign_in_is_on(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    v = await web.open()  # a JWT under the wrong key: refused, but sign-in is on
    await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "user_token": _jwt(SECRET)})
    frame = await v.next()
    assert frame.get("code") == "invalid_identity", frame
    assert await web.visitor()  # and anonymous visitors log nothing of the kind
    assert _jwt_off_warnings(caplog) == []


def test_throttled_warning_logs_again_when_the_clock_goes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    warning = ThrottledWarning(logging.getLogger("t"), "m", interval_s=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    assert warning.warn() and not warning.warn()
    now[0] = 50.0  # stepped back: a stale stamp must not silence it for a long time
    assert warning.warn()
    assert [r.getMessage() for r in caplog.records] == ["m", "m (1 more since the last warning)"]


# -- (b) no transition for tokens signed with the old key ------------------------------------


def _old_token(key: bytes, kind: str, subject: str) -> str:
    body = f"v1.{kind}.{_b64(subject.encode())}.{int(time.time()) + 86_400}"
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


async def test_tokens_signed_with_the_old_key_are_refused(web: WebHarness) -> None:
    """The old key was HMAC(site_secret, label): the user_hash of a user named after the
    label. Its tokens cannot be told from forgeries, so none is accepted, "s" included:
    an anonymous conversation's id travels in hand-off webhooks and logs."""
    old_key = hmac.new(SECRET.encode(), _OLD_LABEL, hashlib.sha256).digest()
    victim = await web.visitor()
    await victim.send("my address is 1 Main St", "c1")
    await victim.until(lambda f: f.get("seq") == 2)
    assert victim.token is not None
    subject = base64.urlsafe_b64decode(victim.token.split(".")[2] + "==").decode()
    for token in (_old_token(old_key, "s", subject), _old_token(old_key, "u", "customer-1")):
        v = await web.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": token})
        frame = await v.next()
        assert frame.get("code") == "invalid_token", frame
        assert await v.wait_closed() == 4401
        resp = await web.client.get("/api/messages", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_token"
