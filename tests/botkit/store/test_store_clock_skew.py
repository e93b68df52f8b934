"""Replicas on hosts whose clocks differ judge each other's heartbeats by the database's
clock (PostgreSQL; on SQLite every process shares one host's clock). Each case is the
audit's: one replica's host clock is set wrong; nothing else is."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from clock_helpers import host_clock
from conftest import MakeMessage
from sqlalchemy import func, update

from botkit._delivery import LiveReplies
from botkit._peers import PeerSync
from botkit._resume import Claims, RecoveryTiming
from botkit.store import ConversationStore
from botkit.store.models import Process

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)

# Beats 10 ms apart (a replica judges its peers 15 ms after its start), stale after 30 s.
TIMING = RecoveryTiming(heartbeat_seconds=0.01, stale_seconds=30.0)


async def _judging(store: ConversationStore) -> Claims:
    claims = Claims(store, TIMING)
    await claims.register()
    await asyncio.sleep(0.02)
    assert claims.may_judge_peers()
    return claims


async def test_a_replica_whose_clock_is_behind_is_alive_right_after_its_heartbeat(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    behind = timedelta(seconds=-60)
    with host_clock(behind):
        b = Claims(store, TIMING)
        await b.register()
        parcel = make_message("where is my parcel?")
        await store.intake(parcel, text=parcel.text, claimed_by=b.id)
    a = await _judging(store)
    with host_clock(behind):
        assert await store.heartbeat(b.id)  # B beats, on time: it is answering
    # Its heartbeat was judged 60 s old (stale): A answered the message a second time.
    assert await a.take_unanswered(900, {"web"}, grace_seconds=10) == []
    # A replica that really stopped beating is still taken over, by the same clock.
    stale = update(Process).where(Process.id == b.id)
    await store._write(
        lambda conn: conn.execute(stale.values(heartbeat_at=func.now() - timedelta(seconds=31)))
    )
    taken = await a.take_unanswered(900, {"web"}, grace_seconds=10)
    assert [message.text for message, _ in taken] == ["where is my parcel?"]


async def test_a_replica_whose_clock_is_a_day_ahead_prunes_no_live_peer(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    b = Claims(store, TIMING)
    await b.register()
    parcel = make_message("where is my parcel?")
    await store.intake(parcel, text=parcel.text, claimed_by=b.id)
    with host_clock(timedelta(days=1, seconds=5)):
        a = Claims(store, TIMING)
        await a.register()  # pruned B's row, "silent for a day" by A's clock
    c = Claims(store, TIMING)
    await c.register()
    # C, just started, judges nobody; a closed claimer's messages it takes at once.
    assert await c.take_unanswered(900, {"web"}, grace_seconds=10) == []
    assert await store.heartbeat(b.id)  # B's row is still there
    # A row silent for over a day by the database's clock is still pruned.
    silent = update(Process).where(Process.id == b.id)
    await store._write(
        lambda conn: conn.execute(silent.values(heartbeat_at=func.now() - timedelta(hours=25)))
    )
    await Claims(store, TIMING).register()
    assert not await store.heartbeat(b.id)


async def test_a_peer_whose_clock_is_behind_is_counted(store: ConversationStore) -> None:
    a = Claims(store, TIMING)
    await a.register()
    sync = PeerSync(store, a.id, LiveReplies(), {}, TIMING)
    for seconds in (0, 25, 45, 600):
        with host_clock(timedelta(seconds=-seconds)):
            b = Claims(store, TIMING)
            await b.register()
            assert await store.heartbeat(b.id)
        # Not counted, it was never looked at: agents' messages through B were not
        # pushed to A's web visitors, takeovers through B did not stop A's replies.
        assert await sync.count_peers() == 1, f"{seconds} s behind"
        await store.unregister_process(b.id)


async def test_a_host_clock_off_from_the_databases_is_warned_about_once(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "botkit.bot")

    def said() -> list[tuple[int, str]]:
        return [(r.levelno, r.getMessage()) for r in caplog.records if "clock" in r.getMessage()]

    with host_clock(timedelta(seconds=60)):
        claims = Claims(store, TIMING)
        await claims.register()
        assert not await claims._beat()  # still off at the next heartbeat: said once
    [(level, line)] = said()
    assert level == logging.WARNING
    assert "this host's clock (" in line and "is 60." in line and "ahead of the database's" in line
    database = line.split("the database's (", 1)[1].split(")", 1)[0]
    assert database[:4].isdigit()  # both times are named
    caplog.clear()
    assert not await claims._beat()  # the clock is right again
    assert said() == [(logging.INFO, "this host's clock agrees with the database's again")]
    caplog.clear()
    with host_clock(timedelta(seconds=-60)):
        assert not await claims._beat()
    [(level, line)] = said()
    assert level == logging.WARNING and "s behind the database's" in line
