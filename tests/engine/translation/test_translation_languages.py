"""BCP-47 tags -> model language codes, and the special tokens each family adds."""

from __future__ import annotations

from pathlib import Path

import pytest
from seq2seq_tiny import build_m2m100, build_marian, build_nllb

from engine.translation import AsyncTranslator, TranslationEngine, UnsupportedLanguagePairError
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


# --------------------------------------------------------------- scripts of a target
# M2M100's and OPUS-MT's "zh" reads both Chinese scripts but writes Simplified: a
# Traditional target on them would answer zh-TW customers in Simplified, so it is refused
# (and the startup pair check names it); NLLB writes Traditional with zho_Hant.
TRADITIONAL = ["zh-Hant", "zh-TW", "zh-HK", "zh-MO", "zh-Hant-TW", "zh_Hant"]
SIMPLIFIED = ["zh", "zh-Hans", "zh-CN", "zh-SG"]


@pytest.mark.parametrize("target", TRADITIONAL)
def test_m2m100_refuses_to_write_traditional_chinese(target: str) -> None:
    scheme = M2M100Scheme(M2M_CODES, eos_id=2)
    reason = scheme.plan("en", target)
    assert isinstance(reason, str)
    assert f"target language {target!r} is written in Hant script" in reason
    assert "('zh') writes Hans" in reason
    # Read as a source it stays what it was: the one "zh" code.
    plan = scheme.plan(target, "en")
    assert isinstance(plan, PairPlan) and plan.source_code == "zh"


@pytest.mark.parametrize("target", SIMPLIFIED)
def test_simplified_chinese_targets_work_on_every_scheme(target: str) -> None:
    m2m = M2M100Scheme(M2M_CODES, eos_id=2).plan("en", target)
    assert isinstance(m2m, PairPlan) and m2m.target_code == "zh"
    nllb = NllbScheme(NLLB_CODES, eos_id=2, legacy=False).plan("en", target)
    assert isinstance(nllb, PairPlan) and nllb.target_code == "zho_Hans"
    marian = MarianScheme(frozenset({"en"}), frozenset({"zh"}), {}, eos_id=0).plan("en", target)
    assert isinstance(marian, PairPlan) and marian.target_code == "zh"


@pytest.mark.parametrize("target", TRADITIONAL)
def test_nllb_writes_traditional_only_with_zho_hant(target: str) -> None:
    plan = NllbScheme(NLLB_CODES, eos_id=2, legacy=False).plan("en", target)
    assert isinstance(plan, PairPlan) and plan.target_code == "zho_Hant"
    assert plan.forced_bos_id == NLLB_CODES["zho_Hant"]
    # A checkpoint without zho_Hant must not fall back to zho_Hans.
    without = {c: i for c, i in NLLB_CODES.items() if c != "zho_Hant"}
    reason = NllbScheme(without, eos_id=2, legacy=False).plan("en", target)
    assert isinstance(reason, str) and "('zho_Hans') writes Hans" in reason


def test_marian_zh_writes_simplified_and_script_tokens_come_first() -> None:
    single = MarianScheme(frozenset({"en"}), frozenset({"zh"}), {}, eos_id=0)
    assert isinstance(single.plan("en", "zh-TW"), str)
    assert isinstance(single.plan("en", "zh-Hant"), str)
    reverse = MarianScheme(frozenset({"zh"}), frozenset({"en"}), {}, eos_id=0)
    plan = reverse.plan("zh-TW", "en")
    assert isinstance(plan, PairPlan) and plan.source_code == "zh"
    # opus-mt-en-zh has ">>zh<<"-like bare tokens next to scripted ones: the bare one
    # came first and wrote Simplified for zh-TW.
    multi = MarianScheme(
        frozenset({"en"}), frozenset({"zh"}), {"zh": 3, "zho_Hans": 4, "zho_Hant": 5}, eos_id=0
    )
    for tag in TRADITIONAL:
        assert multi.plan("en", tag) == PairPlan(False, (5,), (0,), None, "en", "zho_Hant")
    assert multi.plan("en", "zh") == PairPlan(False, (3,), (0,), None, "en", "zh")
    assert multi.plan("en", "zh-Hans") == PairPlan(False, (4,), (0,), None, "en", "zho_Hans")


@pytest.mark.parametrize(
    ("target", "script"),
    [("sr-Latn", "Latn"), ("uz-Cyrl", "Cyrl"), ("pa-Arab", "Arab"), ("az-Cyrl", "Cyrl")],
)
def test_other_languages_in_an_unusual_script_are_refused_as_targets(
    target: str, script: str
) -> None:
    # M2M100's sr/uz/pa/az and NLLB's srp_Cyrl/uzn_Latn/pan_Guru/azj_Latn write the usual
    # script only; as sources they are read with the language's code.
    m2m = M2M100Scheme({"en": 1, "sr": 2, "uz": 3, "pa": 4, "az": 5}, eos_id=0)
    nllb_codes = {"eng_Latn": 1, "srp_Cyrl": 2, "uzn_Latn": 3, "pan_Guru": 4, "azj_Latn": 5}
    nllb = NllbScheme(nllb_codes, eos_id=0, legacy=False)
    for scheme in (m2m, nllb):
        reason = scheme.plan("en", target)
        assert isinstance(reason, str) and f"is written in {script} script" in reason
        assert isinstance(scheme.plan(target, "en"), PairPlan)
        usual = scheme.plan("en", target.split("-")[0])
        assert isinstance(usual, PairPlan) and not usual.identity


def test_serbian_scripts_each_use_their_own_code() -> None:
    nllb = NllbScheme({"eng_Latn": 1, "srp_Cyrl": 2, "srp_Latn": 3}, eos_id=0, legacy=False)
    plans = [nllb.plan("en", t) for t in ("sr", "sr-Cyrl", "sr-Latn")]
    assert [p.target_code for p in plans if isinstance(p, PairPlan)] == [
        "srp_Cyrl",
        "srp_Cyrl",
        "srp_Latn",
    ]
    marian = MarianScheme(frozenset({"en"}), frozenset(), {"sr": 7, "srp_Latn": 8}, eos_id=0)
    latin = marian.plan("en", "sr-Latn")
    assert isinstance(latin, PairPlan) and latin.prefix_ids == (8,)
    cyrillic = marian.plan("en", "sr")
    assert isinstance(cyrillic, PairPlan) and cyrillic.prefix_ids == (7,)


def test_one_code_for_two_scripts_is_not_an_identity() -> None:
    # zh-TW -> zh-Hans on M2M100 used to pass Traditional text through to a Simplified
    # reader (both tags map to "zh"); the same script stays an identity.
    scheme = M2M100Scheme(M2M_CODES, eos_id=2)
    for source, target in [("zh-TW", "zh-Hans"), ("zh-Hant", "zh")]:
        reason = scheme.plan(source, target)
        assert isinstance(reason, str) and "cannot turn Hant script into Hans" in reason
    for source, target in [("zh", "zh-CN"), ("zh-TW", "zh-HK"), ("zh-Hant", "zh-Hant")]:
        plan = scheme.plan(source, target)
        assert isinstance(plan, PairPlan) and plan.identity


def test_korean_in_kore_is_written_in_hangul() -> None:
    plan = M2M100Scheme({"en": 1, "ko": 2}, eos_id=0).plan("en", "ko-Kore")
    assert isinstance(plan, PairPlan) and plan.target_code == "ko"


# ------------------------------------------------------- real (tiny) checkpoints
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scripts")
    build_m2m100(path / "m2m100")
    build_nllb(path / "nllb")
    build_marian(path / "en-zh", target="zh")
    build_marian(path / "en-zh-multi", target="zh", target_tokens=("zh", "zho_Hans", "zho_Hant"))
    return path


@pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
def test_checkpoints_refuse_traditional_targets_they_would_write_in_simplified(
    checkpoints: Path,
) -> None:
    engines = {
        name: TranslationEngine.load(checkpoints / name, dtype="float32", device="cpu")
        for name in ("m2m100", "nllb", "en-zh", "en-zh-multi")
    }
    m2m, nllb = engines["m2m100"], engines["nllb"]
    tok = m2m.loaded.tokenizer
    for target in TRADITIONAL:
        assert not m2m.supports("en", target)
        with pytest.raises(UnsupportedLanguagePairError, match=f"'en' -> '{target}'"):
            m2m.plan("en", target)
        assert not engines["en-zh"].supports("en", target)
        assert m2m.supports(target, "en") and m2m.plan(target, "fr").prefix_ids == (
            tok.convert_tokens_to_ids("__zh__"),
        )
        plan = nllb.plan("en", target)
        assert plan.forced_bos_id == nllb.loaded.tokenizer.convert_tokens_to_ids("zho_Hant")
        multi = engines["en-zh-multi"].plan("en", target)
        assert multi.prefix_ids == (
            engines["en-zh-multi"].loaded.tokenizer.get_vocab()[">>zho_Hant<<"],
        )
    for target in SIMPLIFIED:
        assert m2m.plan("en", target).forced_bos_id == tok.convert_tokens_to_ids("__zh__")
        assert nllb.plan("en", target).target_code == "zho_Hans"
        assert engines["en-zh"].supports("en", target)
    for target in ("sr-Latn", "uz-Cyrl", "pa-Arab"):
        assert not m2m.supports("en", target) and not nllb.supports("en", target)
        assert m2m.supports(target, "en") and nllb.supports(target, "en")
    assert m2m.supports("en", "sr-Cyrl") and nllb.plan("en", "sr-Cyrl").target_code == "srp_Cyrl"


async def test_async_translator_startup_check_names_the_traditional_pair(
    checkpoints: Path,
) -> None:
    translator = await AsyncTranslator.load(checkpoints / "m2m100", device="cpu")
    try:
        assert not translator.supports("en", "zh-Hant") and translator.supports("zh-Hant", "en")
        with pytest.raises(UnsupportedLanguagePairError, match=r"'en' -> 'zh-Hant'.*Hant script"):
            translator.check_pair("en", "zh-Hant")
        translator.check_pair("en", "zh-Hans")
    finally:
        await translator.close()
