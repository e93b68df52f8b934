"""Detection accuracy, the sticky-language rule and protected spans on real messages.

The messages are ``tests/data/customer_service_parallel.jsonl`` (64 customer-service
messages in 10 languages; see ``tests/data/README.md``). Text reaches the detector the
way the language middleware sends it: protected spans (URLs, e-mail addresses, ids)
removed by ``detection_text``, letters counted by ``count_letters``, the default
detector with its default seed, the default ``DetectorSettings``.

Issue 6's target: at least 97% of messages of 20+ characters detected correctly, with the
sticky rule handling shorter ones. ``pytest -s`` prints the per-language table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from botkit.language import (
    DetectorSettings,
    LanguageDecision,
    LanguageDetector,
    LanguageGuess,
    count_letters,
    create_detector,
    decide_language,
    detection_text,
    normalize_tag,
    protect,
    restore,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "customer_service_parallel.jsonl"
RULES = DetectorSettings()
LONG = 20  # characters: the line between "detect it" and "the sticky rule decides"
TARGET = 0.97  # issue 6, on messages of LONG+ characters, all languages together
# Each language on its own, so that one language collapsing cannot hide behind nine good
# ones (with ~55 messages a language, one miss is 1.8 points; zh-Hans has 30).
FLOOR = 0.95
REQUIRED = {"en", "es", "fr", "de", "zh-Hans", "ar"}  # issue 6's six, 50+ messages each


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    lang: str
    text: str
    keep: tuple[str, ...]


def load_samples(path: Path = DATA) -> list[Sample]:
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(line)
        assert set(record) <= {"id", "lang", "text", "keep"}, f"line {number}: {record}"
        samples.append(
            Sample(record["id"], record["lang"], record["text"], tuple(record.get("keep", ())))
        )
    return samples


SAMPLES = load_samples()


def by_language(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        found[sample.lang].append(sample)
    return dict(sorted(found.items()))


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    # What a bot with the default [language.detector] section gets (langdetect, seed 0).
    found = create_detector(RULES.kind, seed=RULES.seed, max_chars=RULES.max_chars)
    assert found.name == "langdetect", "langdetect must be installed for this test"
    return found


def pipeline_decision(
    detector: LanguageDetector, text: str, *, current: str | None
) -> tuple[LanguageDecision, list[LanguageGuess]]:
    """The language middleware's steps (``LanguageDetectionMiddleware.decide``) for a
    conversation in ``current`` (None: a new one) with working language English."""
    seen = detection_text(text[: RULES.max_chars * 2])
    letters = count_letters(seen)
    guesses = detector.detect(seen) if letters >= RULES.min_letters else []
    decision = decide_language(
        guesses=guesses, letters=letters, current=current, seed=None, working="en", settings=RULES
    )
    return decision, guesses


def other_language(lang: str) -> str:
    return "fr" if lang == "en" else "en"


# --- the data set itself ------------------------------------------------------------


def test_the_data_set_is_parallel_and_as_documented() -> None:
    languages = by_language(SAMPLES)
    assert REQUIRED <= set(languages)
    assert all(normalize_tag(lang) == lang for lang in languages)
    assert len({(s.id, s.lang) for s in SAMPLES}) == len(SAMPLES), "an (id, lang) twice"
    ids = {s.id for s in SAMPLES}
    for lang, samples in languages.items():
        assert {s.id for s in samples} == ids, f"{lang} lacks a translation"
        assert len(samples) >= 50
    for sample in SAMPLES:
        assert sample.text == sample.text.strip() and "\n" not in sample.text
        for span in sample.keep:
            assert span in sample.text, (sample.id, sample.lang, span)
    # Each message keeps the same spans in every language.
    keeps = {(s.id, s.keep) for s in SAMPLES}
    assert len(keeps) == len(ids)
    lengths = [len(s.text) for s in SAMPLES]
    assert sum(n < LONG for n in lengths) >= 60  # short replies for the sticky rule
    assert sum(LONG <= n <= 150 for n in lengths) > len(lengths) / 2
    assert sum(1 for s in SAMPLES if any("@" in k for k in s.keep)) >= 30
    assert sum(1 for s in SAMPLES if any("example.com/" in k for k in s.keep)) >= 30


# --- detection accuracy on messages of 20+ characters -------------------------------


def test_detection_accuracy_on_messages_of_20_or_more_characters(
    detector: LanguageDetector,
) -> None:
    rows = []
    misses = []
    total = correct = 0
    for lang, samples in by_language(SAMPLES).items():
        long = [s for s in samples if len(s.text) >= LONG]
        hits = 0
        for sample in long:
            guesses = detector.detect(detection_text(sample.text))
            if guesses and guesses[0].language == lang:
                hits += 1
            else:
                best = [(g.language, round(g.probability, 3)) for g in guesses[:2]]
                misses.append(f"  {lang}: {sample.text!r} -> {best}")
        rows.append((lang, len(long), hits))
        total += len(long)
        correct += hits
    print(f"\nlanguage detection, messages of {LONG}+ characters ({DATA.name})")
    print(f"{'language':<9} {'messages':>8} {'correct':>8} {'accuracy':>9}")
    for lang, n, hits in rows:
        print(f"{lang:<9} {n:>8} {hits:>8} {hits / n:>9.1%}")
    print(f"{'all':<9} {total:>8} {correct:>8} {correct / total:>9.1%}")
    print("misses:", *misses, sep="\n")
    assert correct / total >= TARGET, "\n".join(misses)
    low = [(lang, hits / n) for lang, n, hits in rows if hits / n < FLOOR]
    assert not low, f"below {FLOOR:.0%}: {low}\n" + "\n".join(misses)


def test_long_messages_switch_an_established_conversation(detector: LanguageDetector) -> None:
    """The other side of the sticky rule: it must not make the bot deaf. A 20+ character
    message in another language than the conversation's switches to it; a wrong switch
    (to a third language) is what the customer would notice most."""
    long = [s for s in SAMPLES if len(s.text) >= LONG]
    switched = []
    wrong = []
    for sample in long:
        decision, _ = pipeline_decision(detector, sample.text, current=other_language(sample.lang))
        if decision.language == sample.lang:
            switched.append(sample)
        elif decision.detected is not None:
            wrong.append(f"{sample.lang}: {sample.text!r} -> {decision}")
    print(f"\nswitched {len(switched)}/{len(long)}, wrongly {len(wrong)}", *wrong, sep="\n")
    assert len(switched) / len(long) >= 0.95
    assert not wrong


def test_han_only_text_is_chinese_when_langdetect_says_korean(
    detector: LanguageDetector,
) -> None:
    # langdetect (seed 0) gives this Simplified sentence ko at p=0.99999; the script rules
    # Korean out, and asking again among the languages the script allows decides.
    simplified = "我两周前就把商品寄回去了，什么时候能收到退款？"  # noqa: RUF001
    traditional = "我兩週前就把商品寄回去了，什麼時候能收到退款？"  # noqa: RUF001
    assert detector.detect(simplified)[0].language == "zh-Hans"
    assert detector.detect(traditional)[0].language == "zh-Hant"


# --- the sticky rule on shorter messages --------------------------------------------


def test_short_messages_keep_an_established_conversations_language(
    detector: LanguageDetector,
) -> None:
    short = [s for s in SAMPLES if len(s.text) < LONG]
    flipped = []
    for sample in short:
        decision, guesses = pipeline_decision(detector, sample.text, current=sample.lang)
        if decision.language != sample.lang:
            best = [(g.language, round(g.probability, 5)) for g in guesses[:2]]
            flipped.append(f"{sample.lang}: {sample.text!r} -> {decision.language} {best}")
    print(f"\n{len(short)} messages under {LONG} characters, flipped:", *flipped, sep="\n")
    assert not flipped


def test_switching_needs_more_letters_than_starting() -> None:
    # langdetect on "Gibt's was Neues?" (13 letters): en at p=0.99999.
    certain = [LanguageGuess("en", 0.99999)]

    def decide(letters: int, current: str | None) -> LanguageDecision:
        return decide_language(
            guesses=certain, letters=letters, current=current, seed=None, working="fr",
            settings=RULES,
        )  # fmt: skip

    assert RULES.min_letters < RULES.min_letters_to_switch
    new = decide(RULES.min_letters, None)
    assert (new.language, new.reason) == ("en", "detected")
    kept = decide(RULES.min_letters_to_switch - 1, "de")
    assert (kept.language, kept.detected, kept.reason) == ("de", None, "short")
    switched = decide(RULES.min_letters_to_switch, "de")
    assert (switched.language, switched.reason) == ("en", "detected")
    # min_letters still rules when it is the larger of the two.
    strict = RULES.model_copy(update={"min_letters": 30})
    too_few = decide_language(
        guesses=certain, letters=25, current="de", seed=None, working="fr", settings=strict
    )
    assert too_few.reason == "short"


# --- protected spans ----------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.id}-{s.lang}")
def test_protected_spans_survive_round_trips(sample: Sample) -> None:
    protected = protect(sample.text)
    # An identity "translation" gives the text back exactly.
    assert restore(protected.text, protected) == sample.text
    # Every listed span is one whole protected span, absent from what is translated and
    # from what the detector sees.
    for span in sample.keep:
        assert span in protected.spans, (span, protected.spans)
        assert span not in protected.text
        assert span not in detection_text(sample.text)
    # A translator that spaces the placeholders out ("{ 0 }") changes nothing.
    spaced = protected.text
    for i in range(len(protected.spans)):
        spaced = spaced.replace(f"{{{i}}}", f"{{ {i} }}")
    assert restore(spaced, protected) == sample.text
    # One that moves them (here: to the front, reversed) keeps every span intact.
    moved = protected.text
    for i in range(len(protected.spans)):
        moved = moved.replace(f"{{{i}}}", "")
    moved = " ".join(f"{{{i}}}" for i in reversed(range(len(protected.spans)))) + " " + moved
    restored = restore(moved, protected)
    for span in protected.spans:
        assert span in restored
    # One that drops them all still loses no span: they are appended.
    dropped = restore("translated text", protected)
    for span in sample.keep:
        assert span in dropped


# Arabic comma, semicolon, question mark, full stop.
@pytest.mark.parametrize("mark", ["\u060c", "\u061b", "\u061f", "\u06d4"])
def test_arabic_punctuation_after_a_url_is_not_part_of_it(mark: str) -> None:
    text = f"تحققت من https://www.example.com/stores{mark} لكن الصفحة فارغة"
    protected = protect(text)
    assert protected.spans == ("https://www.example.com/stores",)
    assert restore(protected.text, protected) == text
