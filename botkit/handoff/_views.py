"""What the agent API answers with: conversations, messages and files as JSON-ready
values and responses, and the opaque cursors of ``/v1/handoffs`` pages."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from botkit.events import Attachment
from botkit.store import HandoffPreview
from botkit.store.records import ConversationRecord, StoredMessage

__all__ = [
    "INTEGER",
    "MAX_ID",
    "conversation_json",
    "file_response",
    "make_cursor",
    "message_json",
    "queued_json",
    "read_cursor",
]

# Ids are database integers: anything longer is no conversation.
MAX_ID = 2**63 - 1
INTEGER = re.compile(r"-?[0-9]{1,19}")
MAX_CURSOR = 200


def conversation_json(c: ConversationRecord, agent: str | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel": c.channel,
        "key": c.key,
        "status": str(c.status),
        "language": c.language,
        "updated_at": c.updated_at.isoformat(),
        "status_since": c.status_since.isoformat(),
        "last_seq": c.last_seq,
        "agent": agent,
    }


def queued_json(c: ConversationRecord, preview: HandoffPreview | None) -> dict[str, Any]:
    return {
        **conversation_json(c, None if preview is None else preview.agent),
        "customer_name": None if preview is None else preview.customer_name,
        "last_customer_text": None if preview is None else preview.last_customer_text,
        "last_customer_seq": None if preview is None else preview.last_customer_seq,
    }


def message_json(
    m: StoredMessage, fetchable: Callable[[Attachment], bool] = lambda a: False
) -> dict[str, Any]:
    return {
        "seq": m.seq,
        "direction": str(m.direction),
        "text": m.text,
        "working_text": m.working_text,
        "language": m.language,
        "status": str(m.status),
        "agent": m.agent,
        "created_at": m.created_at.isoformat(),
        "attachments": [
            {"kind": a.kind, "name": a.name, "mime_type": a.mime_type, "size": a.size,
             "url": a.url, "fetchable": fetchable(a)}
            for a in m.attachments
        ],
    }  # fmt: skip


# Shown in the inbox as they are; every other file is only ever downloaded.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def file_response(content: bytes, attachment: Attachment, fallback_name: str) -> web.Response:
    """A customer's file as a response that no browser runs as a page: a known image
    type inline, anything else as an opaque download; sandboxed either way."""
    mime = (attachment.mime_type or "").lower()
    inline = mime in INLINE_IMAGES
    name = "".join(c for c in (attachment.name or "") if c.isprintable())[:200] or fallback_name
    disposition = "inline" if inline else "attachment"
    return web.Response(
        body=content,
        content_type=mime if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def make_cursor(last: ConversationRecord, order: str) -> str:
    """Where a page ended: opaque to clients, so its form can change."""
    when = last.status_since if order == "oldest" else last.updated_at
    raw = f"{order}|{when.isoformat()}|{last.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_cursor(cursor: str, order: str) -> tuple[datetime, int] | None:
    """``(time, id)`` of a cursor made for ``order``; None for anything else."""
    if len(cursor) > MAX_CURSOR:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_for, at, ident = raw.split("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            return None
        when = when.astimezone(UTC)  # as the store binds it; may leave datetime's range
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        return None
    if made_for != order or not INTEGER.fullmatch(ident):
        return None
    number = int(ident)
    return (when, number) if 0 < number <= MAX_ID else None
