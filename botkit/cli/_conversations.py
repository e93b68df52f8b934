"""``botkit conversations find|show``: find a customer's conversation by time, text,
status or an unanswered message, and read it, without SQL (the on-call case: "I wrote
at 14:02 on the widget and never got an answer", from an anonymous visitor).

Like the other database commands it reads only ``[store]`` and ``[logging]``. What it
prints of a message is the customer's input: control characters (a terminal's escape
sequences), bidirectional overrides and invisible format characters are shown as visible
escapes, never sent to the terminal; ``--json`` is ASCII-only JSON, where they are
``\\u`` escapes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botkit.sanitize import BIDI_CONTROLS

if TYPE_CHECKING:
    from botkit.store import ConversationRecord, StoredMessage, StoreSettings
    from botkit.store._search import FoundConversation, SearchResult, ShownMessage

__all__ = ["STATUSES", "conversation_id", "moment", "run_conversations", "searched_text", "shown"]

# ``ConversationStatus``'s values, spelled out: the parser imports no store (a test
# checks they agree).
STATUSES = ("bot", "waiting_human", "with_human", "closed")

_SNIPPET_CHARS = 80
_RELATIVE = re.compile(r"(\d{1,7})\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# What a terminal may act on rather than show: C0 and C1 controls (ESC starts ANSI
# sequences), DEL, line and paragraph separators, and the bidirectional controls that
# reorder what follows them ("\u202e" makes "gnp.exe" read as "exe.png"); and what it
# shows as nothing (``_invisible``).
_HIDDEN = frozenset(
    chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *BIDI_CONTROLS)
)
# Every character but printable ASCII: each is then checked (see ``shown``).
_NOT_ASCII = re.compile("[^\x20-\x7e]")
# Joiners that belong to the text they sit in: an emoji sequence (man ZWJ woman ZWJ
# girl), Persian and Indic spelling (ZWNJ inside a word), kept in message text when
# between two visible characters; escaped in names and keys, where they only disguise.
_JOINERS = frozenset("\u200c\u200d")
_SPACES = re.compile(r"[ \t\n]+")


def _invisible(char: str) -> bool:
    """A character a terminal shows as nothing: a format character (Unicode category
    Cf: zero-width space and joiners, U+2060, U+FEFF, the soft hyphen, the tag
    characters that can spell hidden ASCII) or one of the tag block's unassigned."""
    return unicodedata.category(char) == "Cf" or 0xE0000 <= ord(char) <= 0xE007F


def _visible(char: str) -> bool:
    return not char.isspace() and char not in _HIDDEN and not _invisible(char)


def shown(text: str, limit: int | None = None, *, joiners: bool = False) -> str:
    """``text`` safe to print on one terminal line: runs of spaces, tabs and newlines
    become one space, every other control, bidirectional or invisible format character
    becomes a visible escape (``\\x1b``, ``\\u202e``, ``\\u200b``); with ``joiners``
    (a message's text), a zero-width joiner or non-joiner between two visible characters
    is kept; with ``limit``, cut to that many characters (escapes included) with an
    ellipsis."""
    flat = _SPACES.sub(" ", text).strip()

    def escaped(match: re.Match[str]) -> str:
        char, at = match.group(), match.start()
        if (
            joiners
            and char in _JOINERS
            and 0 < at < len(flat) - 1
            and _visible(flat[at - 1])
            and _visible(flat[at + 1])
        ):
            return char
        if char in _HIDDEN or _invisible(char):
            return char.encode("unicode_escape").decode("ascii")
        return char

    safe = _NOT_ASCII.sub(escaped, flat)
    if limit is not None and len(safe) > limit:
        return safe[: limit - 1] + "…"
    return safe


def moment(text: str) -> datetime:
    """``--since``/``--until``: an ISO 8601 time (UTC unless it names an offset), or a
    time ago: ``30m``, ``2h``, ``1d``, ``90s``, ``1w`` (argparse turns the error into
    usage, exit 2)."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative[1]), _UNITS[relative[2].lower()]
        try:
            return datetime.now(UTC) - timedelta(**{unit: amount})
        except OverflowError:
            raise argparse.ArgumentTypeError(f"too far back: {text!r}") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text[:80]!r} (use e.g. 2026-11-30T14:02, 2026-11-30 14:02:00+01:00, "
            "or a time ago: 30m, 2h, 1d)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def conversation_id(text: str) -> int:
    """``show ID``: a conversation id, 1 to 2**63 - 1 (ids grow past any smaller cap a
    busy bot's ``--limit`` has)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a conversation id: {text[:80]!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"not a conversation id: {value}")
    return value


def searched_text(text: str) -> str:
    """``--text``: refused here (usage, exit 2) when no message could hold it."""
    from botkit.errors import StoreError
    from botkit.store._search import search_text

    try:
        return search_text(text)
    except StoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _utc(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S}"


def _author(message: StoredMessage, writer: str | None = None) -> str:
    from botkit.events import Direction

    if message.direction == Direction.INBOUND:
        return "customer" if writer is None else f"customer {shown(writer, 60)}"
    if message.agent is None:
        return "bot"
    return f"agent {shown(message.agent, 60)}" if message.agent else "agent"


def _snippet(message: StoredMessage | None, needle: str | None) -> str:
    """The message's text near ``needle`` (its working-language text when only that
    holds it), safe to print."""
    if message is None:
        return "(no message)"
    text = message.text
    if needle is not None:
        at = _position(text, needle)
        if at is None and message.working_text is not None:
            text, at = message.working_text, _position(message.working_text, needle)
        if at is not None and at > _SNIPPET_CHARS // 2:
            text = "…" + text[at - 20 :]
    return f"seq={message.seq} {_author(message)}: {shown(text, _SNIPPET_CHARS, joiners=True)}"


def _position(text: str, needle: str) -> int | None:
    """Where ``needle`` is in ``text``, ignoring case letter by letter as the store's
    ``lower()`` does: a position in ``text`` itself (``casefold`` changes lengths: "ß"
    becomes "ss", so its positions are not ``text``'s)."""
    found = re.search(re.escape(needle), text, re.IGNORECASE)
    return None if found is None else found.start()


def _found_json(item: FoundConversation) -> dict[str, Any]:
    return {
        **_conversation_json(item.conversation),
        "messages": item.messages,
        "match": None if item.match is None else _message_json(item.match),
    }


def _conversation_json(c: ConversationRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel": c.channel,
        "conversation_key": c.key,
        "status": str(c.status),
        "language": c.language,
        "created_at": c.created_at.isoformat(),
        "last_activity": c.updated_at.isoformat(),
    }


def _message_json(message: StoredMessage, shown_with: ShownMessage | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": message.seq,
        "time": message.created_at.isoformat(),
        "direction": str(message.direction),
        "author": _author(message),
        "agent": message.agent,
        "text": message.text,
        "working_text": message.working_text,
        "language": message.language,
        "status": str(message.status),
        "error": message.error,
        "source": message.source,
        "source_error": message.source_error,
        "in_reply_to_seq": message.in_reply_to_seq,
    }
    if shown_with is not None:
        record["writer"] = shown_with.writer
        record["writer_name"] = shown_with.writer_name
    return record


def _find_lines(result: SearchResult, args: argparse.Namespace) -> list[str]:
    what = "conversations, newest first; times in UTC"
    if result.scanned is not None:
        first, last = result.scanned
        what += f"; read message ids {first}..{last}"
        if result.truncated:
            what += " (the newest only: narrow with --since/--until to reach older ones)"
    lines = [f"# {what}", "# ID\tCHANNEL\tKEY\tSTATUS\tLAST ACTIVITY\tMESSAGES\tMATCH"]
    for item in result.found:
        c = item.conversation
        lines.append(
            f"{c.id}\t{shown(c.channel, 64)}\t{shown(c.key, 80)}\t{c.status}"
            f"\t{_utc(c.updated_at)}\t{item.messages}\t{_snippet(item.match, args.text)}"
        )
    if not result.found:
        lines.append("# no conversation matches")
    return lines


def _show_lines(conversation: ConversationRecord, messages: list[ShownMessage]) -> list[str]:
    c = conversation
    lines = [
        f"# conversation {c.id} ({shown(c.channel, 64)}:{c.id} in the logs): "
        f"{shown(c.channel, 64)} {shown(c.key, 200)}, {c.status}, language "
        f"{c.language or '-'}; times in UTC",
        "# SEQ\tTIME\tAUTHOR\tSTATUS\tLANGUAGE\tTEXT",
    ]
    for item in messages:
        m = item.message
        state = str(m.status)
        if m.error:
            state += f" ({shown(m.error, 200)})"
        if m.source is not None and m.source != "backend":  # what stood in for the model
            state += f" source {shown(m.source, 40)}"
            if m.source_error:
                state += f" ({shown(m.source_error, 200)})"
        if m.in_reply_to_seq is not None:
            state += f" reply to {m.in_reply_to_seq}"
        lines.append(
            f"{m.seq}\t{_utc(m.created_at)}\t{_author(m, item.writer)}\t{state}"
            f"\t{m.language or '-'}\t{shown(m.text, joiners=True)}"
        )
        if m.working_text is not None and m.working_text != m.text:
            lines.append(f"\t\t\t\tworking\t{shown(m.working_text, joiners=True)}")
    if not messages:
        lines.append("# no messages (erased, or purged)")
    return lines


async def _find(settings: StoreSettings, args: argparse.Namespace) -> SearchResult:
    from botkit._cli_store import current_store

    async with current_store(settings) as store:
        return await store.find_conversations(
            channel=args.channel,
            statuses=args.status or (),
            since=args.since,
            until=args.until,
            text=args.text,
            unanswered=args.unanswered,
            limit=args.limit,
        )


async def _show(
    settings: StoreSettings, conversation_id: int
) -> tuple[ConversationRecord, list[ShownMessage]]:
    from botkit._cli_store import current_store
    from botkit.store import MAX_PAGE

    async with current_store(settings) as store:
        conversation = await store.conversation_by_id(conversation_id)
        messages: list[ShownMessage] = []
        while True:  # page by page: a long conversation is never one huge read
            after = messages[-1].message.seq if messages else 0
            page = await store.conversation_messages(conversation_id, after_seq=after)
            messages += page
            if len(page) < MAX_PAGE:
                return conversation, messages


def run_conversations(args: argparse.Namespace) -> int:
    """``botkit conversations find|show``: print what was found (0)."""
    from botkit.cli._db import _existing_store

    if args.conversations_command == "find":
        if args.since is not None and args.until is not None and args.since > args.until:
            args.usage_error(f"--since ({args.since:%Y-%m-%d %H:%M:%S} UTC) is after --until")
        settings = _existing_store(args)
        result = asyncio.run(_find(settings, args))
        if args.json:
            data = {
                "conversations": [_found_json(f) for f in result.found],
                "scanned_message_ids": list(result.scanned) if result.scanned else None,
                "truncated": result.truncated,
            }
            print(json.dumps(data, indent=2))  # ASCII: a customer's escapes stay escaped
        else:
            print("\n".join(_find_lines(result, args)))
        return 0
    settings = _existing_store(args)
    conversation, messages = asyncio.run(_show(settings, args.id))
    if args.json:
        data = {
            **_conversation_json(conversation),
            "messages": [_message_json(s.message, s) for s in messages],
        }
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(_show_lines(conversation, messages)))
    return 0
