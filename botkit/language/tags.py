"""BCP-47 language tags: one normal form for everything botkit stores and compares.

Tags come from many places (langdetect's ``zh-cn``, Telegram's ``pt-br``, Slack's
``en-US``, a widget's ``EN_gb``, a config file's ``spa_Latn``); they are all brought to
one form so that comparing two languages is comparing two strings.

The rule (``normalize_tag``):

1. ``_`` counts as ``-``; case is ignored. Extensions and private use (from the first
   single-letter subtag on, e.g. ``-u-ca-gregory``) are dropped: no translation model
   uses them.
2. The language subtag is lower-case. Deprecated and 3-letter codes that have a
   2-letter code become it (``iw``→``he``, ``in``→``id``, ``spa``→``es``,
   ``deu``→``de``); Norwegian Bokmål ``nb`` folds into ``no`` and Filipino ``fil``
   into ``tl`` (the codes langdetect and the translation models use).
3. A script subtag is title-case and is dropped when it is the language's usual script
   (``ru-Cyrl``→``ru``, ``en-Latn-US``→``en-US``); other scripts stay (``sr-Latn``).
4. A region is upper-case (``pt-br``→``pt-BR``) and kept, except for Chinese.
5. Chinese is identified by its *script*, because that is what translation models and
   readers distinguish: ``zh``, ``zh-CN``, ``zh-SG``, ``zh-Hans``, ``cmn`` → ``zh-Hans``;
   ``zh-TW``, ``zh-HK``, ``zh-MO``, ``zh-Hant`` → ``zh-Hant`` (region then dropped).

Two tags name the same language for translation purposes when their language and
script agree (``same_language``): ``en-US`` and ``en-GB`` are not translated into each
other, ``zh-Hans`` and ``zh-Hant`` are.

A conversation's and a contact's language are cut further, to language[-script][-region]
(``conversation_tag``): that is the tag caches are keyed by, and the customer chooses it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from botkit.errors import BotkitError

__all__ = [
    "MAX_TAG_LENGTH",
    "InvalidLanguageTag",
    "conversation_tag",
    "normalize_tag",
    "primary_subtag",
    "same_language",
    "script_subtag",
    "try_normalize",
]

MAX_TAG_LENGTH = 35  # the store's column width; longer tags are refused

_SHAPE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")

# Codes replaced by another code (deprecated ISO 639-1, ISO 639-2/B, 639-3 individual
# languages of our table, and the folds explained in the module docstring).
_LANGUAGE_ALIASES = {
    "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "nb": "no", "fil": "tl",
    "ara": "ar", "arb": "ar", "fas": "fa", "per": "fa", "pes": "fa", "lav": "lv",
    "lvs": "lv", "mon": "mn", "khk": "mn", "msa": "ms", "may": "ms", "zsm": "ms",
    "nep": "ne", "npi": "ne", "nor": "no", "nob": "no", "pus": "ps", "pbt": "ps",
    "sqi": "sq", "alb": "sq", "als": "sq", "swa": "sw", "swh": "sw", "uzb": "uz",
    "uzn": "uz", "aze": "az", "azj": "az", "tgl": "tl", "ger": "de", "fre": "fr",
    "chi": "zh", "zho": "zh", "cmn": "zh", "dut": "nl", "cze": "cs", "gre": "el",
    "rum": "ro", "slo": "sk", "wel": "cy", "ice": "is", "arm": "hy", "geo": "ka",
    "mac": "mk", "bur": "my", "baq": "eu",
}  # fmt: skip

_HANS_REGIONS = frozenset({"CN", "SG", "MY"})
_HANT_REGIONS = frozenset({"TW", "HK", "MO"})


class InvalidLanguageTag(BotkitError, ValueError):
    """A string is not a usable language tag (also a ``ValueError``, so config
    validators report it as a problem of the key that held it)."""


def _three_letter(code: str) -> str | None:
    from botkit.language.codes import language_for_three_letter_code

    return language_for_three_letter_code(code)


def _default_script(language: str) -> str | None:
    from botkit.language.codes import default_script

    return default_script(language)


def normalize_tag(value: str) -> str:
    """The normal form of a language tag (see the module docstring for the rule).

    Raises:
        InvalidLanguageTag: ``value`` is not shaped like a language tag or is too long.
    """
    raw = value.strip().replace("_", "-") if isinstance(value, str) else ""
    if not raw or len(raw) > MAX_TAG_LENGTH or not raw.isascii() or not _SHAPE.fullmatch(raw):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise InvalidLanguageTag(f"{shown!r} is not a language tag such as 'en', 'es' or 'pt-BR'")
    parts = raw.split("-")
    language = parts[0].lower()
    language = _LANGUAGE_ALIASES.get(language, language)
    if len(language) == 3:
        language = _three_letter(language) or language
    script: str | None = None
    region: str | None = None
    variants: list[str] = []
    for part in parts[1:]:
        if len(part) == 1:
            break  # extension or private use: dropped
        if len(part) == 4 and part.isalpha() and script is None and region is None:
            script = part.title()
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            if region is None and not variants:
                region = part.upper()
        else:
            variants.append(part.lower())
    if language == "zh":
        if script not in ("Hans", "Hant"):
            script = "Hant" if region in _HANT_REGIONS else "Hans"
        region = None
    elif script is not None and script == _default_script(language):
        script = None
    return "-".join(p for p in (language, script, region, *variants) if p)


def try_normalize(value: str | None) -> str | None:
    """``normalize_tag(value)``, or None for None or a malformed tag (channel hints are
    only hints: a bad one is ignored, not an error)."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= _CACHED_LENGTH:
        return _try_normalize_cached(value)  # a few tags, several times per message
    return _try_normalize(value)


# Longer values (not tags, or padded with spaces) are not cached: a hostile hint must not
# make the cache hold large strings.
_CACHED_LENGTH = 2 * MAX_TAG_LENGTH


def _try_normalize(value: str) -> str | None:
    try:
        return normalize_tag(value)
    except InvalidLanguageTag:
        return None


_try_normalize_cached = functools.lru_cache(maxsize=4096)(_try_normalize)


def primary_subtag(tag: str) -> str:
    """The language subtag of a normalized tag (``pt-BR`` → ``pt``)."""
    return tag.split("-", 1)[0]


def script_subtag(tag: str) -> str | None:
    """The script subtag of a normalized tag, or None (``zh-Hant`` → ``Hant``)."""
    for part in tag.split("-")[1:]:
        if len(part) == 4 and part.isalpha():
            return part
    return None


def same_language(a: str | None, b: str | None) -> bool:
    """True when ``a`` and ``b`` need no translation between them: the same language
    subtag and the same script (regions and variants are ignored). Malformed or missing
    tags are never the same language as anything."""
    na, nb = try_normalize(a), try_normalize(b)
    if na is None or nb is None:
        return False
    return primary_subtag(na) == primary_subtag(nb) and script_subtag(na) == script_subtag(nb)


def conversation_tag(value: str | None, configured: Sequence[str] = ()) -> str | None:
    """The tag a conversation's (or contact's) language is stored and cached under:
    ``value`` normalized and cut to language[-script][-region], or None when malformed.
    With ``configured`` (``language.languages`` and the working language) given, a tag of
    one of those languages becomes that entry (``de-a0000001`` → ``de``; an exact entry,
    ``pt-BR``, is kept as it is).

    Why: the tag is the customer's to choose (a widget's ``lang``, ``/lang
    de-a0000001``), and caches are keyed by it (stopwords, translated busy replies).
    Variant subtags alone make millions of valid tags of one language; kept, one customer
    could add a cache entry a message and grow memory without bound (the soak audit:
    ~13.5 KB each). No translation model or stopword list tells variants apart.
    """
    tag = try_normalize(value)
    if tag is None:
        return None
    parts = tag.split("-")
    kept = [parts[0]]
    for part in parts[1:]:
        if len(kept) == 1 and len(part) == 4 and part.isalpha():
            kept.append(part)  # script (normal form: only before the region)
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            kept.append(part)  # region, the last part kept
            break
        else:
            break  # a variant: it and what follows are dropped
    reduced = "-".join(kept)
    entries = [n for n in map(try_normalize, configured) if n is not None]
    if reduced in entries:
        return reduced
    return next((e for e in entries if same_language(reduced, e)), reduced)
