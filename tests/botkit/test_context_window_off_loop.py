"""Counting a prompt's tokens off the event loop: a backend that says its counting is
slow (``counting_executor``, the local engine) gets all the counts of a message in one
call there, so the loop keeps serving other conversations meanwhile. The engine end to
end is in tests/engine/test_engine_counting_off_loop.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from core_helpers import RecordingConnector, message
from test_context_window import SETTINGS, BoundedEcho, turns
from test_pipeline import make_ctx, reply_text

from botkit.backends.protocol import ChatMessage
from botkit.bot import Bot
from botkit.config import Settings
from botkit.log_context import bind_message, current_message
from botkit.pipeline import Pipeline
from botkit.pipeline.context_window import off_loop
from botkit.pipeline.generation import GenerationHandler

# Each count takes this long (a long prompt through SmolLM2's tokenizer takes ~300 ms).
COUNT_S = 0.02


class SlowCounting(BoundedEcho):
    """A bounded echo whose counting is slow, and says so with a counting executor."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        self.counting_executor = ThreadPoolExecutor(1, thread_name_prefix="count")
        self.threads: set[str] = set()

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        self.threads.add(threading.current_thread().name)
        time.sleep(COUNT_S)
        return super().count_prompt_tokens(messages)

    def count_tokens(self, text: str) -> int:
        self.threads.add(threading.current_thread().name)
        time.sleep(COUNT_S)
        return super().count_tokens(text)


class Ticker:
    """Counts the event loop's turns while it runs: the loop blocked, it does not tick."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        self.ticks = 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_the_generation_step_fits_and_measures_off_the_loop() -> None:
    # Too long even alone: the fitting (2 counts) and the too-long reply's values (2
    # more) are all counted off the loop, while the loop keeps turning.
    backend = SlowCounting(24)
    ctx = make_ctx("x" * 38, SETTINGS)
    ctx.backend = backend
    ctx.history = turns(2)
    async with Ticker() as ticker:
        await Pipeline(fallback=GenerationHandler(SETTINGS.bot)).run(ctx)
    assert ctx.reply is not None and ctx.reply.source == "too_long"
    expected = SETTINGS.bot.too_long_reply.replace("{length}", "38").replace("{limit}", "19")
    assert await reply_text(ctx) == expected
    assert backend.threads and all(name.startswith("count") for name in backend.threads)
    # Four counts of COUNT_S: the loop turned many times meanwhile (blocked: once).
    assert ticker.ticks >= 20


async def test_a_conversation_is_counted_off_the_loop(
    make_settings: Callable[..., Settings],
) -> None:
    # Loading the history (its budget: count_tokens per message) and fitting it
    # (count_prompt_tokens), then the generation step: nothing counted on the loop.
    backend = SlowCounting(40)
    settings = make_settings(bot={"system_prompt": "SYS"})
    async with Bot(settings, backend=backend) as bot:
        connector = RecordingConnector(bot)
        bot.attach_connector(connector)
        async with Ticker() as ticker:
            for turn in range(4):
                await bot.submit(message(f"turn {turn}", f"k{turn}"))
                await connector.wait_for(turn + 1)
    assert [r.text for r in connector.replies] == [f"echo: turn {t}" for t in range(4)]
    assert backend.threads and all(name.startswith("count") for name in backend.threads)
    # The last request kept only the turns that fit: 4 + 3*8 (+ its own 7) <= 40.
    assert [m.content for m in backend.requests[-1].messages][1:] == [
        "turn 2", "echo: turn 2", "turn 3"
    ]  # fmt: skip
    assert ticker.ticks >= 20


async def test_off_loop_keeps_the_message_a_log_line_is_about() -> None:
    backend = SlowCounting(None)
    bind_message("web", 2, 1)
    about = await off_loop(backend, current_message)
    assert about is not None and about.tag == "web:2#1"
    # Without an executor the call is made right here.
    assert await off_loop(object(), threading.current_thread) is threading.current_thread()
