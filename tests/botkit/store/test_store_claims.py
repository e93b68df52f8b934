"""Process rows, heartbeats and claims: what recovery may take over (both DBs)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from conftest import MakeMessage
from sqlalchemy import update

from botkit.events import utcnow
from botkit.store import ConversationStore, InboundFinish, StoreSettings
from botkit.store.models import Process
from botkit.store.records import ProcessRecord


def _process(pid: int, host: str = "host-a") -> ProcessRecord:
    return ProcessRecord(id=f"{pid:016x}", host=host, pid=pid, started_at=utcnow())


async def _age_heartbeat(store: ConversationStore, process_id: str, seconds: float) -> None:
    stmt = (
        update(Process)
        .where(Process.id == process_id)
        .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
    )
    await store._write(lambda conn: conn.execute(stmt))


async def _claimable(store: ConversationStore, me: str, stale_seconds: float = 30) -> list[str]:
    now = utcnow()
    found = await store.unanswered(
        since=now - timedelta(minutes=5),
        stale_before=now - timedelta(seconds=stale_seconds),
        exclude_claimer=me,
    )
    return [u.message.text for u in found]


async def test_only_messages_nobody_is_answering_are_claimable(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    live, dead, closed, me = _process(1), _process(2), _process(3), _process(4)
    for p in (live, dead, closed, me):
        await store.register_process(p)
    for text, claimer in [
        ("by live", live.id),
        ("by dead", dead.id),
        ("by closed", closed.id),
        ("by me", me.id),
        ("by nobody", None),
        ("by unknown", "f" * 16),
    ]:
        await store.intake(make_message(text), text=text, claimed_by=claimer)
    answered = await store.intake(make_message("answered"), text="answered", claimed_by=dead.id)
    await store.finish_inbound(InboundFinish(answered.message))
    await _age_heartbeat(store, dead.id, 60)
    await store.unregister_process(closed.id)

    assert await _claimable(store, me.id) == ["by dead", "by closed", "by nobody", "by unknown"]
    # Every process stored so far, seen through a stale limit of 0 s: all presumed dead.
    everything = ["by live", "by dead", "by closed", "by nobody", "by unknown"]
    assert await _claimable(store, me.id, stale_seconds=-1) == everything
    # Without stale_before, unanswered() is what it always was: every received message.
    rows = await store.unanswered(since=utcnow() - timedelta(minutes=5))
    assert [(u.message.text, u.claimed_by) for u in rows][:2] == [
        ("by live", live.id),
        ("by dead", dead.id),
    ]


async def test_heartbeat_and_unregister(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    me, other = _process(1), _process(2, host="h" * 1000)  # an over-long host name is cut
    await store.register_process(me)
    await store.register_process(other)
    await store.intake(make_message("mine"), text="mine", claimed_by=me.id)
    await _age_heartbeat(store, me.id, 60)
    assert await _claimable(store, other.id) == ["mine"]
    assert await store.heartbeat(me.id)  # alive again: the claim protects the message
    assert await _claimable(store, other.id) == []
    await store.unregister_process(me.id)
    assert not await store.heartbeat(me.id)  # no row to refresh (and none made)
    assert await _claimable(store, other.id) == ["mine"]


async def test_register_prunes_rows_silent_for_a_day(store: ConversationStore) -> None:
    old, recent = _process(1), _process(2)
    await store.register_process(old)
    await store.register_process(recent)
    await _age_heartbeat(store, old.id, 86_400 + 60)
    await _age_heartbeat(store, recent.id, 3_600)
    await store.register_process(_process(3))
    assert not await store.heartbeat(old.id)
    assert await store.heartbeat(recent.id)


async def test_reclaim_is_compare_and_set(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    dead, me = _process(1), _process(2)
    stored = await store.intake(make_message("hello"), text="hello", claimed_by=dead.id)
    unclaimed = await store.intake(make_message("legacy"), text="legacy")
    mid, uid = stored.message.id, unclaimed.message.id
    assert await store.reclaim([(mid, "0" * 16), (uid, dead.id)], me.id) == set()  # stale reads
    assert await store.reclaim([(mid, dead.id), (uid, None)], me.id) == {mid, uid}
    assert await store.reclaim([(mid, dead.id), (uid, None)], "x" * 16) == set()
    rows = await store.unanswered(since=utcnow() - timedelta(minutes=5))
    assert {u.claimed_by for u in rows} == {me.id}
    await store.finish_inbound(InboundFinish(stored.message))
    assert await store.reclaim([(mid, me.id)], "y" * 16) == set()  # answered: never taken
    assert await store.reclaim([], me.id) == set()


async def test_two_processes_reclaiming_at_once_take_each_message_once(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    dead = _process(1)
    ids = []
    for i in range(20):
        text = f"m{i}"
        stored = await store.intake(make_message(text), text=text, claimed_by=dead.id)
        ids.append(stored.message.id)
    async with ConversationStore(StoreSettings(url=store.settings.url)) as peer:
        claims = [(i, dead.id) for i in ids]
        mine, theirs = await asyncio.gather(
            store.reclaim(claims, "a" * 16), peer.reclaim(claims, "b" * 16)
        )
    assert mine | theirs == set(ids)
    assert not mine & theirs


async def test_unclaimed_messages_are_claimable_only_once_old_enough(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # Review 3 finding 1: an unclaimed message may be one a version before claims is
    # answering right now (rolling upgrade); the caller says from what age it is not.
    dead, me = _process(1), _process(2)
    await store.register_process(dead)
    await store.intake(make_message("legacy"), text="legacy")
    await store.intake(make_message("by dead"), text="by dead", claimed_by=dead.id)
    await _age_heartbeat(store, dead.id, 60)
    now = utcnow()
    since, stale = now - timedelta(minutes=5), now - timedelta(seconds=30)

    async def texts(unclaimed_before: timedelta) -> list[tuple[str, bool]]:
        found = await store.unanswered(
            since=since, stale_before=stale, unclaimed_before=now - unclaimed_before,
            exclude_claimer=me.id,
        )  # fmt: skip
        return [(u.message.text, u.claimer_registered) for u in found]

    assert await texts(timedelta(seconds=40)) == [("by dead", True)]  # "legacy" is too new
    assert await texts(timedelta(seconds=-1)) == [("legacy", False), ("by dead", True)]
    await store.unregister_process(dead.id)  # a closed claimer: no row
    assert await texts(timedelta(seconds=40)) == [("by dead", False)]


async def test_unanswered_without_exclude_claimer_keeps_unclaimed_messages(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # Review 3 finding 7: "IS DISTINCT FROM NULL" dropped every unclaimed message.
    live = _process(1)
    await store.register_process(live)
    await store.intake(make_message("unclaimed"), text="unclaimed")
    await store.intake(make_message("by live"), text="by live", claimed_by=live.id)
    now = utcnow()
    since, stale = now - timedelta(minutes=5), now - timedelta(seconds=30)
    found = await store.unanswered(since=since, stale_before=stale)
    assert [u.message.text for u in found] == ["unclaimed"]
