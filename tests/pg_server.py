"""A throw-away PostgreSQL server for the test suite.

``start_server`` runs Debian's ``initdb`` and ``pg_ctl`` on a temporary data directory
(as the ``postgres`` user when we are root: initdb refuses to run as root), listening on
127.0.0.1 and a free port, with durability off (fsync) because the data is thrown away.
``test_database`` gives each test a database of its own.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

__all__ = [
    "PgServer",
    "PgUnavailable",
    "create_database",
    "drop_database",
    "empty_tables",
    "run_async",
    "start_server",
    "test_database",
]

T = TypeVar("T")


class PgUnavailable(Exception):
    """PostgreSQL cannot be started on this machine (the reason says why)."""


@dataclass
class PgServer:
    """A running server; ``url`` is an asyncpg URL of its maintenance database."""

    url: str
    _bindir: Path | None = None
    _root: Path | None = None
    _as_user: list[str] | None = None

    def stop(self) -> None:
        if self._root is None or self._bindir is None or self._as_user is None:
            return  # an external server (BOTKIT_TEST_PG_URL) is not ours to stop
        pg_ctl = str(self._bindir / "pg_ctl")
        data = str(self._root / "data")
        subprocess.run(
            [*self._as_user, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self._root, ignore_errors=True)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code (a fixture), in a thread of its
    own so that it never touches the event loop pytest-asyncio manages."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def own_server(why: str) -> Iterator[PgServer]:
    """A server of the caller's own (``why``: it changes its settings, or stops it),
    stopped afterwards. Skips the test where ``BOTKIT_TEST_PG_URL`` names a shared
    server, or PostgreSQL is not installed."""
    import pytest

    if os.environ.get("BOTKIT_TEST_PG_URL"):
        pytest.skip(f"{why}; BOTKIT_TEST_PG_URL names a shared one")
    try:
        server = start_server()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


def start_server() -> PgServer:
    """Start a server, or describe an existing one named by ``BOTKIT_TEST_PG_URL``.

    Raises:
        PgUnavailable: no PostgreSQL binaries, or root without a ``postgres`` user.
        RuntimeError: the binaries are there but the server did not start (a real failure,
            reported with the end of the server log).
    """
    external = os.environ.get("BOTKIT_TEST_PG_URL")
    if external:
        url = make_url(external).set(drivername="postgresql+asyncpg")
        return PgServer(url.render_as_string(hide_password=False))
    bindir = _bindir()
    if bindir is None:
        raise PgUnavailable(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or PATH); "
            "run scripts/install-system-deps.sh as root or set BOTKIT_TEST_PG_URL"
        )
    as_user: list[str] = []
    root_user = os.geteuid() == 0
    # As root the server runs as 'postgres', which must reach the directory: /tmp (mode
    # 1777) rather than a TMPDIR that may sit under /root.
    root = Path(tempfile.mkdtemp(prefix="botkit-pg-", dir="/tmp" if root_user else None))
    if root_user:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise PgUnavailable("running as root and there is no 'postgres' user") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(root)
            raise PgUnavailable("running as root and there is no runuser command")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_user, *cmd], capture_output=True, text=True, timeout=120, check=False
        )

    init = run(
        str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--locale=C", "--no-sync",
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    for _ in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        started = run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        if started.returncode == 0:
            return PgServer(
                f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", bindir, root, as_user
            )
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else started.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start:\n{tail}")


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(url), timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` and return its asyncpg URL."""
    run_async(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name``, closing whatever connections are still open to it."""
    run_async(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str, tables: list[str]) -> None:
    conn = await asyncpg.connect(_dsn(url), timeout=30)
    try:
        await conn.execute("SET lock_timeout = '5s'")  # a leaked transaction fails loudly
        await conn.execute(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def empty_tables(url: str, tables: list[str]) -> None:
    """Delete every row of ``tables`` and restart their id sequences."""
    run_async(_truncate(url, tables))


@contextmanager
def test_database(
    backend: str,
    tmp_path: Path,
    server_url: Callable[[], str],
) -> Iterator[str]:
    """An empty database for one test: a SQLite file in ``tmp_path``, or a new PostgreSQL
    database on the server ``server_url()`` returns, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'botkit.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown database backend {backend!r}")
    server = server_url()
    name = f"botkit_test_{uuid.uuid4().hex[:12]}"
    url = create_database(server, name)
    try:
        yield url
    finally:
        drop_database(server, name)
