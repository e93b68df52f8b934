"""A group upgraded to a supergroup: replies follow it to the new chat id."""

from __future__ import annotations

from typing import Any

from tg_helpers import MakeTg

OLD, NEW = -600, -100600


def in_group(update: dict[str, Any], chat_id: int) -> dict[str, Any]:
    update["message"]["chat"] = {"id": chat_id, "type": "group", "title": "Shop"}
    return update


async def test_a_reply_refused_with_chat_migrated_goes_to_the_supergroup(make_tg: MakeTg) -> None:
    tg = await make_tg({"group_replies": "all"})
    tg.fake.upgraded[OLD] = NEW  # upgraded before the reply is sent
    tg.fake.push(in_group(tg.fake.updates.message(OLD, "order 123 is late"), OLD))
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == ["echo: order 123 is late"]
    [*_, reply] = await tg.history(OLD)
    assert reply.status == "sent"  # delivered, not stored as failed


async def test_the_migrate_service_message_redirects_later_replies(make_tg: MakeTg) -> None:
    tg = await make_tg({"group_replies": "all"})
    u = tg.fake.updates
    tg.fake.push(
        in_group(u.message(OLD, None, extra={"migrate_to_chat_id": NEW}), OLD),
        in_group(u.message(OLD, "sent just before the upgrade"), OLD),
    )
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == ["echo: sent just before the upgrade"]
    # Straight to the new chat: no refused call to the old one first.
    assert not [c for c in tg.fake.calls_to("sendMessage") if c.status != 200]


async def test_a_streamed_reply_in_an_upgraded_group_is_edited_in_the_supergroup(
    make_tg: MakeTg,
) -> None:
    # Review M6: sends followed the upgrade but edits and typing used the old id: the
    # first chunk landed in the supergroup, the edits failed and so did the reply.
    tg = await make_tg({"group_replies": "all"}, word_delay=0.05)
    tg.fake.upgraded[OLD] = NEW
    u = tg.fake.updates
    words = " ".join(f"w{i}" for i in range(40))
    tg.fake.push(
        in_group(u.message(OLD, None, extra={"migrate_to_chat_id": NEW}), OLD),
        in_group(u.message(OLD, words), OLD),
    )
    await tg.wait_answers(1, NEW)
    await tg.settle()
    assert tg.answers(NEW) == [f"echo: {words}"]
    [*_, reply] = await tg.history(OLD)
    assert reply.status == "sent"
    assert tg.fake.calls_to("editMessageText", NEW)  # streamed by edits, there
    for method in ("sendMessage", "editMessageText", "sendChatAction"):
        assert tg.fake.calls_to(method, OLD, ok=False) == [], method
