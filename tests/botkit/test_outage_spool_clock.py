"""The outage spool and the wall clock: kept messages come back in the order they were
kept when the clock steps back (NTP) meanwhile or across a restart, and a message whose
connector gave a naive ``received_at`` is read back (as UTC), not set aside and lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from botkit._outage_spool import OutageSpool, SpooledMessage
from botkit.events import Contact, InboundMessage

HOUR_NS = 3600 * 10**9


def _kept(text: str, **extra: datetime) -> SpooledMessage:
    contact = Contact("telegram", "42", "Ann")
    return SpooledMessage(InboundMessage("telegram", "chat-1", contact, text, text, **extra))


async def _drained(spool: OutageSpool) -> list[str]:
    texts = []
    while (found := await spool.oldest()) is not None:
        texts.append(found[1].message.text)
        await spool.forget(found[0])
    return texts


def _step_back(monkeypatch: pytest.MonkeyPatch, ns: int) -> None:
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - ns)


async def test_a_clock_stepped_back_during_an_outage_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = OutageSpool(tmp_path / "spool", max_messages=10)
    await spool.keep(_kept("1: my order 123 is late"))
    _step_back(monkeypatch, HOUR_NS)
    await spool.keep(_kept("2: never mind, cancel it"))
    await spool.keep(_kept("3: thanks"))
    assert await _drained(spool) == [
        "1: my order 123 is late",
        "2: never mind, cancel it",
        "3: thanks",
    ]


async def test_a_restart_on_a_clock_behind_the_last_runs_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = OutageSpool(tmp_path / "spool", max_messages=10)
    await first.keep(_kept("1"))
    await first.keep(_kept("2"))
    _step_back(monkeypatch, HOUR_NS)
    again = OutageSpool(tmp_path / "spool", max_messages=10)
    assert await again.load() == 2
    await again.keep(_kept("3"))
    assert await _drained(again) == ["1", "2", "3"]


async def test_names_never_repeat_one_set_aside_before_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    first = OutageSpool(directory, max_messages=10)
    await first.keep(_kept("1"))
    found = await first.oldest()
    assert found is not None
    await first.set_aside(found[0], "is looked at by hand")
    aside = next((directory / "unreadable").iterdir())
    _step_back(monkeypatch, HOUR_NS)
    again = OutageSpool(directory, max_messages=10)
    assert await again.load() == 0
    await again.keep(_kept("2"))
    (new,) = directory.glob("*.json")
    assert new.name > aside.name  # newer, so never the same name as one set aside


async def test_a_naive_received_at_is_read_back_as_utc_not_set_aside(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = OutageSpool(directory, max_messages=10)
    naive = datetime(2026, 11, 29, 12, 0)  # a connector of another package's
    await spool.keep(_kept("hello", received_at=naive))
    found = await spool.oldest()
    assert found is not None
    assert found[1].message.received_at == naive.replace(tzinfo=UTC)
    assert not (directory / "unreadable").exists()


async def test_a_naive_file_an_older_botkit_kept_is_read_back_as_utc(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = OutageSpool(directory, max_messages=10)
    await spool.keep(_kept("hello"))
    (path,) = directory.glob("*.json")
    data = json.loads(path.read_bytes())
    path.write_text(json.dumps({**data, "received_at": "2026-11-29T12:00:00"}))
    found = await spool.oldest()
    assert found is not None
    assert found[1].message.received_at == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_an_inbound_message_takes_a_naive_time_as_utc_and_an_aware_one_as_it_is() -> None:
    contact = Contact("x", "1")
    naive = InboundMessage("x", "c", contact, "t", "k", received_at=datetime(2026, 1, 1, 9))
    assert naive.received_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert naive.received_at.tzinfo is UTC
    aware = datetime.fromisoformat("2026-01-01T09:00:00+05:30")
    assert InboundMessage("x", "c", contact, "t", "k", received_at=aware).received_at is aware
    assert InboundMessage("x", "c", contact, "t", "k").received_at.tzinfo is UTC


async def test_an_unlistable_set_aside_folder_does_not_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    first = OutageSpool(directory, max_messages=10)
    await first.keep(_kept("1"))
    (directory / "unreadable").mkdir()
    listing = Path.iterdir

    def refused(path: Path) -> Iterator[Path]:
        if path.name == "unreadable":  # a root-owned copy of it, say
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", refused)
    again = OutageSpool(directory, max_messages=10)
    assert await again.load() == 1
    await again.keep(_kept("2"))
    assert await _drained(again) == ["1", "2"]
