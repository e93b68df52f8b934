"""The ``Origin`` allow-list, checked on WebSocket handshakes and on the HTTP API.

Browsers send ``Origin`` on every WebSocket handshake and cross-site API call, and do not
apply CORS to WebSockets, so without this check any page a visitor opens could talk to
the server as that visitor's browser.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.web.config import normalize_origin

__all__ = ["OriginPolicy"]


class OriginPolicy:
    """Exact-match origin allow-list.

    Args:
        allowed: origins as in the config (already normalized there).
        allow_missing: accept requests with no ``Origin`` header (non-browser clients).
    """

    def __init__(self, allowed: Iterable[str], *, allow_missing: bool) -> None:
        self._allowed = set(allowed)
        self.allow_missing = allow_missing

    def add(self, origin: str) -> None:
        """Allow one more origin (the server's own, once its port is known)."""
        self._allowed.add(normalize_origin(origin))

    @property
    def allowed(self) -> frozenset[str]:
        """The origins currently allowed."""
        return frozenset(self._allowed)

    def is_allowed(self, origin: str | None) -> bool:
        """True when a request with this ``Origin`` header value may proceed."""
        if origin is None:
            return self.allow_missing
        # "null" (sandboxed iframes, file://) and anything malformed are refused, and so
        # is what a browser never sends but urlsplit would tidy into an allowed origin:
        # whitespace or control characters (it drops tabs and line breaks anywhere).
        if not (origin.isascii() and origin.isprintable()) or " " in origin:
            return False
        try:
            return normalize_origin(origin) in self._allowed
        except ValueError:
            return False
