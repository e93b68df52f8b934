"""What a channel asks of the store through ``CoreHandle`` (history, files, status),
as ``Bot`` answers it: shaped for connectors, without the store's records."""

from __future__ import annotations

from botkit.channel import HistoryItem, KeptFile, KeptFiles
from botkit.customer_files import kept_ref
from botkit.errors import UnknownConversationError
from botkit.store import ConversationStore, clean_file_name
from botkit.store.records import ConversationStatus, CustomerFileRecord, StoredMessage

__all__ = ["history", "history_item", "keep_file", "kept_files", "last_seq", "with_human"]


async def history(
    store: ConversationStore, channel: str, conversation_key: str, *, after_seq: int, limit: int
) -> list[HistoryItem]:
    """Stored messages of a conversation after ``after_seq`` (oldest first)."""
    rows = await store.messages_after(channel, conversation_key, after_seq, limit)
    return [history_item(m) for m in rows]


async def last_seq(store: ConversationStore, channel: str, conversation_key: str) -> int:
    """The highest stored ``seq`` of a conversation (0 when it has none)."""
    conversation = await store.get_conversation(channel, conversation_key)
    return 0 if conversation is None else conversation.last_seq


async def with_human(store: ConversationStore, channel: str, conversation_key: str) -> bool:
    """Whether a human agent has the conversation or it waits for one."""
    conversation = await store.get_conversation(channel, conversation_key)
    return conversation is not None and conversation.status in (
        ConversationStatus.WAITING_HUMAN,
        ConversationStatus.WITH_HUMAN,
    )


async def keep_file(
    store: ConversationStore,
    channel: str,
    conversation_key: str,
    *,
    client_id: str,
    name: str,
    media_type: str,
    data: bytes,
    max_files: int | None,
) -> KeptFile:
    """Keep a customer's file (see ``CoreHandle.keep_file``).

    Raises:
        UnknownConversationError: no such conversation is stored.
    """
    conversation = await store.get_conversation(channel, conversation_key)
    if conversation is None:
        raise UnknownConversationError(f"no {channel} conversation {conversation_key!r}")
    file_id, created = await store.keep_customer_file(
        conversation.id,
        client_id,
        name=name,
        media_type=media_type,
        data=data,
        max_files=max_files,
    )
    if not created:  # a retry: describe the bytes kept, not the retry's
        _, first = await store.customer_files_held(conversation.id, client_id)
        if first is not None:
            return _kept_file(first)
    return KeptFile(kept_ref(file_id), clean_file_name(name), media_type.lower(), len(data))


async def kept_files(
    store: ConversationStore, channel: str, conversation_key: str, client_id: str
) -> KeptFiles:
    """What a conversation's files are (see ``CoreHandle.kept_files``)."""
    conversation = await store.get_conversation(channel, conversation_key)
    if conversation is None:
        return KeptFiles(0, None)
    count, same = await store.customer_files_held(conversation.id, client_id)
    if same is None:
        return KeptFiles(count, None)
    return KeptFiles(count, _kept_file(same))


def history_item(m: StoredMessage) -> HistoryItem:
    """A stored message as ``CoreHandle`` shows it to a channel."""
    return HistoryItem(
        seq=m.seq,
        direction=m.direction,
        text=m.text,
        created_at=m.created_at,
        language=m.language,
        status=str(m.status),
        idempotency_key=m.idempotency_key,
        in_reply_to_seq=m.in_reply_to_seq,
        buttons=m.buttons,
        agent=m.agent,
        attachments=m.attachments,
    )


def _kept_file(record: CustomerFileRecord) -> KeptFile:
    """A kept file as ``CoreHandle`` describes it to a channel (no bytes)."""
    return KeptFile(kept_ref(record.id), record.name, record.media_type, record.size)
