"""The local engine's token counting (chat template + tokenizer: ~330 ms for a 44k-token
prompt with SmolLM2's) runs on its counting thread, never on the event loop, while the
bot shortens a long conversation to the engine's context.

A tiny random Llama on the CPU (fp32); ``kv_cache_blocks = 10`` is a context of 160
tokens, so the history is shortened from the fourth turn on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from test_engine_context import QUESTION, Recorder, RecordingEngine, ask, bot_settings, ckpt

from botkit.backends.protocol import ChatMessage
from botkit.bot import Bot
from botkit.config.settings import EngineSettings

__all__ = ["ckpt"]  # the module's fixture, shared


class ThreadsCounting(RecordingEngine):
    """The engine backend, noting the thread of each count."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count_threads: set[str] = set()

    def count_tokens(self, text: str) -> int:
        self.count_threads.add(threading.current_thread().name)
        return super().count_tokens(text)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        self.count_threads.add(threading.current_thread().name)
        return super().count_prompt_tokens(messages)


async def test_the_engine_counts_off_the_event_loop(ckpt: Path, tmp_path: Path) -> None:
    settings = EngineSettings(
        model=str(ckpt), dtype="float32", device="cpu", temperature=0, max_new_tokens=8
    )
    backend = ThreadsCounting(settings, kv_cache_blocks=10, max_num_seqs=1)
    async with Bot(bot_settings(tmp_path), backend=backend) as bot:
        recorder = Recorder(bot)
        bot.attach_connector(recorder)
        assert backend.counting_executor is not None
        for turn in range(6):
            await ask(bot, recorder, f"{QUESTION} ({turn})", f"k{turn}")
    assert backend.errors == [] and len(backend.requests) == 6
    last = backend.requests[-1].messages
    assert 2 < len(last) < 12  # shortened: not all of the 10 earlier turns
    assert backend.count_threads
    assert all(n.startswith("botkit-prompt-count") for n in backend.count_threads)
    assert backend.counting_executor is None  # closed with the backend


async def test_history_counts_are_remembered(ckpt: Path) -> None:
    settings = EngineSettings(model=str(ckpt), dtype="float32", device="cpu", max_new_tokens=8)
    backend = RecordingEngine(settings, kv_cache_blocks=10, max_num_seqs=1)
    await backend.start()
    try:
        calls = 0
        tokenizer = backend._count_tokenizer
        encode = tokenizer.encode

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return encode(*args, **kwargs)

        tokenizer.encode = counted
        first = backend.count_tokens(QUESTION)
        assert backend.count_tokens(QUESTION) == first and calls == 1
        assert backend.count_tokens(QUESTION + "!") >= first and calls == 2
    finally:
        await backend.close()
