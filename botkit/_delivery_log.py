"""The lines a reply's delivery logs when its source fails, throttled per bot.

A backend that is overloaded or down fails every reply alike: 36 replies timing out
together logged 36 identical lines at once, and an outage one ERROR per message. Each
kind of failure is logged at most once a minute here, with the exception's own text (the
backend says why: "32 replies ... are in progress and none finished within 30 s") and a
count of the ones skipped; every one still goes to DEBUG, and the reply itself records
its source and error in the database (``StoredMessage.source``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from botkit.errors import BotkitError
from botkit.throttled_warning import ThrottledWarning

__all__ = ["DeliveryLog", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """``Type: message`` (the type alone when the message is empty)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class DeliveryLog:
    """One bot's throttled lines about failing reply sources (see the module docstring).

    Args:
        interval_s: shortest time between two lines of one kind.
        clock: seconds (any epoch), for tests.
    """

    # Kinds of failure kept (logger, source, exception type): a handful in practice;
    # forgetting the oldest only lets its next line out early.
    MAX_KINDS = 64

    def __init__(
        self, *, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._throttles: OrderedDict[tuple[str, ...], ThrottledWarning] = OrderedDict()

    def busy(self, logger: logging.Logger, where: str, exc: BaseException) -> None:
        """The backend was overloaded: the busy reply is given."""
        self._log(
            (logger.name, "busy"), logger, logging.WARNING,
            "%s: backend busy: %s", (where, str(exc) or type(exc).__name__), None,
        )  # fmt: skip

    def source_failed(
        self,
        logger: logging.Logger,
        where: str,
        source: str,
        wrappers: Sequence[str] | None,
        exc: BaseException,
    ) -> None:
        """The reply's source raised: the fallback reply is given. A bug (anything but a
        ``BotkitError``, which says all on purpose) keeps its traceback."""
        wrapped = f" (its stream wrapped by {', '.join(wrappers)})" if wrappers else ""
        self._log(
            (logger.name, "failed", source, type(exc).__qualname__),
            logger,
            logging.ERROR,
            "%s: reply source %r%s failed: %s",
            (where, source, wrapped, describe_error(exc)),
            None if isinstance(exc, BotkitError) else exc,
        )

    def _log(
        self,
        key: tuple[str, ...],
        logger: logging.Logger,
        level: int,
        message: str,
        args: tuple[object, ...],
        exc_info: BaseException | None,
    ) -> None:
        throttle = self._throttles.get(key)
        if throttle is None:
            throttle = self._throttles[key] = ThrottledWarning(
                logger, message, interval_s=self._interval_s, clock=self._clock, level=level
            )
            while len(self._throttles) > self.MAX_KINDS:
                self._throttles.popitem(last=False)
        self._throttles.move_to_end(key)
        if not throttle.warn(*args, exc_info=exc_info):
            logger.debug(message, *args)
