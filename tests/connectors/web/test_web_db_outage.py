"""The web API while the database cannot store a message (its SQLite file locked by
another program beyond the busy timeout): the client is told to retry (503
``unavailable`` with ``Retry-After``), the log holds the store's one warning and no
traceback per refused request, and the retry with the same ``client_id`` is stored
once the file is free."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlite_lock import write_locked
from web_helpers import ORIGIN, Frame, WebHarness, reply_to, serve, web_settings

from botkit.bot import Bot

BUSY_MS = 200  # the bot's busy timeout here: a lock held longer fails its write


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "web.db"


@pytest.fixture
async def web(db: Path) -> AsyncIterator[WebHarness]:
    settings = web_settings(db, {})
    store = settings.store.model_copy(update={"sqlite_busy_timeout_ms": BUSY_MS})
    async with AsyncExitStack() as stack:
        yield await serve(stack, Bot(settings.model_copy(update={"store": store})))


async def test_a_message_refused_in_an_outage_gets_a_retryable_503_and_no_traceback(
    web: WebHarness, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await web.session()
    body = {"client_id": "m1", "text": "where is my order?"}
    headers = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    with write_locked(db):
        for _ in range(3):  # the client's retries while it lasts
            resp = await web.client.post("/api/messages", json=body, headers=headers)
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "5"
            assert (await resp.json())["error"] == "unavailable"
    refused = [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert [f"{r.name}: {r.getMessage()}" for r in refused] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "is unavailable" in w]) == 1  # the store's own
    assert not any(r.name.startswith("connectors.web") for r in caplog.records if r.levelno >= 30)

    receipt = await web.post(token, "m1", "where is my order?")  # the retry, file free
    assert receipt["duplicate"] is False
    seen: list[Frame] = []
    async with asyncio.timeout(10):
        while not any(reply_to(receipt["seq"])(m) for m in seen):
            seen += await web.history(token, after_seq=seen[-1]["seq"] if seen else 0, wait=5)
    assert [m["text"] for m in seen] == ["where is my order?", "echo: where is my order?"]


async def test_a_socket_message_refused_in_an_outage_is_retried_after_five_seconds(
    web: WebHarness, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    visitor = await web.visitor()
    with write_locked(db):
        await visitor.send("where is my order?", "m1")
        refused = await visitor.until(lambda f: f["type"] == "error")
    # The widget waits retry_after (it would retry every second without it).
    assert refused == {
        "type": "error",
        "code": "unavailable",
        "message": "message not stored; retry",
        "client_id": "m1",
        "retry_after": 5.0,
    }
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert [r.getMessage() for r in tracebacks] == []
    await visitor.send("where is my order?", "m1")  # the retry, file free
    ack = await visitor.until(lambda f: f["type"] == "ack")
    await visitor.until(reply_to(ack["seq"]))
    await visitor.close()
