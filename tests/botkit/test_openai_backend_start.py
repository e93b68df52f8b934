"""The OpenAI-compatible backend's start and readiness against what real servers and
keys do: a key allowed to chat but not to list models (OpenAI's restricted and project
keys), and a server that loads the model on the first request (Ollama, LM Studio,
llama-swap) and sends nothing until it is loaded."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai_fake import Answer, QuirkyOpenAI

from botkit.backends import start_backend
from botkit.backends.openai_compat import OpenAIBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config import BackendSettings
from botkit.errors import BackendError

LOG = "botkit.backends.openai"


def settings(api: QuirkyOpenAI, **overrides: Any) -> BackendSettings:
    table = {"base_url": api.base_url, "model": "qwen3:8b", "max_retries": 0, **overrides}
    return BackendSettings.model_validate({"kind": "openai", "openai": table})


async def started(api: QuirkyOpenAI, **overrides: Any) -> OpenAIBackend:
    backend = await start_backend(settings(api, **overrides))
    assert isinstance(backend, OpenAIBackend)
    return backend


async def reply(backend: OpenAIBackend) -> str:
    request = GenerationRequest(messages=(ChatMessage("user", "hi"),))
    return "".join([d async for d in backend.generate(request)])


async def probe_ready(backend: OpenAIBackend) -> bool:
    backend._probed_at = float("-inf")  # skip the probe interval
    return await backend.ready()


@pytest.fixture
async def api() -> AsyncIterator[QuirkyOpenAI]:
    async with QuirkyOpenAI() as server:
        yield server


# ------------------------------------------------------------------ a restricted key
async def test_a_key_that_may_chat_but_not_list_models_stays_ready(
    api: QuirkyOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # /models answers 403 to it for good: the start accepted that, but every readiness
    # probe asked /models again, and /readyz took every replica out of service.
    api.models_status = 403
    with caplog.at_level(logging.WARNING, LOG):
        backend = await started(api, api_key="sk-restricted")
    assert "does not list its models (HTTP 403)" in caplog.text
    assert await backend.ready()
    for _ in range(3):
        assert await probe_ready(backend)
    assert await reply(backend) == "Your order ships tomorrow."
    api.models_status = 401  # the key revoked: every reply would fail
    assert not await probe_ready(backend)
    api.models_status = 403
    assert await probe_ready(backend)
    await backend.close()


# ------------------------------------------------------------------ a model loaded on demand
async def test_a_model_still_loading_at_start_is_a_warning_not_a_stop(
    api: QuirkyOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # The first chat request is answered once the model is loaded, which can take
    # longer than timeout_seconds: `botkit run` stopped ("did not answer within").
    api.answers.append(Answer("stall", stall_seconds=30))
    with caplog.at_level(logging.WARNING, LOG):
        backend = await started(api, timeout_seconds=1)
    assert "did not answer within 1 s during the one-token check" in caplog.text
    assert "loads the model on the first request" in caplog.text
    assert await backend.ready()
    assert await reply(backend) == "Your order ships tomorrow."
    await backend.close()


@pytest.mark.parametrize(
    "answer",
    [
        Answer("drop"),  # llama-swap restarting its upstream, a proxy giving up
        Answer("status", status=504, body={"error": {"message": "upstream timed out"}}),
    ],
    ids=["connection-lost", "gateway-timeout"],
)
async def test_a_probe_that_loses_its_answer_is_a_warning_not_a_stop(
    api: QuirkyOpenAI, caplog: pytest.LogCaptureFixture, answer: Answer
) -> None:
    api.answers.append(answer)
    with caplog.at_level(logging.WARNING, LOG):
        backend = await started(api, timeout_seconds=5)
    assert "during the one-token check at start" in caplog.text
    assert await reply(backend) == "Your order ships tomorrow."
    await backend.close()


@pytest.mark.parametrize(
    ("status", "match"),
    [(400, r"HTTP 400: bad field"), (403, r"refused the API key \(HTTP 403\)")],
)
async def test_a_probe_the_server_refuses_still_stops_the_start(
    api: QuirkyOpenAI, status: int, match: str
) -> None:
    api.answers.append(Answer("status", status=status, body={"error": {"message": "bad field"}}))
    with pytest.raises(BackendError, match=match):
        await started(api, timeout_seconds=5)
