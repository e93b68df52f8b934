"""A database written by a newer botkit (a schema revision this one does not know):
`botkit db upgrade` and `downgrade` say so and what to do, and change nothing (both
DBs)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from botkit.errors import StoreError
from botkit.store import migrate
from botkit.store._runner import create_runner
from botkit.store.models import VERSION_TABLE

NEWER = "0999"


async def _stamp_newer(url: str) -> None:
    await migrate.upgrade(url)
    runner = create_runner(url, pooled=False)
    try:
        stamp = text(f"UPDATE {VERSION_TABLE} SET version_num = :v").bindparams(v=NEWER)
        await runner.write(lambda conn: conn.execute(stamp))
    finally:
        await runner.dispose()


async def test_upgrade_of_a_newer_database_says_to_upgrade_botkit(db_url: str) -> None:
    await _stamp_newer(db_url)
    with pytest.raises(StoreError) as caught:
        await migrate.upgrade(db_url)
    message = str(caught.value)
    assert f"schema revision '{NEWER}', newer than this botkit" in message
    assert f"which knows up to {migrate.head()}: upgrade botkit" in message
    assert "Can't locate" not in message
    assert await migrate.current(db_url) == NEWER


async def test_downgrade_of_a_newer_database_says_which_botkit_can(db_url: str) -> None:
    await _stamp_newer(db_url)
    for attempt in (
        lambda: migrate.downgrade(db_url, "0007"),
        lambda: _undone(NEWER, "0007"),
    ):
        with pytest.raises(StoreError) as caught:
            await attempt()
        message = str(caught.value)
        assert f"schema revision '{NEWER}', newer than this botkit" in message
        assert "run the downgrade with the botkit that created it" in message
        assert "No such revision" not in message
    assert await migrate.current(db_url) == NEWER


async def _undone(current: str, revision: str) -> None:
    migrate.undone_by(current, revision)
