"""Sending a chat-completions request, retried within one deadline.

The ``openai`` client retries on its own, but it honours ``Retry-After`` up to two
minutes and retries a read timeout too, so a customer could wait many times
``timeout_seconds`` for the busy reply (a 429 with ``Retry-After: 20`` and two retries:
40 s and three requests). Here each try gets what is left of one deadline, and a wait
the server asks for that would pass the deadline is not waited for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import openai

from botkit.backends._openai_errors import is_retryable, retry_after
from botkit.errors import BackendError
from botkit.retry import Backoff
from botkit.throttled_warning import ThrottledWarning

__all__ = ["NoAnswerError", "create_within"]

log = logging.getLogger("botkit.backends.openai")

# One line a minute per server, with how many it skipped: a blip of a few seconds
# under load retried every reply (130 lines in 3 s); the first line says it began.
_RETRY_LINE_S = 60.0
# Per server (``where``): one's blip must not hide another's first line. A process
# talks to one or two servers (replies, translation), so this stays that small.
_retry_lines: dict[str, ThrottledWarning] = {}


def _retry_line(where: str) -> ThrottledWarning:
    line = _retry_lines.get(where)
    if line is None:
        line = _retry_lines[where] = ThrottledWarning(
            log,
            "openai: %s (%s); trying again in %.1f s",
            interval_s=_RETRY_LINE_S,
            level=logging.INFO,
        )
    return line


class NoAnswerError(BackendError):
    """The server started no reply before the deadline (no answer, not a refusal)."""


# Between tries when the server names no wait: 0.5 s doubling up to 8 s, as the openai
# client does.
_BACKOFF = Backoff(initial=0.5, maximum=8.0)


async def create_within(
    client: openai.AsyncOpenAI,
    args: dict[str, Any],
    *,
    deadline: float,
    retries: int,
    where: str,
    timeout_s: float,
) -> openai.AsyncStream[Any]:
    """Send the request until the server starts a reply, at most ``retries`` times more,
    all before ``deadline`` (the event loop's clock).

    Raises:
        openai.APIError: the server refused (its last answer).
        NoAnswerError: no answer before the deadline (``timeout_s`` after the start).
    """
    loop = asyncio.get_running_loop()
    once = client.with_options(max_retries=0)
    for attempt in range(retries + 1):
        try:
            async with asyncio.timeout_at(deadline):
                stream: openai.AsyncStream[Any] = await once.chat.completions.create(**args)
                return stream
        except TimeoutError:
            raise NoAnswerError(
                f"the model server at {where} did not answer within {timeout_s:g} s"
            ) from None
        except openai.APIError as exc:
            wait = retry_after(exc)
            if wait is None:
                wait = _BACKOFF.delay(attempt + 1)
            if attempt >= retries or not is_retryable(exc) or loop.time() + wait >= deadline:
                raise
            _retry_line(where).warn(where, exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the last try returned or raised
