"""Reading the agent API's request bodies with ``botkit.http_json``, as every botkit
server reads them, and its refusals in this API's error format (``{"error": "..."}``,
docs/agents.md): 413 over the size limit, 415 compressed or not ``application/json``,
400 not standard JSON in UTF-8 (``NaN`` is not JSON) or not an object."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botkit.http_json import JsonBodyError, Refusal, read_json_object

__all__ = ["MAX_BODY", "BodyError", "read_object"]

# The largest body taken (also the app's client_max_size): an agent's message is at most
# a few thousand characters.
MAX_BODY = 256 * 1024
# Each refusal's words in this API's errors. 413 keeps the words it had when aiohttp's
# client_max_size gave it (clients may match them).
_MESSAGES: dict[Refusal, str] = {
    "too_large": "Request Entity Too Large",
    "compressed": "compressed bodies are not accepted",
    "media_type": "the body must be application/json",
    "not_json": "the body must be JSON",
    "not_object": 'the body must be a JSON object like {"text": "..."}',
}


class BodyError(Exception):
    """A body the API does not take: ``status`` (400, 413, 415) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's body, a JSON object of at most ``MAX_BODY`` bytes.

    Args:
        optional: a request without a body reads as ``{}``.

    Raises:
        BodyError: too large (413), compressed (415), not ``application/json`` (415),
            not standard JSON in UTF-8 or not an object (400).
    """
    try:
        return await read_json_object(request, max_bytes=MAX_BODY, optional=optional)
    except JsonBodyError as exc:
        raise BodyError(exc.status, _MESSAGES[exc.reason]) from None
