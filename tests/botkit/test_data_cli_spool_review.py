"""``botkit data forget`` and ``data purge`` against a running bot's outage spool: a kept
message the bot already read is not stored once its writer is erased; a spool folder
that is not where the command looks is said; a file that cannot be deleted does not
stop a purge."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from botkit import _spooled_intake
from botkit._outage_spool import (
    UNREADABLE,
    OutageSpool,
    SpooledMessage,
    erase_writer,
    purge_unreadable,
)
from botkit._spooled_intake import SpooledIntake
from botkit.channel import IntakeReceipt
from botkit.cli import main
from botkit.errors import DatabaseUnavailableError
from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStore, StoreSettings


def _message(user: str, text: str, key: str) -> InboundMessage:
    return InboundMessage(
        channel="slack", conversation_key=f"C9:{user}", contact=Contact("slack", user),
        text=text, idempotency_key=key,
    )  # fmt: skip


async def test_a_kept_message_erased_while_the_bot_waits_to_store_it_is_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spooled_intake, "DATABASE_RETRY_S", (0.01, 0.01))
    spool = OutageSpool(tmp_path / "spool", max_messages=10)
    await spool.keep(SpooledMessage(_message("U_P", "my IBAN is DE89", "ev1")))
    tries: list[str] = []

    async def submit(message: InboundMessage) -> IntakeReceipt:
        tries.append(message.text)
        if len(tries) == 1:
            # The database is away; meanwhile `data forget` erases U_P's kept messages.
            erase_writer(spool.directory, "slack", "U_P")
            raise DatabaseUnavailableError("down")
        raise AssertionError("stored a message its writer's erasure removed")

    async def exists(channel: str, key: str) -> bool:
        return True

    async def record_agent(message: InboundMessage, name: str) -> bool:
        return False

    intake = SpooledIntake(spool, submit, exists, record_agent, lambda: True)
    intake.start_storing()
    try:
        assert await intake.wait_stored(5)
    finally:
        await intake.close()
    assert tries == ["my IBAN is DE89"]


def _config(tmp_path: Path, url: str, spool: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\nurl = "{url}"\noutage_spool_dir = "{spool}"\n[backend]\nkind = "echo"\n',
        "utf-8",
    )
    return str(path)


async def test_forget_and_purge_say_when_the_spool_folder_is_not_where_they_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    async with ConversationStore(StoreSettings(url=url)) as store:
        await store.ensure_schema()
        stored = _message("U_P", "hello", "stored")
        await store.intake(stored, text=stored.text)
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = _config(tmp_path, url, "botkit-outage-spool")
    assert await asyncio.to_thread(main, ["data", "forget", "slack", "U_P", "-c", config]) == 0
    out = capsys.readouterr().out
    assert f"outage spool {elsewhere / 'botkit-outage-spool'}: no such folder" in out
    assert "relative to where you ran this" in out
    assert await asyncio.to_thread(main, ["data", "purge", "--days", "30", "-c", config]) == 0
    assert "no such folder" in capsys.readouterr().out


def test_purge_goes_on_past_a_file_it_cannot_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    aside = tmp_path / UNREADABLE
    aside.mkdir()
    old = time.time() - 90 * 86_400
    for name in ("a.json", "b.json", "c.json"):
        (aside / name).write_text("{}")
        os.utime(aside / name, (old, old))
    unlink = Path.unlink

    def refuse_a(self: Path, missing_ok: bool = False) -> None:
        if self.name == "a.json":  # a copy root left behind
            raise PermissionError(13, "Permission denied", str(self))
        unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse_a)
    with caplog.at_level(logging.ERROR, logger="botkit.bot"):
        assert purge_unreadable(tmp_path, time.time()) == 2
    assert "cannot delete kept message" in caplog.text and "a.json" in caplog.text
    assert sorted(p.name for p in aside.iterdir()) == ["a.json"]
