"""The echo backend and the backend factory (auto falls back to echo, saying why)."""

from __future__ import annotations

import logging
import sys
import tomllib

import pytest

from botkit.backends import EchoBackend, create_backend, start_backend
from botkit.backends.protocol import (
    ChatMessage,
    GenerationBackend,
    GenerationRequest,
    ReportsFinish,
    finish_reason,
)
from botkit.config import BackendSettings, EchoSettings, settings_from_mapping
from botkit.errors import BackendError, ConfigError


def request(*texts: str) -> GenerationRequest:
    turns = [ChatMessage("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]
    return GenerationRequest(messages=(ChatMessage("system", "sys"), *turns))


async def test_echo_streams_word_by_word_deterministically() -> None:
    backend = EchoBackend()
    await backend.start()
    assert isinstance(backend, GenerationBackend)
    assert await backend.ready()
    req = request("earlier", "answer", "  Where is\tmy  order? ")
    first = [d async for d in backend.generate(req)]
    second = [d async for d in backend.generate(req)]
    assert first == second == ["echo: ", "  ", "Where ", "is\t", "my  ", "order? "]
    assert "".join(first) == "echo:   Where is\tmy  order? "
    assert backend.count_tokens("a b  c") == 3
    await backend.close()
    assert not await backend.ready()


async def test_echo_without_prefix_and_empty_message() -> None:
    backend = EchoBackend(EchoSettings(prefix=""))
    assert [d async for d in backend.generate(request(""))] == []
    assert [d async for d in backend.generate(request("x"))] == ["x"]


async def test_echo_stream_can_be_closed_early() -> None:
    backend = EchoBackend(EchoSettings(word_delay_seconds=0.001))
    stream = backend.generate(request("a b c d"))
    assert await anext(stream) == "echo: "
    await stream.aclose()  # type: ignore[attr-defined]


async def test_echo_says_its_replies_end_finished() -> None:
    stream = EchoBackend().generate(request("a b"))
    assert isinstance(stream, ReportsFinish) and finish_reason(stream) is None
    assert "".join([d async for d in stream]) == "echo: a b"
    assert finish_reason(stream) == "stop"  # the echo has no token cap
    closed = EchoBackend().generate(request("a b"))
    await anext(closed)
    await closed.aclose()  # type: ignore[attr-defined]
    assert finish_reason(closed) is None  # a reply that did not end has no reason


async def test_kind_echo() -> None:
    backend = await start_backend(BackendSettings(kind="echo"))
    assert isinstance(backend, EchoBackend)


# A model path that cannot exist: whether or not the engine package is installed, it
# cannot load, so these tests never load a real model.
MISSING_MODEL = {"model": "/nonexistent/botkit-test-model.gguf"}


async def test_auto_with_an_installed_engine_and_a_broken_model_fails_naming_it() -> None:
    # Only a missing engine falls back to echo (below): a deployment whose model path has
    # a typo must not answer customers with their own words.
    pytest.importorskip("engine", reason="the engine package is what this test is about")
    settings = BackendSettings.model_validate({"kind": "auto", "engine": MISSING_MODEL})
    with pytest.raises(BackendError, match=r"botkit-test-model\.gguf.*kind = \"echo\""):
        await start_backend(settings)


async def test_engine_kind_fails_loudly() -> None:
    settings = BackendSettings.model_validate({"kind": "engine", "engine": MISSING_MODEL})
    with pytest.raises(BackendError):
        await start_backend(settings)


def test_auto_fallback_when_the_engine_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # None in sys.modules makes the import raise ImportError, as without the extra.
    monkeypatch.setitem(sys.modules, "botkit.backends.local_engine", None)
    with caplog.at_level(logging.WARNING, logger="botkit.backends"):
        backend = create_backend(BackendSettings(kind="auto"))
    assert isinstance(backend, EchoBackend)
    assert "local engine unavailable" in caplog.text and "botkit[engine]" in caplog.text
    with pytest.raises(BackendError, match="not available"):
        create_backend(BackendSettings(kind="engine"))


# The engine rejects these for every request (engine.sampling bounds: temperature 0 or in
# [0.01, 100], repetition_penalty in [0.01, 100], all finite): the config must reject them
# first, naming the key, instead of a bot that starts and then fails every reply.
BAD_ENGINE_DEFAULTS = [
    ("temperature", "150.0"),
    ("temperature", "inf"),
    ("temperature", "nan"),
    ("temperature", "0.001"),
    ("repetition_penalty", "inf"),
    ("repetition_penalty", "0.0"),
    ("repetition_penalty", "0.001"),
    ("repetition_penalty", "1000.0"),
    ("top_p", "nan"),
]


@pytest.mark.parametrize(("key", "value"), BAD_ENGINE_DEFAULTS)
def test_engine_sampling_defaults_outside_the_engine_range_fail_at_config_load(
    key: str, value: str
) -> None:
    data = tomllib.loads(f'[backend]\nkind = "engine"\n[backend.engine]\n{key} = {value}\n')
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ={})
    assert [p.path for p in info.value.problems] == [f"backend.engine.{key}"]


def test_engine_sampling_defaults_at_the_bounds_are_accepted() -> None:
    for key, value in [
        ("temperature", 0),
        ("temperature", 0.01),
        ("temperature", 100.0),
        ("repetition_penalty", 0.01),
        ("repetition_penalty", 100.0),
        ("top_k", 10_000_000),
    ]:
        settings = settings_from_mapping({"backend": {"engine": {key: value}}}, environ={})
        assert getattr(settings.backend.engine, key) == value
