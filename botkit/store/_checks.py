"""Input checks applied before anything is written.

The core sanitizes message text; the store still refuses what no database can hold
(a NUL character, a lone surrogate) with a clear ``StoreError`` instead of a driver error
halfway through a transaction. Keys are bounded so that SQLite and PostgreSQL behave
the same (PostgreSQL would reject an over-long VARCHAR, SQLite would not).
"""

from __future__ import annotations

from typing import Any, TypeVar

from botkit.errors import StoreError
from botkit.store.models import CHANNEL_MAX, KEY_MAX, LANGUAGE_MAX
from botkit.store.records import ConversationStatus, MessageStatus

__all__ = [
    "MAX_AGENT_NAME",
    "check_agent_name",
    "check_key",
    "check_language",
    "check_text",
    "clean_error",
    "clean_meta",
    "language_hint",
    "status_of",
]


def check_text(value: str, what: str) -> None:
    """Refuse text that cannot be stored unchanged.

    Raises:
        StoreError: ``value`` contains NUL or a lone surrogate.
    """
    if "\x00" in value:
        raise StoreError(f"{what} contains a NUL character; sanitize it before storing")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(
            f"{what} contains a lone surrogate (not valid Unicode); sanitize it before storing"
        ) from None


# An agent's display name: shown to nobody but agents and kept in the message's JSON.
MAX_AGENT_NAME = 100


def check_agent_name(value: str) -> None:
    """Refuse an agent name that is over-long or unstorable ("" is allowed: no name).

    Raises:
        StoreError: too long, or contains NUL / a lone surrogate.
    """
    if len(value) > MAX_AGENT_NAME:
        raise StoreError(
            f"agent name is {len(value)} characters long; at most {MAX_AGENT_NAME} allowed"
        )
    check_text(value, "agent name")


def check_key(value: str, what: str, *, channel: bool = False) -> None:
    """Refuse an empty, over-long or unstorable identifier.

    Raises:
        StoreError: the key is empty, too long or contains NUL / a lone surrogate.
    """
    limit = CHANNEL_MAX if channel else KEY_MAX
    if not value:
        raise StoreError(f"{what} is empty")
    if len(value) > limit:
        raise StoreError(f"{what} is {len(value)} characters long; at most {limit} allowed")
    check_text(value, what)


def check_language(value: str | None, what: str = "language") -> None:
    """Refuse a language tag that is not a short, printable code.

    Raises:
        StoreError: the tag is empty, longer than 35 characters or not ASCII.
    """
    if value is not None and not _is_tag(value):
        raise StoreError(f"{what} {value[:40]!r} is not a language tag such as 'en' or 'pt-BR'")


def language_hint(value: str | None) -> str | None:
    """A channel's language hint if it looks like a language tag, else None (a hint is
    only a hint: a malformed one is ignored rather than refusing the message)."""
    return value if value is not None and _is_tag(value) else None


def _is_tag(value: str) -> bool:
    return (
        0 < len(value) <= LANGUAGE_MAX
        and value.isascii()
        and all(c.isalnum() or c in "-_" for c in value)
    )


_E = TypeVar("_E", MessageStatus, ConversationStatus)


def status_of(kind: type[_E], value: str) -> _E:
    """``value`` as a member of the status enum ``kind``.

    Raises:
        StoreError: not one of its values.
    """
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise StoreError(f"unknown status {value!r}; expected one of {allowed}") from None


def clean_meta(value: Any) -> Any:
    """Metadata strings from a platform, made storable: PostgreSQL rejects NUL and lone
    surrogates. (Message text is never altered; ``check_text`` refuses it instead.)"""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
    if isinstance(value, dict):
        return {clean_meta(k): clean_meta(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_meta(v) for v in value]
    return value


def clean_error(error: str | None) -> str | None:
    """A delivery error text, made storable and bounded: it is diagnostics (often an
    exception message quoting platform data), so it is cleaned rather than refused."""
    return None if error is None else str(clean_meta(error))[:2000]
