"""The OpenAI-compatible backend against the quirks of real servers (``openai_fake``).

Each test is a finding from running botkit against vLLM, llama.cpp's server, Ollama,
TGI and OpenAI: what the customer would have seen (reasoning text, the fallback reply
for ever, a long wait for the busy reply) and what the operator would have read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from core_helpers import RecordingConnector, message, recorder
from openai_fake import LLAMA_CPP_OVERFLOW, Answer, QuirkyOpenAI, events

from botkit.backends import start_backend
from botkit.backends._openai_stream import ThinkFilter
from botkit.backends.openai_compat import OpenAIBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest, PromptLimits
from botkit.backends.translators import LLMTranslator
from botkit.bot import Bot
from botkit.config import BackendSettings, Settings
from botkit.errors import BackendBusyError, BackendError
from botkit.language.translate import TextTranslator
from botkit.store import approx_tokens

THOUGHT = ["<th", "ink>", "The customer ", "asks about ", "order 4711; margin 40%", "</thi", "nk>"]
ANSWER = ["\n\n", "Your ", "order ", "ships ", "tomorrow."]
LOG = "botkit.backends.openai"


def settings(api: QuirkyOpenAI, **overrides: Any) -> BackendSettings:
    table = {"base_url": api.base_url, "model": "qwen3:8b", "max_retries": 0, **overrides}
    return BackendSettings.model_validate({"kind": "openai", "openai": table})


async def started(api: QuirkyOpenAI, **overrides: Any) -> OpenAIBackend:
    backend = await start_backend(settings(api, **overrides))
    assert isinstance(backend, OpenAIBackend)
    api.requests.clear()  # the start's one-token check
    return backend


def ask(*texts: str, **limits: Any) -> GenerationRequest:
    turns = [ChatMessage("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]
    return GenerationRequest(messages=(ChatMessage("system", "be brief"), *turns), **limits)


async def reply(backend: OpenAIBackend, request: GenerationRequest | None = None) -> str:
    return "".join([d async for d in backend.generate(request or ask("hi"))])


@pytest.fixture
async def api() -> AsyncIterator[QuirkyOpenAI]:
    async with QuirkyOpenAI() as server:
        yield server


@pytest.fixture
async def backend(api: QuirkyOpenAI) -> AsyncIterator[OpenAIBackend]:
    started_ = await started(api)
    yield started_
    await started_.close()


# ------------------------------------------------------------------ reasoning text
@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
async def test_a_leading_think_block_never_reaches_the_customer(
    api: QuirkyOpenAI, backend: OpenAIBackend, piece: int
) -> None:
    api.answers.append(Answer("events", events(*THOUGHT, *ANSWER), piece=piece))
    assert await reply(backend) == "Your order ships tomorrow."


@pytest.mark.parametrize(
    "contents",
    [["<b>Order</b> ", "ships."], ["<", "3 days"], ["  Hello"], ["The <think> tag is HTML-ish."]],
)
async def test_a_reply_that_does_not_start_with_a_think_block_is_untouched(
    api: QuirkyOpenAI, backend: OpenAIBackend, contents: list[str]
) -> None:
    api.answers.append(Answer("events", events(*contents)))
    assert await reply(backend) == "".join(contents)


async def test_the_customer_and_the_history_never_see_the_reasoning(
    api: QuirkyOpenAI, make_settings: Callable[..., Settings]
) -> None:
    table = {"base_url": api.base_url, "model": "qwen3:8b", "max_retries": 0}
    settings_ = make_settings(backend={"kind": "openai", "openai": table}, language={"mode": "off"})
    async with Bot(settings_) as bot:
        bot.attach_connector(RecordingConnector(bot))
        api.answers.append(Answer("events", events(*THOUGHT, *ANSWER)))
        await bot.submit(message("Where is order 4711?", "k1"))
        await recorder(bot).wait_for(1)
        api.answers.append(Answer("events", events("<think>", "Hmm", finish="length")))
        await bot.submit(message("And the invoice?", "k2"))
        first, spent = await recorder(bot).wait_for(2)
    assert first.text == "Your order ships tomorrow."
    assert spent.text == settings_.bot.fallback_reply  # no reply text: never an empty one
    history = [m["content"] for m in api.requests[-1]["messages"]]
    assert "Your order ships tomorrow." in history
    assert not any("margin" in text or "think>" in text for text in history)


def test_the_think_filter_holds_back_only_a_few_characters() -> None:
    think = ThinkFilter()
    assert think.feed("<think>") == ""
    for _ in range(10_000):
        assert think.feed("reasoning goes on and on ") == ""
        assert len(think._held) < len("</think>")
    assert think.feed("</think>\n\nHi") == "Hi"
    assert think.feed(" there") == " there" and think.finish() == ""


async def test_the_llm_translator_leaves_the_reasoning_out(
    api: QuirkyOpenAI, backend: OpenAIBackend
) -> None:
    api.answers.append(Answer("events", events(*THOUGHT, "\n", "Where is my order?")))
    assert await LLMTranslator(backend).translate(["¿Dónde está?"], "es", "en") == [
        "Where is my order?"
    ]


async def test_a_model_that_reasons_away_its_token_budget_is_named_in_the_log(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.answers.append(Answer("events", events(reasoning=("Let me ", "think..."), finish="length")))
    api.answers.append(Answer("events", events("<think>", "Let me think", finish="length")))
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert await reply(backend) == ""
        assert await reply(backend) == ""
    spent = [r for r in caplog.records if "spent all 256 reply tokens reasoning" in r.message]
    assert len(spent) == 2 and "max_new_tokens" in spent[0].message


async def test_a_reply_that_is_all_reasoning_is_named_in_the_log(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.answers.append(Answer("events", events(reasoning=("Hmm.",))))
    api.answers.append(Answer("events", events("<think>", "Hmm.")))
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert await reply(backend) == ""  # the delivery sends fallback_reply instead
        assert await reply(backend) == ""
    assert "was all reasoning (no text after it)" in caplog.text
    assert "was all reasoning (a <think> block that never closed)" in caplog.text


# ------------------------------------------------------------------ cut replies
async def test_a_reply_cut_at_max_tokens_is_logged(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.answers.append(Answer("events", events("Your ", "order ", "ships", finish="length")))
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert await reply(backend, ask("hi", max_new_tokens=3)) == "Your order ships"
    assert "was cut at max_new_tokens (3 tokens)" in caplog.text


async def test_a_translation_cut_at_max_tokens_keeps_the_original_sentence(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    api.answers.append(Answer("events", events("Where is", finish="length")))
    api.answers.append(Answer("events", events("Thank you.")))
    text = TextTranslator(LLMTranslator(backend))
    with caplog.at_level(logging.WARNING):
        out = await text.translate_text("¿Dónde está mi pedido? Gracias.", "es", "en")
    assert out == "¿Dónde está mi pedido? Thank you."
    assert "translation of a 22-character sentence was cut" in caplog.text


class _Empty:
    name = "llm"

    def supports(self, source: str, target: str) -> bool:
        return True

    async def translate(self, texts: Any, source: str, target: str) -> list[str]:
        return ["" for _ in texts]


async def test_an_empty_translation_of_a_sentence_with_a_number_keeps_the_sentence() -> None:
    # The number is a protected span: restoring it into "" made "4711", not "".
    out = await TextTranslator(_Empty()).translate_text("¿Dónde está mi pedido 4711?", "es", "en")
    assert out == "¿Dónde está mi pedido 4711?"


# ------------------------------------------------------------------ OpenAI's newer models
async def test_a_parameter_the_model_refuses_stops_the_start_in_the_servers_words() -> None:
    async with QuirkyOpenAI(("o3-mini",), reasoning_model=True) as api:
        with pytest.raises(BackendError, match=r"HTTP 400: Unsupported parameter: 'max_tokens'"):
            await start_backend(settings(api, model="o3-mini"))
        with pytest.raises(BackendError, match=r"'temperature' does not support 0.7.*top_p"):
            await start_backend(
                settings(api, model="o3-mini", max_tokens_field="max_completion_tokens")
            )


async def test_max_completion_tokens_and_no_temperature_for_a_reasoning_model() -> None:
    async with QuirkyOpenAI(("o3-mini",), reasoning_model=True) as api:
        backend = await started(
            api,
            model="o3-mini",
            max_tokens_field="max_completion_tokens",
            temperature="server",
            top_p="server",
        )
        assert await reply(backend) == "Your order ships tomorrow."
        # The translator asks for temperature 0; "server" means never sent.
        assert await LLMTranslator(backend).translate(["Hola"], "es", "en") == [
            "Your order ships tomorrow."
        ]
        for body in api.requests:
            assert not {"max_tokens", "temperature", "top_p"} & body.keys()
        assert [b["max_completion_tokens"] for b in api.requests] == [256, 36]
        await backend.close()


@pytest.mark.parametrize(
    ("base_url", "field"),
    [
        ("https://api.openai.com/v1", "max_completion_tokens"),
        # Data residency, and Azure OpenAI (two host names): the same models, the same
        # refusal of max_tokens; "auto" sent max_tokens to them.
        ("https://eu.api.openai.com/v1", "max_completion_tokens"),
        ("https://US.API.OpenAI.com/v1", "max_completion_tokens"),
        ("https://myres.openai.azure.com/openai/v1", "max_completion_tokens"),
        ("https://myres.cognitiveservices.azure.com/openai/v1", "max_completion_tokens"),
        ("http://127.0.0.1:8000/v1", "max_tokens"),
        ("https://my-gateway.example/openai/v1", "max_tokens"),
        ("https://api.openai.com.example/v1", "max_tokens"),
        ("https://notapi.openai.com/v1", "max_tokens"),
    ],
)
def test_auto_sends_max_completion_tokens_to_openai_only(base_url: str, field: str) -> None:
    table = {"base_url": base_url, "model": "m"}
    backend = OpenAIBackend(BackendSettings.model_validate({"openai": table}).openai)
    args = backend.arguments(ask("hi"))
    assert args[field] == 256 and {"max_tokens", "max_completion_tokens"} - {field} - args.keys()


# ------------------------------------------------------------------ small contexts
def test_the_token_estimate_counts_cjk_characters_as_tokens() -> None:
    zh = "我的订单还没有到。请帮我查一下物流信息。"
    assert approx_tokens(zh) >= len(zh)
    assert approx_tokens("สวัสดีครับ") >= 10
    assert approx_tokens("Where is my order?") == 5  # ASCII as before: 4 characters a token


ZH = "我的订单还没有到。请帮我查一下物流信息。" * 60  # 1,200 characters, ~1,200 tokens


async def test_with_context_tokens_the_history_fits_the_servers_context(
    make_settings: Callable[..., Settings],
) -> None:
    async with QuirkyOpenAI(context_tokens=4096) as api:
        table = {"base_url": api.base_url, "model": "qwen3:8b", "max_retries": 0}
        table["context_tokens"] = 4096
        settings_ = make_settings(
            backend={"kind": "openai", "openai": table},
            bot={"history_token_budget": 1_000_000},  # only the context bounds it
            language={"mode": "off"},
        )
        async with Bot(settings_) as bot:
            assert isinstance(bot.backend, PromptLimits)
            bot.attach_connector(RecordingConnector(bot))
            for i in range(5):
                await bot.submit(message(f"{ZH}{i}", f"k{i}"))
                await recorder(bot).wait_for(i + 1)
            await bot.submit(message(ZH * 4, "k-long"))  # alone over the context
            replies = await recorder(bot).wait_for(6)
        assert [r.text for r in replies[:5]] == ["Your order ships tomorrow."] * 5
        assert replies[5].text.startswith("Your message is too long")
        assert len(api.requests) == 1 + 5  # the start's check, then one each: none refused


async def test_a_prompt_over_the_context_is_sent_again_without_old_turns(
    api: QuirkyOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    api.context_tokens = 4096
    backend = await started(api)
    history = [f"{ZH}{i}" for i in range(5)]
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert await reply(backend, ask(*history)) == "Your order ships tomorrow."
    refused, retried = api.requests
    assert len(refused["messages"]) == 6 and retried["messages"][0]["content"] == "be brief"
    assert retried["messages"][-1]["content"] == history[-1]
    assert "longer than its context of 4096 tokens" in caplog.text
    # The context the server named is used from now on.
    assert backend.max_prompt_tokens() == 4096 - 256
    await backend.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"object": "error", "message": "This model's maximum context length is 4096 "
               "tokens. However, you requested 4400 tokens (4144 in the messages, 256 in the "
               "completion).", "type": "BadRequestError", "code": 400}),  # vLLM
        (400, {"error": {"code": 400, "message": LLAMA_CPP_OVERFLOW, "n_ctx": 4096}}),
        (422, {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
               "<= 4096. Given: 4000 `inputs` tokens and 256 `max_new_tokens`",
               "error_type": "validation"}),  # TGI
        (400, {"error": {"message": "This model's maximum context length is 8192 tokens.",
               "type": "invalid_request_error", "code": "context_length_exceeded"}}),  # OpenAI
    ],
    ids=["vllm", "llama.cpp", "tgi", "openai"],
)  # fmt: skip
async def test_each_servers_context_overflow_is_recognised(
    api: QuirkyOpenAI, backend: OpenAIBackend, status: int, body: dict[str, Any]
) -> None:
    api.answers.append(Answer("status", body, status=status))
    assert await reply(backend, ask("old", "turn", "new")) == "Your order ships tomorrow."
    assert [len(r["messages"]) for r in api.requests] == [4, 2]


async def test_a_message_alone_over_the_context_fails_with_a_hint(
    api: QuirkyOpenAI, backend: OpenAIBackend
) -> None:
    api.context_tokens = 512
    with pytest.raises(BackendError, match=r"even without history; set .*context_tokens"):
        await reply(backend, ask(ZH))
    assert len(api.requests) == 1


async def test_max_new_tokens_over_the_servers_context_is_named(
    api: QuirkyOpenAI, backend: OpenAIBackend
) -> None:
    api.context_tokens = 200  # max_new_tokens is 256
    with pytest.raises(BackendError, match=r"256 tokens alone fill the server's context of 200"):
        await reply(backend, ask("old", "turn", "new"))
    assert len(api.requests) == 1 and backend.max_prompt_tokens() is None


async def test_a_context_too_small_for_the_system_prompt_stops_the_start(
    api: QuirkyOpenAI,
) -> None:
    backend = await started(api, context_tokens=300)
    with pytest.raises(BackendError, match=r"context_tokens = 300 leaves 44 prompt tokens"):
        backend.check_prompt_room("You are a helpful assistant. " * 20)
    backend.check_prompt_room("Be brief.")
    await backend.close()


# ------------------------------------------------------------------ quota, busy, waits
async def test_an_exhausted_quota_is_an_error_not_a_busy_signal(
    api: QuirkyOpenAI, backend: OpenAIBackend
) -> None:
    quota = {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }
    api.answers.append(Answer("status", {"error": quota}, status=429))
    with pytest.raises(BackendError, match=r"quota is used up \(HTTP 429\): You exceeded") as e:
        await reply(backend)
    assert type(e.value) is BackendError


async def test_the_busy_path_logs_the_servers_words(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    limited = {"error": {"message": "Rate limit reached for requests", "code": "rate_limit"}}
    api.answers.append(Answer("status", limited, status=429))
    with caplog.at_level(logging.WARNING, logger=LOG), pytest.raises(BackendBusyError):
        await reply(backend)
    assert "overloaded (HTTP 429): Rate limit reached for requests" in caplog.text


async def test_a_retry_after_past_the_timeout_is_not_waited_for(api: QuirkyOpenAI) -> None:
    backend = await started(api, max_retries=2, timeout_seconds=2)
    limited = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
    api.answers.append(Answer("status", limited, status=429, headers={"Retry-After": "20"}))
    begun = time.monotonic()
    with pytest.raises(BackendBusyError):
        await reply(backend)
    assert time.monotonic() - begun < 1.5 and len(api.requests) == 1
    await backend.close()


async def test_a_short_retry_after_is_waited_for_within_the_timeout(api: QuirkyOpenAI) -> None:
    backend = await started(api, max_retries=2, timeout_seconds=5)
    limited = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
    api.answers.append(Answer("status", limited, status=429, headers={"Retry-After": "0.2"}))
    assert await reply(backend) == "Your order ships tomorrow."
    assert len(api.requests) == 2
    await backend.close()


async def test_timeout_seconds_bounds_the_whole_wait_retries_included(
    api: QuirkyOpenAI,
) -> None:
    backend = await started(api, max_retries=2, timeout_seconds=1)
    api.answers += [Answer("stall"), Answer("stall"), Answer("stall")]
    begun = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 1 s"):
        await reply(backend)
    assert time.monotonic() - begun < 1.8 and len(api.requests) == 1
    await backend.close()


async def test_timeout_seconds_bounds_the_wait_for_the_first_chunk_too(
    api: QuirkyOpenAI,
) -> None:
    # Headers at 0.6 s, then nothing: a queued request on a busy vLLM looks like this.
    backend = await started(api, timeout_seconds=1)
    api.answers.append(Answer("slow_start", delay=0.6))
    begun = time.monotonic()
    with pytest.raises(BackendError, match=r"did not start the reply within 1 s"):
        await reply(backend)
    assert time.monotonic() - begun < 1.4
    await backend.close()


async def test_ready_is_false_while_the_server_refuses_the_key(
    api: QuirkyOpenAI, backend: OpenAIBackend
) -> None:
    # The key listed the models at the start: a 401 (revoked) or 403 (its rights taken
    # away since) means every reply would fail. A key that never could list them:
    # test_openai_backend_start.
    assert await backend.ready()
    for status in (401, 403):
        api.models_status = status
        backend._probed_at = float("-inf")  # skip the probe interval
        assert not await backend.ready()
    api.models_status = 200
    backend._probed_at = float("-inf")
    assert await backend.ready()


# ------------------------------------------------------------------ a reply sent whole
async def test_a_server_that_ignores_stream_true_is_read_whole(
    api: QuirkyOpenAI, backend: OpenAIBackend, caplog: pytest.LogCaptureFixture
) -> None:
    choice = {"index": 0, "finish_reason": "stop"}
    whole = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "qwen3:8b",
        "choices": [{**choice, "message": {"role": "assistant", "content": "Ships tomorrow."}}],
    }
    api.answers.append(Answer("json", whole))
    assert await reply(backend) == "Ships tomorrow."
    cut = {**whole, "choices": [{**whole["choices"][0], "finish_reason": "length"}]}  # type: ignore[dict-item]
    api.answers.append(Answer("json", cut))
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert await reply(backend) == "Ships tomorrow."
    assert "cut at max_new_tokens" in caplog.text
