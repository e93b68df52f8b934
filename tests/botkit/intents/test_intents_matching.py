"""The intent matcher on its own: keywords, similarity, thresholds, ties, any script."""

from __future__ import annotations

import random

import pytest

from botkit.intents import IntentsConfig
from botkit.intents._similarity import _STOPWORD_LANGUAGES, SimilarityIndex
from botkit.intents.matching import IntentMatcher, IntentPattern, fold
from botkit.language.stopwords import _LISTS as stopword_lists
from botkit.language.words import search_terms

PATTERNS = [
    IntentPattern("hours", ("What are your opening hours?", "When are you open?")),
    IntentPattern("track", ("Where is my order?", "Track my parcel", "¿Dónde está mi pedido?")),
    IntentPattern("refund", ("I want a refund", "How do I get my money back?")),
    IntentPattern("zh_order", ("我的订单在哪里",)),
    IntentPattern("address", keywords=("Dirección", "e-mail address")),
]


def matcher(min_similarity: float = 0.5, max_chars: int = 200) -> IntentMatcher:
    return IntentMatcher(PATTERNS, min_similarity=min_similarity, max_chars=max_chars)


def score(m: IntentMatcher, text: str) -> float:
    found = m.match(text)
    return 0.0 if found is None else found.score


def test_scores_are_ordered_by_closeness() -> None:
    m = matcher(min_similarity=0.01)
    exact = score(m, "Where is my order?")
    assert exact == pytest.approx(1.0)
    close = score(m, "hi, where is my order")
    typo = score(m, "trak my parcell")
    assert exact > close > typo > 0.4, (close, typo)
    # Typos in longer words cost less: most of their letter triples are intact.
    assert score(m, "how do i get my mony back") > 0.6
    assert m.match("Where is my order?").name == "track"  # type: ignore[union-attr]
    # Only a few letter triples in common ("re " of "where"...): far below any threshold.
    assert score(m, "The zipper broke") < 0.1
    assert matcher().match("The zipper broke") is None


def test_threshold_global_and_per_intent() -> None:
    text = "wher is my ordr"
    between = score(matcher(0.01), text)
    assert matcher(between - 0.01).match(text) is not None
    assert matcher(between + 0.01).match(text) is None
    strict = [IntentPattern("track", PATTERNS[1].examples, min_similarity=0.99)]
    assert IntentMatcher(strict, min_similarity=0.1, max_chars=200).match(text) is None
    lenient = [IntentPattern("track", PATTERNS[1].examples, min_similarity=0.1)]
    assert IntentMatcher(lenient, min_similarity=0.99, max_chars=200).match(text) is not None


def test_case_and_accents_fold() -> None:
    m = matcher()
    for text in ("DONDE ESTA MI PEDIDO", "¿dónde está mi pedido?", "Dónde   está mi pedído"):
        found = m.match(text)
        assert found is not None and found.name == "track" and found.score > 0.99, text
    # Keywords: whole words, any case, with or without accents, punctuation between.
    for text in ("mi direccion es otra", "DIRECCIÓN?", "my E-Mail Address changed"):
        found = m.match(text)
        assert found is not None and (found.name, found.via) == ("address", "keyword"), text
    assert m.match("direcciones") is None
    assert fold("E-MAIL  Address!") == "e mail address"


def test_cjk_examples_match_cjk_messages() -> None:
    m = matcher()
    found = m.match("请问我的订单在哪里？")  # noqa: RUF001
    assert found is not None and found.name == "zh_order"
    assert m.match("我想退货") is None  # "I want to return it": no pair in common


def test_keywords_win_and_long_texts_never_match() -> None:
    m = matcher(max_chars=40)
    # A keyword beats a closer example.
    found = m.match("Where is my order? Dirección")
    assert found is not None and found.name == "address" and found.score == 1.0
    assert m.match("Where is my order? " + "please " * 5) is None  # 54 characters


def test_the_customers_text_decides_the_length() -> None:
    m = matcher(max_chars=40)
    # Over the limit as written: not matched through a shorter translation either.
    assert m.match("¿Dónde está mi pedido? " + "por favor " * 3, "where is my order") is None
    assert m.match("x" * 41, "Dirección") is None  # nor by a keyword
    # Within it: the translation is matched even when it is longer than the limit.
    found = m.match("我的包裹呢", "Where is my order? I ordered it on Monday afternoon.")
    assert found is not None and found.name == "track"
    found = m.match("我的包裹", "I would like to know where my parcel is, please: Dirección")
    assert found is not None and found.name == "address"


def test_best_of_both_texts_and_ties() -> None:
    m = matcher()
    found = m.match("Wo ist meine Bestellung?", "Where is my order?")
    assert found is not None and found.name == "track" and found.score == pytest.approx(1.0)
    same = [IntentPattern("first", ("open hours",)), IntentPattern("second", ("open hours",))]
    tie = IntentMatcher(same, min_similarity=0.5, max_chars=200)
    assert [tie.match("open hours").name for _ in range(3)] == ["first"] * 3  # type: ignore[union-attr]


def test_deterministic_across_instances() -> None:
    texts = ["where's my order", "refund please", "opening hours?", "money back", "我的订单"]
    first = [matcher(0.2).match(t) for t in texts]
    again = [matcher(0.2).match(t) for t in texts]
    assert first == again and all(f is not None for f in first)


def test_shared_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="share the keyword 'e mail'"):
        IntentMatcher(
            [IntentPattern("a", keywords=("E-mail",)), IntentPattern("b", keywords=("e mail",))],
            min_similarity=0.5,
            max_chars=200,
        )


def test_pruned_search_finds_what_scoring_every_example_finds() -> None:
    rng = random.Random(5)
    words = ("order refund parcel open hours where when money back track my the is "
             "want get how cancel address pedido dónde está mi 订单 哪里").split()  # fmt: skip
    examples = [" ".join(rng.choices(words, k=rng.randint(1, 6))) for _ in range(300)]
    groups = [n // 3 for n in range(len(examples))]
    thresholds = [0.3 + 0.05 * (g % 5) for g in groups]
    index = SimilarityIndex([search_terms(e) for e in examples], groups, thresholds)
    for _ in range(200):
        terms = search_terms(" ".join(rng.choices(words, k=rng.randint(1, 8))))
        query = index.vector(terms)
        full = [
            sum(q * index.vectors[e].get(f, 0.0) for f, q in query.items())
            for e in range(len(examples))
        ]
        passing = [(s, -e) for e, s in enumerate(full) if s >= thresholds[e]]
        found = index.best(terms, 0.0)
        if not passing:
            assert found is None
            continue
        assert found is not None
        best_score, best_example = max(passing)[0], -max(passing)[1]
        assert found[0] == pytest.approx(best_score, abs=1e-9)
        assert full[found[1]] == pytest.approx(best_score, abs=1e-9)
        assert found[1] == best_example or abs(full[best_example] - full[found[1]]) < 1e-9


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\x00\x01", "\ud800\udfff", "😀" * 50, "\u202e\u202c", "٣٤٥", "a" * 200,
     "e" * 5000, "ñ" * 199 + "\u0301" * 3],
)  # fmt: skip
def test_hostile_texts_do_not_raise(text: str) -> None:
    m = matcher(max_chars=200)
    found = m.match(text, text[::-1])
    assert found is None or found.via == "example"


# docs/plugins.md's example intents, and config.example.toml's goodbye.
SMALL = [
    IntentPattern(
        "opening_hours",
        (
            "What are your opening hours?",
            "When are you open?",
            "¿A qué hora abren?",
            "¿Cuál es su horario?",
        ),
    ),
    IntentPattern("refunds", ("I want a refund", "How do I get my money back?")),
    IntentPattern("goodbye", ("Thanks, that's all", "Goodbye!")),
    IntentPattern("greeting", ("Hello", "Hi there")),
]


@pytest.mark.parametrize(
    "text",
    [
        # A question in the frame of an example ("What are your ...", "When are you
        # ...") about something no intent covers.
        "What are your prices?",
        "What are your shipping costs to Norway?",
        "When are you going to ship my order?",
        "When are you delivering?",
        "Are you there?",
        "Is that all?",  # not "Thanks, that's all": the conversation must not close
        "Hello, the item is broken",  # a greeting before a question
        "Thanks, but the parcel never arrived",
        # The same in Spanish: "cuál", "es", "su", "de", "la" weigh little too.
        "¿Cuál es su precio?",
        "¿Cuál es la dirección de la tienda?",
    ],
)
def test_function_words_alone_do_not_match(text: str) -> None:
    m = IntentMatcher(SMALL, min_similarity=IntentsConfig().min_similarity, max_chars=200)
    assert m.match(text) is None, (text, m.match(text))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("opening times?", "opening_hours"),
        ("what time do you open?", "opening_hours"),
        ("hours?", "opening_hours"),
        ("business hours?", "opening_hours"),
        ("¿Cuál es el horario?", "opening_hours"),
        ("a que hora abren mañana", "opening_hours"),
        ("I want my money back", "refunds"),
        ("thank you, that's all", "goodbye"),
        ("thanks!", "goodbye"),
        ("hi", "greeting"),
        ("hello!", "greeting"),
    ],
)
def test_paraphrases_match(text: str, intent: str) -> None:
    m = IntentMatcher(SMALL, min_similarity=IntentsConfig().min_similarity, max_chars=200)
    found = m.match(text)
    assert found is not None and found.name == intent, (text, found)


def test_every_function_word_list_is_used() -> None:
    assert set(_STOPWORD_LANGUAGES) == set(stopword_lists)


EXAMPLES = [
    "What are your opening hours?", "When are you open?", "I want a refund",
    "How do I get my money back?", "Where is my order?", "Cancel my subscription",
    "Can I pay with PayPal?", "I forgot my password", "Do you offer free shipping?",
    "¿Dónde está mi pedido?", "我的订单在哪里", "Are you there?", "Hello",
]  # fmt: skip


def test_threshold_one_matches_an_exact_repeat() -> None:
    # Some exact repeats score 0.9999999999999998: the threshold is compared with the
    # same slack as every other bound.
    rng = random.Random(3)
    words = "order refund parcel open hours where my the is cancel password pay".split()
    drawn = [" ".join(rng.choices(words, k=rng.randint(1, 6))) for _ in range(80)]
    # Distinct as sets of words (neither their order nor repeats count).
    bags = {frozenset(search_terms(e)): e for e in reversed(EXAMPLES + drawn)}
    examples = list(dict.fromkeys(bags.values()))
    patterns = [IntentPattern(f"i{n}", (e,), min_similarity=1.0) for n, e in enumerate(examples)]
    m = IntentMatcher(patterns, min_similarity=0.5, max_chars=200)
    for example in examples:
        found = m.match(example)
        assert found is not None and found.matched == example, (example, found)
    assert m.match("Where is my order please?") is None


def test_keyword_tie_goes_to_the_intent_listed_first() -> None:
    m = IntentMatcher(
        [
            IntentPattern("complaint", keywords=("complaint",)),
            IntentPattern("invoice_copy", keywords=("invoice", "opening hours")),
            IntentPattern("hours", keywords=("hours",)),
        ],
        min_similarity=0.5,
        max_chars=200,
    )
    found = m.match("Invoice complaint: you charged me twice!")
    assert found is not None and (found.name, found.matched) == ("complaint", "complaint")
    # Overlapping keywords: both are in the message; the earlier intent wins.
    found = m.match("your opening hours?")
    assert found is not None and (found.name, found.matched) == ("invoice_copy", "opening hours")
    found = m.match("hours?", "Invoice?")  # and across the customer's text and its translation
    assert found is not None and found.name == "invoice_copy"


def test_keywords_are_whole_words_in_scripts_with_vowel_signs() -> None:
    m = IntentMatcher(
        [IntentPattern("address", keywords=("पता",)), IntentPattern("cancel", keywords=("रद्द",))],
        min_similarity=0.99,
        max_chars=200,
    )
    assert m.match("मेरा पैकेज लापता है") is None  # "my package is missing": लापता
    assert m.match("मुझे रद्दी बेचनी है") is None  # "I want to sell scrap paper": रद्दी
    found = m.match("आपका पता क्या है")  # "what is your address"
    assert found is not None and found.name == "address"
