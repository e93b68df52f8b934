"""BCP-47 tags -> model language codes, and the special tokens each family adds."""

from __future__ import annotations

import pytest

from engine.translation.languages import (
    LanguageTag,
    M2M100Scheme,
    MarianScheme,
    NllbScheme,
    PairPlan,
)

NLLB_CODES = {
    c: i
    for i, c in enumerate(
        [
            "eng_Latn",
            "spa_Latn",
            "fra_Latn",
            "deu_Latn",
            "zho_Hans",
            "zho_Hant",
            "arb_Arab",
            "srp_Cyrl",
            "nob_Latn",
            "pes_Arab",
            "por_Latn",
        ],
        start=100,
    )
}
M2M_CODES = {
    c: i for i, c in enumerate(["en", "es", "fr", "de", "zh", "ar", "no", "tl", "he"], start=200)
}


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("es", LanguageTag("es")),
        ("pt-BR", LanguageTag("pt", None, "BR")),
        ("zh_Hant_TW", LanguageTag("zh", "Hant", "TW")),
        ("zh-TW", LanguageTag("zh", "Hant", "TW")),
        ("ZH-cn", LanguageTag("zh", "Hans", "CN")),
        ("sr-latn", LanguageTag("sr", "Latn")),
        ("es-419", LanguageTag("es", None, "419")),
    ],
)
def test_parse_tags(tag: str, parsed: LanguageTag) -> None:
    assert LanguageTag.parse(tag) == parsed


@pytest.mark.parametrize("bad", ["", "e", "english!", "x" * 40, "12", "es--", "日本"])
def test_malformed_tags_are_rejected(bad: str) -> None:
    assert LanguageTag.parse(bad) is None


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("es", "spa_Latn"),
        ("es-MX", "spa_Latn"),
        ("zh", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("zh-Hant", "zho_Hant"),
        ("ar", "arb_Arab"),
        ("nb", "nob_Latn"),
        ("no", "nob_Latn"),
        ("fa", "pes_Arab"),
        ("sr", "srp_Cyrl"),
        ("spa_Latn", "spa_Latn"),
        ("pt-BR", "por_Latn"),
    ],
)
def test_nllb_codes(tag: str, code: str) -> None:
    scheme = NllbScheme(NLLB_CODES, eos_id=2, legacy=False)
    assert scheme.code(tag, LanguageTag.parse(tag), True) == code


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("es", "es"),
        ("es-ES", "es"),
        ("zh-Hant", "zh"),
        ("nb", "no"),
        ("fil", "tl"),
        ("iw", "he"),
        ("en", "en"),
    ],
)
def test_m2m100_codes(tag: str, code: str) -> None:
    scheme = M2M100Scheme(M2M_CODES, eos_id=2)
    assert scheme.code(tag, LanguageTag.parse(tag), True) == code


def test_nllb_plan_prefix_and_forced_target() -> None:
    plan = NllbScheme(NLLB_CODES, eos_id=2, legacy=False).plan("en", "es-MX")
    assert plan == PairPlan(False, (100,), (2,), 101, "eng_Latn", "spa_Latn")
    legacy = NllbScheme(NLLB_CODES, eos_id=2, legacy=True).plan("en", "es")
    assert isinstance(legacy, PairPlan)
    assert (legacy.prefix_ids, legacy.suffix_ids, legacy.forced_bos_id) == ((), (2, 100), 101)


def test_m2m100_plan() -> None:
    plan = M2M100Scheme(M2M_CODES, eos_id=2).plan("fr", "de")
    assert plan == PairPlan(False, (202,), (2,), 203, "fr", "de")


def test_unsupported_languages_say_why() -> None:
    scheme = M2M100Scheme(M2M_CODES, eos_id=2)
    reason = scheme.plan("en", "tlh")
    assert isinstance(reason, str) and "target language 'tlh'" in reason
    reason = scheme.plan("not a tag", "en")
    assert isinstance(reason, str) and "source language" in reason


@pytest.mark.parametrize(("src", "tgt"), [("en", "en"), ("zh-CN", "zh"), ("es-MX", "es-ES")])
def test_same_language_is_identity(src: str, tgt: str) -> None:
    plan = NllbScheme(NLLB_CODES, eos_id=2, legacy=False).plan(src, tgt)
    assert isinstance(plan, PairPlan) and plan.identity


def test_traditional_and_simplified_chinese_differ_on_nllb() -> None:
    plan = NllbScheme(NLLB_CODES, eos_id=2, legacy=False).plan("zh-TW", "zh-CN")
    assert isinstance(plan, PairPlan) and not plan.identity
    assert (plan.source_code, plan.target_code) == ("zho_Hant", "zho_Hans")


def test_marian_pair_and_multi_target_tokens() -> None:
    pair = MarianScheme(frozenset({"en"}), frozenset({"de"}), {}, eos_id=0)
    plan = pair.plan("en-GB", "de")
    assert plan == PairPlan(False, (), (0,), None, "en", "de")
    assert isinstance(pair.plan("en", "fr"), str)
    assert isinstance(pair.plan("fr", "de"), str)
    # OPUS-MT multi-target models select the target with a >>code<< token (639-1 or -3).
    multi = MarianScheme(
        frozenset({"en"}), frozenset({"romance"}), {"es": 7, "fra": 8, "cmn_Hant": 9}, eos_id=0
    )
    assert multi.plan("en", "es") == PairPlan(False, (7,), (0,), None, "en", "es")
    plan_fr = multi.plan("en", "fr")
    assert isinstance(plan_fr, PairPlan) and plan_fr.prefix_ids == (8,)
    plan_zh = multi.plan("en", "zh-TW")
    assert isinstance(plan_zh, PairPlan) and plan_zh.prefix_ids == (9,)
    assert isinstance(multi.plan("en", "de"), str)


def test_marian_group_source_accepts_any_language() -> None:
    scheme = MarianScheme(frozenset(), frozenset({"en"}), {}, eos_id=0)
    plan = scheme.plan("ja", "en")
    assert isinstance(plan, PairPlan) and plan.source_code == "*"


def test_marian_regional_target_tokens() -> None:
    scheme = MarianScheme(frozenset({"en"}), frozenset(), {"pt": 5, "pt_BR": 6}, eos_id=0)
    assert scheme.plan("en", "pt-BR") == PairPlan(False, (6,), (0,), None, "en", "pt_BR")
    assert scheme.plan("en", "pt-PT") == PairPlan(False, (5,), (0,), None, "en", "pt")
