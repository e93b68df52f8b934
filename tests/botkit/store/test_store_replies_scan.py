"""A person's erasure and export read others' conversations only as far as a reply may
still be theirs (botkit/store/_replies.py), and find what reading all of it would
(both DBs)."""

from __future__ import annotations

import random
from typing import Any

from conftest import MakeMessage
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from botkit.events import utcnow
from botkit.store import ConversationStore, _replies
from botkit.store._replies import answered, attributed_elsewhere
from botkit.store.models import Message


class _Counting:
    """A connection that counts the rows its reads return."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.rows = conn, 0

    def execute(self, statement: Any) -> Any:
        frozen = self.conn.execute(statement).freeze()
        self.rows += len(frozen.data)
        return frozen()


Plan = list[tuple[str, int | None, int | None]]  # (direction, writer, in_reply_to_seq)


async def _group(
    store: ConversationStore, make_message: MakeMessage, users: list[str]
) -> tuple[int, dict[str, int]]:
    """Group G opened by O; the contact ids of ``users`` (who wrote once to exist)."""
    ids: dict[str, int] = {}
    for user in ["O", *users]:
        got = await store.intake(
            make_message("hi", conversation="G", user=user, channel="telegram"), text="hi"
        )
        ids[user] = got.message.contact_id  # type: ignore[assignment]
    return got.conversation.id, ids


def _rows(cid: int, start: int, plan: Plan) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {"conversation_id": cid, "seq": start + n, "direction": d, "contact_id": who,
         "in_reply_to_seq": to, "text": "x", "status": "answered", "created_at": now,
         "extra": {}}
        for n, (d, who, to) in enumerate(plan)
    ]  # fmt: skip


async def test_an_early_writer_in_a_busy_group_is_not_followed_through_its_history(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid, ids = await _group(store, make_message, ["P"])  # seqs 1 (O), 2 (P)
    o, p = ids["O"], ids["P"]
    plan: Plan = [("in", o, None)] * 3000
    plan[1000] = ("out", None, 1000)  # the bot answers O's ...
    plan[2000] = ("out", None, 2)  # ... and, late, P's message
    plan[2001] = ("out", None, None)  # an agent goes on: answers P too

    def fill(conn: Connection) -> None:
        conn.execute(insert(Message), _rows(cid, 3, plan))

    await store._write(fill)

    def scan(conn: Connection) -> tuple[list[int], int]:
        counting = _Counting(conn)
        found = attributed_elsewhere(counting, p)  # type: ignore[arg-type]
        return [a.seq for a in found], counting.rows

    seqs, read = await store._read(scan)
    assert seqs == [2, 2003, 2004]
    assert read < 100  # not the 3000 messages after P's


async def test_the_bounded_scan_finds_what_reading_everything_would(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    rng = random.Random(7)
    cid, ids = await _group(store, make_message, ["A", "B", "C"])
    people = [ids["A"], ids["B"], ids["C"], ids["O"]]
    plan: Plan = []
    for n in range(600):
        seq = 5 + n
        kind = rng.random()
        if kind < 0.55:
            plan.append(("in", rng.choice(people), None))
        elif kind < 0.8:
            plan.append(("out", None, None))
        else:
            plan.append(("out", None, rng.randrange(1, seq)))
    holes = set(rng.sample(range(5, 605), 40))

    def fill(conn: Connection) -> None:
        conn.execute(insert(Message), _rows(cid, 5, plan))
        conn.execute(delete(Message).where(Message.seq.in_(holes)))

    await store._write(fill)
    for first, chunk in ((20, 1000), (1, 7)):
        _replies._FIRST, _replies._CHUNK = first, chunk  # also across reads
        try:
            for person in people[:3]:

                def both(conn: Connection, person: int = person) -> tuple[Any, Any]:
                    got = [(a.seq, a.reply, a.alone) for a in attributed_elsewhere(conn, person)]
                    rows = conn.execute(
                        select(Message.seq, Message.direction, Message.contact_id,
                               Message.in_reply_to_seq)
                        .where(Message.conversation_id == cid).order_by(Message.seq)
                    ).all()  # fmt: skip
                    first = min(r.seq for r in rows if r.contact_id == person)
                    start = max((r.seq for r in rows if r.seq < first and r.direction == "out"),
                                default=0)  # fmt: skip
                    mine = [r for r in rows if r.seq >= start]
                    answers = answered(mine, None)
                    expected = [
                        (r.seq, r.direction == "out",
                         r.direction == "in" or answers[r.seq] == {person})
                        for r in mine
                        if (r.contact_id == person if r.direction == "in"
                            else person in answers.get(r.seq, ()))
                    ]  # fmt: skip
                    return got, expected

                got, expected = await store._read(both)
                assert got == expected and expected
        finally:
            _replies._FIRST, _replies._CHUNK = 20, 1000
