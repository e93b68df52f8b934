"""Identity review fixes: one key per scheme, what a "u" token alone is worth, JWT caps,
and identity fields that cannot be encoded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from aiohttp import WSMsgType
from pydantic import ValidationError
from web_helpers import JWT_SECRET, ORIGIN, SECRET, SITE_KEY, MakeWeb, WebHarness, reply_to

from connectors.web import IdentityError, WebConnector, user_hash
from connectors.web.identity import IdentityService


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(secret: str, claims: dict[str, object]) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _service(**kw: Any) -> IdentityService:
    args: dict[str, Any] = {
        "site_key": SITE_KEY,
        "site_secret": SECRET,
        "session_ttl_s": 30 * 86_400,
        "user_token_max_ttl_s": 3600,
        "require_identity": False,
    }
    return IdentityService(**{**args, **kw})


# -- #2: the user hash and the JWT never share a key ---------------------------------------


@pytest.mark.parametrize("jwt_secret", [None, JWT_SECRET])
def test_user_hash_cannot_be_replayed_as_a_jwt_signature(jwt_secret: str | None) -> None:
    """A user id chosen to equal a JWT signing input: the hash the site prints for it
    must not be a JWT signature (whether JWT sign-in is off or on its own key)."""
    ids = _service(user_token_secret=jwt_secret)
    head = _b64(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
    claims = {"sub": "victim-1", "exp": int(time.time()) + 3000}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    chosen_user_id = f"{head}.{body}"  # a plausible username of [A-Za-z0-9_.-]
    printed = user_hash(chosen_user_id, SECRET)  # what the site shows the attacker
    forged = f"{chosen_user_id}.{_b64(bytes.fromhex(printed))}"
    with pytest.raises(IdentityError):
        ids.resolve(site_key=SITE_KEY, user_token=forged)


@pytest.mark.parametrize("label", ["botkit-web/session-token/v1", "botkit-web/session-token/v2"])
def test_user_hash_never_reveals_the_session_token_key(label: str) -> None:
    """The session-token key is not HMAC(site_secret, label): else a user registering
    the label as their id would be shown the key and could forge any visitor's token."""
    ids = _service()
    key = bytes.fromhex(user_hash(label, SECRET))
    body = f"v1.u.{_b64(b'victim-1')}.{int(time.time()) + 3600}"
    forged = f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"
    with pytest.raises(IdentityError):
        ids.verify_token(forged)


def test_one_secret_for_both_schemes_is_refused() -> None:
    base = {"allowed_origins": [ORIGIN], "site_secret": SECRET}
    with pytest.raises(ValidationError, match="differ"):
        WebConnector.parse_config({**base, "user_token_secret": SECRET})
    with pytest.raises(ValidationError, match="16"):
        WebConnector.parse_config({**base, "user_token_secret": "short"})
    with pytest.raises(ValueError, match="differ"):
        _service(user_token_secret=SECRET)
    # A JWT-only site may require identity; the secret never prints.
    cfg = WebConnector.parse_config(
        {"allowed_origins": [ORIGIN], "user_token_secret": JWT_SECRET, "require_identity": True}
    )
    assert JWT_SECRET not in repr(cfg) and JWT_SECRET not in str(cfg.model_dump())


async def test_user_token_is_refused_unless_enabled(make_web: MakeWeb) -> None:
    web = await make_web(user_token_secret=None)
    for secret in (SECRET, JWT_SECRET):
        token = _jwt(secret, {"sub": "c1", "exp": int(time.time()) + 600})
        v = await web.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "user_token": token})
        assert (await v.next())["code"] == "identity_unsupported"
        assert await v.wait_closed() == 4401
        resp = await web.client.post(
            "/api/session",
            json={"site_key": SITE_KEY, "user_token": token},
            headers={"Origin": ORIGIN},
        )
        assert resp.status == 401 and resp.content_type == "application/json"
        assert (await resp.json())["error"] == "identity_unsupported"


async def test_user_token_signed_with_its_own_secret_signs_in(web: WebHarness) -> None:
    token = _jwt(JWT_SECRET, {"sub": "c1", "exp": int(time.time()) + 600})
    v = await web.visitor(user_token=token)
    assert v.frames[0]["identity"] == "user"
    wrong = _jwt(SECRET, {"sub": "c1", "exp": int(time.time()) + 600})
    bad = await web.open()
    await bad.ws.send_json({"type": "hello", "site_key": SITE_KEY, "user_token": wrong})
    assert await bad.wait_closed() == 4401


# -- #1: a "u" token alone is a signed-out page --------------------------------------------


async def test_user_session_token_alone_is_a_fresh_anonymous_visitor(web: WebHarness) -> None:
    """A shared computer: the customer signed in with a JWT, chatted and signed out; the
    next visitor's page carries no identity but the left-over "u" token."""
    token = _jwt(JWT_SECRET, {"sub": "customer-1", "exp": int(time.time()) + 600})
    customer = await web.visitor(user_token=token)
    await customer.send("my card ends in 4242", "c1")
    await customer.until(reply_to(1))
    assert customer.token is not None and customer.token.startswith("v1.u.")

    nxt = await web.visitor(token=customer.token, after_seq=0)
    welcome = nxt.frames[0]
    assert (welcome["identity"], welcome["last_seq"]) == ("session", 0)
    assert welcome["token"].startswith("v1.s.")
    await nxt.send("hello?", "n1")
    await nxt.until(reply_to(1))
    assert [f["text"] for f in nxt.stored()] == ["hello?", "echo: hello?"]
    # The same over HTTP: a fresh anonymous session, not the customer.
    resp = await web.client.post(
        "/api/session",
        json={"site_key": SITE_KEY, "token": customer.token},
        headers={"Origin": ORIGIN},
    )
    body = await resp.json()
    assert (resp.status, body["identity"]) == (200, "session")
    assert await web.history(body["token"]) == []
    # With the page's identity next to it, the customer is back in their conversation.
    again = await web.visitor(token=customer.token, user_token=token)
    assert again.frames[0]["last_seq"] == 2
    # An anonymous visitor's own ("s") token still resumes their conversation.
    back = await web.visitor(token=nxt.token, after_seq=0)
    await back.until(lambda f: f.get("seq") == 2)
    assert [f["text"] for f in back.stored()] == ["hello?", "echo: hello?"]


async def test_user_session_token_alone_needs_identity_where_required(make_web: MakeWeb) -> None:
    web = await make_web(require_identity=True)
    token = await web.session(user_id="c7", user_hash=user_hash("c7", SECRET))
    resp = await web.client.post(
        "/api/session", json={"site_key": SITE_KEY, "token": token}, headers={"Origin": ORIGIN}
    )
    assert resp.status == 401 and (await resp.json())["error"] == "identity_required"
    # It stays a bearer token for the HTTP API (servers), as documented.
    assert (await web.post(token, "m1", "hi"))["seq"] == 1


async def test_session_token_from_a_jwt_expires_with_the_jwt(web: WebHarness) -> None:
    exp = int(time.time()) + 120
    token = _jwt(JWT_SECRET, {"sub": "c1", "exp": exp})
    welcome = (await web.visitor(user_token=token)).frames[0]
    assert exp - 5 <= welcome["expires_at"] <= exp
    resp = await web.client.post(
        "/api/session",
        json={"site_key": SITE_KEY, "user_token": token},
        headers={"Origin": ORIGIN},
    )
    body = await resp.json()
    assert exp - 5 <= body["expires_at"] <= exp
    assert int(body["token"].split(".")[3]) == body["expires_at"]
    # A user hash is no short-lived grant: its token lives session_ttl_s.
    hashed = await web.visitor(user_id="c2", user_hash=user_hash("c2", SECRET))
    assert hashed.frames[0]["expires_at"] > time.time() + 86_400


async def test_a_socket_signed_in_with_a_jwt_is_closed_at_its_exp(web: WebHarness) -> None:
    """The socket acts as the user no longer than the JWT they signed in with: at its
    exp the server closes it (4401 expired_token), and nothing of that sign-in (its
    session token, the JWT itself) is taken afterwards."""
    exp = time.time() + 2
    jwt = _jwt(JWT_SECRET, {"sub": "shortlived", "exp": exp})
    v = await web.visitor(user_token=jwt)
    assert v.frames[0]["identity"] == "user" and v.token is not None
    await v.send("before", "c1")
    await v.until(reply_to(1))
    async with asyncio.timeout(30):
        msg = await v.ws.receive()
        while msg.type is WSMsgType.TEXT:
            msg = await v.ws.receive()
    assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 4401, "expired_token")
    assert time.time() >= exp  # not before
    # Its session token is refused by the HTTP API, for reading and for writing.
    auth = {"Authorization": f"Bearer {v.token}", "Origin": ORIGIN}
    read = await web.client.get("/api/messages", headers=auth)
    sent = await web.client.post("/api/messages", json={"client_id": "c2", "text": "after"},
                                 headers=auth)  # fmt: skip
    for resp in (read, sent):
        assert resp.status == 401 and (await resp.json())["error"] == "expired_token"
    # The JWT no longer signs in; nothing was stored after the first exchange.
    again = await web.open()
    await again.ws.send_json({"type": "hello", "site_key": SITE_KEY, "user_token": jwt})
    assert (await again.next())["code"] == "expired_token"
    assert await again.wait_closed() == 4401
    messages = await web.bot.store.messages_after("web", "u:shortlived", 0, 100)
    assert [m.seq for m in messages] == [1, 2]


def test_jwt_cap_unit() -> None:
    now = 1_700_000_000.0
    ids = _service(user_token_secret=JWT_SECRET, clock=lambda: now)
    visitor = ids.verify_user_token(_jwt(JWT_SECRET, {"sub": "c1", "exp": now + 90.7}))
    token, expires = ids.issue(visitor)
    assert expires == int(now) + 90
    assert ids.verify_token(token) == visitor


# -- #8b: identity fields that cannot be encoded -------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"site_key": "\ud800"},
        {"token": "v1.s.abc.99999999999.\ud800"},
        {"token": "v1.u.\udcff.99999999999.abc"},
        {"user_id": "c1", "user_hash": "\ud800" * 64},
        {"user_id": "c1", "user_hash": "é" * 64},
        {"user_token": "eyJ\ud800.e30.abc"},
        {"user_token": "a.b.\udcff"},
    ],
)
def test_unencodable_identity_fields_raise_identity_error(fields: dict[str, str]) -> None:
    ids = _service(user_token_secret=JWT_SECRET)
    with pytest.raises(IdentityError):
        ids.resolve(**{"site_key": SITE_KEY, **fields})


async def test_unencodable_identity_fields_are_401_not_500(web: WebHarness) -> None:
    hellos = [
        {"site_key": "\ud800"},
        {"site_key": SITE_KEY, "token": "v1.s.abc.99999999999.\ud800"},
        {"site_key": SITE_KEY, "user_token": "a.b.\udcff"},
    ]
    for hello in hellos:
        v = await web.open()
        await v.ws.send_str(json.dumps({"type": "hello", **hello}))  # escapes: "\\ud800"
        assert await v.wait_closed() == 4401, hello
    for body in (b'{"site_key":"\\ud800"}', b'{"site_key":"shop","user_token":"x.y.\\ud800"}'):
        resp = await web.client.post(
            "/api/session",
            data=body,
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )
        assert (resp.status, resp.content_type) == (401, "application/json"), body
    # aiohttp decodes header bytes with surrogateescape: \xff becomes "\udcff".
    resp = await web.client.get(
        "/api/messages",
        headers={"Authorization": b"Bearer v1.s.abc.99999999999.\xff".decode("latin-1")},
    )
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_token"
