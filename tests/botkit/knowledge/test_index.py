"""Searching the sample knowledge base: the right passage first, nothing for chatter,
relevance that context cannot dilute, and the analyzer's languages."""

from __future__ import annotations

import threading

import pytest
import snowballstemmer
from knowledge_helpers import SAMPLE

from botkit.knowledge import Hit, KnowledgeConfig, Passage, PassageIndex, load_library
from botkit.knowledge.analysis import Analyzer
from botkit.language.stopwords import stopwords

LIBRARY = load_library(KnowledgeConfig(sources=(f"{SAMPLE}/*",)), "en")
DELIVERY = "Shipping > Delivery times"


Context = tuple[tuple[str, float, frozenset[str]], ...]


def _hits(
    question: str, language: str = "en", min_relevance: float = 0.1, context: Context = ()
) -> list[tuple[str, float]]:
    index = LIBRARY.index
    query = index.query(question, leave_out=stopwords(language), context=context)
    return [(h.passage.title, h.relevance)
            for h in index.search(query, limit=3, min_relevance=min_relevance)]  # fmt: skip


def _titles(question: str, language: str = "en", min_relevance: float = 0.1) -> list[str]:
    return [title for title, _ in _hits(question, language, min_relevance)]


@pytest.mark.parametrize(
    ("question", "best"),
    [
        ("How long does delivery to Canada take?", DELIVERY),
        ("Do you accept PayPal?", "Payment > Payment methods"),
        ("where is my tracking number", "Shipping > Tracking your parcel"),
        ("How much is shipping?", "Shipping > Shipping costs"),
        ("Is there a WARRANTY on products?", "warranty"),
        ("can I pay with Klárna", "Payment > Payment methods"),  # case and accents fold
        ("refunded?", "Returns and refunds > Refunds"),  # stems: refunded = refund(s)
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


@pytest.mark.parametrize(
    ("plain", "contracted"),
    [
        ("I do not have a tracking link", "I don't have a tracking link"),
        ("Where is my parcel? I have not got it", "Where\u2019s my parcel? I haven\u2019t got it"),
    ],
)
def test_contractions_are_function_words_too(plain: str, contracted: str) -> None:
    [(title, relevance)] = _hits(plain)[:1]
    assert _hits(contracted)[0] == (title, pytest.approx(relevance))


def test_context_words_can_find_but_never_dilute() -> None:
    question = "How long does delivery to Canada take?"
    [(title, alone)] = _hits(question)[:1]
    assert title == DELIVERY
    # Pivot mode: the customer's German words beside the translation; an earlier,
    # unrelated message as history. Neither makes the question less answered.
    german = ("Wie lange dauert die Lieferung nach Kanada?", 1.0, stopwords("de"))
    chatter = ("My sister recommended your espresso grinders, the matte black Baratza", 0.5,
               stopwords("en"))  # fmt: skip
    assert _hits(question, context=(german, chatter))[0] == (DELIVERY, pytest.approx(alone))
    # Context alone can find a passage: the previous question's subject.
    follow_up = _hits("How long?", context=(("Do you ship to Norway?", 0.5, stopwords("en")),))
    assert follow_up[0][0] == DELIVERY
    assert _hits("How long?") == []


def test_unknown_words_of_the_question_lower_the_relevance() -> None:
    [(title, plain)] = _hits("paypal", min_relevance=0)[:1]
    [(same, noisy)] = _hits("paypal zorblax", min_relevance=0)[:1]
    assert title == same and noisy < plain / 1.5


def test_relevance_is_normalized_and_ordered() -> None:
    relevances = [r for _, r in _hits("return refund warranty", min_relevance=0.0)]
    assert relevances == sorted(relevances, reverse=True)
    assert all(0 < r < 1 for r in relevances)


def test_ties_keep_the_files_order_and_empty_cases() -> None:
    same = [Passage("s", i, "t", "alpha beta") for i in range(3)]
    index = PassageIndex(same, Analyzer("en"))
    hits = index.search(index.query("alpha"), limit=2, min_relevance=0)
    assert [h.passage.line for h in hits] == [0, 1]
    empty = PassageIndex([], Analyzer("en"))
    assert empty.search(empty.query("alpha"), limit=3, min_relevance=0) == []
    assert index.search(index.query("alpha"), limit=0, min_relevance=0) == []


def test_cjk_questions_find_cjk_passages() -> None:
    index = PassageIndex([
        Passage("zh.md", 1, "退货", "收到商品后三十天内可以退货。"),
        Passage("zh.md", 2, "付款", "我们接受支付宝和微信支付。"),
    ], Analyzer("zh"))  # fmt: skip
    hits = index.search(index.query("可以用支付宝付款吗"), limit=1, min_relevance=0.1)
    assert [h.passage.title for h in hits] == ["付款"]


@pytest.mark.parametrize(
    ("language", "page", "questions"),
    [
        ("pt", "Devoluções", ["Como faço uma devolução?", "devolucoes sem acentos"]),
        ("ru", "Бесплатная доставка", ["Доставка бесплатная?", "доставкой"]),
        ("de", "Rücksendungen", ["Rücksendung", "rucksendung"]),
    ],
)
def test_stems_of_accented_words_meet_typed_without_accents(
    language: str, page: str, questions: list[str]
) -> None:
    passages = [Passage("kb.md", 1, page, "..."), Passage("kb.md", 2, "Other", "Nothing here.")]
    index = PassageIndex(passages, Analyzer(language))
    for question in questions:
        hits = index.search(index.query(question), limit=1, min_relevance=0.0)
        assert [h.passage.title for h in hits] == [page], question


def test_the_stemmer_is_safe_across_threads() -> None:
    # Snowball keeps a word's state on its stemmer object; the index is built in a worker
    # thread while the event loop searches. Each thread must get its own.
    analyzer = Analyzer("en")
    wrong: list[tuple[str, list[str]]] = []

    def stem_many(prefix: str) -> None:
        private = snowballstemmer.stemmer("english")
        for n in range(20_000):
            word = f"{prefix}{n}ing"
            if analyzer.terms(word) != [private.stemWord(word)]:
                wrong.append((word, analyzer.terms(word)))

    threads = [threading.Thread(target=stem_many, args=(p,)) for p in ("walk", "jump", "runn")]
    previous = __import__("sys").getswitchinterval()
    __import__("sys").setswitchinterval(1e-5)  # switch often, to meet a race quickly
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        __import__("sys").setswitchinterval(previous)
    assert wrong == []


def test_an_accented_word_counts_once_whichever_form_a_page_has() -> None:
    # "devoluções" gives two terms (the stem with accents, then without); a page that
    # says "devolução" shares only one of them. The word must count once, fully.
    index = PassageIndex([
        Passage("kb.md", 1, "Devolução", "Pode devolver em trinta dias."),
        Passage("kb.md", 2, "Pagamento", "Cartões e transferências."),
    ], Analyzer("pt"))  # fmt: skip
    plural = index.search(index.query("Aceitam devoluções?", leave_out=stopwords("pt")),
                          limit=2, min_relevance=0)  # fmt: skip
    singular = index.search(index.query("Aceitam devolução?", leave_out=stopwords("pt")),
                            limit=2, min_relevance=0)  # fmt: skip
    assert plural[0].passage.title == singular[0].passage.title == "Devolução"
    assert plural[0].relevance == pytest.approx(singular[0].relevance)


def test_known_context_words_do_not_lower_the_relevance_either() -> None:
    question = "How long does delivery to Canada take?"
    [(title, alone)] = _hits(question)[:1]
    earlier = ("Do you accept PayPal?", 0.5, stopwords("en"))  # known words, other subject
    assert _hits(question, context=(earlier,))[0] == (title, pytest.approx(alone))


def _shop_index() -> PassageIndex:
    # A short page that shares one word ("item") with a question about something else.
    return PassageIndex([
        Passage("returns.md", 8, "Returns > Return window", "You can return any item within "
                "60 days of delivery for a full refund. Items must be unused."),
        Passage("returns.md", 11, "Returns > How to return", "Print the return label from "
                "your account page and drop the parcel at any post office."),
        Passage("delivery.md", 3, "Shipping > Delivery times", "Standard delivery within "
                "Germany takes 2-3 business days. Express delivery takes 1 day."),
        Passage("delivery.md", 6, "Shipping > International", "Delivery to Canada takes "
                "7-10 business days and costs 25 EUR."),
        Passage("gift.md", 3, "Gift wrapping", "Gift wrapping costs 4 EUR per item."),
    ], Analyzer("en"))  # fmt: skip


def _after(index: PassageIndex, previous: str, question: str, weight: float = 0.5) -> list[Hit]:
    words = stopwords("en")
    query = index.query(question, leave_out=words, history=(previous, weight, words))
    return index.search(query, limit=3, min_relevance=0.1)


def test_after_a_topic_change_the_question_outranks_the_previous_subject() -> None:
    index = _shop_index()
    question = "How do I return an item?"
    alone = index.search(index.query(question, leave_out=stopwords("en")), limit=3,
                         min_relevance=0.1)  # fmt: skip
    hits = _after(index, "How much does gift wrapping cost?", question)
    assert hits[0].passage.title == alone[0].passage.title == "Returns > Return window"
    assert hits[0].relevance == pytest.approx(alone[0].relevance)  # its answer, undiluted
    gift = next(h.relevance for h in hits if h.passage.title == "Gift wrapping")
    # The old subject gains at most history_weight * (1 - best).
    gift_alone = next(h.relevance for h in alone if h.passage.title == "Gift wrapping")
    assert gift <= gift_alone + 0.5 * (1 - alone[0].relevance) + 1e-9
    assert gift < hits[0].relevance


def test_a_follow_up_that_finds_nothing_alone_keeps_the_subject() -> None:
    index = _shop_index()
    assert index.search(index.query("How long?", leave_out=stopwords("en")), limit=3,
                        min_relevance=0.1) == []  # fmt: skip
    hits = _after(index, "Do you deliver to Canada?", "How long?")
    assert hits[0].passage.title == "Shipping > International"
    assert hits[0].relevance <= 0.5  # found through history alone: at most its weight
    assert _after(index, "Do you deliver to Canada?", "How long?", weight=0) == []
    # A vague question that finds little: the previous subject decides among its hits.
    vague = _after(index, "How long does delivery to Canada take?", "And the cost?")
    assert vague[0].passage.title == "Shipping > International"
