"""The knowledge plugin keeps heavy work off the event loop: a long message's analysis
with its search, one search thread at a time, and the freeing of a replaced index."""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, message

from botkit.bot import Bot
from botkit.config import Settings
from botkit.knowledge import KnowledgePlugin, PassageIndex
from botkit.knowledge import plugin as knowledge_plugin
from botkit.testing.backends import RecordingEcho

Started = Callable[..., Any]


@pytest.fixture
def started(make_settings: Callable[..., Settings], kb_dir: Path) -> Started:
    """``async with started(**plugin_config) as (bot, backend)``: a bot with the plugin
    on the sample knowledge base."""

    @asynccontextmanager
    async def start(**config: Any) -> AsyncIterator[tuple[Bot, RecordingEcho]]:
        settings = make_settings(plugins={"knowledge": {"sources": [f"{kb_dir}/*"], **config}})
        backend = RecordingEcho()
        async with Bot(settings, backend=backend) as bot:
            bot.attach_connector(RecordingConnector(bot))
            yield bot, backend

    return start


async def test_a_long_message_is_analyzed_in_a_worker_thread(
    started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    original = PassageIndex.query

    def recording(self: PassageIndex, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PassageIndex, "query", recording)
    monkeypatch.setattr(knowledge_plugin, "THREAD_FROM_CHARS", 60, raising=False)
    async with started() as (bot, backend):
        await bot.submit(message("Do you accept PayPal? " * 4, "k1"))  # 88 characters
        assert await bot.drain(30)
        await bot.submit(message("PayPal?", "k2", conversation="c2"))
        assert await bot.drain(30)
    main = threading.main_thread()
    assert [t is main for t in threads] == [False, True]
    assert all("Payment methods" in s for s in backend.systems)  # found all the same


async def test_searches_in_threads_run_one_at_a_time(
    started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    second = threading.Event()
    original = PassageIndex.search

    def overlapping(self: PassageIndex, *args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running > 1:
                second.set()
        second.wait(1.0)  # until another search runs beside it (never, one at a time)
        with lock:
            running -= 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PassageIndex, "search", overlapping)
    monkeypatch.setattr(knowledge_plugin, "THREAD_FROM_POSTINGS", 1)  # every search
    async with started() as (bot, backend):
        await bot.submit(message("Do you accept PayPal?", "k1", conversation="c1"))
        await bot.submit(message("Do you accept Klarna?", "k2", conversation="c2"))
        assert await bot.drain(30)
    assert len(backend.systems) == 2 and most == 1


async def test_a_reload_frees_the_old_index_in_a_worker_thread(
    started: Started, kb_dir: Path
) -> None:
    freed_in: list[threading.Thread] = []
    async with started(reload_seconds=0) as (bot, backend):
        plugin = bot.plugins.get("knowledge")
        assert isinstance(plugin, KnowledgePlugin) and plugin.handler is not None
        await bot.submit(message("Do you accept PayPal?", "k1"))  # a search used it
        assert await bot.drain(30)
        weakref.finalize(
            plugin.handler.library, lambda: freed_in.append(threading.current_thread())
        )
        (kb_dir / "stores.md").write_text("# Stores\nOur shop in Utrecht opens at 9.")
        assert await plugin.reload_if_changed()
        assert len(freed_in) == 1  # freed by the reload, not by a collection later
        assert freed_in[0] is not threading.main_thread()
        await bot.submit(message("When does the Utrecht shop open?", "k2"))
        assert await bot.drain(30)
    assert "[1] Stores\nOur shop in Utrecht" in backend.systems[-1]
