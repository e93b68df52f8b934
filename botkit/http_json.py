"""JSON request bodies, read the same way by every botkit HTTP server that takes them
(the web channel's HTTP API and the agent API): one reader, so that a protection added
for one server cannot be missing from the other.

A body is taken only as a JSON object, in UTF-8, of at most ``max_bytes``, sent as it
is. Refused, each with its :class:`JsonBodyError` ``reason``:

* ``too_large`` (413): a declared ``Content-Length`` over the limit, before anything is
  read; a body without one (chunked) as soon as what arrived passes it, so an oversized
  upload costs at most one chunk of memory, whatever the app's ``client_max_size``.
* ``compressed`` (415): any ``Content-Encoding`` but ``identity``, in every such header
  and every element of its comma-separated list (``identity, gzip`` too). botkit's
  servers never inflate a body (``botkit.http_server``): a small compressed upload could
  inflate far past the limit, and no client botkit serves compresses its JSON.
* ``media_type`` (415): not ``application/json`` (a ``charset`` parameter is ignored:
  the body is read as UTF-8 whatever it says, RFC 8259 section 8.1).
* ``not_json`` (400): not standard JSON: not valid UTF-8 (UTF-16, or surrogates encoded
  as UTF-8, which ``json.loads`` would take from bytes), ``NaN``, ``Infinity`` or
  ``-Infinity`` (no such values in RFC 8259; a client sending them is broken), or
  nested too deeply to parse.
* ``not_object`` (400): JSON, but not an object (an array, a string, ``null``...).

A key given twice keeps its last value, as ``json.loads`` does (RFC 8259 leaves this to
the reader; neither API's fields mean anything when repeated). A UTF-8 byte order mark
before the JSON is skipped (RFC 8259 allows a reader to).

Each server turns a :class:`JsonBodyError` into its own documented error body
(``connectors.web._http.read_json``, ``botkit.handoff._body.read_object``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web

from botkit.errors import BotkitError

__all__ = ["STATUS", "JsonBodyError", "Refusal", "loads_json", "read_json_object"]

Refusal = Literal["too_large", "compressed", "media_type", "not_json", "not_object"]
# The HTTP status of each refusal: the same on every server.
STATUS: dict[Refusal, int] = {
    "too_large": 413,
    "compressed": 415,
    "media_type": 415,
    "not_json": 400,
    "not_object": 400,
}
# What is read from the stream at a time: the most a body over the limit costs past it.
_CHUNK = 64 * 1024


class JsonBodyError(BotkitError):
    """A request body refused: ``reason`` says why and ``status`` is its HTTP status."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason: Refusal = reason
        self.status = STATUS[reason]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` of standard JSON only; bytes must be UTF-8.

    ``json.loads`` itself takes ``NaN`` and ``Infinity``, and from bytes it guesses
    UTF-16 or UTF-32 and lets surrogates encoded as UTF-8 through; none of that is
    JSON as RFC 8259 defines it for a body sent between systems.

    Raises:
        ValueError: not JSON, not UTF-8 (``UnicodeDecodeError``), or ``NaN`` /
            ``Infinity`` / ``-Infinity`` in it.
        RecursionError: nested too deeply.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8").removeprefix("\ufeff")  # strict: no surrogates
    return json.loads(text, parse_constant=_no_constant)


def _encoded(request: web.BaseRequest) -> bool:
    """Whether the body has any content coding but ``identity``: every
    ``Content-Encoding`` header (a proxy may add one), each element of its list, spaces
    and case aside; empty elements are nothing (RFC 9110 section 5.6.1)."""
    for value in request.headers.getall("Content-Encoding", ()):
        for coding in value.split(","):
            if coding.strip().lower() not in ("", "identity"):
                return True
    return False


async def _read_bounded(request: web.BaseRequest, max_bytes: int) -> bytes:
    """The body, refused as soon as more than ``max_bytes`` of it arrived. Read from
    the stream itself, not with ``request.read()``, so the bound is this one and not
    the app's ``client_max_size``, whatever that is set to."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise JsonBodyError("too_large", f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(
    request: web.BaseRequest, *, max_bytes: int, optional: bool = False
) -> dict[str, Any]:
    """The request's body: a JSON object of at most ``max_bytes`` (see the module).

    Args:
        request: the request, its body not read yet.
        max_bytes: the most bytes the body may have.
        optional: a request without a body reads as ``{}``.

    Raises:
        JsonBodyError: the body is refused; its ``reason`` says why.
    """
    if optional and not request.body_exists:
        return {}
    if request.content_length is not None and request.content_length > max_bytes:
        raise JsonBodyError("too_large", f"the body is larger than {max_bytes} bytes")
    if _encoded(request):
        raise JsonBodyError("compressed", "compressed bodies are not accepted")
    if request.content_type != "application/json":
        raise JsonBodyError("media_type", "the body must be application/json")
    raw = await _read_bounded(request, max_bytes)
    try:
        data = loads_json(raw)
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise JsonBodyError("not_json", "the body is not standard JSON in UTF-8") from None
    if not isinstance(data, dict):
        raise JsonBodyError("not_object", "the body must be a JSON object")
    return data
