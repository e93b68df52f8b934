"""Peer-sync benchmark: what a replica's once-a-second look at its peers' changes costs.

While other bot processes share its database, each process reads, once a second, the
newest ``seq`` of every web conversation its sockets watch and the status of every
conversation it is replying to (``botkit/_peers.py``). This measures one such look (both
reads, as ``PeerSync.look`` makes them) against a database holding ``--conversations``
conversations, for several numbers of watched conversations, with ``--replying`` live
replies. The share of one core it takes at one look a second is the look's time in ms
divided by 1,000 (the database's own work included when it runs on this machine).

    python benchmarks/peers.py                        # SQLite: results/peers-cpu.json
    python benchmarks/peers.py --throwaway-postgres   # results/peers-cpu-postgres.json
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
from botkit.store import ConversationStore, StoreSettings, migrate

RESULTS = Path(__file__).resolve().parent / "results" / "peers-cpu.json"
WATCHED = (10, 100, 1000, 5000)


async def populate(store: ConversationStore, conversations: int) -> tuple[list[str], list[int]]:
    """``conversations`` web conversations of one message each; their keys and ids."""
    keys, ids = [], []
    for n in range(conversations):
        key = f"visitor-{n:06d}"
        message = InboundMessage(
            channel="web",
            conversation_key=key,
            contact=Contact("web", key, None, None),
            text="hello",
            idempotency_key=f"{key}/1",
        )
        result = await store.intake(message, text="hello")
        keys.append(key)
        ids.append(result.conversation.id)
    return keys, ids


async def time_look(
    store: ConversationStore, keys: list[str], ids: list[int], repeats: int
) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        await store.statuses(ids)
        await store.last_seqs("web", keys)
        samples.append((time.perf_counter() - start) * 1000)
    return latency_ms(samples)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite+aiosqlite:///{Path(tmp) / 'peers.db'}"
        await migrate.upgrade(url)
        async with ConversationStore(StoreSettings(url=url)) as store:
            keys, ids = await populate(store, args.conversations)
            replying = ids[-args.replying :]
            runs = []
            for watched in WATCHED:
                if watched > len(keys):
                    continue
                # Spread over the table, as visitors of a day are.
                step = len(keys) // watched
                chosen = keys[::step][:watched]
                await time_look(store, chosen, replying, 5)  # warm-up
                timing = await time_look(store, chosen, replying, args.repeats)
                runs.append({"watched": watched, "replying": len(replying), **timing})
    return {
        "benchmark": "peers",
        "store": args.store_label,
        "conversations_in_database": args.conversations,
        **machine_facts(),
        "looks_per_second": 1,
        "runs": runs,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"store: {result['store']}; {result['conversations_in_database']} conversations")
    rows = [("watched", "replying", "p50 ms", "p99 ms", "max ms", "core share")]
    for r in result["runs"]:
        rows.append(
            (
                str(r["watched"]),
                str(r["replying"]),
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.2f}",
                f"{r['p50_ms'] / 10:.2f} %",  # ms per 1,000 ms, in percent
            )
        )
    print_rows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--replying", type=int, default=64, help="live replies judged")
    parser.add_argument("--repeats", type=int, default=50)
    add_store_options(parser)
    args = parser.parse_args()
    with chosen_store(args, "botkit_peers_bench", RESULTS):
        result = asyncio.run(main_async(args))
    write_result(args, result, print_table)


if __name__ == "__main__":
    main()
