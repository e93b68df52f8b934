"""The one shape of a stored message on the wire, live or replayed.

A message reaches a client three ways: pushed live when it is stored (the visitor's own
message, a reply at the end of its stream), replayed from history after a reconnect, and
read over HTTP. All three are built here from the stored record (``HistoryItem``), so a
client sees the same fields whichever way a message came: a reply stored as ``failed``
or with quick-reply ``buttons`` looks the same before and after a reload.
"""

from __future__ import annotations

from typing import Any

from botkit.channel import HistoryItem, IntakeReceipt
from botkit.events import REPLY_FAILED, Attachment, Direction, OutboundReply, utcnow
from botkit.sanitize import sanitize_text

__all__ = ["inbound_item", "message_payload", "reply_item", "update_payload"]


def message_payload(item: HistoryItem, stream_id: str | None = None) -> dict[str, Any]:
    """The ``message`` frame (and HTTP history entry) of a stored message.

    Always: ``seq``, ``direction``, ``text``, ``language``, ``in_reply_to_seq`` (null on
    visitor messages), ``buttons`` (a list, maybe empty), ``status``, ``created_at``,
    ``attachments`` (the files a visitor sent with it: ``kind``, ``name``, ``media_type``,
    ``size``; never the store's handle for them).
    Visitor messages add their ``client_id``; a reply pushed at the end of its stream adds
    the ``stream_id`` it was streamed under; a human agent's message adds ``agent``, the
    name they gave ("" for none).
    """
    payload: dict[str, Any] = {
        "type": "message",  # first: clients may dispatch on the frame's prefix
        "seq": item.seq,
        "direction": str(item.direction.value),
        "text": item.text,
        "language": item.language,
        "in_reply_to_seq": item.in_reply_to_seq,
        "buttons": [{"label": b.label, "value": b.value} for b in item.buttons],
        "status": item.status,
        "created_at": item.created_at.isoformat(),
        "attachments": [
            {"kind": a.kind, "name": a.name, "media_type": a.mime_type, "size": a.size}
            for a in item.attachments
        ],
    }
    # Web delivery ids are "<conversation key>/<client id>" ("file:<key>/<client id>" for
    # a file); client ids contain no "/".
    if item.idempotency_key and "/" in item.idempotency_key:
        payload["client_id"] = item.idempotency_key.rsplit("/", 1)[1]
    if item.agent is not None:  # written by a human agent ("" when unnamed)
        payload["agent"] = item.agent
    if stream_id is not None:
        payload["stream_id"] = stream_id
    return payload


def update_payload(seq: int, language: str | None, status: str) -> dict[str, Any]:
    """The ``update`` frame: what the bot learned about a stored message after it went out.

    A visitor's message is shown the moment it is stored, before the bot has read it, so
    its ``message`` frame says ``language: null`` and ``status: received``; the language
    is detected (and the status moves on) only when the bot answers it. This frame
    carries those two fields for the ``seq`` the client already has. It is outside the
    ``seq`` order (like ``ack``): a replay after a reload has them in the message itself.
    ``language`` is None when the bot could not tell the message's language (it is
    stored with none).
    """
    return {"type": "update", "seq": seq, "language": language, "status": status}


def inbound_item(
    receipt: IntakeReceipt,
    delivery_key: str,
    text: str,
    attachments: tuple[Attachment, ...] = (),
) -> HistoryItem:
    """The stored record of a visitor message the core just took.

    The core's own record when it gives one. Otherwise it is rebuilt the way the core
    stores it: the text sanitized (the raw text may hold lone surrogates that no writer
    can encode, and control characters the stored copy does not have).
    """
    if receipt.message is not None:
        return receipt.message
    return HistoryItem(
        seq=receipt.seq,
        direction=Direction.INBOUND,
        text=sanitize_text(text),
        created_at=utcnow(),
        status="received",
        idempotency_key=delivery_key,
        attachments=attachments,
    )


def reply_item(reply: OutboundReply) -> HistoryItem:
    """The stored record of a reply handed to the connector."""
    # A reply cut short (by an agent's takeover, or the shutdown) is stored failed: the
    # same live.
    failed = reply.metadata.get(REPLY_FAILED)
    return HistoryItem(
        seq=reply.seq if reply.seq is not None else 0,
        direction=Direction.OUTBOUND,
        text=reply.text,
        created_at=reply.created_at if reply.created_at is not None else utcnow(),
        language=reply.language,
        status="failed" if failed else "sent",
        in_reply_to_seq=reply.in_reply_to_seq,
        buttons=reply.buttons,
        agent=agent if isinstance(agent := reply.metadata.get("agent"), str) else None,
    )
