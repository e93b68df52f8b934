"""botkit.retry: the backoff's waits (seeded jitter) and Retry-After clamping."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from botkit.retry import DEFAULT_RETRY_AFTER_S, MAX_RETRY_AFTER_S, Backoff, clamp_retry_after


class _Fixed:
    """A random source that always draws ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_nominal_waits_double_up_to_the_maximum() -> None:
    backoff = Backoff(0.5, 4.0)
    assert [backoff.nominal(n) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_equal_jitter_takes_off_at_most_half() -> None:
    backoff = Backoff(1.0, 60.0)  # jitter 0.5 by default
    assert backoff.delay(3, _Fixed(0.0)) == 4.0
    assert backoff.delay(3, _Fixed(0.5)) == 3.0
    assert backoff.delay(3, _Fixed(0.999)) == pytest.approx(2.002)


def test_seeded_waits_are_repeatable_and_spread_within_bounds() -> None:
    backoff = Backoff(1.0, 8.0)
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 8)]
    assert first == [backoff.delay(n, random.Random(7)) for n in range(1, 8)]
    rng = random.Random(42)
    draws = [backoff.delay(4, rng) for _ in range(2000)]
    assert min(draws) >= 4.0 and max(draws) <= 8.0
    # Many replicas failing together do not retry together: the waits spread out.
    assert len({round(d, 3) for d in draws}) > 1000
    assert 5.8 < sum(draws) / len(draws) < 6.2  # uniform over [4, 8]: mean 6


def test_no_jitter_and_full_jitter() -> None:
    assert Backoff(1.0, 60.0, jitter=0.0).delay(2, _Fixed(0.9)) == 2.0
    assert Backoff(1.0, 60.0, jitter=1.0).delay(2, _Fixed(0.75)) == 0.5


def test_a_loop_that_never_gives_up_stays_at_the_maximum() -> None:
    # 0.5 * 2 ** 1100 overflows a float: the poller crashed after ~1,000 failures.
    backoff = Backoff(0.5, 15.0)
    assert backoff.nominal(1100) == 15.0
    assert backoff.delay(10**6, _Fixed(0.0)) == 15.0


def test_a_zero_initial_wait_stays_zero() -> None:
    assert Backoff(0.0, 10.0).delay(50, _Fixed(0.3)) == 0.0


@pytest.mark.parametrize("failures", [1024, 1025, 1100, 10**6])
def test_a_zero_initial_wait_stays_zero_past_floats_range(failures: int) -> None:
    # 2.0 ** 1024 overflows: the wait jumped from 0 to the maximum after 1,024 failures.
    assert Backoff(0.0, 15.0).nominal(failures) == 0.0


def test_the_module_random_source_is_used_without_one() -> None:
    assert 1.0 <= Backoff(2.0, 2.0).delay(1) <= 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0, "maximum": 1.0},
        {"initial": math.nan, "maximum": 1.0},
        {"initial": 1.0, "maximum": math.inf},
        {"initial": 1.0, "maximum": 1.0, "multiplier": 0.5},
        {"initial": 1.0, "maximum": 1.0, "jitter": 1.5},
        {"initial": 1.0, "maximum": 1.0, "jitter": math.nan},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, 2.0),
        (2.5, 2.5),
        ("3", 3.0),
        (" 4 ", 4.0),
        (b"5", 5.0),
        (timedelta(seconds=6), 6.0),
        (0, 0.0),
        (math.nan, DEFAULT_RETRY_AFTER_S),
        ("nan", DEFAULT_RETRY_AFTER_S),
        (-5, DEFAULT_RETRY_AFTER_S),
        ("-5", DEFAULT_RETRY_AFTER_S),
        (timedelta(seconds=-5), DEFAULT_RETRY_AFTER_S),
        ("soon", DEFAULT_RETRY_AFTER_S),
        ("", DEFAULT_RETRY_AFTER_S),
        (None, DEFAULT_RETRY_AFTER_S),
        (True, DEFAULT_RETRY_AFTER_S),
        ([3], DEFAULT_RETRY_AFTER_S),
        (10**9, MAX_RETRY_AFTER_S),
        (1e300, MAX_RETRY_AFTER_S),
        (10**400, MAX_RETRY_AFTER_S),  # a number, past float's range
        ("1" * 400, MAX_RETRY_AFTER_S),
        ("1e999", MAX_RETRY_AFTER_S),
        # Infinity is no wait a server means: an hour's pause of a whole channel on it
        # was too much.
        (math.inf, DEFAULT_RETRY_AFTER_S),
        (-math.inf, DEFAULT_RETRY_AFTER_S),
        ("inf", DEFAULT_RETRY_AFTER_S),
        (" Infinity ", DEFAULT_RETRY_AFTER_S),
        (timedelta.max, MAX_RETRY_AFTER_S),
    ],
)
def test_retry_after_is_always_a_finite_wait(value: object, expected: float) -> None:
    assert clamp_retry_after(value) == expected


def test_the_maximum_and_default_are_the_callers() -> None:
    assert clamp_retry_after(500, 60.0) == 60.0
    assert clamp_retry_after("soon", 60.0, default=7.0) == 7.0


NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Sun, 29 Nov 2026 12:00:30 GMT", 30.0),
        # In the past: as a negative number (a zero wait retried at once).
        ("Sun, 29 Nov 2026 11:59:00 GMT", DEFAULT_RETRY_AFTER_S),
        ("Sun, 29 Nov 2026 12:00:00 GMT", 0.0),  # now
        ("Mon, 30 Nov 2026 12:00:00 GMT", MAX_RETRY_AFTER_S),  # a day: clamped
        ("Sun, 29 Nov 2026 12:00:10 -0000", 10.0),
        ("Sun, 32 Nov 2026 12:00:10 GMT", DEFAULT_RETRY_AFTER_S),  # no such date
    ],
)
def test_an_http_date_counts_from_now(header: str, expected: float) -> None:
    assert clamp_retry_after(header, now=NOW) == expected
