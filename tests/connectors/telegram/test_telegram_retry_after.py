"""A hostile 429 ``retry_after`` (NaN, negative, huge, text) and the jittered backoff,
through the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from telegram import Update
from telegram.error import RetryAfter
from tg_helpers import TOKEN, MakeTg, gaps

from botkit.retry import MAX_RETRY_AFTER_S, Backoff
from connectors.telegram.config import TelegramConfig
from connectors.telegram.polling import Poller

# PTB reads its deprecated int ``retry_after`` itself when building the exception.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# Infinity is as unusable as NaN: no server means it, and an hour's pause on it held
# every chat of the bot.
UNUSABLE = pytest.mark.parametrize(
    "value", [math.nan, math.inf, -5, "soon"], ids=["nan", "inf", "negative", "text"]
)


@UNUSABLE
async def test_a_send_waits_one_second_for_an_unusable_retry_after(
    make_tg: MakeTg, value: object
) -> None:
    # NaN and text made python-telegram-bot raise ValueError / AttributeError instead of
    # RetryAfter (the reply failed on an error no retry handles); -5 was no wait at all,
    # and each retry took 5 s off the reply's flood-wait total, so it never gave up.
    tg = await make_tg()
    fake = tg.fake
    fake.fail("sendMessage", retry_after=value, times=2)  # type: ignore[arg-type]
    fake.push(fake.updates.message(311, "flooded"))
    await tg.wait_answers(1, chat_id=311, within=15)
    calls = fake.calls_to("sendMessage", 311, ok=False)
    assert [c.status for c in calls] == [429, 429, 200]
    assert min(gaps([c.at for c in calls])) >= 0.95
    assert tg.answers(311) == ["echo: flooded"]


@pytest.mark.parametrize("value", [10**9, 1e300], ids=["1e9", "1e300"])
async def test_a_huge_retry_after_pauses_sends_an_hour_at_most(
    make_tg: MakeTg, value: object
) -> None:
    # 10**9 paused every send of the bot for 31 years; 1e300 made python-telegram-bot
    # raise OverflowError instead of RetryAfter. (Infinity waits a second: UNUSABLE.)
    tg = await make_tg()
    fake, flood = tg.fake, tg.connector.flood
    fake.fail("sendMessage", retry_after=value)  # type: ignore[arg-type]
    fake.push(fake.updates.message(312, "flooded"))

    async def failed() -> bool:
        items = await tg.history(312)
        return len(items) == 2 and items[1].status == "failed"

    for _ in range(200):  # the reply gives up at once: the wait is past max_retry_after_s
        if await failed():
            break
        await asyncio.sleep(0.05)
    assert await failed()
    left = flood._paused_until - flood.now()
    assert MAX_RETRY_AFTER_S - 60 < left <= MAX_RETRY_AFTER_S
    assert len(fake.calls_to("sendMessage", 312, ok=False)) == 1


@UNUSABLE
async def test_polling_waits_one_second_for_an_unusable_retry_after(
    make_tg: MakeTg, value: object
) -> None:
    # NaN and text: getUpdates raised ValueError / AttributeError, the one-by-one read
    # did too, and the listener died; -5: polled again at once.
    tg = await make_tg(run=False)
    fake = tg.fake
    fake.fail("getUpdates", retry_after=value, times=2)  # type: ignore[arg-type]
    fake.push(fake.updates.message(313, "hello"))
    await tg.run()
    await tg.wait_answers(1, chat_id=313, within=15)
    polls = fake.calls_to("getUpdates", ok=False)
    assert [c.status for c in polls[:3]] == [429, 429, 200]
    assert min(gaps([c.at for c in polls[:3]])) >= 0.95
    assert tg.run_task is not None and not tg.run_task.done()


class _Flooded:
    """A bot whose getUpdates always answers with ``RetryAfter(value)``."""

    def __init__(self, value: int) -> None:
        self.value = value

    async def get_updates(self, **_: object) -> tuple[Update, ...]:
        raise RetryAfter(self.value)


async def test_polling_waits_an_hour_at_most_for_a_huge_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise asyncio.CancelledError

    monkeypatch.setattr(asyncio, "sleep", sleep)
    config = TelegramConfig(token=TOKEN)
    poller = Poller(_Flooded(10**9), config, _never, str, skip=lambda *_: None)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await poller.run()
    assert slept == [MAX_RETRY_AFTER_S]


async def _never(_: Update) -> None:
    raise AssertionError("no update arrives")


def test_polling_backoff_survives_a_long_outage() -> None:
    # Through a long outage failures keep counting: 0.5 * 2 ** 1100 overflowed a float
    # (OverflowError after ~1,000 failures, about four hours at 15 s), ending polling.
    config = TelegramConfig(token=TOKEN)
    poller = Poller(_Flooded(1), config, _never, str, skip=lambda *_: None)  # type: ignore[arg-type]
    retry = config.retry
    assert retry.max_backoff_s / 2 <= poller._backoff(5000) <= retry.max_backoff_s


def test_polling_backoff_is_the_shared_one_with_equal_jitter() -> None:
    config = TelegramConfig(token=TOKEN, retry={"initial_backoff_s": 1, "max_backoff_s": 8})
    poller = Poller(_Flooded(1), config, _never, str, skip=lambda *_: None)  # type: ignore[arg-type]
    poller.rng = random.Random(5)
    waits = [poller._backoff(n) for n in range(1, 7)]
    rng = random.Random(5)
    assert waits == [Backoff(1.0, 8.0).delay(n, rng) for n in range(1, 7)]
    nominal = [1, 2, 4, 8, 8, 8]
    assert all(n / 2 <= w <= n for w, n in zip(waits, nominal, strict=True))
    assert len(set(waits)) == len(waits)  # jittered: replicas do not poll in step


async def test_send_retries_use_the_shared_backoff(make_tg: MakeTg) -> None:
    tg = await make_tg({"retry": {"attempts": 4, "initial_backoff_s": 0.2, "max_backoff_s": 1}})
    sender = tg.connector._sender
    assert sender is not None
    sender.rng = random.Random(9)
    fake = tg.fake
    fake.fail("sendMessage", status=502, times=2)
    fake.push(fake.updates.message(314, "shaky"))
    await tg.wait_answers(1, chat_id=314)
    calls = fake.calls_to("sendMessage", 314, ok=False)
    assert [c.status for c in calls] == [502, 502, 200]
    rng = random.Random(9)
    expected = [Backoff(0.2, 1.0).delay(n, rng) for n in (1, 2)]
    for gap, wait in zip(gaps([c.at for c in calls]), expected, strict=True):
        assert wait - 0.01 <= gap <= wait + 0.25
