"""The latest messages of recently active conversations, kept in memory for history reads.

Answering a message starts by loading the conversation's recent history, and that read
was the single largest cost of a turn (measured on 2 cores: ~0.9 ms of ~1.8 ms CPU per
message, for a thread hop, a transaction and ~28 rows of datetime/JSON decoding). Every
message this process stores passes through the store anyway, so the store keeps a window
of each active conversation's latest messages and answers history reads from it.

Why a hit is exact: sequence numbers are gap-free per conversation, so a window that
holds every seq from its start up to the message being answered holds exactly what the
database holds for that range. A message stored by another process shows up as a
missing seq; the next read for that conversation then misses and reloads the window
from the database. Only status and text updates made by *another* process are not seen
(botkit changes a message's status only in the process that stored it).

Deleting rows (retention, a contact's erasure) lets SQLite hand a deleted conversation's
id to a new conversation (it reuses the largest rowid), whose seq 1, 2... are then not
"missing" at all. So a window is tied to its messages' identities: a first message that
is not the window's own starts a new window, and a read names the message it answers,
whose id and time must be the window's at that seq (another process's new conversation).

Everything here runs on the event loop thread; nothing awaits, so no locks.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from botkit.store.records import MessageStatus, StoredMessage

__all__ = ["HISTORY_STATUSES", "MAX_DEPTH", "RecentMessages"]

# Rejected inbound messages and failed replies are not part of the conversation as the
# customer saw it: never returned as history.
HISTORY_STATUSES = frozenset(MessageStatus) - {MessageStatus.REJECTED, MessageStatus.FAILED}
# What the cache holds is counted as what it costs in memory, so that history_cache_mb
# bounds the process's memory, not a notional text size: measured with tracemalloc
# (memory freed by ``clear``) on CPython 3.11, messages stored through the store. A
# message's strings count as ``sys.getsizeof`` says (1, 2 or 4 bytes a character, a
# header, and the UTF-8 copy SQLite's driver leaves on a non-ASCII text). Beyond them:
# the frozen record, its datetime and ints, and its slot in the window's dict (~254 B
# as the store records it; ~310 B read back from the database, where each row has its
# own language string: the two split); a conversation's window, its dict and its LRU
# entry (~484 B). Counted as 400 B a message plus the text's characters, a
# ~55-character message really took ~630 B: the default 32 MB held ~44 MB, and
# non-ASCII texts twice the bound.
_MESSAGE = 280
_WINDOW = 480
# Most messages kept per conversation (a history longer than this is read from the DB).
MAX_DEPTH = 256


def _size(message: StoredMessage) -> int:
    strings = (message.text, message.working_text, message.idempotency_key, message.error)
    return _MESSAGE + sum(sys.getsizeof(s) for s in strings if s is not None)


@dataclass
class _Window:
    """Messages ``start..upto`` of one conversation, every seq present; messages stored
    after a missing seq wait in ``later`` until the gap is filled."""

    start: int
    upto: int
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    size: int = _WINDOW  # bytes its messages and the window itself are counted as

    def put(self, message: StoredMessage) -> int:
        """Add or replace a message; returns the change in size."""
        old = self.messages.get(message.seq)
        self.messages[message.seq] = message
        delta = _size(message) - (0 if old is None else _size(old))
        self.size += delta
        while self.upto + 1 in self.messages:
            self.upto += 1
        return delta

    def trim(self, depth: int) -> int:
        """Forget the oldest messages beyond ``depth``; returns the change in size."""
        delta = 0
        while self.upto - self.start + 1 > depth:
            gone = self.messages.pop(self.start, None)
            if gone is not None:
                delta -= _size(gone)
            self.start += 1
        self.size += delta
        return delta

    @property
    def has_later(self) -> bool:
        return len(self.messages) > self.upto - self.start + 1


class RecentMessages:
    """An LRU of conversation windows, bounded in bytes of memory.

    Args:
        max_bytes: the memory the cached messages may take (their strings as
            ``sys.getsizeof`` counts them, plus a measured overhead per message and per
            conversation); least recently used conversations are dropped beyond it. 0
            disables caching.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.depth = 0  # messages kept per conversation: the longest history asked for
        self._windows: OrderedDict[int, _Window] = OrderedDict()
        self._size = 0
        # Conversations being reloaded from the database: what this process stored
        # meanwhile, laid over the rows read when they arrive (they may predate it).
        self._reloading: dict[int, list[StoredMessage]] = {}
        self._readers: dict[int, int] = {}
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size(self) -> int:
        """Bytes the cached windows are counted as (their memory, within ~10%)."""
        return self._size

    def __len__(self) -> int:
        return len(self._windows)

    def want(self, max_turns: int) -> None:
        """Keep at least ``max_turns`` messages per conversation from now on."""
        self.depth = max(self.depth, min(max_turns, MAX_DEPTH))

    def record(self, message: StoredMessage) -> None:
        """A message this process has just committed (appended or changed)."""
        if not self.enabled:
            return
        cid = message.conversation_id
        if cid in self._reloading:
            self._reloading[cid].append(message)
        window = self._windows.get(cid)
        if window is not None and message.seq == 1 and not _same(window.messages.get(1), message):
            # A new conversation under a deleted one's id (see the module docstring).
            self._drop(cid)
            window = None
        if window is None:
            if message.seq != 1:
                return  # what came before is unknown: the first read loads it
            window = self._windows[cid] = _Window(start=1, upto=0)
            self._size += window.size
        if message.seq < window.start:
            return  # older than the window keeps
        self._windows.move_to_end(cid)
        self._size += window.put(message)
        self._size += window.trim(max(self.depth, 1))
        self._evict()

    def update(self, message: StoredMessage) -> None:
        """A changed message (status, language, text): replaced where it is cached."""
        window = self._windows.get(message.conversation_id)
        if message.conversation_id in self._reloading or (
            window is not None and message.seq in window.messages
        ):
            self.record(message)

    def latest(
        self,
        conversation_id: int,
        through_seq: int,
        max_turns: int,
        through: StoredMessage | None = None,
    ) -> list[StoredMessage] | None:
        """The newest ``max_turns`` history messages, newest first, or None when the
        window cannot tell (not cached, a gap, too short and not from the start, or
        ``through``, the message at ``through_seq``, is not the one the window holds
        there: the window is of a deleted conversation whose id was reused)."""
        window = self._windows.get(conversation_id)
        if (
            window is not None
            and through is not None
            and (held := window.messages.get(through.seq)) is not None
            and not _same(held, through)
        ):
            self._drop(conversation_id)
            window = None
        if window is None or window.upto < through_seq or window.has_later:
            self.misses += 1
            return None
        picked = _pick(window.messages, window.upto, window.start, max_turns)
        if picked is None:
            self.misses += 1
            return None
        self._windows.move_to_end(conversation_id)
        self.hits += 1
        return picked

    def begin_reload(self, conversation_id: int) -> None:
        """A read of the conversation's latest messages is about to start."""
        self._readers[conversation_id] = self._readers.get(conversation_id, 0) + 1
        self._reloading.setdefault(conversation_id, [])

    def end_reload(self, conversation_id: int, rows: Iterable[StoredMessage] | None) -> None:
        """The read ended: ``rows`` are its newest messages (None: it failed). Installs
        them, with what was recorded meanwhile on top, as the conversation's window."""
        left = self._readers[conversation_id] - 1
        overlay = self._reloading[conversation_id]
        if left:
            self._readers[conversation_id] = left
        else:
            del self._readers[conversation_id]
            del self._reloading[conversation_id]
        if rows is None or not self.enabled:
            return
        by_seq = {m.seq: m for m in rows}
        by_seq.update((m.seq, m) for m in overlay)
        if not by_seq:
            return
        self._drop(conversation_id)
        # The rows are the newest ones, without gaps: the window starts at the oldest.
        start = min(by_seq)
        window = self._windows[conversation_id] = _Window(start=start, upto=start - 1)
        self._size += window.size
        for seq in sorted(by_seq):
            self._size += window.put(by_seq[seq])
        self._size += window.trim(max(self.depth, 1))
        self._evict()

    def forget(self, conversation_ids: Iterable[int]) -> None:
        """Drop the windows of conversations that were deleted."""
        for conversation_id in conversation_ids:
            self._drop(conversation_id)

    def clear(self) -> None:
        """Forget everything (the store closed: the database may change meanwhile)."""
        self._windows.clear()
        self._size = 0

    def _drop(self, conversation_id: int) -> None:
        window = self._windows.pop(conversation_id, None)
        if window is not None:
            self._size -= window.size

    def _evict(self) -> None:
        while self._size > self.max_bytes and self._windows:
            _cid, window = self._windows.popitem(last=False)
            self._size -= window.size


def _same(held: StoredMessage | None, message: StoredMessage) -> bool:
    """Whether ``held`` is ``message`` (maybe in another state), not another message
    under a reused id."""
    return held is not None and held.id == message.id and held.created_at == message.created_at


def _pick(
    messages: dict[int, StoredMessage], upto: int, start: int, max_turns: int
) -> list[StoredMessage] | None:
    picked: list[StoredMessage] = []
    seq = upto
    while seq >= start and len(picked) < max_turns:
        message = messages[seq]
        if message.status in HISTORY_STATUSES:
            picked.append(message)
        seq -= 1
    if len(picked) < max_turns and start > 1:
        return None  # older messages exist that the window does not hold
    return picked
