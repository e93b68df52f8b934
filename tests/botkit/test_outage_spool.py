"""Messages kept on disk while the database is unavailable (``Bot.submit_or_keep``):
kept durably and privately, stored and answered in order once the database answers,
also by the next start; hostile or damaged files are set aside, never lost silently.

The outage here is SQLite's: another program holds the write lock beyond the bot's busy
timeout (``sqlite_lock.write_locked``), so every write fails while reads go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, message, recorder
from sqlite_lock import write_locked

from botkit import _spooled_intake
from botkit._outage_spool import OutageSpool, SpooledMessage, SpoolFull
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import DatabaseUnavailableError, MessageRejectedError
from botkit.events import Attachment, Contact, InboundMessage
from botkit.store import MessageStatus

BUSY_MS = 100


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], core_db_url: str, spool_dir: Path) -> Settings:
    return make_settings(
        store={
            "url": core_db_url,
            "sqlite_busy_timeout_ms": BUSY_MS,
            "outage_spool_dir": str(spool_dir),
            "outage_spool_max_messages": 5,
        }
    )


class _Listening(RecordingConnector):
    """A connector whose listener runs until the bot stops."""

    async def listen(self) -> None:
        await asyncio.Event().wait()


def _db(core_db_url: str) -> str:
    return core_db_url.removeprefix("sqlite+aiosqlite:///")


def _files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*.json")) if spool_dir.is_dir() else []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plant(directory: Path, name: str, content: bytes) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_bytes(content)


async def _texts(bot: Bot, conversation: str = "c1") -> list[str]:
    return [m.text for m in await bot.store.messages_after("test", conversation, 0, 100)]


# -- the directory ---------------------------------------------------------------------


HOSTILE = InboundMessage(
    channel="slack",
    conversation_key="D1:1600000000.000001",
    contact=Contact("slack", "U1", display_name='Zoë "<script>"', language_hint="fr-FR"),
    text="lone \ud800, NUL \x00, RTL \u202e, emoji \U0001f389, fraktur \U0001d518\U0001d52b",
    idempotency_key="slack:D1:1600000000.000001",
    channel_ids={"channel": "D1", "ts": "1600000000.000001", "../": "\n"},
    attachments=(
        Attachment("image", name="a.png", mime_type="image/png", size=12, url="https://x/a"),
        Attachment("file", ref="F1"),
    ),
    received_at=datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC),
)


async def test_a_kept_message_reads_back_exactly_and_is_private(spool_dir: Path) -> None:
    spool = OutageSpool(spool_dir, max_messages=10)
    await spool.keep(SpooledMessage(HOSTILE, existing_conversation_only=True))
    assert len(spool) == 1
    (path,) = _files(spool_dir)
    assert (_mode(spool_dir), _mode(path)) == (0o700, 0o600)
    found = await spool.oldest()
    assert found == (path, SpooledMessage(HOSTILE, existing_conversation_only=True))
    await spool.forget(path)
    assert len(spool) == 0 and _files(spool_dir) == []
    assert await spool.oldest() is None


async def test_an_agents_reply_reads_back_as_theirs(spool_dir: Path) -> None:
    spool = OutageSpool(spool_dir, max_messages=10)
    kept = SpooledMessage(HOSTILE, existing_conversation_only=True, agent_name='Ana "<b>"')
    await spool.keep(kept)
    (path,) = _files(spool_dir)
    # A format an older botkit sets aside, rather than take the agent for a customer.
    assert json.loads(path.read_bytes())["format"] == 2
    assert await spool.oldest() == (path, kept)


async def test_kept_messages_come_back_in_order_also_after_a_restart(spool_dir: Path) -> None:
    spool = OutageSpool(spool_dir, max_messages=10)
    for i in range(4):
        await spool.keep(SpooledMessage(message(f"m{i}", f"k{i}")))
    _plant(spool_dir, "partial.tmp", b'{"format": 1, "chan')  # a write cut by a crash
    again = OutageSpool(spool_dir, max_messages=10)
    assert await again.load() == 4
    assert again.added.is_set()
    assert not (spool_dir / "partial.tmp").exists()
    texts = []
    while (found := await again.oldest()) is not None:
        texts.append(found[1].message.text)
        await again.forget(found[0])
    assert texts == ["m0", "m1", "m2", "m3"]


async def test_a_full_spool_or_a_failing_disk_refuses_to_keep(tmp_path: Path) -> None:
    spool = OutageSpool(tmp_path / "spool", max_messages=2)
    await spool.keep(SpooledMessage(message("a", "k1")))
    await spool.keep(SpooledMessage(message("b", "k2")))
    with pytest.raises(SpoolFull, match="2 messages are kept already"):
        await spool.keep(SpooledMessage(message("c", "k3")))
    _plant(tmp_path, "not-a-dir", b"")
    blocked = OutageSpool(tmp_path / "not-a-dir" / "spool", max_messages=2)
    with pytest.raises(SpoolFull, match="cannot write to"):
        await blocked.keep(SpooledMessage(message("a", "k1")))
    assert len(blocked) == 0


async def test_an_unwritable_directory_is_told_at_start(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _plant(tmp_path, "a-file", b"")
    settings = make_settings(store={"outage_spool_dir": str(tmp_path / "a-file" / "spool")})
    async with Bot(settings):
        pass
    assert any("is not writable" in r.getMessage() for r in caplog.records)
    assert await OutageSpool(tmp_path / "new" / "spool", max_messages=1).writable()


def _valid() -> dict[str, Any]:
    return json.loads(
        (
            b'{"format": 1, "existing_conversation_only": false, "channel": "test", '
            b'"conversation_key": "c1", "contact": {"channel": "test", "external_id": "u1", '
            b'"display_name": null, "language_hint": null}, "text": "hi", '
            b'"idempotency_key": "k9", "channel_ids": {}, "attachments": [], '
            b'"received_at": "2026-11-29T12:00:00+00:00"}'
        ).decode()
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not json",
        b"[]",
        b'{"format": 2}',
        b'{"format": 3}',  # a newer botkit's
        json.dumps({**_valid(), "format": 2}).encode(),  # an agent's without the name
        json.dumps({**_valid(), "format": 2, "agent_name": ["Ana"]}).encode(),
        json.dumps({**_valid(), "text": 42}).encode(),
        json.dumps({**_valid(), "contact": "u1"}).encode(),
        json.dumps({**_valid(), "channel_ids": {"a": 1}}).encode(),
        json.dumps({**_valid(), "attachments": [{"kind": "x", "size": "big"}]}).encode(),
        json.dumps({**_valid(), "received_at": "yesterday"}).encode(),
        json.dumps({**_valid(), "existing_conversation_only": "no"}).encode(),
        json.dumps({k: v for k, v in _valid().items() if k != "idempotency_key"}).encode(),
        b'{"format": 1, "a": ' * 5000,  # deeply nested garbage
    ],
    ids=lambda c: repr(c[:24]),
)
async def test_a_damaged_file_is_set_aside_with_an_error_and_the_rest_go_on(
    spool_dir: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    _plant(spool_dir, "00000000000000000001-1-000000000.json", content)
    _plant(spool_dir, "00000000000000000002-1-000000000.json", json.dumps(_valid()).encode())
    spool = OutageSpool(spool_dir, max_messages=10)
    assert await spool.load() == 2
    found = await spool.oldest()
    assert found is not None and found[1].message.idempotency_key == "k9"
    aside = spool_dir / "unreadable" / "00000000000000000001-1-000000000.json"
    assert aside.read_bytes() == content
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "moved to" in errors[0]
    assert len(spool) == 1


# -- the bot ---------------------------------------------------------------------------


async def test_messages_kept_in_an_outage_are_stored_and_answered_in_order_after_it(
    settings: Settings, core_db_url: str, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botkit")
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        await bot.submit_or_keep(message("before", "k0"))
        with write_locked(_db(core_db_url)):
            for i in range(1, 4):
                assert await bot.submit_or_keep(message(f"during {i}", f"k{i}")) is None
            assert len(_files(spool_dir)) == 3
            await asyncio.sleep(0.3)  # tries to store the oldest fail while it lasts
            assert len(_files(spool_dir)) == 3
        # Once it is back, a new message waits behind the kept ones.
        late = await bot.submit_or_keep(message("after", "k4"))
        await recorder(bot).wait_for(5)
        assert await bot.drain(10)
        async with asyncio.timeout(10):  # the storing task's last look, after the replies
            while not _said(caplog, "4 messages kept on disk are stored"):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        bot.stop()
        await running
        asked = ["before", "during 1", "during 2", "during 3", "after"]
        assert [t for t in await _texts(bot) if not t.startswith("echo")] == asked
        assert [r.text for r in recorder(bot).replies] == [f"echo: {t}" for t in asked]
        assert late is None  # kept behind the others, though the database was back
    assert _files(spool_dir) == []
    assert len(_said(caplog, "are kept in")) == 1
    assert len(_said(caplog, "messages kept on disk are stored")) == 1


def _said(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    """The warnings that say ``words``."""
    warnings = (r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    return [w for w in warnings if words in w]


def _spooled_gauge(bot: Bot) -> float | None:
    for line in bot.metrics.render().decode().splitlines():
        if line.startswith("botkit_outage_spool_messages "):
            return float(line.split()[1])
    return None


async def test_the_kept_messages_show_in_a_gauge(settings: Settings, core_db_url: str) -> None:
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        assert _spooled_gauge(bot) == 0
        with write_locked(_db(core_db_url)):
            for i in range(2):
                await bot.submit_or_keep(message(f"m{i}", f"k{i}"))
            assert _spooled_gauge(bot) == 2
        await recorder(bot).wait_for(2)
        async with asyncio.timeout(10):  # each file goes once its message is stored
            while _spooled_gauge(bot) != 0:  # noqa: ASYNC110 (a count, no event)
                await asyncio.sleep(0.02)
    off = settings.store.model_copy(update={"outage_spool_dir": ""})
    async with Bot(settings.model_copy(update={"store": off})) as bot:
        assert _spooled_gauge(bot) is None


async def test_a_failure_while_storing_kept_messages_does_not_leave_them_stuck(
    settings: Settings,
    core_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_spooled_intake, "DATABASE_RETRY_S", (0.05, 0.1))
    real = OutageSpool.oldest
    failures = [OSError("input/output error")]

    async def failing_once(self: OutageSpool) -> Any:
        if failures:
            raise failures.pop()
        return await real(self)

    monkeypatch.setattr(OutageSpool, "oldest", failing_once)
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        with write_locked(_db(core_db_url)):
            assert await bot.submit_or_keep(message("hello?", "k1")) is None
        (reply,) = await recorder(bot).wait_for(1)
        assert reply.text == "echo: hello?"
    assert any("storing kept messages failed" in r.getMessage() for r in caplog.records)


async def test_what_a_stopped_bot_kept_is_stored_and_answered_by_the_next_start(
    settings: Settings, core_db_url: str, spool_dir: Path
) -> None:
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(_db(core_db_url)):
            assert await bot.submit_or_keep(message("are you there?", "k1")) is None
            assert await bot.submit_or_keep(message("hello?", "k2")) is None
    assert len(_files(spool_dir)) == 2
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        replies = await recorder(bot).wait_for(2)
        assert [r.text for r in replies] == ["echo: are you there?", "echo: hello?"]
        assert await bot.drain(10)  # (each file goes just after its message is stored)
        bot.stop()
        await running
        statuses = [m.status for m in await bot.store.messages_after("test", "c1", 0, 10)]
        assert statuses[0] is MessageStatus.ANSWERED
    assert _files(spool_dir) == []


async def test_a_message_kept_twice_is_answered_once(
    settings: Settings, core_db_url: str, spool_dir: Path
) -> None:
    """Slack delivers an event again when the first delivery's acknowledgement is late:
    both deliveries may be kept; the delivery key stores the message once."""
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        with write_locked(_db(core_db_url)):
            for _ in range(2):
                assert await bot.submit_or_keep(message("refund please", "k1")) is None
        await recorder(bot).wait_for(1)
        async with asyncio.timeout(10):
            while _files(spool_dir):  # noqa: ASYNC110 (files, no event)
                await asyncio.sleep(0.02)
        assert await bot.drain(10)
        bot.stop()
        await running
        assert [r.text for r in recorder(bot).replies] == ["echo: refund please"]


async def test_drain_waits_for_kept_messages_to_be_stored_and_answered(
    settings: Settings, core_db_url: str, spool_dir: Path
) -> None:
    """``drain`` is what tests and an embedding program use to wait until the bot has
    nothing left to do: messages still kept on disk are work left."""
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        with write_locked(_db(core_db_url)):
            for i in range(3):
                assert await bot.submit_or_keep(message(f"m{i}", f"k{i}")) is None
            assert not await bot.drain(0.3)  # they cannot be stored yet
        # A duplicate delivery too: its file goes without a reply of its own.
        with write_locked(_db(core_db_url)):
            assert await bot.submit_or_keep(message("m2", "k2")) is None
        assert await bot.drain(30)
        assert _files(spool_dir) == []
        assert [r.text for r in recorder(bot).replies] == ["echo: m0", "echo: m1", "echo: m2"]
        bot.stop()
        await running


async def test_an_agents_reply_kept_in_an_outage_is_stored_as_theirs_and_takes_over(
    settings: Settings, core_db_url: str
) -> None:
    """A human agent's reply in a customer's Slack thread: dropped after Slack's retries,
    the bot would go on answering a customer the agent took over."""
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        await bot.submit_or_keep(message("my parcel is lost", "k0"))
        await recorder(bot).wait_for(1)
        agents_reply = message("Ana here, on it", "k1", user="agent-1")
        nobodys = message("hello?", "k2", user="agent-1", conversation="nobody")
        with write_locked(_db(core_db_url)):
            assert await bot.submit_or_keep(agents_reply, agent_name="Ana") is None
            assert (
                await bot.submit_or_keep(nobodys, agent_name="Ana", existing_conversation_only=True)
                is None
            )
        assert await bot.drain(30)
        stored = await bot.store.messages_after("test", "c1", 0, 10)
        assert [(m.text, m.agent) for m in stored][-1] == ("Ana here, on it", "Ana")
        assert await bot.with_human("test", "c1")
        assert await _texts(bot, "nobody") == []  # not a conversation: not for the bot
        # The customer's next message is the agent's to answer.
        await bot.submit_or_keep(message("thanks", "k3"))
        assert await bot.drain(30)
        assert [r.text for r in recorder(bot).replies] == ["echo: my parcel is lost"]
        bot.stop()
        await running


async def test_a_message_for_an_existing_conversation_only_is_dropped_if_there_is_none(
    settings: Settings, core_db_url: str, spool_dir: Path
) -> None:
    async with Bot(settings) as bot:
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        await bot.submit_or_keep(message("hi", "k0", conversation="known"))
        with write_locked(_db(core_db_url)):
            for conversation in ("unknown", "known"):
                kept = await bot.submit_or_keep(
                    message("in a thread", f"t-{conversation}", conversation=conversation),
                    existing_conversation_only=True,
                )
                assert kept is None
        await recorder(bot).wait_for(2)
        assert await bot.drain(10)
        async with asyncio.timeout(10):
            while _files(spool_dir):  # noqa: ASYNC110 (files, no event)
                await asyncio.sleep(0.02)
        # With the database up, the check is made at once: nothing is kept.
        nobody = message("x", "t2", conversation="nobody")
        assert await bot.submit_or_keep(nobody, existing_conversation_only=True) is None
        assert _files(spool_dir) == []
        bot.stop()
        await running
        assert await _texts(bot, "unknown") == await _texts(bot, "nobody") == []
        assert sorted(await _texts(bot, "known")) == [
            "echo: hi", "echo: in a thread", "hi", "in a thread"
        ]  # fmt: skip


async def test_beyond_the_limit_or_with_the_spool_off_the_outage_is_raised(
    settings: Settings, make_settings: Callable[..., Settings], core_db_url: str
) -> None:
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(_db(core_db_url)):
            for i in range(5):
                assert await bot.submit_or_keep(message(f"m{i}", f"k{i}")) is None
            with pytest.raises(DatabaseUnavailableError, match="no more can be kept"):
                await bot.submit_or_keep(message("m5", "k5"))
    off = settings.store.model_copy(update={"outage_spool_dir": ""})
    async with Bot(settings.model_copy(update={"store": off})) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(_db(core_db_url)), pytest.raises(DatabaseUnavailableError):
            await bot.submit_or_keep(message("m6", "k6"))


async def test_hostile_keys_are_refused_before_anything_is_kept(
    settings: Settings, core_db_url: str, spool_dir: Path
) -> None:
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with write_locked(_db(core_db_url)):
            for bad in ("", "k\x00", "k" * 10_000):
                with pytest.raises(MessageRejectedError):
                    await bot.submit_or_keep(message("hi", bad))
    assert _files(spool_dir) == []
