"""The knowledge plugin through the real bot (SQLite, a recording backend): which
passages reach the model, when none are searched, reloads, and bad configs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, message

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import ConfigError
from botkit.knowledge import KnowledgePlugin, PassageIndex
from botkit.knowledge import plugin as knowledge_plugin
from botkit.knowledge.config import DEFAULT_NO_MATCH_INSTRUCTION
from botkit.knowledge.documents import Passage
from botkit.knowledge.index import Hit
from botkit.knowledge.plugin import (
    CLOSE_MARK,
    FRAME_CHARS,
    LINK_NOTE,
    OPEN_MARK,
    REFERENCE_NOTE,
    format_passages,
)
from botkit.plugins import available_plugins
from botkit.store import ConversationStatus
from botkit.testing.backends import RecordingEcho
from botkit.testing.translator import MarkingTranslator

KnowledgeBot = Callable[..., Any]


@pytest.fixture
def knowledge_bot(make_settings: Callable[..., Settings], kb_dir: Path) -> KnowledgeBot:
    """``async with knowledge_bot(**plugin_config) as (bot, backend)``."""

    @asynccontextmanager
    async def started(
        translator: MarkingTranslator | None = None, language: dict[str, Any] | None = None,
        **config: Any,
    ) -> AsyncIterator[tuple[Bot, RecordingEcho]]:  # fmt: skip
        plugin = {"sources": [f"{kb_dir}/*"], **config}
        settings = make_settings(plugins={"knowledge": plugin}, language=language or {},
                                 bot={"system_prompt": "You help Shop customers."})  # fmt: skip
        backend = RecordingEcho()
        async with Bot(settings, backend=backend, translator=translator) as bot:
            bot.attach_connector(RecordingConnector(bot))
            yield bot, backend

    return started


async def _ask(bot: Bot, text: str, key: str, conversation: str = "c1") -> None:
    await bot.submit(message(text, key, conversation=conversation))
    assert await bot.drain(30)


def test_found_without_installed_entry_point() -> None:
    assert available_plugins()["knowledge"] == "botkit.knowledge:KnowledgePlugin"


async def test_matching_passages_join_the_system_prompt(knowledge_bot: KnowledgeBot) -> None:
    async with knowledge_bot() as (bot, backend):
        assert bot.plugins.active == ["knowledge"]
        await _ask(bot, "Do you accept PayPal?", "k1")
    [system] = backend.systems
    assert system.startswith(f"You help Shop customers.\n\n{REFERENCE_NOTE}\n{OPEN_MARK}")
    assert "\n\nAnswer using the company information above" in system
    assert "[1] Payment > Payment methods\nWe accept Visa, Mastercard" in system
    assert "Shipping costs" not in system  # only what matched


async def test_nothing_matched_tells_the_model_not_to_guess(knowledge_bot: KnowledgeBot) -> None:
    async with knowledge_bot() as (bot, backend):
        await _ask(bot, "Do you sell shoes?", "k1")
    assert backend.systems == [f"You help Shop customers.\n\n{DEFAULT_NO_MATCH_INSTRUCTION}"]


async def test_no_match_instruction_can_be_off(knowledge_bot: KnowledgeBot) -> None:
    async with knowledge_bot(no_match_instruction="") as (bot, backend):
        await _ask(bot, "Do you sell shoes?", "k1")
    assert backend.systems == ["You help Shop customers."]


async def test_a_follow_up_keeps_the_subject_of_the_previous_question(
    knowledge_bot: KnowledgeBot,
) -> None:
    async with knowledge_bot(max_passages=1) as (bot, backend):
        await _ask(bot, "Do you ship to Norway?", "k1")
        await _ask(bot, "How long?", "k2")
    assert "[1] Shipping > Delivery times" in backend.systems[1]
    async with knowledge_bot(max_passages=1, history_weight=0) as (bot, backend):
        await _ask(bot, "Do you ship to Norway?", "k3", conversation="c2")
        await _ask(bot, "How long?", "k4", conversation="c2")
    assert backend.systems[1].endswith(DEFAULT_NO_MATCH_INSTRUCTION)


async def test_a_new_question_outranks_the_previous_subject(
    knowledge_bot: KnowledgeBot, kb_dir: Path
) -> None:
    (kb_dir / "gift.md").write_text("# Gift wrapping\n\nGift wrapping costs 4 EUR per item.\n")
    async with knowledge_bot(max_passages=1) as (bot, backend):
        await _ask(bot, "How much does gift wrapping cost?", "k1")
        await _ask(bot, "How do I return an item?", "k2")
    assert "[1] Gift wrapping\n" in backend.systems[0]
    assert "[1] Returns and refunds > Returning an item\n" in backend.systems[1]


async def test_passages_stay_within_the_context_budget(knowledge_bot: KnowledgeBot) -> None:
    async with knowledge_bot(max_passages=5, passage_chars=200, max_context_chars=600,
                             min_relevance=0.0) as (bot, backend):  # fmt: skip
        await _ask(bot, "return refund shipping order", "k1")
    [system] = backend.systems
    # Between the marks: the frame around them is not counted (test_prompt_frame.py).
    passages = system.split(f"{OPEN_MARK}\n", 1)[1].split(f"\n{CLOSE_MARK}", 1)[0]
    assert passages.startswith("[1] ") and "[5] " not in passages  # not all five fit
    assert len(passages) <= 600


class Rewording(MarkingTranslator):
    """Translates every Spanish text into one fixed English question."""

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if target == "en":
            return ["Do you accept PayPal?" for _ in texts]
        return await super().translate(texts, source, target)


async def test_pivot_mode_searches_the_translation_and_the_customers_words(
    knowledge_bot: KnowledgeBot,
) -> None:
    async with knowledge_bot(translator=Rewording()) as (bot, backend):
        await _ask(bot, "¿Cómo puedo usar un código de descuento en mi pedido?", "k1")
    [system] = backend.systems
    assert "] Payment > Payment methods" in system  # from the English translation
    assert "] Descuentos > Código de descuento" in system  # from the customer's words


async def test_messages_answered_otherwise_are_not_searched(
    knowledge_bot: KnowledgeBot, make_settings: Callable[..., Settings], kb_dir: Path
) -> None:
    plugins = {"handoff": {}, "knowledge": {"sources": [f"{kb_dir}/*"]}}
    backend = RecordingEcho()
    async with Bot(make_settings(plugins=plugins), backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await _ask(bot, "/human", "k1")  # answered by the hand-off plugin
        await _ask(bot, "Do you accept PayPal?", "k2")  # a human has it now
        conversation = await bot.store.get_conversation("test", "c1")
    assert conversation is not None and conversation.status == ConversationStatus.WAITING_HUMAN
    assert backend.systems == []


@pytest.mark.parametrize(
    "text",
    ["\x00\x01 PayPal \ud800?", "PayPal " * 560, "🙂" * 50, "مرحبا، هل تقبلون باي بال؟",
     "你们接受PayPal吗"],
)  # fmt: skip
async def test_hostile_messages_are_searched_safely(knowledge_bot: KnowledgeBot, text: str) -> None:
    async with knowledge_bot() as (bot, backend):
        await _ask(bot, text, "k1")
        replies = [r.text for r in bot.connectors["test"].replies]  # type: ignore[attr-defined]
    assert replies  # answered (or told the message is too long), never dropped
    if text.startswith("\x00"):
        assert "Payment methods" in backend.systems[0]


def _spoil_every_file(directory: Path) -> None:
    for path in directory.iterdir():
        path.write_bytes(b"\xff")  # not UTF-8: no file gives a passage


async def test_edited_files_are_indexed_again(knowledge_bot: KnowledgeBot, kb_dir: Path) -> None:
    async with knowledge_bot(reload_seconds=0) as (bot, backend):
        plugin = bot.plugins.get("knowledge")
        assert isinstance(plugin, KnowledgePlugin)
        assert not await plugin.reload_if_changed()
        (kb_dir / "stores.md").write_text("# Stores\nOur shop in Utrecht opens at 9.")
        assert await plugin.reload_if_changed()
        await _ask(bot, "When does the Utrecht shop open?", "k1")
        # Files that give no passage at all keep the previous index.
        await asyncio.to_thread(_spoil_every_file, kb_dir)
        assert not await plugin.reload_if_changed()
        await _ask(bot, "When does the Utrecht shop open?", "k2")
    assert all("[1] Stores\nOur shop in Utrecht" in s for s in backend.systems)


async def test_files_that_give_no_passage_are_read_again_only_when_they_change(
    knowledge_bot: KnowledgeBot,
    kb_dir: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[object] = []
    original = knowledge_plugin.load_library

    def counting(*args: Any) -> Any:
        loads.append(args)
        return original(*args)

    monkeypatch.setattr(knowledge_plugin, "load_library", counting)
    caplog.set_level(logging.ERROR)
    async with knowledge_bot(reload_seconds=0) as (bot, backend):
        plugin = bot.plugins.get("knowledge")
        assert isinstance(plugin, KnowledgePlugin)
        await asyncio.to_thread(_spoil_every_file, kb_dir)
        assert not await plugin.reload_if_changed()
        assert len(loads) == 2 and caplog.text.count("now give no passage") == 1
        for _ in range(3):  # unchanged: not read again, nothing logged again
            assert not await plugin.reload_if_changed()
        assert len(loads) == 2 and caplog.text.count("now give no passage") == 1
        (kb_dir / "stores.md").write_text("# Stores\nOur shop in Utrecht opens at 9.")
        assert await plugin.reload_if_changed()
        await _ask(bot, "When does the Utrecht shop open?", "k1")
    assert "[1] Stores\nOur shop in Utrecht" in backend.systems[0]


async def test_a_file_left_out_for_its_hard_links_is_read_once_it_has_one_name(
    knowledge_bot: KnowledgeBot, kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with knowledge_bot(reload_seconds=0) as (bot, backend):
        plugin = bot.plugins.get("knowledge")
        assert isinstance(plugin, KnowledgePlugin)
        (kb_dir / "stores.md").write_text("# Stores\nOur shop in Utrecht opens at 9.")
        os.link(kb_dir / "stores.md", kb_dir.parent / "stray.md")
        assert await plugin.reload_if_changed()
        assert f"{kb_dir}/stores.md: left out: it has 2 names (hard links)" in caplog.text
        # The stray name removed: the file's contents and time are as they were.
        (kb_dir.parent / "stray.md").unlink()
        assert await plugin.reload_if_changed()
        await _ask(bot, "When does the Utrecht shop open?", "k1")
    assert "[1] Stores\nOur shop in Utrecht" in backend.systems[0]


async def test_the_watcher_reloads_in_the_background(
    knowledge_bot: KnowledgeBot, kb_dir: Path
) -> None:
    async with knowledge_bot(reload_seconds=1) as (bot, backend):
        (kb_dir / "stores.md").write_text("# Stores\nOur shop in Utrecht opens at 9.")
        async with asyncio.timeout(30):  # the first look is a second after startup
            while True:
                await asyncio.sleep(0.05)
                plugin = bot.plugins.get("knowledge")
                assert isinstance(plugin, KnowledgePlugin) and plugin.handler is not None
                if len(plugin.handler.library.index) == 12:
                    break
        await _ask(bot, "When does the Utrecht shop open?", "k1")
    assert "[1] Stores" in backend.systems[0]


async def test_no_passages_disables_the_plugin_with_the_reason(
    knowledge_bot: KnowledgeBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with knowledge_bot(sources=[f"{tmp_path}/nothing/*.md", f"{tmp_path}/x.pdf"]) as (
        bot, backend,
    ):  # fmt: skip
        assert bot.plugins.active == []
        assert "has no passages" in bot.plugins.failed["knowledge"]
        await _ask(bot, "Do you accept PayPal?", "k1")  # still answered, without passages
    assert backend.systems == ["You help Shop customers."]
    assert "no .md, .markdown or .txt file matches" in caplog.text
    assert "x.pdf: not a supported file" in caplog.text


async def test_an_unclosed_comment_is_logged_and_the_page_still_answers(
    knowledge_bot: KnowledgeBot, kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    (kb_dir / "widget.md").write_text(
        "# Widget\nPaste the snippet; the line `<!-- botkit widget` marks it.\n\n"
        "# Gift cards\nGift cards <!-- TODO: ask finance\nnever expire.\n"
    )
    async with knowledge_bot() as (bot, backend):
        await _ask(bot, "Do gift cards expire?", "k1")
    assert "[1] Gift cards\nGift cards <!-- TODO: ask finance\nnever expire." in backend.systems[0]
    assert f"knowledge base: {kb_dir}/widget.md: line 5: an HTML comment" in caplog.text


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"sources": []}, "plugins.knowledge.sources: must list at least one file or pattern"),
        ({"sources": ["x"] * 101}, "plugins.knowledge.sources: must list at most 100 files"),
        ({"sources": [" "]}, "a source must not be empty"),
        ({"instruction": "no slot"}, "must contain {passages}"),
        ({"instruction": "{passages} {other}"}, "may use only the {passages} placeholder"),
        ({"passage_chars": 2000, "max_context_chars": 2350}, "at least passage_chars + 400"),
        ({"reload_seconds": 0.01}, "must be 0 (never) or at least 1 second"),
        ({"max_passages": 0}, "plugins.knowledge.max_passages"),
        ({"min_relevance": 1}, "plugins.knowledge.min_relevance"),
        ({"colour": "red"}, "plugins.knowledge.colour"),
    ],
)
async def test_config_errors_name_the_key(
    make_settings: Callable[..., Settings], config: dict[str, Any], error: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        make_settings(plugins={"knowledge": {"sources": ["kb/*"], **config}})
    assert error in str(raised.value)


async def test_expensive_searches_run_off_the_event_loop(
    knowledge_bot: KnowledgeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = PassageIndex.search

    def recording(self: PassageIndex, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PassageIndex, "search", recording)
    # What decides is the work the question makes (postings read), not the base's size.
    monkeypatch.setattr(knowledge_plugin, "THREAD_FROM_POSTINGS", 3)
    async with knowledge_bot() as (bot, backend):
        await _ask(bot, "Do you accept PayPal or Klarna?", "k1")  # 1 + 1 + 1 postings...
        await _ask(bot, "PayPal?", "k2", conversation="c2")  # ...and one
    main = threading.main_thread().name
    assert threads[0] != main and threads[1] == main
    assert all("Payment methods" in s for s in backend.systems)


async def test_a_page_link_reaches_the_model(knowledge_bot: KnowledgeBot, kb_dir: Path) -> None:
    (kb_dir / "stores.md").write_text(
        "---\nurl: https://help.example.com/stores\n---\n# Stores\nOur shop in Utrecht opens at 9."
    )
    async with knowledge_bot() as (bot, backend):
        await _ask(bot, "When does the Utrecht shop open?", "k1")
    assert "[1] Stores (https://help.example.com/stores)\nOur shop in Utrecht" in backend.systems[0]
    assert f"{REFERENCE_NOTE}\n{LINK_NOTE}\n{OPEN_MARK}" in backend.systems[0]


def test_the_note_about_links_stays_inside_the_budget() -> None:
    text = "x" * 300
    hits = [Hit(Passage("f.md", n, f"T{n}", text, url="https://help.example.com/p"), 0.5)
            for n in range(3)]  # fmt: skip
    for budget in range(700, 1400, 7):
        shown = format_passages(hits, budget)
        assert len(shown) - FRAME_CHARS <= budget, budget
        assert shown.startswith(f"{REFERENCE_NOTE}\n{LINK_NOTE}\n{OPEN_MARK}"), budget
        assert shown.endswith(CLOSE_MARK), budget
