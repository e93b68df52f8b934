"""Client fields are checked whole: a "$"-anchored pattern also takes a trailing newline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from pydantic import ValidationError
from web_helpers import JWT_SECRET, SECRET, SITE_KEY

from connectors.web import WebConfig
from connectors.web.identity import IdentityError, IdentityService
from connectors.web.intake import clean_language

NOW = 1_700_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, object]) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(JWT_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _identity() -> IdentityService:
    return IdentityService(
        site_key=SITE_KEY, site_secret=SECRET, session_ttl_s=3600, user_token_max_ttl_s=3600,
        require_identity=False, user_token_secret=JWT_SECRET, clock=lambda: float(NOW),
    )  # fmt: skip


@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "="])
def test_a_user_token_is_its_exact_text(tail: str) -> None:
    token = _jwt({"sub": "customer-42", "exp": NOW + 60})
    assert _identity().verify_user_token(token).subject == "customer-42"
    with pytest.raises(IdentityError):
        _identity().verify_user_token(token + tail)


def test_a_language_hint_is_a_tag_and_nothing_after_it() -> None:
    assert clean_language("pt-BR") == "pt-BR"
    assert clean_language("en\n") is None
    assert clean_language("en\r\n") is None


@pytest.mark.parametrize(
    "field", [{"site_key": "shop\n"}, {"theme_color": "#fff\n"}, {"page_language": "en\n"}]
)
def test_config_values_are_checked_whole(field: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        WebConfig.model_validate(field)
