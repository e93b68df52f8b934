"""``sentence_end_after``: past a token budget, a reply ends at its next sentence end.

5 of 31 live SmolLM2 replies hit max_new_tokens and were sent cut mid-sentence ("...Also,
please remember that each order is"); with the soft budget they end on a whole sentence.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from forced_engine import hooked_engine, tiny_llama
from hf_tiny import build_tokenizer

from engine import FinishReason, InvalidRequestError, LLMEngine, LoadedModel, SamplingParams
from engine.detokenizer import IncrementalDetokenizer

TEXT = "Your order has shipped. Refunds take five days. Hello"


def feed(text: str, start_after_chars: int) -> str:
    """Detokenize ``text`` token by token, looking for a sentence end once the text
    shown so far has ``start_after_chars`` characters."""
    tok = build_tokenizer()
    detok = IncrementalDetokenizer(tok, tok.encode("Hi", add_special_tokens=False))
    out = ""
    for token in tok.encode(text, add_special_tokens=False):
        if len(detok.text) >= start_after_chars:
            detok.stop_at_sentence_end()
        out += detok.add_tokens([token])
        if detok.stopped:
            break
    return out + detok.flush()


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        (TEXT, 0, "Your order has shipped."),
        (TEXT, 5, "Your order has shipped."),
        (TEXT, 23, "Your order has shipped."),  # the "." was there; the space decides
        (TEXT, 24, "Your order has shipped. Refunds take five days."),
        ("It costs 4.90 EUR, e.g. 1... or 2! Then", 0, "It costs 4.90 EUR, e.g. 1... or 2!"),
        ("Hello there\nNext line", 0, "Hello there"),
        ("Refunds take five", 0, "Refunds take five"),  # no end: the text as is
    ],
)
def test_the_first_sentence_end_after_the_budget_stops(
    text: str, after: int, expected: str
) -> None:
    assert feed(text, after) == expected


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return tiny_llama(tmp_path_factory, "tiny-sentences")


def scripted(loaded: LoadedModel, text: str) -> tuple[LLMEngine, list[int]]:
    """An engine whose model writes ``text`` over and over (forced at its LM head), and
    the script's position (set it to 0 before each request)."""
    tokens = loaded.tokenizer.encode(text, add_special_tokens=False)
    step = [0]

    def force(_module: Any, _inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()  # [S, vocab]
        logits[:, tokens[step[0] % len(tokens)]] = logits.max() + 100.0
        step[0] += 1
        return logits

    engine = hooked_engine(loaded, force)
    engine.runner.cpu_decoder = None  # decode through the hooked LM head too
    return engine, step


def test_a_reply_past_the_budget_ends_on_a_sentence(loaded: LoadedModel) -> None:
    sentence = "Your order has shipped. "
    engine, step = scripted(loaded, sentence)
    n = len(loaded.tokenizer.encode(sentence, add_special_tokens=False))
    messages = [{"role": "user", "content": "Where is my order?"}]
    cut = SamplingParams(temperature=0, max_new_tokens=n * 2 + 2)
    soft = SamplingParams(temperature=0, max_new_tokens=n * 2 + 2, sentence_end_after=n + 1)
    ((cut_text, _),) = engine.generate([messages], cut)
    step[0] = 0
    ((soft_text, soft_ids),) = engine.generate([messages], soft)
    assert cut_text.startswith(sentence * 2) and cut_text != (sentence * 2).rstrip()
    assert soft_text == (sentence * 2).rstrip()  # the second sentence, whole
    assert len(soft_ids) <= n * 2 + 1
    step[0] = 0
    seq = engine.add_request("r", messages, soft)
    while engine.has_unfinished():
        engine.step()
    assert seq.finish_reason is FinishReason.STOP


def test_sentence_end_after_is_validated() -> None:
    with pytest.raises(InvalidRequestError, match="sentence_end_after"):
        SamplingParams(sentence_end_after=-1)


def test_the_local_backend_asks_for_a_sentence_end_past_80_percent() -> None:
    from botkit.backends.local_engine import LocalEngineBackend
    from botkit.backends.protocol import ChatMessage, GenerationRequest
    from botkit.config.settings import EngineSettings

    backend = LocalEngineBackend(EngineSettings(max_new_tokens=256))
    request = GenerationRequest(messages=(ChatMessage("user", "Hi"),))
    assert backend.sampling_params(request).sentence_end_after == 204
    shorter = GenerationRequest(messages=(ChatMessage("user", "Hi"),), max_new_tokens=10)
    assert backend.sampling_params(shorter).sentence_end_after == 8
