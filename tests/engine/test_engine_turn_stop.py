"""A reply ends at the chat template's turn tokens, not only at EOS.

The tiny tokenizer speaks ChatML: ``<|im_start|>`` is its BOS, ``<|im_end|>`` its EOS.
A model that writes ``<|im_start|>`` without ending its turn would, with only EOS as a
stop, go on into a turn it invents (the detokenizer hides the token itself).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from forced_engine import hooked_engine, tiny_llama
from hf_tiny import build_tokenizer

from engine import FinishReason, LLMEngine, LoadedModel, SamplingParams
from engine.turn_tokens import template_token_ids


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return tiny_llama(tmp_path_factory, "tiny-chatml")


def _forcing(loaded: LoadedModel, token: str) -> tuple[LLMEngine, int]:
    """An engine whose model always writes ``token`` next (a hook on its LM head)."""
    token_id = loaded.tokenizer.convert_tokens_to_ids(token)

    def force(_module: Any, _inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        logits[:, token_id] = logits.max() + 100.0  # [S, vocab]
        return logits

    return hooked_engine(loaded, force), token_id


def test_turn_start_token_ends_the_reply(loaded: LoadedModel) -> None:
    engine, im_start = _forcing(loaded, "<|im_start|>")
    assert im_start not in loaded.model_config.eos_token_ids  # not an EOS: the case
    messages = [{"role": "user", "content": "Hello, how can I help you"}]
    seq = engine.add_request("r", messages, SamplingParams(temperature=0, max_new_tokens=20))
    outputs = []
    while engine.has_unfinished():
        outputs += engine.step()
    assert seq.finish_reason is FinishReason.STOP
    assert seq.output_token_ids == [im_start]
    assert "".join(o.text for o in outputs) == ""


def test_template_tokens_are_read_off_the_tokenizer_and_template() -> None:
    tok = build_tokenizer()
    ids = {tok.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")}
    assert template_token_ids(tok, None) == ids  # the tokenizer's own template
    # A special token the template does not write is no stop: <|endoftext|> is not in it.
    assert tok.convert_tokens_to_ids("<|endoftext|>") not in template_token_ids(tok, None)
    # The template the engine renders with is the one read.
    assert template_token_ids(tok, "{{ messages[0]['content'] }}<|im_end|>") == {
        tok.convert_tokens_to_ids("<|im_end|>")
    }
    # Ordinary text in a template that happens to spell a word is never a stop.
    assert template_token_ids(tok, "Hello {{ messages }}") == frozenset()


def test_reasoning_tags_never_stop() -> None:
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<think>", "<|im_sep|>"]})
    template = "<|im_start|>{{ m }}<|im_sep|><think>\n"
    ids = template_token_ids(tok, template)
    assert tok.convert_tokens_to_ids("<|im_sep|>") in ids
    assert tok.convert_tokens_to_ids("<think>") not in ids
