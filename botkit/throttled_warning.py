"""A warning logged at most once per interval, counting the ones it skipped.

What a misconfigured deployment refuses, it refuses for every visitor or event alike: one
line a minute tells the operator, a line per request would drown the log. Used by the
channels for their refusal warnings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["ThrottledWarning"]


class ThrottledWarning:
    """Logs one fixed warning at most once per ``interval_s``, counting what it skipped.

    Args:
        logger: where the warning goes.
        message: the warning text (a constant: never request data, never a credential);
            a ``%s`` template when ``warn`` is given values for it.
        interval_s: shortest time between two warnings.
        clock: seconds (any epoch); a clock that jumps backwards logs again at once
            rather than staying silent until it catches up.
        level: the logging level (a failure that is a bug: ``logging.ERROR``).
    """

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ) -> None:
        self._logger = logger
        self._level = level
        self._message = message
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self._skipped = 0

    def warn(self, *args: object, exc_info: BaseException | None = None) -> bool:
        """Log the warning unless it was logged less than ``interval_s`` ago.

        Args:
            *args: values for the ``%s`` in ``message`` (the caller vouches that they are
                safe to log: an origin or an IP, never a token or hash).
            exc_info: an exception whose traceback goes with the line (a bug's).

        Returns:
            Whether it was logged this time.
        """
        now = self._clock()
        if self._last is not None and 0 <= now - self._last < self._interval_s:
            self._skipped += 1
            return False
        self._last = now
        skipped, self._skipped = self._skipped, 0
        suffix = f" ({skipped} more since the last warning)" if skipped else ""
        text = self._message % args if args else self._message
        self._logger.log(self._level, "%s%s", text, suffix, exc_info=exc_info)
        return True
