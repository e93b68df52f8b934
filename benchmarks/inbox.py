"""Agents' inbox benchmark: what one agent's look at the queue costs the bot.

Each open inbox reads the queue every 3 s: the conversations waiting for an agent
(oldest first) and those with one (newest first), 100 at most each, with each one's
customer name and last message (``/v1/handoffs``, as ``botkit.handoff.api`` reads it:
``conversations_with_status`` then ``handoff_previews``). This measures one such look
against a database of ``--conversations`` conversations of ``--messages`` messages each,
for several queue lengths, and the share of one core that ``--agents`` open inboxes take.

    python benchmarks/inbox.py                        # SQLite: results/inbox-cpu.json
    python benchmarks/inbox.py --throwaway-postgres   # results/inbox-cpu-postgres.json
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _output import latency_ms, machine_facts, print_rows  # this script's folder
from _stores import add_store_options, chosen_store, write_result

from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStatus, ConversationStore, StoreSettings, migrate

RESULTS = Path(__file__).resolve().parent / "results" / "inbox-cpu.json"
QUEUES = (10, 100, 500)  # conversations waiting (as many again are with an agent)
POLL_SECONDS = 3.0
PAGE = 100


async def populate(store: ConversationStore, conversations: int, messages: int) -> list[int]:
    """``conversations`` Telegram-like conversations, each ``messages`` long (the
    customer and the bot taking turns); their ids."""
    ids = []
    for n in range(conversations):
        key = f"chat-{n:06d}"
        contact = Contact("telegram", key, f"Customer {n}", "en")
        conversation_id = 0
        for turn in range(messages // 2):
            text = f"question {turn} about order {n}"
            inbound = InboundMessage("telegram", key, contact, text, f"{key}/{turn}")
            conversation_id = (await store.intake(inbound, text=text)).conversation.id
            await store.append_outbound(conversation_id, f"answer {turn}")
        ids.append(conversation_id)
    return ids


async def look(store: ConversationStore) -> None:
    """One inbox's look at the queue, as the API serves its two requests."""
    for status, oldest in ((ConversationStatus.WAITING_HUMAN, True),
                           (ConversationStatus.WITH_HUMAN, False)):  # fmt: skip
        found = await store.conversations_with_status([status], limit=PAGE, oldest_first=oldest)
        await store.handoff_previews([c.id for c in found])


async def time_look(store: ConversationStore, repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        await look(store)
        samples.append((time.perf_counter() - start) * 1000)
    return latency_ms(samples)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite+aiosqlite:///{Path(tmp) / 'inbox.db'}"
        await migrate.upgrade(url)
        async with ConversationStore(StoreSettings(url=url)) as store:
            started = time.perf_counter()
            ids = await populate(store, args.conversations, args.messages)
            print(f"populated in {time.perf_counter() - started:.0f} s")
            runs: list[dict[str, Any]] = []
            queued: list[int] = []
            for waiting in QUEUES:
                if 2 * waiting > len(ids):
                    continue
                for conversation_id in queued:  # the previous run's queue, emptied
                    await store.set_conversation_status(conversation_id, ConversationStatus.BOT)
                # Spread over the table, as a day's hand-offs are.
                queued = ids[:: len(ids) // (2 * waiting)][: 2 * waiting]
                for n, conversation_id in enumerate(queued):
                    status = (ConversationStatus.WAITING_HUMAN if n % 2 == 0
                              else ConversationStatus.WITH_HUMAN)  # fmt: skip
                    await store.set_conversation_status(conversation_id, status)
                await time_look(store, 5)  # warm-up
                timing = await time_look(store, args.repeats)
                share = timing["p50_ms"] / (POLL_SECONDS * 1000) * args.agents * 100
                runs.append({"waiting": waiting, "with_agent": waiting, **timing,
                             "core_percent_for_agents": share})  # fmt: skip
    return {
        "benchmark": "inbox",
        "store": args.store_label,
        "conversations_in_database": args.conversations,
        "messages_per_conversation": args.messages,
        "agents": args.agents,
        "poll_seconds": POLL_SECONDS,
        **machine_facts(),
        "runs": runs,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"store: {result['store']}; {result['conversations_in_database']} conversations of "
        f"{result['messages_per_conversation']} messages; {result['agents']} inboxes open"
    )
    rows = [("waiting", "with agent", "p50 ms", "p99 ms", "max ms", "core share")]
    for r in result["runs"]:
        rows.append(
            (
                str(r["waiting"]),
                str(r["with_agent"]),
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.2f}",
                f"{r['core_percent_for_agents']:.1f} %",
            )
        )
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=5_000)
    parser.add_argument("--messages", type=int, default=20, help="per conversation")
    parser.add_argument("--agents", type=int, default=20, help="open inboxes, for the share")
    parser.add_argument("--repeats", type=int, default=100)
    add_store_options(parser)
    args = parser.parse_args()
    with chosen_store(args, "botkit_inbox_bench", RESULTS):
        result = asyncio.run(main_async(args))
    write_result(args, result, print_table)


if __name__ == "__main__":
    main()
