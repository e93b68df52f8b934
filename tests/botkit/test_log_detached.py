"""Work that outlives the message it was started from carries no message's tag
(``botkit.log_context.spawn_detached``): Slack's token recheck, started by a refused
reply, and the busy/fallback translate-ahead, started by the first message in a
language. A plain ``create_task`` copies the reply task's binding into them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from botkit.channel_health import ChannelHealth
from botkit.language import Glossary
from botkit.language.substitutes import SubstituteTexts
from botkit.language.translate import TextTranslator
from botkit.log_context import (
    MessageIdentity,
    bind_message,
    current_message,
    spawn_detached,
)
from botkit.testing.translator import MarkingTranslator
from connectors.slack import _token_watch


async def test_spawn_detached_drops_the_callers_message() -> None:
    seen: list[MessageIdentity | None] = []

    async def work() -> None:
        seen.append(current_message())

    async def reply() -> None:
        bind_message("web", 2, 1)
        await asyncio.create_task(work())  # copies the binding: the message's own work
        await spawn_detached(work(), name="detached")

    await asyncio.create_task(reply())
    assert seen == [MessageIdentity("web", 2, 1), None]


class _SeesContext(MarkingTranslator):
    def __init__(self) -> None:
        super().__init__()
        self.bound: list[MessageIdentity | None] = []

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.bound.append(current_message())
        return await super().translate(texts, source, target)


async def test_translate_ahead_is_no_messages_work() -> None:
    translator = _SeesContext()
    cache = SubstituteTexts(TextTranslator(translator, Glossary()), "en", ["Busy."])

    async def reply() -> None:
        bind_message("telegram", 7, 3)
        cache.warm("es")

    await asyncio.create_task(reply())
    await cache.wait()
    assert translator.bound == [None]


class _Client:
    """What ``TokenWatch`` asks of the Slack client: ``auth.test``, which passes."""

    def __init__(self) -> None:
        self.bound: list[MessageIdentity | None] = []

    async def auth_test(self) -> dict[str, Any]:
        self.bound.append(current_message())
        return {"ok": True}


async def test_slack_token_recheck_is_no_messages_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_token_watch, "RECHECK_S", 0.01)
    client, health = _Client(), ChannelHealth("slack")
    watch = _token_watch.TokenWatch(client, health, timeout_s=5.0)  # type: ignore[arg-type]

    async def reply() -> None:
        bind_message("slack", 4, 2)
        watch.refused("chat.postMessage", "invalid_auth", "invalid_auth")

    await asyncio.create_task(reply())
    for _ in range(500):
        if health.up:
            break
        await asyncio.sleep(0.01)
    await watch.close()
    assert health.up and client.bound == [None]
