"""Resuming from an ``after_seq`` the conversation never reached (``welcome.last_seq``),
and one shape for a stored message whether it is pushed live, replayed or read over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from web_helpers import Frame, WebHarness, reply_to

from botkit.events import Button
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler, StopPropagation

MESSAGE_FIELDS = {
    "type",
    "seq",
    "direction",
    "text",
    "language",
    "in_reply_to_seq",
    "buttons",
    "status",
    "created_at",
    "attachments",
}


# -- #4: after_seq above the conversation's last seq ---------------------------------------


async def test_stale_after_seq_on_a_new_conversation_hides_nothing(web: WebHarness) -> None:
    """A cache from another identity (or database) sends after_seq=50 for a conversation
    that starts at seq 1: the messages must still come, and the welcome says so."""
    v = await web.visitor(after_seq=50)
    welcome = v.frames[0]
    assert (welcome["after_seq"], welcome["last_seq"]) == (0, 0)
    await v.send("hello?", "c1")
    ack = await v.until(lambda f: f["type"] == "ack")
    assert ack["seq"] == 1
    reply = await v.until(reply_to(1), limit_s=30)
    assert reply["text"] == "echo: hello?"
    assert [f["seq"] for f in v.stored()] == [1, 2]


async def test_after_seq_is_clamped_to_the_conversations_last_seq(web: WebHarness) -> None:
    first = await web.visitor()
    await first.send("one", "c1")
    await first.until(reply_to(1))
    token = first.token
    for after, resumed in ((0, 0), (1, 1), (2, 2), (3, 2), (50, 2), (2**70, 2)):
        v = await web.visitor(token=token, after_seq=after)
        assert (v.frames[0]["after_seq"], v.frames[0]["last_seq"]) == (resumed, 2), after
        if resumed < 2:
            await v.until(lambda f: f.get("seq") == 2)
        assert [f["seq"] for f in v.stored()] == list(range(resumed + 1, 3)), after
        await v.close()
    # A socket resumed from a stale after_seq sees everything stored afterwards.
    v = await web.visitor(token=token, after_seq=50)
    await v.send("two", "c2")
    await v.until(reply_to(3))
    assert [(f["seq"], f["text"]) for f in v.stored()] == [(3, "two"), (4, "echo: two")]
    v = await web.visitor(token=token, after_seq=2**70)
    assert (v.frames[0]["after_seq"], v.frames[0]["last_seq"]) == (4, 4)


async def test_http_after_seq_past_the_end_is_clamped_too(web: WebHarness) -> None:
    """The HTTP API resumes a stale cursor from the conversation's end, as the socket
    does: its last_seq says where, and the next message is delivered."""
    token = await web.session()
    await web.post(token, "c1", "one")
    auth = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(30):  # the echo reply is stored too
        while len(await web.history(token)) < 2:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    for after in (3, 500, 2**62):
        resp = await web.client.get("/api/messages", params={"after_seq": after}, headers=auth)
        assert await resp.json() == {"messages": [], "last_seq": 2}, after
    # A long poll from a stale cursor wakes on the next message, and gets it.
    poll = asyncio.create_task(web.history(token, after_seq=500, wait=30))
    await asyncio.sleep(0.1)
    await web.post(token, "c2", "two")
    async with asyncio.timeout(15):  # not the whole 30 s wait
        messages = await poll
    assert messages[0]["seq"] == 3 and messages[0]["text"] == "two"


# -- #11: one frame for a stored message -------------------------------------------------


class Menu(Handler):
    """Answers "menu" with quick replies."""

    def check(self, ctx: Context) -> bool:
        return ctx.text == "menu"

    async def handle(self, ctx: Context) -> None:
        ctx.set_reply("Pick one", buttons=(Button("Yes", "yes"), Button("Order", "order:1")))
        raise StopPropagation


def _fields(frame: Frame) -> set[str]:
    return set(frame) - {"client_id", "stream_id"}


async def test_live_replayed_and_http_messages_look_alike(web: WebHarness) -> None:
    web.bot.pipeline.add_handler(Menu())
    v = await web.visitor()
    # A first exchange: a socket replays history once after its welcome, and on a
    # loaded machine that replay may read a reply already stored (then sent without the
    # stream_id, as the widget expects: "its stored copy came another way").
    await v.send("hello", "c0")
    await v.until(reply_to(1))
    await v.send("menu", "c1")
    live_reply = await v.until(reply_to(3))
    live_in = next(f for f in v.stored() if f["seq"] == 3)
    again = await web.visitor(token=v.token, after_seq=2)
    await again.until(lambda f: f.get("seq") == 4)
    replay_in, replay_reply = again.stored()
    http_in, http_reply = (await web.history(str(v.token)))[2:]

    for frame in (live_in, live_reply, replay_in, replay_reply, http_in, http_reply):
        assert _fields(frame) == MESSAGE_FIELDS, frame
    # A reply: every field equal, live and replayed (only the live one knows its stream).
    assert "stream_id" in live_reply and "stream_id" not in replay_reply
    same: dict[str, Any] = {k: live_reply[k] for k in MESSAGE_FIELDS}
    assert (
        same
        == {k: replay_reply[k] for k in MESSAGE_FIELDS}
        == {k: http_reply[k] for k in MESSAGE_FIELDS}
    )
    assert live_reply["buttons"] == [
        {"label": "Yes", "value": "yes"},
        {"label": "Order", "value": "order:1"},
    ]
    assert (live_reply["status"], live_reply["in_reply_to_seq"]) == ("sent", 3)
    # The visitor's message: its client id everywhere; status and language move on as the
    # bot handles it (received -> answered), the rest is the stored record.
    assert live_in["client_id"] == replay_in["client_id"] == http_in["client_id"] == "c1"
    assert (live_in["status"], replay_in["status"]) == ("received", "answered")
    for key in ("seq", "direction", "text", "in_reply_to_seq", "buttons", "created_at"):
        assert live_in[key] == replay_in[key] == http_in[key], key
    assert (live_in["in_reply_to_seq"], live_in["buttons"]) == (None, [])
