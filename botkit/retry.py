"""Waits between tries of a call to another service: exponential backoff with jitter,
and the server's ``Retry-After`` made safe to sleep on.

Jitter matters because failures are correlated: when Slack or Telegram comes back after
an outage, every replica of the bot (and every reply queued in each) failed at about the
same moment, so with a plain doubling they would all try again at the same moments too,
hitting the service in synchronized waves that can knock it over again. A random part
of each wait spreads those tries out.

The policy is "equal jitter" (``jitter=0.5``): each wait is drawn between half and all of
the exponential delay. "Full jitter" (between 0 and all of it) spreads tries a little
more, but may draw a wait near zero after any failure, so one retry loop that never gives
up (Telegram's long polling through an outage) could ask again at once, many times over
an outage. Equal jitter keeps each wait at least half the nominal one: the backoff grows
for certain while tries still spread over a window as wide as that floor.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

__all__ = [
    "DEFAULT_RETRY_AFTER_S",
    "MAX_RETRY_AFTER_S",
    "Backoff",
    "RandomSource",
    "clamp_retry_after",
]

# The wait used when a server's Retry-After is missing or unusable.
DEFAULT_RETRY_AFTER_S = 1.0
# The longest Retry-After honoured: a longer one is a broken server or proxy (Slack and
# Telegram ask for seconds to minutes), and sleeping on it would stall a channel for days.
MAX_RETRY_AFTER_S = 3600.0


class RandomSource(Protocol):
    """What ``Backoff.delay`` draws from: ``random.Random`` (seeded in tests)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter.

    The nominal wait after the ``n``-th failure in a row is ``initial * multiplier**(n-1)``,
    at most ``maximum``; the wait returned is that less a random part of up to ``jitter``
    of it (0: none, 0.5: equal jitter, 1: full jitter).

    Attributes:
        initial: nominal wait after the first failure, in seconds (>= 0).
        maximum: the longest nominal wait (>= 0).
        multiplier: growth per failure (>= 1).
        jitter: the fraction of each wait that is random, 0-1.
    """

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial >= 0):
            raise ValueError(f"initial must be a finite number >= 0, not {self.initial!r}")
        if not (math.isfinite(self.maximum) and self.maximum >= 0):
            raise ValueError(f"maximum must be a finite number >= 0, not {self.maximum!r}")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"multiplier must be a finite number >= 1, not {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter!r}")

    def nominal(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row, before jitter (0 for none)."""
        if failures <= 0:
            return 0.0
        try:
            # A loop that never gives up counts failures without end: 2.0**1100 overflows.
            grown = self.initial * self.multiplier ** (failures - 1)
        except OverflowError:
            # Past float's range: as long as can be, unless nothing times it is nothing
            # (initial = 0 waits 0 s after any number of failures, not the maximum).
            grown = math.inf if self.initial > 0 else 0.0
        return min(self.maximum, grown)

    def delay(self, failures: int, rng: RandomSource | None = None) -> float:
        """Seconds to wait after ``failures`` failures in a row; ``rng`` is the random
        source (the ``random`` module's when None)."""
        draw = random.random() if rng is None else rng.random()
        return self.nominal(failures) * (1.0 - self.jitter * draw)


def clamp_retry_after(
    value: object,
    maximum: float = MAX_RETRY_AFTER_S,
    *,
    default: float = DEFAULT_RETRY_AFTER_S,
    now: datetime | None = None,
) -> float:
    """A server's ``Retry-After`` as seconds that are safe to sleep on: in 0-``maximum``.

    ``value`` is what arrived: a number, a ``timedelta``, or header text (seconds, or an
    HTTP-date as RFC 9110 allows). A huge wait becomes ``maximum``, a numeral past
    float's range (``10**400``, ``"1e999"``) included. What cannot be a wait becomes
    ``default``: nothing, NaN (it compares false with everything, so deadline checks
    pass and sleeps do not happen: a tight loop), infinity (no server means it: sleeping
    ``maximum`` on it would pause a whole channel for an hour), a negative number or an
    HTTP-date in the past (a zero wait here would retry at once against a server that
    keeps refusing), or text that is neither.

    ``now`` is the time an HTTP-date is counted from (the current time when None).
    """
    seconds = _seconds(value, now)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        seconds = default
    return min(seconds, maximum)


def _seconds(value: object, now: datetime | None) -> float | None:
    if isinstance(value, bool):  # an int to Python, never a wait
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int past float's range: huge, but a number
            return sys.float_info.max
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isinf(seconds) and "inf" not in text.lower():
            return sys.float_info.max  # a numeral past float's range ("1e999")
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as HTTP-dates are
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()  # negative: in the past
