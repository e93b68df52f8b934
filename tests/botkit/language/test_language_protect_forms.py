"""Protected spans whatever the form the text is typed in (audit: multilingual,
findings 5 and 8): decomposed accents (NFD) in the text or in the glossary, full-width
ids from a CJK input method, zero-width characters inside an id, an ellipsis after a
URL. Spans are cut from the text as written, byte for byte."""

from __future__ import annotations

import unicodedata

import pytest

from botkit.language.protect import Glossary, detection_text, protect, restore


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("Café Crème", "Quiero dos Café Crème grandes, por favor."),
        ("Café Crème", nfd("Quiero dos Café Crème grandes, por favor.")),
        (nfd("Café Crème"), "Quiero dos Café Crème grandes, por favor."),
        ("Ñandú", nfd("El Ñandú Pro no enciende.")),
        ("Ñandú", nfd("El ñandú pro no enciende.")),  # case-insensitive as before
    ],
)
def test_glossary_terms_match_in_any_normalization(term: str, text: str) -> None:
    protected = protect(text, Glossary([term]))
    assert len(protected.spans) == 1
    span = protected.spans[0]
    assert (
        unicodedata.normalize("NFC", span).casefold()
        == unicodedata.normalize("NFC", term).casefold()
    )
    assert span in text  # as written: an NFD span stays NFD
    assert restore(protected.text, protected) == text


def test_an_nfd_term_is_left_out_of_detection() -> None:
    text = nfd("Quiero dos Café Crème grandes")
    assert "Cr" not in detection_text(text, Glossary(["Café Crème"]))


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("注文\uff2f\uff32\uff24\uff0d\uff12\uff10\uff12\uff14\uff0d\uff10\uff10\uff14\uff12はどこ",
         "\uff2f\uff32\uff24\uff0d\uff12\uff10\uff12\uff14\uff0d\uff10\uff10\uff14\uff12"),
        ("Pedido ORD\u200b-2024-0042 ok", "ORD\u200b-2024-0042"),
        ("Pedido ORD\u2060-2024-0042", "ORD\u2060-2024-0042"),
        ("Pedido OR\ufeffD-2024-0042.", "OR\ufeffD-2024-0042"),
        ("Voir http://exemple.fr/page.html\u2026", "http://exemple.fr/page.html"),
    ],
)  # fmt: skip
def test_ids_and_urls_are_protected_whole(text: str, span: str) -> None:
    protected = protect(text)
    assert protected.spans == (span,)
    assert restore(protected.text, protected) == text


def test_full_width_punctuation_still_ends_a_url() -> None:
    text = "链接是https://example.com/a\uff0c谢谢\uff01"
    assert protect(text).spans == ("https://example.com/a",)
