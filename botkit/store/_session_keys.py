"""Keys made once per database and shared by every process using it (``session_keys``).

A key made per process would end every session it signed at each restart, and a
replica would refuse the tokens another one issued. So the first process that needs a
key stores one, and the others read it: an INSERT that does nothing where the name
exists already, then a read of whatever is stored. Of two processes starting at once
both insert; the primary key lets exactly one row in (the other's insert waits for it
on PostgreSQL and finds it, SQLite writers take turns), and both read that row.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store._database import Database
from botkit.store.models import SESSION_KEY_NAME_MAX, SessionKey

__all__ = ["SESSION_KEY_BYTES", "SessionKeys"]

SESSION_KEY_BYTES = 32  # the HMAC-SHA256 block of the tokens it signs needs no more
_NAME = re.compile(rf"[a-z0-9][a-z0-9_.:-]{{0,{SESSION_KEY_NAME_MAX - 1}}}")
# Looking again after the insert finds the row unless it was deleted in between (a
# downgrade running meanwhile): bounded, as a schema being dropped is not for us to win.
_TRIES = 3


class SessionKeys(Database):
    """The store's shared keys (see the module docstring)."""

    async def session_key(self, name: str) -> bytes:
        """The random key stored under ``name``, made the first time any process asks.

        Every process sharing the database, and every later run, gets the same bytes:
        two processes asking at once (two replicas starting) end with the one key that
        was stored first.

        Args:
            name: what the key is for, e.g. ``"web"``: 1-64 characters of a-z 0-9 and
                ``_ . : -``, starting with a letter or digit.

        Raises:
            StoreError: a bad name, a stored key too short to be one (edited by hand),
                or a database failure.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise StoreError(
                f"session key name {str(name)[:80]!r} must be 1-{SESSION_KEY_NAME_MAX} "
                "characters of a-z 0-9 _ . : - starting with a letter or digit"
            )
        wanted = select(SessionKey.secret).where(SessionKey.name == name)

        def make(conn: Connection) -> None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            values = {
                "name": name,
                "secret": secrets.token_bytes(SESSION_KEY_BYTES),
                "created_at": utcnow(),
            }
            conn.execute(dialect.insert(SessionKey).on_conflict_do_nothing(), values)

        def read(conn: Connection) -> bytes | None:
            found = conn.execute(wanted).scalar_one_or_none()
            return None if found is None else bytes(found)

        for _ in range(_TRIES):
            key = await self._read(read)  # after the first run, the only statement
            if key is None:
                await self._write(make)
                key = await self._read(read)
            if key is not None:
                if len(key) < SESSION_KEY_BYTES // 2:
                    raise StoreError(
                        f"the session key {name!r} stored in session_keys is {len(key)} "
                        "bytes; delete its row to have a new one made"
                    )
                return key
        raise StoreError(f"session key {name!r} could not be stored: its row kept vanishing")
