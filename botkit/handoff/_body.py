"""Reading the agent API's request bodies: JSON objects, as every botkit server takes
them (docs/web.md): a compressed body is refused with 415 (it could inflate past the size
limit), so is one that is not ``application/json``, and only standard JSON is read
(``NaN`` or ``Infinity`` is not JSON: 400)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botkit._json import loads_json

__all__ = ["BodyError", "read_object"]


class BodyError(Exception):
    """A body the API does not take: ``status`` (400, 415) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's body, a JSON object.

    Args:
        optional: a request without a body reads as ``{}``.

    Raises:
        BodyError: compressed (415), not ``application/json`` (415), not standard JSON
            or not an object (400).
    """
    if optional and not request.body_exists:
        return {}
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise BodyError(415, "compressed bodies are not accepted")
    if request.content_type != "application/json":
        raise BodyError(415, "the body must be application/json")
    try:
        body = loads_json(await request.read())
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise BodyError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise BodyError(400, 'the body must be a JSON object like {"text": "..."}')
    return body
