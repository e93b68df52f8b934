"""The widget and an agent's takeover: a bot reply the takeover cut before its first
words shows nothing, read from ``OutboundReply.superseded`` (real bot and web connector;
the stream is a stand-in, so that the cut is certain to come before the first words)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from web_helpers import WebHarness, reply_to

from botkit.events import OutboundReply


class _CutBeforeFirstWords:
    """A ``ReplyStream`` an agent's takeover ended before it produced anything, as the
    core hands it over: no deltas, a final reply that was not stored. Its metadata is
    empty: the connector reads the typed field, not the older metadata key."""

    channel = "web"
    reply_to: dict[str, str] = {}  # noqa: RUF012  (read only)
    in_reply_to_seq = 1
    stored_reply = None
    superseded = True

    def __init__(self, conversation_key: str) -> None:
        self.conversation_key = conversation_key

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        raise StopAsyncIteration

    async def final(self) -> OutboundReply:
        return OutboundReply(
            channel="web",
            conversation_key=self.conversation_key,
            text="",
            in_reply_to_seq=1,
            superseded=True,
        )


async def test_a_reply_cut_before_its_first_words_shows_nothing(web: WebHarness) -> None:
    v = await web.visitor()
    await v.send("hello", "m1")
    await v.until(reply_to(1))
    (conversation,) = await web.bot.store.conversations_with_status(["bot"])
    seen = len(v.frames)

    await web.connector.send_stream(_CutBeforeFirstWords(conversation.key))
    # A notice after it, so that whatever the cut reply sent has arrived by then.
    await web.connector.send(OutboundReply("web", conversation.key, "after the cut"))
    await v.until(lambda f: f.get("text") == "after the cut")

    frames = v.frames[seen:]
    (start,) = [f for f in frames if f["type"] == "stream"]
    of_it = [f["type"] for f in frames if f.get("stream_id") == start["stream_id"]]
    assert of_it == ["stream", "stream_end"], frames  # no "message" frame for it
    assert [f["text"] for f in frames if f["type"] == "message"] == ["after the cut"]
