"""The OpenAI-compatible backend: the real ``openai`` client against a local fake server.

The fake (``botkit.testing.fake_openai``) speaks the chat-completions protocol and can
misbehave like real servers and proxies; these tests prove what reaches the server, that
every failure becomes the right backend error (never a silently cut-off reply), and that
cancelling a reply closes its request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.backends import create_backend, start_backend
from botkit.backends.openai_compat import OpenAIBackend
from botkit.backends.protocol import (
    CUT_AT_LIMIT,
    ChatMessage,
    GenerationBackend,
    GenerationRequest,
    finish_reason,
)
from botkit.backends.translators import LLMTranslator
from botkit.bot import Bot
from botkit.config import BackendSettings, Settings, settings_from_mapping
from botkit.errors import BackendBusyError, BackendError, ConfigError
from botkit.events import Direction
from botkit.store import MessageStatus
from botkit.testing.fake_openai import FakeOpenAI, Misbehaviour

KEY = "sk-test-0123456789"


def settings(api: FakeOpenAI, **overrides: Any) -> BackendSettings:
    table = {"base_url": api.base_url, "model": "fake-model", "max_retries": 0, **overrides}
    return BackendSettings.model_validate({"kind": "openai", "openai": table})


def ask(*texts: str, **limits: Any) -> GenerationRequest:
    turns = [ChatMessage("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]
    return GenerationRequest(messages=(ChatMessage("system", "be brief"), *turns), **limits)


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(["fake-model", "other"], api_key=KEY) as server:
        yield server


@pytest.fixture
async def backend(api: FakeOpenAI) -> AsyncIterator[OpenAIBackend]:
    started = await start_backend(settings(api, api_key=KEY))
    assert isinstance(started, OpenAIBackend)
    api.requests.clear()  # the start's one-token check
    yield started
    await started.close()


async def reply(backend: GenerationBackend, request: GenerationRequest) -> str:
    return "".join([d async for d in backend.generate(request)])


async def test_streams_the_reply_and_sends_what_the_request_says(
    api: FakeOpenAI, backend: OpenAIBackend
) -> None:
    assert isinstance(backend, GenerationBackend)
    assert await backend.ready()
    deltas = [d async for d in backend.generate(ask("hi", "hello!", "Where is my order?"))]
    assert deltas == ["You ", "said: ", "Where ", "is ", "my ", "order?"]
    (sent,) = api.requests
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello!"},
        {"role": "user", "content": "Where is my order?"},
    ]
    # The configured defaults; no top_k / repetition_penalty (OpenAI rejects them).
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (256, 0.7, 0.9)
    assert not {"top_k", "repetition_penalty", "stop", "seed"} & body.keys()


async def test_request_values_override_the_defaults_and_extras_are_sent_when_set(
    api: FakeOpenAI,
) -> None:
    backend = await start_backend(settings(api, api_key=KEY, top_k=40, repetition_penalty=1.1))
    api.requests.clear()  # the start's one-token check
    request = ask("hi", max_new_tokens=7, temperature=0.0, top_p=0.5, stop=("\n\n",), seed=3)
    await reply(backend, request)
    await reply(backend, ask("hi", top_k=5))
    first, second = (r.body for r in api.requests)
    assert (first["max_tokens"], first["temperature"], first["top_p"]) == (7, 0.0, 0.5)
    assert first["stop"] == ["\n\n"] and first["seed"] == 3
    assert (first["top_k"], first["repetition_penalty"]) == (40, 1.1)
    assert second["top_k"] == 5
    await backend.close()


async def test_start_checks_the_model_and_names_what_is_served(api: FakeOpenAI) -> None:
    with pytest.raises(BackendError, match=r"does not serve model 'llama'.*'fake-model', 'other'"):
        await start_backend(settings(api, api_key=KEY, model="llama"))


async def test_an_ollama_model_name_without_its_tag_is_accepted(api: FakeOpenAI) -> None:
    api.models = ["llama3.2:latest", "qwen2.5:7b"]
    backend = await start_backend(settings(api, api_key=KEY, model="llama3.2"))
    assert await reply(backend, ask("hi")) == "You said: hi"
    await backend.close()


@pytest.mark.parametrize("status", [404, 403])
async def test_a_server_without_a_model_list_is_accepted_with_a_warning(
    api: FakeOpenAI, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    api.models_status = status  # no /models, or a key not allowed to list models
    with caplog.at_level(logging.WARNING, logger="botkit.backends.openai"):
        backend = await start_backend(settings(api, api_key=KEY))
    assert "does not list its models" in caplog.text
    assert api.requests[0].body["max_tokens"] == 1  # the start checked with one token
    assert await reply(backend, ask("x")) == "You said: x"
    await backend.close()


async def test_a_base_url_without_its_v1_fails_at_start_with_a_hint(api: FakeOpenAI) -> None:
    without_v1 = api.base_url.removesuffix("/v1")
    with pytest.raises(BackendError, match=r"HTTP 404.*usually ending in /v1"):
        await start_backend(settings(api, api_key=KEY, base_url=without_v1))


async def test_a_wrong_key_fails_at_start_without_showing_the_key(api: FakeOpenAI) -> None:
    with pytest.raises(BackendError, match=r"refused the API key \(HTTP 401\)") as caught:
        await start_backend(settings(api, api_key="sk-wrong-secret"))
    assert "sk-wrong-secret" not in str(caught.value)


async def test_an_unreachable_server_fails_at_start_naming_it() -> None:
    async with FakeOpenAI() as api:
        url = api.base_url
    table = {"base_url": url, "model": "fake-model", "max_retries": 0, "timeout_seconds": 2}
    with pytest.raises(BackendError, match=f"cannot reach the model server at {url}"):
        await start_backend(BackendSettings.model_validate({"kind": "openai", "openai": table}))


async def test_ready_follows_the_server(api: FakeOpenAI, backend: OpenAIBackend) -> None:
    assert await backend.ready()
    await api.stop()
    backend._probed_at = float("-inf")  # skip the probe interval
    assert not await backend.ready()
    await backend.close()
    assert not await backend.ready()


@pytest.mark.parametrize(
    ("how", "error", "match"),
    [
        (Misbehaviour("status", status=429, body={"error": {"message": "slow down"}}),
         BackendBusyError, r"overloaded \(HTTP 429\): slow down"),
        (Misbehaviour("status", status=503, body="<html><h1>Service Unavailable</h1></html>"),
         BackendBusyError, r"overloaded \(HTTP 503\): Service Unavailable$"),
        (Misbehaviour("status", status=500, body={"error": {"message": "CUDA out of memory"}}),
         BackendError, r"answered HTTP 500: CUDA out of memory"),
        (Misbehaviour("status", status=502, body="<html>" + "x" * 5000 + "</html>"),
         BackendError, r"answered HTTP 502: x{199}…$"),
        (Misbehaviour("status", status=400, body={"error": {"message": "context too long"}}),
         BackendError, r"answered HTTP 400: context too long"),
    ],
)  # fmt: skip
async def test_error_statuses_become_backend_errors(
    api: FakeOpenAI,
    backend: OpenAIBackend,
    how: Misbehaviour,
    error: type[BackendError],
    match: str,
) -> None:
    api.misbehave(how)
    with pytest.raises(error, match=match) as caught:
        await reply(backend, ask("hi"))
    assert type(caught.value) is error
    assert await reply(backend, ask("again")) == "You said: again"  # the next one is fine


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("malformed", r"malformed reply stream \(JSONDecodeError"),
        ("error_event", r"failed: the model crashed"),
        ("cut", r"reply stream from .* broke off"),
        ("unfinished", r"ended before the reply was finished"),
    ],
)
async def test_a_broken_stream_is_an_error_not_a_short_reply(
    api: FakeOpenAI, backend: OpenAIBackend, kind: str, match: str
) -> None:
    api.misbehave(Misbehaviour(kind, after=2))
    got: list[str] = []
    with pytest.raises(BackendError, match=match):
        async for delta in backend.generate(ask("one two three four")):
            got.append(delta)
    assert got == ["You ", "said: "]  # what came before the break, nothing invented


def _chunk(choices: object, **extra: object) -> str:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model"}
    return json.dumps({**body, "choices": choices, **extra})


def _delta(text: str, finish: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": {"content": text}, "finish_reason": finish}


_HELLO = [
    _chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]),
    _chunk([_delta("Hello")]),
    _chunk([_delta(" world")]),
]


def _events(chunks: list[str], *, compact: bool = False) -> str:
    if compact:  # "data:" without its space, and keep-alive comments (SSE allows both)
        return "".join(f": ping\n\ndata:{c}\n\n" for c in chunks) + "data:[DONE]\n\n"
    return "".join(f"data: {c}\n\n" for c in chunks) + "data: [DONE]\n\n"


@pytest.mark.parametrize(
    "body",
    [
        # vLLM/OpenAI with include_usage: a last chunk with no choices.
        _events([*_HELLO, _chunk([_delta("", "stop")]), _chunk([], usage={"total_tokens": 3})]),
        # finish_reason in the chunk with the last text (TGI, llama.cpp).
        _events([_HELLO[0], _chunk([_delta("Hello")]), _chunk([_delta(" world", "stop")])]),
        _events([*_HELLO, _chunk([_delta("", "stop")])], compact=True),
        # A last chunk without "delta" (LM Studio, some proxies).
        _events([*_HELLO, _chunk([{"index": 0, "finish_reason": "stop"}])]),
        # "choices": null on a usage chunk (gateways).
        _events([*_HELLO, _chunk([_delta("", "stop")]), _chunk(None, usage={})]),
        # Azure's content filter: a chunk whose choice has "delta": null.
        _events([
            *_HELLO[:2],
            _chunk([{"index": 0, "delta": None, "finish_reason": None,
                     "content_filter_offsets": {"check_offset": 5}}]),
            _HELLO[2],
            _chunk([_delta("", "stop")]),
        ]),
    ],
    ids=["usage-chunk", "finish-with-text", "compact-sse", "no-delta", "null-choices", "azure"],
)  # fmt: skip
async def test_stream_shapes_real_servers_send_are_read_whole(
    api: FakeOpenAI, backend: OpenAIBackend, body: str
) -> None:
    api.misbehave(Misbehaviour("raw", body=body))
    assert await reply(backend, ask("hi")) == "Hello world"


async def test_a_stream_with_done_but_no_finish_reason_is_not_taken_as_whole(
    api: FakeOpenAI, backend: OpenAIBackend
) -> None:
    # The client ends on [DONE] as on a clean close, so the two cannot be told apart:
    # without a finish_reason (every mainstream server sends one) the reply may be cut.
    api.misbehave(Misbehaviour("raw", body=_events(_HELLO)))
    with pytest.raises(BackendError, match="ended before the reply was finished"):
        await reply(backend, ask("hi"))


async def test_the_streams_finish_reason_is_the_servers(
    api: FakeOpenAI, backend: OpenAIBackend
) -> None:
    for finish in ("stop", CUT_AT_LIMIT):
        api.misbehave(Misbehaviour("raw", body=_events([*_HELLO, _chunk([_delta("", finish)])])))
        stream = backend.generate(ask("hi"))
        assert finish_reason(stream) is None  # not ended yet
        assert "".join([d async for d in stream]) == "Hello world"
        assert finish_reason(stream) == finish


async def test_a_stalled_stream_times_out(api: FakeOpenAI) -> None:
    backend = await start_backend(settings(api, api_key=KEY, timeout_seconds=0.5))
    api.misbehave(Misbehaviour("stall", after=1))
    with pytest.raises(BackendError, match=r"sent nothing for 0.5 s mid-reply"):
        await reply(backend, ask("hi"))
    await backend.close()


async def test_transient_failures_are_retried_before_the_reply_starts(api: FakeOpenAI) -> None:
    backend = await start_backend(settings(api, api_key=KEY, max_retries=1))
    api.requests.clear()  # the start's one-token check
    api.misbehave(Misbehaviour("status", status=503, retry_after=0))
    assert await reply(backend, ask("hi")) == "You said: hi"
    assert len(api.requests) == 2
    await backend.close()


async def test_closing_the_stream_closes_the_request(api: FakeOpenAI) -> None:
    api.word_delay = 0.05
    backend = await start_backend(settings(api, api_key=KEY, max_concurrent_requests=1))
    stream = backend.generate(ask(" ".join(["word"] * 200)))
    assert await anext(stream) == "You "
    await stream.aclose()  # type: ignore[attr-defined]
    await api.wait_idle(aborted=1)
    # The slot was released: the one permitted request can run again at once.
    api.word_delay = 0.0
    assert await reply(backend, ask("next")) == "You said: next"
    await backend.close()


async def test_over_the_concurrency_limit_a_request_waits_then_is_busy(api: FakeOpenAI) -> None:
    api.word_delay = 0.05
    backend = await start_backend(
        settings(api, api_key=KEY, max_concurrent_requests=1, queue_timeout_seconds=0.2)
    )
    first = backend.generate(ask("a b c d e f g h i j k l m n o p"))
    assert await anext(first) == "You "
    with pytest.raises(BackendBusyError, match=r"1 replies from .* in progress"):
        await reply(backend, ask("second"))
    await first.aclose()  # type: ignore[attr-defined]
    await backend.close()


async def test_not_started_is_a_clear_error(api: FakeOpenAI) -> None:
    backend = create_backend(settings(api))
    assert not await backend.ready()
    with pytest.raises(BackendError, match="not started"):
        await reply(backend, ask("hi"))


async def test_llm_translation_through_the_server(api: FakeOpenAI, backend: OpenAIBackend) -> None:
    translator = LLMTranslator(backend)
    assert await translator.translate(["Hola", "Adiós"], "es", "en") == [
        "You said: Hola",
        "You said: Adiós",
    ]
    bodies = [r.body for r in api.requests]
    assert all(b["temperature"] == 0.0 for b in bodies)
    assert all("from Spanish (es) into English (en)" in b["messages"][0]["content"] for b in bodies)


# ------------------------------------------------------------------------- configuration
def config(**openai: Any) -> Settings:
    return settings_from_mapping({"backend": {"kind": "openai", "openai": openai}}, environ={})


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({}, "backend"),  # no model
        ({"model": "m", "base_url": "localhost:8000/v1"}, "backend.openai.base_url"),
        ({"model": "m", "base_url": "ftp://h/v1"}, "backend.openai.base_url"),
        ({"model": "m", "base_url": "http://h/v1?x=1"}, "backend.openai.base_url"),
        ({"model": "m", "temperature": -1}, "backend.openai.temperature"),
        ({"model": "m", "top_p": 0}, "backend.openai.top_p"),
        ({"model": "m", "max_concurrent_requests": 0}, "backend.openai.max_concurrent_requests"),
        ({"model": "m", "max_retries": 100}, "backend.openai.max_retries"),
        ({"model": "m", "api_key": 5}, "backend.openai.api_key"),
        ({"model": "m", "top_k": "ten"}, "backend.openai.top_k"),
        ({"model": "m", "repetition_penalty": float("inf")}, "backend.openai.repetition_penalty"),
        ({"model": "m", "temperature": float("nan")}, "backend.openai.temperature"),
        ({"model": "m", "organisation": "x"}, "backend.openai.organisation"),
    ],
)
def test_bad_settings_name_their_key(table: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(**table)
    assert path in {p.path for p in caught.value.problems}


def test_the_key_comes_from_the_environment_and_never_prints() -> None:
    data = {"backend": {"kind": "openai", "openai": {"model": "m", "api_key": "${KEY}"}}}
    loaded = settings_from_mapping(data, environ={"KEY": KEY})
    key = loaded.backend.openai.api_key
    assert key is not None and key.get_secret_value() == KEY
    assert KEY not in repr(loaded) and KEY not in str(loaded.backend.openai)
    assert loaded.backend.openai.base_url == "http://127.0.0.1:8000/v1"


# ------------------------------------------------------------------------- through the bot
async def test_the_bot_answers_through_the_server(
    api: FakeOpenAI, make_settings: Callable[..., Settings]
) -> None:
    table = {"base_url": api.base_url, "model": "fake-model", "api_key": KEY, "max_retries": 0}
    settings_ = make_settings(backend={"kind": "openai", "openai": table})
    async with Bot(settings_) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("Where is my order?", "k1"))
        await bot.submit(message("Thanks", "k2"))
        first, second = await recorder(bot).wait_for(2)
        api.misbehave(Misbehaviour("status", status=429))
        await bot.submit(message("Hello?", "k3"))
        _, _, busy = await recorder(bot).wait_for(3)
        rows = await bot.store.messages_after("test", "c1", 0, 10)
    assert (first.text, second.text) == ("You said: Where is my order?", "You said: Thanks")
    assert busy.text == settings_.bot.busy_reply
    replies = [r for r in rows if r.direction == Direction.OUTBOUND]
    assert [r.status for r in replies] == [MessageStatus.SENT] * 3
    # The second request carried the first exchange as history.
    history = [m["content"] for m in api.requests[2].body["messages"][1:]]  # [0]: the start
    assert history == ["Where is my order?", "You said: Where is my order?", "Thanks"]


async def test_a_reply_the_server_cut_at_max_tokens_is_counted(
    api: FakeOpenAI, make_settings: Callable[..., Settings]
) -> None:
    table = {"base_url": api.base_url, "model": "fake-model", "api_key": KEY, "max_retries": 0}
    settings_ = make_settings(backend={"kind": "openai", "openai": table})
    async with Bot(settings_) as bot:
        bot.attach_connector(RecordingConnector(bot))
        cut = _events([*_HELLO, _chunk([_delta("", CUT_AT_LIMIT)])])
        api.misbehave(Misbehaviour("raw", body=cut))
        await bot.submit(message("Tell me everything", "k1"))
        await bot.submit(message("Thanks", "k2"))
        first, second = await recorder(bot).wait_for(2)
        assert await bot.drain(10)
        counted = bot.metrics.registry.get_sample_value(
            "botkit_replies_cut_total", {"channel": "test"}
        )
    assert (first.text, second.text) == ("Hello world", "You said: Thanks")
    assert counted == 1
