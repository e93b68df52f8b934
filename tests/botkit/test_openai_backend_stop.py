"""Stop strings reach an OpenAI-compatible server, except OpenAI's reasoning models,
which refuse the field (HTTP 400 "Unsupported parameter: 'stop'") on every request."""

from __future__ import annotations

import pytest

from botkit.backends.openai_compat import OpenAIBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config.settings import OpenAISettings

REQUEST = GenerationRequest(messages=(ChatMessage("user", "hi"),), stop=("<company_info",))


@pytest.mark.parametrize(
    ("base_url", "model"),
    [
        ("http://127.0.0.1:8000/v1", "o3"),  # a local server's model of that name
        ("https://api.openai.com/v1", "gpt-4o-mini"),
    ],
)
def test_stop_strings_are_sent(base_url: str, model: str) -> None:
    backend = OpenAIBackend(OpenAISettings(base_url=base_url, model=model))
    assert backend.arguments(REQUEST)["stop"] == ["<company_info"]


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "GPT-5-mini"])
def test_openai_reasoning_models_get_no_stop_field(model: str) -> None:
    backend = OpenAIBackend(OpenAISettings(base_url="https://api.openai.com/v1", model=model))
    assert "stop" not in backend.arguments(REQUEST)
