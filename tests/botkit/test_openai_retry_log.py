"""The OpenAI backend's retry line is throttled (on-call audit: a 3 s blip of HTTP 500s
under load wrote 130 of them at INFO): the first at INFO, then one per interval with
how many it skipped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from openai_fake import Answer, QuirkyOpenAI

from botkit.backends import _openai_retry, start_backend
from botkit.backends.openai_compat import OpenAIBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config import BackendSettings

LOG = "botkit.backends.openai"
BOOM = {"error": {"message": "internal boom", "code": "server_error"}}


@pytest.fixture
async def api() -> AsyncIterator[QuirkyOpenAI]:
    async with QuirkyOpenAI() as server:
        yield server


async def _backend(api: QuirkyOpenAI) -> OpenAIBackend:
    table = {"base_url": api.base_url, "model": "qwen3:8b", "max_retries": 1}
    settings = BackendSettings.model_validate({"kind": "openai", "openai": table})
    backend = await start_backend(settings)
    assert isinstance(backend, OpenAIBackend)
    return backend


async def _replies_after_a_500(api: QuirkyOpenAI, backend: OpenAIBackend, count: int) -> None:
    request = GenerationRequest(messages=(ChatMessage("user", "hi"),))
    for _ in range(count):
        api.answers.append(Answer("status", BOOM, status=500, headers={"Retry-After": "0"}))
        assert "".join([d async for d in backend.generate(request)]) == api.reply


async def test_the_retry_line_is_logged_once_per_interval_with_a_count(
    api: QuirkyOpenAI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_openai_retry, "_RETRY_LINE_S", 0.5, raising=False)
    monkeypatch.setattr(_openai_retry, "_retry_lines", {}, raising=False)
    backend = await _backend(api)
    try:
        with caplog.at_level(logging.INFO, logger=LOG):
            await _replies_after_a_500(api, backend, 5)
            lines = [r for r in caplog.records if "trying again" in r.getMessage()]
            assert len(lines) == 1 and lines[0].levelno == logging.INFO
            assert "internal boom" in lines[0].getMessage()
            await asyncio.sleep(0.6)
            await _replies_after_a_500(api, backend, 1)
        lines = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
        assert len(lines) == 2
        assert lines[1].endswith("(4 more since the last warning)")
    finally:
        await backend.close()
