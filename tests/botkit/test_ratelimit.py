"""The shared token bucket (botkit.ratelimit), driven by an injected clock."""

from __future__ import annotations

import pytest

from botkit.ratelimit import KeyedLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_tells_the_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token at 2 per second
    assert bucket.refusals == 1
    assert bucket.take(2.0) == pytest.approx(1.0)
    assert bucket.refusals == 2


def test_bucket_refills_continuously_up_to_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        bucket.take()
    clock.now += 0.5  # one token back
    assert bucket.take() == 0.0
    assert bucket.refusals == 0
    assert bucket.take() > 0.0
    clock.now += 3600.0  # long idle: never more than the burst
    assert bucket.is_full()
    assert [bucket.take() for _ in range(4)][-1] > 0.0
    assert bucket.refusals == 1


def test_refund_gives_back_at_most_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    bucket.take(2.0)
    bucket.refund(5.0)
    assert bucket.is_full()
    assert bucket.take(3.0) == pytest.approx(1.0)


def test_keys_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=1.0, burst=1, max_keys=10, clock=clock)
    assert limiter.take(("web", "a")) == 0.0
    assert limiter.take(("web", "a")) == pytest.approx(1.0)
    assert limiter.refusals(("web", "a")) == 1
    assert limiter.take(("web", "b")) == 0.0
    assert limiter.refusals(("web", "b")) == 0
    assert limiter.refusals("never seen") == 0


def test_table_never_passes_the_bound_and_evicts_least_recently_used() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=0.001, burst=2, max_keys=3, clock=clock)
    for key in ("a", "b", "c"):
        limiter.take(key)
    limiter.take("a")  # "a" is now the most recently used; "b" the least
    limiter.take("d")
    assert len(limiter) == 3
    assert "b" not in limiter
    assert all(key in limiter for key in ("a", "c", "d"))
    for i in range(1000):  # a flood of forged keys
        limiter.take(f"forged-{i}")
        assert len(limiter) <= 3


def test_refilled_buckets_go_before_the_least_recently_used() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=1.0, burst=1, max_keys=2, clock=clock)
    limiter.take("old")
    clock.now += 10.0  # "old" refills: the same as a fresh bucket
    limiter.take("busy")
    limiter.take("new")
    assert "old" not in limiter and "busy" in limiter and "new" in limiter


def test_an_evicted_key_seen_again_starts_full() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=0.001, burst=2, max_keys=2, clock=clock)
    assert [limiter.take("a") for _ in range(3)][-1] > 0.0  # "a" is empty and refused
    limiter.take("b")
    limiter.take("c")  # evicts "a", the least recently used
    assert "a" not in limiter
    limiter.refund("a", 1.0)  # nothing to give back to a forgotten key
    assert "a" not in limiter
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1000.0)]
    assert limiter.refusals("a") == 1
