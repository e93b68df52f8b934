"""The webhook transport: secret check, duplicates, hostile bodies."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from tg_helpers import (
    SECRET,
    WRONG_TYPES,
    CoreProxy,
    MakeTg,
    TgHarness,
    garbled,
    post_update,
    webhook_section,
)

from botkit.errors import ConfigError


async def webhook(make_tg: MakeTg, **extra: Any) -> TgHarness:
    return await make_tg(webhook_section(**extra))


async def test_registers_the_webhook_with_its_secret(make_tg: MakeTg) -> None:
    tg = await webhook(make_tg)
    hook = tg.fake.webhook
    assert hook is not None
    assert hook["url"] == "https://bot.example/telegram/webhook"
    assert hook["secret_token"] == SECRET
    assert hook["allowed_updates"] == ["message", "callback_query"]
    assert not tg.fake.calls_to("getUpdates")


async def test_correct_secret_is_accepted_and_answered(make_tg: MakeTg) -> None:
    tg = await webhook(make_tg)
    assert await post_update(tg, tg.fake.updates.message(201, "hi there")) == 200
    await tg.wait_answers(1)
    assert tg.answers(201) == ["echo: hi there"]


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), SECRET.replace("-", "_")],
)
async def test_wrong_or_missing_secret_is_refused(make_tg: MakeTg, secret: str | None) -> None:
    tg = await webhook(make_tg)
    assert await post_update(tg, tg.fake.updates.message(202, "let me in"), secret=secret) == 403
    assert await tg.history(202) == []
    assert not tg.fake.messages()


async def test_duplicate_update_ids_are_answered_once(make_tg: MakeTg) -> None:
    tg = await webhook(make_tg)
    update = tg.fake.updates.message(203, "only once")
    start = tg.fake.updates.message(204, "/start")
    statuses = await asyncio.gather(*(post_update(tg, update) for _ in range(3)))
    statuses += [await post_update(tg, start), await post_update(tg, start)]
    assert statuses == [200] * 5
    await tg.wait_answers(2)
    await tg.settle()
    await asyncio.sleep(0.1)
    assert tg.answers(203) == ["echo: only once"]
    assert len(tg.answers(204)) == 1
    assert [i.direction for i in await tg.history(203)] == ["in", "out"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"update"',
        b"{}",
        b'{"update_id": "12"}',
        b'{"update_id": true}',
        b'{"message": {"chat": 5}}',
        b"[" * 50_000 + b"]" * 50_000,
    ],
)
async def test_hostile_bodies_are_refused_and_the_bot_keeps_working(
    make_tg: MakeTg, body: bytes
) -> None:
    tg = await webhook(make_tg)
    assert await post_update(tg, body) == 400
    assert await post_update(tg, tg.fake.updates.message(205, "still here")) == 200
    await tg.wait_answers(1)


@pytest.mark.parametrize(
    "body",
    [
        {"update_id": 1, "message": "x Card 4111"},
        {"update_id": 2, "message": {"chat": 5, "text": "x Card 4111"}},
    ],
)
async def test_an_update_the_library_cannot_read_is_acknowledged_and_skipped(
    make_tg: MakeTg, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # As in polling mode: an error answer would only make Telegram send it again.
    tg = await webhook(make_tg)
    caplog.set_level(logging.WARNING, logger="connectors.telegram")
    assert await post_update(tg, body) == 200
    assert await post_update(tg, body) == 200
    [first] = [r for r in caplog.records if "cannot be read" in r.getMessage()]  # throttled
    assert first.levelno == logging.WARNING
    assert f"update {body['update_id']} " in first.getMessage()
    assert "Card 4111" not in caplog.text  # the update's content is not logged
    assert await post_update(tg, tg.fake.updates.message(208, "still here")) == 200
    await tg.wait_answers(1)
    await tg.settle()
    assert [m.chat_id for m in tg.fake.messages()] == [208]


@pytest.mark.parametrize(("kind", "path", "value", "named"), WRONG_TYPES)
async def test_an_update_with_wrongly_typed_fields_is_acknowledged_with_one_warning(
    make_tg: MakeTg,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    path: tuple[str, ...],
    value: object,
    named: str,
) -> None:
    tg = await webhook(make_tg)
    caplog.set_level(logging.INFO)
    bad = [garbled(tg.fake.updates, kind, path, value) for _ in range(3)]
    # 200: Telegram would only send it again and again.
    assert [await post_update(tg, update) for update in bad] == [200, 200, 200]
    assert await post_update(tg, tg.fake.updates.message(209, "still here")) == 200
    await tg.wait_answers(1)
    await tg.settle()
    await asyncio.sleep(0.1)
    assert [m.chat_id for m in tg.fake.messages()] == [209]
    assert not tg.fake.calls_to("answerCallbackQuery")
    assert await tg.history(210) == [] and await tg.bot.history("telegram", "210:7") == []
    # One line naming the problem (the others are counted), no traceback, no ERROR.
    [line] = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert f"update {bad[0]['update_id']} cannot be read ({named}" in line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_oversized_body_is_refused(make_tg: MakeTg) -> None:
    tg = await webhook(make_tg, max_body_bytes=2048)
    big = tg.fake.updates.message(206, "x" * 5000)
    assert await post_update(tg, big) == 413
    assert await post_update(tg, big, secret=None) == 403  # the secret is checked first


async def test_unstored_update_asks_telegram_to_retry(make_tg: MakeTg) -> None:
    tg = await webhook(make_tg)
    tg.connector.core = CoreProxy(tg.bot, fail_first=1)
    update = tg.fake.updates.message(207, "retry me")
    assert await post_update(tg, update) == 503
    assert await post_update(tg, update) == 200  # Telegram's retry
    await tg.wait_answers(1)
    assert tg.answers(207) == ["echo: retry me"]


@pytest.mark.parametrize(
    "hook",
    [
        {"url": "https://bot.example/hook"},  # no secret
        {"url": "https://bot.example/hook", "secret_token": "short"},
        {"url": "https://bot.example/hook", "secret_token": "has spaces in it 123456"},
        {"url": "http://bot.example/hook", "secret_token": SECRET},  # not https
        {"secret_token": SECRET},  # no url
        {"url": "https://bot.example/hook", "secret_token": SECRET, "path": "no-slash"},
    ],
)
async def test_webhook_config_problems_are_reported(make_tg: MakeTg, hook: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        await make_tg({"mode": "webhook", "webhook": hook}, run=False)
    assert "connectors.telegram" in str(err.value)
    assert SECRET not in str(err.value)


async def test_an_update_posted_before_set_webhook_returns_is_taken(make_tg: MakeTg) -> None:
    # After a restart Telegram's webhook still points here: it posts what it kept as
    # soon as the port listens, while connect() is still calling setWebhook.
    tg = await make_tg(webhook_section(), run=False)
    tg.fake.delays["setWebhook"] = 1.0
    tg.run_task = asyncio.create_task(tg.bot.run())
    for _ in range(3000):  # until served; setWebhook is still on its way
        if tg.connector.port is not None:
            break
        await asyncio.sleep(0.01)
    assert not tg.fake.calls_to("setWebhook")
    assert await post_update(tg, tg.fake.updates.message(230, "queued while down")) == 200
    await tg.wait_answers(1, 230)
    assert tg.answers(230) == ["echo: queued while down"]


async def test_a_connect_cancelled_during_set_webhook_leaves_nothing_serving(
    make_tg: MakeTg,
) -> None:
    # Review L11: only a TelegramError stopped the webhook server; a cancellation (or any
    # other error) while setWebhook ran left it answering 200 with a closed bot behind.
    tg = await make_tg(webhook_section(), run=False)
    tg.fake.delays["setWebhook"] = 5.0
    connecting = asyncio.create_task(tg.connector.connect())
    for _ in range(3000):  # until served; setWebhook is still on its way
        if tg.connector.port is not None:
            break
        await asyncio.sleep(0.01)
    port = tg.connector.port
    assert port is not None
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert tg.connector._sender is None  # no sender over a closed bot
    with pytest.raises(aiohttp.ClientError):
        await post_update(tg, tg.fake.updates.message(231, "anyone there?"))
