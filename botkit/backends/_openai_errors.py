"""What the OpenAI-compatible backend makes of the ``openai`` client's errors.

Servers word the same trouble differently, so the checks here match each wording seen:
a prompt over the context (vLLM "maximum context length", llama.cpp "exceeds the
available context size", TGI "must have less than" / "must be <=", OpenAI's code
``context_length_exceeded``), and an exhausted quota (OpenAI answers it with HTTP 429
like a rate limit, but waiting never helps: ``insufficient_quota``).
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import urlsplit

import openai

from botkit.errors import BackendBusyError, BackendError
from botkit.retry import clamp_retry_after

__all__ = [
    "backend_error",
    "cause",
    "context_overflow",
    "display_url",
    "is_retryable",
    "retry_after",
    "shorten",
]

# An error body worth showing is a sentence; an HTML page from a proxy is cut short.
_DETAIL_CHARS = 200
_BUSY_STATUSES = (429, 503)
_OVERFLOW_WORDS = re.compile(
    r"maximum context length|context_length_exceeded|exceeds? the available context size"
    r"|context size has been exceeded|must have less than|tokens \+ `max_new_tokens` must be"
    r"|prompt is too long|too many tokens",
    re.IGNORECASE,
)
# "maximum context length is 4096 tokens", "n_ctx": 4096, "must be <= 4096".
_LIMIT = re.compile(r"(?:context length is|must be <=|less than)\s*(\d+)", re.IGNORECASE)


def display_url(url: str) -> str:
    """``url`` without user info: safe for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def shorten(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _message(exc: openai.APIStatusError) -> str:
    """The server's own explanation, if it gave one (OpenAI-style JSON or plain text)."""
    body = exc.body
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        nested = error.get("message") if isinstance(error, dict) else error
        message = body.get("message") or nested
    elif isinstance(body, str):
        message = body
    if message is None:
        with contextlib.suppress(Exception):
            message = exc.response.text
    return shorten(re.sub(r"<[^>]*>", " ", str(message or "")))  # a proxy's HTML page


def _codes(exc: openai.APIStatusError) -> set[str]:
    """The error's ``code`` and ``type`` (OpenAI puts them in ``error``, vLLM at the top)."""
    found = {str(exc.code or ""), str(exc.type or "")}
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error")
        for where in (body, inner if isinstance(inner, dict) else {}):
            found |= {str(where.get("code") or ""), str(where.get("type") or "")}
    return found - {""}


def context_overflow(exc: openai.APIError) -> tuple[bool, int | None]:
    """Whether the server refused the request as longer than its context, and that
    context in tokens when its message says (else ``None``)."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 413, 422):
        return False, None
    text, body = _message(exc), exc.body
    if not (_OVERFLOW_WORDS.search(text) or "context_length_exceeded" in _codes(exc)):
        return False, None
    # The client hands over the body's "error" object when there is one.
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("n_ctx"), int):  # llama.cpp
        return True, int(inner["n_ctx"])
    found = _LIMIT.search(text)
    return True, int(found.group(1)) if found else None


def _quota(exc: openai.APIStatusError) -> bool:
    return "insufficient_quota" in _codes(exc)


def is_retryable(exc: openai.APIError) -> bool:
    """Whether trying again may help: what the client retries (connection errors,
    408/409/429/5xx), less an exhausted quota."""
    if isinstance(exc, openai.APITimeoutError):
        return False  # the wait is spent already
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return (status in (408, 409, 429) or status >= 500) and not _quota(exc)
    return False


def retry_after(exc: openai.APIError) -> float | None:
    """The seconds the server asked us to wait (``retry-after-ms``, OpenAI's, or
    ``Retry-After``), made safe by ``clamp_retry_after``; ``None`` when it named none."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    with contextlib.suppress(ValueError):
        return clamp_retry_after(float(headers.get("retry-after-ms", "")) / 1000)
    value = headers.get("retry-after")
    return None if value is None else clamp_retry_after(value)


def cause(exc: openai.APIConnectionError) -> str:
    found = exc.__cause__
    return f"{type(found).__name__}: {shorten(str(found))}" if found else exc.message


def backend_error(exc: openai.APIError, where: str, timeout: float) -> BackendError:
    """The backend error the bot reports for what the openai client raised."""
    if isinstance(exc, openai.APIStatusError):
        status, text = exc.status_code, _message(exc)
        detail = f": {text}" if text else ""
        if status == 429 and _quota(exc):
            return BackendError(
                f"the model server at {where} refuses requests: the account's quota is used "
                f"up (HTTP 429){detail}"
            )
        if status in _BUSY_STATUSES:
            return BackendBusyError(
                f"the model server at {where} is overloaded (HTTP {status}){detail}"
            )
        if status in (401, 403):
            return BackendError(
                f"the model server at {where} refused the API key (HTTP {status}){detail}; "
                "check [backend.openai] api_key"
            )
        if status == 404:
            return BackendError(
                f"the model server at {where} answered HTTP 404{detail}; check [backend.openai] "
                "base_url (usually ending in /v1) and model"
            )
        return BackendError(f"the model server at {where} answered HTTP {status}{detail}")
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(f"the model server at {where} did not answer within {timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"cannot reach the model server at {where} ({cause(exc)})")
    return BackendError(f"the model server at {where} failed: {shorten(exc.message)}")
