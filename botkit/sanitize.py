"""Making customer text safe to store and process.

Text from a channel can hold anything a platform lets through: NUL bytes (which
PostgreSQL refuses in ``text`` columns), lone UTF-16 surrogates (which cannot be encoded
as UTF-8, so a driver would fail on them), terminal escape sequences and other control
characters. ``sanitize_text`` removes those and normalizes line ends; it never shortens
the text otherwise. Length limits are a separate, explicit decision (``check_length``),
so nothing is truncated silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BIDI_CONTROLS", "SanitizedText", "check_length", "sanitize_text"]

# Bidirectional controls, as code points: invisible in a name, and "invoice\u202eFDP.exe"
# shows as "invoiceexe.PDF" (a known trick to disguise a file's type). File names drop
# them; message text keeps them (right-to-left writing needs its marks). Other format
# characters are not here: the zero-width (non-)joiners belong in Persian or emoji names.
BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])

# C0 controls except \t (09) and \n (0A), DEL, C1 controls, and the surrogate range.
# \r is handled before this (line ends are normalized to \n).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CRLF = re.compile("\r\n?")


def sanitize_text(text: str) -> str:
    """Return ``text`` without NUL, lone surrogates and control characters.

    Newlines and tabs are kept; ``\\r\\n`` and lone ``\\r`` become ``\\n``. Everything else
    (letters, emoji, joiners, right-to-left marks) is left as it is. Idempotent.

    Args:
        text: raw text as a channel delivered it.

    Returns:
        The cleaned text, never longer than the input.
    """
    if "\r" in text:
        text = _CRLF.sub("\n", text)
    return _UNSAFE.sub("", text)


@dataclass(frozen=True, slots=True)
class SanitizedText:
    """Cleaned inbound text and whether it is over the configured limit."""

    text: str
    too_long: bool
    limit: int

    @property
    def length(self) -> int:
        return len(self.text)


def check_length(text: str, max_chars: int) -> SanitizedText:
    """Sanitize ``text`` and compare its length (in code points) with ``max_chars``.

    The text is returned whole even when it is too long: the caller stores it and answers
    with a clear reply instead of cutting it.
    """
    clean = sanitize_text(text)
    return SanitizedText(text=clean, too_long=len(clean) > max_chars, limit=max_chars)
