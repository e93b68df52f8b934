"""Identity: the published test vectors, forged/expired credentials, visitor isolation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
from pathlib import Path

import pytest
from web_helpers import JWT_SECRET, ORIGIN, SECRET, SITE_KEY, MakeWeb, WebHarness, reply_to

from connectors.web import IdentityError, user_hash
from connectors.web.identity import IdentityService

DOCS = Path(__file__).resolve().parents[3] / "docs" / "web.md"


def _vectors() -> dict[str, str]:
    block = re.search(r"### Test vectors.*?```text\n(.*?)```", DOCS.read_text(), re.S)
    assert block, "docs/web.md must publish the identity test vectors"
    pairs = (line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _service(secret: str, now: float, **kw: object) -> IdentityService:
    args: dict[str, object] = {
        "site_key": "shop",
        "site_secret": secret,
        "session_ttl_s": 3600,
        "user_token_max_ttl_s": 3600,
        "require_identity": False,
        "user_token_secret": JWT_SECRET,
        "clock": lambda: now,
    }
    args.update(kw)
    return IdentityService(**args)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(secret: str, claims: dict[str, object], alg: str = "HS256", **header: object) -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT", **header}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def test_published_user_hash_vector() -> None:
    v = _vectors()
    # Independent of our code: the definition in the docs, computed with hmac directly.
    expected = hmac.new(
        v["site_secret"].encode(), v["user_id"].encode(), hashlib.sha256
    ).hexdigest()
    assert v["user_hash"] == expected == user_hash(v["user_id"], v["site_secret"])
    svc = _service(v["site_secret"], float(v["token_now"]))
    assert svc.verify_user_hash(v["user_id"], v["user_hash"]).conversation_key == "u:customer-42"
    assert svc.verify_user_hash(v["user_id"], v["user_hash"].upper()).subject == "customer-42"


@pytest.mark.parametrize(
    ("user_id", "mutate"),
    [
        ("customer-43", lambda h: h),  # someone else's id with this hash
        ("customer-42", lambda h: h[:-1] + ("0" if h[-1] != "0" else "1")),  # one nibble off
        ("customer-42", lambda h: h[:32]),  # truncated
        ("customer-42", lambda h: ""),  # missing
        ("customer-42", lambda h: None),  # absent
        ("customer-42", lambda h: "g" * 64),  # not hex
        ("", lambda h: h),
        ("customer-42\n", lambda h: h),  # control characters are refused outright
        ("customer-\ud800", lambda h: "0" * 64),  # a lone surrogate cannot be hashed
    ],
)
def test_user_hash_rejections(user_id: str, mutate: object) -> None:
    v = _vectors()
    svc = _service(v["site_secret"], float(v["token_now"]))
    with pytest.raises(IdentityError):
        svc.verify_user_hash(user_id, mutate(v["user_hash"]))  # type: ignore[operator]


@pytest.mark.parametrize(
    "user_id",
    [
        "bob\n",  # C0
        "bob\x1b[31m",  # a terminal escape
        "bob\x85forged",  # C1 (NEL)
        "bob\u2028CRITICAL forged line",  # the Unicode line separator
        "bob\u2029",
        "bob\u202egpj.exe",  # a bidirectional override
    ],
)
def test_a_vouched_user_id_that_would_break_a_log_line_is_refused(user_id: str) -> None:
    # The site vouches for it (a right hash), yet it is refused: it is logged and shown
    # to agents as it is.
    v = _vectors()
    svc = _service(v["site_secret"], float(v["token_now"]))
    with pytest.raises(IdentityError, match="control, line-separator or bidirectional"):
        svc.verify_user_hash(user_id, user_hash(user_id, v["site_secret"]))
    fine = "ok-日本-\u200d"  # letters of any script and joiners stay allowed
    assert svc.verify_user_hash(fine, user_hash(fine, v["site_secret"])).subject == fine


def test_published_user_token_vector() -> None:
    v = _vectors()
    now = float(v["token_now"])
    assert v["user_token_secret"] != v["site_secret"]
    # Independent of our code: the signature per RFC 7515, computed with hmac directly.
    head_body, sig = v["user_token"].rsplit(".", 1)
    expected = hmac.new(v["user_token_secret"].encode(), head_body.encode(), hashlib.sha256)
    assert sig == _b64(expected.digest())
    keys = {"user_token_secret": v["user_token_secret"]}
    visitor = _service(v["site_secret"], now, **keys).verify_user_token(v["user_token"])
    assert (visitor.kind, visitor.subject) == ("user", "customer-42")
    with pytest.raises(IdentityError, match="expired"):
        _service(v["site_secret"], now + 600, **keys).verify_user_token(v["user_token"])
    with pytest.raises(IdentityError, match="signature"):
        _service(v["site_secret"], now).verify_user_token(v["user_token"])


@pytest.mark.parametrize(
    "make",
    [
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}, alg="none"),
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}, alg="HS512"),
        # Critical extensions (RFC 7515 4.1.11): we understand none, so any is refused.
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}, crit=["x"]),
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}, crit=[]),
        lambda s, now: _jwt(s, {"sub": "u1"}),  # no exp
        lambda s, now: _jwt(s, {"sub": "u1", "exp": "soon"}),
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now - 1}),
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 10 * 86400}),  # not short-lived
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60, "nbf": now + 3600}),
        lambda s, now: _jwt(s, {"sub": 42, "exp": now + 60}),
        lambda s, now: _jwt(s, {"exp": now + 60}),
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}).rsplit(".", 1)[0] + ".",
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}) + "x",
        lambda s, now: _jwt(s, {"sub": "u1", "exp": now + 60}).replace(".", "", 1),
        lambda s, now: "a.b.c",
        lambda s, now: "x" * 5000,
    ],
)
def test_user_token_rejections(make: object) -> None:
    svc = _service(SECRET, 1_700_000_000.0)
    with pytest.raises(IdentityError):
        svc.verify_user_token(make(JWT_SECRET, 1_700_000_000))  # type: ignore[operator]


def test_session_tokens_cannot_be_forged() -> None:
    svc = _service(SECRET, 1_700_000_000.0)
    visitor = svc.new_session()
    token, exp = svc.issue(visitor)
    assert svc.verify_token(token) == visitor and exp == 1_700_003_600
    version, kind, subject, expiry, sig = token.split(".")
    other = _b64(b"someone-else")
    forged = [
        f"{version}.{kind}.{other}.{expiry}.{sig}",  # another visitor's id
        f"{version}.u.{subject}.{expiry}.{sig}",  # promote to a verified user
        f"{version}.{kind}.{subject}.{int(expiry) + 999}.{sig}",  # extend the lifetime
        f"{version}.{kind}.{subject}.{expiry}.{sig[:-2]}",
        f"v2.{kind}.{subject}.{expiry}.{sig}",
        token + ".x",
        "",
    ]
    for bad in forged:
        with pytest.raises(IdentityError):
            svc.verify_token(bad)
    # The same token under another secret, or after it expired.
    with pytest.raises(IdentityError):
        _service("another-secret-0123456789", 1_700_000_000.0).verify_token(token)
    with pytest.raises(IdentityError, match="expired"):
        _service(SECRET, 1_700_003_600.0).verify_token(token)


def test_random_garbage_only_ever_raises_identity_error() -> None:
    svc = _service(SECRET, 1_700_000_000.0)
    rng = random.Random(5)
    alphabet = "ab.-_=+/\\\x00é€\U0001f600v1su0123456789"
    for _ in range(2000):
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        for check in (svc.verify_token, svc.verify_user_token):
            with pytest.raises(IdentityError):
                check(junk)
    values: list[object] = [None, 7, 1.5, [], {}, b"v1.s.x.1.y"]
    for value in values:
        with pytest.raises(IdentityError):
            svc.verify_token(value)
        with pytest.raises(IdentityError):
            svc.verify_user_token(value)


async def test_require_identity_over_websocket(make_web: MakeWeb) -> None:
    web = await make_web(require_identity=True)
    good = user_hash("customer-7", SECRET)
    cases = [
        {},  # anonymous
        {"user_id": "customer-7"},  # missing signature
        {"user_id": "customer-7", "user_hash": user_hash("customer-8", SECRET)},
        {"user_id": "customer-7", "user_hash": user_hash("customer-7", "wrong-secret-0123456")},
        {"token": "v1.s.abc.99999999999.forged"},
        {"site_key": "other-site", "user_id": "customer-7", "user_hash": good},
    ]
    for hello in cases:
        v = await web.open()
        await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, **hello})
        error = await v.next()
        assert error["type"] == "error", hello
        assert await v.wait_closed() == 4401, hello
    v = await web.visitor(user_id="customer-7", user_hash=good)
    welcome = v.frames[0]
    assert welcome["identity"] == "user"
    # The token issued for the verified user counts only next to the page's identity:
    # alone (a signed-out page) it is refused like an anonymous visitor.
    again = await web.visitor(token=v.token, user_id="customer-7", user_hash=good)
    assert again.frames[0]["identity"] == "user"
    alone = await web.open()
    await alone.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": v.token})
    assert (await alone.next())["code"] == "identity_required"
    assert await alone.wait_closed() == 4401


async def test_require_identity_over_http(make_web: MakeWeb) -> None:
    web = await make_web(require_identity=True)
    post = web.client.post
    headers = {"Origin": ORIGIN}
    resp = await post("/api/session", json={"site_key": SITE_KEY}, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "identity_required"
    bad = {"site_key": SITE_KEY, "user_id": "c9", "user_hash": "0" * 64}
    resp = await post("/api/session", json=bad, headers=headers)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    # A lone surrogate (valid JSON escape, not encodable) is a 401 too, never a 500.
    zeros = "0" * 64
    raw = f'{{"site_key": "{SITE_KEY}", "user_id": "c\\ud800", "user_hash": "{zeros}"}}'
    h = {**headers, "Content-Type": "application/json"}
    resp = await post("/api/session", data=raw.encode(), headers=h)
    assert resp.status == 401
    good = {"site_key": SITE_KEY, "user_id": "c9", "user_hash": user_hash("c9", SECRET)}
    resp = await post("/api/session", json=good, headers=headers)
    assert resp.status == 200 and (await resp.json())["identity"] == "user"
    token = (await resp.json())["token"]
    assert (await web.post(token, "m1", "hi"))["seq"] == 1
    # No token, a garbage token, another scheme: 401 on every API route.
    for auth in (None, "Bearer nope", "Basic dXNlcjpwdw==", f"Bearer {token}x"):
        h = {"Authorization": auth} if auth else {}
        r1 = await web.client.get("/api/messages", headers=h)
        r2 = await post("/api/messages", json={"client_id": "x", "text": "y"}, headers=h)
        assert (r1.status, r2.status) == (401, 401), auth


async def test_nobody_reads_another_visitors_history(web: WebHarness) -> None:
    alice = await web.session()
    bob = await web.session()
    await web.post(alice, "a1", "alice's secret order number 1234")
    # Bob sees nothing of it, whatever he adds to the request.
    assert await web.history(bob) == []
    for params in ({"conversation_key": "s:x"}, {"channel": "web"}, {"after_seq": "0"}):
        resp = await web.client.get(
            "/api/messages", params=params, headers={"Authorization": f"Bearer {bob}"}
        )
        assert (await resp.json())["messages"] == []
    # Nor over a socket: his welcome replays only his own (empty) conversation.
    v = await web.visitor(token=bob)
    await v.send("hello", "b1")
    await v.until(reply_to(1))
    texts = [f["text"] for f in v.stored()]
    assert texts == ["hello", "echo: hello"]
    # Alice's history is intact and only hers.
    assert next(m["text"] for m in await web.history(alice)).startswith("alice's secret")
    # A verified user's conversation is not an anonymous session's, even with the same id.
    user_token = await web.session(user_id="42", user_hash=user_hash("42", SECRET))
    assert await web.history(user_token) == []
