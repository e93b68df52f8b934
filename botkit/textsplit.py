"""Splitting a reply too long for one chat message into several, the same way everywhere.

Each channel measures a message its own way (Telegram in UTF-16 code units, Slack in
characters as shown) and has its own preferred places to cut, so those are a ``Rules``
value; the loop, the window and the hard cut are shared. A cut takes the best place of
the first kind of break (paragraph, line, sentence end, space...) found in the window,
and only a text with none is cut hard. Every cut falls between two grapheme clusters
(Unicode's "user-perceived characters", UAX #29, the ``regex`` package's ``\\X``): a
letter keeps its accents and vowel signs (Thai, Devanagari), a joined emoji (a family,
a profession), a flag (two regional indicators), a keycap or a skin tone stays whole, so
no message starts with a mark or a bare joiner. A cluster too long to step back over
("zalgo" text: a letter with thousands of marks) is cut at the limit: stepping back
through all of it would leave one character per message.

A cut looks only at the text up to one character past the limit (whether a cluster goes
on needs the next character, never more), so the parts of a streamed reply that have
grown past the limit never change as more text arrives. A part filled piece by piece (a
streamed message, which cannot take text back) is cut with ``next_cut``, told what the
part holds already; ``complete_clusters`` says how much of a growing text is whole
characters that can be sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import regex

__all__ = [
    "CODE_POINTS",
    "UTF16_UNITS",
    "Break",
    "Measure",
    "Rules",
    "complete_clusters",
    "next_cut",
    "split_text",
    "utf16_len",
]

_GRAPHEME = regex.compile(r"\X")
# Most code points a hard cut steps back to keep a cluster whole; a real one (a letter
# with a few marks, a family emoji of 7 joined code points) is far shorter.
_MAX_STEP_BACK = 32
_FENCE = "```"
# Slack's entities are at most 5 characters ("&amp;"): a hard cut less than that after
# an "&" with no ";" since is inside one.
_ENTITY_LEN = 5


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (a code point outside the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_fitting(text: str, limit: int) -> int:
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


@dataclass(frozen=True, slots=True)
class Measure:
    """How a channel counts the length of a message.

    Attributes:
        length: the length of a text.
        fitting: the most code points at the start of a text whose length is at most
            the limit given.
        widest: the length of the longest single code point: the smallest limit that
            always lets a part hold something.
    """

    length: Callable[[str], int]
    fitting: Callable[[str, int], int]
    widest: int


CODE_POINTS = Measure(len, lambda text, limit: min(len(text), limit), 1)
"""Characters (code points), as Python and Slack count them."""
UTF16_UNITS = Measure(utf16_len, _utf16_fitting, 2)
"""UTF-16 code units, as Telegram (and JavaScript) count them."""


@dataclass(frozen=True, slots=True)
class Break:
    """One kind of place to cut, for example a paragraph break.

    Attributes:
        pattern: what marks the place; only matches starting at ``1 / floor`` of the
            window or later count (a cut earlier would leave a short message).
        floor: the divisor of the window that gives the first position allowed.
        before: cut before the match (it may then end one character past the window, as
            whitespace dropped at the cut does) rather than after it.
    """

    pattern: re.Pattern[str]
    floor: int = 2
    before: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    """How one channel splits a text.

    Attributes:
        measure: how a message's length is counted.
        breaks: the kinds of place to cut, best first; the last place of the first kind
            found in the window is taken.
        entities: the text is HTML-escaped: a hard cut never splits an ``&amp;``.
        code_blocks: a cut inside a Markdown code block moves to the line its ```` ``` ````
            fence opens on, when that leaves the part at least a quarter full.
    """

    measure: Measure
    breaks: tuple[Break, ...]
    entities: bool = False
    code_blocks: bool = False


def _boundaries(window: str, fits: int, held: str = "") -> set[int]:
    """Positions up to ``fits`` in ``window`` (``fits`` + 1 code points, or all of a
    shorter text) between two grapheme clusters, ``held`` being the text before it (0 is
    one when ``held`` ends a cluster: a flag's parity or a joined emoji needs it all)."""
    ends = {m.end() - len(held) for m in _GRAPHEME.finditer(held + window)}
    ends.discard(len(window))  # where the window ends, not (known to be) a cluster
    return {at for at in ends if (0 if held else 1) <= at <= fits}


def _hard_cut(window: str, fits: int, bounds: set[int], rules: Rules, held: bool) -> int:
    """A cut with no break: at the last cluster boundary, stepping back a little only
    and never below half the window (see the module docstring); else at the limit. A
    part already holding text ends before ``window`` rather (the text held ended at a
    place the caller chose), when that is between two clusters."""
    if held and 0 in bounds:
        return 0
    lowest = max(1, fits // 2, fits - _MAX_STEP_BACK)
    cut = max((at for at in bounds if at >= lowest), default=fits)
    if rules.entities:
        amp = window.rfind("&", max(0, cut - _ENTITY_LEN), cut)
        if amp >= (0 if held else 1) and ";" not in window[amp:cut]:
            cut = amp  # never split an entity such as &amp;
    return cut


def _cut(rest: str, fits: int, rules: Rules, held: str = "") -> int:
    """Where the part taken from ``rest`` ends, given that ``fits`` code points fit after
    the ``held`` ones the part already holds."""
    window = rest[: fits + 1]
    bounds = _boundaries(window, fits, held)
    cut: int | None = None
    for brk in rules.breaks:
        # The floor counts from the start of the part, so a part that holds text ends
        # no sooner than an empty one would; never at 0 by a break (it would add nothing).
        floor = max(min(len(held), 1), (len(held) + fits) // brk.floor - len(held))
        end = fits + 1 if brk.before else fits
        places = [
            max(m.start(), 1) if brk.before else m.end()
            for m in brk.pattern.finditer(window, floor, end)
        ]
        places = [at for at in places if at in bounds]
        if places:
            cut = places[-1]
            break
    if cut is None:
        cut = _hard_cut(window, fits, bounds, rules, bool(held))
    if rules.code_blocks:
        head = held + rest[:cut]
        if head.count(_FENCE) % 2:  # the cut is inside a code block
            line = head.rfind("\n", 0, head.rfind(_FENCE)) + 1
            if line >= max(1, (len(held) + fits) // 4, len(held)):
                cut = line - len(held)
    return cut


def next_cut(text: str, limit: int, rules: Rules, held: str = "") -> int:
    """How many code points at the start of ``text`` go into a part of at most ``limit``
    (as ``rules.measure`` counts) that already holds ``held``: all of ``text`` when it
    fits, else the place ``split_text`` would cut at, counted from the start of the part
    (a break no sooner than an empty part would take one); with no break, 0 when ``held``
    ends between two clusters (the part ends with what it holds), else a hard cut. For
    a part filled piece by piece, as a streamed message is; whitespace at the cut is the
    caller's to drop.

    Raises:
        ValueError: ``limit`` is below ``rules.measure.widest``.
    """
    measure = rules.measure
    if limit < measure.widest:
        raise ValueError(f"limit must be at least {measure.widest}")
    room = max(0, limit - measure.length(held))
    if measure.length(text) <= room:
        return len(text)
    return _cut(text, measure.fitting(text, room), rules, held)


def complete_clusters(text: str) -> int:
    """How many code points at the start of a growing ``text`` are whole grapheme
    clusters that no later character can join: all but its last cluster (a vowel sign,
    the next person of a family emoji or a flag's second half may still come)."""
    starts = [m.start() for m in _GRAPHEME.finditer(text)]
    return starts[-1] if starts else 0


def split_text(text: str, limit: int, rules: Rules) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` (as ``rules.measure`` counts).

    Whitespace at the cuts is dropped. A text that fits is returned unchanged as the
    only part; the result always has at least one part (empty for an empty text).

    Raises:
        ValueError: ``limit`` is below ``rules.measure.widest`` (a character might not
            fit in any part).
    """
    measure = rules.measure
    if limit < measure.widest:
        raise ValueError(f"limit must be at least {measure.widest}")
    parts: list[str] = []
    rest = text
    while measure.length(rest) > limit:
        at = _cut(rest, measure.fitting(rest, limit), rules)
        head, rest = rest[:at].rstrip(), rest[at:].lstrip()
        if head:
            parts.append(head)
    if rest or not parts:
        parts.append(rest)
    return parts
