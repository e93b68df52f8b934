"""Core benchmark: messages/s and added latency through pipeline + SQLite (echo backend).

"Added latency" is the time from ``Bot.submit`` being called to the reply being stored
and handed to the connector: sanitizing, the intake transaction, the pipeline (rate
limit, history query), the echo backend's stream and the reply transaction. The echo
backend costs next to nothing, so this is what botkit adds on top of a model.

Two runs on a fresh SQLite file (WAL):
  * saturation: ``--messages`` messages over ``--conversations`` conversations, submitted
    as fast as the bot accepts them; throughput = messages / time until the last reply.
  * fixed rate: ``--rate`` messages/s for ``--duration`` seconds, open loop (each message
    is submitted at its scheduled time whether or not earlier ones finished); p50/p99.

Each pair runs three times: without language detection (one English sentence), with
langdetect on the shipped customer-service sentences in 10 languages (langdetect's
answers are cached per text, and these repeat: the JSON counts how often it really ran),
and the same with that cache emptied before every message (every text new: the worst
case, ~2 ms of pure Python per message).

Targets (issue 2): >= 1,000 messages/s sustained; p99 <= 20 ms at 200 messages/s.

    python benchmarks/core.py                      # full run, writes results/core-cpu.json
    python benchmarks/core.py --messages 500 --duration 2 --out -   # quick look
    python benchmarks/core.py --throwaway-postgres   # PostgreSQL: results/core-cpu-postgres.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from _stores import add_store_options, chosen_store, write_result
from _texts import load_texts  # benchmarks/ (this script's folder) is on sys.path

from botkit._serving import prepare_heap_for_serving, restore_default_heap
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings, settings_from_mapping
from botkit.events import Contact, InboundMessage, OutboundReply
from botkit.language.detect import Answers, LangdetectDetector
from connectors.base import Connector, ConnectorConfig

RESULTS = Path(__file__).resolve().parent / "results" / "core-cpu.json"


class TimingConnector(Connector[ConnectorConfig]):
    """Consumes every reply stream and records when each reply was finished."""

    name: ClassVar[str] = "bench"

    def __init__(self, core: Bot) -> None:
        super().__init__(ConnectorConfig(), core)
        self.done: dict[tuple[str, int], float] = {}
        self.all_done = asyncio.Event()
        self.expected = 0

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        pass

    async def send_stream(self, stream: ReplyStream) -> None:
        async for _ in stream:
            pass
        reply = await stream.final()
        assert reply.in_reply_to_seq is not None
        self.done[(reply.conversation_key, reply.in_reply_to_seq)] = time.perf_counter()
        if len(self.done) >= self.expected:
            self.all_done.set()

    async def disconnect(self) -> None:
        pass


def make_message(
    i: int, conversations: int, run: str, texts: list[list[str]] | None = None
) -> InboundMessage:
    """Message ``i``: conversations take turns. Without ``texts`` every message is the same
    English sentence (with its number); with them, conversation c writes the sentences of
    language c mod 10 in turn, as customers write: varied, and some repeated."""
    conv = i % conversations
    if texts is None:
        text = f"Hello, I have a question about my order number {i}. Where is it now?"
    else:
        pool = texts[conv % len(texts)]
        text = pool[(i // len(texts)) % len(pool)]
    return InboundMessage(
        channel="bench",
        conversation_key=f"{run}-c{conv}",
        contact=Contact("bench", f"{run}-u{conv}"),
        text=text,
        idempotency_key=f"{run}-{i}",
    )


async def run_load(
    bot: Bot,
    connector: TimingConnector,
    *,
    messages: int,
    conversations: int,
    rate: float | None,
    run: str,
    texts: list[list[str]] | None = None,
    uncached: bool = False,
) -> dict[str, Any]:
    answers = _answers(bot)
    connector.done.clear()
    connector.all_done.clear()
    connector.expected = messages
    started: dict[tuple[str, int], float] = {}

    async def submit(i: int) -> None:
        msg = make_message(i, conversations, run, texts)
        if uncached:
            answers.clear()  # worst case: as if every text were new
        t0 = time.perf_counter()
        receipt = await bot.submit(msg)
        started[(msg.conversation_key, receipt.seq)] = t0

    begin = time.perf_counter()
    tasks = []
    if rate is None:
        # Saturation: a bounded number of concurrent submitters (like a busy connector).
        queue = iter(range(messages))

        async def worker() -> None:
            for i in queue:
                await submit(i)

        tasks = [asyncio.create_task(worker()) for _ in range(min(64, messages))]
    else:
        for i in range(messages):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(i)))
    await asyncio.gather(*tasks)
    await asyncio.wait_for(connector.all_done.wait(), timeout=600)
    elapsed = time.perf_counter() - begin
    latencies = sorted((connector.done[key] - t0) * 1000 for key, t0 in started.items())
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "messages": messages,
        "conversations": conversations,
        "offered_rate_msg_s": rate,
        "elapsed_s": round(elapsed, 3),
        "throughput_msg_s": round(messages / elapsed, 1),
        "latency_ms": {
            "p50": round(q[49], 2),
            "p90": round(q[89], 2),
            "p99": round(q[98], 2),
            "max": round(latencies[-1], 2),
        },
    }


def _answers(bot: Bot) -> Answers:
    """langdetect's per-text answers in the bot's detector (benchmark introspection)."""
    detector = bot._language.detector
    return detector.answers if isinstance(detector, LangdetectDetector) else Answers(0)


def _detections(answers: Answers, uncached: bool) -> dict[str, int] | str:
    if uncached:
        return "answers forgotten before every message (concurrent ones may still share one)"
    return {"ran": answers.misses, "from_cache": answers.hits}


def settings_for(url: str, *, detection: bool) -> Settings:
    return settings_from_mapping(
        {
            "store": {"url": url},
            "backend": {"kind": "echo"},
            # Rate limiting stays on (its cost is part of the pipeline) but never triggers.
            "bot": {"rate_limit": {"messages": 1_000_000}},
            # Language detection (langdetect, pure Python) is measured separately: it is
            # the single most expensive step of the default pipeline.
            "language": {"detector": {"kind": "langdetect" if detection else "none"}},
            "logging": {"level": "WARNING"},
        },
        environ={},
    )


async def measure(
    args: argparse.Namespace, *, detection: bool, uncached: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        if args.store_url:
            from botkit.store import migrate

            await migrate.upgrade(url)  # PostgreSQL is never upgraded by the bot itself
        settings = settings_for(url, detection=detection)
        # Delivery keys differ between runs on one database.
        tag = ("u" if uncached else "d") if detection else "n"
        # With detection, customers' sentences in 10 languages: langdetect really runs (its
        # answers are cached per text, as customers repeat themselves; the runs count how
        # often it ran and how often the cache answered).
        texts = load_texts() if detection else None
        async with Bot(settings) as bot:
            connector = TimingConnector(bot)
            bot.attach_connector(connector)
            await bot.warm_up()  # as `botkit run` does: the detection worker starts now
            # Warm-up: first queries, statement caches, connection pool.
            await run_load(bot, connector, messages=200, conversations=20, rate=None, run=f"{tag}w")
            prepare_heap_for_serving()  # as `botkit run` does (botkit/_serving.py)
            answers = _answers(bot)
            answers.clear()
            saturation = await run_load(
                bot,
                connector,
                messages=args.messages,
                conversations=args.conversations,
                rate=None,
                run=f"{tag}s",
                texts=texts,
                uncached=uncached,
            )
            saturation["langdetect"] = _detections(answers, uncached)
            answers.clear()
            fixed = await run_load(
                bot,
                connector,
                messages=int(args.rate * args.duration),
                conversations=args.conversations,
                rate=args.rate,
                run=f"{tag}r",
                texts=texts,
                uncached=uncached,
            )
            fixed["langdetect"] = _detections(answers, uncached)
        restore_default_heap()
    return {
        "language_detection": (
            ("langdetect, no cache" if uncached else "langdetect") if detection else "off"
        ),
        "texts": "10 languages (tests/data)" if detection else "one English sentence",
        "saturation": saturation,
        "fixed_rate": fixed,
        "meets_targets": {
            "throughput": saturation["throughput_msg_s"] >= 1000,
            "p99_at_200": fixed["latency_ms"]["p99"] <= 20,
        },
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs = [
        await measure(args, detection=False),
        await measure(args, detection=True),
        await measure(args, detection=True, uncached=True),
    ]
    return {
        "benchmark": "core",
        "backend": "echo",
        "store": args.store_label,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "targets": {"throughput_msg_s": 1000, "p99_ms_at_200_msg_s": 20},
        "runs": runs,
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [("detection", "run", "messages", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms")]
    for run in result["runs"]:
        for name in ("saturation", "fixed_rate"):
            r = run[name]
            offered = r["offered_rate_msg_s"]
            lat = r["latency_ms"]
            rows.append(
                (
                    run["language_detection"],
                    name if offered is None else f"{offered:g} msg/s",
                    str(r["messages"]),
                    f"{r['throughput_msg_s']:.0f}",
                    f"{lat['p50']:.2f}",
                    f"{lat['p90']:.2f}",
                    f"{lat['p99']:.2f}",
                    f"{lat['max']:.2f}",
                )
            )
    print(f"store: {result['store']}; targets (issue 2) are for SQLite")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for run in result["runs"]:
        met = run["meets_targets"]
        print(f"detection {run['language_detection']}: >= 1000 msg/s -> {met['throughput']}; "
              f"p99 <= 20 ms at 200 msg/s -> {met['p99_at_200']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="saturation run size")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="fixed-rate run, msg/s")
    parser.add_argument("--duration", type=float, default=15.0, help="fixed-rate run, s")
    add_store_options(parser)
    args = parser.parse_args()
    with chosen_store(args, "botkit_bench", RESULTS):
        result = asyncio.run(main_async(args))
    write_result(args, result, print_table)


if __name__ == "__main__":
    main()
