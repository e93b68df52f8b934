"""Schema migrations of the conversation store.

The migrations ship inside the package (``botkit/store/migrations``) and are the only way
the schema is ever created or changed. Every function here is a coroutine; from
synchronous code (the CLI) call e.g. ``asyncio.run(upgrade(settings.store.url))``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.store._outage import outage_reason, sqlstate
from botkit.store._runner import Runner, create_runner, describe_error
from botkit.store.models import VERSION_TABLE
from botkit.store.settings import mask_url

__all__ = [
    "MIGRATIONS_DIR",
    "current",
    "downgrade",
    "head",
    "is_known",
    "is_up_to_date",
    "newer_schema_error",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Two processes upgrading one PostgreSQL database at once (two bots starting) would both
# try to create the same tables; a transaction-scoped advisory lock makes the second wait
# and then find the schema current. SQLite gets the same from BEGIN IMMEDIATE.
_PG_LOCK_ID = 0x626F746B6974  # "botkit"
# How long a migration's statement waits for a table lock on PostgreSQL. ALTER TABLE
# takes ACCESS EXCLUSIVE; waiting for it behind a long transaction (a replica's query,
# a dashboard left in a transaction), it queues every later reader and writer of that
# table behind itself: the running bots' messages stalled for the whole wait (24 s
# measured). Given up after this, the transaction is rolled back (nothing changed) and
# `botkit db upgrade` tries again, as it waits for an unavailable database.
LOCK_TIMEOUT_MS = 5000
# SQLSTATEs: lock_timeout (the one lock wait the message of _lock_wait explains), and
# query_canceled (statement_timeout or a cancel request).
_LOCK_NOT_AVAILABLE = "55P03"
_CANCELLED = "57014"
T = TypeVar("T")


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


# A URL (a one-shot runner is made and disposed for the call) or the store's own runner
# (an in-memory SQLite database exists only there).
Target = str | Runner


async def _run(target: Target, fn: Callable[[Connection], T], *, write: bool) -> T:
    where = mask_url(target if isinstance(target, str) else target.url)

    def failed(exc: BaseException) -> str:
        return f"migration failed on {where}: {describe_error(exc)}"

    if not isinstance(target, str):
        runner = target
    else:
        try:  # (makes a SQLite file's directory: that can fail, and waiting won't help)
            runner = create_runner(target, foreign_keys=False, pooled=False)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(failed(exc)) from exc
    try:
        return await (runner.write(fn) if write else runner.read(fn))
    except CommandError as exc:
        raise StoreError(f"migration failed on {where}: {exc}") from exc
    except (SQLAlchemyError, OSError) as exc:
        # A server not up yet (``botkit db upgrade`` run beside it) is waited for by
        # the command; told apart from a failing migration.
        reason = outage_reason(exc)
        code = sqlstate(exc)
        if code == _CANCELLED:
            # statement_timeout is lifted for the migration (see _run_command): only a
            # cancel request (pg_cancel_backend, a DBA's Ctrl-C) ends it so. Tried again,
            # the cancel would be undone; nothing was changed.
            raise StoreError(
                f"migration on {where} was cancelled by the server (SQLSTATE {code}, a "
                "cancel request); nothing was changed"
            ) from exc
        if reason is None:
            raise StoreError(failed(exc)) from exc
        if code == _LOCK_NOT_AVAILABLE:
            raise DatabaseUnavailableError(_lock_wait(where), reason=reason.name) from exc
        raise DatabaseUnavailableError(f"{failed(exc)} ({reason})", reason=reason.name) from exc
    finally:
        if runner is not target:
            await runner.dispose()


def _lock_wait(where: str) -> str:
    return (
        f"migration on {where} gave up waiting for a table lock after "
        f"{LOCK_TIMEOUT_MS / 1000:g} s (lock_timeout), so as not to stall the running "
        "bots behind it: another session holds the table in an open transaction (a long "
        "query, a session idle in transaction; see pg_stat_activity and pg_locks). "
        "Nothing was changed; run it again when that transaction is over"
    )


def newer_schema_error(where: str | None, revision: str, *, downgrade: bool = False) -> StoreError:
    """The error for a database whose schema ``revision`` this botkit does not know:
    written by a newer botkit (Alembic's own, "Can't locate revision identified by
    '0009'", says neither what happened nor what to do)."""
    advice = "upgrade botkit"
    if downgrade:
        advice += ", or run the downgrade with the botkit that created it"
    database = "the database" if where is None else f"the database at {where}"
    return StoreError(
        f"{database} has schema revision {revision!r}, newer than this "
        f"botkit, which knows up to {head()}: {advice}"
    )


def _run_command(
    connection: Connection,
    fn: Callable[[Config, str], None],
    revision: str,
    where: str | None = None,
    downgrade: bool = False,
) -> None:
    if connection.dialect.name == "postgresql":
        # A role's or database's statement_timeout (set for the bots' statements) would
        # cancel a migration that rewrites a big table, or waits its turn behind another
        # upgrade, part way: lifted for this transaction. Its lock_timeout would also
        # cut the wait for the advisory lock below, which another upgrade holds for as
        # long as its migrations take (their table locks are bounded by ours).
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
        # (after the advisory lock: another upgrade may hold it for longer than this)
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}")
    # Read in the migration's transaction (after the lock above: another upgrade may
    # have just moved it).
    found = _current_revision(connection)
    if found is not None and not is_known(found):
        raise newer_schema_error(where, found, downgrade=downgrade)  # nothing changed
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
    where = mask_url(url if isinstance(url, str) else url.url)
    work = partial(_run_command, fn=command.upgrade, revision=revision, where=where)
    await _run(url, work, write=True)


async def downgrade(url: Target, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``"base"`` drops every botkit table).

    Raises:
        StoreError: the database is unreachable or a migration failed.
    """
    where = mask_url(url if isinstance(url, str) else url.url)
    work = partial(
        _run_command, fn=command.downgrade, revision=revision, where=where, downgrade=True
    )
    await _run(url, work, write=True)


def _summary(doc: str | None) -> str:
    """A migration docstring's first paragraph, on one line, as an operator reads it
    (without the docstring's ``code`` markup)."""
    return " ".join((doc or "").strip().split("\n\n")[0].replace("``", "").split())


def undone_by(current: str | None, revision: str) -> list[tuple[str, str]]:
    """The migrations a downgrade from ``current`` to ``revision`` undoes, newest first:
    (revision, what it added: its docstring's first line).

    Raises:
        StoreError: either revision is unknown to this botkit.
    """
    if current is None:
        return []
    if not is_known(current):
        raise newer_schema_error(None, current, downgrade=True)
    script = _script()
    try:
        steps = script.iterate_revisions(current, None if revision == "base" else revision)
        undone = [(s.revision, _summary(s.doc)) for s in steps if s.revision != revision]
    except (CommandError, RevisionError) as exc:
        raise StoreError(f"cannot downgrade from {current} to {revision}: {exc}") from exc
    return undone


async def current(url: Target) -> str | None:
    """The schema revision of the database, or None when it has no botkit schema.

    Raises:
        StoreError: the database is unreachable.
    """
    return await _run(url, _current_revision, write=False)


async def is_up_to_date(url: Target) -> bool:
    """True when the database schema is at ``head()``."""
    return await current(url) == head()
