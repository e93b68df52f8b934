"""The in-memory window of recent messages answers history exactly as the database would."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from botkit.events import Direction, InboundMessage
from botkit.store import ConversationStore, StoreSettings
from botkit.store._recent import MAX_DEPTH, RecentMessages
from botkit.store.records import InboundFinish, MessageStatus, StoredMessage

MakeMessage = Callable[..., InboundMessage]
BIG = 10**9


def _message(cid: int, seq: int, status: MessageStatus = MessageStatus.SENT) -> StoredMessage:
    return StoredMessage(
        id=cid * 1000 + seq,
        conversation_id=cid,
        seq=seq,
        direction=Direction.OUTBOUND if seq % 2 == 0 else Direction.INBOUND,
        text=f"message {seq}",
        working_text=None,
        language=None,
        status=status,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        idempotency_key=None,
        error=None,
    )


def _seqs(messages: list[StoredMessage] | None) -> list[int] | None:
    return None if messages is None else [m.seq for m in messages]


async def _db_history(store: ConversationStore, cid: int, turns: int) -> list[StoredMessage]:
    return await store.history(cid, max_turns=turns, token_budget=BIG)  # no through_seq: DB


async def test_history_from_the_window_equals_the_database(
    migrated_db_url: str, make_message: MakeMessage
) -> None:
    """Random appends by this process and by another one (a second store on the same
    database), rejected messages, failed replies and finished inbound messages: after
    every step, the cached answer equals the database's."""
    rng = random.Random(7)
    settings = StoreSettings(url=migrated_db_url)
    async with ConversationStore(settings) as ours, ConversationStore(settings) as other:
        known: dict[str, tuple[int, int]] = {}  # conversation key -> (id, last seq)
        for step in range(160):
            key = f"conv-{rng.randrange(3)}"
            writer = other if rng.random() < 0.15 else ours
            if key not in known or rng.random() < 0.55:
                text = "x" * rng.randrange(1, 40)
                result = await writer.intake(
                    make_message(text, conversation=key), text=text, rejected=rng.random() < 0.1
                )
                known[key] = (result.conversation.id, result.message.seq)
                inbound = result.message
                if writer is ours and rng.random() < 0.5:
                    await ours.finish_inbound(InboundFinish(inbound, "de", f"wt {step}"))
            else:
                cid, _ = known[key]
                stored = await writer.append_outbound(cid, f"reply {step}", in_reply_to_seq=1)
                known[key] = (cid, stored.seq)
                if writer is ours and rng.random() < 0.2:
                    await ours.set_message_status(stored.id, "failed", "gone")
            for cid, last in known.values():
                turns = rng.choice([1, 3, 8, 20])
                cached = await ours.history(
                    cid, max_turns=turns, token_budget=BIG, through_seq=last
                )
                assert cached == await _db_history(ours, cid, turns), (step, cid, turns)
        stats = ours.history_cache
        assert stats.hits > 100  # the window answered most reads...
        assert stats.misses > 5  # ...and the other store's writes sent some to the DB


async def test_a_disabled_cache_always_reads_the_database(
    migrated_db_url: str, make_message: MakeMessage
) -> None:
    settings = StoreSettings(url=migrated_db_url, history_cache_mb=0)
    async with ConversationStore(settings) as store:
        result = await store.intake(make_message("hi"), text="hi")
        cid, seq = result.conversation.id, result.message.seq
        for _ in range(3):
            got = await store.history(cid, max_turns=5, token_budget=BIG, through_seq=seq)
            assert [m.text for m in got] == ["hi"]
        assert store.history_cache.hits == 0
        assert len(store.history_cache) == 0


async def test_hostile_history_arguments(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """Limits beyond the window, unknown conversations and seqs from nowhere fall back to
    the database (or nothing) instead of a wrong answer."""
    result = await store.intake(make_message("one"), text="one")
    cid = result.conversation.id
    for n in range(2, 6):
        await store.intake(make_message(f"m{n}"), text=f"m{n}")
    everything = await _db_history(store, cid, 100)
    assert len(everything) == 5
    assert await store.history(cid, max_turns=MAX_DEPTH + 1, token_budget=BIG, through_seq=5) == (
        everything
    )
    assert await store.history(cid, max_turns=2**40, token_budget=BIG, through_seq=5) == everything
    assert (
        await store.history(cid, max_turns=3, token_budget=BIG, through_seq=2**31)
        == (everything[-3:])
    )
    assert (
        await store.history(cid, max_turns=3, token_budget=BIG, through_seq=-5) == (everything[-3:])
    )
    assert await store.history(cid + 999, max_turns=3, token_budget=BIG, through_seq=1) == []
    assert await store.history(cid, max_turns=0, token_budget=BIG, through_seq=5) == []


async def test_closing_the_store_forgets_the_window(
    migrated_db_url: str, make_message: MakeMessage
) -> None:
    store = ConversationStore(StoreSettings(url=migrated_db_url))
    await store.open()
    result = await store.intake(make_message("hi"), text="hi")
    await store.history(result.conversation.id, max_turns=5, token_budget=BIG, through_seq=1)
    assert len(store.history_cache) == 1
    await store.close()
    assert len(store.history_cache) == 0 and store.history_cache.size == 0


# -- the window itself --------------------------------------------------------------


def test_a_gap_is_a_miss_until_filled() -> None:
    recent = RecentMessages(1 << 20)
    recent.want(10)
    for seq in (1, 2, 4):
        recent.record(_message(1, seq))
    assert recent.latest(1, through_seq=2, max_turns=10) is None  # 4 waits behind the gap
    recent.record(_message(1, 3))
    assert _seqs(recent.latest(1, through_seq=4, max_turns=10)) == [4, 3, 2, 1]


def test_a_window_not_from_the_start_needs_enough_turns() -> None:
    recent = RecentMessages(1 << 20)
    recent.want(3)
    recent.begin_reload(1)
    recent.end_reload(1, [_message(1, s) for s in (9, 8, 7)])
    assert _seqs(recent.latest(1, through_seq=9, max_turns=3)) == [9, 8, 7]
    assert recent.latest(1, through_seq=9, max_turns=4) is None  # seq 6 is not known
    recent.update(_message(1, 8, MessageStatus.FAILED))
    assert recent.latest(1, through_seq=9, max_turns=3) is None  # only 2 eligible left


def test_writes_during_a_reload_are_laid_over_the_rows_read() -> None:
    recent = RecentMessages(1 << 20)
    recent.want(10)
    recent.begin_reload(5)
    recent.record(_message(5, 4))  # committed while the read ran; the read missed it
    recent.update(_message(5, 2, MessageStatus.FAILED))  # and a status change
    recent.end_reload(5, [_message(5, s) for s in (3, 2, 1)])
    assert _seqs(recent.latest(5, through_seq=4, max_turns=10)) == [4, 3, 1]


def test_a_failed_reload_installs_nothing() -> None:
    recent = RecentMessages(1 << 20)
    recent.begin_reload(5)
    recent.end_reload(5, None)
    assert len(recent) == 0 and recent.latest(5, through_seq=1, max_turns=1) is None


def test_the_window_is_bounded_in_bytes_and_depth() -> None:
    recent = RecentMessages(40_000)
    recent.want(5)
    for cid in range(1, 200):
        for seq in range(1, 30):
            recent.record(_message(cid, seq))
        assert recent.size <= 40_000
    assert 0 < len(recent) < 199
    assert recent.latest(1, through_seq=29, max_turns=5) is None  # evicted first (LRU)
    assert _seqs(recent.latest(199, through_seq=29, max_turns=5)) == [29, 28, 27, 26, 25]
    assert recent.latest(199, through_seq=29, max_turns=6) is None  # deeper than kept


@pytest.mark.parametrize("seq", [2, 50])
def test_a_first_sight_that_is_not_seq_1_is_not_cached(seq: int) -> None:
    recent = RecentMessages(1 << 20)
    recent.record(_message(3, seq))
    assert len(recent) == 0
