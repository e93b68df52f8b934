"""Small HTTP helpers shared by the handlers: JSON errors and bounded JSON bodies."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from botkit._json import loads_json

__all__ = [
    "CAP_RETRY_S",
    "RETRY_AFTER_S",
    "SHUTTING_DOWN",
    "BadRequest",
    "json_error",
    "rate_limited",
    "read_json",
    "retry_later",
    "shutting_down",
    "unavailable",
]

# What a client refused by a cap on what is open at once (sockets and waiting polls, or
# uploads, per client IP) is told to wait. No bucket says when a place frees up (when
# another socket, poll or upload ends), so a short fixed pause: long enough that a
# client obeying it does not spin, short enough that it is soon back once one has.
CAP_RETRY_S = 5.0
# What a client waits before retrying what the server could not take now (503: the store
# failed, too many uploads at once, the process is shutting down): long enough that a
# client obeying it does not hammer a database that is down, short enough for a chat.
RETRY_AFTER_S = 5.0
# The server's own words for a refusal while the process shuts down (for developers:
# the widget shows its own). Behind a load balancer the retry reaches another replica.
SHUTTING_DOWN = "the chat server is restarting; retry in a few seconds"


class BadRequest(Exception):
    """A request the handler refuses; turned into a JSON error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        """The JSON error response for this refusal."""
        return json_error(self.status, self.code, self.message)


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": code, "message": message}`` with ``status``."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def retry_later(code: str, message: str, wait_s: float, status: int = 429) -> web.Response:
    """An error to retry after ``wait_s``: its ``Retry-After`` header (whole seconds, at
    least 1) and, in the JSON body, the exact wait as ``retry_after``."""
    return web.json_response(
        {"error": code, "message": message, "retry_after": round(wait_s, 3)},
        status=status,
        headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
    )


def unavailable(code: str, message: str) -> web.Response:
    """503 ``code``: the server cannot take this now; retry after ``RETRY_AFTER_S``."""
    return retry_later(code, message, RETRY_AFTER_S, status=503)


def shutting_down() -> web.Response:
    """503 ``shutting_down``: the process is stopping (its shutdown grace period): it
    takes no new message, socket, long poll or session; retry (elsewhere) shortly."""
    return unavailable("shutting_down", SHUTTING_DOWN)


def rate_limited(wait_s: float, what: str = "requests") -> web.Response:
    """429 ``rate_limited``: over a rate, retry after ``wait_s``."""
    return retry_later("rate_limited", f"too many {what}; retry after {wait_s:.2f} s", wait_s)


async def read_json(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """Read a JSON object body of at most ``max_bytes``.

    The declared length is checked before anything is read, and aiohttp's
    ``client_max_size`` (set to the same limit) stops a chunked body early, so an
    oversized upload costs at most one chunk of memory.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest(413, "too_large", f"body larger than {max_bytes} bytes")
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        # Compressed bodies would let a small upload inflate past the limit.
        raise BadRequest(415, "unsupported_encoding", "compressed bodies are not accepted")
    if request.content_type != "application/json":
        raise BadRequest(415, "unsupported_media_type", "send application/json")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise BadRequest(413, "too_large", f"body larger than {max_bytes} bytes")
    try:
        data = loads_json(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise BadRequest(400, "bad_json", "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(400, "bad_json", "body must be a JSON object")
    return data
