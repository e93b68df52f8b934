"""A "thinking" placeholder whose own ``chat.postMessage`` timed out may have landed (only
its answer was lost) and its ``ts`` never came back: the connector looks for it by the
marker in its message metadata and deletes it, and never posts it again (real bot, real
slack_sdk, fake Slack that answers late and serves ``conversations.replies/history``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_helpers import MakeSlack, mention, message

from botkit.testing.fake_slack import FakeSlack

THINKING = "_Thinking…_"


class HistorySlack(FakeSlack):
    """``FakeSlack`` that keeps each post's ``metadata`` and answers Slack's two read
    methods over the bot's messages: ``conversations.history`` (top level) and
    ``conversations.replies`` (a thread), made after ``oldest``, newest first for
    history and oldest first for replies, as Slack does; ``metadata`` only with
    ``include_all_metadata``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.metadata: dict[str, Any] = {}  # ts -> the metadata posted with it
        # ts -> the wall clock when it was made: the fake's ts are not times, Slack's
        # are, and ``oldest`` is compared with them.
        self.made_at: dict[str, float] = {}

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            answer = super()._answer(method, args)
            if answer.get("ok"):
                self.made_at[answer["ts"]] = time.time()
                if "metadata" in args:
                    self.metadata[answer["ts"]] = args["metadata"]
            return answer
        if method == "conversations.history":
            found = [m for m in self.messages if m.thread_ts is None]
            return self._listing(found[::-1], args)
        if method == "conversations.replies":
            thread = args.get("ts")
            return self._listing([m for m in self.messages if m.thread_ts == thread], args)
        return super()._answer(method, args)

    def _listing(self, found: list[Any], args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        every = str(args.get("include_all_metadata", "")).lower() in ("true", "1")
        listed = []
        for m in found:
            if m.channel != args["channel"] or self.made_at.get(m.ts, 0.0) <= oldest:
                continue
            item: dict[str, Any] = {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "text": m.text,
                "ts": m.ts,
            }
            if m.thread_ts:
                item["thread_ts"] = m.thread_ts
            if every and m.ts in self.metadata:
                item["metadata"] = self.metadata[m.ts]
            listed.append(item)
        limit = int(args.get("limit") or 100)
        return {"ok": True, "messages": listed[:limit], "has_more": len(listed) > limit}


@pytest.fixture
async def fake_slack() -> AsyncIterator[HistorySlack]:
    async with HistorySlack(users={"U1": {"name": "ann", "locale": "fr-FR"}}) as fake:
        yield fake


async def test_a_placeholder_whose_post_timed_out_is_found_and_deleted(
    make_slack: MakeSlack, fake_slack: HistorySlack
) -> None:
    # The placeholder's post is answered 1.5 s late (made then), past request_timeout_s:
    # the reply goes out as a new message, and the placeholder, made after the post
    # timed out, is found by a later look and deleted.
    slack = await make_slack(request_timeout_s=0.5)
    fake_slack.slow("chat.postMessage", 1.5)
    await slack.post_event(message("where is my parcel"))
    await slack.reply_in("D1", None, "echo: where is my parcel")
    await fake_slack.wait_until(lambda: bool(fake_slack.deleted), 15)
    assert [m.text for m in fake_slack.deleted] == [THINKING]
    assert [m.text for m in fake_slack.thread("D1", None)] == ["echo: where is my parcel"]
    # Never posted again: one placeholder post, one reply.
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    history = await slack.bot.history("slack", "D1")
    assert history[1].status != "failed"


async def test_a_lost_placeholder_in_a_thread_is_looked_for_in_the_thread(
    make_slack: MakeSlack, fake_slack: HistorySlack
) -> None:
    slack = await make_slack(request_timeout_s=0.5, typing_indicator="placeholder")
    fake_slack.slow("chat.postMessage", 1.5)
    event = mention("hello there")
    await slack.post_event(event)
    await slack.reply_in("C1", event["ts"], "echo: hello there")
    await fake_slack.wait_until(lambda: bool(fake_slack.deleted), 15)
    assert [m.text for m in fake_slack.deleted] == [THINKING]
    assert [m.text for m in fake_slack.thread("C1", event["ts"])] == ["echo: hello there"]
    looks = fake_slack.calls_to("conversations.replies")
    assert looks and all(c.args.get("ts") == event["ts"] for c in looks)


async def test_a_placeholder_that_never_landed_is_looked_for_then_left(
    make_slack: MakeSlack, fake_slack: HistorySlack, caplog: pytest.LogCaptureFixture
) -> None:
    # The post timed out and Slack did not make it: a few looks, nothing deleted or
    # posted, and the log says what was looked for.
    caplog.set_level(logging.INFO, logger="connectors.slack")
    slack = await make_slack(request_timeout_s=0.3)
    fake_slack.fail("chat.postMessage", 1, status=500, error="internal_error", delay=1)
    await slack.post_event(message("hi"))
    await slack.reply_in("D1", None, "echo: hi")
    async with asyncio.timeout(30):
        while "not found" not in caplog.text:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)
    assert len(fake_slack.calls_to("conversations.history")) >= 2
    assert fake_slack.deleted == []
    assert [m.text for m in fake_slack.thread("D1", None)] == ["echo: hi"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


async def test_disconnect_stops_the_looks(make_slack: MakeSlack, fake_slack: HistorySlack) -> None:
    slack = await make_slack(request_timeout_s=0.5)
    fake_slack.fail("chat.postMessage", 1, status=500, error="internal_error", delay=1)
    await slack.post_event(message("hi"))
    await slack.reply_in("D1", None, "echo: hi")
    await fake_slack.wait_until(lambda: bool(fake_slack.calls_to("conversations.history")), 15)
    await slack.connector.disconnect()
    looks = len(fake_slack.calls_to("conversations.history"))
    await asyncio.sleep(2.5)  # past the last look (at 4 x 0.5 s)
    assert len(fake_slack.calls_to("conversations.history")) == looks < 4
