"""Alembic environment of the conversation store.

Normally run through ``botkit.store.migrate`` (``botkit db upgrade``), which hands over an
open connection in ``config.attributes["connection"]``. Developers can also run the
``alembic`` command with ``-c botkit/store/migrations/alembic.ini`` (e.g. ``alembic
revision --autogenerate``); the URL then comes from ``-x url=...`` or the ini file.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from botkit.store._runner import create_runner
from botkit.store.models import VERSION_TABLE, Base

target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only ALTER through table rebuilds
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    default = "sqlite+aiosqlite:///botkit.db"
    return url or context.config.get_main_option("sqlalchemy.url") or default


async def _run_standalone() -> None:
    runner = create_runner(_url(), foreign_keys=False, pooled=False)
    try:
        await runner.write(_run)
    finally:
        await runner.dispose()


def main() -> None:
    """Run the migrations Alembic asked for (online with a shared or own connection, or
    offline as SQL text)."""
    if context.is_offline_mode():
        _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
    else:
        shared = context.config.attributes.get("connection")
        if shared is not None:
            _run(shared)
        else:
            asyncio.run(_run_standalone())


# Alembic executes this file with its context installed. A plain import (a tool walking
# the package) finds no context and must do nothing.
if hasattr(context, "config"):
    main()
