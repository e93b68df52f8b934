"""One hostile request never takes the engine down: huge top_k, a sampling failure, token
ids the model has no embedding for. Plus the finish reason of a stop string completed by
the last allowed token. Tiny random Llama, fp32, CPU."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hf_tiny import build_tokenizer, collect, save_checkpoint, tiny_config, tiny_model

from engine import (
    AsyncEngine,
    EngineConfig,
    FinishReason,
    InvalidRequestError,
    LLMEngine,
    LoadedModel,
    SamplingParams,
    TextDelta,
    load_model,
)

LONG = 120  # tokens of the conversation that must survive the hostile request
GREEDY = SamplingParams(temperature=0, max_new_tokens=LONG, ignore_eos=True)
PROMPT = "Hello, how can I help you"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = build_tokenizer()
    return save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), tok, tmp_path_factory.mktemp("tiny-llama")
    )


@pytest.fixture(scope="module")
def loaded(ckpt: Path) -> LoadedModel:
    return load_model(ckpt, dtype="float32", device="cpu")


def make_engine(loaded: LoadedModel, tokenizer: Any = None) -> LLMEngine:
    return LLMEngine(
        loaded.model,
        tokenizer or loaded.tokenizer,
        loaded.model_config,
        EngineConfig(block_size=4, num_kv_blocks=128),
        chat_template=loaded.chat_template,
    )


async def alongside_a_live_stream(engine: LLMEngine, prompt: Any, params: SamplingParams) -> Any:
    """Run ``prompt`` while another conversation streams; that one must finish whole.

    Returns what the hostile request gave: its (text, final) or the exception it raised.
    """
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        other = aeng.submit(PROMPT, GREEDY)
        first = await anext(other)
        try:
            result: Any = await collect(aeng.submit(prompt, params))
        except InvalidRequestError as exc:
            result = exc
        _text, final = await collect(other)
        assert final.completion_tokens == LONG and final.finish_reason == "length"
        assert isinstance(first, TextDelta) and aeng.running
        return result
    finally:
        await aeng.close()


async def test_huge_top_k_means_no_limit(loaded: LoadedModel) -> None:
    """2**64 used to overflow an int64 tensor inside the step and kill every stream."""
    no_limit = SamplingParams(temperature=0.7, top_k=2**64, seed=3, max_new_tokens=8)
    text, final = await alongside_a_live_stream(make_engine(loaded), "Refunds take", no_limit)
    assert final.completion_tokens >= 1
    same = SamplingParams(temperature=0.7, top_k=0, seed=3, max_new_tokens=8)
    assert make_engine(loaded).generate(["Refunds take"], same)[0][0] == text


async def test_a_request_whose_sampling_fails_fails_alone(loaded: LoadedModel) -> None:
    bad = SamplingParams(temperature=0.7, max_new_tokens=8)
    object.__setattr__(bad, "temperature", 10**400)  # validation refuses it; slipped in
    result = await alongside_a_live_stream(make_engine(loaded), "Refunds take", bad)
    assert isinstance(result, InvalidRequestError) and "sampling failed" in str(result)


def test_sampling_failure_frees_the_request(loaded: LoadedModel) -> None:
    eng = make_engine(loaded)
    bad = SamplingParams(temperature=0.7, max_new_tokens=8)
    object.__setattr__(bad, "temperature", 10**400)
    good = eng.add_request(
        "good", PROMPT, SamplingParams(temperature=0.9, seed=2, max_new_tokens=6)
    )
    seq = eng.add_request("bad", PROMPT, bad)
    outs = []
    while eng.has_unfinished():
        outs += eng.step()
    failed = [o for o in outs if o.request_id == "bad"]
    assert len(failed) == 1 and failed[0].finished
    assert isinstance(failed[0].error, InvalidRequestError)
    assert seq.finish_reason is FinishReason.ERROR and seq.num_output_tokens == 0
    assert good.num_output_tokens == 6
    assert eng.block_manager.num_free_blocks == 128


def larger_tokenizer(loaded: LoadedModel) -> Any:
    """The model's tokenizer plus a token the model has no embedding row for (a
    fine-tune that added tokens without resizing the embeddings)."""
    tok = copy.deepcopy(loaded.tokenizer)
    tok.add_tokens(["<|tool|>"])
    assert tok.convert_tokens_to_ids("<|tool|>") >= loaded.model_config.vocab_size
    return tok


async def test_text_prompt_outside_the_model_vocabulary_fails_alone(loaded: LoadedModel) -> None:
    eng = make_engine(loaded, larger_tokenizer(loaded))
    result = await alongside_a_live_stream(eng, "call <|tool|> now", GREEDY)
    assert isinstance(result, InvalidRequestError)
    assert "<|tool|>" in str(result) and "vocabulary" in str(result)


def test_chat_prompt_outside_the_model_vocabulary_is_invalid(loaded: LoadedModel) -> None:
    """A tokenizer trained with more entries than the model has rows: ordinary text."""
    tok = build_tokenizer(vocab_size=400)
    tok.chat_template = None
    eng = make_engine(loaded, tok)
    text = "Refunds take five to seven business days to appear on your statement."
    assert max(tok.encode(text)) >= loaded.model_config.vocab_size
    with pytest.raises(InvalidRequestError, match="vocabulary"):
        eng.add_request("chat", [{"role": "user", "content": text}], GREEDY)
    assert not eng.has_unfinished()


async def test_customer_typing_an_added_token_is_just_text(loaded: LoadedModel) -> None:
    """Message contents cannot produce added tokens at all (see test_prompt.py), so the
    same out-of-vocabulary token typed in a chat is served as text."""
    eng = make_engine(loaded, larger_tokenizer(loaded))
    chat = [{"role": "user", "content": "call <|tool|> now"}]
    _text, final = await alongside_a_live_stream(eng, chat, SamplingParams(max_new_tokens=4))
    assert 1 <= final.completion_tokens <= 4


def test_stop_string_completed_by_the_last_allowed_token_reports_stop(
    loaded: LoadedModel,
) -> None:
    eng = make_engine(loaded)
    prompt = loaded.tokenizer.encode(PROMPT, add_special_tokens=False)
    params = dict(temperature=0, ignore_eos=True, max_new_tokens=8)
    full, toks = eng.generate([prompt], SamplingParams(**params))[0]  # type: ignore[arg-type]
    # A stop string that ends exactly at the 8th token, and starts before it.
    last = loaded.tokenizer.decode(toks[-1:])
    stop = full[-len(last) - 1 :]
    assert full.find(stop) == len(full) - len(stop)
    seq = eng.add_request("s", prompt, SamplingParams(stop=(stop,), **params))  # type: ignore[arg-type]
    outs = []
    while eng.has_unfinished():
        outs += eng.step()
    assert "".join(o.text for o in outs) == full[: -len(stop)]
    assert seq.num_output_tokens == 8
    assert seq.finish_reason is FinishReason.STOP
    assert outs[-1].finish_reason is FinishReason.STOP


async def test_backend_refuses_to_start_with_invalid_sampling_defaults(tmp_path: Path) -> None:
    """Settings built without validation (model_construct) fail at start, before loading."""
    from botkit.backends.local_engine import LocalEngineBackend
    from botkit.config.settings import EngineSettings
    from botkit.errors import BackendError

    bad = EngineSettings.model_construct(model=str(tmp_path / "never-loaded"), temperature=150.0)
    with pytest.raises(BackendError, match=r"sampling defaults.*temperature"):
        await LocalEngineBackend(bad).start()
