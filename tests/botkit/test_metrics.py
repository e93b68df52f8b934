"""Prometheus metrics: counted where things happen, served at ``/metrics`` (real bot,
store, HTTP server; scraped and parsed with prometheus_client's own parser)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from core_helpers import RecordingConnector, message, recorder
from prometheus_client.parser import text_string_to_metric_families
from sqlite_lock import write_locked

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import CUT_AT_LIMIT, GenerationRequest
from botkit.backends.stream import GenerationStream
from botkit.bot import Bot
from botkit.cli import chat_settings
from botkit.config import Settings, load_settings
from botkit.errors import BackendBusyError, ConfigError, DatabaseUnavailableError, StoreError
from botkit.events import ConversationStarted, SystemEvent
from botkit.language.default_texts import FALLBACK_REPLIES
from botkit.metrics import BotMetrics, Snapshot
from botkit.pipeline import Context, Handler
from botkit.testing.backends import ScriptBackend
from botkit.testing.translator import MarkingTranslator

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(bot: Bot) -> tuple[str, Samples]:
    server = bot._metrics_server
    assert server is not None and server.port is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.port}/metrics") as resp,
    ):
        assert resp.status == 200
        body = await resp.text()
        return resp.headers["Content-Type"], _parse(body)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class _BusyThenFine(ScriptBackend):
    """A backend that is busy for the first request, then answers."""

    name = "busy-then-fine"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.calls += 1
        if self.calls == 1:
            raise BackendBusyError("queue full")
        yield "fine, "
        yield "thanks"


class _Capped(ScriptBackend):
    """Writes ``words`` each time and reports them cut at the token limit ("length")
    when the message asks for a long answer, finished ("stop") otherwise."""

    name = "capped"

    def __init__(self, words: tuple[str, ...] = ("Your order left ", "the warehouse on")) -> None:
        self.words = words

    def generate(self, request: GenerationRequest) -> GenerationStream:
        return GenerationStream(lambda stream: self._words(request, stream))

    async def _words(
        self, request: GenerationRequest, stream: GenerationStream
    ) -> AsyncGenerator[str, None]:
        for word in self.words:
            yield word
        long = "long" in request.messages[-1].content
        stream.finish_reason = CUT_AT_LIMIT if long else "stop"


@pytest.fixture
def metrics_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def build(**backend: Any) -> Settings:
        return make_settings(
            metrics={"listen": "127.0.0.1:0"},
            bot={"max_message_chars": 20},
            plugins={"handoff": {}},
            backend=backend,
        )

    return build


async def test_messages_replies_and_handoffs_are_counted_and_served(
    metrics_settings: Callable[..., Settings],
) -> None:
    async with Bot(metrics_settings(), backend=_BusyThenFine()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("first", "k1"))  # busy: the busy reply
        await bot.submit(message("second", "k2"))
        await bot.submit(message("second", "k2"))  # a redelivery
        await bot.submit(message("x" * 50, "k3"))  # too long
        await recorder(bot).wait_for(3)
        await bot.submit(message("/human", "k4", conversation="c2"))
        await recorder(bot).wait_for(4)
        assert await bot.drain(10)
        content_type, samples = await _scrape(bot)

    assert content_type.startswith("text/plain; version=0.0.4")
    count = "botkit_messages_total"
    assert _value(samples, count, channel="test", outcome="stored") == 3
    assert _value(samples, count, channel="test", outcome="duplicate") == 1
    assert _value(samples, count, channel="test", outcome="too_long") == 1
    replies = "botkit_replies_total"
    assert _value(samples, replies, channel="test", outcome="busy") == 1
    assert _value(samples, replies, channel="test", outcome="sent") == 3
    assert _value(samples, "botkit_handoffs_total", channel="test") == 1
    assert _value(samples, "botkit_reply_seconds_count", channel="test") == 4
    assert _value(samples, "botkit_reply_first_text_seconds_count", channel="test") == 4
    first = _value(samples, "botkit_reply_first_text_seconds_sum", channel="test")
    total = _value(samples, "botkit_reply_seconds_sum", channel="test")
    assert 0 < first <= total
    assert _value(samples, "botkit_replies_in_flight") == 0
    assert _value(samples, "botkit_peers") == 0
    hits = _value(samples, "botkit_history_cache_reads_total", result="hit")
    misses = _value(samples, "botkit_history_cache_reads_total", result="miss")
    assert hits + misses >= 3  # every generated reply read its history
    # Nothing about a customer is in the metrics.
    assert not [key for key in samples if any(v in ("u1", "c1", "c2") for _, v in key[1])]


async def test_messages_over_the_rate_limit_are_counted(
    make_settings: Callable[..., Settings],
) -> None:
    # Three in a burst of one allowed: the second gets the slow-down reply (a sent
    # reply), the third nothing; both are rate limited, and the scrape says so.
    settings = make_settings(
        metrics={"listen": "127.0.0.1:0"},
        bot={"rate_limit": {"messages": 1, "window_seconds": 3600}},
    )
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i in range(3):
            await bot.submit(message(f"message {i}", f"k{i}"))
        assert await bot.drain(10)
        _, samples = await _scrape(bot)
    assert len(recorder(bot).replies) == 2
    assert _value(samples, "botkit_rate_limited_messages_total", channel="test") == 2
    assert _value(samples, "botkit_messages_total", channel="test", outcome="stored") == 3


async def test_a_superseded_reply_is_counted_as_such(
    metrics_settings: Callable[..., Settings],
) -> None:
    # A word every 2 s: no load lets the reply end before the takeover (which cuts it,
    # so the words are not waited for).
    async with Bot(metrics_settings(echo={"word_delay_seconds": 2.0})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        receipt = await bot.submit(message("one two three four", "k1"))
        await asyncio.sleep(0.3)  # the first words are out
        await bot.agent_replies.send(receipt.conversation_id, "Ana here.", take_over=True)
        agents, cut = await recorder(bot).wait_for(2)
        assert cut.metadata.get("superseded") and agents.text == "Ana here."
        _, samples = await _scrape(bot)
    assert _value(samples, "botkit_replies_total", channel="test", outcome="superseded") == 1
    assert _value(samples, "botkit_replies_total", channel="test", outcome="sent") == 0


async def test_translator_calls_are_counted_and_timed_by_direction(
    make_settings: Callable[..., Settings],
) -> None:
    translator = MarkingTranslator(delay=0.01)
    settings = make_settings(
        metrics={"listen": "127.0.0.1:0"},
        language={"detector": {"kind": "langdetect", "processes": 0}},
    )
    async with Bot(settings, translator=translator) as bot:
        bot.attach_connector(RecordingConnector(bot))
        spanish = "Hola, mi pedido todavía no ha llegado y necesito saber dónde está."
        await bot.submit(message(spanish, "k1"))
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text.startswith("es(")  # translated back into Spanish
        translator.fail_with = RuntimeError("model crashed")
        await bot.submit(message(spanish, "k2"))
        await recorder(bot).wait_for(2)
        assert await bot.drain(10)
        _, samples = await _scrape(bot)
    calls = "botkit_translation_calls_total"
    assert _value(samples, calls, direction="to_working", outcome="ok") == 1
    assert _value(samples, calls, direction="to_working", outcome="failed") == 1
    assert _value(samples, calls, direction="from_working", outcome="ok") >= 1
    sentences = _value(samples, "botkit_translated_sentences_total", direction="to_working")
    assert sentences == 2  # one sentence, twice
    timed = _value(samples, "botkit_translation_seconds_sum", direction="to_working")
    assert timed >= 0.02  # two calls of at least 10 ms


async def test_replies_the_backend_cut_at_its_token_limit_are_counted(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings(), backend=_Capped()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("a long answer, please", "k1"))
        await bot.submit(message("a short one", "k2", conversation="c2"))
        cut, whole = await recorder(bot).wait_for(2)
        assert await bot.drain(10)
        samples = _local(bot)
    # Delivered as it came: the customer gets the words the model wrote (see
    # docs/operations.md on why a cut reply gets no mark).
    assert cut.text == whole.text == "Your order left the warehouse on"
    assert _value(samples, "botkit_replies_cut_total", channel="test") == 1
    assert _replies(samples, "sent") == 2


async def test_a_cut_reply_the_fallback_replaced_is_counted_as_cut(
    make_settings: Callable[..., Settings],
) -> None:
    # The cap came before any text (a model that spent it all reasoning): the customer
    # gets the fallback reply, and raising the cap is still the fix.
    async with Bot(make_settings(), backend=_Capped(words=())) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("a long answer, please", "k1"))
        (reply,) = await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        samples = _local(bot)
    assert reply.text == FALLBACK_REPLIES["en"]
    assert _replies(samples, "fallback") == 1
    assert _value(samples, "botkit_replies_cut_total", channel="test") == 1


def test_the_engine_report_becomes_counters_and_gauges() -> None:
    report = {
        "steps": 7, "computed_tokens": 90, "prompt_tokens_computed": 80,
        "prefix_query_tokens": 100, "prefix_hit_tokens": 20, "preemptions": 1,
        "step_failures": 2, "running": 2, "waiting": 3, "kv_blocks": 64,
        "kv_blocks_free": 60, "up": 1,
    }  # fmt: skip
    metrics = BotMetrics(lambda: Snapshot(0, 0, 0, 0, 0, engine=report))
    samples = _parse(metrics.render().decode())
    assert _value(samples, "botkit_engine_steps_total") == 7
    assert _value(samples, "botkit_engine_prefix_hit_tokens_total") == 20
    assert _value(samples, "botkit_engine_preemptions_total") == 1
    assert _value(samples, "botkit_engine_sequences", state="waiting") == 3
    assert _value(samples, "botkit_engine_kv_blocks", state="used") == 4
    assert _value(samples, "botkit_engine_step_failures_total") == 2
    assert _value(samples, "botkit_engine_up") == 1
    plain = _parse(BotMetrics(lambda: Snapshot(0, 0, 0, 0, 0)).render().decode())
    assert not [key for key in plain if key[0].startswith("botkit_engine")]


@pytest.mark.parametrize(
    "listen", ["8090", "127.0.0.1", "127.0.0.1:99999", "http://127.0.0.1:80", "h st:1", 9090]
)
def test_a_bad_listen_address_is_refused_at_config_load(
    make_settings: Callable[..., Settings], listen: object
) -> None:
    with pytest.raises(ConfigError, match="metrics"):
        make_settings(metrics={"listen": listen})


async def test_a_port_in_use_leaves_the_bot_running_without_metrics(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        caplog.set_level(logging.ERROR, logger="botkit.metrics")
        async with Bot(make_settings(metrics={"listen": f"127.0.0.1:{port}"})) as bot:
            bot.attach_connector(RecordingConnector(bot))
            await bot.submit(message("still answering", "k1"))
            await recorder(bot).wait_for(1)
            assert bot._metrics_server is None
    assert "metrics cannot listen on" in caplog.text


def _replies(samples: Samples, outcome: str) -> float:
    return _value(samples, "botkit_replies_total", channel="test", outcome=outcome)


def _local(bot: Bot) -> Samples:
    """The bot's metrics as ``/metrics`` renders them (no server needed)."""
    return _parse(bot.metrics.render().decode())


class _Broken(Handler):
    def check(self, ctx: Context) -> bool:
        return True

    async def handle(self, ctx: Context) -> None:
        raise RuntimeError("a plugin's bug")


async def test_busy_and_fallback_replies_the_pipeline_gives_are_counted_as_such(
    make_settings: Callable[..., Settings],
) -> None:
    # Busy: the translator is overloaded on the way in (before any reply exists).
    settings = make_settings(language={"detector": {"kind": "langdetect", "processes": 0}})
    translator = MarkingTranslator(fail_with=BackendBusyError("translator queue full"))
    async with Bot(settings, translator=translator) as bot:
        bot.attach_connector(RecordingConnector(bot))
        spanish = "Hola, mi pedido todavía no ha llegado y necesito saber dónde está."
        await bot.submit(message(spanish, "k1"))
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == settings.bot.busy_reply
        assert await bot.drain(10)
        assert (_replies(_local(bot), "busy"), _replies(_local(bot), "sent")) == (1, 0)
    # Fallback: a handler raised.
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.pipeline.add_handler(_Broken())
        await bot.submit(message("hello", "k2"))
        (reply,) = await recorder(bot).wait_for(1)
        # The conversation is Spanish (the first message): the built-in Spanish text.
        assert reply.text == FALLBACK_REPLIES["es"]
        assert await bot.drain(10)
        assert (_replies(_local(bot), "fallback"), _replies(_local(bot), "sent")) == (1, 0)


async def test_a_reply_that_could_not_be_stored_is_counted_as_an_error(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))

        async def database_down(*args: object, **kwargs: object) -> object:
            raise StoreError("database is locked")

        monkeypatch.setattr(bot.store, "append_outbound", database_down)
        await bot.submit(message("hello there", "k1"))
        assert await bot.drain(10)
        samples = _local(bot)
    assert _replies(samples, "error") == 1
    assert _value(samples, "botkit_reply_seconds_count", channel="test") == 1


async def test_every_known_series_of_a_channel_is_exported_from_the_start(
    make_settings: Callable[..., Settings],
) -> None:
    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        samples = _local(bot)  # nothing happened yet
    outcomes = {dict(k[1])["outcome"] for k in samples if k[0] == "botkit_replies_total"}
    assert outcomes == {"sent", "failed", "superseded", "busy", "fallback", "erased", "error"}
    assert _value(samples, "botkit_replies_total", channel="test", outcome="failed") == 0
    assert ("botkit_handoffs_total", (("channel", "test"),)) in samples
    assert ("botkit_rate_limited_messages_total", (("channel", "test"),)) in samples
    assert ("botkit_replies_cut_total", (("channel", "test"),)) in samples
    assert ("botkit_messages_total", (("channel", "test"), ("outcome", "stored"))) in samples


async def test_the_first_words_are_timed_from_the_messages_turn(
    make_settings: Callable[..., Settings],
) -> None:
    """Including the wait for a new conversation's subscribers (a slow CRM lookup)."""

    async def slow_crm_lookup(event: SystemEvent) -> None:
        if isinstance(event, ConversationStarted):
            await asyncio.sleep(0.5)

    async with Bot(make_settings()) as bot:
        bot.attach_connector(RecordingConnector(bot))
        bot.events.subscribe(slow_crm_lookup, owner="crm")
        await bot.submit(message("hello", "k1"))
        await recorder(bot).wait_for(1)
        assert await bot.drain(10)
        samples = _local(bot)
    assert _value(samples, "botkit_reply_first_text_seconds_sum", channel="test") >= 0.45


async def test_a_failing_read_of_the_bots_state_leaves_the_counters_in_the_scrape(
    make_settings: Callable[..., Settings],
) -> None:
    class Unreadable(EchoBackend):
        def engine_report(self) -> dict[str, float] | None:
            raise RuntimeError("engine state unreadable")

    async with Bot(make_settings(), backend=Unreadable()) as bot:
        bot.metrics.message("test", "stored")
        samples = _local(bot)
    assert _value(samples, "botkit_messages_total", channel="test", outcome="stored") == 1
    assert not [k for k in samples if k[0] == "botkit_replies_in_flight"]


def test_a_chat_session_serves_no_metrics() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config.example.toml", environ={})
    assert settings.metrics.listen  # the example enables them for the service
    chat = chat_settings(settings)
    assert chat.metrics.listen == "" and set(chat.connectors) == {"console"}


async def test_a_database_outage_shows_in_database_up_and_errors_by_reason(
    make_settings: Callable[..., Settings], core_db_url: str
) -> None:
    settings = make_settings(
        metrics={"listen": "127.0.0.1:0"}, store={"sqlite_busy_timeout_ms": 100}
    )
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        _, before = await _scrape(bot)
        assert _value(before, "botkit_database_up") == 1
        for reason in ("locked", "unreachable", "read_only"):  # exported before they happen
            assert ("botkit_database_errors_total", (("reason", reason),)) in before
        with write_locked(core_db_url):
            for i in range(2):
                with pytest.raises(DatabaseUnavailableError):
                    await bot.submit(message("hello", f"k{i}"))
            _, during = await _scrape(bot)
        assert _value(during, "botkit_database_up") == 0
        assert _value(during, "botkit_database_errors_total", reason="locked") == 2
        assert _value(during, "botkit_database_errors_total", reason="unreachable") == 0
        await bot.submit(message("hello", "k0"))  # the file is free: a write works
        await recorder(bot).wait_for(1)
        _, after = await _scrape(bot)
        assert _value(after, "botkit_database_up") == 1
        assert _value(after, "botkit_database_errors_total", reason="locked") == 2
