"""The commands that open only the database: ``db``, ``handoff``, ``data``, ``feedback``.

They read only the ``[store]`` and ``[logging]`` sections of the config, so they run from
any machine that reaches the database, without the channels' or agents' secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from botkit.cli._config import DATABASE_SECTIONS, load
from botkit.errors import StoreError

if TYPE_CHECKING:
    from botkit.store import StoreSettings

__all__ = ["run_data", "run_db", "run_feedback", "run_handoff"]


def _missing_sqlite_file(store: StoreSettings) -> Path | None:
    """The absolute path of a SQLite database file that does not exist, else None."""
    from botkit.store._runner import is_memory_sqlite

    url = store.sqlalchemy_url
    if store.dialect != "sqlite" or is_memory_sqlite(url) or url.database is None:
        return None
    # A relative path is relative to the working directory, not to the config file.
    path = Path(url.database).expanduser().absolute()
    return None if path.exists() else path


def _no_database(missing: Path) -> StoreError:
    # Opening would create an empty file (and its directories) and report "no schema",
    # or downgrade that, as if the real database, elsewhere, were empty.
    return StoreError(
        f"no database at {missing} (a relative path in [store] url is relative to the "
        "working directory); nothing was created"
    )


def run_db(args: argparse.Namespace) -> int:
    from botkit._store_at_start import waiting_for_database
    from botkit.store import migrate

    store = load(args.config, sections=DATABASE_SECTIONS).store
    missing = _missing_sqlite_file(store)
    if args.db_command == "upgrade":
        # Creating the database is what upgrade is for on a first install; saying so
        # shows a mistyped path at once.
        # Run beside a database that is still starting (a compose service, a job
        # before the bot), it waits as the bot does.
        asyncio.run(
            waiting_for_database(
                lambda: migrate.upgrade(store.url),
                wait_s=store.start_wait_seconds,
                where=store.safe_url,
            )
        )
        created = f"created {missing}; " if missing is not None else ""
        print(f"{store.safe_url}: {created}schema at {migrate.head()}")
        return 0
    if missing is not None:
        raise _no_database(missing)
    if args.db_command == "backup":
        from botkit.store.backup import backup

        done = asyncio.run(backup(store, args.dest))  # as typed: a trailing / counts
        size = f"{done.size / 1e6:.1f} MB in {done.seconds:.1f} s"
        print(f"{store.safe_url}: backed up to {done.path} ({size})")
        return 0
    if args.db_command == "downgrade":
        undone = migrate.undone_by(asyncio.run(migrate.current(store.url)), args.revision)
        if undone and not args.yes:
            steps = "\n".join(f"  {revision}: {what}" for revision, what in undone)
            print(
                f"{store.safe_url}: downgrading to {args.revision} undoes\n{steps}\n"
                "and deletes the tables and columns they added, with their data. Back "
                "the database up, then run this again with --yes.",
                file=sys.stderr,
            )
            return 1
        asyncio.run(migrate.downgrade(store.url, args.revision))
        print(f"{store.safe_url}: schema at {args.revision}")
    else:
        revision = asyncio.run(migrate.current(store.url))
        if revision == migrate.head():
            state = "up to date"
        elif revision is None or migrate.is_known(revision):
            state = f"botkit db upgrade brings it to {migrate.head()}"
        else:
            state = f"newer than this botkit, which knows up to {migrate.head()}: upgrade botkit"
        print(f"{store.safe_url}: {revision or 'no schema'} ({state})")
    return 0


def _existing_store(args: argparse.Namespace) -> StoreSettings:
    """The store settings of a command that reads or changes what is stored (``data``,
    ``handoff``, ``feedback``), for a database that must exist. Such a command prints
    its result, and logs only problems: the config and store lines a service logs at
    start are noise before it (DEBUG in ``[logging]`` still shows everything)."""
    store = load(args.config, quiet=True, sections=DATABASE_SECTIONS).store
    missing = _missing_sqlite_file(store)
    if missing is not None:
        raise _no_database(missing)
    return store


def run_handoff(args: argparse.Namespace) -> int:
    from botkit._handoff_cli import list_handoffs, release

    store = _existing_store(args)
    if args.handoff_command == "list":
        lines = asyncio.run(list_handoffs(store, args.limit))
        print("\n".join(lines) if lines else "no conversation is waiting for or with a human")
    else:
        print(asyncio.run(release(store, args.channel, args.key)))
    return 0


def run_data(args: argparse.Namespace) -> int:
    from botkit._data_cli import export_contact, forget_contact, purge

    store = _existing_store(args)
    if args.data_command == "export":
        print(asyncio.run(export_contact(store, args.channel, args.contact, args.files)))
    elif args.data_command == "forget":
        print(asyncio.run(forget_contact(store, args.channel, args.contact)))
    else:
        print(asyncio.run(purge(store, args.days)))
    return 0


def run_feedback(args: argparse.Namespace) -> int:
    from botkit._feedback_cli import report

    store = _existing_store(args)
    print(asyncio.run(report(store, args.days, args.bad)))
    return 0
