"""Languages botkit knows by name, and each translation model family's code for them.

One row per language: its normalized BCP-47 tag, English name, own name (endonym),
the NLLB-200 code (``spa_Latn``: ISO 639-3 + script), the M2M100 code (mostly ISO
639-1) and the code OPUS-MT (Marian) model names use (``opus-mt-es-en``). ``None`` means
the family has no such language. The NLLB and M2M100 columns are checked against the
code lists shipped with ``transformers`` in the tests.

A model's own checkpoint is the final word on what it can translate; this table only
turns our tags into the codes a model expects.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from botkit.errors import TranslationError
from botkit.language.tags import InvalidLanguageTag, normalize_tag, primary_subtag

__all__ = [
    "LANGUAGES",
    "CodeScheme",
    "LanguageInfo",
    "default_script",
    "english_name",
    "find_language",
    "is_known_language",
    "known_tag",
    "language_for_three_letter_code",
    "language_info",
    "marian_model_name",
    "model_code",
]

CodeScheme = Literal["nllb", "m2m100", "marian"]


@dataclass(frozen=True, slots=True)
class LanguageInfo:
    """One language and its codes (``None``: that model family lacks it)."""

    tag: str
    english: str
    native: str
    nllb: str
    m2m100: str | None
    marian: str | None


# tag, English name, endonym, NLLB, M2M100, OPUS-MT
_ROWS: tuple[tuple[str, str, str, str, str | None, str | None], ...] = (
    ("af", "Afrikaans", "Afrikaans", "afr_Latn", "af", "af"),
    ("am", "Amharic", "አማርኛ", "amh_Ethi", "am", "am"),
    ("ar", "Arabic", "العربية", "arb_Arab", "ar", "ar"),
    ("az", "Azerbaijani", "Azərbaycanca", "azj_Latn", "az", "az"),
    ("be", "Belarusian", "Беларуская", "bel_Cyrl", "be", "be"),
    ("bg", "Bulgarian", "Български", "bul_Cyrl", "bg", "bg"),
    ("bn", "Bengali", "বাংলা", "ben_Beng", "bn", "bn"),
    ("bs", "Bosnian", "Bosanski", "bos_Latn", "bs", "bs"),
    ("ca", "Catalan", "Català", "cat_Latn", "ca", "ca"),
    ("cs", "Czech", "Čeština", "ces_Latn", "cs", "cs"),
    ("cy", "Welsh", "Cymraeg", "cym_Latn", "cy", "cy"),
    ("da", "Danish", "Dansk", "dan_Latn", "da", "da"),
    ("de", "German", "Deutsch", "deu_Latn", "de", "de"),
    ("el", "Greek", "Ελληνικά", "ell_Grek", "el", "el"),
    ("en", "English", "English", "eng_Latn", "en", "en"),
    ("es", "Spanish", "Español", "spa_Latn", "es", "es"),
    ("et", "Estonian", "Eesti", "est_Latn", "et", "et"),
    ("eu", "Basque", "Euskara", "eus_Latn", None, "eu"),
    ("fa", "Persian", "فارسی", "pes_Arab", "fa", "fa"),
    ("fi", "Finnish", "Suomi", "fin_Latn", "fi", "fi"),
    ("fr", "French", "Français", "fra_Latn", "fr", "fr"),
    ("ga", "Irish", "Gaeilge", "gle_Latn", "ga", "ga"),
    ("gl", "Galician", "Galego", "glg_Latn", "gl", "gl"),
    ("gu", "Gujarati", "ગુજરાતી", "guj_Gujr", "gu", "gu"),
    ("ha", "Hausa", "Hausa", "hau_Latn", "ha", "ha"),
    ("he", "Hebrew", "עברית", "heb_Hebr", "he", "he"),
    ("hi", "Hindi", "हिन्दी", "hin_Deva", "hi", "hi"),
    ("hr", "Croatian", "Hrvatski", "hrv_Latn", "hr", "hr"),
    ("hu", "Hungarian", "Magyar", "hun_Latn", "hu", "hu"),
    ("hy", "Armenian", "Հայերեն", "hye_Armn", "hy", "hy"),
    ("id", "Indonesian", "Bahasa Indonesia", "ind_Latn", "id", "id"),
    ("is", "Icelandic", "Íslenska", "isl_Latn", "is", "is"),
    ("it", "Italian", "Italiano", "ita_Latn", "it", "it"),
    ("ja", "Japanese", "日本語", "jpn_Jpan", "ja", "ja"),
    ("jv", "Javanese", "Basa Jawa", "jav_Latn", "jv", "jv"),
    ("ka", "Georgian", "ქართული", "kat_Geor", "ka", "ka"),
    ("kk", "Kazakh", "Қазақ тілі", "kaz_Cyrl", "kk", "kk"),
    ("km", "Khmer", "ខ្មែរ", "khm_Khmr", "km", "km"),
    ("kn", "Kannada", "ಕನ್ನಡ", "kan_Knda", "kn", "kn"),
    ("ko", "Korean", "한국어", "kor_Hang", "ko", "ko"),
    ("lo", "Lao", "ລາວ", "lao_Laoo", "lo", "lo"),
    ("lt", "Lithuanian", "Lietuvių", "lit_Latn", "lt", "lt"),
    ("lv", "Latvian", "Latviešu", "lvs_Latn", "lv", "lv"),
    ("mk", "Macedonian", "Македонски", "mkd_Cyrl", "mk", "mk"),
    ("ml", "Malayalam", "മലയാളം", "mal_Mlym", "ml", "ml"),
    ("mn", "Mongolian", "Монгол", "khk_Cyrl", "mn", "mn"),
    ("mr", "Marathi", "मराठी", "mar_Deva", "mr", "mr"),
    ("ms", "Malay", "Bahasa Melayu", "zsm_Latn", "ms", "ms"),
    ("my", "Burmese", "မြန်မာ", "mya_Mymr", "my", "my"),
    ("ne", "Nepali", "नेपाली", "npi_Deva", "ne", "ne"),
    ("nl", "Dutch", "Nederlands", "nld_Latn", "nl", "nl"),
    ("no", "Norwegian", "Norsk", "nob_Latn", "no", "no"),
    ("pa", "Punjabi", "ਪੰਜਾਬੀ", "pan_Guru", "pa", "pa"),
    ("pl", "Polish", "Polski", "pol_Latn", "pl", "pl"),
    ("ps", "Pashto", "پښتو", "pbt_Arab", "ps", "ps"),
    ("pt", "Portuguese", "Português", "por_Latn", "pt", "pt"),
    ("ro", "Romanian", "Română", "ron_Latn", "ro", "ro"),
    ("ru", "Russian", "Русский", "rus_Cyrl", "ru", "ru"),
    ("si", "Sinhala", "සිංහල", "sin_Sinh", "si", "si"),
    ("sk", "Slovak", "Slovenčina", "slk_Latn", "sk", "sk"),
    ("sl", "Slovenian", "Slovenščina", "slv_Latn", "sl", "sl"),
    ("so", "Somali", "Soomaali", "som_Latn", "so", "so"),
    ("sq", "Albanian", "Shqip", "als_Latn", "sq", "sq"),
    ("sr", "Serbian", "Српски", "srp_Cyrl", "sr", "sr"),
    ("sv", "Swedish", "Svenska", "swe_Latn", "sv", "sv"),
    ("sw", "Swahili", "Kiswahili", "swh_Latn", "sw", "sw"),
    ("ta", "Tamil", "தமிழ்", "tam_Taml", "ta", "ta"),
    ("te", "Telugu", "తెలుగు", "tel_Telu", None, "te"),
    ("th", "Thai", "ไทย", "tha_Thai", "th", "th"),
    ("tl", "Tagalog", "Tagalog", "tgl_Latn", "tl", "tl"),
    ("tr", "Turkish", "Türkçe", "tur_Latn", "tr", "tr"),
    ("uk", "Ukrainian", "Українська", "ukr_Cyrl", "uk", "uk"),
    ("ur", "Urdu", "اردو", "urd_Arab", "ur", "ur"),
    ("uz", "Uzbek", "Oʻzbekcha", "uzn_Latn", "uz", "uz"),  # noqa: RUF001
    ("vi", "Vietnamese", "Tiếng Việt", "vie_Latn", "vi", "vi"),
    ("xh", "Xhosa", "isiXhosa", "xho_Latn", "xh", "xh"),
    ("yo", "Yoruba", "Yorùbá", "yor_Latn", "yo", "yo"),
    ("zh-Hans", "Chinese (Simplified)", "简体中文", "zho_Hans", "zh", "zh"),
    # M2M100 and OPUS-MT have one "zh" that reads both scripts but writes Simplified:
    # see _SOURCE_ONLY.
    ("zh-Hant", "Chinese (Traditional)", "繁體中文", "zho_Hant", "zh", "zh"),
    ("zu", "Zulu", "isiZulu", "zul_Latn", "zu", "zu"),
)

LANGUAGES: dict[str, LanguageInfo] = {row[0]: LanguageInfo(*row) for row in _ROWS}

# (scheme, tag) pairs a model family can read but not write.
_SOURCE_ONLY = frozenset({("m2m100", "zh-Hant"), ("marian", "zh-Hant")})

_BY_THREE = {info.nllb.split("_")[0]: tag for tag, info in LANGUAGES.items() if "-" not in tag}
_BY_THREE["zho"] = "zh"
_DEFAULT_SCRIPT = {tag: info.nllb.split("_")[1] for tag, info in LANGUAGES.items()}


def _fold(name: str) -> str:
    """Case, accents and brackets ignored: ``Español`` and ``espanol`` are one name."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("(", " ").replace(")", " ").split())


_BY_NAME: dict[str, str] = {}
for _tag, _info in LANGUAGES.items():
    for _name in (_info.english, _info.native):
        _BY_NAME.setdefault(_fold(_name), _tag)
_BY_NAME.update({"chinese": "zh-Hans", "中文": "zh-Hans", "farsi": "fa", "filipino": "tl"})


# Every ISO 639-1 code: with the table's languages, the 2-letter codes that are known. A
# config file's "sp" or "xx" is well-formed, but a typo that would turn a language off
# (the audit's operator wrote "sp" for Spanish), so 2-letter codes are checked strictly.
_ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu "
    "cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he "
    "hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko "
    "kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd "
    "ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se "
    "sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty "
    "ug uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)
_KNOWN = _ISO_639_1 | {primary_subtag(tag) for tag in LANGUAGES}

# 3-letter codes are not checked against a list: ISO 639-3 has about 7,900 of them and
# real, widely used ones (yue, ceb, ckb, haw, nan...) have no 2-letter code, so any
# well-formed one is a language except these, which name none: undetermined, multiple,
# uncoded, no linguistic content, and the private-use range qaa-qtz.
_NOT_LANGUAGES = frozenset({"und", "mul", "mis", "zxx"})

# Deprecated 2-letter codes with no single replacement, and what to write instead.
_SPLIT_CODES = {"sh": "Serbo-Croatian was split: use 'sr', 'hr' or 'bs'"}


def _is_private_use(code: str) -> bool:
    return len(code) == 3 and "qaa" <= code <= "qtz"


def is_known_language(tag: str | None) -> bool:
    """Whether ``tag`` is a well-formed tag of a real language: a 2-letter code must be
    an ISO 639-1 code; a 3-letter one must not be a special or private-use code."""
    if tag is None:
        return False
    try:
        code = primary_subtag(normalize_tag(tag))
    except InvalidLanguageTag:
        return False
    if len(code) == 2:
        return code in _KNOWN
    return code not in _NOT_LANGUAGES and not _is_private_use(code)


def known_tag(value: str) -> str:
    """``normalize_tag(value)`` for a config value, which must name a known language.

    Raises:
        InvalidLanguageTag: ``value`` is no tag, or names no known language; the
            message suggests the one language whose English name starts with
            ``value`` ("sp": "es"), if there is exactly one.
    """
    tag = normalize_tag(value)
    if is_known_language(tag):
        return tag
    raise InvalidLanguageTag(f"{value!r} is not a known language{_hint(primary_subtag(tag))}")


def _hint(code: str) -> str:
    if code in _SPLIT_CODES:
        return f" ({_SPLIT_CODES[code]})"
    # Only English names: a code is Latin letters, and endonyms gave bad hints (the
    # deprecated "sh" matched Albanian's "Shqip"). Only 2-letter codes: a 3-letter code
    # that is refused is special or private use, not a misspelt name.
    if len(code) != 2:
        return ""
    near = {tag for tag, info in LANGUAGES.items() if _fold(info.english).startswith(code)}
    return f" (did you mean {near.pop()!r}?)" if len(near) == 1 else ""


def language_for_three_letter_code(code: str) -> str | None:
    """The 2-letter tag for an ISO 639-3 code of the table (``spa`` → ``es``), or None."""
    return _BY_THREE.get(code.lower())


def default_script(language: str) -> str | None:
    """The usual script of a language subtag (``ru`` → ``Cyrl``), or None if unknown."""
    return _DEFAULT_SCRIPT.get(language)


def language_info(tag: str) -> LanguageInfo | None:
    """The table row for ``tag`` (any form ``normalize_tag`` accepts), or None.

    A region is ignored (``pt-BR`` finds Portuguese); a script other than the usual one
    is not (``sr-Latn`` is not in the table).
    """
    try:
        norm = normalize_tag(tag)
    except InvalidLanguageTag:
        return None
    if norm in LANGUAGES:
        return LANGUAGES[norm]
    parts = norm.split("-")
    with_script = "-".join(parts[:2])
    if with_script in LANGUAGES:
        return LANGUAGES[with_script]
    if len(parts) > 1 and len(parts[1]) == 4 and parts[1].isalpha():
        return None  # an unusual script: not the language the table row describes
    return LANGUAGES.get(primary_subtag(norm))


def english_name(tag: str) -> str:
    """A readable English name (``es`` → ``Spanish``; unknown tags name themselves)."""
    info = language_info(tag)
    return info.english if info is not None else tag


def find_language(text: str) -> str | None:
    """A language from what a customer typed: a tag (``es``, ``pt-BR``) or a name in
    English or in the language itself (``spanish``, ``Español``). Returns the
    normalized tag (keeping a given region), or None when nothing matches."""
    folded = _fold(text)
    if not folded:
        return None
    if folded in _BY_NAME:
        return _BY_NAME[folded]
    try:
        norm = normalize_tag(text)
    except InvalidLanguageTag:
        return None
    return norm if language_info(norm) is not None else None


def model_code(tag: str, scheme: CodeScheme, *, role: Literal["source", "target"]) -> str:
    """The code model family ``scheme`` uses for ``tag`` as the source or target language.

    Raises:
        TranslationError: the family has no code for this language (in this role).
    """
    info = language_info(tag)
    code = None if info is None else getattr(info, scheme)
    if info is not None and role == "target" and (scheme, info.tag) in _SOURCE_ONLY:
        code = None
    if code is None:
        raise TranslationError(f"{scheme} models have no code for language {tag!r} as {role}")
    return str(code)


def marian_model_name(source: str, target: str, *, org: str = "Helsinki-NLP") -> str:
    """The hub name of the OPUS-MT model for a pair, by the project's naming convention
    (``es``, ``en`` → ``Helsinki-NLP/opus-mt-es-en``); whether it exists is the hub's
    business.

    Raises:
        TranslationError: a language has no OPUS-MT code.
    """
    src = model_code(source, "marian", role="source")
    tgt = model_code(target, "marian", role="target")
    return f"{org}/opus-mt-{src}-{tgt}"
