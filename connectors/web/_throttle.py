"""A warning that is logged at most once per interval.

A misconfigured site refuses every visitor the same way; one line a minute tells the
operator, a line per visitor would drown the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RefusalWarnings", "ThrottledWarning", "shown"]


class ThrottledWarning:
    """Logs one fixed warning at most once per ``interval_s``, counting what it skipped.

    Args:
        logger: where the warning goes.
        message: the warning text (a constant: never request data, never a credential);
            a ``%s`` template when ``warn`` is given values for it.
        interval_s: shortest time between two warnings.
        clock: seconds (any epoch); a clock that jumps backwards logs again at once
            rather than staying silent until it catches up.
    """

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._message = message
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self._skipped = 0

    def warn(self, *args: object) -> bool:
        """Log the warning unless it was logged less than ``interval_s`` ago.

        Args:
            *args: values for the ``%s`` in ``message`` (the caller vouches that they are
                safe to log: an origin or an IP, never a token or hash).

        Returns:
            Whether it was logged this time.
        """
        now = self._clock()
        if self._last is not None and 0 <= now - self._last < self._interval_s:
            self._skipped += 1
            return False
        self._last = now
        skipped, self._skipped = self._skipped, 0
        suffix = f" ({skipped} more since the last warning)" if skipped else ""
        self._logger.warning("%s%s", self._message % args if args else self._message, suffix)
        return True


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
            "allowed_origins (origins match exactly: scheme, host with or without www., port)"
        )
        self._sockets = self._make(
            "web: refused a WebSocket from %s: max_connections_per_ip sockets are open from "
            "it already; behind a reverse proxy, set trust_forwarded_for = true"
        )
        self._connects = self._make(
            "web: refused connections from %s: over connect_rate; behind a reverse proxy, "
            "set trust_forwarded_for = true"
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

    def identity(self, code: str) -> None:
        """A visitor's identity refused; only the reason code is logged."""
        if code in _ROUTINE_IDENTITY_CODES:
            return
        warning = self._identity.get(code)
        if warning is None:
            warning = self._identity[code] = self._make(
                f"web: refused a visitor's identity: {code} (check how the site computes "
                "user_hash / user_token and which site_key and secrets it uses)"
            )
        warning.warn()


# A session token that ran out is the normal end of a visit, and an API call without a
# token is a client's (or a scanner's) mistake: neither says the deployment is wrong.
_ROUTINE_IDENTITY_CODES = frozenset({"expired_token", "missing_token"})
