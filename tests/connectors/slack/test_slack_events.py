"""Which Slack events make one message: a message is answered once whichever of its
events comes (``message.*`` and ``app_mention``), however often Slack sends them again
(``X-Slack-Retry-Num``, an edit, a restart in between)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from slack_helpers import SECRET, MakeSlack, SlackHarness, callback, mention, message, new_ts

from botkit.events import Direction
from botkit.testing.fake_slack import signed_headers
from connectors.slack._inbound import Identity, read_action

# Slack sends ``app_mention`` again, with a new event_id but the message's own ts, when a
# message that mentions the bot is edited (seen in Slack's payloads: bolt-js #960,
# java-slack-sdk #755 added ``edited`` to AppMentionEvent for it).
EDITED: dict[str, Any] = {"edited": {"user": "U1", "ts": "1800000000.000000"}}


async def _inbound(slack: SlackHarness, key: str) -> list[str]:
    history = await slack.bot.history("slack", key)
    return [h.text for h in history if h.direction == Direction.INBOUND]


async def test_an_edited_mention_is_not_answered_again(slack: SlackHarness) -> None:
    root = new_ts()
    await slack.post_event(mention("how do I reset my pasword?", ts=root))
    await slack.reply_in("C1", root, "echo: how do I reset my pasword?")
    # The customer fixes the typo: Slack delivers app_mention again (new event_id).
    edited = mention("how do I reset my password?", ts=root, **EDITED)
    status, _ = await slack.post_event(edited)
    assert status == 200
    await asyncio.sleep(0.3)  # a second answer would have shown up by now
    assert [m.text for m in slack.fake.thread("C1", root)] == ["echo: how do I reset my pasword?"]
    assert await _inbound(slack, f"C1:{root}") == ["how do I reset my pasword?"]


async def test_a_thread_reply_edited_to_mention_the_bot_is_not_answered_again(
    slack: SlackHarness,
) -> None:
    root = new_ts()
    await slack.post_event(mention("my order is late", ts=root))
    await slack.reply_in("C1", root, "echo: my order is late")
    ts = new_ts()
    reply = message("it was due monday", channel="C1", channel_type="channel", thread_ts=root)
    await slack.post_event({**reply, "ts": ts})
    await slack.reply_in("C1", root, "echo: it was due monday")
    # The edit adds a mention: only app_mention comes (message_changed is not read).
    edited = mention("it was due monday", ts=ts, thread_ts=root, **EDITED)
    await slack.post_event(edited)
    await asyncio.sleep(0.3)
    assert len(slack.fake.thread("C1", root)) == 2
    assert await _inbound(slack, f"C1:{root}") == ["my order is late", "it was due monday"]


async def test_a_mention_added_by_an_edit_is_answered(slack: SlackHarness) -> None:
    # "I forgot to tag the bot": the first app_mention of a message is its first delivery.
    ts = new_ts()
    await slack.post_event(
        message("where is my parcel?", channel="C1", channel_type="channel", ts=ts)
    )
    await slack.post_event(mention("where is my parcel?", ts=ts, **EDITED))
    await slack.reply_in("C1", ts, "echo: where is my parcel?")


async def test_a_group_dm_mention_delivered_as_a_message_alone_is_answered(
    slack: SlackHarness,
) -> None:
    # A mention in a group DM may come as message.mpim without an app_mention twin.
    ts = new_ts()
    event = message("<@UBOT> can you help?", channel="G1", channel_type="mpim", ts=ts)
    assert (await slack.post_event(event))[0] == 200
    await slack.reply_in("G1", ts, "echo: can you help?")
    # If the twin does come, later or at once, it is the same message: answered once.
    await asyncio.gather(
        slack.post_event(mention("can you help?", channel="G1", ts=ts)),
        slack.post_event(event, retry_num=1),
    )
    # Other messages of the group DM are not addressed to the bot.
    await slack.post_event(message("lunch?", channel="G1", channel_type="mpim"))
    await slack.post_event(message("<@UBOT2> hi", channel="G1", channel_type="mpim"))
    await asyncio.sleep(0.3)
    assert [m.text for m in slack.fake.messages] == ["echo: can you help?"]


async def test_twin_events_arriving_together_are_answered_once(slack: SlackHarness) -> None:
    ts = new_ts()
    twin = message("<@UBOT> hello both", channel="C1", channel_type="channel", ts=ts)
    await asyncio.gather(slack.post_event(mention("hello both", ts=ts)), slack.post_event(twin))
    await slack.reply_in("C1", ts, "echo: hello both")
    await asyncio.sleep(0.3)
    assert len(slack.fake.thread("C1", ts)) == 1
    assert await _inbound(slack, f"C1:{ts}") == ["hello both"]


async def test_a_retry_after_a_restart_is_not_answered_again(
    make_slack: MakeSlack, tmp_path: Path
) -> None:
    db = tmp_path / "restart.db"
    first = await make_slack(db=db)
    ts = new_ts()
    event = message("before the restart", ts=ts)
    await first.post_event(event, event_id="EvRESTART")
    await first.reply_in("D1", None, "echo: before the restart")
    async with asyncio.timeout(30):  # until the reply is stored as sent
        while len(await first.bot.history("slack", "D1")) != 2:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.02)
    await first.bot.close()
    # Slack did not see the ack in time and delivers again, to the restarted bot.
    second = await make_slack(db=db)
    status, _ = await second.post_event(event, event_id="EvRESTART", retry_num=1)
    assert status == 200
    await asyncio.sleep(0.3)
    assert [m.text for m in second.fake.thread("D1", None)] == ["echo: before the restart"]
    assert await _inbound(second, "D1") == ["before the restart"]


def test_a_click_names_the_clickers_own_team() -> None:
    # Audit M3, for actions: a Slack Connect user's click carries their team in
    # user.team_id; team.id is the workspace the app is installed in.
    payload = {
        "type": "block_actions",
        "user": {"id": "UEXT", "team_id": "TEXT"},
        "team": {"id": "T0FAKE"},
        "channel": {"id": "C1"},
        "message": {"ts": "1700000000.000001", "thread_ts": "1700000000.000000"},
        "actions": [
            {"action_id": "botkit_button_0", "value": "yes", "action_ts": "1700000001.000000"}
        ],
    }
    inbound = read_action(payload, Identity(bot_user_id="UBOT"))
    assert inbound is not None and inbound.channel_ids["team"] == "TEXT"


async def test_events_for_another_app_are_ignored_with_a_warning(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # Audit L7: defence in depth against a signing secret shared with another app.
    body = callback(message("not for you", channel="D2"))
    body["api_app_id"] = "AOTHER"
    raw = json.dumps(body)
    status, _ = await slack.post_raw(raw, signed_headers(SECRET, raw))
    assert status == 200
    assert await slack.bot.history("slack", "D2") == []
    assert "another app" in caplog.text
    await slack.post_event(message("for me"))  # this app's id (the fake's auth.test)
    await slack.reply_in("D1", None, "echo: for me")


async def test_thread_replies_off_answers_a_reply_under_the_bots_answer(
    make_slack: MakeSlack,
) -> None:
    # Audit L2: the channel is one conversation and the bot answers top-level; "Reply in
    # thread" under its answer was ignored. It continues the channel's conversation and
    # is answered in that thread.
    slack = await make_slack(thread_replies=False, typing_indicator="off")
    await slack.post_event(mention("first", channel="C8"))
    answer = await slack.reply_in("C8", None, "echo: first")
    await slack.post_event(
        message(
            "and then?",
            channel="C8",
            channel_type="channel",
            thread_ts=answer.ts,
            parent_user_id="UBOT",
        )
    )
    await slack.reply_in("C8", answer.ts, "echo: and then?")
    assert await _inbound(slack, "C8") == ["first", "and then?"]


async def test_thread_replies_off_still_ignores_other_threads(make_slack: MakeSlack) -> None:
    slack = await make_slack(thread_replies=False, typing_indicator="off")
    await slack.post_event(mention("first", channel="C9"))
    await slack.reply_in("C9", None, "echo: first")
    chatter = message("lunch?", channel="C9", channel_type="channel", thread_ts=new_ts())
    chatter["parent_user_id"] = "U2"
    await slack.post_event(chatter)
    assert await _inbound(slack, "C9") == ["first"]
    assert await _inbound(slack, f"C9:{chatter['thread_ts']}") == []


async def test_an_event_without_an_app_id_is_taken(slack: SlackHarness) -> None:
    # Review L14: only a payload naming another app is ignored; one naming none (as
    # some of Slack's older payloads) is this app's, as before the check.
    body = callback(message("no app id here", channel="D3"))
    del body["api_app_id"]
    raw = json.dumps(body)
    status, _ = await slack.post_raw(raw, signed_headers(SECRET, raw))
    assert status == 200
    await slack.reply_in("D3", None, "echo: no app id here")
