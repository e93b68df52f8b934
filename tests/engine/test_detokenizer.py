"""Incremental detokenization on real tokenizers trained in fixtures: a byte-level BPE
(GPT-2, Qwen2, SmolLM2) and a SentencePiece BPE with byte fallback (Llama-2, Mistral),
each through the `tokenizers` library's streaming decoder and through the windows this
module decodes itself when a tokenizer has no stream."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hf_tiny import build_sentencepiece_tokenizer, build_tokenizer
from tokenizers import decoders

from engine.detokenizer import IncrementalDetokenizer

TEXT = "Prix: 5€, délai 3 jours. 中文回答 🙂 ok! Ünïcödé"


class WithoutStream:
    """A tokenizer seen through ``decode`` alone, as one without a streaming decoder is."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("backend_tokenizer", "botkit_decode_stream"):
            raise AttributeError(name)
        return getattr(self.inner, name)


_BUILDERS = {"byte-level": build_tokenizer, "sentencepiece": build_sentencepiece_tokenizer}


@pytest.fixture(scope="module", params=["byte-level", "sentencepiece"])
def real(request: pytest.FixtureRequest) -> Any:
    return _BUILDERS[request.param]()


@pytest.fixture(params=["stream", "windows"])
def tok(real: Any, request: pytest.FixtureRequest) -> Any:
    return real if request.param == "stream" else WithoutStream(real)


def test_the_fast_tokenizers_stream_and_the_wrapped_ones_do_not(real: Any) -> None:
    assert IncrementalDetokenizer(real, [])._step is not None
    assert IncrementalDetokenizer(WithoutStream(real), [])._step is None


def stream(
    tok: Any, text: str, stop: tuple[str, ...] = (), prompt: str = ""
) -> tuple[list[str], IncrementalDetokenizer]:
    """``text`` as a reply to ``prompt``, one token at a time. (With no prompt, as in a
    whole decode, SentencePiece's decoder drops the space it puts before a first word.)"""
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
    # Everything in one add_tokens call: the complete characters before the cut survive
    # (the stream gives them at once, the windows at the flush), the partial one does not.
    ids = tok.encode("中文 \ufffd 回答🙂", add_special_tokens=False)
    d = IncrementalDetokenizer(tok, [])
    assert d.add_tokens(ids[:-1]) + d.flush() == "中文 \ufffd 回答"
    assert d.text == "中文 \ufffd 回答"


def test_special_tokens_are_skipped(tok: Any) -> None:
    d = IncrementalDetokenizer(tok, [])
    fine = tok.encode("fine", add_special_tokens=False)
    out = d.add_tokens(fine) + d.add_tokens([tok.eos_token_id])
    assert out + d.flush() == "fine"


def test_the_reply_reads_as_it_does_after_its_prompt(tok: Any) -> None:
    # SentencePiece decoders strip a decode's leading space; the prompt's last tokens,
    # decoded before the reply, keep the reply's first space where it belongs.
    prompt = tok.encode("Bonjour", add_special_tokens=False)
    deltas, _ = stream(tok, TEXT, prompt="Bonjour")
    whole = tok.decode(prompt + tok.encode(TEXT, add_special_tokens=False))
    assert "".join(deltas) == whole.removeprefix(tok.decode(prompt))
    assert "".join(deltas).lstrip() == TEXT


@pytest.mark.parametrize("seed", range(6))
def test_random_tokens_give_the_same_text_streamed_or_in_windows(real: Any, seed: int) -> None:
    # A model can sample any id in any order: lone byte pieces, half characters, special
    # tokens. Whatever comes, one token a step as the engine gives them, both ways give
    # the same text, and no delta ends in a half character's U+FFFD.
    rng = random.Random(seed)
    ids = [rng.randrange(len(real)) for _ in range(300)]
    prompt = real.encode("Bonjour", add_special_tokens=False)
    texts = []
    for tokenizer in (real, WithoutStream(real)):
        d = IncrementalDetokenizer(tokenizer, prompt)
        deltas = [d.add_tokens([t]) for t in ids] + [d.flush()]
        assert not any(x.endswith("\ufffd") for x in deltas)
        texts.append("".join(deltas))
        assert texts[-1] == d.text
    assert texts[0] == texts[1]
    if isinstance(real.backend_tokenizer.decoder, decoders.ByteLevel):
        whole = real.decode(prompt + ids, skip_special_tokens=True)
        assert texts[0] == whole.removeprefix(real.decode(prompt)).rstrip("\ufffd")
    # (SentencePiece's byte fallback renders a run of byte pieces as a whole, so
    # decoding everything at once may render some differently from one token at a time.)


class BrokenStream:
    """A streaming decoder that fails at its ``after``-th token, as `tokenizers` raises
    "invalid prefix" when a decoder rewrites text it already gave."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after = inner, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def botkit_decode_stream(self, context: list[int], skip_special_tokens: bool) -> Any:
        from engine.detokenizer import stream_step

        step = stream_step(self.inner, context, skip_special_tokens)
        assert step is not None
        seen = [0]

        def failing(token: int) -> str | None:
            seen[0] += 1
            if seen[0] > self.after:
                raise RuntimeError("Invalid prefix encountered")
            return step(token)

        return failing


@pytest.mark.parametrize("after", [0, 3, 9])
def test_a_stream_that_fails_hands_over_to_the_windows(real: Any, after: int) -> None:
    ids = real.encode(TEXT, add_special_tokens=False)
    d = IncrementalDetokenizer(
        BrokenStream(real, after), real.encode("Hi", add_special_tokens=False)
    )
    out = "".join(d.add_tokens(ids[i : i + 2]) for i in range(0, len(ids), 2)) + d.flush()
    assert d._step is None
    assert out.strip() == TEXT
