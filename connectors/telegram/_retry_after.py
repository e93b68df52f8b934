"""A Telegram 429's ``retry_after`` as a wait that is safe to sleep on.

python-telegram-bot raises ``RetryAfter`` with the number from the answer's
``parameters.retry_after``; nothing checks it. Both the poller and the sender sleep on it,
so it is clamped (``botkit.retry.clamp_retry_after``) on its way in and again when read.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from telegram.error import RetryAfter
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from botkit.retry import MAX_RETRY_AFTER_S, clamp_retry_after

__all__ = ["SaneRetryAfterRequest", "retry_after_seconds"]


def retry_after_seconds(exc: RetryAfter) -> float:
    """``exc.retry_after`` as a safe wait in seconds (an int or a timedelta, depending on
    PTB settings): a negative one is 1 s, a huge one an hour (``botkit.retry``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return clamp_retry_after(value, MAX_RETRY_AFTER_S)


class SaneRetryAfterRequest(HTTPXRequest):
    """``HTTPXRequest`` that makes a 429's ``parameters.retry_after`` a wait PTB can read.

    python-telegram-bot builds ``RetryAfter`` from the raw JSON value, and a NaN, an
    infinity, a huge number or text (a broken proxy or local Bot API server) makes it
    raise ``ValueError``, ``OverflowError`` or ``AttributeError`` instead: a send fails
    with an error no retry handles, and the poller's listener dies. The value is clamped
    here first, as ``retry_after_seconds`` clamps it again.
    """

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        data = HTTPXRequest.parse_json_payload(payload)
        parameters = data.get("parameters") if isinstance(data, dict) else None
        if isinstance(parameters, dict) and "retry_after" in parameters:
            # Whole seconds, as the Bot API sends them (rounded up: never shorter).
            wait = clamp_retry_after(parameters["retry_after"], MAX_RETRY_AFTER_S)
            parameters["retry_after"] = math.ceil(wait)
        return data
