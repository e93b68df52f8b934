"""Splitting answers longer than one Telegram message (4,096 characters).

Telegram counts the length in UTF-16 code units (an emoji outside the BMP counts 2), so
that is what is measured here. A cut prefers a paragraph break, then a line break, a
sentence end and a space, in the second half of the window; only a text without any of
those is cut hard, and never inside a character (a letter and its marks, a joined emoji,
a flag) unless that character is too long to step back over: see ``botkit.textsplit``,
which does the splitting for Slack too.

A part's cut depends only on the text up to one character past it, so the parts of a
streamed answer already shown do not change as more text arrives.
"""

from __future__ import annotations

import re

from botkit.textsplit import UTF16_UNITS, Break, Rules, utf16_len
from botkit.textsplit import split_text as _split

__all__ = ["MAX_MESSAGE", "split_text", "utf16_len"]

MAX_MESSAGE = 4096
# Each separator is a kind of break of its own, in this order (the last ". " in the
# window wins over a later "! "), and all are cut after; the whitespace is dropped.
_RULES = Rules(
    measure=UTF16_UNITS,
    breaks=tuple(
        Break(re.compile(re.escape(sep)))
        for sep in ("\n\n", "\n", ". ", "! ", "? ", "\u3002", "\uff01", "\uff1f", " ")
    ),
)


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 units each.

    Whitespace at the cuts is dropped (Telegram trims it anyway). A text that fits is
    returned unchanged as the only part.

    Raises:
        ValueError: ``limit`` is below 2 (no character would be guaranteed to fit).
    """
    return _split(text, limit, _RULES)
