"""Detection (deterministic, script-aware) and the sticky-language rule."""

from __future__ import annotations

import random
import unicodedata

import pytest

from botkit.errors import ConfigError
from botkit.language import (
    DetectorSettings,
    LangdetectDetector,
    LanguageGuess,
    NullDetector,
    count_letters,
    create_detector,
    decide_language,
    detection_text,
)
from botkit.language import detect as detect_module
from botkit.language.detect import Answers

RULES = DetectorSettings()

SAMPLES = {
    "en": "Hello, I would like to know where my order is. It has not arrived yet.",
    "es": "Hola, quisiera saber dónde está mi pedido. Todavía no ha llegado.",
    "fr": "Bonjour, je voudrais savoir où en est ma commande. Elle n'est pas arrivée.",
    "de": "Hallo, ich möchte wissen, wo meine Bestellung ist. Sie ist noch nicht da.",
    "zh-Hans": "你好，我想知道我的订单在哪里。它还没有到。",  # noqa: RUF001
    "ar": "مرحبا، أود أن أعرف أين طلبي. لم يصل بعد.",
}


@pytest.fixture(scope="module")
def detector() -> LangdetectDetector:
    found = LangdetectDetector(seed=0)
    found.load()
    return found


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_detects_clear_sentences(detector: LangdetectDetector, language: str) -> None:
    guesses = detector.detect(SAMPLES[language])
    assert guesses[0].language == language
    assert guesses[0].probability > 0.9


def test_detection_is_deterministic_and_leaves_the_global_seed_alone(
    detector: LangdetectDetector,
) -> None:
    from langdetect import DetectorFactory

    before = DetectorFactory.seed
    # Short mixed text is where langdetect's sampling shows: several languages are close.
    text = "ok merci gracias danke"
    first = detector.detect(text)
    assert len(first) >= 1
    for _ in range(5):
        assert detector.detect(text) == first
        assert LangdetectDetector(seed=0).detect(text) == first
    assert DetectorFactory.seed == before


def test_seed_changes_sampling(detector: LangdetectDetector) -> None:
    text = "ok merci gracias danke"
    results = {tuple(LangdetectDetector(seed=s).detect(text)) for s in range(6)}
    assert len(results) > 1  # proves the seed reaches the sampler (so 0 pins it)


@pytest.mark.parametrize("text", ["12345", "😀👍", "", "   ", "#4521 !!!", "\x00\x01"])
def test_no_letters_no_guess(detector: LangdetectDetector, text: str) -> None:
    assert detector.detect(text) == []


def test_cjk_guesses_must_match_the_script(detector: LangdetectDetector) -> None:
    for guess in detector.detect("我的订单在哪里"):
        assert guess.language.startswith("zh")
    assert detector.detect("주문이 어디에 있나요")[0].language == "ko"
    assert detector.detect("注文はどこですか")[0].language == "ja"
    # A guess the script rules out is dropped and the rest renormalized.
    kept = detect_module._script_consistent(
        [LanguageGuess("ko", 0.6), LanguageGuess("zh-Hans", 0.3)], "我的订单"
    )
    assert kept == [LanguageGuess("zh-Hans", 1.0)]


def test_long_hostile_text_is_capped(detector: LangdetectDetector) -> None:
    assert detector.detect("a" * 100_000)  # examines max_chars only; no error
    assert detector.detect("\u202e" * 4000) == []


def test_create_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(create_detector("none"), NullDetector)
    assert isinstance(create_detector("auto"), LangdetectDetector)
    monkeypatch.setattr(detect_module, "langdetect_available", lambda: False)
    assert isinstance(create_detector("auto"), NullDetector)
    with pytest.raises(ConfigError, match=r"language\.detector\.kind: langdetect is not installed"):
        create_detector("langdetect")


def test_count_letters() -> None:
    assert count_letters("ok") == 2
    assert count_letters("thanks!") == 6
    assert count_letters("ORD-2024-0042 👍 !!") == 3
    assert count_letters("我的订单") == 12  # CJK counts 3
    assert count_letters("") == 0


def test_count_letters_matches_its_definition_on_random_text() -> None:
    """The fast count equals the rule spelled out: every letter counts 1, a letter in
    the Han/kana/Hangul blocks 3, a vowel sign or virama of U+0900-U+0DFF (not a nukta)
    in a run of them after a letter of that block 1 (edges of each block, non-letters
    inside them, emoji, surrogates and control characters included)."""
    cjk = ((0x1100, 0x11FF), (0x3040, 0x30FF), (0x3130, 0x318F), (0x3400, 0x4DBF),
           (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF))  # fmt: skip

    def indic_mark(c: str) -> bool:
        return (
            "\u0900" <= c <= "\u0dff"
            and unicodedata.category(c) in ("Mn", "Mc")
            and "NUKTA" not in unicodedata.name(c, "")
        )

    def spelled_out(text: str) -> int:
        total, after_letter = 0, False
        for c in text:
            if c.isalpha():
                total += 3 if any(lo <= ord(c) <= hi for lo, hi in cjk) else 1
                after_letter = "\u0900" <= c <= "\u0dff"
            elif indic_mark(c) and after_letter:
                total += 1
            else:
                after_letter = False
        return total

    rng = random.Random(3)
    edges = [cp for lo, hi in cjk for cp in (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1)]
    indic = [0x8FF, 0x900, 0x915, 0x93C, 0x93E, 0x94D, 0x9BC, 0xB95, 0xBCD, 0xDCA, 0xDFF,
             0xE00, 0xE31, 0x301, 0x302]  # fmt: skip
    pool = [*edges, *indic, *indic, 0x30FB, 0x3000, 0x1F44D, 0xD800, 0x0, 0x41, 0xE9, 0x0416,
            0x10FFFF]  # fmt: skip
    for _ in range(300):
        text = "".join(
            chr(rng.choice(pool) if rng.random() < 0.5 else rng.randrange(0x110000))
            for _ in range(rng.randrange(0, 40))
        )
        assert count_letters(text) == spelled_out(text), ascii(text)


@pytest.mark.parametrize(
    ("text", "letters", "transliterated"),
    [
        ("मेरा ऑर्डर कहाँ है?", 15, "mera order kahan hai"),  # Hindi: 9 before the fix
        ("मुझे अपना ऑर्डर रद्द करना है", 23, "mujhe apna order radd karna hai"),
        ("என் ஆர்டர் எங்கே?", 14, "en ardar enke"),  # Tamil: 9
        ("আমার অর্ডার কোথায়?", 15, "amar ordar kothay"),  # Bengali: 10
    ],
)
def test_indic_vowel_signs_and_viramas_count(text: str, letters: int, transliterated: str) -> None:
    """A sentence in an Indic script counts about what its Latin transliteration does,
    enough for a new conversation's ``min_letters`` (12) like "Where is my order?" (14)."""
    assert count_letters(text) == letters
    assert abs(letters - count_letters(transliterated)) <= 3
    assert letters >= RULES.min_letters


def test_combining_accents_count_as_their_precomposed_letters() -> None:
    # An accent typed as a combining mark adds nothing: "é" is one letter however it is
    # encoded (macOS and some keyboards send decomposed text).
    assert count_letters("e\u0301te\u0301") == count_letters("été") == 3
    assert count_letters("Vie\u0302\u0323t") == count_letters("Việt") == 4
    assert count_letters("n\u0303") == 1
    # A nukta makes another consonant, not another letter: precomposed or not, one.
    assert count_letters("\u092f\u093c") == count_letters("\u095f") == 1
    # Indic marks count only after a letter of their scripts: not alone, not after Latin.
    assert count_letters(" \u093e\u093f") == 0
    assert count_letters("a\u093f") == 1


def guess(*pairs: tuple[str, float]) -> list[LanguageGuess]:
    return [LanguageGuess(language, p) for language, p in pairs]


def decide(text: str, guesses: list[LanguageGuess], **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {"current": None, "seed": None, "working": "en", "settings": RULES}
    args.update(kw)
    return decide_language(guesses=guesses, letters=count_letters(text), **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["ok", "thanks!", "Merci!", "ORD-2024-0042", "👍", "12345", "sí"])
def test_short_messages_keep_the_conversation_language(text: str) -> None:
    # Even a detector that is certain (langdetect calls "ok" Slovak at p=0.99999).
    decision = decide(text, guess(("sk", 0.99999)), current="es")
    assert (decision.language, decision.detected, decision.reason) == ("es", None, "short")


def test_ambiguous_detection_keeps_the_language() -> None:
    text = "this is long enough to be considered"
    low = decide(text, guess(("fr", 0.7), ("en", 0.3)), current="de")
    assert (low.language, low.reason) == ("de", "ambiguous")
    close = decide(text, guess(("fr", 0.91), ("it", 0.45)), current="de")
    assert close.reason == "ambiguous"
    nothing = decide(text, [], current="de")
    assert (nothing.language, nothing.reason) == ("de", "ambiguous")


def test_clear_detection_switches() -> None:
    decision = decide(SAMPLES["fr"], guess(("fr", 0.99)), current="es")
    assert (decision.language, decision.detected, decision.reason) == ("fr", "fr", "detected")


def test_more_specific_known_tag_is_kept() -> None:
    text = SAMPLES["es"]
    assert decide(text, guess(("pt", 0.99)), current="pt-BR").language == "pt-BR"
    assert decide(text, guess(("pt", 0.99)), seed="pt-PT").language == "pt-PT"
    assert decide(text, guess(("en", 0.99)), working="en-GB", current="es").language == "en-GB"


def test_new_conversation_starts_from_seed_then_working_language() -> None:
    assert decide("ok", guess(("sk", 0.99)), seed="fr").language == "fr"
    assert decide("ok", guess(("sk", 0.99))).language == "en"
    # A clear first message beats the hint.
    assert decide(SAMPLES["de"], guess(("de", 0.99)), seed="fr").language == "de"


def test_a_seed_is_used_but_not_settled() -> None:
    """A hint or a remembered preference answers the message but is no evidence: only a
    trusted detection gives a new conversation its language (``fallback`` False)."""
    seeded = decide("Hola", guess(("es", 0.99)), seed="en")
    assert (seeded.language, seeded.reason, seeded.fallback) == ("en", "short", True)
    unclear = decide(SAMPLES["es"], guess(("es", 0.6), ("pt", 0.4)), seed="en")
    assert (unclear.language, unclear.reason, unclear.fallback) == ("en", "ambiguous", True)
    detected = decide(SAMPLES["es"], guess(("es", 0.99)), seed="en")
    assert (detected.language, detected.fallback) == ("es", False)
    # A conversation's own language is kept, not a fallback, as before.
    kept = decide("ok", guess(("sk", 0.99)), current="es", seed=None)
    assert (kept.language, kept.fallback) == ("es", False)


def test_unlisted_languages_do_not_switch() -> None:
    text = "aaaa aaaa aaaa aaaa aaaa"  # langdetect: Somali; long enough to switch
    decision = decide(text, guess(("so", 0.99)), current="es", allowed=("es", "fr"))
    assert (decision.language, decision.reason) == ("es", "unlisted")
    # The working language is always allowed.
    assert (
        decide(SAMPLES["en"], guess(("en", 0.99)), current="es", allowed=("es",)).language == "en"
    )
    # The filter runs before the confidence check; a guess mostly outside the list is
    # no detection of a listed language.
    filtered = decide(text, guess(("so", 0.6), ("fr", 0.4)), current="es", allowed=("fr",))
    assert filtered.reason == "unlisted"


def test_detection_ignores_protected_spans(detector: LangdetectDetector) -> None:
    text = "see https://example.com/der/die/das and `git commit -m 'the fix'` ORD-12345"
    stripped = detection_text(text)
    assert "example" not in stripped and "commit" not in stripped and "12345" not in stripped
    assert count_letters(stripped) < RULES.min_letters


def test_answers_are_remembered_per_text_and_bounded() -> None:
    detector = LangdetectDetector(seed=0)
    text = "Bonjour, je voudrais suivre ma commande s'il vous plaît."
    assert detector.cached(text) is None  # never seen: the caller must run detect
    first = detector.detect(text)
    assert first and first[0].language == "fr"
    assert detector.cached(text) == first  # now answered without running langdetect
    assert detector.detect(text) == first
    assert (detector.answers.hits, detector.answers.misses) == (2, 1)
    small = Answers(3)
    for n in range(10):
        small.put(f"text {n}", (LanguageGuess("en", 1.0),))
    assert len(small) == 3 and small.get("text 0") is None and small.get("text 9")
    small.clear()
    assert len(small) == 0 and small.hits == small.misses == 0


def test_a_hostile_text_is_remembered_by_its_examined_prefix_only() -> None:
    """A megabyte message costs one entry of at most ``max_chars`` characters."""
    detector = LangdetectDetector(seed=0, max_chars=50)
    huge = "Where is my parcel? " * 50_000
    guesses = detector.detect(huge)
    assert guesses and guesses[0].language == "en"
    assert detector.cached(huge[:50] + "different tail") == guesses
    assert len(detector.answers) == 1
