"""The outage spool's files hold what customers wrote: ``botkit data forget`` removes a
person's (waiting or set aside), and retention deletes those set aside longer ago than
``retention_days`` (the bot's pass and ``botkit data purge``)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from botkit._outage_spool import UNREADABLE, OutageSpool, SpooledMessage
from botkit._retention import purge_once
from botkit.cli import main
from botkit.errors import StoreError
from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStore, StoreSettings

DAY = 86_400.0


def _message(user: str, text: str, key: str) -> InboundMessage:
    return InboundMessage(
        channel="slack",
        conversation_key=f"C9:{user}",
        contact=Contact("slack", user),
        text=text,
        idempotency_key=key,
    )


async def _spool(directory: Path, *kept: tuple[str, str, bool]) -> dict[str, Path]:
    """Keep each (user, text, set aside) in ``directory``; their files by text."""
    spool = OutageSpool(directory, max_messages=100)
    files: dict[str, Path] = {}
    for n, (user, text, aside) in enumerate(kept):
        await spool.keep(SpooledMessage(_message(user, text, f"ev{n}")))
        path = spool._queue[-1]
        if aside:
            await spool.set_aside(path, "failed three times")
            path = directory / UNREADABLE / path.name
        files[text] = path
    return files


def _config(tmp_path: Path, url: str, spool: Path) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\nurl = "{url}"\noutage_spool_dir = "{spool}"\n[backend]\nkind = "echo"\n',
        "utf-8",
    )
    return str(path)


@pytest.fixture
async def url(tmp_path: Path) -> str:
    """A database where U_GDPR wrote once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    async with ConversationStore(StoreSettings(url=url)) as store:
        await store.ensure_schema()
        stored = _message("U_GDPR", "my IBAN is DE89", "stored")
        await store.intake(stored, text=stored.text)
    return url


async def test_forget_removes_the_persons_kept_messages_and_lists_what_it_cannot_read(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "spool"
    files = await _spool(
        spool,
        ("U_GDPR", "waiting: DE89", False),
        ("U_GDPR", "set aside: DE89", True),
        ("U_OTHER", "someone else's", False),
        ("U_OTHER", "someone else's, set aside", True),
    )
    garbled = spool / UNREADABLE / "00000000000000000001-1-000000000.json"
    garbled.write_bytes(b'{"contact": {"external_id": "U_GDP')

    config = _config(tmp_path, url, spool)
    assert await asyncio.to_thread(main, ["data", "forget", "slack", "U_GDPR", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "deleted 1 contact, 1 conversation, 1 message" in out
    assert f"outage spool {spool}: removed 2 kept messages" in out
    assert "1 file could not be read or removed" in out and str(garbled) in out
    assert not files["waiting: DE89"].exists() and not files["set aside: DE89"].exists()
    assert files["someone else's"].exists() and files["someone else's, set aside"].exists()
    assert garbled.exists()

    # Kept during an outage, never stored: in the spool only, and still erased.
    await _spool(spool, ("U_NEW", "only kept", True))
    assert await asyncio.to_thread(main, ["data", "forget", "slack", "U_NEW", "-c", config]) == 0
    assert "removed 1 kept message" in capsys.readouterr().out
    # Nobody anywhere: an error, still listing what could not be read.
    code = await asyncio.to_thread(main, ["data", "forget", "slack", "U_NOBODY", "-c", config])
    assert code == StoreError.exit_code
    err = capsys.readouterr().err
    assert "no contact 'U_NOBODY'" in err and str(garbled) in err


async def test_retention_deletes_messages_set_aside_longer_ago_than_retention_days(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "spool"
    files = await _spool(
        spool,
        ("U_A", "old, set aside", True),
        ("U_B", "new, set aside", True),
        ("U_C", "old, waiting", False),
    )
    month_ago = time.time() - 31 * DAY
    for text in ("old, set aside", "old, waiting"):
        os.utime(files[text], (month_ago, month_ago))

    async with ConversationStore(StoreSettings(url=url, outage_spool_dir=str(spool))) as store:
        await purge_once(store, 30)
    assert not files["old, set aside"].exists()
    # Waiting ones are stored once the database answers; the retention of the
    # database applies to them then.
    assert files["new, set aside"].exists() and files["old, waiting"].exists()

    os.utime(files["new, set aside"], (month_ago, month_ago))
    config = _config(tmp_path, url, spool)
    assert await asyncio.to_thread(main, ["data", "purge", "--days", "30", "-c", config]) == 0
    assert f"1 kept message set aside in {spool / UNREADABLE}" in capsys.readouterr().out
    assert not files["new, set aside"].exists() and files["old, waiting"].exists()
