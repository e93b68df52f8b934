"""langdetect in a worker process (``[language.detector] processes``): identical answers,
a dead worker falls back to a thread, hostile text, the thread path with 0, settings.

Starting a worker takes ~0.4 s (a Python start and the profiles), so the tests that
only detect share one pool; the two that break or close one start their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.events import Contact, InboundMessage
from botkit.language import LangdetectDetector, LanguageGuess
from botkit.language import detect as detect_module
from botkit.language.detect import _detect_sample

DATA = Path(__file__).parents[2] / "data" / "customer_service_parallel.jsonl"
SEED = 3  # not the default: the worker must use the detector's seed


def sentences(per_language: int) -> list[str]:
    """``per_language`` sentences of each of the 10 languages (a fixed sample)."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    by_language: dict[str, list[str]] = {}
    for row in rows:
        by_language.setdefault(row["lang"], []).append(row["text"])
    assert len(by_language) == 10
    rng = random.Random(5)
    return [t for lang in sorted(by_language) for t in rng.sample(by_language[lang], per_language)]


@pytest.fixture(scope="module")
def pooled() -> Iterator[LangdetectDetector]:
    detector = LangdetectDetector(seed=SEED, processes=1)
    assert detector.pool is not None
    assert asyncio.run(detector.pool.start())
    yield detector
    asyncio.run(detector.close())
    assert detector.pool.pids() == []


async def test_worker_and_thread_give_identical_guesses(pooled: LangdetectDetector) -> None:
    assert pooled.pool is not None and pooled.pool.ready
    texts = sentences(6)
    for text in texts:
        raw = await pooled.pool.detect(text)
        assert raw is not None, text  # answered by the worker, not by the fallback
        in_process = _detect_sample(text, SEED)
        assert tuple(LanguageGuess(tag, p) for tag, p in raw) == in_process, text
    # Through the detector: the answer is remembered in this process.
    plain = LangdetectDetector(seed=SEED)
    for text in texts[:10]:
        assert await pooled.detect_async(text) == plain.detect(text)
        assert pooled.cached(text) == plain.detect(text)
    assert pooled.pool.ready


async def test_the_seed_reaches_the_worker(pooled: LangdetectDetector) -> None:
    assert pooled.pool is not None
    text = "ok merci gracias danke"  # short mixed text: the sampling shows
    raw = await pooled.pool.detect(text)
    assert raw is not None
    assert tuple(LanguageGuess(t, p) for t, p in raw) == _detect_sample(text, SEED)
    assert tuple(LanguageGuess(t, p) for t, p in raw) != _detect_sample(text, 0)


@pytest.mark.parametrize(
    "text",
    [
        "Hola, quiero saber dónde está mi pedido. " * 30_000,  # ~1 MB
        "\x00" * 5000 + "Bonjour, je voudrais savoir où en est ma commande.",
        "Hallo\x00 ich möchte\x00 wissen, wo meine Bestellung ist.",
        "\ud800 Hello, I would like to know where my order is \udfff",  # lone surrogates
        "\ud83d" * 2000,
        "\u202e" * 4000,
        "",
    ],
    ids=["1MB", "nul-prefix", "nul-inside", "lone-surrogates", "only-surrogates", "rtl", "empty"],
)
async def test_hostile_text_through_the_worker(pooled: LangdetectDetector, text: str) -> None:
    assert pooled.pool is not None
    expected = LangdetectDetector(seed=SEED).detect(text)
    assert await pooled.detect_async(text) == expected
    assert await pooled.pool.detect(text[: pooled.max_chars]) is not None  # went through
    assert pooled.pool.ready  # one text never breaks the pool


async def test_a_killed_worker_falls_back_to_a_thread(caplog: pytest.LogCaptureFixture) -> None:
    detector = LangdetectDetector(seed=SEED, processes=1)
    assert detector.pool is not None
    try:
        assert await detector.pool.start()
        (pid,) = detector.pool.pids()
        os.kill(pid, signal.SIGKILL)
        caplog.set_level(logging.WARNING, logger="botkit.language")
        texts = sentences(1)
        answers = await asyncio.gather(*(detector.detect_async(t) for t in texts))
        plain = LangdetectDetector(seed=SEED)
        assert answers == [plain.detect(t) for t in texts]
        assert detector.pool.failed
        assert await detector.pool.detect(texts[0]) is None  # the thread path from now on
        assert await detector.detect_async("Wo ist meine Bestellung geblieben, bitte?")
        warnings = [r for r in caplog.records if "detection worker process died" in r.message]
        assert len(warnings) == 1
    finally:
        await detector.close()
    assert detector.pool.pids() == []


async def test_the_pool_starts_when_busy_and_closing_meanwhile_does_not_hang() -> None:
    detector = LangdetectDetector(seed=SEED, processes=1)
    assert detector.pool is not None
    detector.pool.start_after = 2
    plain = LangdetectDetector(seed=SEED)
    first, second = sentences(1)[:2]
    # New texts are answered in a thread; the second one starts the pool in the background.
    assert await detector.detect_async(first) == plain.detect(first)
    assert detector.pool._state == "idle"
    assert await detector.detect_async(first) == plain.detect(first)  # remembered: no work
    assert detector.pool._state == "idle"
    assert await detector.detect_async(second) == plain.detect(second)
    assert detector.pool._state == "starting"
    # Hanging would be for ever; a worker starting on a loaded machine takes seconds.
    await asyncio.wait_for(detector.close(), 120)
    assert detector.pool.pids() == [] and not detector.pool.ready
    assert await detector.detect_async("Ich möchte wissen, wo meine Bestellung ist.")


async def test_zero_processes_keeps_the_thread_path(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = LangdetectDetector(seed=SEED, processes=0)
    assert detector.pool is None
    ran_in: list[threading.Thread] = []

    def recording(sample: str, seed: int) -> tuple[LanguageGuess, ...]:
        ran_in.append(threading.current_thread())
        return _detect_sample(sample, seed)

    monkeypatch.setattr(detect_module, "_detect_sample", recording)
    assert (await detector.detect_async("Hola, quiero saber dónde está mi pedido."))[
        0
    ].language == "es"
    assert len(ran_in) == 1 and ran_in[0] is not threading.main_thread()


async def test_bot_detects_through_a_worker_and_survives_its_death(
    make_settings: Callable[..., Settings],
) -> None:
    def message(text: str, key: str, conversation: str) -> InboundMessage:
        contact = Contact(channel="test", external_id=conversation)
        return InboundMessage("test", conversation, contact, text, key)

    async with Bot(make_settings()) as bot:  # processes = 1 is the default
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        detector = bot._language.detector  # the one the bot built from its settings
        assert isinstance(detector, LangdetectDetector) and detector.pool is not None
        assert detector.pool.pids() == []  # no process until the bot is busy
        await bot.submit(message("Hola, quiero saber dónde está mi pedido.", "k1", "c1"))
        await rec.wait_for(1)
        await bot.warm_up()  # what `botkit run` does before serving: the worker starts now
        assert detector.pool.ready and len(detector.pool.pids()) == 1
        await bot.submit(message("Bonjour, je voudrais savoir où est ma commande.", "k2", "c2"))
        await rec.wait_for(2)
        os.kill(detector.pool.pids()[0], signal.SIGKILL)
        await bot.submit(message("Hallo, ich möchte wissen, wo meine Bestellung ist.", "k3", "c3"))
        await rec.wait_for(3)
        assert await bot.drain(30)
        languages = [(await bot.store.get_conversation("test", c)) for c in ("c1", "c2", "c3")]
        assert [c.language if c else None for c in languages] == ["es", "fr", "de"]
        assert detector.pool.failed
    assert detector.pool.pids() == []


async def test_warm_up_without_a_worker_is_a_no_op(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(language={"detector": {"kind": "none"}})
    async with Bot(settings) as bot:
        await bot.warm_up()
        assert not isinstance(bot._language.detector, LangdetectDetector)


def test_processes_setting() -> None:
    assert settings_from_mapping({}, environ={}).language.detector.processes == 1
    found = settings_from_mapping(
        {"language": {"detector": {"processes": 0}}}, environ={}
    ).language.detector
    assert found.processes == 0
    for bad in (-1, "two", 1000):
        with pytest.raises(ConfigError) as info:
            settings_from_mapping({"language": {"detector": {"processes": bad}}}, environ={})
        assert [p.path for p in info.value.problems] == ["language.detector.processes"]
