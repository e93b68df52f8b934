"""Prometheus metrics of a running bot: what operators graph and alert on.

Counters and histograms are updated where things happen (the core's intake, the end of
each reply's delivery, hand-offs). Gauges, and the local engine's own counters, are read
when Prometheus scrapes. Each ``Bot`` has a registry of its own, so several bots in one
process (tests, embedding) never mix their numbers.

Labels are bounded: channel names (one per connector) and fixed outcomes. Nothing about a
customer (id, text, language) is ever a label or a value.

Served at ``/metrics`` on ``[metrics] listen`` (``botkit._metrics_server``); the names
and their meaning are listed in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from botkit.backends.protocol import Translator
from botkit.errors import BackendBusyError, MessageRejectedError, StoreError
from botkit.language.tags import same_language
from botkit.throttled_warning import ThrottledWarning

__all__ = [
    "CONTENT_TYPE",
    "BotMetrics",
    "EngineReport",
    "MeasuredTranslator",
    "MessageOutcome",
    "OpenConnections",
    "ReplyOutcome",
    "Snapshot",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text format

_log = logging.getLogger("botkit.metrics")

MessageOutcome = Literal["stored", "duplicate", "too_long", "refused"]
ReplyOutcome = Literal["sent", "failed", "superseded", "busy", "fallback", "erased", "error"]
MESSAGE_OUTCOMES: tuple[MessageOutcome, ...] = ("stored", "duplicate", "too_long", "refused")
REPLY_OUTCOMES: tuple[ReplyOutcome, ...] = (
    "sent", "failed", "superseded", "busy", "fallback", "erased", "error",
)  # fmt: skip

# Seconds: a cached small reply's first words arrive in tens of milliseconds, a long
# reply from a busy CPU model takes a minute.
_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)

# The local engine's report (``LocalEngineBackend.engine_report``): cumulative counters,
# then what it holds now.
_ENGINE_COUNTERS = {
    "steps": "Model steps the engine ran",
    "computed_tokens": "Tokens whose K/V the model computed (prompt chunks and decodes)",
    "prompt_tokens_computed": "Of those, tokens at prompt positions",
    "prefix_query_tokens": "Prompt tokens looked up in the prefix cache",
    "prefix_hit_tokens": "Of those, tokens the prefix cache served instead of the model",
    "preemptions": "Sequences preempted for KV cache memory (recomputed later)",
    "step_failures": "Model steps that failed (each ended the replies in it)",
}


@runtime_checkable
class EngineReport(Protocol):
    """A backend that reports its engine's counters and load (the local engine)."""

    def engine_report(self) -> Mapping[str, float] | None: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the bot holds now, read at each scrape.

    Attributes:
        replies_in_flight: replies being delivered to channels.
        reply_tasks: messages being answered or waiting behind an earlier message of
            their conversation.
        peers: other bot processes with a fresh heartbeat at the last count.
        history_cache_hits: history reads the in-memory window answered (cumulative).
        history_cache_misses: history reads that went to the database (cumulative).
        engine: the local engine's report, when the backend has one.
        connections: open client connections by channel, for channels that hold them
            (the web widget's sockets; ``OpenConnections``).
        database_up: False from a store call that failed for a database outage until
            one works again (``botkit.store._outage.OutageLog``); None without a store.
        database_errors: store calls failed for an outage since the start, by reason
            (every reason present; cumulative).
        spooled_messages: customers' messages kept on disk until the database stores
            them (``botkit._outage_spool``); None with the spool off.
    """

    replies_in_flight: int
    reply_tasks: int
    peers: int
    history_cache_hits: int
    history_cache_misses: int
    engine: Mapping[str, float] | None = None
    connections: Mapping[str, int] = field(default_factory=dict)
    database_up: bool | None = None
    database_errors: Mapping[str, int] = field(default_factory=dict)
    spooled_messages: int | None = None


@runtime_checkable
class OpenConnections(Protocol):
    """A connector whose clients hold connections to this process (the web widget)."""

    def open_connections(self) -> int: ...


class _ReadAtScrape(Collector):
    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self._read = read
        self._failed = ThrottledWarning(
            _log, "metrics: reading the bot's state failed; its gauges are left out: %s"
        )

    def collect(self) -> Iterable[Metric]:
        try:
            now = self._read()
        except Exception as exc:  # the counters are still worth a scrape
            self._failed.warn(f"{type(exc).__name__}: {exc}", exc_info=exc)
            return
        yield GaugeMetricFamily(
            "botkit_replies_in_flight", "Replies being delivered to channels now",
            value=now.replies_in_flight,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "botkit_reply_tasks",
            "Messages being answered, or waiting behind an earlier one of their conversation",
            value=now.reply_tasks,
        )
        yield GaugeMetricFamily(
            "botkit_peers", "Other bot processes sharing the database (fresh heartbeat)",
            value=now.peers,
        )  # fmt: skip
        cache = CounterMetricFamily(
            "botkit_history_cache_reads",
            "History reads for replies, by whether the in-memory window answered",
            labels=["result"],
        )
        cache.add_metric(["hit"], now.history_cache_hits)
        cache.add_metric(["miss"], now.history_cache_misses)
        yield cache
        if now.database_up is not None:
            yield from _database_metrics(now.database_up, now.database_errors)
        if now.spooled_messages is not None:
            yield GaugeMetricFamily(
                "botkit_outage_spool_messages",
                "Customers' messages kept on disk while the database is unavailable, to be "
                "stored and answered once it is back ([store] outage_spool_dir)",
                value=now.spooled_messages,
            )
        if now.connections:
            connections = GaugeMetricFamily(
                "botkit_channel_connections",
                "Client connections open to this process (the web widget's sockets)",
                labels=["channel"],
            )
            for channel, count in now.connections.items():
                connections.add_metric([channel], count)
            yield connections
        if now.engine is not None:
            yield from _engine_metrics(now.engine)


def _database_metrics(up: bool, errors: Mapping[str, int]) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "botkit_database_up",
        "1 while the database answers; 0 from a store call that failed because it is "
        "unavailable (unreachable, restarting, locked, full, read-only) until one works",
        value=1 if up else 0,
    )
    failed = CounterMetricFamily(
        "botkit_database_errors",
        "Store calls that failed because the database was unavailable, by reason",
        labels=["reason"],
    )
    for reason, count in errors.items():
        failed.add_metric([reason], count)
    yield failed


def _engine_metrics(report: Mapping[str, float]) -> Iterable[Metric]:
    for key, help_text in _ENGINE_COUNTERS.items():
        if key in report:
            yield CounterMetricFamily(f"botkit_engine_{key}", help_text, value=report[key])
    if "up" in report:
        yield GaugeMetricFamily(
            "botkit_engine_up",
            "1 while the engine runs; 0 once its steps failed in a row (the bot then stops)",
            value=report["up"],
        )
    sequences = GaugeMetricFamily(
        "botkit_engine_sequences", "Sequences in the engine, by state", labels=["state"]
    )
    for state in ("running", "waiting"):
        sequences.add_metric([state], report.get(state, 0))
    yield sequences
    blocks = GaugeMetricFamily(
        "botkit_engine_kv_blocks", "KV cache blocks, by state", labels=["state"]
    )
    free = report.get("kv_blocks_free", 0)
    blocks.add_metric(["free"], free)
    blocks.add_metric(["used"], report.get("kv_blocks", 0) - free)
    yield blocks


class BotMetrics:
    """One bot's metrics (see the module docstring).

    Args:
        read: called at each scrape for what the bot holds now.
    """

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=False)
        self.messages = Counter(
            "botkit_messages",
            "Customer messages the core took: stored (to be answered), duplicate (a "
            "redelivery, not answered again), too_long (answered with the too-long reply); "
            "and refused: not taken (the bot not accepting messages, ids no database can "
            "hold, the database failing or unavailable and the message not kept on disk)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.replies = Counter(
            "botkit_replies",
            "Replies, by how they ended: sent, failed (the channel refused it), "
            "superseded (an agent took over), busy / fallback (the busy or fallback "
            "reply was given instead), erased (its conversation was erased meanwhile: "
            "botkit data forget), error (it could not be stored: the database)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.first_text = Histogram(
            "botkit_reply_first_text_seconds",
            "From a message's turn (after any earlier reply of its conversation) to its "
            "reply's first words handed to the channel's connector",
            ["channel"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.reply_time = Histogram(
            "botkit_reply_seconds",
            "From a message's turn (after any earlier reply of its conversation) to its "
            "reply stored complete",
            ["channel"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.replies_cut = Counter(
            "botkit_replies_cut",
            "Model replies the generation backend ended at its token limit "
            "(max_new_tokens, or the model's context full): sent cut, usually "
            "mid-sentence, or replaced by the fallback reply when the cap left no text",
            ["channel"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "botkit_rate_limited_messages",
            "Customer messages left unanswered because their sender went over "
            "[bot.rate_limit] (stored, not processed; the first of a burst gets the "
            "slow-down reply, counted among the replies)",
            ["channel"],
            registry=registry,
        )
        self.handoffs = Counter(
            "botkit_handoffs",
            "Conversations customers asked to hand to a human",
            ["channel"],
            registry=registry,
        )
        self.feedback = Counter(
            "botkit_feedback",
            "Customers' ratings of the bot's replies (the feedback plugin): good or bad",
            ["channel", "rating"],
            registry=registry,
        )
        self.translations = Counter(
            "botkit_translation_calls",
            "Calls to the translator (one batch of sentences each), by direction (into or "
            "out of the working language) and outcome: ok, busy, failed",
            ["direction", "outcome"],
            registry=registry,
        )
        self.translated = Counter(
            "botkit_translated_sentences",
            "Sentences sent to the translator, by direction",
            ["direction"],
            registry=registry,
        )
        self.translation_time = Histogram(
            "botkit_translation_seconds",
            "Time of one translator call, by direction",
            ["direction"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.channel_up = Gauge(
            "botkit_channel_up",
            "1 while the channel serves; 0 while it is down (the platform rejects its "
            "credentials: a revoked token) and the other channels serve on without it",
            ["channel"],
            registry=registry,
        )
        registry.register(_ReadAtScrape(read))

    def add_channel(self, channel: str) -> None:
        """Export the channel's series at 0 before anything happens on it: a series
        that appears at its first event hides that event from ``rate()``."""
        for message_outcome in MESSAGE_OUTCOMES:
            self.messages.labels(channel, message_outcome)
        for reply_outcome in REPLY_OUTCOMES:
            self.replies.labels(channel, reply_outcome)
        self.handoffs.labels(channel)
        self.replies_cut.labels(channel)
        self.rate_limited.labels(channel)
        for rating in ("good", "bad"):
            self.feedback.labels(channel, rating)
        self.first_text.labels(channel)
        self.reply_time.labels(channel)

    def message(self, channel: str, outcome: MessageOutcome) -> None:
        self.messages.labels(channel, outcome).inc()

    @contextlib.contextmanager
    def refusals(self, channel: str) -> Iterator[None]:
        """Count a message ``refused`` when the block raises what the core refuses one
        with: ``MessageRejectedError`` (``NotAcceptingError`` included) or ``StoreError``
        (not stored: a database outage, with no spool to keep it in). The channel then
        answers an error and its client or platform may send it again: a message refused
        twice counts twice."""
        try:
            yield
        except (MessageRejectedError, StoreError):
            self.message(channel, "refused")
            raise

    def reply(
        self,
        channel: str,
        outcome: ReplyOutcome,
        *,
        first_text_seconds: float | None,
        total_seconds: float,
    ) -> None:
        """One reply's end (``first_text_seconds``: None when no text went out).

        A reply the channel refused (``failed``) is counted but not timed: its times
        (often a quick refusal) say nothing about how long customers wait for answers.
        """
        self.replies.labels(channel, outcome).inc()
        if outcome == "failed":
            return
        if first_text_seconds is not None:
            self.first_text.labels(channel).observe(first_text_seconds)
        self.reply_time.labels(channel).observe(total_seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class MeasuredTranslator:
    """A ``Translator`` that counts and times each call into ``metrics`` and forwards
    everything else (``start``/``close`` included) to the translator it wraps.

    Args:
        translator: the translator to measure.
        working: the working language: a call into it is ``to_working`` (a customer's
            message), any other ``from_working`` (a reply, an agent's message).
        metrics: where to count.
    """

    def __init__(self, translator: Translator, working: str, metrics: BotMetrics) -> None:
        self.inner = translator
        self.name = translator.name
        self._working = working
        self._metrics = metrics

    def supports(self, source: str, target: str) -> bool:
        return self.inner.supports(source, target)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        direction = "to_working" if same_language(target, self._working) else "from_working"
        started = time.monotonic()
        try:
            out = await self.inner.translate(texts, source, target)
        except asyncio.CancelledError:
            raise  # its reply was abandoned (shutdown): not the translator's outcome
        except BackendBusyError:
            self._count(direction, "busy", len(texts), started)
            raise
        except BaseException:
            self._count(direction, "failed", len(texts), started)
            raise
        self._count(direction, "ok", len(texts), started)
        return out

    def _count(self, direction: str, outcome: str, sentences: int, started: float) -> None:
        metrics = self._metrics
        metrics.translations.labels(direction, outcome).inc()
        metrics.translated.labels(direction).inc(sentences)
        metrics.translation_time.labels(direction).observe(time.monotonic() - started)

    def __getattr__(self, name: str) -> object:
        # start, close, and whatever else a caller probes with getattr.
        return getattr(self.inner, name)
