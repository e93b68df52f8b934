"""Slack: agents' clicks and bare mentions, and a takeover before anything was posted."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from slack_helpers import MakeSlack, mention, message, new_ts

from botkit._delivery import ReplyDelivery
from botkit.events import Button, OutboundReply
from botkit.pipeline.context import Context
from botkit.pipeline.handlers import Handler
from botkit.store import ConversationStatus

AGENT = "UAGENT1"


class MenuHandler(Handler):
    def check(self, ctx: Context) -> bool:
        return ctx.text.strip() == "menu"

    async def handle(self, ctx: Context) -> None:
        ctx.set_reply("Pick one:", buttons=(Button("Billing", "billing"), Button("Tech", "tech")))


async def test_an_agent_clicking_a_button_in_a_customers_thread_is_not_an_agent_message(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    slack.fake.users[AGENT] = {"name": "ana", "real_name": "Ana Support"}
    slack.bot.pipeline.add_handler(MenuHandler())
    root = new_ts()
    await slack.post_event(mention("menu", ts=root))
    menu = await slack.reply_in("C1", root, "Pick one:")
    before = len(slack.fake.thread("C1", root))
    # The agent watching the thread clicks one of the bot's buttons (nothing is posted).
    status, _ = await slack.click(menu, 0, user=AGENT)
    assert status == 200
    await asyncio.sleep(0.3)
    assert await slack.bot.drain(30)
    key = f"C1:{root}"
    stored = await slack.bot.store.messages_after("slack", key, 0)
    conversation = await slack.bot.store.get_conversation("slack", key)
    last = stored[-1]
    posted = [m.text for m in slack.fake.thread("C1", root)][before:]
    assert not (str(last.direction) == "out" and last.agent is not None), (
        f"the click is stored as an agent's message the customer never saw: "
        f"{(str(last.direction), last.text, last.agent)}; status={conversation.status}; "
        f"posted in Slack since: {posted}"
    )


async def test_an_agents_bare_mention_stores_nothing(make_slack: MakeSlack) -> None:
    slack = await make_slack(agent_user_ids=[AGENT])
    root = new_ts()
    await slack.post_event(mention("my order is late", ts=root))
    await slack.reply_in("C1", root, "echo: my order is late")
    # The agent tags the bot with nothing else (no files).
    await slack.post_event(
        {"type": "app_mention", "user": AGENT, "text": "<@UBOT>", "channel": "C1",
         "ts": new_ts(), "thread_ts": root}
    )  # fmt: skip
    await asyncio.sleep(0.3)
    last = (await slack.bot.store.messages_after("slack", f"C1:{root}", 0))[-1]
    assert last.text != "(files)", f"stored {last.text!r} for a message without files"


async def test_a_reply_cut_before_anything_was_posted_posts_nothing(
    make_slack: MakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_the_legacy_key(monkeypatch)
    # An AI-app thread: "is thinking" is the status line, so nothing is posted before the
    # first edit tick (update_interval_s: 30 s here, and 20 s of words, so that no load
    # can bring either before the agent's message).
    slack = await make_slack(agent_user_ids=[AGENT], word_delay=0.5, update_interval_s=30)
    slack.fake.status_supported = True
    root = new_ts()
    question = " ".join(f"word{i}" for i in range(40))
    await slack.post_event(mention(question, ts=root))
    await asyncio.sleep(0.5)
    assert slack.fake.thread("C1", root) == []  # nothing shown to the customer yet
    await slack.post_event(
        message("Ana here.", user=AGENT, channel="C1", channel_type="channel", thread_ts=root)
    )
    conversation = await slack.bot.store.get_conversation("slack", f"C1:{root}")
    assert conversation.status == ConversationStatus.WITH_HUMAN
    assert await slack.bot.drain(30)
    after_agent = [m.text for m in slack.fake.thread("C1", root)]
    assert after_agent == [], f"posted after the agent took over: {after_agent}"


def _without_the_legacy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies reach the connector without the older ``metadata["superseded"]`` (kept
    for connectors written before ``OutboundReply.superseded``), so that the test
    shows the connector reads the typed field."""
    final = ReplyDelivery.final

    async def typed_only(self: ReplyDelivery) -> OutboundReply:
        reply = await final(self)
        metadata = {k: v for k, v in reply.metadata.items() if k != "superseded"}
        return dataclasses.replace(reply, metadata=metadata)

    monkeypatch.setattr(ReplyDelivery, "final", typed_only)
