"""Bot processes sharing one database keep in step (both databases).

- A process alone never looks at the database for peers' changes; with a peer it does.
- An agent taking over, through a peer, a conversation whose reply this process is
  writing ends that reply after the words already out (stored ``failed``, superseded),
  as a takeover made in this process does.
- A reply composed while an agent already had the conversation is not stopped.
- A takeover before a reply's first words: nothing of it is sent or stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import ClassVar

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit._delivery import SUPERSEDED
from botkit._resume import RecoveryTiming
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.errors import BackendBusyError, BackendError
from botkit.pipeline import Context, Next
from botkit.pipeline.middleware.conversation import LoadConversationMiddleware
from botkit.store import ConversationStatus, MessageStatus
from botkit.testing.backends import ScriptBackend

# Heartbeats every 0.1 s, a look every 0.05 s while there are peers.
FAST = RecoveryTiming(
    heartbeat_seconds=0.1, stale_seconds=1.0, pass_seconds=0.2, peer_sync_seconds=0.05
)


class _HoldsAfterFirstWords(RecordingConnector):
    """Shows a reply's first delta, then waits for ``release`` before reading on (a
    slow platform call), so a reply is being delivered for as long as a test needs."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.showing = asyncio.Event()
        self.release = asyncio.Event()

    async def send_stream(self, stream: ReplyStream) -> None:
        parts: list[str] = []
        async for delta in stream:
            parts.append(delta)
            if len(parts) == 1:
                self.showing.set()
                await self.release.wait()
        self.deltas.append(parts)
        self.replies.append(await stream.final())
        async with self._changed:
            self._changed.notify_all()


async def _status_command(ctx: Context, next: Next) -> None:
    """A plugin's command answered whoever has the conversation, a human too (middleware
    ahead of the one that leaves human-handled conversations unanswered)."""
    if ctx.text == "/status":
        ctx.set_reply(f"This conversation is {ctx.conversation.status}.")
        return
    await next(ctx)


def _looks(bot: Bot) -> int:
    assert bot._recovery is not None
    return bot._recovery.peers.looks


async def _until_looked(bot: Bot, more: int = 3) -> None:
    """Wait until ``bot`` has looked at its peers' changes ``more`` more times."""
    start = _looks(bot)
    async with asyncio.timeout(30):
        while _looks(bot) < start + more:  # noqa: ASYNC110 - a counter, polled
            await asyncio.sleep(0.02)


@pytest.fixture
async def pair(
    shared_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[Bot, _HoldsAfterFirstWords, Bot]]:
    """Two processes of one deployment: ``writer`` delivers replies through a connector
    that holds them after their first words; ``peer`` serves the agent API."""
    async with Bot(shared_settings(), recovery=FAST) as writer:
        holding = _HoldsAfterFirstWords(writer)
        writer.attach_connector(holding)
        async with Bot(shared_settings(), recovery=FAST) as peer:
            peer.attach_connector(RecordingConnector(peer))
            yield writer, holding, peer
            holding.release.set()


async def test_a_process_alone_never_looks_and_looks_once_it_has_a_peer(
    shared_settings: Callable[..., Settings],
) -> None:
    async with Bot(shared_settings(), recovery=FAST) as alone:
        await asyncio.sleep(0.5)  # ten look periods, five heartbeats
        assert _looks(alone) == 0
        async with Bot(shared_settings(), recovery=FAST):
            await _until_looked(alone)  # fails by timeout if it never starts looking
        # The peer closed: its row is gone, and the looks stop (within stale + 2 beats
        # unloaded; a loaded machine may take longer, so waited for, up to 30 s: a bot
        # that never stops fails here).
        async with asyncio.timeout(30):
            while True:
                settled = _looks(alone)
                await asyncio.sleep(0.5)  # ten look periods
                if _looks(alone) == settled:
                    break


async def test_a_takeover_through_a_peer_ends_the_reply_being_written_here(
    pair: tuple[Bot, _HoldsAfterFirstWords, Bot],
) -> None:
    writer, holding, peer = pair
    await writer.submit(message("where is my parcel", "k1"))
    await asyncio.wait_for(holding.showing.wait(), 10)  # "echo:" is out, the rest is not
    conversation = await peer.store.get_conversation("test", "c1")
    assert conversation is not None
    await peer.agent_replies.send(conversation.id, "Ana here.", agent="Ana", take_over=True)

    await _until_looked(writer)
    holding.release.set()
    (reply,) = await holding.wait_for(1)
    assert reply.superseded
    assert reply.text == holding.deltas[0][0]  # nothing after the first words
    stored = await writer.store.messages_after("test", "c1", 0)
    assert [(m.text, m.status, m.error) for m in stored if m.seq == reply.seq] == [
        (reply.text, MessageStatus.FAILED, SUPERSEDED)
    ]
    assert "Ana here." in [m.text for m in stored]
    assert [r.text for r in recorder(peer).replies] == ["Ana here."]


async def test_a_reply_composed_while_an_agent_has_the_conversation_goes_out_whole(
    pair: tuple[Bot, _HoldsAfterFirstWords, Bot],
) -> None:
    writer, holding, peer = pair
    first = await writer.submit(message("hello", "k1"))
    await asyncio.wait_for(holding.showing.wait(), 10)
    holding.release.set()
    await holding.wait_for(1)
    await peer.agent_replies.send(first.conversation_id, "Ana here.", agent="Ana", take_over=True)
    assert (
        await writer.store.conversation_by_id(first.conversation_id)
    ).status == ConversationStatus.WITH_HUMAN

    holding.showing.clear()
    holding.release.clear()
    writer.pipeline.add_middleware(_status_command, before=LoadConversationMiddleware)
    await writer.submit(message("/status", "k2"))
    await asyncio.wait_for(holding.showing.wait(), 10)
    await _until_looked(writer)
    holding.release.set()
    replies = await holding.wait_for(2)
    assert not replies[1].superseded
    assert replies[1].text == "This conversation is with_human."


class _FlakyWatcher(RecordingConnector):
    """A third-party connector watching conversations whose ``advanced`` fails once."""

    name: ClassVar[str] = "flaky"

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.calls = 0

    def watched(self) -> Collection[str]:
        return ("c1",)

    def advanced(self, last_seqs: Mapping[str, int]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a connector's bug")


async def test_a_look_that_raises_is_logged_and_looking_goes_on(
    shared_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="botkit.bot")
    async with Bot(shared_settings(), recovery=FAST) as bot:
        flaky = _FlakyWatcher(bot)
        bot.attach_connector(flaky)
        await bot.submit(message("hi", "k1", channel="flaky"))
        async with Bot(shared_settings(), recovery=FAST):
            await _until_looked(bot, 5)
        assert flaky.calls >= 2  # the failed look did not end the looking
    assert "a connector's bug" in caplog.text  # with its traceback
    assert caplog.text.count("raised (retrying") == 1  # once, not at every look


async def test_a_peer_that_just_started_is_seen_within_a_look(
    shared_settings: Callable[..., Settings],
) -> None:
    # Heartbeats far apart: counting peers only at a heartbeat would take 60 s (a bound
    # of 20 s tells that from "at once" on any machine).
    slow_beat = RecoveryTiming(heartbeat_seconds=60.0, stale_seconds=180.0, peer_sync_seconds=0.05)
    async with Bot(shared_settings(), recovery=slow_beat) as old:
        await asyncio.sleep(0.2)
        assert _looks(old) == 0
        async with Bot(shared_settings(), recovery=slow_beat):
            async with asyncio.timeout(20):
                await _until_looked(old, 1)


async def test_a_reply_stuck_in_a_slow_channel_call_is_superseded_once(
    pair: tuple[Bot, _HoldsAfterFirstWords, Bot], caplog: pytest.LogCaptureFixture
) -> None:
    writer, holding, peer = pair
    caplog.set_level(logging.INFO, logger="botkit.bot")
    receipt = await writer.submit(message("where is my parcel", "k1"))
    await asyncio.wait_for(holding.showing.wait(), 10)
    await peer.agent_replies.send(receipt.conversation_id, "Ana here.", take_over=True)
    await _until_looked(writer, 6)
    assert caplog.text.count("took it over in another process") == 1


class _SlowFirstWords(ScriptBackend):
    """A backend whose first words take a while (a busy model), then come quickly: not
    before ``go`` is set (a fixed delay lost the race to a takeover on a loaded machine)."""

    name = "slow-first-words"

    def __init__(self) -> None:
        self.asked, self.go = asyncio.Event(), asyncio.Event()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.asked.set()
        await self.go.wait()
        for word in ("Your ", "parcel ", "is ", "on ", "its ", "way."):
            yield word


async def test_a_takeover_before_the_first_words_sends_and_stores_nothing_of_the_reply(
    shared_settings: Callable[..., Settings],
) -> None:
    backend = _SlowFirstWords()
    async with Bot(shared_settings(), backend=backend, recovery=FAST) as bot:
        bot.attach_connector(RecordingConnector(bot))
        receipt = await bot.submit(message("where is my parcel", "k1"))
        await asyncio.wait_for(backend.asked.wait(), 10)  # the reply is being delivered
        await bot.agent_replies.send(receipt.conversation_id, "Ana here.", take_over=True)
        backend.go.set()  # the model's first words come only now
        agents, cut = await recorder(bot).wait_for(2)
        assert agents.text == "Ana here."
        assert (cut.text, cut.seq, cut.superseded) == ("", None, True)
        assert recorder(bot).deltas == [[]]  # the channel got no words of it
        assert await bot.drain(10)  # the message is the agent's once the reply task ends
        stored = await bot.store.messages_after("test", "c1", 0)
        assert [(m.text, m.status) for m in stored] == [
            ("where is my parcel", MessageStatus.ANSWERED),  # the agent has it
            ("Ana here.", MessageStatus.SENT),
        ]


class _FailsAfterTakeover(ScriptBackend):
    """Gives ``words``, then works on (an agent takes over meanwhile), then fails."""

    name = "fails-late"

    def __init__(self, words: tuple[str, ...], fail: Exception) -> None:
        self.words, self.fail = words, fail
        self.asked, self.gate = asyncio.Event(), asyncio.Event()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        for word in self.words:
            yield word
        self.asked.set()
        await self.gate.wait()
        raise self.fail


@pytest.mark.parametrize("words", [(), ("Your ", "parcel ")])
@pytest.mark.parametrize("fail", [BackendError("timed out"), BackendBusyError("queue full")])
async def test_after_a_takeover_a_failing_backend_gets_no_busy_or_fallback_reply(
    shared_settings: Callable[..., Settings], words: tuple[str, ...], fail: Exception
) -> None:
    backend = _FailsAfterTakeover(words, fail)
    settings = shared_settings()
    async with Bot(settings, backend=backend, recovery=FAST) as bot:
        bot.attach_connector(RecordingConnector(bot))
        receipt = await bot.submit(message("where is my parcel", "k1"))
        await asyncio.wait_for(backend.asked.wait(), 10)
        await bot.agent_replies.send(receipt.conversation_id, "Ana here.", take_over=True)
        backend.gate.set()  # the backend fails now
        _, cut = await recorder(bot).wait_for(2)
        assert cut.superseded
        assert cut.text == "".join(words)  # what was out, and nothing after it
        stored = [m.text for m in await bot.store.messages_after("test", "c1", 0)]
    assert settings.bot.fallback_reply not in stored
    assert settings.bot.busy_reply not in stored
