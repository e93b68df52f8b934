"""A hostile 429 ``Retry-After`` (NaN, negative, huge, text, an HTTP-date) and the
jittered backoff, through the real slack_sdk client against the fake Slack API."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from botkit.errors import ConnectorError
from botkit.retry import Backoff
from botkit.testing.fake_slack import FakeSlack
from connectors.slack._api import SlackApi
from connectors.slack.config import SlackRetry


def _api(fake: FakeSlack, **retry: float) -> SlackApi:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[])
    return SlackApi(client, SlackRetry(**retry), 0.0)


def _gaps(fake: FakeSlack, method: str) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(fake.calls_to(method))]


@pytest.mark.parametrize(
    "header", [math.nan, math.inf, -5, "soon"], ids=["nan", "inf", "negative", "text"]
)
async def test_an_unusable_retry_after_is_waited_as_one_second(
    fake_slack: FakeSlack, header: object
) -> None:
    # "-5" was a zero wait: the lane retried at once, as often as Slack kept refusing,
    # until give_up_after_s (300 s of requests as fast as they could go).
    api = _api(fake_slack, give_up_after_s=20.0)
    fake_slack.fail("chat.postMessage", 2, retry_after=header)  # type: ignore[arg-type]
    await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C1", "text": "hi"}), 10)
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert min(_gaps(fake_slack, "chat.postMessage")) >= 0.95
    assert [m.text for m in fake_slack.thread("C1", None)] == ["hi"]


@pytest.mark.parametrize("header", [10**9, "1" * 400], ids=["1e9", "long"])
async def test_a_huge_retry_after_is_an_hour_and_the_send_gives_up_at_once(
    fake_slack: FakeSlack, header: object
) -> None:
    api = _api(fake_slack, give_up_after_s=20.0)
    fake_slack.fail("chat.postMessage", 1, retry_after=header)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match=r"next try \(3600\.0s on\)"):
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C2", "text": "a"}), 10)
    # The lane is held for the clamped hour, not for 31 years: a later send with a
    # deadline past the hour would wait for it and then go.
    with pytest.raises(ConnectorError, match=r"C2 is held for 3600s more"):
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C2", "text": "b"}), 10)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_an_http_date_retry_after_is_waited_until_that_time(fake_slack: FakeSlack) -> None:
    # RFC 9110 allows a date; it was read as unusable and waited as 1 s.
    api = _api(fake_slack, give_up_after_s=20.0)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    fake_slack.fail("chat.postMessage", 1, retry_after=format_datetime(when, usegmt=True))  # type: ignore[arg-type]
    await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C3", "text": "hi"}), 15)
    [gap] = _gaps(fake_slack, "chat.postMessage")
    assert 1.5 <= gap <= 4.5, gap


async def test_chat_update_is_held_workspace_wide_for_a_clamped_retry_after(
    fake_slack: FakeSlack,
) -> None:
    api = _api(fake_slack, give_up_after_s=20.0)
    posted = await api.send("chat.postMessage", {"channel": "C4", "text": "x"})
    fake_slack.fail("chat.update", 1, retry_after=-5)  # type: ignore[arg-type]
    payload = {"channel": "C4", "ts": posted["ts"], "text": "y"}
    await asyncio.wait_for(api.send("chat.update", payload), 10)
    assert [c.status for c in fake_slack.calls_to("chat.update")] == [429, 200]
    assert min(_gaps(fake_slack, "chat.update")) >= 0.95


def test_backoff_is_the_shared_one_with_equal_jitter(fake_slack: FakeSlack) -> None:
    api = _api(fake_slack, initial_backoff_s=0.5, max_backoff_s=3.0, max_attempts=10)
    api.rng = random.Random(11)
    waits = [api._backoff(n, "chat.postMessage", "test") for n in range(1, 7)]
    rng = random.Random(11)
    assert waits == [Backoff(0.5, 3.0).delay(n, rng) for n in range(1, 7)]
    nominal = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert all(n / 2 <= w <= n for w, n in zip(waits, nominal, strict=True))
    assert api._backoff(10, "chat.postMessage", "test") is None  # attempts used up
