"""Small HTTP helpers shared by the handlers: JSON errors and bounded JSON bodies."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from botkit.http_json import JsonBodyError, Refusal, read_json_object

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


# Each refusal of ``botkit.http_json`` as this API documents it (docs/web.md, "HTTP
# API"): its error code and message; ``{}`` is the limit in bytes.
_BODY_ERRORS: dict[Refusal, tuple[str, str]] = {
    "too_large": ("too_large", "body larger than {} bytes"),
    "compressed": ("unsupported_encoding", "compressed bodies are not accepted"),
    "media_type": ("unsupported_media_type", "send application/json"),
    "not_json": ("bad_json", "body is not valid JSON"),
    "not_object": ("bad_json", "body must be a JSON object"),
}


async def read_json(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """Read a JSON object body of at most ``max_bytes`` (``botkit.http_json``: the
    declared length checked before anything is read, a chunked body stopped as soon as
    it passes the limit, compressed, non-UTF-8 and non-standard JSON refused).

    Raises:
        BadRequest: the refusal as this API's JSON error (413, 415 or 400).
    """
    try:
        return await read_json_object(request, max_bytes=max_bytes)
    except JsonBodyError as exc:
        code, message = _BODY_ERRORS[exc.reason]
        raise BadRequest(exc.status, code, message.format(max_bytes)) from None
