"""A human agent's message reaches the visitor: live on an open socket, and in the
history a reconnecting widget replays (real bot, store and web connector)."""

from __future__ import annotations

from web_helpers import WebHarness, reply_to


async def test_agent_message_is_pushed_live_and_replayed(web: WebHarness) -> None:
    v = await web.visitor()
    await v.send("I need a human, please", "m1")
    await v.until(reply_to(1))
    (conversation,) = await web.bot.store.conversations_with_status(["bot"])

    stored = await web.bot.agent_replies.send(
        conversation.id, "Hi, Ana here.", agent="Ana", take_over=True
    )
    live = await v.until(lambda f: f.get("seq") == stored.seq)
    assert live["type"] == "message" and live["direction"] == "out"
    assert (live["text"], live["agent"], live["status"]) == ("Hi, Ana here.", "Ana", "sent")
    assert "in_reply_to_seq" in live and live["in_reply_to_seq"] is None

    token = v.token
    assert token is not None
    await v.close()
    replayed = await web.history(token)
    assert replayed[-1] == {k: live[k] for k in replayed[-1]}  # the same frame again
    assert replayed[-1]["agent"] == "Ana"
    bot_reply = next(f for f in replayed if f.get("in_reply_to_seq") == 1)
    assert "agent" not in bot_reply  # only agents' messages carry the field
