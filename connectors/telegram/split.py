"""Splitting answers longer than one Telegram message (4,096 characters).

Telegram counts the length in UTF-16 code units (an emoji outside the BMP counts 2), so
that is what is measured here. A cut prefers a paragraph break, then a line break, a
sentence end and a space, in the second half of the window; only a text without any of
those is cut hard, and then not inside a combining sequence (a letter and its marks, a
joined emoji) when one of up to ``_MAX_STEP_BACK`` code points ends in the window.
A longer run ("zalgo" text, thousands of joiners) is cut at the limit: stepping back
through all of it would leave one character per message.

A part's cut depends (almost) only on the text before it, so the parts of a streamed
answer already shown rarely change as more text arrives; when one does, it is edited.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_MESSAGE", "split_text", "utf16_len"]

MAX_MESSAGE = 4096
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "\u3002", "\uff01", "\uff1f", " ")
_ZWJ = "\u200d"
_ZWNJ = "\u200c"
# Most code points a hard cut steps back to keep a combining sequence whole; a real one
# (a letter with a few marks, a family emoji of 7 joined code points) is far shorter.
_MAX_STEP_BACK = 32


def utf16_len(text: str) -> int:
    """Length of ``text`` as Telegram counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _fitting(text: str, limit: int) -> int:
    """Most code points of ``text`` whose UTF-16 length is at most ``limit``."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _attaches(ch: str) -> bool:
    """Whether ``ch`` belongs to the character before it: a mark (category M*: accents,
    Thai and Devanagari vowel signs, the keycap), a joiner, a variation selector, an
    emoji skin tone or an emoji tag (subdivision flags)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch)[0] == "M"
        or ch in (_ZWJ, _ZWNJ)
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
        or 0x1F3FB <= cp <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tags
    )


def _glued(text: str, i: int) -> bool:
    """Whether a cut before ``text[i]`` would separate a character from its marks."""
    if i <= 0 or i >= len(text):
        return False
    return _attaches(text[i]) or text[i - 1] == _ZWJ


def _cut(rest: str, fits: int) -> int:
    """Where the part taken from ``rest`` ends, given that ``fits`` code points fit."""
    window = rest[:fits]
    half = fits // 2
    for sep in _BREAKS:
        at = window.rfind(sep, half)
        if at >= half:
            return at + len(sep)
    # A hard cut: step back out of a combining sequence, but only a little way (see the
    # module docstring) and never below half the window; else cut at the limit.
    lowest = max(1, half, fits - _MAX_STEP_BACK)
    cut = fits
    while cut > lowest and _glued(rest, cut):
        cut -= 1
    return cut if not _glued(rest, cut) else fits


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units each.

    Whitespace at the cuts is dropped (Telegram trims it anyway). A text that fits is
    returned unchanged as the only part.

    Raises:
        ValueError: ``limit`` is below 2 (no character would be guaranteed to fit).
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        at = _cut(rest, _fitting(rest, limit))
        head, rest = rest[:at].rstrip(), rest[at:].lstrip()
        if head:
            parts.append(head)
    if rest or not parts:
        parts.append(rest)
    return parts
