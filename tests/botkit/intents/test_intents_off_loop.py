"""The intents plugin keeps a large matcher's work off the event loop: its build at
startup, and each match; a small matcher matches inline (a thread hop would cost more)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from intents_helpers import HOURS_EN, IntentsBot

from botkit.intents import config as intents_config
from botkit.intents import plugin as intents_plugin
from botkit.intents.config import IntentsConfig
from botkit.intents.matching import IntentMatcher


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[threading.Thread]]:
    """The threads ``IntentMatcher`` was built and matched on."""
    seen: dict[str, list[threading.Thread]] = {"init": [], "match": []}
    init, match = IntentMatcher.__init__, IntentMatcher.match

    def recording_init(self: IntentMatcher, *args: Any, **kwargs: Any) -> None:
        seen["init"].append(threading.current_thread())
        init(self, *args, **kwargs)

    def recording_match(self: IntentMatcher, *texts: str) -> Any:
        seen["match"].append(threading.current_thread())
        return match(self, *texts)

    monkeypatch.setattr(IntentMatcher, "__init__", recording_init)
    monkeypatch.setattr(IntentMatcher, "match", recording_match)
    return seen


async def test_a_large_matcher_matches_in_a_worker_thread(
    intents_bot: IntentsBot,
    threads: dict[str, list[threading.Thread]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intents_plugin, "THREAD_FROM_POSTINGS", 1, raising=False)
    async with intents_bot() as say:
        assert await say.text("when do you open?") == HOURS_EN
        reply = await say("Tell me about your new laptops")  # no intent: the model
        assert reply is not None and reply.metadata.get("intent") is None
    main = threading.main_thread()
    assert len(threads["match"]) == 2  # once a message: check() reused the match
    assert all(t is not main for t in threads["match"])


async def test_a_small_matcher_matches_inline(
    intents_bot: IntentsBot, threads: dict[str, list[threading.Thread]]
) -> None:
    async with intents_bot() as say:
        assert await say.text("when do you open?") == HOURS_EN
    assert threads["match"] == [threading.main_thread()]


async def test_the_matcher_is_built_in_a_worker_thread(
    intents_bot: IntentsBot, threads: dict[str, list[threading.Thread]]
) -> None:
    async with intents_bot() as say:
        assert await say.text("when do you open?") == HOURS_EN
    assert len(threads["init"]) == 1 and threads["init"][0] is not threading.main_thread()


def test_ascii_examples_are_validated_without_analyzing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analyzed: list[str] = []
    original = intents_config.search_terms

    def recording(text: str, **kwargs: Any) -> list[str]:
        analyzed.append(text)
        return original(text, **kwargs)

    monkeypatch.setattr(intents_config, "search_terms", recording)
    config = {"intent": [{"name": "hours", "action": "reply", "reply": {"en": "9-5"},
                          "examples": ["When are you open?", "¿Qué?", "营业时间"]}]}  # fmt: skip
    assert IntentsConfig.model_validate(config).intent[0].examples[2] == "营业时间"
    assert analyzed == ["营业时间"]  # the others have an ASCII letter: a term for sure
    config["intent"][0]["examples"] = ["When?", "¿?!"]  # type: ignore[index]
    with pytest.raises(ValueError, match="has no letters or digits to match"):
        IntentsConfig.model_validate(config)
