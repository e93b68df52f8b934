"""Incremental detokenization on a real byte-level BPE tokenizer trained in a fixture."""

from __future__ import annotations

from typing import Any

import pytest
from hf_tiny import build_tokenizer

from engine.detokenizer import IncrementalDetokenizer

TEXT = "Prix: 5€, délai 3 jours. 中文回答 🙂 ok! Ünïcödé"


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_tokenizer()


def stream(
    tok: Any, text: str, stop: tuple[str, ...] = (), prompt: str = "Hello"
) -> tuple[list[str], IncrementalDetokenizer]:
    ids = tok.encode(text, add_special_tokens=False)
    d = IncrementalDetokenizer(tok, tok.encode(prompt, add_special_tokens=False), stop)
    deltas = []
    for t in ids:
        deltas.append(d.add_tokens([t]))
        if d.stopped:
            break
    deltas.append(d.flush())
    return deltas, d


def test_multibyte_characters_split_across_tokens_are_never_cut(tok: Any) -> None:
    ids = tok.encode(TEXT, add_special_tokens=False)
    # The fixture tokenizer never saw these characters: each is several byte tokens.
    assert len(ids) > len(TEXT)
    deltas, _ = stream(tok, TEXT)
    assert "".join(deltas) == TEXT
    assert all("\ufffd" not in d for d in deltas)
    assert any(d == "" for d in deltas[:-1])  # some tokens were held until complete


def test_stop_string_split_across_deltas_is_not_emitted(tok: Any) -> None:
    deltas, d = stream(tok, "Sure, here it is.\nUser: hi there", stop=("\nUser:",))
    assert d.stopped
    assert "".join(deltas) == "Sure, here it is."
    assert all("U" not in x for x in deltas)


def test_partial_stop_match_is_released_when_it_diverges(tok: Any) -> None:
    deltas, d = stream(tok, "a STOP-ish STOMP word", stop=("STOPPED",))
    assert not d.stopped
    assert "".join(deltas) == "a STOP-ish STOMP word"


def test_earliest_of_several_stop_strings_wins(tok: Any) -> None:
    deltas, _ = stream(tok, "one two three four", stop=("four", "two"))
    assert "".join(deltas) == "one "


def test_stop_string_inside_multibyte_text(tok: Any) -> None:
    deltas, d = stream(tok, "答案是中文🙂然后", stop=("🙂",))
    assert d.stopped and "".join(deltas) == "答案是中文"


def test_stop_at_the_very_start(tok: Any) -> None:
    deltas, d = stream(tok, "###rest", stop=("###",))
    assert d.stopped and "".join(deltas) == ""


def test_no_tokens_after_stop_are_emitted(tok: Any) -> None:
    d = IncrementalDetokenizer(tok, [], ("x",))
    assert d.add_tokens(tok.encode("abx", add_special_tokens=False)) == "ab"
    assert d.add_tokens(tok.encode("more", add_special_tokens=False)) == ""
    assert d.flush() == ""


@pytest.mark.parametrize("text", ["ok 🙂", "ok 中", "ok ü"])
def test_flush_drops_a_dangling_partial_character(tok: Any, text: str) -> None:
    ids = tok.encode(text, add_special_tokens=False)
    d = IncrementalDetokenizer(tok, [])
    out = "".join(d.add_tokens([t]) for t in ids[:-1])  # the last byte never comes
    assert out == "ok "
    # The tokenizer renders the partial bytes as U+FFFD; no reader gains from that.
    assert tok.decode(ids[:-1]).endswith("\ufffd")
    assert d.flush() == ""
    assert d.text == "ok "
    assert d.flush() == ""


def test_flush_keeps_complete_characters_and_an_inner_replacement_character(tok: Any) -> None:
    # Everything pending at once (one add_tokens call per sequence): the complete
    # characters before the cut survive, only the partial one is dropped.
    ids = tok.encode("中文 \ufffd 回答🙂", add_special_tokens=False)
    d = IncrementalDetokenizer(tok, [])
    assert d.add_tokens(ids[:-1]) == ""
    assert d.flush() == "中文 \ufffd 回答"


def test_special_tokens_are_skipped(tok: Any) -> None:
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    d = IncrementalDetokenizer(tok, [])
    out = d.add_tokens(tok.encode("fine", add_special_tokens=False)) + d.add_tokens([eos])
    assert out + d.flush() == "fine"
