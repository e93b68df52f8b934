"""The bot on the local engine with a small KV cache: the history is trimmed to the
engine's context, a message that cannot fit gets the too-long reply, and a context that
cannot hold the smallest request stops the bot from starting.

A tiny random Llama on the CPU (fp32); block size 16, so ``kv_cache_blocks = 10`` is a
context of 160 tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

from botkit.backends.local_engine import LocalEngineBackend
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.config.settings import EngineSettings
from botkit.errors import BackendError
from botkit.events import Contact, InboundMessage, OutboundReply
from connectors.base import Connector, ConnectorConfig

QUESTION = "Where is my order?"  # 15 tokens with the tiny tokenizer


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hf = tiny_model(tiny_config("LlamaForCausalLM"))
    return save_checkpoint(hf, build_tokenizer(), tmp_path_factory.mktemp("tiny-llama"))


class Recorder(Connector[ConnectorConfig]):
    name: ClassVar[str] = "test"

    def __init__(self, core: Any) -> None:
        super().__init__(ConnectorConfig(), core)
        self.replies: asyncio.Queue[OutboundReply] = asyncio.Queue()

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        self.replies.put_nowait(reply)

    async def disconnect(self) -> None:
        pass


class RecordingEngine(LocalEngineBackend):
    """The engine backend, keeping each request and each failure of a generation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[GenerationRequest] = []
        self.errors: list[BaseException] = []

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.requests.append(request)
        try:
            async for delta in super().generate(request):
                yield delta
        except BackendError as exc:
            self.errors.append(exc)
            raise


def engine(path: Path, kv_cache_blocks: int, **kw: Any) -> RecordingEngine:
    settings = EngineSettings(
        model=str(path), dtype="float32", device="cpu", temperature=0, **{"max_new_tokens": 8, **kw}
    )
    return RecordingEngine(settings, kv_cache_blocks=kv_cache_blocks, max_num_seqs=1)


def bot_settings(tmp_path: Path, **bot: Any) -> Settings:
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
            "backend": {"kind": "echo"},  # replaced by the engine backend given to Bot
            "bot": {"system_prompt": "You help the customers of a shop.", **bot},
        },
        environ={},
    )


def message(text: str, key: str) -> InboundMessage:
    return InboundMessage(
        channel="test",
        conversation_key="c1",
        contact=Contact(channel="test", external_id="u1"),
        text=text,
        idempotency_key=key,
    )


async def ask(bot: Bot, recorder: Recorder, text: str, key: str) -> OutboundReply:
    await bot.submit(message(text, key))
    async with asyncio.timeout(60):
        return await recorder.replies.get()


async def test_a_long_conversation_keeps_being_answered_on_a_small_context(
    ckpt: Path, tmp_path: Path
) -> None:
    backend = engine(ckpt, kv_cache_blocks=10)  # 160 tokens: 152 for the prompt
    settings = bot_settings(tmp_path)  # history_token_budget 2048: no help here
    async with Bot(settings, backend=backend) as bot:
        recorder = Recorder(bot)
        bot.attach_connector(recorder)
        for turn in range(8):
            await ask(bot, recorder, f"{QUESTION} ({turn})", f"k{turn}")
        # Before: "the prompt has 196 tokens but the context holds at most 160", and on.
        assert backend.errors == []
        assert backend.max_prompt_tokens() == 160 - 8
        sizes = [backend.count_prompt_tokens(r.messages) for r in backend.requests]
    assert len(backend.requests) == 8 and max(sizes) <= 152
    last = backend.requests[-1].messages
    assert last[0].role == "system" and last[-1].content == f"{QUESTION} (7)"
    # The oldest turns went first: what is left is the end of the conversation.
    kept = [m.content for m in last[1:-1] if m.role == "user"]
    assert kept and "(0)" not in kept[0]
    assert kept == [f"{QUESTION} ({t})" for t in range(7 - len(kept), 7)]


async def test_a_message_too_long_for_the_context_gets_the_too_long_reply(
    ckpt: Path, tmp_path: Path
) -> None:
    backend = engine(ckpt, kv_cache_blocks=10)
    settings = bot_settings(tmp_path)
    async with Bot(settings, backend=backend) as bot:
        recorder = Recorder(bot)
        bot.attach_connector(recorder)
        huge = " ".join([QUESTION] * 20)  # ~300 tokens, far under max_message_chars
        reply = await ask(bot, recorder, huge, "k1")
        assert reply.text.startswith(f"Your message is too long ({len(huge)} characters")
        limit = int(reply.text.split("the limit is ")[1].split(")")[0])
        assert 0 < limit < len(huge)
        assert backend.requests == []  # the model was not asked
        # The conversation goes on: the huge message is dropped from the history.
        await ask(bot, recorder, QUESTION, "k2")
    assert backend.errors == [] and len(backend.requests) == 1
    assert huge not in [m.content for m in backend.requests[0].messages]


async def test_a_reply_the_engine_cut_at_max_new_tokens_is_counted(
    ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = EngineSettings(
        model=str(ckpt), dtype="float32", device="cpu", temperature=0, max_new_tokens=3
    )
    backend = LocalEngineBackend(settings, kv_cache_blocks=10, max_num_seqs=1)
    async with Bot(bot_settings(tmp_path), backend=backend) as bot:
        recorder = Recorder(bot)
        bot.attach_connector(recorder)
        reply = await ask(bot, recorder, QUESTION, "k1")
        assert await bot.drain(10)
        counted = bot.metrics.registry.get_sample_value(
            "botkit_replies_cut_total", {"channel": "test"}
        )
    # The engine's own record of the reply: three tokens, then its cap.
    final = backend.last_record
    assert final is not None and (final.finish_reason, final.completion_tokens) == ("length", 3)
    assert reply.text and counted == 1
    assert "cut at max_new_tokens (3 tokens)" in caplog.text


async def test_a_kv_cache_too_small_for_the_reply_fails_start(ckpt: Path) -> None:
    # "Hello" as a chat is 17 tokens, + 64 for the reply = 81: 6 blocks of 16.
    backend = engine(ckpt, kv_cache_blocks=3, max_new_tokens=64)
    with pytest.raises(BackendError, match=r"kv_cache_blocks = 3 .*at least 6,"):
        await backend.start()
    assert backend.engine is None and not await backend.ready()
    enough = engine(ckpt, kv_cache_blocks=6, max_new_tokens=64)
    await enough.start()
    try:
        assert enough.max_prompt_tokens() == 6 * 16 - 64
    finally:
        await enough.close()


async def test_a_reply_longer_than_the_model_context_fails_start(ckpt: Path) -> None:
    backend = engine(ckpt, kv_cache_blocks=64, max_new_tokens=256)  # the model has 256
    with pytest.raises(BackendError, match=r"model's context is 256 tokens\): lower .*max_new"):
        await backend.start()


async def test_a_kv_cache_the_system_prompt_fills_stops_the_bot(ckpt: Path, tmp_path: Path) -> None:
    backend = engine(ckpt, kv_cache_blocks=2)  # 32 tokens: a one-word request fits
    settings = bot_settings(tmp_path, system_prompt=f"{QUESTION} {QUESTION}")
    with pytest.raises(BackendError, match=r"system_prompt.*kv_cache_blocks = 2"):
        async with Bot(settings, backend=backend):
            pass
    assert backend.engine is None  # the bot closed it
