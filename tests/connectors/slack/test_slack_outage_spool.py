"""Slack while the database cannot store a message (its SQLite file locked by another
program beyond the busy timeout): the event is acknowledged and kept on disk, then
stored and answered once the file is free, through the real slack-bolt and slack_sdk
talking to the fake Slack. Slack would drop an event refused for five minutes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_helpers import FAST, SlackHarness, mention, message, new_ts, slack_settings
from sqlite_lock import write_locked

from botkit.bot import Bot
from botkit.errors import DatabaseUnavailableError
from botkit.events import InboundMessage
from botkit.testing.fake_slack import FakeSlack
from connectors.slack import SlackConnector

BUSY_MS = 100
AGENT = "UAGENT1"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "slack.db"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def slack(db: Path, spool_dir: Path, fake_slack: FakeSlack) -> AsyncIterator[SlackHarness]:
    settings = slack_settings(db, fake_slack, {**FAST, "agent_user_ids": [AGENT]})
    store = settings.store.model_copy(
        update={"sqlite_busy_timeout_ms": BUSY_MS, "outage_spool_dir": str(spool_dir)}
    )
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        bot = await stack.enter_async_context(Bot(settings.model_copy(update={"store": store})))
        connector = bot.connectors["slack"]
        assert isinstance(connector, SlackConnector)
        await connector.connect()
        yield SlackHarness(bot, connector, fake_slack, http)


def _kept(spool_dir: Path) -> int:
    return len(list(spool_dir.glob("*.json"))) if spool_dir.is_dir() else 0


async def test_a_message_in_an_outage_is_acknowledged_kept_and_answered_after_it(
    slack: SlackHarness, db: Path, spool_dir: Path
) -> None:
    with write_locked(db):
        status, _ = await slack.post_event(message("where is my order?", ts=new_ts()))
        assert status == 200  # acknowledged: Slack will not deliver it again
        assert _kept(spool_dir) == 1
        assert slack.fake.calls_to("chat.postMessage") == []
    await slack.reply_in("D1", None, "echo: where is my order?", limit_s=15)
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history] == ["where is my order?", "echo: where is my order?"]
    assert await slack.bot.drain(10)  # (the file goes just after the message is stored)
    assert _kept(spool_dir) == 0


async def test_slack_retries_of_a_kept_event_are_answered_once(
    slack: SlackHarness, db: Path
) -> None:
    ts = new_ts()
    with write_locked(db):
        for retry in (None, 1, 2):
            status, _ = await slack.post_event(
                message("refund please", ts=ts), event_id="EvR1", retry_num=retry
            )
            assert status == 200
    await slack.reply_in("D1", None, "echo: refund please", limit_s=15)
    assert await slack.bot.drain(10)
    replies = [m for m in slack.fake.thread("D1", None) if m.text == "echo: refund please"]
    assert len(replies) == 1


class _HistoryAway:
    """The real bot as the connector's core, whose history reads meet an outage (as
    PostgreSQL's would; SQLite's reads go on while its writes are locked)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def history(self, *args: Any, **kwargs: Any) -> Any:
        raise DatabaseUnavailableError("database read failed: the server is gone")

    async def submit_or_keep(self, message: InboundMessage, **kwargs: Any) -> Any:
        return await self.bot.submit_or_keep(message, **kwargs)


async def test_a_thread_reply_whose_thread_cannot_be_looked_up_is_judged_when_stored(
    slack: SlackHarness,
) -> None:
    """A channel thread reply that does not mention the bot is the bot's only in a
    thread it is part of. When that cannot be read, the core judges it as it stores
    the message: answered in the bot's thread, dropped in somebody else's."""
    ours = new_ts()
    await slack.post_event(mention("hello", ts=ours))
    await slack.reply_in("C1", ours, "echo: hello", limit_s=15)
    assert await slack.bot.drain(10)
    slack.connector.core = _HistoryAway(slack.bot)  # type: ignore[assignment]
    other = new_ts()  # somebody else's thread
    for thread in (other, ours):
        reply = message(
            "and my refund?", ts=new_ts(), channel="C1", channel_type="channel",
            thread_ts=thread,
        )  # fmt: skip
        assert (await slack.post_event(reply))[0] == 200
    await slack.reply_in("C1", ours, "echo: and my refund?", limit_s=15)
    assert await slack.bot.drain(10)
    assert await slack.bot.history("slack", f"C1:{other}") == []


async def test_an_agents_thread_reply_in_an_outage_is_kept_and_stored_as_theirs(
    slack: SlackHarness, db: Path, spool_dir: Path
) -> None:
    """Refused (500) before: after Slack's last retry it was gone, and with it the
    takeover, so the bot went on answering the agent's customer."""
    slack.fake.users[AGENT] = {"name": "ana", "real_name": "Ana Support"}
    root = new_ts()
    await slack.post_event(mention("my order is late", ts=root))
    await slack.reply_in("C1", root, "echo: my order is late", limit_s=15)
    assert await slack.bot.drain(10)
    key = f"C1:{root}"
    reply = message(
        "Ana here, checking", user=AGENT, channel="C1", channel_type="channel", thread_ts=root
    )
    with write_locked(db):
        status, _ = await slack.post_event(reply, event_id="EvAGENT1")
        assert status == 200
        assert _kept(spool_dir) == 1
    assert await slack.bot.drain(30)
    stored = await slack.bot.store.messages_after("slack", key, 0)
    assert (stored[-1].text, stored[-1].agent) == ("Ana here, checking", "Ana Support")
    assert await slack.bot.with_human("slack", key)
    assert _kept(spool_dir) == 0
