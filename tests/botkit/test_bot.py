"""The bot end to end on a real SQLite file: intake, replies, failures, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import ClassVar

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.channel import CoreHandle, ReplyStream
from botkit.config import Settings
from botkit.errors import (
    BackendBusyError,
    BackendError,
    ConnectorError,
    MessageRejectedError,
    NotAcceptingError,
    SchemaOutdatedError,
)
from botkit.events import ANSWERED_LANGUAGE, REPLY_FAILED, Direction, InboundMessage
from botkit.store import ConversationStatus, MessageStatus, StoredMessage


class ScriptedBackend:
    """A backend that streams a fixed script and records requests; may fail on cue."""

    name = "scripted"

    def __init__(
        self, script: tuple[str, ...] = ("fine ", "thanks"), fail: Exception | None = None
    ) -> None:
        self.script = script
        self.fail = fail
        self.requests: list[GenerationRequest] = []
        self.closed = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1

    async def ready(self) -> bool:
        return True

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        for part in self.script:
            yield part
        if self.fail is not None:
            raise self.fail


async def stored(bot: Bot, conversation: str = "c1") -> list[StoredMessage]:
    return await bot.store.messages_after("test", conversation, 0, 1000)


async def test_submit_stores_then_replies_in_background(bot: Bot) -> None:
    assert isinstance(bot, CoreHandle)
    # The reply is held at the channel until the receipt is back: a submit that waited
    # for its reply would never return (not timed: a loaded machine makes any bound
    # flaky, and a quick reply could slip under it).
    connector = recorder(bot)
    release, sending = asyncio.Event(), asyncio.Event()
    send_stream = connector.send_stream

    async def held(stream: ReplyStream) -> None:
        sending.set()
        await release.wait()
        await send_stream(stream)

    connector.send_stream = held  # type: ignore[method-assign]
    receipt = await asyncio.wait_for(bot.submit(message("hello there", "k1")), 30)
    assert (receipt.seq, receipt.duplicate) == (1, False)
    await asyncio.wait_for(sending.wait(), 30)  # the reply is scheduled and under way
    assert connector.replies == []
    release.set()
    (reply,) = await recorder(bot).wait_for(1)
    assert reply.text == "echo: hello there"
    assert recorder(bot).deltas[0] == ["echo: ", "hello ", "there"]  # streamed word by word
    assert (reply.seq, reply.in_reply_to_seq) == (2, 1)
    rows = await stored(bot)
    # The reply's transaction also recorded that the question is answered.
    assert [(m.direction, m.text, m.status) for m in rows] == [
        (Direction.INBOUND, "hello there", MessageStatus.ANSWERED),
        (Direction.OUTBOUND, "echo: hello there", MessageStatus.SENT),
    ]
    history = await bot.history("test", "c1", after_seq=1)
    assert [h.text for h in history] == ["echo: hello there"]


async def test_concurrent_duplicates_store_and_answer_once(bot: Bot) -> None:
    for i in range(5):
        first, second = await asyncio.gather(
            bot.submit(message(f"order {i}", f"dup-{i}")),
            bot.submit(message(f"order {i}", f"dup-{i}")),
        )
        assert sorted([first.duplicate, second.duplicate]) == [False, True]
        assert first.seq == second.seq
    await recorder(bot).wait_for(5)
    await bot.drain(30)
    await asyncio.sleep(0.05)  # a second reply, if any, would have been sent by now
    rows = await stored(bot)
    inbound = [m.text for m in rows if m.direction == Direction.INBOUND]
    assert inbound == [f"order {i}" for i in range(5)]
    assert len(recorder(bot).replies) == 5
    assert len(rows) == 10
    assert [m.seq for m in rows] == list(range(1, 11))


async def test_hostile_text_is_cleaned_and_answered(bot: Bot) -> None:
    await bot.submit(message("NUL\x00 lone\ud800 esc\x1b[2J end", "k1"))
    (reply,) = await recorder(bot).wait_for(1)
    assert reply.text == "echo: NUL lone esc[2J end"
    assert (await stored(bot))[0].text == "NUL lone esc[2J end"


async def test_megabyte_message_is_stored_whole_and_refused_clearly(bot: Bot) -> None:
    huge = ("ab\x00" * 349_526)[: 1 << 20]  # 1 MiB of input with NULs inside
    receipt = await bot.submit(message(huge, "k1"))
    (reply,) = await recorder(bot).wait_for(1)
    limit = bot.settings.bot.max_message_chars
    clean_length = len(huge.replace("\x00", ""))
    assert f"({clean_length} characters, the limit is {limit})" in reply.text
    rows = await stored(bot)
    assert rows[0].seq == receipt.seq
    assert rows[0].status == MessageStatus.REJECTED
    assert rows[0].text == huge.replace("\x00", "")  # nothing lost, nothing cut
    assert rows[1].text == reply.text
    # The next normal message still gets a normal answer, without the huge one in history.
    await bot.submit(message("short one", "k2"))
    assert (await recorder(bot).wait_for(2))[1].text == "echo: short one"


async def test_only_control_characters_get_the_empty_reply(bot: Bot) -> None:
    await bot.submit(message("\x00\x01\x02 \x7f", "k1"))
    (reply,) = await recorder(bot).wait_for(1)
    assert reply.text == bot.settings.bot.empty_reply


@pytest.mark.parametrize(
    "bad",
    [{"idempotency_key": ""}, {"idempotency_key": "a\x00b"}, {"conversation_key": "x" * 10_000}],
)
async def test_unstorable_ids_are_rejected(bot: Bot, bad: dict[str, str]) -> None:
    import dataclasses

    msg = dataclasses.replace(message("hi", "k1"), **bad)
    with pytest.raises(MessageRejectedError) as refused:
        await bot.submit(msg)
    assert not isinstance(refused.value, NotAcceptingError)  # sending it again is no use


async def test_replies_follow_message_order_per_conversation(bot: Bot) -> None:
    receipts = [await bot.submit(message(f"m{i}", f"k{i}")) for i in range(6)]
    replies = await recorder(bot).wait_for(6)
    assert [r.text for r in replies] == [f"echo: m{i}" for i in range(6)]
    assert [r.in_reply_to_seq for r in replies] == [r.seq for r in receipts]


async def test_history_is_bounded_and_excludes_current(
    make_settings: Callable[..., Settings],
) -> None:
    backend = ScriptedBackend()
    settings = make_settings(bot={"history_turns": 3, "system_prompt": "SYS"})
    async with Bot(settings, backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i in range(4):
            await bot.submit(message(f"q{i}", f"k{i}"))
            await recorder(bot).wait_for(i + 1)
    last = backend.requests[-1].messages
    assert [(m.role, m.content) for m in last] == [
        ("system", "SYS"),
        ("assistant", "fine thanks"),
        ("user", "q2"),
        ("assistant", "fine thanks"),
        ("user", "q3"),
    ]
    assert backend.closed == 1


async def test_history_token_budget_and_later_messages(
    make_settings: Callable[..., Settings],
) -> None:
    backend = ScriptedBackend()
    # echo-free backend: ~4 characters per token; "fine thanks" is 3 tokens, "qN" 1.
    settings = make_settings(bot={"history_token_budget": 5, "system_prompt": ""})
    async with Bot(settings, backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i in range(3):
            await bot.submit(message(f"q{i}", f"k{i}"))
            await recorder(bot).wait_for(i + 1)
        # Two messages stored back to back: the first reply must not see the second.
        await bot.submit(message("early", "k3"))
        await bot.submit(message("late", "k4"))
        await recorder(bot).wait_for(5)
    by_current = {r.messages[-1].content: r.messages for r in backend.requests}
    assert [m.content for m in by_current["q2"]] == ["q1", "fine thanks", "q2"]
    assert "late" not in [m.content for m in by_current["early"]]
    # The reply to "early" was stored after "late" (higher seq) but belongs before it.
    assert [m.content for m in by_current["late"]][-3:] == ["early", "fine thanks", "late"]


@pytest.mark.parametrize(
    ("script", "fail", "expected"),
    [
        (("partial ",), BackendError("model crashed"), "partial \n\n{fallback}"),
        ((), RuntimeError("bug"), "{fallback}"),
        ((), BackendBusyError("queue full"), "{busy}"),
        (("", "  "), None, "  {fallback}"),
    ],
)
async def test_backend_failures_get_configured_replies(
    make_settings: Callable[..., Settings],
    script: tuple[str, ...],
    fail: Exception | None,
    expected: str,
) -> None:
    settings = make_settings()
    async with Bot(settings, backend=ScriptedBackend(script, fail)) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hi", "k1"))
        (reply,) = await recorder(bot).wait_for(1)
        rows = await stored(bot)
    text = expected.format(fallback=settings.bot.fallback_reply, busy=settings.bot.busy_reply)
    assert reply.text == text
    assert rows[-1].text == text and rows[-1].status == MessageStatus.SENT


async def test_connector_failure_marks_reply_failed(bot: Bot) -> None:
    connector = recorder(bot)
    connector.fail_with = ConnectorError("platform said 500")
    connector.fail_after = 2
    await bot.submit(message("one two three four", "k1"))
    await bot.drain(30)
    out = (await stored(bot))[1]
    assert out.direction == Direction.OUTBOUND
    assert out.status == MessageStatus.FAILED
    assert out.error is not None and "platform said 500" in out.error
    assert out.text == "echo: one "  # what had been produced when sending failed


async def test_missing_connector_marks_reply_failed(bot: Bot) -> None:
    await bot.submit(message("hi", "k1", channel="elsewhere"))
    await bot.drain(30)
    rows = await bot.store.messages_after("elsewhere", "c1", 0, 10)
    assert rows[1].status == MessageStatus.FAILED
    assert rows[1].error is not None and "no connector" in rows[1].error


async def test_conversation_with_a_human_is_not_answered(bot: Bot) -> None:
    receipt = await bot.submit(message("first", "k1"))
    await recorder(bot).wait_for(1)
    await bot.store.set_conversation_status(receipt.conversation_id, ConversationStatus.WITH_HUMAN)
    await bot.submit(message("for the agent", "k2"))
    await bot.drain(30)
    assert len(recorder(bot).replies) == 1
    assert (await stored(bot))[-1].text == "for the agent"


async def test_graceful_shutdown_finishes_in_flight_replies(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(backend={"echo": {"word_delay_seconds": 0.02}})
    bot = Bot(settings)
    await bot.start()
    bot.attach_connector(RecordingConnector(bot))
    await bot.submit(message("a b c d e", "k1"))
    await bot.close()
    assert [r.text for r in recorder(bot).replies] == ["echo: a b c d e"]
    with pytest.raises(NotAcceptingError):  # channels tell their client to retry
        await bot.submit(message("late", "k2"))
    assert not await bot.ready()
    async with Bot(settings) as reopened:
        rows = await stored(reopened)
    assert [(r.text, r.status) for r in rows] == [
        ("a b c d e", MessageStatus.ANSWERED),
        ("echo: a b c d e", MessageStatus.SENT),
    ]


class _FirstDelta(RecordingConnector):
    """Sets ``streaming`` when the first delta of a reply arrives."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.streaming = asyncio.Event()
        self.streams: list[ReplyStream] = []

    async def send_stream(self, stream: ReplyStream) -> None:
        self.streams.append(stream)

        async def told() -> AsyncIterator[str]:
            async for delta in stream:
                self.streaming.set()
                yield delta

        parts = [delta async for delta in told()]
        self.deltas.append(parts)
        self.replies.append(await stream.final())


async def test_shutdown_past_grace_stores_partial_reply_as_failed(
    make_settings: Callable[..., Settings],
) -> None:
    # A word every 2 s: no load makes the reply end within the grace period (it is cut
    # there, so the test does not wait for the words).
    settings = make_settings(
        bot={"shutdown_grace_seconds": 0.05}, backend={"echo": {"word_delay_seconds": 2}}
    )
    async with Bot(settings) as bot:
        connector = _FirstDelta(bot)
        bot.attach_connector(connector)
        await bot.submit(message("a b c d e f g", "k1"))
        await asyncio.wait_for(connector.streaming.wait(), 30)  # the reply has begun
    async with Bot(settings) as reopened:
        rows = await stored(reopened)
    assert rows[1].status == MessageStatus.FAILED
    assert rows[1].error == "interrupted by shutdown"
    # Whatever had streamed when the grace period ended, and not the whole reply.
    assert rows[1].text.startswith("echo:") and len(rows[1].text) < len("echo: a b c d e f g")
    # The connector can show what was stored, without reading it back (the web widget
    # ends the cut stream with it).
    (stream,) = connector.streams
    cut = stream.stored_reply
    assert cut is not None and (cut.seq, cut.text) == (rows[1].seq, rows[1].text)
    assert cut.metadata[REPLY_FAILED] and ANSWERED_LANGUAGE not in cut.metadata


async def test_message_a_crash_left_unanswered_is_answered_once_on_next_start(
    make_settings: Callable[..., Settings],
) -> None:
    # A channel redelivery would be a duplicate, so only the bot itself can still
    # answer a message whose reply the last run never finished.
    await _cut_off_mid_reply(
        make_settings, replace(message("a b c", "k1"), channel_ids={"thread": "t1"})
    )
    assert (await _inbound_status(make_settings())) == MessageStatus.RECEIVED

    for expected in (["echo: a b c"], []):  # answered on the next start, then never again
        async with Bot(make_settings()) as bot:
            connector = RecordingConnector(bot)
            bot.attach_connector(connector)
            await asyncio.wait_for(bot.run(), 10)  # its listener ends at once
            assert [r.text for r in connector.replies] == expected
            # Channel ids (e.g. the thread to answer in) come back from the store.
            assert all(r.reply_to == {"thread": "t1"} for r in connector.replies)
    assert (await _inbound_status(make_settings())) == MessageStatus.ANSWERED


async def test_old_unanswered_messages_are_left_alone(
    make_settings: Callable[..., Settings],
) -> None:
    await _cut_off_mid_reply(make_settings, message("a b c", "k1"))
    async with Bot(make_settings(bot={"resume_unanswered_seconds": 0})) as bot:
        connector = RecordingConnector(bot)
        bot.attach_connector(connector)
        await asyncio.wait_for(bot.run(), 10)
    assert connector.replies == []


async def _cut_off_mid_reply(make_settings: Callable[..., Settings], msg: InboundMessage) -> None:
    """Store ``msg`` and stop the bot with no grace period while its reply streams: the
    message stays "received", as when the process dies between storing and answering."""
    slow = make_settings(
        bot={"shutdown_grace_seconds": 0}, backend={"echo": {"word_delay_seconds": 5}}
    )
    async with Bot(slow) as bot:
        connector = _FirstDelta(bot)
        bot.attach_connector(connector)
        await bot.submit(msg)
        await asyncio.wait_for(connector.streaming.wait(), 30)  # mid-reply
    # Closing removed that process's claim: the next start may answer the message at
    # once (a crash's stale claim: see test_bot_resume).


async def _inbound_status(settings: Settings) -> MessageStatus:
    async with Bot(settings) as bot:
        return (await stored(bot))[0].status


async def test_outdated_schema_is_refused_without_auto_migrate(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(SchemaOutdatedError, match="botkit db upgrade"):
        async with Bot(make_settings(store={"auto_migrate": False})):
            pass


class _Listener(RecordingConnector):
    name: ClassVar[str] = "test"

    def __init__(self, core: Bot, *, fail: bool = False, forever: bool = False) -> None:
        super().__init__(core)
        self.fail = fail
        self.forever = forever
        self.connected = self.disconnected = 0

    async def connect(self) -> None:
        self.connected += 1

    async def listen(self) -> None:
        await self.core.submit(message("from listen", "k1"))
        if self.fail:
            raise ConnectorError("socket closed")
        if self.forever:
            await asyncio.Event().wait()

    async def disconnect(self) -> None:
        self.disconnected += 1


async def test_run_until_listeners_end_or_stop(make_settings: Callable[..., Settings]) -> None:
    async with Bot(make_settings()) as bot:
        with pytest.raises(ConnectorError, match="no connector"):
            await bot.run()
        listener = _Listener(bot)
        bot.attach_connector(listener)
        assert await bot.ready()
        await bot.run()  # returns when the only listener is done
        assert (listener.connected, listener.disconnected) == (1, 1)
    assert [r.text for r in listener.replies] == ["echo: from listen"]

    async with Bot(make_settings()) as bot:
        listener = _Listener(bot, forever=True)
        bot.attach_connector(listener)
        asyncio.get_running_loop().call_later(0.1, bot.stop)
        await asyncio.wait_for(bot.run(), 30)
        assert listener.disconnected == 1

    async with Bot(make_settings()) as bot:
        bot.attach_connector(_Listener(bot, fail=True))
        with pytest.raises(ConnectorError, match="socket closed"):
            await bot.run()


async def test_order_holds_when_a_conversation_started_subscriber_is_slow(bot: Bot) -> None:
    """The first message of a conversation waits for ConversationStarted subscribers;
    a second message stored meanwhile must still be answered after it."""

    async def slow(event: object) -> None:
        await asyncio.sleep(0.05)

    bot.events.subscribe(slow, owner="test")
    receipts = await asyncio.gather(*(bot.submit(message(f"m{i}", f"k{i}")) for i in range(2)))
    replies = await recorder(bot).wait_for(2)
    by_seq = sorted(receipts, key=lambda r: r.seq)
    assert [r.in_reply_to_seq for r in replies] == [r.seq for r in by_seq]


class _EagerConnector(RecordingConnector):
    """Takes a message as soon as it is connected (a web server is up in connect())."""

    async def connect(self) -> None:
        await self.core.submit(message("hello there", "eager-1"))


async def test_message_arriving_during_connect_is_not_resumed_twice(
    make_settings: Callable[..., Settings],
) -> None:
    """run() looks for unanswered messages after connecting: one that arrived in between
    is still 'received' (its reply in flight) and must not be answered a second time."""
    settings = make_settings(backend={"echo": {"word_delay_seconds": 0.05}})
    async with Bot(settings) as bot:
        connector = _EagerConnector(bot)
        bot.attach_connector(connector)
        await bot.run()  # the listener returns at once; run waits for the replies
        assert [r.text for r in connector.replies] == ["echo: hello there"]


class _CancelledDuringFinal(RecordingConnector):
    """Streams the reply, then is cancelled (as by shutdown) while the reply is being
    stored by ``final()``."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.streams: list[ReplyStream] = []

    async def send_stream(self, stream: ReplyStream) -> None:
        self.streams.append(stream)
        async for _ in stream:
            pass
        assert stream.stored_reply is None  # not stored yet
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)  # lands inside final()'s write
        await stream.final()


async def test_shutdown_during_the_final_write_stores_the_reply_once(bot: Bot) -> None:
    connector = _CancelledDuringFinal(bot)
    bot.attach_connector(connector)
    await bot.submit(message("hello", "k1"))
    await bot.drain(30)
    rows = await stored(bot)
    outbound = [r for r in rows if r.direction == Direction.OUTBOUND]
    assert [(r.text, r.status) for r in outbound] == [("echo: hello", MessageStatus.FAILED)]
    # Stored as sent, then marked failed: what the connector is handed says so too, and
    # no longer that it answered the message (the next start answers it again).
    (stream,) = connector.streams
    cut = stream.stored_reply
    assert cut is not None and (cut.seq, cut.text) == (outbound[0].seq, "echo: hello")
    assert cut.metadata[REPLY_FAILED] and ANSWERED_LANGUAGE not in cut.metadata


async def test_a_stop_before_run_connects_no_channel(bot: Bot) -> None:
    # A signal between the start and run() (`botkit run` warms up in between): no
    # channel may start serving after the stop, nor log that it did.
    connects = []

    class Counting(RecordingConnector):
        async def connect(self) -> None:
            connects.append(self.name)

    bot.attach_connector(Counting(bot))
    bot.stop()
    await asyncio.wait_for(bot.run(), 30)
    assert connects == []
