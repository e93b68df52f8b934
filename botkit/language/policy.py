"""Which language a conversation is in after a message: the sticky-language rule.

Detectors are confidently wrong on short text (langdetect calls "ok" Slovak with
p=0.99999), so a message only changes the conversation's language when it is long
enough *and* the detection is clear. Otherwise the conversation keeps its language:
"ok", "thanks!", an order number or an emoji never flip it.

A conversation that has a language needs a longer message to change it
(``min_letters_to_switch``) than a new conversation needs to get one (``min_letters``).

A conversation without a language yet starts from the seed: the contact's preferred
language (set by an earlier explicit switch, or the first channel hint seen for that
contact), else this message's channel hint (Telegram ``language_code``, Slack locale,
the widget page's language), else the working language. A clear detection of the first
message overrides the seed. A new conversation is created without a language
(``botkit.store``): a hint or a remembered preference is a seed, not a settled
language. Neither the seed nor the working language is evidence of what the customer
writes (``LanguageDecision.fallback``): the message is answered in it, but it is not
stored as the conversation's language, so the next message still needs only
``min_letters`` to be detected. (A greeting too short to detect, "Hola", must not make
the question that follows it, "¿Dónde está mi pedido?" at 17 letters, pay the switching
price; nor may a browser or a Telegram app set to English make a customer's first
Spanish message pay it.) Nor is it stored as the message's language, which stays
unknown (``LanguageDecision.message_language``). The conversation's language is settled
by a trusted detection or by the switch command (``botkit.language.switch``).

Leaving a language the conversation already has also takes two trusted detections in a
row (``botkit.language.confirm``); ``decide_language`` judges one message only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from botkit.language.detect import LanguageGuess
from botkit.language.settings import DetectorSettings
from botkit.language.tags import same_language

__all__ = ["LanguageDecision", "Reason", "count_letters", "decide_language", "letters_needed"]

Reason = Literal["detected", "short", "ambiguous", "unlisted", "unconfirmed"]

# Han, kana and Hangul: one character carries about as much as a short word, so a
# 4-character Chinese question counts like a 12-letter English one.
_CJK_WEIGHT = 3
_CJK = ((0x1100, 0x11FF), (0x3040, 0x30FF), (0x3130, 0x318F), (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF))  # fmt: skip
_CJK_CHARS = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK) + "]")


def _indic_marks() -> re.Pattern[str]:
    # The scripts of South Asia (Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil,
    # Telugu, Kannada, Malayalam, Sinhala: U+0900-U+0DFF) write most vowels and the
    # virama as combining marks (Mn/Mc), which str.isalpha does not count: "मेरा ऑर्डर
    # कहाँ है?" had 9 letters where "Where is my order?" has 14, so a new conversation
    # opening in Hindi, Tamil or Bengali fell short of min_letters and got the working
    # language. A run of such marks after a letter of these scripts counts one per mark,
    # which brings a sentence within a few letters of its Latin transliteration: Hindi
    # 15 ("mera order kahan hai": 17), Tamil "என் ஆர்டர் எங்கே?" 14 ("en ardar enke": 11),
    # Bengali "আমার অর্ডার কোথায়?" 15 ("amar ordar kothay": 15). The generic combining marks
    # (U+0300-U+036F, an accent typed as "e" + U+0301) are not in these blocks and count
    # nothing: "é" is one letter however it is encoded; nor does a nukta (a dot that
    # makes another consonant of one: "य़" is one letter, precomposed or not). Arabic
    # and Hebrew vowel points are optional (most text has none) and Thai writes most
    # vowels as letters already, so their marks count nothing either.
    chars = [chr(c) for c in range(0x0900, 0x0E00)]
    letters = "".join(c for c in chars if c.isalpha())
    marks = "".join(
        c
        for c in chars
        if unicodedata.category(c) in ("Mn", "Mc") and "NUKTA" not in unicodedata.name(c, "")
    )
    return re.compile(f"(?<=[{letters}])[{marks}]+")


_INDIC_MARKS = _indic_marks()


def count_letters(text: str) -> int:
    """Letters in ``text`` (digits, punctuation, emoji and spaces do not count), with a
    CJK character counting as 3 and an Indic vowel sign or virama after a letter as 1."""
    # Runs for every message: str.isalpha over map and the regex scans stay in C.
    letters = sum(map(str.isalpha, text))
    if text.isascii():
        return letters
    cjk = sum(map(str.isalpha, _CJK_CHARS.findall(text)))
    marks = sum(map(len, _INDIC_MARKS.findall(text)))
    return letters + (_CJK_WEIGHT - 1) * cjk + marks


@dataclass(frozen=True, slots=True)
class LanguageDecision:
    """The outcome for one message.

    Attributes:
        language: the conversation's language from now on; replies are in it, and the
            message is taken to be written in it.
        detected: the trusted detection of this message, or None when it was not
            trusted (then ``reason`` says why).
        reason: ``detected``; ``short`` (too few letters); ``ambiguous`` (no clear
            winner); ``unlisted`` (the winner is not one of the configured languages);
            ``unconfirmed`` (a trusted detection of another language that has not been
            confirmed yet, see ``botkit.language.confirm``: the language is kept).
        letters: the weighted letter count that was compared with ``min_letters``
            (``min_letters_to_switch`` when the conversation had a language).
        fallback: the conversation has no language yet and no trusted detection chose
            one: the language is the seed (preference or channel hint) or, without one,
            the working language. It is used for this message but not stored as the
            conversation's language (a seed is a guess, not evidence).
    """

    language: str
    detected: str | None
    reason: Reason
    letters: int
    fallback: bool = False

    @property
    def message_language(self) -> str | None:
        """The language the message is recorded as written in: ``language``, or None
        for a ``fallback`` (not known). The reply is still written in ``language``; but
        recorded on the message, a guess would read as detected: to agents, in exports,
        and in the web widget, which has a text read out in its language's voice."""
        return None if self.fallback else self.language


# With ``languages`` set, the guesses outside the list are dropped and the rest are
# renormalized, so that a language the bot does not serve no longer counts against the
# ones it does: "ru 0.857, bg 0.143" with Bulgarian not served is ru at 1.0. Only the
# unlisted guesses are taken out of the whole: langdetect returns no guess under 0.1,
# and that unreturned rest is still doubt ("es 0.6" alone stays 0.6, not 1.0). And only
# when the listed guesses hold at least ``min_confidence`` (and over half) of the
# detector's belief: a Ukrainian message ("uk 0.857, ru 0.143") to a bot serving ru and
# en is no Russian one, nor is a line langdetect scores "fr 5/7, es 2/7" a French one
# (dividing by the listed share made it fr 1.0 and switched English conversations of a
# bot serving fr and en to French).
MIN_ALLOWED_SHARE = 0.5


def _listed_only(
    guesses: Sequence[LanguageGuess], permitted: Sequence[str], settings: DetectorSettings
) -> list[LanguageGuess] | Literal["unlisted"]:
    """The guesses of ``permitted`` languages, renormalized; or ``"unlisted"`` when the
    others hold too much of the belief for any of these to be trusted."""
    listed = [g for g in guesses if any(same_language(g.language, a) for a in permitted)]
    share = sum(g.probability for g in listed)
    unlisted = sum(g.probability for g in guesses) - share
    if unlisted <= 0:
        return listed
    if not listed or share < settings.min_confidence or share <= MIN_ALLOWED_SHARE:
        return "unlisted"
    whole = max(1.0 - unlisted, share)  # a detector whose guesses sum past 1 stays <= 1
    return [LanguageGuess(g.language, g.probability / whole) for g in listed]


def letters_needed(settings: DetectorSettings, current: str | None) -> int:
    """Letters a message needs for its detected language to count: more to change a
    conversation's language than to give a new conversation one."""
    if current is None:
        return settings.min_letters
    return max(settings.min_letters, settings.min_letters_to_switch)


def decide_language(
    *,
    guesses: Sequence[LanguageGuess],
    letters: int,
    current: str | None,
    seed: str | None,
    working: str,
    settings: DetectorSettings,
    allowed: Sequence[str] = (),
) -> LanguageDecision:
    """Apply the sticky-language rule (module docstring).

    Args:
        guesses: the detector's candidates for this message, best first.
        letters: ``count_letters`` of the text the detector saw.
        current: the conversation's language, None for a new conversation.
        seed: what a new conversation starts from (preference or channel hint).
        working: the working language (the last resort).
        settings: the thresholds.
        allowed: when not empty, only these languages (and the working language) may be
            detected; others leave the language unchanged. The guesses of these are
            renormalized before the confidence test (``_listed_only``).
    """
    base = current or seed or working
    fallback = current is None
    # Hysteresis: leaving a language the conversation already has takes more text than
    # choosing one. Between 12 and 15 letters langdetect is confidently wrong often
    # enough to matter ("Gibt's was Neues?" -> en, "Ancora niente." -> es, both at
    # p > 0.9999; 3 of 25 such messages of tests/data/customer_service_parallel.jsonl),
    # and customers write many short messages but rarely switch language in one.
    if letters < letters_needed(settings, current):
        return LanguageDecision(base, None, "short", letters, fallback)
    candidates = list(guesses)
    if allowed:
        listed = _listed_only(guesses, (*allowed, working), settings)
        if listed == "unlisted":
            return LanguageDecision(base, None, "unlisted", letters, fallback)
        candidates = listed
    if not candidates:
        return LanguageDecision(base, None, "ambiguous", letters, fallback)
    top = candidates[0]
    runner_up = candidates[1].probability if len(candidates) > 1 else 0.0
    if (
        top.probability < settings.min_confidence
        or top.probability - runner_up < settings.min_margin
    ):
        return LanguageDecision(base, None, "ambiguous", letters, fallback)
    chosen = top.language
    # Keep the more specific tag we already have for the same language (pt-BR from a
    # hint beats langdetect's plain pt; a region never comes from detection).
    for known in (current, seed, *allowed, working):
        if known is not None and same_language(known, chosen):
            chosen = known
            break
    return LanguageDecision(chosen, chosen, "detected", letters)
