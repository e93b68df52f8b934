"""Files customers send where no platform keeps them for botkit (the web widget).

Telegram and Slack keep a customer's file and botkit stores only its metadata; a web
visitor's upload has nowhere else to live, so its bytes are kept in the store's own
database. That way every replica sharing the database can serve it, and it is deleted
with its conversation (retention, erasure: ``_retention.py``).

An upload is stored once per conversation and ``client_id`` (the uploader's idempotency
key): a retried upload gets the first one's id back.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from botkit.errors import FileLimitError, StoreError, UnknownConversationError
from botkit.events import utcnow
from botkit.sanitize import BIDI_CONTROLS
from botkit.store._checks import clean_meta
from botkit.store._feedback import FeedbackStore
from botkit.store.models import (
    CLIENT_ID_MAX,
    DETACHED,
    FILE_NAME_MAX,
    MEDIA_TYPE_MAX,
    Conversation,
    CustomerFile,
)
from botkit.store.records import CustomerFileRecord

__all__ = ["MAX_STORED_FILE_BYTES", "CustomerFileStore", "clean_file_name"]

# The largest file kept: a phone photo or a scanned PDF fits; a video does not. Each is
# one row, read and written whole, so this also bounds what one request holds in memory.
MAX_STORED_FILE_BYTES = 20 * 1024 * 1024
_ID_MAX = 2**63 - 1  # ids are 64-bit (an id from a URL may be anything)

_CLIENT_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{CLIENT_ID_MAX}}}")
# RFC 6838 "restricted-name" / "restricted-name", without parameters ("; charset=...").
_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(f"{_NAME_PART}/{_NAME_PART}")
_BIDI = dict.fromkeys(BIDI_CONTROLS)  # for str.translate: removed
_KEEP_EXTENSION = 16  # longest extension ("tar.gz", "docx"...) kept when a name is cut

_FIND = select(CustomerFile.id).where(
    CustomerFile.conversation_id == bindparam("conversation_id"),
    CustomerFile.client_id == bindparam("client_id"),
)
# FOR NO KEY UPDATE (PostgreSQL; SQLite's writers run one at a time anyway): two uploads
# to one conversation take turns, so its file limit holds across replicas. Writes that
# update the conversation's row (a message stored in it) wait for the file's insert;
# other conversations are not held up. A purge, which locks the
# conversations it deletes FOR UPDATE SKIP LOCKED, leaves this one alone while the file
# goes in; one that locked it first is waited for, and then the conversation is unknown
# (a clear error instead of a foreign-key violation), also when that purge only detached
# it (``DETACHED``, ``_retention.py``): the file would be deleted with it.
_LOCK_CONVERSATION = (
    select(Conversation.id)
    .where(Conversation.id == bindparam("conversation_id"), Conversation.channel != DETACHED)
    .with_for_update(key_share=True)
)
# A file kept is activity: the message naming it is stored right after, and a purge in
# between must not take the file from under it (the conversation no longer looks idle).
_ACTIVE = (
    update(Conversation)
    .where(Conversation.id == bindparam("b_id"))
    .values(updated_at=bindparam("b_now"))
)
_COUNT = select(func.count()).where(CustomerFile.conversation_id == bindparam("conversation_id"))
_META_COLS = (
    CustomerFile.id, CustomerFile.conversation_id, CustomerFile.client_id, CustomerFile.name,
    CustomerFile.media_type, CustomerFile.size, CustomerFile.created_at,
)  # fmt: skip
_FILE_COLS = (*_META_COLS, CustomerFile.data)


def clean_file_name(name: str) -> str:
    """``name`` made storable and harmless to show: without control characters, NUL,
    lone surrogates or bidirectional controls, trimmed, and cut to ``FILE_NAME_MAX``
    characters (keeping a short extension, so the file still opens with the right
    program). May return "" (nothing was left)."""
    text = str(clean_meta(name)).translate(_BIDI)
    text = "".join(c for c in text if unicodedata.category(c) != "Cc").strip()
    if len(text) <= FILE_NAME_MAX:
        return text
    stem, dot, extension = text.rpartition(".")
    if not dot or not stem or len(extension) > _KEEP_EXTENSION:
        return text[:FILE_NAME_MAX].rstrip()
    return stem[: FILE_NAME_MAX - len(extension) - 1].rstrip() + "." + extension


def _check_client_id(client_id: str) -> None:
    if not _CLIENT_ID.fullmatch(client_id):
        raise StoreError(
            f"file client id {client_id[:40]!r} is not 1-{CLIENT_ID_MAX} characters "
            "of A-Z, a-z, 0-9, '_' and '-'"
        )


def _checked_name(name: str) -> str:
    cleaned = clean_file_name(name)
    if not cleaned:
        raise StoreError("file name is empty (after removing control characters)")
    return cleaned


def _checked_media_type(media_type: str) -> str:
    """The media type, lower-case (they are case-insensitive: one spelling to compare)."""
    if len(media_type) > MEDIA_TYPE_MAX or not _MEDIA_TYPE.fullmatch(media_type):
        raise StoreError(
            f"media type {media_type[:40]!r} is not a type/subtype such as 'image/png' "
            f"(at most {MEDIA_TYPE_MAX} characters, no parameters)"
        )
    return media_type.lower()


def _check_data(data: bytes) -> None:
    if not data:
        raise StoreError("the file is empty")
    if len(data) > MAX_STORED_FILE_BYTES:
        raise StoreError(f"the file is {len(data)} bytes; at most {MAX_STORED_FILE_BYTES} are kept")


def _find(conn: Connection, conversation_id: int, client_id: str) -> int | None:
    found = conn.execute(_FIND, {"conversation_id": conversation_id, "client_id": client_id})
    return found.scalar()


def _insert(conn: Connection, values: dict[str, object]) -> int | None:
    """Insert the file; None when the conversation already has one under its client id
    (one statement: two replicas taking the same retried upload never both insert, and
    neither fails; PostgreSQL waits for the other's transaction to end)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(CustomerFile)
        .values(values)
        .on_conflict_do_nothing(index_elements=["conversation_id", "client_id"])
        .returning(CustomerFile.id)
    )
    return conn.execute(stmt).scalar()


class CustomerFileStore(FeedbackStore):
    """The store's customer-file operations (see the module docstring)."""

    async def keep_customer_file(
        self,
        conversation_id: int,
        client_id: str,
        *,
        name: str,
        media_type: str,
        data: bytes,
        max_files: int | None = None,
    ) -> tuple[int, bool]:
        """Store a file a customer sent in ``conversation_id``, once per ``client_id``.

        Storing it is activity in the conversation (its ``updated_at``), as storing a
        message is: a retention purge does not take it before the message naming it.

        Args:
            conversation_id: the conversation it was sent in.
            client_id: the uploader's idempotency key: 1-64 characters of A-Z, a-z,
                0-9, ``_`` and ``-``.
            name: the file's name; control characters, NUL, lone surrogates and
                bidirectional controls are removed and it is cut to 255 characters
                (see ``clean_file_name``).
            media_type: ``type/subtype`` without parameters, at most 100 characters;
                stored lower-case.
            data: the bytes, 1 to ``MAX_STORED_FILE_BYTES``.
            max_files: how many files the conversation may hold (None: no limit). A
                retried upload of a file it holds is answered whatever the count.

        Returns:
            The file's id, and True when this call stored it; False when the
            conversation already had a file under ``client_id`` (its id is returned and
            nothing is stored, whatever ``name``, ``media_type`` and ``data`` say).

        Raises:
            UnknownConversationError: no conversation with that id (or one a purge is
                deleting: ``DETACHED``).
            FileLimitError: the conversation holds ``max_files`` files already.
            StoreError: an argument is refused (the message says which), or the
                database failed.
        """
        _check_client_id(client_id)
        stored_name = _checked_name(name)
        kind = _checked_media_type(media_type)
        _check_data(data)
        if not 0 < conversation_id <= _ID_MAX:
            raise UnknownConversationError(f"no conversation with id {conversation_id}")

        # A retried upload is answered by a read, without sending the bytes to the
        # database (or queueing them behind SQLite's writer) again.
        before = await self._read(lambda conn: _find(conn, conversation_id, client_id))
        if before is not None:
            return before, False

        def work(conn: Connection) -> tuple[int, bool]:
            locked = conn.execute(_LOCK_CONVERSATION, {"conversation_id": conversation_id})
            if locked.first() is None:
                raise UnknownConversationError(f"no conversation with id {conversation_id}")
            earlier = _find(conn, conversation_id, client_id)  # a retry since the read
            if earlier is not None:
                return earlier, False
            if max_files is not None:
                held = conn.execute(_COUNT, {"conversation_id": conversation_id}).scalar_one()
                if held >= max_files:
                    raise FileLimitError(
                        f"conversation {conversation_id} holds {held} files; "
                        f"at most {max_files} are kept"
                    )
            now = utcnow()
            values: dict[str, object] = {
                "conversation_id": conversation_id, "client_id": client_id,
                "name": stored_name, "media_type": kind, "size": len(data), "data": data,
                "created_at": now,
            }  # fmt: skip
            new_id = _insert(conn, values)
            if new_id is not None:
                conn.execute(_ACTIVE, {"b_id": conversation_id, "b_now": now})
                return new_id, True
            first = _find(conn, conversation_id, client_id)  # committed by the other
            if first is None:  # pragma: no cover - the conflict names a committed row
                raise StoreError(f"file {client_id!r} conflicted but cannot be found")
            return first, False

        # The store's usual write path, also for a blob: on SQLite every write of a
        # process runs in its one writer thread whichever way it is submitted, so a
        # transaction of its own would queue behind (and hold up) the same writes; group
        # commit adds only that a failing neighbour reruns the batch with these bytes
        # in it (rare, and bounded by MAX_STORED_FILE_BYTES). On PostgreSQL each write is
        # its own transaction.
        return await self._write(work)

    async def customer_files_held(
        self, conversation_id: int, client_id: str
    ) -> tuple[int, CustomerFileRecord | None]:
        """How many files ``conversation_id`` holds, and the one under ``client_id`` if
        any, without its bytes (``data`` is empty): what an upload is answered from
        before its body is read (a retry, a full conversation).

        Raises:
            StoreError: the database failed.
        """
        _check_client_id(client_id)
        if not 0 < conversation_id <= _ID_MAX:
            return 0, None
        count = select(func.count()).where(CustomerFile.conversation_id == conversation_id)
        mine = select(*_META_COLS).where(
            CustomerFile.conversation_id == conversation_id, CustomerFile.client_id == client_id
        )

        def read(conn: Connection) -> tuple[int, CustomerFileRecord | None]:
            row = conn.execute(mine).first()
            held = int(conn.execute(count).scalar_one())
            if row is None:
                return held, None
            return held, CustomerFileRecord(
                row.id, row.conversation_id, row.client_id, row.name, row.media_type,
                row.size, b"", row.created_at,
            )  # fmt: skip

        return await self._read(read)

    async def customer_file(self, file_id: int) -> CustomerFileRecord | None:
        """The file stored under ``file_id`` with its bytes, or None when there is none.

        Any conversation's file is returned: the caller checks that whoever asks may
        see ``conversation_id``'s files (ids are sequential, hence guessable).

        Raises:
            StoreError: the database failed.
        """
        if not 0 < file_id <= _ID_MAX:
            return None
        stmt = select(*_FILE_COLS).where(CustomerFile.id == file_id)
        row = await self._read(lambda conn: conn.execute(stmt).first())
        if row is None:
            return None
        # bytes whatever the driver hands back (a buffer type on some).
        return CustomerFileRecord(
            row.id, row.conversation_id, row.client_id, row.name, row.media_type, row.size,
            bytes(row.data), row.created_at,
        )  # fmt: skip
