"""require_identity = true refuses anonymous ("s") session tokens too, valid ones included:
a token issued while the site was still open must not keep a visitor in (review 2, #1)."""

from __future__ import annotations

import pytest
from web_helpers import ORIGIN, SECRET, SITE_KEY, MakeWeb

from connectors.web import IdentityError, user_hash
from connectors.web.identity import IdentityService


def _service(require: bool) -> IdentityService:
    return IdentityService(
        site_key=SITE_KEY,
        site_secret=SECRET,
        session_ttl_s=30 * 86_400,
        user_token_max_ttl_s=3600,
        require_identity=require,
    )


def test_valid_anonymous_token_is_identity_required_where_required() -> None:
    open_site, locked = _service(False), _service(True)
    visitor = open_site.new_session()
    token, _ = open_site.issue(visitor)  # issued before require_identity was turned on
    assert open_site.resolve(site_key=SITE_KEY, token=token) == visitor  # open: resumes
    with pytest.raises(IdentityError) as err:
        locked.resolve(site_key=SITE_KEY, token=token)
    assert err.value.code == "identity_required"
    with pytest.raises(IdentityError) as err:
        locked.from_token(token)  # nor as a bearer token
    assert err.value.code == "identity_required"
    # A forged one is still a bad token, not merely "anonymous".
    with pytest.raises(IdentityError) as err:
        locked.resolve(site_key=SITE_KEY, token=token[:-2] + "AA")
    assert err.value.code == "invalid_token"
    # Next to the page's identity the left-over token does not matter: the user signs in.
    signed = locked.resolve(
        site_key=SITE_KEY, token=token, user_id="c1", user_hash=user_hash("c1", SECRET)
    )
    assert (signed.kind, signed.subject) == ("user", "c1")


async def test_anonymous_token_from_an_open_site_is_refused_once_identity_is_required(
    make_web: MakeWeb,
) -> None:
    before = await make_web()  # the site starts open, with the same site_secret
    anon = await before.visitor()
    assert anon.frames[0]["identity"] == "session" and anon.token is not None
    http_token = await before.session()
    after = await make_web(require_identity=True)

    v = await after.open()
    await v.ws.send_json({"type": "hello", "site_key": SITE_KEY, "token": anon.token})
    frame = await v.next()
    assert frame.get("code") == "identity_required", frame
    assert await v.wait_closed() == 4401
    # POST /api/session must not exchange it for a fresh token (which would renew forever).
    for token in (anon.token, http_token):
        resp = await after.client.post(
            "/api/session", json={"site_key": SITE_KEY, "token": token}, headers={"Origin": ORIGIN}
        )
        assert resp.status == 401 and (await resp.json())["error"] == "identity_required"
        resp = await after.client.get("/api/messages", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401 and (await resp.json())["error"] == "identity_required"
