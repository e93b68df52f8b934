"""Recovery answers what a stopped process left unanswered, once, and nothing else.

Each inbound message is claimed by the process that stored it; recovery takes over a
message only when that process's row is gone (a clean close) or its heartbeat is stale
(a crash), with an atomic re-claim. Time proves nothing: a live peer's slow reply is
never answered a second time, however long it takes.

- A reply that was stored but never reached the customer (shutdown cut its last send)
  leaves the message unanswered, so the next start answers it, at once.
- A closed process's leftover is answered at the next start, at once; a crashed one's a
  beat and a half later (its row may be stale only because of a database outage), and
  by a running process's periodic pass once it becomes stale.
- A process starting right after an outage leaves live peers' messages alone; a live
  process whose row vanished registers again; an unclaimed message (a version before
  claims) waits for stale + grace.
- A peer that closes after our start leaves its cut-off message to our periodic pass.
- Two processes recovering the same leftover at once answer it once.
- A message found by recovery and by its own ``submit`` at once gets one reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import RecordingConnector, age_processes, backdate_messages, message, recorder

from botkit._resume import RecoveryTiming
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError, StoreError
from botkit.events import Direction, utcnow
from botkit.store import MessageStatus

# Test timings: heartbeats every 0.1 s, dead after 1 s of silence, a pass every 0.2 s.
FAST = RecoveryTiming(heartbeat_seconds=0.1, stale_seconds=1.0, pass_seconds=0.2)


class _StoresThenHangs(RecordingConnector):
    """Stores the reply (``final()``), then hangs in the platform call that would
    deliver it, as when Telegram asks to retry after a while."""

    def __init__(self, core: Bot) -> None:
        super().__init__(core)
        self.stored = asyncio.Event()

    async def send_stream(self, stream: ReplyStream) -> None:
        async for _ in stream:
            pass
        await stream.final()
        self.stored.set()
        await asyncio.Event().wait()


class _Listening(RecordingConnector):
    """A connector whose listener runs until the bot stops."""

    async def listen(self) -> None:
        await asyncio.Event().wait()


async def _statuses(bot: Bot) -> list[tuple[Direction, MessageStatus]]:
    rows = await bot.store.messages_after("test", "c1", 0, 20)
    return [(r.direction, r.status) for r in rows]


async def _leave_unanswered(settings: Settings, text: str, *, crash: bool) -> None:
    """Store ``text`` and stop while its reply streams (no grace period), so that it
    stays "received". ``crash``: the process row stays behind, as after a kill
    (otherwise it is deleted, as by a clean close)."""
    async with Bot(settings) as dying:
        dying.attach_connector(RecordingConnector(dying))
        await dying.submit(message(text, "k1"))
        await asyncio.sleep(0.05)
        if crash:

            async def killed(process_id: str) -> None:
                pass  # a killed process never removes its row

            dying.store.unregister_process = killed  # type: ignore[method-assign]


def _dying(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        bot={"shutdown_grace_seconds": 0}, backend={"echo": {"word_delay_seconds": 0.5}}
    )


async def test_a_reply_stored_but_cut_off_by_shutdown_is_answered_on_the_next_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bot={"shutdown_grace_seconds": 0})
    async with Bot(settings) as bot:
        connector = _StoresThenHangs(bot)
        bot.attach_connector(connector)
        await bot.submit(message("where is my parcel?", "k1"))
        await asyncio.wait_for(connector.stored.wait(), 10)  # the reply is stored...
    # ...and shutdown cut off its delivery: the customer never got it.
    async with Bot(settings) as bot:
        assert await _statuses(bot) == [
            (Direction.INBOUND, MessageStatus.RECEIVED),
            (Direction.OUTBOUND, MessageStatus.FAILED),
        ]
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await asyncio.wait_for(bot.run(), 10)  # at once: that process closed
        assert [r.text for r in recorder(bot).replies] == ["echo: where is my parcel?"]
        assert (await _statuses(bot))[0] == (Direction.INBOUND, MessageStatus.ANSWERED)


async def test_a_live_peer_streaming_a_slow_reply_is_never_answered_twice(
    shared_settings: Callable[..., Settings],
) -> None:
    # The peer's reply takes ~3.5 s, longer than our stale limit (1 s) and longer than
    # the old design's settle time (grace 0.5 s + 2 s): only its heartbeat protects it.
    slow = shared_settings(echo={"word_delay_seconds": 0.6})
    async with Bot(slow, recovery=FAST) as peer:
        peer.attach_connector(RecordingConnector(peer))
        await peer.submit(message("where is my parcel please", "k1"))
        await asyncio.sleep(0.2)  # the peer is answering...
        async with Bot(shared_settings(shutdown_grace_seconds=0.5), recovery=FAST) as new:
            new.attach_connector(_Listening(new))  # ...when this one starts: both live
            running = asyncio.create_task(new.run())
            assert await peer.drain(30)
            await asyncio.sleep(0.5)  # a few more passes after the reply was stored
            new.stop()
            await running
            assert recorder(new).replies == []
    assert [r.text for r in recorder(peer).replies] == ["echo: where is my parcel please"]


async def test_a_closed_process_leftover_is_answered_at_the_next_start_without_waiting(
    make_settings: Callable[..., Settings],
) -> None:
    await _leave_unanswered(_dying(make_settings), "hello?", crash=False)
    # A closed process's row is gone, nothing to judge: the start pass answers it. Slow
    # timings, so that any later pass (at 1.5 beats, 90 s) is far past the 30 s allowed
    # here for "at once" on a loaded machine.
    timing = RecoveryTiming(heartbeat_seconds=60.0, stale_seconds=180.0, pass_seconds=90.0)
    async with Bot(make_settings(), recovery=timing) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await connector.wait_for(1, within=30)
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == ["echo: hello?"]


async def test_a_crashed_process_leftover_is_answered_a_beat_and_a_half_after_the_start(
    make_settings: Callable[..., Settings],
) -> None:
    # Review 3 finding 2: the start pass does not judge stale rows (after an outage every
    # row is stale, live peers' too); the first periodic pass comes as soon as it may,
    # at 1.5 heartbeats (3 s here), not a whole pass (60 s) later. Seconds apart, so a
    # loaded machine cannot blur them: 1 s of it passes before the first look, and the
    # reply is allowed 30 s.
    await _leave_unanswered(_dying(make_settings), "hello?", crash=True)
    age_processes(make_settings(), 600)  # it crashed ten minutes ago
    timing = RecoveryTiming(heartbeat_seconds=2.0, stale_seconds=5.0, pass_seconds=60.0)
    registering = time.monotonic()  # (judging starts 1.5 beats after the registration)
    async with Bot(make_settings(), recovery=timing) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(1.0)
        assert connector.replies == []  # not by the start pass
        await connector.wait_for(1, within=30)
        waited = time.monotonic() - registering
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == ["echo: hello?"]
    assert 2.9 < waited < 30.0


async def test_a_process_starting_right_after_a_database_outage_leaves_live_peers_alone(
    make_settings: Callable[..., Settings],
) -> None:
    # Review 3 finding 2: during the outage nobody could beat, so the peer's row is
    # stale when the database comes back; it is alive and streaming its reply.
    timing = RecoveryTiming(heartbeat_seconds=0.2, stale_seconds=0.6, pass_seconds=0.3)
    slow = make_settings(backend={"echo": {"word_delay_seconds": 0.25}})
    async with Bot(slow, recovery=timing) as peer:
        peer.attach_connector(RecordingConnector(peer))
        real_beat, outage = peer.store.heartbeat, [True]

        async def beat(process_id: str) -> bool:
            if outage[0]:
                raise StoreError("database write failed: connection refused")
            return await real_beat(process_id)

        peer.store.heartbeat = beat  # type: ignore[method-assign]
        await peer.submit(message("one two three four five six seven eight", "k1"))  # ~2 s
        await asyncio.sleep(0.8)  # its heartbeat is 0.8 s old: stale
        outage[0] = False  # the database is back; a replica starts at once
        async with Bot(make_settings(), recovery=timing) as new:
            new.attach_connector(_Listening(new))
            running = asyncio.create_task(new.run())
            assert await peer.drain(30)
            await asyncio.sleep(0.4)
            assert await new.drain(30)
            new.stop()
            await running
            assert recorder(new).replies == []
    assert [r.text for r in recorder(peer).replies] == [
        "echo: one two three four five six seven eight"
    ]


async def test_an_unclaimed_message_waits_for_stale_plus_grace(
    make_settings: Callable[..., Settings],
) -> None:
    # Review 3 finding 1: a version before claims (still running during the rolling
    # upgrade) stores messages unclaimed; it may still be answering one, and no
    # heartbeat tells. Taken only once older than stale (1 s) + grace (0.5 s).
    settings = make_settings(bot={"shutdown_grace_seconds": 0.5})
    async with Bot(settings, recovery=FAST) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        # Stored no earlier than this: the store stamps the row while intake runs, and
        # on a loaded machine intake itself may take most of a second.
        stored = utcnow()
        await bot.store.intake(message("hello?", "k1"), text="hello?")  # no claim
        running = asyncio.create_task(bot.run())
        await connector.wait_for(1, within=10)
        bot.stop()
        await running
    (reply,) = connector.replies
    assert reply.text == "echo: hello?" and reply.created_at is not None
    # When the reply was made, not when this test saw it: on a loaded machine a sleep
    # here may overshoot past stale + grace, and a reply then is on time.
    waited = (reply.created_at - stored).total_seconds()
    assert 1.5 <= waited < 5.0, waited


async def test_a_live_process_whose_row_vanished_registers_again(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # Review 3 finding 3: the row pruned (a day suspended) or deleted by an operator.
    caplog.set_level(logging.WARNING, "botkit.bot")
    slow = make_settings(backend={"echo": {"word_delay_seconds": 0.4}})
    async with Bot(slow, recovery=FAST) as peer:
        peer.attach_connector(RecordingConnector(peer))
        assert peer._recovery is not None
        claims = peer._recovery.claims
        await peer.store.unregister_process(claims.id)  # the row is gone
        await asyncio.sleep(0.5)  # several beats: one re-inserts it
        async with Bot(make_settings(), recovery=FAST) as new:
            new.attach_connector(_Listening(new))
            running = asyncio.create_task(new.run())
            await asyncio.sleep(0.1)
            await peer.submit(message("one two three four five six", "k1"))  # ~2.4 s
            assert await peer.drain(30)
            await asyncio.sleep(0.3)
            assert await new.drain(30)
            new.stop()
            await running
            assert recorder(new).replies == []
    assert [r.text for r in recorder(peer).replies] == ["echo: one two three four five six"]
    warned = [r for r in caplog.records if "no longer registered" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


async def test_a_reregistration_in_flight_at_close_lands_before_the_delete(
    make_settings: Callable[..., Settings],
) -> None:
    # Review 3 finding 3: close cancels the heartbeat, then deletes the row. A
    # re-insert still running then must not bring the row back after the DELETE.
    async with Bot(make_settings(), recovery=FAST) as bot:
        assert bot._recovery is not None
        store, claims = bot.store, bot._recovery.claims
        inserting, release = asyncio.Event(), asyncio.Event()
        real_register = store.register_process

        async def slow_register(process: Any) -> None:
            inserting.set()
            await release.wait()  # the INSERT is on its way while close() runs
            await real_register(process)

        store.register_process = slow_register  # type: ignore[method-assign]
        await store.unregister_process(claims.id)
        await asyncio.wait_for(inserting.wait(), 30)
        closing = asyncio.create_task(bot.close())
        await asyncio.sleep(0.2)
        assert not closing.done()  # the DELETE waits for the INSERT...
        release.set()
        await asyncio.wait_for(closing, 30)
    async with Bot(make_settings()) as bot:  # ...so the row is gone for good
        rows = await bot.store._read(
            lambda conn: conn.exec_driver_sql("SELECT id FROM processes").all()
        )
        assert bot._recovery is not None
        assert [r[0] for r in rows] == [bot._recovery.claims.id]


async def test_a_crash_with_a_fresh_heartbeat_is_taken_over_once_it_is_stale(
    make_settings: Callable[..., Settings],
) -> None:
    await _leave_unanswered(_dying(make_settings), "hello?", crash=True)
    # Stale after 6 s: ample for the start below on a loaded machine.
    timing = RecoveryTiming(heartbeat_seconds=0.1, stale_seconds=6.0, pass_seconds=0.2)
    async with Bot(make_settings(), recovery=timing) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.1)
        # Its heartbeat is younger than 6 s: it might be a live replica, so not yet.
        assert connector.replies == []
        await connector.wait_for(1, within=30)  # then a periodic pass takes it
        await asyncio.sleep(0.5)
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == ["echo: hello?"]


async def test_a_peer_that_closes_after_our_start_leaves_its_cut_off_message_to_us(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(), recovery=FAST) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.1)  # our start pass is over
        await _leave_unanswered(_dying(make_settings), "hello?", crash=False)
        await connector.wait_for(1, within=30)  # not a restart away: our next pass
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == ["echo: hello?"]


async def test_two_processes_recovering_one_leftover_at_once_answer_it_once(
    make_settings: Callable[..., Settings],
) -> None:
    await _leave_unanswered(_dying(make_settings), "hello?", crash=False)
    backdate_messages(make_settings(), 60)  # old enough for the old design's first pass
    async with (
        Bot(make_settings(), recovery=FAST) as one,
        Bot(make_settings(), recovery=FAST) as two,
    ):
        for bot in (one, two):
            bot.attach_connector(_Listening(bot))
        runs = [asyncio.create_task(one.run()), asyncio.create_task(two.run())]
        await asyncio.sleep(0.6)  # both start passes and a few periodic ones
        for bot in (one, two):
            assert await bot.drain(10)
            bot.stop()
        await asyncio.gather(*runs)
        answers = [r.text for r in recorder(one).replies + recorder(two).replies]
    assert answers == ["echo: hello?"]


@pytest.mark.parametrize(("age", "answered"), [(58.5, True), (62.0, False)])
async def test_the_window_counts_from_each_pass(
    make_settings: Callable[..., Settings], age: float, answered: bool
) -> None:
    # Review finding 3: a leftover stored 58.5 s before the start, inside a 60 s window,
    # was in neither of the old design's passes (grace 0.5 s + 2 s settle).
    await _leave_unanswered(_dying(make_settings), "hello?", crash=False)
    backdate_messages(make_settings(), age)
    settings = make_settings(bot={"shutdown_grace_seconds": 0.5, "resume_unanswered_seconds": 60})
    async with Bot(settings, recovery=FAST) as bot:
        connector = _Listening(bot)
        bot.attach_connector(connector)
        running = asyncio.create_task(bot.run())
        await asyncio.sleep(0.5)
        await bot.drain(10)
        bot.stop()
        await running
    assert [r.text for r in connector.replies] == (["echo: hello?"] if answered else [])


async def test_a_message_found_by_recovery_and_by_its_submit_is_answered_once(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        store = bot.store
        committed, recovered = asyncio.Event(), asyncio.Event()
        real_intake, real_unanswered = store.intake, store.unanswered

        async def intake(*args: object, **kwargs: object) -> object:
            result = await real_intake(*args, **kwargs)  # type: ignore[arg-type]
            committed.set()  # stored as 'received'...
            await recovered.wait()  # ...but submit() goes on only after recovery ran
            return result

        async def unanswered(**kwargs: object) -> object:
            await committed.wait()  # recovery's query sees the new message
            return await real_unanswered(**kwargs)  # type: ignore[arg-type]

        store.intake, store.unanswered = intake, unanswered  # type: ignore[method-assign,assignment]

        async def recover() -> None:
            assert bot._recovery is not None
            await bot._recovery.resume_unanswered()  # the message carries our claim: skipped
            recovered.set()

        await asyncio.gather(bot.submit(message("hello there", "k1")), recover())
        assert await bot.drain(30)
    assert [r.text for r in recorder(bot).replies] == ["echo: hello there"]


async def test_a_failing_heartbeat_is_retried_and_pauses_judging_peers(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "botkit.bot")
    async with Bot(make_settings(), recovery=FAST) as bot:
        store = bot.store
        real, calls = store.heartbeat, []

        async def flaky(process_id: str) -> bool:
            calls.append(process_id)
            if len(calls) <= 2:
                raise StoreError("database write failed: connection refused")
            return await real(process_id)

        store.heartbeat = flaky  # type: ignore[method-assign]
        assert bot._recovery is not None
        claims = bot._recovery.claims
        assert not claims.may_judge_peers()  # not at start...
        await asyncio.sleep(0.25)  # ...and two failed beats later, still not
        assert not claims.may_judge_peers()  # peers could not beat either
        await asyncio.sleep(0.2)  # beats again, but peers need a stale period for it
        assert len(calls) >= 3 and not claims.may_judge_peers()
    logged = [r.msg for r in caplog.records]
    assert logged.count("process heartbeat failed (retrying): %s") == 1  # once per outage
    assert "process heartbeat works again" in logged


@pytest.mark.parametrize("seconds", [0.5, 20, 59.9])
def test_a_resume_window_too_short_for_a_takeover_is_refused(seconds: float) -> None:
    # Review 3 finding 6: a crashed claimer's messages are found up to ~45 s after they
    # were stored; a shorter window silently dropped every crash leftover.
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"bot": {"resume_unanswered_seconds": seconds}}, environ={})
    (problem,) = caught.value.problems
    assert problem.path == "bot.resume_unanswered_seconds"
    assert "0 (off) or at least 60" in problem.message and "45 s" in problem.message


@pytest.mark.parametrize("seconds", [0, 60, 900])
def test_a_resume_window_of_0_or_a_minute_or_more_is_accepted(seconds: float) -> None:
    settings = settings_from_mapping({"bot": {"resume_unanswered_seconds": seconds}}, environ={})
    assert settings.bot.resume_unanswered_seconds == seconds
