"""Files customers send from the web widget, kept in the store (both DBs): bytes in and
out unchanged, one file per conversation and client id, hostile input refused or
cleaned, and that the files go with their conversation (retention, erasure, export)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import MakeMessage
from sqlalchemy import delete, func, inspect, select, text, update
from sqlalchemy.engine import Connection

from botkit.customer_files import kept_ref
from botkit.errors import FileLimitError, StoreError, UnknownConversationError
from botkit.events import Attachment, utcnow
from botkit.store import (
    MAX_STORED_FILE_BYTES,
    ConversationStore,
    CustomerFileRecord,
    Deleted,
    StoreSettings,
    _retention,
    migrate,
)
from botkit.store._runner import create_runner
from botkit.store.models import Contact, Conversation, CustomerFile, Message

EVERY_BYTE = bytes(range(256)) * 5 + b"\x00"  # NUL first and last, every value between


async def _conversation(
    store: ConversationStore, make_message: MakeMessage, key: str = "conv-1", user: str = "ann"
) -> int:
    stored = await store.intake(make_message("hi", conversation=key, user=user), text="hi")
    return stored.conversation.id


async def _keep(
    store: ConversationStore,
    conversation_id: int,
    client_id: str = "up-1",
    *,
    name: str = "photo.png",
    media_type: str = "image/png",
    data: bytes = b"\x89PNG...",
) -> tuple[int, bool]:
    return await store.keep_customer_file(
        conversation_id, client_id, name=name, media_type=media_type, data=data
    )


async def _files(store: ConversationStore) -> int:
    stmt = select(func.count()).select_from(CustomerFile)
    return int(await store._read(lambda conn: conn.execute(stmt).scalar_one()))


async def _age(store: ConversationStore, conversation_id: int, days: float) -> None:
    """Make a conversation and its contact last active ``days`` ago."""
    then = utcnow() - timedelta(days=days)

    def work(conn: Connection) -> None:
        conn.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(updated_at=then)
        )
        owner = select(Conversation.contact_id).where(Conversation.id == conversation_id)
        conn.execute(update(Contact).where(Contact.id.in_(owner)).values(updated_at=then))

    await store._write(work)


async def test_a_file_comes_back_byte_for_byte(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    before = utcnow()
    file_id, stored = await _keep(
        store, conversation_id, "Up_load-1", name="  scan.pdf ", media_type="Application/PDF",
        data=EVERY_BYTE,
    )  # fmt: skip
    assert stored
    kept = await store.customer_file(file_id)
    assert isinstance(kept, CustomerFileRecord)
    assert kept.data == EVERY_BYTE and type(kept.data) is bytes
    assert (kept.id, kept.conversation_id) == (file_id, conversation_id)
    assert kept.client_id == "Up_load-1"
    assert (kept.name, kept.media_type, kept.size) == ("scan.pdf", "application/pdf", 1281)
    assert kept.created_at.tzinfo is not None and before <= kept.created_at <= utcnow()
    assert "data=" not in repr(kept)  # 20 MiB never lands in a log line


async def test_the_largest_file_is_kept_and_one_byte_more_is_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    largest = bytes(range(256)) * (MAX_STORED_FILE_BYTES // 256)
    assert len(largest) == MAX_STORED_FILE_BYTES == 20 * 1024 * 1024
    file_id, _ = await _keep(store, conversation_id, "big", data=largest)
    kept = await store.customer_file(file_id)
    assert kept is not None and kept.size == MAX_STORED_FILE_BYTES and kept.data == largest
    with pytest.raises(StoreError, match="at most 20971520"):
        await _keep(store, conversation_id, "bigger", data=largest + b"!")
    with pytest.raises(StoreError, match="empty"):
        await _keep(store, conversation_id, "nothing", data=b"")
    assert await _files(store) == 1


async def test_a_retried_upload_is_stored_once(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    first, stored = await _keep(store, conversation_id, "up-1", data=b"first")
    again, stored_again = await _keep(
        store, conversation_id, "up-1", name="other.txt", media_type="text/plain", data=b"second"
    )
    assert (again, stored, stored_again) == (first, True, False)
    kept = await store.customer_file(first)
    assert kept is not None and (kept.name, kept.data) == ("photo.png", b"first")
    assert await _files(store) == 1


async def test_client_ids_are_per_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    ann = await _conversation(store, make_message, "c-ann", "ann")
    bob = await _conversation(store, make_message, "c-bob", "bob")
    ann_file, _ = await _keep(store, ann, "same", data=b"ann's")
    bob_file, stored = await _keep(store, bob, "same", data=b"bob's")
    assert stored and bob_file != ann_file
    kept = [await store.customer_file(i) for i in (ann_file, bob_file)]
    assert [(k.conversation_id, k.data) for k in kept if k is not None] == [
        (ann, b"ann's"),
        (bob, b"bob's"),
    ]


async def test_replicas_taking_one_upload_at_once_store_it_once(
    migrated_db_url: str, store: ConversationStore, make_message: MakeMessage
) -> None:
    # Both pass the look-up before either inserts: the insert itself must settle it.
    conversation_id = await _conversation(store, make_message)
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as replica:
        for round_ in range(10):
            results = await asyncio.gather(
                _keep(store, conversation_id, f"race-{round_}", data=b"one"),
                _keep(replica, conversation_id, f"race-{round_}", data=b"two"),
            )
            assert results[0][0] == results[1][0], round_
            assert sorted(stored for _, stored in results) == [False, True], round_
    assert await _files(store) == 10


async def test_a_conversation_holds_at_most_max_files(
    migrated_db_url: str, store: ConversationStore, make_message: MakeMessage
) -> None:
    full = await _conversation(store, make_message, "c-full", "ann")
    other = await _conversation(store, make_message, "c-other", "bob")
    # Two replicas uploading at once: the conversation's lock makes them take turns, so
    # neither can pass the count while the other's file goes in.
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as replica:
        results = await asyncio.gather(
            *(
                s.keep_customer_file(
                    full, f"f{i}", name="a.png", media_type="image/png", data=b"x", max_files=3
                )
                for i, s in enumerate([store, replica] * 3)
            ),
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, FileLimitError)]
    assert len(refused) == 3 and "at most 3" in str(refused[0])
    kept = [r for r in results if isinstance(r, tuple)]
    assert len(kept) == 3 and all(stored for _, stored in kept)
    # A retry of a file it holds is still answered; another conversation is not full.
    held = next(f"f{i}" for i, r in enumerate(results) if isinstance(r, tuple))
    again = await store.keep_customer_file(
        full, held, name="a.png", media_type="image/png", data=b"x", max_files=3
    )
    assert again[1] is False
    elsewhere = await store.keep_customer_file(
        other, "f0", name="a.png", media_type="image/png", data=b"x", max_files=3
    )
    assert elsewhere[1]
    assert await _files(store) == 4


async def test_an_unknown_conversation_is_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    for unknown in (conversation_id + 1000, 0, -1, 2**70):
        with pytest.raises(UnknownConversationError, match="no conversation"):
            await _keep(store, unknown)
    assert await _files(store) == 0


async def test_bad_client_ids_are_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    bad = ["", "a" * 65, "has space", "ü", "a/b", "../x", "a\x00", "a\n", "\ud800", "a.b"]
    for client_id in bad:
        with pytest.raises(StoreError, match="client id"):
            await _keep(store, conversation_id, client_id)
    for good in ("a" * 64, "Az09_-"):
        assert (await _keep(store, conversation_id, good))[1]
    assert await _files(store) == 2


async def test_names_are_cleaned_and_unusable_ones_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    for empty in ("", "   ", "\x00", "\x01\x1f\x7f\n\t", "\udfff\ud800", "\u202e"):
        with pytest.raises(StoreError, match="file name is empty"):
            await _keep(store, conversation_id, name=empty)
    cases = {
        "re\x00port\n2024.pdf": "report2024.pdf",
        "a\ud800b.txt": "ab.txt",
        "invoice\u202efdp.exe": "invoicefdp.exe",  # shown as "invoiceexe.pdf" otherwise
        "📄 résumé (final).PDF": "📄 résumé (final).PDF",
        "x" * 10_000: "x" * 255,
        "x" * 10_000 + ".tar.gz": "x" * 252 + ".gz",
        "😀" * 10_000: "😀" * 255,  # characters, not bytes (PostgreSQL's VARCHAR counts so)
        "y" * 300 + "." + "z" * 40: ("y" * 300 + "." + "z" * 40)[:255],  # no extension
    }
    for n, (name, expected) in enumerate(cases.items()):
        file_id, _ = await _keep(store, conversation_id, f"n{n}", name=name)
        kept = await store.customer_file(file_id)
        assert kept is not None and kept.name == expected, name[:40]
        assert len(kept.name) <= 255


async def test_bad_media_types_are_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    bad = [
        "", "image", "image/", "/png", "image/png; charset=x", "image/png\n", " image/png",
        "imäge/png", "image/png/x", "image/\x00", "a" * 60 + "/" + "b" * 60, "*/*", "-a/b",
    ]  # fmt: skip
    for media_type in bad:
        with pytest.raises(StoreError, match="media type"):
            await _keep(store, conversation_id, media_type=media_type)
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    for n, media_type in enumerate(("Image/PNG", word, "application/octet-stream")):
        file_id, _ = await _keep(store, conversation_id, f"t{n}", media_type=media_type)
        kept = await store.customer_file(file_id)
        assert kept is not None and kept.media_type == media_type.lower()


async def test_what_a_conversation_holds_is_read_without_the_bytes(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    conversation_id = await _conversation(store, make_message)
    assert await store.customer_files_held(conversation_id, "a") == (0, None)
    file_id, _ = await _keep(store, conversation_id, "a", name="scan.pdf",
                             media_type="application/pdf", data=EVERY_BYTE)  # fmt: skip
    await _keep(store, conversation_id, "b")
    count, same = await store.customer_files_held(conversation_id, "a")
    assert count == 2 and same is not None
    assert (same.id, same.name, same.media_type, same.size, same.data) == (
        file_id, "scan.pdf", "application/pdf", len(EVERY_BYTE), b"")  # fmt: skip
    assert await store.customer_files_held(conversation_id, "c") == (2, None)
    assert await store.customer_files_held(conversation_id + 99, "a") == (0, None)
    for unknown in (0, -1, 2**70):
        assert await store.customer_files_held(unknown, "a") == (0, None)
    with pytest.raises(StoreError, match="client id"):
        await store.customer_files_held(conversation_id, "a/b")


async def test_an_unknown_file_is_none(store: ConversationStore, make_message: MakeMessage) -> None:
    file_id, _ = await _keep(store, await _conversation(store, make_message))
    for unknown in (file_id + 1, 0, -5, 2**63, 2**70):
        assert await store.customer_file(unknown) is None


async def test_files_go_with_their_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    old = await _conversation(store, make_message, "old", "ann")
    new = await _conversation(store, make_message, "new", "bob")
    gone = [(await _keep(store, old, f"o{n}"))[0] for n in range(2)]
    kept, _ = await _keep(store, new, "n1")
    await _age(store, old, 40)

    deleted = await store.purge_inactive(utcnow() - timedelta(days=30))

    assert deleted == Deleted(contacts=1, conversations=1, messages=1, files=2)
    assert [await store.customer_file(i) for i in gone] == [None, None]
    assert await store.customer_file(kept) is not None and await _files(store) == 1
    erased = await store.forget_contact("web", "bob")
    assert erased == Deleted(contacts=1, conversations=1, messages=1, files=1)
    assert await store.customer_file(kept) is None and await _files(store) == 0


async def test_files_are_deleted_a_few_per_transaction(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite one transaction freeing every expired file at once would hold the one
    # writer (all replicas' writes) for as long as that takes.
    monkeypatch.setattr(_retention, "FILE_BATCH", 2)
    old = [await _conversation(store, make_message, f"old{i}", f"u{i}") for i in range(2)]
    for n in range(5):
        await _keep(store, old[n % 2], f"f{n}")
    for conversation_id in old:
        await _age(store, conversation_id, 40)
    freed: list[int] = []
    write = store._write

    async def counting(work: Any) -> Any:
        before = await _files(store)
        result = await write(work)
        freed.append(before - await _files(store))
        return result

    monkeypatch.setattr(store, "_write", counting)
    deleted = await store.purge_inactive(utcnow() - timedelta(days=30))
    assert deleted.files == 5 and deleted.conversations == 2 and await _files(store) == 0
    assert max(freed) <= 2 and sum(freed) == 5


async def test_a_purge_never_leaves_a_conversation_without_some_of_its_files(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The customer writes again right after the purge's first transaction: the
    # conversation is then either gone whole (they open a new one) or kept whole.
    old = await _conversation(store, make_message, "old", "ann")
    kept = [(await _keep(store, old, f"f{n}"))[0] for n in range(3)]
    await _age(store, old, 40)
    write = store._write
    writes = 0

    async def customer_returns(work: Any) -> Any:
        nonlocal writes
        result = await write(work)
        writes += 1
        if writes == 1:
            await store.intake(make_message("back", conversation="old", user="ann"), text="back")
        return result

    monkeypatch.setattr(store, "_write", customer_returns)
    await store.purge_inactive(utcnow() - timedelta(days=30))
    monkeypatch.setattr(store, "_write", write)
    # Gone whole, in the transaction that deleted its files: the customer's message
    # waited for it and opened a new conversation.
    assert [await store.customer_file(i) for i in kept] == [None, None, None]
    with pytest.raises(UnknownConversationError):
        await store.conversation_by_id(old)
    again = await store.intake(make_message("more", conversation="old", user="ann"), text="more")
    assert again.conversation.id != old and again.message.seq == 2


async def _file_message(
    store: ConversationStore, make_message: MakeMessage, key: str, user: str, n: int
) -> int:
    """A web visitor's upload: the file kept, then the message naming it."""
    conversation = await store.get_conversation("web", key)
    assert conversation is not None
    file_id, _ = await _keep(store, conversation.id, f"f{n}")
    sent = dataclasses.replace(
        make_message("", conversation=key, user=user),
        attachments=(Attachment("image", f"{n}.png", "image/png", 8, ref=kept_ref(file_id)),),
    )
    await store.intake(sent, text="")
    return file_id


async def _dangling_refs(store: ConversationStore) -> list[str]:
    """Stored messages' ``kept:`` files that are gone or belong to another conversation."""
    rows = await store._read(
        lambda conn: conn.execute(select(Message.conversation_id, Message.extra)).all()
    )
    dangling = []
    for conversation_id, extra in rows:
        for attachment in (extra or {}).get("attachments", []):
            ref = attachment.get("ref") or ""
            if ref.startswith("kept:"):
                kept = await store.customer_file(int(ref.removeprefix("kept:")))
                if kept is None or kept.conversation_id != conversation_id:
                    dangling.append(ref)
    return dangling


async def test_a_customer_writing_mid_purge_of_many_files_starts_afresh(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More files than one transaction deletes: the customer writes again between two
    # of the purge's transactions. The purge had decided on the whole conversation: it
    # goes whole (no message left naming a file it deleted), and what the customer
    # wrote is in a new conversation, as when they write a moment after a purge.
    monkeypatch.setattr(_retention, "FILE_BATCH", 2)
    old = await _conversation(store, make_message, "old", "ann")
    files = [await _file_message(store, make_message, "old", "ann", n) for n in range(5)]
    await _age(store, old, 40)
    write = store._write
    writes = 0

    async def customer_returns(work: Any) -> Any:
        nonlocal writes
        result = await write(work)
        writes += 1
        if writes == 1:  # the first 2 files are gone
            await store.intake(make_message("back", conversation="old", user="ann"), text="back")
        return result

    monkeypatch.setattr(store, "_write", customer_returns)
    deleted = await store.purge_inactive(utcnow() - timedelta(days=30))
    monkeypatch.setattr(store, "_write", write)
    assert deleted.conversations == 1 and deleted.files == 5 and deleted.messages == 6
    assert [await store.customer_file(i) for i in files] == [None] * 5
    assert await _dangling_refs(store) == []
    with pytest.raises(UnknownConversationError):
        await store.conversation_by_id(old)
    now = await store.get_conversation("web", "old")
    assert now is not None and now.id != old
    stored = await store.messages_after("web", "old", 0, 10)
    assert [m.text for m in stored] == ["back"] and stored[0].seq == 1


def _purge_holding_its_first_transaction(
    url: str, before: datetime, inside: threading.Event, go: threading.Event
) -> Deleted:
    """Purge through a store of its own, in this thread (another process, as far as
    the database can tell); the first transaction waits for ``go`` before it commits
    (``inside`` is set once it has done its work)."""

    async def purge() -> Deleted:
        async with ConversationStore(StoreSettings(url=url)) as purger:
            write, held = purger._write, False

            async def holding(work: Any) -> Any:
                nonlocal held
                if held:
                    return await write(work)
                held = True

                def then_wait(conn: Connection) -> Any:
                    result = work(conn)
                    inside.set()
                    assert go.wait(30)
                    return result

                return await write(then_wait)

            purger._write = holding  # type: ignore[method-assign]
            return await purger.purge_inactive(before)

    return asyncio.run(purge())


async def _until_a_write_waits_for_a_lock(store: ConversationStore) -> None:
    """Returns once a session of this PostgreSQL database waits for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with asyncio.timeout(30):
        for _ in itertools.count():
            if await store._read(lambda conn: conn.execute(waiting).scalar_one()):
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("sends", ["message", "file"])
async def test_what_waits_for_the_purges_first_transaction_never_joins_the_purged(
    store: ConversationStore,
    make_message: MakeMessage,
    monkeypatch: pytest.MonkeyPatch,
    migrated_db_url: str,
    sends: str,
) -> None:
    # Concurrently (PostgreSQL): the customer's message or upload comes while the
    # purge's first transaction holds the conversation's row. It waits, and then finds
    # the conversation out of reach: the message opens a new one, the upload is
    # refused (the widget then tells the visitor no person has the chat).
    monkeypatch.setattr(_retention, "FILE_BATCH", 2)
    old = await _conversation(store, make_message, "old", "ann")
    files = [await _file_message(store, make_message, "old", "ann", n) for n in range(5)]
    await _age(store, old, 40)
    inside, go = threading.Event(), threading.Event()
    before = utcnow() - timedelta(days=30)
    purge = asyncio.ensure_future(
        asyncio.to_thread(_purge_holding_its_first_transaction, migrated_db_url, before, inside, go)
    )
    try:
        assert await asyncio.to_thread(inside.wait, 30)
        if sends == "message":
            customer = asyncio.ensure_future(
                store.intake(make_message("back", conversation="old", user="ann"), text="back")
            )
        else:
            customer = asyncio.ensure_future(_keep(store, old, "new-upload"))
        await _until_a_write_waits_for_a_lock(store)
    finally:
        go.set()
    deleted = await purge
    assert deleted.conversations == 1 and deleted.files == 5
    if sends == "message":
        back = await customer
        assert back.conversation.id != old and back.message.seq == 1
    else:
        with pytest.raises(UnknownConversationError):
            await customer
    assert [await store.customer_file(i) for i in files] == [None] * 5
    assert await _files(store) == 0 and await _dangling_refs(store) == []


async def test_a_file_kept_in_an_old_conversation_makes_it_active(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # An upload is kept before the message naming it is stored: a purge in between
    # must not take the file (the message would name a file that is gone).
    old = await _conversation(store, make_message, "old", "ann")
    await _age(store, old, 40)
    file_id, _ = await _keep(store, old, "late")
    assert await store.purge_inactive(utcnow() - timedelta(days=30)) == Deleted()
    assert await store.customer_file(file_id) is not None


async def test_deleting_a_conversation_any_other_way_deletes_its_files(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # The foreign key cascades (migration 0006): no file outlives its conversation.
    conversation_id = await _conversation(store, make_message)
    file_id, _ = await _keep(store, conversation_id)
    await store._write(lambda conn: conn.execute(delete(Conversation)))
    assert await store.customer_file(file_id) is None and await _files(store) == 0


async def test_the_export_lists_files_without_their_bytes(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    mine = await _conversation(store, make_message, "c-ann", "ann")
    theirs = await _conversation(store, make_message, "c-bob", "bob")
    first, _ = await _keep(store, mine, "a", name="scan.pdf", media_type="application/pdf",
                           data=EVERY_BYTE)  # fmt: skip
    second, _ = await _keep(store, mine, "b", name="photo.png", data=b"png")
    await _keep(store, theirs, "c", name="bobs.png")

    exported = await store.export_contact("web", "ann")

    assert exported is not None
    (conversation,) = exported["conversations"]
    files = conversation["files"]
    assert [(f["id"], f["name"], f["media_type"], f["size"]) for f in files] == [
        (first, "scan.pdf", "application/pdf", len(EVERY_BYTE)),
        (second, "photo.png", "image/png", 3),
    ]
    assert all(set(f) == {"id", "name", "media_type", "size", "created_at"} for f in files)
    kept = await store.customer_file(first)
    assert kept is not None and files[0]["created_at"] == kept.created_at.isoformat()
    assert "bobs.png" not in json.dumps(exported)  # JSON-ready, and only Ann's


async def _tables(url: str) -> set[str]:
    runner = create_runner(url, pooled=False)
    try:
        names: list[str] = await runner.read(lambda conn: inspect(conn).get_table_names())
        return set(names)
    finally:
        await runner.dispose()


async def test_migration_0006_adds_and_drops_the_table(
    db_url: str, make_message: MakeMessage
) -> None:
    await migrate.upgrade(db_url, "0005")
    assert "customer_files" not in await _tables(db_url)
    await migrate.upgrade(db_url)
    assert "customer_files" in await _tables(db_url)
    async with ConversationStore(StoreSettings(url=db_url)) as store:
        file_id, _ = await _keep(store, await _conversation(store, make_message))
        assert await store.customer_file(file_id) is not None
    await migrate.downgrade(db_url, "0005")
    assert "customer_files" not in await _tables(db_url)
    assert await migrate.current(db_url) == "0005"
    await migrate.upgrade(db_url)
    assert await migrate.current(db_url) == migrate.head()
