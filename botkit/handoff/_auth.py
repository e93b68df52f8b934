"""Who calls the agent API: the bearer token of each request, checked against the shared
``api_token`` and every agent's own token, and the 401 for a request without a valid one.

Every token is compared, in constant time, whichever matches, so the time a refusal
takes says nothing about which token a guess came close to. The refusals are logged at
most once a minute, in constant words: anyone who reaches the port can trigger them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from botkit.throttled_warning import ThrottledWarning

__all__ = ["CALLER", "Caller", "Tokens"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: ``agent`` is the name of an agent's own token, None for the
    shared one (a tool, which names the agent itself)."""

    agent: str | None


# Set on each request that passed the check: its Caller.
CALLER = web.RequestKey("caller", Caller)


class Tokens:
    """The tokens the agent API takes.

    Args:
        token: the shared bearer token of agents' tools (None: only agents' own).
        agents: each agent's own token, by name.
        logger: where refusals are logged (throttled).
    """

    def __init__(
        self, token: str | None, agents: Mapping[str, str] | None, logger: logging.Logger
    ) -> None:
        self._tokens: list[tuple[bytes, str | None]] = [
            (secret.encode("utf-8"), name) for name, secret in (agents or {}).items()
        ]
        if token is not None:
            self._tokens.append((token.encode("utf-8"), None))
        # Constant text, at most once a minute: anyone who reaches the port can trigger it.
        self._refused = ThrottledWarning(
            logger, "agent API: refused requests without a valid token"
        )

    def identify(self, request: web.BaseRequest) -> Caller | None:
        """Whose valid token the request carries (``Authorization: Bearer <token>``),
        or None when it carries none."""
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        presented = given.strip().encode("utf-8", "replace")
        valid, owner = False, None
        for secret, name in self._tokens:
            if hmac.compare_digest(presented, secret):
                valid, owner = True, name
        return Caller(owner) if scheme.lower() == "bearer" and valid else None

    def refuse(self) -> web.Response:
        """The 401 for a request without a valid token (and the throttled warning)."""
        self._refused.warn()
        response = web.json_response({"error": "a valid bearer token is required"}, status=401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="botkit agents"'
        return response
