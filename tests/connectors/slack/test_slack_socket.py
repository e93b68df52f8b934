"""Socket Mode: the real slack_sdk SocketModeClient connects to the fake's WebSocket
(``apps.connections.open`` hands it a ws://127.0.0.1 URL) and Bolt dispatches the
envelopes through the same listeners as HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from slack_helpers import MakeSlack, SlackHarness, callback, click_payload, message, new_ts

from botkit.errors import ConnectorError
from botkit.events import Button, OutboundReply


def envelope(payload: dict[str, Any], kind: str = "events_api", retry: int = 0) -> dict[str, Any]:
    return {
        "envelope_id": f"env-{new_ts()}",
        "type": kind,
        "accepts_response_payload": False,
        "retry_attempt": retry,
        "retry_reason": "timeout" if retry else "",
        "payload": payload,
    }


async def socket_slack(make_slack: MakeSlack) -> SlackHarness:
    # No signing secret: Socket Mode does not need one.
    return await make_slack(mode="socket", app_token="${SLACK_APP_TOKEN}", signing_secret=None)


async def test_socket_mode_event_is_acked_and_answered_once(make_slack: MakeSlack) -> None:
    slack = await socket_slack(make_slack)
    opened = slack.fake.calls_to("apps.connections.open")
    assert len(opened) == 1
    ts = new_ts()
    event = callback(message("over the socket", ts=ts), "EvSOCK1")
    await slack.fake.push(envelope(event))  # returns once the app acked the envelope
    await slack.reply_in("D1", None, "echo: over the socket")
    # Slack redelivers (retry_attempt 1): acknowledged again, not answered again.
    await slack.fake.push(envelope(event, retry=1))
    await asyncio.sleep(0.3)
    assert len(slack.fake.thread("D1", None)) == 1
    assert len(slack.fake.acks) == 2


async def test_socket_mode_button_click(make_slack: MakeSlack) -> None:
    slack = await socket_slack(make_slack)
    ts = new_ts()
    reply = OutboundReply(
        channel="slack",
        conversation_key=f"D1:{ts}",
        text="Choose:",
        buttons=(Button("Yes", "yes please"),),
    )
    await slack.connector.send(reply)
    [menu] = slack.fake.thread("D1", ts)
    await slack.fake.push(envelope(click_payload(menu, 0), kind="interactive"))
    await slack.reply_in("D1", ts, "echo: yes please")


async def test_socket_mode_ignores_garbage_envelopes(make_slack: MakeSlack) -> None:
    slack = await socket_slack(make_slack)
    await slack.fake.push(envelope({"type": "event_callback", "event": "nope"}))
    await slack.fake.push(envelope({"unexpected": True}, kind="slash_commands"))
    ts = new_ts()
    await slack.fake.push(envelope(callback(message("still fine", ts=ts))))
    await slack.reply_in("D1", None, "echo: still fine")


async def test_socket_mode_acks_and_drops_envelopes_bolt_would_fail_on(
    make_slack: MakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # Review 3 #2: Bolt raised on these, so they were never acknowledged and Slack would
    # deliver them again and again (an ERROR traceback each time).
    caplog.set_level(logging.INFO)
    slack = await socket_slack(make_slack)
    ok = callback(message("fine"))
    click = {"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"}}
    bad: list[Any] = [
        {**ok, "authorizations": 5},
        {**ok, "event": {**ok["event"], "type": 5}},
        {**ok, "event": {**ok["event"], "user": 5}},
        {**ok, "team": 7},
        {**click, "actions": "x"},
        {**click, "actions": [{"value": "no action_id"}]},
        {"type": "view_submission", "view": {"callback_id": "x"}},
        [1, 2],  # the SDK itself raised on a payload that is no object
        7,
    ]
    for payload in bad:
        await slack.fake.push(envelope(payload), limit_s=30)  # returns once acked
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    dropped = [r for r in caplog.records if "envelope acknowledged and dropped" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING  # throttled
    await slack.fake.push(envelope(callback(message("still answered"))))
    await slack.reply_in("D1", None, "echo: still answered")
    assert [m.text for m in slack.fake.thread("D1", None)] == ["echo: still answered"]


async def test_socket_mode_with_a_bad_app_token_fails_fast(make_slack: MakeSlack) -> None:
    slack = await make_slack(mode="socket", app_token="xapp-wrong", connect=False)
    with pytest.raises(ConnectorError, match="invalid_auth"):
        await asyncio.wait_for(slack.connector.connect(), 5)
    await slack.connector.disconnect()  # safe after a failed connect, and twice
    await slack.connector.disconnect()
