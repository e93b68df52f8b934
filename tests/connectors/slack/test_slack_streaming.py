"""Slack's native streaming of replies (``streaming = "auto"``): chat.startStream, paced
chat.appendStream, chat.stopStream with the buttons; the fallback to chat.update edits
when Slack has no streaming, and what happens when a streaming call fails on the way."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections.abc import AsyncIterator

import pytest
from slack_helpers import SECRET, MakeSlack, SlackHarness, callback, mention, message, new_ts
from slack_sdk.web.async_client import AsyncWebClient

from botkit.backends.protocol import GenerationRequest
from botkit.testing.backends import ScriptBackend
from botkit.testing.fake_slack import FakeMessage, signed_headers
from botkit.testing.fake_slack_streams import StreamingSlack, shown
from connectors.slack._api import SlackApi
from connectors.slack._stream import NativeStream, _settled
from connectors.slack._text import markdown_text
from connectors.slack._writer import Target
from connectors.slack.config import SlackRetry

WORDS = " ".join(f"w{i}" for i in range(60))
STREAM_CALLS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


@pytest.fixture
async def fake_slack() -> AsyncIterator[StreamingSlack]:
    fake = StreamingSlack(users={"U1": {"name": "ann", "locale": "fr-FR"}}, status_supported=True)
    async with fake:
        yield fake


class ScriptedBackend(ScriptBackend):
    """Yields the given deltas, ``delay`` seconds apart."""

    name = "scripted"

    def __init__(self, deltas: list[str], delay: float = 0.0) -> None:
        self.deltas, self.delay = deltas, delay

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        for delta in self.deltas:
            await asyncio.sleep(self.delay)
            yield delta


async def streamed_reply(slack: SlackHarness, channel: str, root: str) -> FakeMessage:
    """Wait until the reply's stream in the thread is stopped; return its message."""
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    await fake.wait_until(lambda: any(m.ts in fake.stopped for m in fake.thread(channel, root)), 30)
    [reply] = fake.thread(channel, root)
    return reply


async def test_dm_thread_reply_is_streamed_natively(
    slack: SlackHarness, fake_slack: StreamingSlack
) -> None:
    root = new_ts()
    await slack.post_event(message("where is my parcel", thread_ts=root))
    reply = await streamed_reply(slack, "D1", root)
    assert shown(reply) == "echo: where is my parcel"
    [start] = slack.fake.calls_to("chat.startStream")
    assert start.args["thread_ts"] == root
    # Sent in DMs too: Slack refuses bot-token streams without them (missing_recipient_*).
    assert start.args["recipient_user_id"] == "U1"
    assert start.args["recipient_team_id"] == "T0FAKE"
    assert slack.fake.calls_to("chat.postMessage") == []
    assert slack.fake.calls_to("chat.update") == []
    # The stream's ts is the reply's message: the thinking status was the status line.
    assert reply.ts in fake_slack.stopped


async def test_channel_thread_reply_streams_to_the_customer(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.01)
    root = new_ts()
    await slack.post_event(mention(" ".join(f"word{i}" for i in range(30)), ts=root))
    reply = await streamed_reply(slack, "C1", root)
    assert shown(reply) == "echo: " + " ".join(f"word{i}" for i in range(30))
    [start] = slack.fake.calls_to("chat.startStream")
    assert (start.args["channel"], start.args["thread_ts"]) == ("C1", root)
    assert (start.args["recipient_user_id"], start.args["recipient_team_id"]) == ("U1", "T0FAKE")


async def test_appends_are_paced_and_never_split_a_word(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.02, update_interval_s=0.3)
    root = new_ts()
    begin = time.monotonic()
    await slack.post_event(message(WORDS, thread_ts=root))
    reply = await streamed_reply(slack, "D1", root)
    elapsed = time.monotonic() - begin
    assert shown(reply) == f"echo: {WORDS}"
    appends = slack.fake.calls_to("chat.appendStream")
    # 61 words in ~1.2 s: one append per tick at most, not one per word.
    assert 1 <= len(appends) <= elapsed / 0.3 + 1, (len(appends), elapsed)
    gaps = [b.at - a.at for a, b in itertools.pairwise(appends)]
    assert all(gap >= 0.25 for gap in gaps), gaps
    for call in slack.fake.calls_to("chat.startStream") + appends:
        assert call.args["markdown_text"].endswith(" "), call.args  # cut after a word


async def test_buttons_are_attached_when_the_stream_stops(make_slack: MakeSlack) -> None:
    slack = await make_slack(plugins={"feedback": {}})
    root = new_ts()
    await slack.post_event(message("thanks", thread_ts=root))
    reply = await streamed_reply(slack, "D1", root)
    [stop] = slack.fake.calls_to("chat.stopStream")
    assert reply.blocks is not None and [b["type"] for b in stop.args["blocks"]] == ["actions"]
    # A click on them reaches the bot like any button under a reply.
    clickable = FakeMessage(reply.channel, reply.ts, reply.text, root, [{}, *reply.blocks])
    status, _ = await slack.click(clickable, 0)
    assert status == 200


async def test_no_streaming_in_the_workspace_falls_back_to_edits_once(
    make_slack: MakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack = await make_slack()
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    fake.streaming_supported = False  # Slack answers unknown_method
    first, second = new_ts(), new_ts()
    with caplog.at_level(logging.INFO, logger="connectors.slack"):
        await slack.post_event(message("one", thread_ts=first))
        await slack.reply_in("D1", first, "echo: one")
        await slack.post_event(message("two", thread_ts=second))
        await slack.reply_in("D1", second, "echo: two")
    # The same reply went out by chat.postMessage: once, not lost, not twice.
    assert [m.text for m in fake.thread("D1", first)] == ["echo: one"]
    assert [m.text for m in fake.thread("D1", second)] == ["echo: two"]
    # Remembered: the second reply did not ask again; said once, with the reason.
    assert len(fake.calls_to("chat.startStream")) == 1
    said = [r.getMessage() for r in caplog.records if "not available" in r.getMessage()]
    assert len(said) == 1 and "unknown_method" in said[0], said


async def test_native_mode_tries_every_reply_and_still_delivers(make_slack: MakeSlack) -> None:
    slack = await make_slack(streaming="native")
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    fake.streaming_supported = False
    for text in ("one", "two"):
        root = new_ts()
        await slack.post_event(message(text, thread_ts=root))
        await slack.reply_in("D1", root, f"echo: {text}")
    assert len(fake.calls_to("chat.startStream")) == 2


async def test_edit_mode_and_top_level_dms_never_stream(make_slack: MakeSlack) -> None:
    edit = await make_slack(streaming="edit")
    root = new_ts()
    await edit.post_event(message("one", thread_ts=root))
    await edit.reply_in("D1", root, "echo: one")
    # A top-level DM has no thread, which chat.startStream needs: answered top-level.
    auto = await make_slack()
    await auto.post_event(message("two"))
    await auto.reply_in("D1", None, "echo: two")
    assert auto.fake.calls_to("chat.startStream") == []


async def test_a_placeholder_is_edited_not_streamed(make_slack: MakeSlack) -> None:
    slack = await make_slack(typing_indicator="placeholder")
    root = new_ts()
    await slack.post_event(message("hello", thread_ts=root))
    reply = await slack.reply_in("D1", root, "echo: hello")
    assert reply.versions[0] == "_Thinking…_"
    assert slack.fake.calls_to("chat.startStream") == []


async def test_a_429_on_an_append_is_waited_out_and_nothing_is_lost(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(word_delay=0.02, update_interval_s=0.1)
    slack.fake.fail("chat.appendStream", 1, status=429, retry_after=0.5)
    root = new_ts()
    await slack.post_event(message(WORDS, thread_ts=root))
    reply = await streamed_reply(slack, "D1", root)
    assert shown(reply) == f"echo: {WORDS}"
    appends = slack.fake.calls_to("chat.appendStream")
    limited = next(i for i, c in enumerate(appends) if c.status == 429)
    after = [c.at - appends[limited].at for c in appends[limited + 1 :]]
    assert all(wait >= 0.45 for wait in after), after  # the workspace's appends were held


async def test_an_error_mid_stream_goes_on_by_edits_in_the_same_message(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(word_delay=0.04, update_interval_s=0.1)
    root = new_ts()
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    await slack.post_event(message(WORDS, thread_ts=root))
    await fake.wait_until(lambda: bool(fake.streaming), 30)
    fake.fail("chat.appendStream", 1, status=200, error="message_not_in_streaming_state")
    reply = await slack.reply_in("D1", root, f"echo: {WORDS}", limit_s=30)
    assert fake.thread("D1", root) == [reply]  # not posted again
    assert fake.calls_to("chat.update")  # the streamed message was edited into the reply


async def test_a_failing_stop_is_repaired_by_an_edit(make_slack: MakeSlack) -> None:
    slack = await make_slack(plugins={"feedback": {}})
    slack.fake.fail("chat.stopStream", 1, status=200, error="internal_error")
    slack.fake.fail("chat.stopStream", 10, status=200, error="invalid_blocks")
    root = new_ts()
    await slack.post_event(message("thanks", thread_ts=root))
    await slack.fake.wait_until(lambda: bool(slack.fake.calls_to("chat.update")), 30)
    [reply] = slack.fake.thread("D1", root)  # the streamed message, edited: not posted again
    assert reply.text == "echo: thanks"
    assert len(fake_buttons(reply)) == 2  # 👍 / 👎 came with the edit


def fake_buttons(msg: FakeMessage) -> list[str]:
    return [
        e["value"] for b in (msg.blocks or []) if b.get("type") == "actions" for e in b["elements"]
    ]


async def test_shutdown_mid_stream_stops_it_with_the_cut_marker(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.1)
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    root = new_ts()
    await slack.post_event(message(WORDS, thread_ts=root))
    await fake.wait_until(lambda: len(fake.calls_to("chat.appendStream")) >= 1, 30)
    await slack.bot.close()  # the reply (61 words, 0.1 s each) is cut, not waited for
    [cut] = fake.thread("D1", root)
    assert cut.ts in fake.stopped
    text = shown(cut)
    assert text.endswith("…"), text
    assert f"echo: {WORDS}".startswith(text.removesuffix("…").rstrip()), text


async def test_a_long_reply_continues_in_more_streamed_messages(make_slack: MakeSlack) -> None:
    words = " ".join(f"word{i:03d}" for i in range(120))  # ~960 characters
    slack = await make_slack(max_message_chars=300, word_delay=0.005)
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    root = new_ts()
    await slack.post_event(message(words, thread_ts=root))

    def parts() -> list[str]:
        return [shown(m).strip() for m in fake.thread("D1", root)]

    # Every message stopped, the last one too (its text may be complete before its stop).
    await fake.wait_until(lambda: " ".join(parts()) == f"echo: {words}" and not fake.streaming, 30)
    sizes = [len(shown(m)) for m in fake.thread("D1", root)]
    assert len(sizes) >= 4 and all(size <= 300 for size in sizes), sizes


async def test_an_empty_reply_shows_an_ellipsis(fake_slack: StreamingSlack) -> None:
    # The core replaces an empty reply with a notice; the connector on its own still
    # never streams nothing: Slack refuses empty messages, so it posts "…" (the edit
    # path's rule), and a stream is never started for whitespace.
    client = AsyncWebClient(
        token=fake_slack.bot_token, base_url=fake_slack.base_url, retry_handlers=[]
    )
    api = SlackApi(client, SlackRetry(), 0.0)
    root = new_ts()
    for text in ("", "  \n "):
        writer = NativeStream(api, Target("D1", root), 3900, {}, lambda exc: None)
        assert await writer.show(text, final=False)
        assert await writer.show(text, final=True)
    assert [m.text for m in fake_slack.thread("D1", root)] == ["…", "…"]
    assert fake_slack.calls_to("chat.startStream") == []


async def test_hostile_model_output_cannot_ping_or_hide_a_link(make_slack: MakeSlack) -> None:
    evil = ["Hi <!channel> @here ", "see [your bank](https://evil.example", ") ![x](y) <@U1> done"]
    slack = await make_slack(backend=ScriptedBackend(evil, delay=0.05))
    root = new_ts()
    await slack.post_event(message("hi", thread_ts=root))
    reply = await streamed_reply(slack, "D1", root)
    assert shown(reply) == "".join(evil)
    sent = "".join(
        c.args.get("markdown_text", "") for c in slack.fake.calls if c.method in STREAM_CALLS
    )
    for token in ("<!", "<@", "](", "@here"):
        assert token not in sent, (token, sent)


async def test_hostile_ids_in_a_channel_event_never_reach_start_stream(
    make_slack: MakeSlack,
) -> None:
    # A team id that is not one (the event is signed, but its fields are still checked):
    # without a valid recipient a channel reply is not streamed; it is still answered.
    slack = await make_slack()
    root = new_ts()
    event = mention("hello", ts=root)
    envelope = callback(event)
    envelope["team_id"] = "T0FAKE<!channel>"
    body = json.dumps(envelope)
    status, _ = await slack.post_raw(body, signed_headers(SECRET, body))
    assert status == 200
    await slack.reply_in("C1", root, "echo: hello")
    assert slack.fake.calls_to("chat.startStream") == []


def test_streamed_markdown_never_needs_to_be_taken_back() -> None:
    # What is sent of a growing text is a prefix of what the whole text converts to, so
    # appends (which cannot be edited) always add up to the final Markdown.
    rng = random.Random(7)
    alphabet = ["<", "!", "@", "here", "channel", "]", "(", "[", " ", "\n", "é", "日", "a", "x"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        whole = markdown_text(text)
        for end in range(len(text) + 1):
            assert whole.startswith(markdown_text(_settled(text[:end]))), (text, end)


async def test_a_stream_near_slacks_time_limit_continues_in_a_new_message(
    make_slack: MakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slack ends a stream ~5 minutes after it started; the connector stops it at 4 (here
    # 0.4 s) and goes on in a new message, so no text is refused as out of time.
    monkeypatch.setattr("connectors.slack._stream._MAX_STREAM_AGE_S", 0.4)
    slack = await make_slack(word_delay=0.03, update_interval_s=0.1)
    fake = slack.fake
    assert isinstance(fake, StreamingSlack)
    root = new_ts()
    await slack.post_event(message(WORDS, thread_ts=root))

    def parts() -> list[str]:
        return [shown(m).strip() for m in fake.thread("D1", root)]

    await fake.wait_until(lambda: " ".join(parts()) == f"echo: {WORDS}" and not fake.streaming, 30)
    assert len(parts()) >= 3, parts()


async def test_a_channel_without_streaming_is_remembered_others_still_stream(
    make_slack: MakeSlack, fake_slack: StreamingSlack
) -> None:
    fake_slack.refuse_start["G1"] = {"ok": False, "error": "channel_type_not_supported"}
    slack = await make_slack()
    for text in ("one", "two"):
        root = new_ts()
        await slack.post_event(mention(text, channel="G1", ts=root))
        await slack.reply_in("G1", root, f"echo: {text}")
    assert len(fake_slack.calls_to("chat.startStream")) == 1  # not asked again there
    root = new_ts()
    await slack.post_event(mention("three", channel="C1", ts=root))
    assert shown(await streamed_reply(slack, "C1", root)) == "echo: three"


@pytest.mark.parametrize("answer", [{"ok": True}, {"ok": True, "ts": 17}, {"ok": True, "ts": ""}])
async def test_a_start_answered_without_a_ts_goes_by_edits(
    make_slack: MakeSlack, fake_slack: StreamingSlack, answer: dict[str, object]
) -> None:
    fake_slack.refuse_start["D1"] = answer
    slack = await make_slack()
    root = new_ts()
    await slack.post_event(message("hello", thread_ts=root))
    await slack.reply_in("D1", root, "echo: hello")
    assert len(fake_slack.thread("D1", root)) == 1


async def test_a_slack_connect_user_is_streamed_to_with_their_own_team(
    slack: SlackHarness, fake_slack: StreamingSlack
) -> None:
    # Audit M3: recipient_team_id is "the team the user receiving the streaming text
    # belongs to": an external customer's (event.user_team), not the workspace's.
    fake_slack.user_teams["UEXT"] = "TEXT"
    root = new_ts()
    await slack.post_event(mention("hello", user="UEXT", ts=root, user_team="TEXT"))
    reply = await streamed_reply(slack, "C1", root)
    assert shown(reply) == "echo: hello"
    [start] = fake_slack.calls_to("chat.startStream")
    assert start.args["recipient_user_id"] == "UEXT"
    assert start.args["recipient_team_id"] == "TEXT"
    assert fake_slack.calls_to("chat.update") == []  # not refused into the edit path


async def test_a_stream_start_that_timed_out_is_not_shown_again_by_edits(
    make_slack: MakeSlack, fake_slack: StreamingSlack
) -> None:
    # Audit L11: the start may have reached Slack (only its answer was late); the same
    # reply by edits would then show twice. It fails instead (stored as failed).
    slack = await make_slack(request_timeout_s=0.5)
    fake_slack.fail("chat.startStream", 1, status=500, error="internal_error", delay=3)
    root = new_ts()
    await slack.post_event(message("hi", thread_ts=root))

    await slack.reply_failed()
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_a_progress_start_that_timed_out_is_not_started_again(
    make_slack: MakeSlack, fake_slack: StreamingSlack
) -> None:
    # Review H1: a chat.startStream for a progress version timed out (it may be showing);
    # the next tick must not start the stream again, nor post the reply by edits.
    slack = await make_slack(word_delay=0.05, update_interval_s=0.3, request_timeout_s=0.5)
    fake_slack.fail("chat.startStream", 1, status=500, error="internal_error", delay=3)
    await slack.post_event(message(WORDS, thread_ts=new_ts()))

    await slack.reply_failed()
    await asyncio.sleep(3.5)  # past the held answer: nothing else comes
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    assert fake_slack.calls_to("chat.postMessage") == []
