"""``request_timeout_s`` bounds every Web API call (the session slack_sdk is given has
aiohttp's 300 s default), and a call that timed out is not made twice where that would
show the reply twice (real bot, fake Slack that answers late)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from unittest.mock import patch

import pytest
from slack_helpers import MakeSlack, message

from botkit.errors import ConnectorError


async def test_a_hung_edit_times_out_and_is_retried_after_request_timeout_s(
    make_slack: MakeSlack,
) -> None:
    # Audit M1: the fake held the call 12 s with request_timeout_s = 1, and the retry came
    # only after it answered. An edit is idempotent: it is tried again at once.
    slack = await make_slack(request_timeout_s=0.5)
    posted = await slack.connector.api.send("chat.postMessage", {"channel": "C1", "text": "a"})
    slack.fake.fail("chat.update", 1, status=500, error="internal_error", delay=8)
    started = time.monotonic()
    edit = {"channel": "C1", "ts": posted["ts"], "text": "b"}
    await asyncio.wait_for(slack.connector.api.send("chat.update", edit), 30)
    # 0.5 s timeout + backoff (0.05 s): 4 s is ample on a loaded machine, half the hold.
    assert time.monotonic() - started < 4.0
    assert [c.status for c in slack.fake.calls_to("chat.update")] == [500, 200]
    assert [m.text for m in slack.fake.messages] == ["b"]


async def test_a_hung_status_line_is_bounded_too(make_slack: MakeSlack) -> None:
    slack = await make_slack(request_timeout_s=0.5)
    slack.fake.fail("assistant.threads.setStatus", 1, status=200, error="x", delay=8)
    started = time.monotonic()
    with pytest.raises(ConnectorError):
        await slack.connector.api.call_once(
            "assistant.threads.setStatus", channel_id="C1", thread_ts="1.1", status="…"
        )
    assert time.monotonic() - started < 4.0


async def test_a_post_that_timed_out_is_not_posted_again(make_slack: MakeSlack) -> None:
    # Audit L11: the first post may have reached Slack (only its answer was late), and
    # Slack has no idempotency key: a second one would show the reply twice.
    slack = await make_slack(request_timeout_s=0.5)
    slack.fake.fail("chat.postMessage", 1, status=500, error="internal_error", delay=3)
    with pytest.raises(ConnectorError, match="not tried again"):
        await asyncio.wait_for(
            slack.connector.api.send("chat.postMessage", {"channel": "C1", "text": "a"}), 30
        )
    await asyncio.sleep(3.5)  # past the held answer: nothing else comes
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


async def test_a_post_whose_connection_was_slow_to_open_is_tried_again(
    make_slack: MakeSlack,
) -> None:
    # Review M3: a connect that timed out sent nothing; it was taken for a lost answer
    # (the session's total and SlackApi's bound were the same length) and failed the reply.
    slack = await make_slack(request_timeout_s=0.5)
    session = slack.connector.client.session
    assert session is not None
    pool = session.connector
    assert pool is not None
    real_connect = pool._create_connection  # DNS, TCP and TLS happen there
    slow = [5.0]

    async def connect(*args: Any, **kwargs: Any) -> Any:
        if slow:
            await asyncio.sleep(slow.pop())  # resolving / connecting that hangs, once
        return await real_connect(*args, **kwargs)

    await pool.close()  # no pooled connection: the next call connects
    pool._closed = False  # reopened for the test
    with patch.object(pool, "_create_connection", connect):
        await asyncio.wait_for(
            slack.connector.api.send("chat.postMessage", {"channel": "C1", "text": "a"}), 30
        )
    assert [m.text for m in slack.fake.messages] == ["a"]
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


async def test_the_session_given_to_slack_sdk_has_the_timeout(make_slack: MakeSlack) -> None:
    # The Socket Mode web client shares it (apps.connections.open).
    slack = await make_slack(request_timeout_s=0.5)
    session = slack.connector.client.session
    assert session is not None and session.timeout.total == 0.5
    assert session.timeout.connect == 0.25
    # It bounds a call by itself too (slack_sdk sends through it; no outer timeout here).
    slack.fake.fail("users.info", 1, status=200, error="x", delay=8)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await slack.connector.client.api_call("users.info", http_verb="GET", params={"user": "U1"})
    assert time.monotonic() - started < 4.0


async def test_a_progress_post_that_timed_out_is_not_posted_again(make_slack: MakeSlack) -> None:
    # Review H1: on the edit path, the first piece of a streamed reply was posted by a
    # chat.postMessage that timed out; the next tick must not post it again.
    slack = await make_slack(
        word_delay=0.05,
        update_interval_s=0.3,
        request_timeout_s=0.5,
        streaming="edit",
        typing_indicator="off",
    )
    slack.fake.fail("chat.postMessage", 1, status=500, error="internal_error", delay=3)
    await slack.post_event(message(" ".join(f"w{i}" for i in range(60))))

    await slack.reply_failed()
    await asyncio.sleep(3.5)  # past the held answer: nothing else comes
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
