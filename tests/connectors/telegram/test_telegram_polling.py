"""Long polling through the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from telegram import Update
from tg_helpers import TOKEN, WRONG_TYPES, CoreProxy, MakeTg, TgHarness, garbled

from botkit.errors import ConnectorError
from botkit.events import OutboundReply
from botkit.testing.fake_telegram import FakeTelegram
from connectors.telegram.config import TelegramConfig
from connectors.telegram.polling import Poller, RetryLater

CHATS = [101, 102, 103, 104, 105]


def script(fake: FakeTelegram, sizes: list[int]) -> list[dict[str, object]]:
    """Batches of text updates spread over a few chats; returns all updates."""
    batches, n = [], 0
    for size in sizes:
        batch = []
        for _ in range(size):
            batch.append(fake.updates.message(CHATS[n % len(CHATS)], f"question {n}"))
            n += 1
        batches.append(batch)
    fake.add_batches(*batches)
    return [u for b in batches for u in b]


def answered_once(fake: FakeTelegram, total: int) -> None:
    counts = Counter(m.text for m in fake.messages())
    assert counts == Counter(f"echo: question {n}" for n in range(total))


async def test_batches_are_answered_once_and_confirmed_in_order(tg: TgHarness) -> None:
    updates = script(tg.fake, [5, 5, 4, 6])
    last = updates[-1]["update_id"]
    await tg.wait_answers(20)
    await tg.fake.wait_until(lambda: tg.fake.confirmed == last + 1, 30)
    answered_once(tg.fake, 20)
    # Each batch was confirmed by the request that asked for the next one, in order.
    offsets = [c.params.get("offset") for c in tg.fake.calls_to("getUpdates")]
    assert offsets[0] is None
    firsts = [updates[i]["update_id"] for i in (5, 10, 14)]
    later = offsets[1:]
    assert later == sorted(later)  # the offset never goes back
    assert sorted(set(later))[:3] == firsts


@pytest.mark.parametrize("crash_after", [7, 10])
async def test_crash_between_store_and_confirm_redelivers_without_double_answers(
    make_tg: MakeTg, crash_after: int
) -> None:
    first = await make_tg(run=False)
    fake = first.fake
    updates = script(fake, [5, 5, 4, 6])
    proxy = CoreProxy(first.bot, crash_after=crash_after)
    first.connector.core = proxy
    await first.connector.connect()
    with pytest.raises(RuntimeError, match="simulated crash"):
        await asyncio.wait_for(first.connector.listen(), 10)
    # The crash leaves the batch unconfirmed: Telegram still holds it.
    assert fake.confirmed == updates[5]["update_id"]
    fake.fail("getUpdates")  # a crashed process does not confirm on its way out
    await first.settle()
    await first.bot.close()
    assert len(fake.messages()) == crash_after  # stored messages were answered

    second = await make_tg()  # same database: a restart
    await second.wait_answers(20, within=30)
    await second.settle()
    answered_once(fake, 20)
    # The updates stored before the crash came again and were recognized.
    redelivered = [c for c in fake.calls_to("getUpdates") if c.params.get("offset") is None]
    assert len(redelivered) == 2  # one per process start
    stored = [i for chat in CHATS for i in await second.history(chat) if i.direction == "in"]
    assert len(stored) == 20


async def test_store_failure_refetches_the_update(make_tg: MakeTg) -> None:
    tg = await make_tg(run=False)
    tg.connector.core = CoreProxy(tg.bot, fail_first=2)
    tg.fake.push(tg.fake.updates.message(101, "hello"))
    await tg.run()
    await tg.wait_answers(1)
    await tg.settle()
    assert tg.answers() == ["echo: hello"]
    fetched = [c for c in tg.fake.calls_to("getUpdates") if c.params.get("offset") is None]
    assert len(fetched) >= 3  # fetched again after each failure, never confirmed early


async def test_rejected_token_fails_connect_without_printing_it(make_tg: MakeTg) -> None:
    tg = await make_tg(run=False)
    tg.fake.token = "999:other-token-abcdefghijklmnopqrstu"
    with pytest.raises(ConnectorError) as err:
        await tg.connector.connect()
    assert "rejected" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN.split(":")[1] not in str(err.value)


async def test_polling_deletes_a_leftover_webhook(make_tg: MakeTg, fake: FakeTelegram) -> None:
    fake.webhook = {"url": "https://old.example/hook"}
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(101, "after webhook"))
    await tg.wait_answers(1)
    assert fake.webhook is None


async def test_stopping_lets_a_reply_being_streamed_finish(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.05)
    text = " ".join(f"w{i}" for i in range(16))
    tg.fake.push(tg.fake.updates.message(106, text))
    await tg.wait_answers(1)  # the first part is on screen, the model still writing
    await tg.stop()  # disconnects the connector while the reply streams
    assert tg.answers(106) == [f"echo: {text}"]
    assert [i.status for i in await tg.history(106)][1] == "sent"


async def test_disconnect_twice_and_send_afterwards(make_tg: MakeTg) -> None:
    tg = await make_tg()
    await tg.stop()
    await tg.connector.disconnect()
    reply = OutboundReply(channel="telegram", conversation_key="107", text="late")
    with pytest.raises(ConnectorError, match="not connected"):
        await tg.connector.send(reply)


async def test_an_unreadable_update_is_skipped_not_fetched_forever(make_tg: MakeTg) -> None:
    tg = await make_tg(run=False)
    u = tg.fake.updates
    poison = {"update_id": 499_990, "message": {"chat": 5}}  # the library cannot parse it
    tg.fake.push(u.message(108, "before", update_id=499_989), poison)
    tg.fake.push(u.message(108, "after", update_id=499_991))
    await tg.run()
    await tg.wait_answers(2)
    await tg.settle()
    assert tg.answers(108) == ["echo: before", "echo: after"]


@pytest.mark.parametrize(("kind", "path", "value", "named"), WRONG_TYPES)
async def test_wrongly_typed_updates_in_a_batch_are_skipped_with_one_warning(
    make_tg: MakeTg,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    path: tuple[str, ...],
    value: object,
    named: str,
) -> None:
    tg = await make_tg(run=False)
    caplog.set_level(logging.INFO)
    u = tg.fake.updates
    batch = [u.message(108, "before"), garbled(u, kind, path, value)]
    batch += [u.message(108, "between"), garbled(u, kind, path, value)]
    bad = batch[1::2]
    tg.fake.push(*batch)
    tg.fake.push(u.message(108, "after"))
    await tg.run()
    await tg.wait_answers(3)
    await tg.settle()
    await asyncio.sleep(0.1)
    assert tg.answers() == ["echo: before", "echo: between", "echo: after"]
    assert not tg.fake.calls_to("answerCallbackQuery")
    [line] = [r for r in caplog.records if "cannot be read" in r.getMessage()]  # throttled
    assert line.levelno == logging.WARNING
    assert f"update {bad[0]['update_id']} cannot be read ({named}" in line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_store_outage_backs_off_exponentially() -> None:
    # The fetch succeeds every time while the store is down; the pause must still grow,
    # or the poller asks Telegram and the store again every initial_backoff_s forever.
    class _Bot:
        async def get_updates(self, **_: object) -> tuple[Update, ...]:
            return (Update(update_id=7),)

    async def handle(_: Update) -> None:
        raise RetryLater("database down")

    seen: list[int] = []

    class _Poller(Poller):
        def _backoff(self, failures: int) -> float:
            seen.append(failures)
            if len(seen) == 5:
                raise asyncio.CancelledError
            return 0.0

    config = TelegramConfig(token=TOKEN)
    poller = _Poller(_Bot(), config, handle, str, skip=lambda *_: None)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await poller.run()
    assert seen == [1, 2, 3, 4, 5]
    assert poller.offset is None  # never confirmed past the unstored update


async def test_a_reply_cut_off_by_shutdown_is_marked_and_answered_again(make_tg: MakeTg) -> None:
    first = await make_tg(
        {"edit_interval_s": 0.2, "streaming": "edit"},
        bot={"shutdown_grace_seconds": 0},
        word_delay=0.2,
    )
    fake = first.fake
    text = " ".join(f"w{i}" for i in range(40))
    fake.push(fake.updates.message(108, text))
    await first.wait_answers(1, chat_id=108)  # a first part is on screen...
    await first.stop()  # ...when shutdown cuts the reply off
    shown = first.answers(108)
    assert len(shown) == 1 and shown[0].endswith(" …") and len(shown[0]) < len(text)
    assert [i.status for i in await first.history(108)] == ["received", "failed"]
    await first.bot.close()

    second = await make_tg(db="tg.db", bot={"shutdown_grace_seconds": 0})  # a restart
    await second.wait_answers(2, chat_id=108, within=30)
    assert second.answers(108)[1] == f"echo: {text}"


async def test_the_shutdown_mark_is_not_overwritten_by_a_progress_edit(make_tg: MakeTg) -> None:
    first = await make_tg(
        {"edit_interval_s": 0.2, "streaming": "edit"},
        bot={"shutdown_grace_seconds": 0},
        word_delay=0.02,
    )
    fake = first.fake
    apply_edit = fake._api_editMessageText
    in_flight = [0]

    async def slow_edit(params: dict[str, object]) -> object:  # a realistic round trip
        in_flight[0] += 1
        try:
            await asyncio.sleep(0.3)
            return await apply_edit(params)
        finally:
            in_flight[0] -= 1

    fake._api_editMessageText = slow_edit  # type: ignore[method-assign]
    fake.push(fake.updates.message(109, " ".join(f"w{i}" for i in range(400))))
    [shown] = await first.wait_answers(1, chat_id=109, within=30)
    edits = len(shown.versions)
    await fake.wait_until(lambda: len(shown.versions) > edits, 30)  # a progress edit landed:
    await first.stop()  # the next one is due while the mark is in flight
    # Every edit in flight lands (waited for, however slow the machine: not slept for).
    await fake.wait_until(lambda: shown.text.endswith(" …"), 30)  # the mark landed...
    await fake.wait_until(lambda: in_flight[0] == 0, 30)  # ...and then any late edit
    assert shown.text.endswith(" …"), [text[-14:] for _, text in shown.versions]


async def test_held_updates_dropped_after_a_failed_album_leave_no_unread_error() -> None:
    # Review L10: when a held album failed, the other held futures were dropped unread;
    # one failing later logged "Future exception was never retrieved".
    import gc

    loop = asyncio.get_running_loop()
    unread: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    try:
        poller = Poller(None, TelegramConfig(token=TOKEN), None, str, skip=lambda *_: None)  # type: ignore[arg-type]
        failed, later = loop.create_future(), loop.create_future()
        failed.set_exception(RetryLater("database unavailable"))
        poller._held = [(1, failed), (2, later)]  # two albums held
        with pytest.raises(RetryLater):
            poller._advance()
        assert poller.offset == 1
        later.set_exception(RetryLater("database unavailable"))
        await asyncio.sleep(0)  # its callbacks run
        del failed, later
        gc.collect()
        assert unread == []
    finally:
        loop.set_exception_handler(None)
