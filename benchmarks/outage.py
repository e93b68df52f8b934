"""Outage spool benchmark: how fast Slack/Telegram messages are kept on disk while the
database is unavailable, and how fast the backlog is stored and answered once it is back.

The outage is SQLite's (another connection holds the write lock beyond the bot's busy
timeout). Messages go through ``Bot.submit_or_keep`` as the Slack and Telegram
connectors send them, from ``--concurrency`` submitters at once (a platform delivering
events in parallel); the echo backend answers, so the numbers are botkit's own.

  * keep: messages/s accepted (kept) during the outage, and the latency of one keep
    (the platform waits for it before its acknowledgement: Slack allows 3 s);
  * drain: from the lock's release to the last kept message's reply handed to the
    channel (they are stored one at a time, in arrival order);
  * normal: the same messages with the database up, for comparison.

    python benchmarks/outage.py                       # writes results/outage-cpu.json
    python benchmarks/outage.py --messages 200 --out -  # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from _output import latency_ms, machine_facts, print_rows, write_result
from core import TimingConnector, make_message

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping

RESULTS = Path(__file__).resolve().parent / "results" / "outage-cpu.json"


def _settings(directory: Path) -> Settings:
    return settings_from_mapping(
        {
            "store": {
                "url": f"sqlite+aiosqlite:///{directory / 'bench.db'}",
                "sqlite_busy_timeout_ms": 50,
                "outage_spool_dir": str(directory / "spool"),
                "outage_spool_max_messages": 1_000_000,
            },
            "backend": {"kind": "echo"},
            "bot": {"rate_limit": {"enabled": False}},
            "language": {"detector": {"kind": "none"}},
        },
        environ={},
    )


async def _submit_all(bot: Bot, run: str, args: argparse.Namespace) -> list[float]:
    """Every message through ``submit_or_keep``; the latency of each (seconds)."""
    queue = iter(range(args.messages))
    latencies: list[float] = []

    async def submitter() -> None:
        for i in queue:
            t0 = time.perf_counter()
            await bot.submit_or_keep(make_message(i, args.conversations, run))
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
    return latencies


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        async with Bot(_settings(directory)) as bot:
            connector = TimingConnector(bot)
            bot.attach_connector(connector)  # fed by submit_or_keep, no run(): as core.py
            connector.expected = args.messages
            begin = time.perf_counter()
            normal = await _submit_all(bot, "up", args)
            await connector.all_done.wait()
            normal_s = time.perf_counter() - begin

            connector.done.clear()
            connector.all_done.clear()
            lock = sqlite3.connect(directory / "bench.db", isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            begin = time.perf_counter()
            kept = await _submit_all(bot, "down", args)
            keep_s = time.perf_counter() - begin
            lock.execute("ROLLBACK")
            lock.close()
            released = time.perf_counter()
            await connector.all_done.wait()
            drain_s = time.perf_counter() - released
    return {
        "benchmark": "outage-spool",
        **machine_facts(),
        "messages": args.messages,
        "concurrency": args.concurrency,
        "normal": {"msgs_per_s": args.messages / normal_s, **latency_ms([x * 1e3 for x in normal])},
        "keep": {"msgs_per_s": args.messages / keep_s, **latency_ms([x * 1e3 for x in kept])},
        "drain": {"seconds": drain_s, "msgs_per_s": args.messages / drain_s},
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [["phase", "msgs/s", "p50 ms", "p99 ms", "max ms"]]
    for phase in ("normal", "keep"):
        r = result[phase]
        rows.append([phase, f"{r['msgs_per_s']:.0f}", f"{r['p50_ms']:.2f}",
                     f"{r['p99_ms']:.2f}", f"{r['max_ms']:.2f}"])  # fmt: skip
    drain = result["drain"]
    rows.append(["drain (stored + answered)", f"{drain['msgs_per_s']:.0f}", "", "", ""])
    print(f"{result['messages']} messages, {result['concurrency']} submitters at once")
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(RESULTS), help="JSON path, or - for none")
    args = parser.parse_args()
    write_result(args, asyncio.run(measure(args)), print_table)


if __name__ == "__main__":
    main()
