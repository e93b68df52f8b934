"""BCP-47 normalization, language comparison and the model-code tables."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from botkit.errors import BotkitError, TranslationError
from botkit.language import (
    LANGUAGES,
    InvalidLanguageTag,
    english_name,
    find_language,
    language_info,
    marian_model_name,
    model_code,
    normalize_tag,
    same_language,
    try_normalize,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("en_us", "en-US"),
        ("es-419", "es-419"),
        ("en-Latn-US", "en-US"),  # the usual script is dropped
        ("ru-Cyrl", "ru"),
        ("sr-latn", "sr-Latn"),  # an unusual one stays
        ("zh", "zh-Hans"),
        ("zh-cn", "zh-Hans"),  # langdetect
        ("zh-SG", "zh-Hans"),
        ("zh-tw", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-hant", "zh-Hant"),  # Telegram
        ("zh-Hant-TW", "zh-Hant"),
        ("cmn", "zh-Hans"),
        ("iw", "he"),  # deprecated codes
        ("in", "id"),
        ("nb", "no"),  # Bokmål folds into langdetect's / M2M100's "no"
        ("fil", "tl"),
        ("spa", "es"),  # ISO 639-3 and NLLB codes
        ("deu", "de"),
        ("spa_Latn", "es"),
        ("zho_Hant", "zh-Hant"),
        ("arb_Arab", "ar"),
        ("en-US-u-ca-gregory", "en-US"),  # extensions dropped
        ("de-DE-x-private", "de-DE"),
        ("yue", "yue"),  # no 2-letter code: kept
        ("  fr ", "fr"),
    ],
)
def test_normalize(raw: str, normal: str) -> None:
    assert normalize_tag(raw) == normal
    assert normalize_tag(normal) == normal  # idempotent


@pytest.mark.parametrize(
    "bad",
    ["", "e", "english please", "en--US", "e1", "xx-" + "a" * 40, "ελ", "en\x00", "-en", "en-",
     "1234", "en-abcdefghi", "{0}", "<script>"],
)  # fmt: skip
def test_invalid_tags_are_refused_with_a_botkit_error(bad: str) -> None:
    with pytest.raises(InvalidLanguageTag) as info:
        normalize_tag(bad)
    assert isinstance(info.value, BotkitError) and isinstance(info.value, ValueError)
    assert try_normalize(bad) is None


def test_try_normalize_ignores_garbage_hints() -> None:
    assert try_normalize(None) is None
    assert try_normalize("de_AT") == "de-AT"
    assert try_normalize(123) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("en", "en-US", True),
        ("en-GB", "en-us", True),
        ("pt-BR", "pt-PT", True),
        ("zh-cn", "zh", True),
        ("zh-Hans", "zh-Hant", False),
        ("sr", "sr-Latn", False),
        ("es", "en", False),
        ("nb", "no", True),
        ("en", None, False),
        ("bogus tag", "bogus tag", False),
    ],
)
def test_same_language(a: str, b: str | None, same: bool) -> None:
    assert same_language(a, b) is same
    assert same_language(b, a) is same


def test_model_codes() -> None:
    assert model_code("es", "nllb", role="source") == "spa_Latn"
    assert model_code("pt-BR", "nllb", role="target") == "por_Latn"
    assert model_code("zh-TW", "nllb", role="target") == "zho_Hant"
    assert model_code("es", "m2m100", role="target") == "es"
    assert model_code("zh-Hant", "m2m100", role="source") == "zh"
    assert marian_model_name("es", "en") == "Helsinki-NLP/opus-mt-es-en"
    # M2M100 and OPUS-MT write Simplified Chinese only: Traditional is not a target.
    with pytest.raises(TranslationError, match=r"m2m100 .* 'zh-Hant' as target"):
        model_code("zh-Hant", "m2m100", role="target")
    with pytest.raises(TranslationError, match="te"):
        model_code("te", "m2m100", role="source")
    with pytest.raises(TranslationError):
        model_code("sr-Latn", "nllb", role="source")  # the table's Serbian is Cyrillic
    with pytest.raises(TranslationError):
        model_code("not a tag", "nllb", role="source")


def _transformers_codes(relative: str, name: str) -> object:
    spec = importlib.util.find_spec("transformers")
    assert spec is not None and spec.origin is not None, "transformers is a dev dependency"
    source = (Path(spec.origin).parent / relative).read_text(encoding="utf-8")
    for node in ast.parse(source).body:  # read the constant without importing transformers
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {relative}")


def test_table_codes_exist_in_the_models_vocabularies() -> None:
    nllb = _transformers_codes("models/nllb/tokenization_nllb.py", "FAIRSEQ_LANGUAGE_CODES")
    m2m = _transformers_codes("models/m2m_100/tokenization_m2m_100.py", "FAIRSEQ_LANGUAGE_CODES")
    assert isinstance(nllb, list) and isinstance(m2m, dict)
    for tag, info in LANGUAGES.items():
        assert info.nllb in nllb, tag
        assert info.m2m100 is None or info.m2m100 in m2m["m2m100"], tag
        assert normalize_tag(tag) == tag
        assert normalize_tag(info.nllb) == tag  # NLLB codes map back to our tags


def test_langdetect_languages_are_all_in_the_table() -> None:
    spec = importlib.util.find_spec("langdetect")
    assert spec is not None and spec.origin is not None
    profiles = sorted(p.name for p in (Path(spec.origin).parent / "profiles").iterdir())
    assert len(profiles) == 55
    for name in profiles:
        assert language_info(name) is not None, name


@pytest.mark.parametrize(
    ("typed", "tag"),
    [("es", "es"), ("Spanish", "es"), ("español", "es"), ("ESPANOL", "es"), ("pt-br", "pt-BR"),
     ("Deutsch", "de"), ("chinese", "zh-Hans"), ("繁體中文", "zh-Hant"), ("zh-tw", "zh-Hant"),
     ("klingon", None), ("", None), ("xx", None), ("{0}", None), ("a" * 500, None)],
)  # fmt: skip
def test_find_language(typed: str, tag: str | None) -> None:
    assert find_language(typed) == tag


def test_english_names() -> None:
    assert english_name("es") == "Spanish"
    assert english_name("pt-BR") == "Portuguese"
    assert english_name("zh-TW") == "Chinese (Traditional)"
    assert english_name("yue") == "yue"


def test_table_agrees_with_the_engines_own_table() -> None:
    # engine/ never imports botkit, so it keeps its own tag -> FLORES table; they must
    # agree on every language both know (read without importing the engine).
    path = Path(__file__).resolve().parents[3] / "engine" / "translation" / "_lang_table.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    flores = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and "FLORES"
        in ast.unparse(node.target if isinstance(node, ast.AnnAssign) else node.targets[0])
        and node.value is not None
    )
    for tag, info in LANGUAGES.items():
        if "-" in tag:
            continue  # zh-Hans / zh-Hant: the engine takes the script from the tag
        assert flores.get(tag) == info.nllb, tag
    assert flores["zh"] == LANGUAGES["zh-Hans"].nllb


def test_try_normalize_caches_only_short_values() -> None:
    """Tags are normalized several times per message, so results are cached; a hostile
    hint (a megabyte of padding) gets the same answer without being kept in the cache."""
    from botkit.language.tags import _try_normalize_cached

    _try_normalize_cached.cache_clear()
    assert try_normalize(" " * 1_000_000 + "pt_br" + " " * 10) == "pt-BR"
    assert try_normalize("x" * 1_000_000) is None
    assert _try_normalize_cached.cache_info().currsize == 0
    assert try_normalize("pt_br") == "pt-BR"
    assert try_normalize("pt_br") == "pt-BR"  # from the cache, same answer
    assert try_normalize("not a tag!") is None
    info = _try_normalize_cached.cache_info()
    assert (info.currsize, info.hits) == (2, 1)
