"""The reads a process makes to keep in step with its peers (both DBs)."""

from __future__ import annotations

from datetime import timedelta

from conftest import MakeMessage
from sqlalchemy import update

from botkit.events import utcnow
from botkit.store import ConversationStatus, ConversationStore
from botkit.store._peers import CHUNK
from botkit.store.models import Process
from botkit.store.records import ProcessRecord


def _process(pid: int) -> ProcessRecord:
    return ProcessRecord(id=f"{pid:016x}", host="host-a", pid=pid, started_at=utcnow())


async def test_live_peers_counts_the_others_with_a_fresh_heartbeat(
    store: ConversationStore,
) -> None:
    me, live, dead = _process(1), _process(2), _process(3)
    since = timedelta(seconds=30)  # a heartbeat within this long of the database's now
    await store.register_process(me)
    assert await store.live_peers(me.id, since) == 0  # alone: our own row is no peer
    for p in (live, dead):
        await store.register_process(p)
    stmt = (
        update(Process)
        .where(Process.id == dead.id)
        .values(heartbeat_at=utcnow() - timedelta(minutes=5))
    )
    await store._write(lambda conn: conn.execute(stmt))
    assert await store.live_peers(me.id, since) == 1
    await store.unregister_process(live.id)
    assert await store.live_peers(me.id, since) == 0


async def test_last_seqs_reads_one_channel_and_leaves_out_unknown_keys(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    for text in ("a", "b", "c"):
        await store.intake(make_message(text, conversation="two"), text=text)
    await store.intake(make_message("x", conversation="one"), text="x")
    await store.intake(make_message("y", conversation="one", channel="other"), text="y")

    found = await store.last_seqs("web", ["one", "two", "nobody", "one"])
    assert found == {"one": 1, "two": 3}
    assert await store.last_seqs("web", []) == {}
    # Hostile keys are bound parameters, never SQL.
    assert await store.last_seqs(
        "web", ["' OR 1=1 --", "%", "\x00", "", "k" * 5000, "\ud800", "two"]
    ) == {"two": 3}


async def test_many_keys_and_ids_are_read_in_chunks(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # More than one chunk, with the known conversations in different chunks.
    keys = [f"k{n:05d}" for n in range(2 * CHUNK + 7)]
    first = await store.intake(make_message("a", conversation=keys[0]), text="a")
    last = await store.intake(make_message("b", conversation=keys[-1]), text="b")
    await store.intake(make_message("c", conversation=keys[-1]), text="c")
    assert await store.last_seqs("web", keys) == {keys[0]: 1, keys[-1]: 2}

    ids = [first.conversation.id, last.conversation.id, *range(10**6, 10**6 + 2 * CHUNK)]
    await store.set_conversation_status(last.conversation.id, ConversationStatus.WITH_HUMAN)
    assert await store.statuses(ids) == {
        first.conversation.id: ConversationStatus.BOT,
        last.conversation.id: ConversationStatus.WITH_HUMAN,
    }
    assert await store.statuses([]) == {}
