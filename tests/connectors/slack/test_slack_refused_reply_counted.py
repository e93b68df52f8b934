"""The audit's case: Slack answers ``invalid_auth`` while DMs come in. The replies it
refuses are counted ``failed`` as the database has them, never ``sent`` (real
slack-bolt / slack_sdk against the fake Slack Web API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_helpers import FAST, SlackHarness, message, slack_settings

from botkit.bot import Bot
from botkit.store.records import MessageStatus
from botkit.testing.backends import RecordingEcho
from botkit.testing.fake_slack import FakeSlack
from connectors.slack import SlackConnector


@pytest.fixture
async def slack(tmp_path: Path, fake_slack: FakeSlack) -> AsyncIterator[SlackHarness]:
    settings = slack_settings(tmp_path / "slack.db", fake_slack, dict(FAST))
    async with Bot(settings, backend=RecordingEcho()) as bot, aiohttp.ClientSession() as http:
        connector = bot.connectors["slack"]
        assert isinstance(connector, SlackConnector)
        await connector.connect()
        yield SlackHarness(bot, connector, fake_slack, http)


def _replies(bot: Bot) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(bot.metrics.render().decode())
        for s in family.samples
        if s.name == "botkit_replies_total" and s.labels.get("channel") == "slack"
    }


async def test_replies_slack_refuses_are_counted_failed_as_stored(slack: SlackHarness) -> None:
    bot, fake = slack.bot, slack.fake
    assert (await slack.post_event(message("before")))[0] == 200
    await fake.wait_until(lambda: any(m.text == "echo: before" for m in fake.thread("D1", None)))
    assert await bot.drain(30)
    for method in ("chat.postMessage", "chat.update", "auth.test"):
        fake.fail(method, times=10_000, status=200, error="invalid_auth", retry_after=None)
    for i in range(5):
        assert (await slack.post_event(message(f"after {i}")))[0] == 200
    assert await bot.drain(30)

    history = await bot.store.messages_after("slack", "D1", 0, 100)
    replies = [m for m in history if m.direction == "out"]
    stored_sent = sum(m.status is MessageStatus.SENT for m in replies)
    stored_failed = sum(m.status is MessageStatus.FAILED for m in replies)
    counted = _replies(bot)
    assert stored_sent == 1 and counted["sent"] == 1  # "before" alone
    assert counted["failed"] >= stored_failed >= 1
    assert counted["sent"] + counted["failed"] == 6
