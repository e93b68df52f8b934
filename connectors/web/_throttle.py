"""The web channel's refusal warnings, each logged at most once a minute
(``botkit.throttled_warning``), and client values made safe for a log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botkit.throttled_warning import ThrottledWarning

__all__ = ["RefusalWarnings", "ThrottledWarning", "shown"]


def shown(value: str | None, limit: int = 100) -> str:
    """A client-supplied header value made safe for one log line: quoted, with control
    characters escaped (no forged log lines), and cut to ``limit`` characters."""
    return "none" if value is None else ascii(value[:limit])


class RefusalWarnings:
    """What a misconfigured web deployment refuses, logged at most once a minute per reason.

    The three usual first-deployment failures (an origin missing from
    ``allowed_origins``, a site backend computing ``user_hash`` wrongly, every visitor
    sharing a reverse proxy's IP) are invisible to the operator otherwise: browsers do
    not show a WebSocket handshake status to the page.

    Args:
        logger: where the warnings go.
        clock: seconds, for the once-a-minute throttle.
    """

    def __init__(
        self, logger: logging.Logger, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._clock = clock
        self._origin = self._make(
            "web: refused a request from origin %s: it is not in [connectors.web] "
            "allowed_origins (origins match exactly: scheme, host and port; "
            "https://www.example.com and https://example.com are two origins, so list each "
            "one the site is served from)"
        )
        self._sockets = self._make(
            "web: refused a WebSocket from %s: max_connections_per_ip sockets are open from "
            "it already; behind a reverse proxy, set trust_forwarded_for = true and "
            "trusted_proxies"
        )
        self._connects = self._make(
            "web: refused connections from %s: over connect_rate; behind a reverse proxy, "
            "set trust_forwarded_for = true and trusted_proxies"
        )
        self._site_key = self._make(
            "web: refused a visitor: the page sent site_key %s, which does not match "
            "[connectors.web] site_key (check the data-site-key of the widget's script tag, "
            "or the site_key a server sends)"
        )
        # One per reason code; the codes are ours (a small fixed set), never client text.
        self._identity: dict[str, ThrottledWarning] = {}

    def _make(self, message: str) -> ThrottledWarning:
        return ThrottledWarning(self._logger, message, clock=self._clock)

    def origin(self, origin: str | None) -> None:
        """A request or socket from an origin that is not allowed."""
        self._origin.warn(shown(origin))

    def too_many_sockets(self, ip: str) -> None:
        """A socket refused by ``max_connections_per_ip``."""
        self._sockets.warn(shown(ip, 64))

    def connect_rate(self, ip: str) -> None:
        """A session or socket refused by ``connect_rate``."""
        self._connects.warn(shown(ip, 64))

    def identity(self, code: str, detail: str | None = None) -> None:
        """A visitor's identity refused: the reason code is logged, and for a site key
        that is not ours, ``detail``: what the page sent, as ``IdentityError.log_detail``
        made it safe to show (never a token, hash or secret)."""
        if code in _ROUTINE_IDENTITY_CODES:
            return
        if code == "unknown_site":
            # Not a user_hash or user_token matter: an anonymous visitor gets this too.
            self._site_key.warn(detail or "none")
            return
        warning = self._identity.get(code)
        if warning is None:
            hint = _IDENTITY_HINTS.get(code, _SIGN_IN_HINT)
            warning = self._identity[code] = self._make(
                f"web: refused a visitor's identity: {code} ({hint})"
            )
        warning.warn()


_SIGN_IN_HINT = "check how the site computes user_hash / user_token and which secrets it uses"
_IDENTITY_HINTS = {
    # Our own token, not the site's sign-in: it was signed under another key.
    "invalid_token": (
        "a session token this server did not sign with its current key: site_secret or "
        "user_token_secret changed, replicas were given different ones, or it is forged"
    ),
}

# A session token that ran out is the normal end of a visit, and an API call without a
# token is a client's (or a scanner's) mistake: neither says the deployment is wrong.
_ROUTINE_IDENTITY_CODES = frozenset({"expired_token", "missing_token"})
