"""Schema migrations of the conversation store.

The migrations ship inside the package (``botkit/store/migrations``) and are the only way
the schema is ever created or changed. Every function here is a coroutine; from
synchronous code (the CLI) call e.g. ``asyncio.run(upgrade(url))``. Each accepts a URL
(an engine is made and disposed for the call) or an open ``AsyncEngine``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botkit.errors import StoreError
from botkit.store._engine import BEGIN_OPTION, create_engine
from botkit.store.models import VERSION_TABLE
from botkit.store.settings import mask_url

__all__ = [
    "MIGRATIONS_DIR",
    "current",
    "downgrade",
    "head",
    "is_known",
    "is_up_to_date",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Two processes upgrading one PostgreSQL database at once (two bots starting) would both
# try to create the same tables; a transaction-scoped advisory lock makes the second wait
# and then find the schema current. SQLite gets the same from BEGIN IMMEDIATE.
_PG_LOCK_ID = 0x626F746B6974  # "botkit"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest schema revision this version of botkit knows."""
    heads = _script().get_heads()
    if len(heads) != 1:  # a packaging mistake, not a user error
        raise StoreError(f"botkit ships {len(heads)} migration heads, expected 1: {heads}")
    return heads[0]


def is_known(revision: str) -> bool:
    """True when ``revision`` is one of the migrations shipped with this botkit."""
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


Target = str | AsyncEngine


@asynccontextmanager
async def _connect(target: Target, *, write: bool) -> AsyncIterator[AsyncConnection]:
    engine = (
        target
        if isinstance(target, AsyncEngine)
        else create_engine(target, foreign_keys=False, pooled=False)
    )
    where = mask_url(engine.url)
    try:
        if write:
            async with engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}).begin() as conn:
                yield conn
        else:
            async with engine.connect() as conn:
                yield conn
    except CommandError as exc:
        raise StoreError(f"migration failed on {where}: {exc}") from exc
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(f"migration failed on {where}: {reason}") from exc
    finally:
        if engine is not target:
            await engine.dispose()


def _run_command(connection: Connection, fn: Callable[[Config, str], None], revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
    cfg = _config()
    cfg.attributes["connection"] = connection
    fn(cfg, revision)


def _current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def upgrade(url: Target, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision`` (default: the newest), in one transaction.

    Raises:
        StoreError: the database is unreachable or a migration failed (nothing is changed).
    """
    async with _connect(url, write=True) as conn:
        await conn.run_sync(_run_command, command.upgrade, revision)


async def downgrade(url: Target, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``"base"`` drops every botkit table).

    Raises:
        StoreError: the database is unreachable or a migration failed.
    """
    async with _connect(url, write=True) as conn:
        await conn.run_sync(_run_command, command.downgrade, revision)


async def current(url: Target) -> str | None:
    """The schema revision of the database, or None when it has no botkit schema."""
    async with _connect(url, write=False) as conn:
        return await conn.run_sync(_current_revision)


async def is_up_to_date(url: Target) -> bool:
    """True when the database schema is at ``head()``."""
    return await current(url) == head()
