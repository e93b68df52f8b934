"""libpq-style parameters in a PostgreSQL URL: translated for asyncpg, or refused when the
config is read (audit-pg finding 1: ``?sslmode=require`` ended every command with
``TypeError: connect() got an unexpected keyword argument``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from botkit.config import check_config
from botkit.store import StoreSettings
from botkit.store._database import Database

_BASE = "postgresql://botkit:secret@db.example/botkit"


@pytest.mark.parametrize(
    "query",
    [
        "sslmode=require",
        "sslmode=verify-full",
        "sslmode=disable",
        "ssl=require",
        "connect_timeout=5",
        "application_name=bot-1",
        "options=-c%20statement_timeout%3D5s",
        "host=/run/postgresql&port=5433",
        "prepared_statement_cache_size=0",
    ],
)
def test_libpq_and_asyncpg_parameters_are_accepted(query: str) -> None:
    assert StoreSettings(url=f"{_BASE}?{query}").dialect == "postgresql"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sslrootcert=/etc/ca.pem", "'sslrootcert'"),
        ("keepalives=1", "'keepalives'"),
        ("sslmode=required", "sslmode='required'"),
        ("connect_timeout=soon", "connect_timeout='soon'"),
        ("connect_timeout=0", "connect_timeout='0'"),
    ],
)
def test_other_parameters_are_a_config_problem_naming_them(
    query: str, named: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=named):
        StoreSettings(url=f"{_BASE}?{query}")
    config = tmp_path / "botkit.toml"
    config.write_text(f'[store]\nurl = "{_BASE}?{query}"\n')
    found = check_config(config, environ={})
    assert [p.path for p in found] == ["store.url"]
    assert named in found[0].message and "secret" not in found[0].message


@pytest.mark.postgres
async def test_translated_parameters_reach_the_server(pg_migrated_url: str) -> None:
    options = quote("-c statement_timeout=4321 -c lock_timeout=1234")
    url = (
        f"{pg_migrated_url}?sslmode=disable&connect_timeout=5"
        f"&application_name=botkit-test&options={options}"
    )
    async with Database(StoreSettings(url=url)) as db:

        def settings(conn: object) -> tuple[str, str, str]:
            row = conn.execute(  # type: ignore[attr-defined]
                text(
                    "SELECT current_setting('application_name'),"
                    " current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
            ).one()
            return (row[0], row[1], row[2])

        assert await db._read(settings) == ("botkit-test", "4321ms", "1234ms")


@pytest.mark.postgres
async def test_sslmode_prefer_connects_without_tls(pg_migrated_url: str) -> None:
    # The throw-away server has no certificate: "prefer" falls back to plain TCP (and
    # the old code died with a TypeError before even trying).
    async with Database(StoreSettings(url=f"{pg_migrated_url}?sslmode=prefer")) as db:
        assert await db.ping()
