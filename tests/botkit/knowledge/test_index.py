"""Searching the sample knowledge base: the right passage first, nothing for chatter."""

from __future__ import annotations

import pytest
from knowledge_helpers import SAMPLE

from botkit.knowledge import KnowledgeConfig, Passage, PassageIndex, load_library
from botkit.knowledge.index import query_terms
from botkit.knowledge.stopwords import stopwords

LIBRARY = load_library(KnowledgeConfig(sources=(f"{SAMPLE}/*",)), "en")


def _titles(question: str, language: str = "en", min_relevance: float = 0.1) -> list[str]:
    query = query_terms((question, 1.0, stopwords(language)))
    hits = LIBRARY.index.search(query, limit=3, min_relevance=min_relevance)
    return [h.passage.title for h in hits]


@pytest.mark.parametrize(
    ("question", "best"),
    [
        ("How long does delivery to Canada take?", "Shipping > Delivery times"),
        ("Do you accept PayPal?", "Payment > Payment methods"),
        ("where is my tracking number", "Shipping > Tracking your parcel"),
        ("How much is shipping?", "Shipping > Shipping costs"),
        ("Is there a WARRANTY on products?", "warranty"),
        ("can I pay with Klárna", "Payment > Payment methods"),  # case and accents fold
        ("¿Cómo uso un código de descuento?", "Descuentos > Código de descuento"),
    ],
)
def test_the_passage_that_answers_comes_first(question: str, best: str) -> None:
    assert _titles(question, "es" if "¿" in question else "en")[0] == best


@pytest.mark.parametrize(
    "chatter",
    ["hello", "thanks a lot!", "what is the weather today", "do you sell shoes?", "🙂🙂", ""],
)
def test_small_talk_and_unknown_subjects_find_nothing(chatter: str) -> None:
    assert _titles(chatter) == []


def test_function_words_would_match_without_the_language_list() -> None:
    # The stopword list is what keeps "do you" from finding a passage.
    assert _titles("do you sell shoes?", language="xx", min_relevance=0.0) != []
    assert _titles("do you sell shoes?", language="en", min_relevance=0.0) == []


def test_relevance_is_normalized_and_ordered() -> None:
    query = query_terms(("return refund warranty", 1.0, frozenset()))
    hits = LIBRARY.index.search(query, limit=10, min_relevance=0.0)
    relevances = [h.relevance for h in hits]
    assert relevances == sorted(relevances, reverse=True)
    assert all(0 < r < 1 for r in relevances)
    assert set(hits[0].matched) <= {"return", "refund", "warranty"}


def test_unknown_words_lower_the_relevance() -> None:
    plain = LIBRARY.index.search(query_terms(("paypal", 1.0, ())), limit=1, min_relevance=0)
    noisy = LIBRARY.index.search(query_terms(("paypal zorblax", 1.0, ())), limit=1,
                                 min_relevance=0)  # fmt: skip
    assert plain[0].passage == noisy[0].passage
    assert noisy[0].relevance < plain[0].relevance / 1.5


def test_weights_and_ties() -> None:
    same = [Passage("s", i, "t", "alpha beta") for i in range(3)]
    index = PassageIndex(same)
    hits = index.search({"alpha": 1.0}, limit=2, min_relevance=0)
    assert [h.passage.line for h in hits] == [0, 1]  # ties keep the files' order
    assert query_terms(("alpha beta", 0.5, ()), ("alpha", 1.0, ())) == {"alpha": 1.0, "beta": 0.5}
    assert PassageIndex([]).search({"alpha": 1.0}, limit=3, min_relevance=0) == []
    assert index.search({"alpha": 1.0}, limit=0, min_relevance=0) == []


def test_cjk_questions_find_cjk_passages() -> None:
    index = PassageIndex([
        Passage("zh.md", 1, "退货", "收到商品后三十天内可以退货。"),
        Passage("zh.md", 2, "付款", "我们接受支付宝和微信支付。"),
    ])  # fmt: skip
    hits = index.search(query_terms(("可以用支付宝付款吗", 1.0, ())), limit=1, min_relevance=0.1)
    assert [h.passage.title for h in hits] == ["付款"]
