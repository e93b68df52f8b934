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

__all__ = ["NoAnswerError", "create_within"]

log = logging.getLogger("botkit.backends.openai")

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
            log.info("openai: %s (%s); trying again in %.1f s", where, exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the last try returned or raised
