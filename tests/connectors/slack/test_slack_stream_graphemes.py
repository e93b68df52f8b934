"""Native streaming keeps characters whole: no chat.startStream / appendStream /
stopStream piece, and so no streamed message, starts or ends inside a grapheme cluster
(a Thai or Devanagari letter with its marks, a joined family emoji, a flag), however the
model's deltas cut the text and wherever a message is full."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import regex
from slack_helpers import MakeSlack, message, new_ts
from slack_sdk.web.async_client import AsyncWebClient

from botkit.backends.protocol import GenerationRequest
from botkit.testing.backends import ScriptBackend
from botkit.testing.fake_slack import SlackCall
from botkit.testing.fake_slack_streams import StreamingSlack, shown
from connectors.slack._api import SlackApi
from connectors.slack._stream import NativeStream
from connectors.slack._writer import Target
from connectors.slack.config import SlackRetry

THAI = "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำสวัสดีครับยินดีต้อนรับ"  # no spaces
DEVANAGARI = "नमस्तेआपकीसहायताकेलिएधन्यवादक्षत्रियोंहिन्दी"  # words run together
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
FLAGS = "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea\U0001f1ef\U0001f1f5"  # FR DE JP
TEXTS = {
    "thai": THAI * 6,
    "devanagari": DEVANAGARI * 6,
    "family": (FAMILY + "ก" + FAMILY * 2 + "कि") * 8,
    "flags": ("ธง" + FLAGS * 3 + "\U0001f1eb") * 8,  # a lone indicator shifts the pairs
    "mixed": (THAI + FAMILY + DEVANAGARI + FLAGS) * 3,
}
STREAM_CALLS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


@pytest.fixture
async def fake_slack() -> AsyncIterator[StreamingSlack]:
    fake = StreamingSlack(users={"U1": {"name": "ann", "locale": "fr-FR"}}, status_supported=True)
    async with fake:
        yield fake


def assert_pieces_whole(text: str, calls: list[SlackCall], limit: int) -> None:
    """The streamed pieces, in order, are ``text`` (only whitespace dropped between
    messages), each starting and ending between two clusters; no message is too long."""
    bounds = {m.end() for m in regex.finditer(r"\X", text)} | {0}
    at = 0
    for call in calls:
        piece = call.args.get("markdown_text", "")
        if not piece:
            continue
        start = text.index(piece, at)
        assert not text[at:start].strip(), (limit, call.method, text[at:start])
        assert start in bounds, (limit, call.method, ascii(piece[:4]))
        assert start + len(piece) in bounds, (limit, call.method, ascii(piece[-4:]))
        at = start + len(piece)
    assert at == len(text.rstrip()), (limit, at, len(text))


def assert_messages_whole(text: str, messages: list[str], limit: int) -> None:
    bounds = {m.end() for m in regex.finditer(r"\X", text)} | {0}
    at = 0
    for shown_text in messages:
        assert 0 < len(shown_text) <= limit, (limit, len(shown_text))
        assert not regex.match(r"[\p{M}\u200d]", shown_text), (limit, ascii(shown_text[:4]))
        start = text.index(shown_text, at)
        assert start in bounds and start + len(shown_text) in bounds, (limit, start)
        at = start + len(shown_text)
    assert at == len(text)


@pytest.mark.parametrize("name", list(TEXTS))
async def test_streamed_pieces_and_messages_keep_characters_whole(
    fake_slack: StreamingSlack, name: str
) -> None:
    text = TEXTS[name]
    client = AsyncWebClient(
        token=fake_slack.bot_token, base_url=fake_slack.base_url, retry_handlers=[]
    )
    api = SlackApi(client, SlackRetry(), 0.0)
    rng = random.Random(name)
    for limit in (*range(20, 44, 3), 97, 150):
        root = new_ts()
        first = len(fake_slack.calls)
        writer = NativeStream(api, Target("D1", root), limit, {}, lambda exc: None)
        end = 0
        while end < len(text):  # deltas of 1 to 4 code points: they split clusters
            end = min(len(text), end + rng.randint(1, 4))
            await writer.show(text[:end], final=False)
        await writer.show(text, final=True)
        calls = [c for c in fake_slack.calls[first:] if c.method in STREAM_CALLS]
        assert_pieces_whole(text, calls, limit)
        messages = [shown(m) for m in fake_slack.thread("D1", root)]
        assert len(messages) >= len(text) // limit
        assert_messages_whole(text, messages, limit)


class DeltaBackend(ScriptBackend):
    """Yields ``text`` in deltas of 1 to 3 code points, as a tokenizer may cut it."""

    name = "deltas"

    def __init__(self, text: str) -> None:
        self.text = text

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        rng = random.Random(len(self.text))
        at = 0
        while at < len(self.text):
            step = rng.randint(1, 3)
            yield self.text[at : at + step]
            at += step
            await asyncio.sleep(0.001)


async def test_a_bot_reply_streamed_in_many_messages_keeps_characters_whole(
    make_slack: MakeSlack,
) -> None:
    text = TEXTS["mixed"] * 2  # ~700 code points in messages of at most 200
    slack = await make_slack(
        backend=DeltaBackend(text), max_message_chars=200, update_interval_s=0.05
    )
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    root = new_ts()
    await slack.post_event(message("hello", thread_ts=root))

    def parts() -> list[str]:
        return [shown(m) for m in fake.thread("D1", root)]

    await fake.wait_until(lambda: "".join(parts()) == text and not fake.streaming, 30)
    assert len(parts()) >= 4
    assert_messages_whole(text, parts(), 200)
    calls = [c for c in fake.calls if c.method in STREAM_CALLS]
    assert_pieces_whole(text, calls, 200)


@pytest.mark.parametrize("room", range(1, 12))
async def test_the_cut_marker_keeps_the_last_character_whole(
    fake_slack: StreamingSlack, room: int
) -> None:
    # A reply cut off by shutdown: the open stream is stopped with what fits of the
    # rest and " …"; what fits ends between two clusters.
    client = AsyncWebClient(
        token=fake_slack.bot_token, base_url=fake_slack.base_url, retry_handlers=[]
    )
    api = SlackApi(client, SlackRetry(), 0.0)
    writer = NativeStream(api, Target("D1", new_ts()), 30 + room, {}, lambda exc: None)
    head = "a" * 29 + " "
    text = head + FAMILY + FLAGS + THAI
    assert await writer.show(head, final=False)
    stop = writer.interrupted(text)
    assert stop is not None
    method, payload = stop
    tail = payload["markdown_text"].removesuffix("…").rstrip()
    bounds = {m.end() for m in regex.finditer(r"\X", text)}
    assert method == "chat.stopStream" and len(tail) <= room
    assert text.startswith(head + tail) and len(head + tail) in bounds, ascii(tail)
