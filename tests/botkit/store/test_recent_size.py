"""``history_cache_mb`` bounds the history cache's real memory, not a notional size.

Counted as 400 bytes a message plus the text's characters, a ~55-character message
really took ~630 B (the default 32 MB held ~44 MB) and a non-ASCII one twice what was
counted. The real size here is what tracemalloc sees freed when the cache is cleared,
the cache filled through the real store (SQLite) well past its bound.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest

from botkit.events import InboundMessage
from botkit.store import ConversationStore, StoreSettings
from botkit.store.records import InboundFinish

MakeMessage = Callable[..., InboundMessage]
BOUND = 2**20  # history_cache_mb = 1
# Room for CPython versions' object sizes; the count is within ~6% on 3.11.
TOLERANCE = 1.15

TEXTS = {
    "short": "Hello, where is my order {n}? It has not arrived yet.",
    "long": "My order {n} has not arrived yet, could you please check it again. " * 30,
    "chinese": "你好我的订单{n}还没有到请帮我查一下谢谢。" * 2,
    "emoji": "Where is my order {n}? 😀 It has not arrived yet 📦",
}


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "exchanges"), [("short", 1), ("short", 6), ("long", 2), ("chinese", 2), ("emoji", 3)]
)
async def test_the_cache_takes_about_its_bound(
    migrated_db_url: str, make_message: MakeMessage, kind: str, exchanges: int
) -> None:
    settings = StoreSettings(url=migrated_db_url, history_cache_mb=1)
    async with ConversationStore(settings) as store:
        recent = store._recent
        recent.want(20)
        gc.collect()
        tracemalloc.start()
        try:
            full_at: int | None = None  # conversations stored when the first was evicted
            for c in range(5_000):
                if full_at is not None and c > full_at * 1.2:
                    break  # well past the bound
                for t in range(exchanges):
                    text = TEXTS[kind].format(n=c * 100 + t)
                    inbound = make_message(text, conversation=f"c{c}", user=f"u{c}")
                    got = await store.intake(inbound, text=text)
                    await store.append_outbound(
                        got.conversation.id, f"Re: {text}", language="en",
                        in_reply_to_seq=got.message.seq,
                        finish=InboundFinish(got.message, "en", None),
                    )  # fmt: skip
                if full_at is None and len(recent) <= c:
                    full_at = c
            assert full_at is not None
            assert BOUND * 0.9 < recent.size <= BOUND
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            recent.clear()
            gc.collect()
            real = before - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert BOUND / TOLERANCE < real < BOUND * TOLERANCE, (kind, real / BOUND)
