"""Sentence segmentation for translation, incremental so a streamed reply can be
translated sentence by sentence while the rest is still being generated.

A segment ends after terminal punctuation followed by whitespace (``.``, ``!``, ``?``,
``…``, the Arabic question mark U+061F, plus closing quotes/brackets), right after a
terminal that needs no space after it (CJK full stop and full-width ! and ?, the Urdu
full stop U+06D4, Devanagari dandas U+0964/5, the Armenian full stop U+0589, Ethiopic
U+1362, Myanmar U+104B: scripts that may put none there), after ASCII ``!``/``?``
directly followed by a CJK character (Chinese typed with half-width punctuation), or at
a line break; never inside code (fenced or inline).
A period after a known abbreviation (English, German, Spanish, French, Portuguese,
Italian and Russian ones, "z. B." and "p. ej." too) or a single letter (an initial) does
not end a sentence, nor does a period or an ellipsis before a lower-case word; "a.m." /
"p.m." end one only before a capital (see ``_boundary``). Nor does the period of an
ordinal number (German, Nordic, Finnish, Czech, Polish, Hungarian... write "1." for
"first") before a month name after a one- or two-digit day ("Am 1. Januar", see
``_MONTHS``); before any other capitalized word it does ("I have 3. Then...").

Translation models work on sentences of bounded length (a source past the model's limit
is truncated), so a segment that would run past ``max_chars`` is cut earlier, at the last
whitespace or clause mark (CJK and ASCII commas, semicolons, full-width colon) in its
first ``max_chars`` characters, else after as many characters as possible (text with
neither: Thai, Chinese written without commas). Such a cut leaves a lookahead of up to
32 characters before ``max_chars`` (see ``_LOOKAHEAD``), never falls inside code or a
protected span (URL, number, placeholder, glossary term) and never separates a character
from its combining marks (nor a surrogate pair, a ZWJ sequence, a virama conjunct). Only
a span or code block longer than that makes a longer segment.

Streaming and whole-text splitting give the same segments: a cut is made only once no
later text can change it (a cut before ``max_chars`` is decided from the first
``max_chars + 1`` characters alone; a sentence end waits for the next non-space
character, after a day's number for the next word when it may be a month name).

Segments keep their surrounding whitespace, so joining them gives back the text exactly.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from typing import Final

from botkit.language.protect import Glossary, find_spans

__all__ = ["SentenceBuffer", "split_sentences"]

# Terminals that end a sentence even with no space after them: CJK full stop and
# full-width ! and ?, Arabic full stop (Urdu), Devanagari danda and double danda,
# Armenian full stop, Ethiopic full stop, Myanmar section mark.
_UNSPACED_TERMINALS = "\u3002\uff01\uff1f\u06d4\u0964\u0965\u0589\u1362\u104b"
# Terminal punctuation (ASCII, ellipsis, Arabic question mark, the above), then any
# closing quotes and brackets (ASCII, curly, guillemet, CJK corner brackets).
_CLOSERS = "\"')]\u201d\u2019\u00bb\u300d\u300f"
_CANDIDATE = re.compile(f"[.!?\u2026\u061f{_UNSPACED_TERMINALS}]+[{re.escape(_CLOSERS)}]*|\n")
_UNSPACED = frozenset(_UNSPACED_TERMINALS)
# Han, kana, Hangul: after "!" or "?" one of these starts a new sentence ("你好!我的订单").
_CJK_START = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
# Abbreviations whose period does not end a sentence, lower-case, without the period;
# "p.ej" stands for "p. ej." and "p.ej." (the part before is checked with or without a
# space). Common in replies of an English-working-language bot and in customers' German,
# Spanish, French, Portuguese, Italian and Russian. A single letter ("z. B.", "d. h.",
# Russian "t. e."; an initial) is one anyway (``_is_abbreviation``). Left out on purpose:
# words that also end sentences ("etc.", Spanish "mar", Italian "es", Russian "rub."
# and "им", a pronoun: "Я позвонил им. Они..."; "ул. им." stays as two words): before a
# lower-case word no period ends a sentence anyway (``_boundary``). "No." and "Nr." are
# abbreviations only before a number (``_BEFORE_NUMBER``).
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "approx", "ca", "e.g", "i.e",
     "eg", "ie", "inc", "ltd", "co", "jr", "sr", "min", "max", "fig", "dept", "tel",
     "jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
     "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
     # German
     "bzw", "evtl", "ggf", "usw", "vgl", "inkl", "zzgl", "str", "geb", "abs", "z.b",
     "d.h", "u.a", "o.ä", "s.o", "s.u",
     # Spanish, Portuguese, Italian
     "ud", "uds", "vd", "vds", "sra", "sras", "sres", "srta", "dra", "pág", "pag", "págs",
     "núm", "av", "avda", "dto", "ee", "ee.uu", "p.ej", "p.ex", "sig", "sigg", "dott",
     # French
     "mme", "mmes", "mlle", "mlles", "cf", "env",
     # Russian
     "т.е", "т.д", "т.п", "т.к", "т.н", "ул", "ул.им", "см"}  # noqa: RUF001
)  # fmt: skip
# Abbreviations of "number" that are also words ending sentences (Spanish and Italian
# "no", English "no"): one only before a number ("No. 5", "Nr. #12"), not in "Creo que
# no. Gracias."
_BEFORE_NUMBER = frozenset({"no", "nr"})
_TIMES = frozenset({"a.m", "p.m"})
# Month names that may follow a day written as an ordinal ("1. Januar"), lower-case.
# Where months are written lower-case (Danish, Norwegian, Finnish, Czech, Polish...) the
# lower-case rule already keeps "1. januar" whole; the table is for a capitalized one:
# German nouns, a month at the start of a line or in a title. Nominative and the
# genitive/partitive forms that follow a day. No English names: English does not write
# ordinals with a period, and "3. May I..." is more likely two sentences.
_MONTHS = frozenset(
    {
        # German (and Austrian)
        "januar", "jänner", "februar", "feber", "märz", "april", "mai", "juni", "juli",
        "august", "september", "oktober", "november", "dezember",
        # Danish, Norwegian, Icelandic
        "marts", "mars", "maj", "december", "desember", "janúar", "febrúar", "apríl",
        "júní", "júlí", "ágúst", "október", "nóvember",
        # Finnish (nominative and the partitive used after a day)
        "tammikuu", "helmikuu", "maaliskuu", "huhtikuu", "toukokuu", "kesäkuu",
        "heinäkuu", "elokuu", "syyskuu", "lokakuu", "marraskuu", "joulukuu",
        "tammikuuta", "helmikuuta", "maaliskuuta", "huhtikuuta", "toukokuuta",
        "kesäkuuta", "heinäkuuta", "elokuuta", "syyskuuta", "lokakuuta", "marraskuuta",
        "joulukuuta",
        # Czech (genitive after a day, and nominative)
        "ledna", "února", "března", "dubna", "května", "června", "července", "srpna",
        "září", "října", "listopadu", "prosince", "leden", "únor", "březen", "duben",
        "květen", "červen", "červenec", "srpen", "říjen", "listopad", "prosinec",
        # Slovak, Slovenian, Croatian, Polish (genitive after a day)
        "januára", "februára", "marca", "apríla", "mája", "júna", "júla", "augusta",
        "septembra", "októbra", "novembra", "decembra", "januarja", "februarja",
        "aprila", "maja", "junija", "julija", "avgusta", "oktobra",
        "siječnja", "veljače", "ožujka", "travnja", "svibnja", "lipnja", "srpnja",
        "kolovoza", "rujna", "listopada", "studenoga", "prosinca",
        "stycznia", "lutego", "kwietnia", "czerwca", "lipca", "sierpnia", "września",
        "października", "grudnia",
        # Estonian, Latvian
        "jaanuar", "veebruar", "märts", "aprill", "juuni", "juuli", "janvāris",
        "februāris", "aprīlis", "maijs", "jūnijs", "jūlijs", "augusts", "septembris",
        "oktobris", "novembris", "decembris",
    }
)  # fmt: skip
# The names and every start of one: a word still streaming that may become a name.
_MONTH_STARTS = frozenset(m[:i] for m in _MONTHS for i in range(1, len(m) + 1))
_WORD = re.compile(r"[^\W\d_]+")
_SPACES = re.compile(r"\s*")
_FENCE = "```"
# Where a too-long segment may be cut when it has no sentence end: after these (CJK
# comma, ideographic comma, full-width semicolon and colon, ASCII comma and semicolon).
_CLAUSE_MARKS = frozenset("\uff0c\u3001\uff1b,;\uff1a")
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
_UNKNOWN: Final = -1
# A cut for max_chars is decided from the first max_chars + 1 characters (so that
# streaming and whole-text splitting agree) but made this many characters (at most a
# quarter of max_chars) before their end: whether a cut falls inside a span can depend on
# text after it ("https://" seen whole, the "@example.com" after a local part, the digit
# after "ORD-").
_LOOKAHEAD = 32


class _Code:
    """Where code is in a text: sorted, non-overlapping [start, end) ranges."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        n, pos = len(text), 0
        # One left-to-right pass, linear in the text (a hostile run of backticks too).
        while (tick := text.find("`", pos)) != -1:
            if text.startswith(_FENCE, tick):
                close = text.find(_FENCE, tick + len(_FENCE))
                end = n + 1 if close == -1 else close + len(_FENCE)  # unclosed: to the end
            else:
                line_end = text.find("\n", tick)
                limit = n if line_end == -1 else line_end
                close = text.find("`", tick + 1, limit)
                if close == tick + 1:  # "``": not code
                    pos = close + 1
                    continue
                # A backtick not closed on its line may still be closed by text not
                # streamed yet: no boundary until the line ends (the same rule for a
                # complete text, so streaming and whole-text segmentation agree).
                end = (n + 1 if line_end == -1 else line_end) if close == -1 else close + 1
            self.starts.append(tick)
            self.ends.append(end)
            pos = end

    def __contains__(self, pos: int) -> bool:
        i = bisect_right(self.starts, pos) - 1
        return i >= 0 and pos < self.ends[i]

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))


def _skip_space(text: str, pos: int) -> int:
    match = _SPACES.match(text, pos)
    return pos if match is None else match.end()


def _word_before(text: str, end: int) -> int:
    """Where the run of letters (at most 16) that ends at ``end`` starts."""
    start = end
    while start > 0 and end - start < 16 and text[start - 1].isalpha():
        start -= 1
    return start


def _is_abbreviation(text: str, dot: int, following: str) -> bool:
    """Whether the period at ``dot`` ends an abbreviation, given the character that
    follows it after the whitespace."""
    start = _word_before(text, dot)
    token = text[start:dot]
    if not token:
        return False
    if len(token) == 1:
        # An initial ("J. Smith") or a part of "z. B.", "d. h.", "p. ej.". A
        # one-letter word ending a sentence ("Это я.", "Plan B. Then...") joins the
        # next one: harmless (a translator takes two short sentences as well), and an
        # initial cannot be told from it by what follows ("J. Smith", "B. Then").
        return True
    if token.lower() in _BEFORE_NUMBER:
        return following.isdigit() or following == "#"
    if token.lower() in _ABBREVIATIONS:
        return True
    # "e.g.", "p. ej.", "EE. UU.", "т. д.": the word before the previous period counts
    # too (with no space or one space between).
    before = start - 1 if start >= 1 and text[start - 1] == " " else start
    if before >= 2 and text[before - 1] == ".":
        first = _word_before(text, before - 1)
        if first < before - 1:
            return f"{text[first : before - 1]}.{token}".lower() in _ABBREVIATIONS
    return False


def _is_time(text: str, dot: int) -> bool:
    """Whether the period at ``dot`` ends "a.m." or "p.m." (any case)."""
    return (
        dot >= 3
        and text[dot - 3 : dot].lower() in _TIMES
        and (dot == 3 or not text[dot - 4].isalpha())
    )


def _ordinal_continues(text: str, dot: int, word: int) -> bool | None:
    """Whether the period at ``dot``, after a number, is an ordinal's that does not end
    the sentence, given the next word starts at ``word``; None while the next word may
    still be streaming (and could decide it)."""
    if text[word].islower():
        return True  # "am 3. kam", "2024. január", "1. ledna"
    digits = dot
    while digits > 0 and text[digits - 1].isdigit():
        digits -= 1
    if dot - digits > 2 or (digits > 0 and text[digits - 1].isalnum()):
        return False  # a year or an amount before a capital, "ORD-123." or "v2." end one
    match = _WORD.match(text, word)
    name = "" if match is None else match.group().lower()
    if match is not None and match.end() == len(text) and name in _MONTH_STARTS:
        return None  # "Am 1. Jan" may become "Januar" or "Janssen", "Mai" "Maier"
    return name in _MONTHS


def _boundary(text: str, code: _Code, start: int) -> tuple[int | None, int, int]:
    """The first segment end of ``text`` (after its whitespace), or None when there is
    none yet; where to resume looking next time (candidates before it were rejected for
    good: more text cannot change their verdict); and where the punctuation of that end
    (or of the candidate still waiting for more text) ends, ``len(text) + 1`` when
    there is no candidate: no later end can come before it."""
    for m in _CANDIDATE.finditer(text, start):
        end = m.end()
        if end >= len(text) and m.group() != "\n":
            return None, m.start(), end  # the next character decides (a quote may follow)
        if m.start() in code:
            continue
        cut = _skip_space(text, end)
        if cut >= len(text):
            return None, m.start(), end  # the whitespace may go on in the next delta
        if m.group() == "\n" or _UNSPACED.intersection(m.group()):
            return cut, 0, end
        if not text[end].isspace():
            terminal = m.group().rstrip(_CLOSERS)[-1]
            if terminal in "!?" and _CJK_START.match(text, end):
                return cut, 0, end  # "你好!我的订单在哪里?谢谢"
            continue  # "3.14", "example.com", "?!x"
        if m.group() == "." and _is_time(text, m.start()):
            # "a.m." / "p.m." end a sentence only before a capitalized word: "from 9 a.m.
            # to 5 p.m. on weekdays" stays whole (the common case: opening hours), "at 9
            # a.m. Call us then." is cut. A word in capitals is no new sentence ("9 A.M.
            # TO 5 P.M.", "9 a.m. CET"); "at 9 a.m. Monday to Friday" is cut: a capital
            # after a time starts a new sentence more often than it starts a name.
            if cut + 1 >= len(text):
                return None, m.start(), end  # "I" or "IT"? the next character decides
            if text[cut].isupper() and not text[cut + 1].isupper():
                return cut, 0, end
            continue
        if m.group() == "." and _is_abbreviation(text, m.start(), text[cut]):
            continue
        if text[cut].islower() and not m.group().strip(".\u2026"):
            # No sentence starts with a lower-case letter (in a script with case): the
            # period after an abbreviation not listed ("etc. will arrive"), an ellipsis
            # in the middle ("Espere… ya llegó"). The usual Punkt heuristic; a customer
            # who starts sentences in lower case gets longer segments, which a
            # translator takes as well. After a closing quote or bracket the sentence
            # has ended whatever follows ('"Hi." then', and a test translator's "en(…)").
            continue
        if m.group() == "." and text[m.start() - 1 : m.start()].isdigit():
            ordinal = _ordinal_continues(text, m.start(), cut)
            if ordinal is None:
                return None, m.start(), end  # the next word decides
            if ordinal:
                continue
        return cut, 0, end
    return None, len(text), len(text) + 1


def _splits_character(text: str, pos: int) -> bool:
    """Whether cutting ``text`` before ``pos`` separates parts of one user-perceived
    character (an approximation of Unicode's extended grapheme clusters, UAX #29)."""
    before, after = text[pos - 1], text[pos]
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return True  # a surrogate pair (text decoded with "surrogatepass")
    if (before, after) == ("\r", "\n") or "\u200c" <= before <= "\u200d":
        return True  # CR LF; after a zero-width (non-)joiner (emoji ZWJ sequences)
    if unicodedata.category(after)[0] == "M" or "\u200c" <= after <= "\u200d":
        return True  # combining marks, variation selectors, Indic vowel signs
    if "\U0001f3fb" <= after <= "\U0001f3ff" or "\U000e0020" <= after <= "\U000e007f":
        return True  # emoji skin tone modifiers, emoji tag sequences (flags)
    if "\U0001f1e6" <= before <= "\U0001f1ff" and "\U0001f1e6" <= after <= "\U0001f1ff":
        return True  # regional indicators (flags)
    if after in "\u0e33\u0eb3" or "\u1160" <= after <= "\u11ff" or "\ud7b0" <= after <= "\ud7ff":
        return True  # Thai/Lao SARA AM (a spacing mark), Hangul medial/final jamo
    if "\u0e40" <= before <= "\u0e44" or "\u0ec0" <= before <= "\u0ec4":
        return True  # a Thai/Lao leading vowel is written before its consonant
    return unicodedata.combining(before) == 9  # a virama joins the next consonant


def _fallback_cut(window: str, limit: int, glossary: Glossary | None) -> int | None:
    """Where to cut a text of which ``window`` (``limit + 1`` characters) is the start,
    when no sentence ends within ``limit`` characters; None when every cut would fall
    inside code or a protected span."""
    reach = limit - min(_LOOKAHEAD, limit // 4)
    blocked = bytearray(reach + 1)  # blocked[p]: no cut between window[p - 1] and [p]
    for start, end in [*_Code(window).ranges(), *find_spans(window, glossary)]:
        # A span that reaches the end of the window may go on past it.
        stop = reach + 1 if end >= len(window) else min(end, reach + 1)
        blocked[start + 1 : stop] = b"\x01" * max(0, stop - start - 1)
    usable = [
        p for p in range(reach, 0, -1) if not blocked[p] and not window[p - 1] == "`" == window[p]
    ]  # "``" + "`" is a fence
    # The last cut after a space or a clause mark, else the last one: each checked for
    # splitting a character only when it is a candidate (the check on every position was
    # most of the 7 ms a 4,096-character text without spaces cost).
    for p in usable:
        c = window[p - 1]
        if (c.isspace() and c not in _NO_BREAK_SPACES) or c in _CLAUSE_MARKS:
            if not _splits_character(window, p):
                return p
    for p in usable:
        if not _splits_character(window, p):
            return p
    # Only a hostile run of combining marks longer than `limit` gets here.
    return next((p for p in usable if not "\udc00" <= window[p] <= "\udfff"), None)


class SentenceBuffer:
    """Accumulates streamed text and hands out complete segments.

    ``feed`` returns the segments completed by a delta (possibly none); ``flush``
    returns whatever is left once the stream has ended.

    Args:
        max_chars: longest segment (see the module docstring for the exceptions).
        glossary: terms a cut at ``max_chars`` must not split.
    """

    def __init__(self, max_chars: int = 400, *, glossary: Glossary | None = None) -> None:
        self.max_chars = max_chars
        self.glossary = glossary
        self._buffer = ""
        self._resume = 0  # candidates before this offset of the buffer were rejected
        # The fallback cut of the buffer's first max_chars + 1 characters, once they are
        # known (they only change when a segment is cut off).
        self._window_cut: int | None = _UNKNOWN

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        segments: list[str] = []
        while self._buffer and (end := self._next_end()) is not None:
            segments.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
            self._resume, self._window_cut = 0, _UNKNOWN
        return segments

    def _next_end(self) -> int | None:
        text, limit = self._buffer, self.max_chars
        end, self._resume, mark_end = _boundary(text, _Code(text), self._resume)
        if mark_end <= limit or len(text) <= limit or limit < 1:
            return end  # a sentence end within the limit, or maybe one still to come
        if self._window_cut == _UNKNOWN:
            self._window_cut = _fallback_cut(text[: limit + 1], limit, self.glossary)
        return end if self._window_cut is None else self._window_cut

    def flush(self) -> str:
        rest, self._buffer, self._resume = self._buffer, "", 0
        self._window_cut = _UNKNOWN
        return rest


def split_sentences(
    text: str, max_chars: int = 400, *, glossary: Glossary | None = None
) -> list[str]:
    """Split a complete text into segments (joined, they give back ``text``)."""
    buffer = SentenceBuffer(max_chars, glossary=glossary)
    segments = buffer.feed(text)
    rest = buffer.flush()
    if rest:
        segments.append(rest)
    return segments
