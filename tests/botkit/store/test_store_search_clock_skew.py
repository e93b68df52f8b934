"""find_conversations with ``since``/``until`` when a few stored times are out of order
(a host whose clock was off by more than ``CLOCK_SLACK``): the id range its binary
search finds does not move for one bad row, so no match in the window is missed
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from conftest import MakeMessage
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from botkit.events import utcnow
from botkit.store import ConversationStore
from botkit.store._search import PROBE_ROWS
from botkit.store.models import Message

_MESSAGES = 100


async def _fill(store: ConversationStore, make_message: MakeMessage) -> tuple[int, int]:
    """``_MESSAGES`` conversations of one message each; the first and last message ids."""
    for i in range(_MESSAGES):
        text = f"refund {i}"
        await store.intake(make_message(text, conversation=f"c{i}", user=f"u{i}"), text=text)

    def ids(conn: Connection) -> tuple[int, int]:
        row = conn.execute(select(func.min(Message.id), func.max(Message.id))).one()
        return row[0], row[1]

    return await store._read(ids)


async def _shift(store: ConversationStore, ids: range, by: timedelta) -> None:
    def work(conn: Connection) -> None:
        conn.execute(
            update(Message).where(Message.id.in_(list(ids))).values(created_at=utcnow() + by)
        )

    await store._write(work)


async def test_one_old_time_at_a_probe_does_not_hide_the_rest_from_since(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first, last = await _fill(store, make_message)
    probe = (first + last + 1) // 2  # the binary search's first probe
    await _shift(store, range(probe, probe + 1), -timedelta(hours=1))

    result = await store.find_conversations(
        text="refund", since=utcnow() - timedelta(minutes=5), limit=1000
    )

    assert len(result.found) == _MESSAGES - 1  # all but the one stored "an hour ago"
    assert result.scanned is not None and result.scanned[0] <= first
    assert not result.truncated


async def test_one_future_time_at_a_probe_does_not_hide_the_rest_from_until(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first, last = await _fill(store, make_message)
    probe = (first + last + 1) // 2
    await _shift(store, range(probe, probe + 1), timedelta(hours=1))

    result = await store.find_conversations(text="refund", until=utcnow(), limit=1000)

    assert len(result.found) == _MESSAGES - 1  # all but the one stored "in an hour"
    assert result.scanned is not None and result.scanned[1] >= last
    assert not result.truncated


async def test_a_window_still_narrows_the_range(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """The robust probes still read only about the window, give or take one probe's
    rows: the oldest half stored two hours ago is not read for the last hour."""
    first, last = await _fill(store, make_message)
    half = (first + last) // 2
    await _shift(store, range(first, half + 1), -timedelta(hours=2))

    result = await store.find_conversations(
        text="refund", since=utcnow() - timedelta(hours=1), limit=1000
    )

    assert len(result.found) == last - half
    assert result.scanned is not None
    assert half - PROBE_ROWS < result.scanned[0] <= half + 1
