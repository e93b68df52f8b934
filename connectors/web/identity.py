"""Who a widget visitor is, and how they prove it.

Three ways in, in order of preference:

* a site that knows its user sends ``user_id`` plus ``user_hash`` =
  hex(HMAC-SHA256(key=site_secret, msg=user_id)) (the common vendor scheme: the hash is
  computed by the site's backend and printed into the page);
* or a short-lived HS256 JWT (``sub`` = user id, ``exp``) signed with its own secret,
  ``user_token_secret``: never with ``site_secret``, or a user hash the site prints for a
  user id shaped like a JWT signing input would be a valid JWT signature for any ``sub``;
* otherwise the visitor is anonymous and gets a session token from this server.

Whatever the way in, the server then issues its own session token. An anonymous visitor's
("s") token is their identity: the widget keeps it and presents it on every reconnect. A
signed-in user's ("u") token is a bearer token for the HTTP API; in a hello or session
request it counts only next to the page's own identity, so after a sign-out (a page that
vouches for nobody) a left-over "u" token makes a fresh anonymous visitor, never that user.
A "u" token issued from a JWT expires with that JWT. The conversation is derived from the
verified identity only; a client never names a conversation itself, so nobody can read
another visitor's history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from botkit.errors import ConnectorError
from botkit.sanitize import BIDI_CONTROLS
from connectors.web._throttle import ThrottledWarning

__all__ = ["IdentityError", "IdentityService", "Visitor", "user_hash"]

log = logging.getLogger(__name__)

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SITE_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what WebConfig.site_key allows
_MAX_TOKEN_CHARS = 2048
_MAX_USER_ID_CHARS = 255
_CLOCK_LEEWAY_S = 60
# Our session-token key is derived as HMAC(key=label, msg=secret): the site's backend
# prints HMAC(key=site_secret, msg=user_id) for any user id, so the other way round a
# user registering this label as their id would be shown the key itself. That is how
# the v1 key was derived, so v1-keyed tokens are never accepted, not even for a
# transition: anyone may hold that key, and its "s" tokens are as forgeable as its "u".
_SESSION_KEY_LABEL = b"botkit-web/session-token/v2"
# Sites upgrading from a release that checked JWTs with site_secret refuse every
# signed-in customer until they set user_token_secret; only the log can tell them.
_JWT_OFF_WARNING = (
    "web: refused a user_token (JWT) sign-in: user_token_secret is not set, so JWT "
    "sign-in is off and every such visitor gets identity_unsupported. Since this botkit "
    "release JWTs are checked with their own user_token_secret, not site_secret: set a "
    "new user_token_secret and re-sign the tokens with it (docs/web.md, Upgrading)"
)


class IdentityError(ConnectorError):
    """A visitor's credentials are missing, malformed, forged or expired (HTTP 401).

    ``log_detail`` is what the operator's log may show of the refused value (made safe
    already: never a token, hash or secret), or None.
    """

    def __init__(self, code: str, message: str, *, log_detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.log_detail = log_detail


@dataclass(frozen=True, slots=True)
class Visitor:
    """A verified visitor. ``kind`` "user" means the site vouched for ``subject``.

    ``not_after`` caps the session tokens issued for it (the ``exp`` of the JWT it came
    from); ``new`` marks a fresh anonymous visitor, whose conversation cannot exist yet.
    Neither takes part in comparisons: they say how, not who.
    """

    kind: Literal["session", "user"]
    subject: str
    not_after: float | None = field(default=None, compare=False)
    new: bool = field(default=False, compare=False)

    @property
    def conversation_key(self) -> str:
        """Key of this visitor's conversation in the "web" channel."""
        return ("u:" if self.kind == "user" else "s:") + self.subject


def user_hash(user_id: str, site_secret: str) -> str:
    """The ``user_hash`` a site's backend computes for ``user_id`` (lowercase hex)."""
    return hmac.new(site_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _derive(root: bytes) -> bytes:
    """The session-token key from a configured secret or the stored key."""
    return hmac.new(_SESSION_KEY_LABEL, root, hashlib.sha256).digest()


def _b64d(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ascii(value: object, code: str, what: str) -> str:
    """``value`` as a str of ASCII only (tokens, keys and hashes are), else IdentityError.

    Also refuses lone surrogates (valid JSON escapes, and what aiohttp makes of non-UTF-8
    header bytes), which cannot be encoded for the HMAC.
    """
    if not isinstance(value, str) or len(value) > _MAX_TOKEN_CHARS or not value.isascii():
        raise IdentityError(code, f"malformed {what}")
    return value


# C0 and C1 controls, DEL, the Unicode line and paragraph separators (a log line or an
# agent's screen would break at them) and the bidirectional controls (which reorder how
# the id reads).
_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029" + "".join(map(chr, sorted(BIDI_CONTROLS))) + "]"
)


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not 0 < len(user_id) <= _MAX_USER_ID_CHARS:
        raise IdentityError("invalid_identity", "user_id must be 1-255 characters")
    if _CONTROLS.search(user_id):  # it is logged and shown to agents as it is
        raise IdentityError(
            "invalid_identity",
            "user_id must not contain control, line-separator or bidirectional characters",
        )
    try:
        user_id.encode()  # a lone surrogate (a valid JSON escape) cannot be hashed or stored
    except UnicodeEncodeError:
        raise IdentityError("invalid_identity", "user_id must be valid Unicode") from None
    return user_id


class IdentityService:
    """Verifies visitor credentials and issues this server's session tokens.

    Args:
        site_key: the public site id the widget must present.
        site_secret: HMAC key of ``user_hash``, shared with the site's backend, or None
            (no user hashes). Also keys the session tokens.
        session_ttl_s: lifetime of issued session tokens.
        user_token_max_ttl_s: longest remaining lifetime accepted in a site-signed JWT.
        require_identity: refuse anonymous visitors.
        user_token_secret: HS256 key of site-signed user tokens (JWTs), or None (JWT
            sign-in off). Must differ from ``site_secret``. Keys the session tokens when
            there is no ``site_secret``; with neither, the key kept in the store does
            (``use_stored_key``, before the first token is issued or checked).
        clock: seconds since the epoch (tests pin it); also paces the warning logged
            when a JWT arrives while JWT sign-in is off.

    Raises:
        ValueError: ``user_token_secret`` equals ``site_secret``.
    """

    def __init__(
        self,
        *,
        site_key: str,
        site_secret: str | None,
        session_ttl_s: int,
        user_token_max_ttl_s: int,
        require_identity: bool,
        user_token_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if user_token_secret is not None and user_token_secret == site_secret:
            raise ValueError("user_token_secret must differ from site_secret")
        self.site_key = site_key
        self._secret = site_secret.encode() if site_secret is not None else None
        self._jwt_secret = user_token_secret.encode() if user_token_secret is not None else None
        # A separate key for our own tokens, so a session token can never double as a
        # user hash or a site JWT (they are all HMAC-SHA256), nor be learnt from either.
        # Without a configured secret it comes from the store: never a key made per
        # process, which a restart or another replica would not know (every visitor
        # signed out, the reply to what they sent before it never shown).
        root = self._secret if self._secret is not None else self._jwt_secret
        self._session_key = None if root is None else _derive(root)
        self.key_source = (
            "site_secret" if self._secret is not None
            else "user_token_secret" if self._jwt_secret is not None
            else None
        )  # fmt: skip
        self.session_ttl_s = session_ttl_s
        self.user_token_max_ttl_s = user_token_max_ttl_s
        self.require_identity = require_identity
        self._clock = clock
        self._jwt_off = ThrottledWarning(log, _JWT_OFF_WARNING, clock=clock)

    # -- our own session tokens ---------------------------------------------------------

    @property
    def needs_stored_key(self) -> bool:
        """No secret is configured and ``use_stored_key`` has not been called yet."""
        return self._session_key is None

    def use_stored_key(self, key: bytes) -> None:
        """Key the session tokens with ``key``, the store's (``CoreHandle.session_key``),
        where no secret is configured; a configured secret takes precedence.

        Raises:
            ValueError: ``key`` is shorter than 16 bytes.
        """
        if len(key) < 16:
            raise ValueError("a stored session key needs at least 16 bytes")
        if self.key_source in (None, "store"):
            self._session_key = _derive(key)
            self.key_source = "store"

    def _sign(self, body: str) -> str:
        if self._session_key is None:  # a bug: the service loads it before serving
            raise ConnectorError("web: the session key is not loaded yet (use_stored_key)")
        return _b64e(hmac.new(self._session_key, body.encode(), hashlib.sha256).digest())

    def issue(self, visitor: Visitor) -> tuple[str, int]:
        """Return ``(token, expires_at)`` for ``visitor`` (never past its ``not_after``)."""
        exp = int(self._clock()) + self.session_ttl_s
        if visitor.not_after is not None:
            exp = min(exp, math.floor(visitor.not_after))
        kind = "u" if visitor.kind == "user" else "s"
        body = f"v1.{kind}.{_b64e(visitor.subject.encode())}.{exp}"
        return f"{body}.{self._sign(body)}", exp

    def new_session(self) -> Visitor:
        """A fresh anonymous visitor (128 random bits)."""
        return Visitor("session", secrets.token_urlsafe(16), new=True)

    def verify_token(self, token: object) -> Visitor:
        """Check a session token issued by ``issue``; raise ``IdentityError`` if bad."""
        parts = _ascii(token, "invalid_token", "session token").split(".")
        if len(parts) != 5 or parts[0] != "v1" or parts[1] not in ("s", "u"):
            raise IdentityError("invalid_token", "malformed session token")
        body, sig = ".".join(parts[:4]), parts[4]
        if not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            raise IdentityError("invalid_token", "session token signature is invalid")
        if not (parts[3].isascii() and parts[3].isdigit()) or int(parts[3]) <= self._clock():
            raise IdentityError("expired_token", "session token has expired")
        try:
            subject = _b64d(parts[2]).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise IdentityError("invalid_token", "malformed session token") from exc
        return Visitor("user" if parts[1] == "u" else "session", subject)

    # -- identities vouched for by the site ---------------------------------------------

    def _site_secret(self) -> bytes:
        if self._secret is None:
            raise IdentityError("identity_unsupported", "this site has no site_secret set")
        return self._secret

    def verify_user_hash(self, user_id: object, hash_hex: object) -> Visitor:
        """Check ``hash_hex`` == hex(HMAC-SHA256(site_secret, user_id))."""
        uid = _check_user_id(user_id)
        if not isinstance(hash_hex, str) or not _HEX64.fullmatch(hash_hex):
            raise IdentityError("invalid_identity", "user_hash must be 64 hex characters")
        expected = hmac.new(self._site_secret(), uid.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(hash_hex.lower().encode(), expected.encode()):
            raise IdentityError("invalid_identity", "user_hash does not match user_id")
        return Visitor("user", uid)

    def verify_user_token(self, token: object) -> Visitor:
        """Check an HS256 JWT signed with ``user_token_secret``, with ``sub`` and a near
        ``exp``; the visitor's ``not_after`` is that ``exp``."""
        if self._jwt_secret is None:
            self._jwt_off.warn()  # the reason only: the token is never logged
            raise IdentityError(
                "identity_unsupported", "user tokens are not enabled (no user_token_secret)"
            )
        parts = _ascii(token, "invalid_identity", "user token").split(".")
        if len(parts) != 3:
            raise IdentityError("invalid_identity", "malformed user token")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        expected = hmac.new(self._jwt_secret, signing_input, hashlib.sha256).digest()
        try:
            sig = _b64d(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise IdentityError("invalid_identity", "malformed user token") from exc
        # Nothing of the token is parsed before its signature checks out.
        if not hmac.compare_digest(sig, expected):
            raise IdentityError("invalid_identity", "user token signature is invalid")
        try:
            header = json.loads(_b64d(parts[0]))
            claims = json.loads(_b64d(parts[1]))
        except (ValueError, binascii.Error, RecursionError) as exc:
            raise IdentityError("invalid_identity", "malformed user token") from exc
        # Only HS256: a token that says "none" (or anything else) is refused even if the
        # site signed it, so a confused signer cannot downgrade the scheme.
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise IdentityError("invalid_identity", "user token must use HS256")
        # RFC 7515 4.1.11: a token naming critical extensions the recipient does not
        # understand must be refused, and this server understands none.
        if "crit" in header:
            raise IdentityError("invalid_identity", "user token names critical extensions")
        if not isinstance(claims, dict):
            raise IdentityError("invalid_identity", "malformed user token")
        exp, now = claims.get("exp"), self._clock()
        if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
            raise IdentityError("invalid_identity", "user token needs a numeric exp")
        if exp <= now:
            raise IdentityError("expired_token", "user token has expired")
        if exp > now + self.user_token_max_ttl_s + _CLOCK_LEEWAY_S:
            raise IdentityError("invalid_identity", "user token lives too long")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + _CLOCK_LEEWAY_S:
            raise IdentityError("invalid_identity", "user token is not valid yet")
        return Visitor("user", _check_user_id(claims.get("sub")), not_after=exp)

    # -- policy -------------------------------------------------------------------------

    def resolve(
        self,
        *,
        site_key: object,
        token: object = None,
        user_id: object = None,
        user_hash: object = None,
        user_token: object = None,
    ) -> Visitor:
        """Decide who the visitor is from what the widget (or a server) presented.

        A site-vouched identity wins over a stored session token; a wrong one is an error,
        never a silent fall-back to anonymous. A user's ("u") session token without such an
        identity is the page of a signed-out visitor: they get a fresh anonymous session
        (or ``identity_required``), never that user's conversation. With
        ``require_identity`` an anonymous ("s") token is ``identity_required`` too, even
        a valid one issued while the site was open. Raises ``IdentityError``.
        """
        if not (
            isinstance(site_key, str)
            and site_key.isascii()
            and hmac.compare_digest(site_key.encode(), self.site_key.encode())
        ):
            raise IdentityError(
                "unknown_site", "unknown site key", log_detail=self._sent_site_key(site_key)
            )
        if user_id is not None or user_hash is not None:
            return self.verify_user_hash(user_id, user_hash)
        if user_token is not None:
            return self.verify_user_token(user_token)
        if token is not None:
            visitor = self.verify_token(token)  # a forged or expired one is still refused
            # An anonymous ("s") token resumes its conversation only where anonymous
            # visitors are allowed: one issued while the site was open is refused below.
            if visitor.kind == "session" and not self.require_identity:
                return visitor
        if self.require_identity:
            raise IdentityError("identity_required", "this site requires a verified user")
        return self.new_session()

    def _sent_site_key(self, value: object) -> str:
        """What the log may show of a site key the page sent that is not ours: the
        value only when it is shaped like a site key and is none of our secrets (a
        page that put a secret there has published it; the log must not repeat it)."""
        if value is None:
            return "no site_key"
        if not isinstance(value, str):
            return f"a JSON {type(value).__name__}, not a string"
        if value.isascii():
            sent = value.encode()
            for secret in (self._secret, self._jwt_secret):
                if secret is not None and hmac.compare_digest(sent, secret):
                    return (
                        "a secret (site_secret or user_token_secret) in place of the "
                        "site_key: the page has published it, so replace that secret"
                    )
            if _SITE_KEY_SHAPE.fullmatch(value):
                return ascii(value)
        return f"{len(value)} characters that are not a site_key (shown: none)"

    def from_token(self, token: object) -> Visitor:
        """Verify a bearer session token and apply ``require_identity``."""
        visitor = self.verify_token(token)
        if self.require_identity and visitor.kind != "user":
            raise IdentityError("identity_required", "this site requires a verified user")
        return visitor
