"""Database fixtures shared by the whole test suite.

* ``db_backend``: ``"sqlite"`` and ``"postgresql"`` (parametrized; PostgreSQL cases carry
  the ``postgres`` mark). Narrow a test to one backend with
  ``@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)``.
* ``db_url``: an empty database on that backend (a file in ``tmp_path``, or a fresh
  database on the throw-away server), as an async SQLAlchemy URL.
* ``migrated_db_url``: a database on that backend at the current schema, without rows
  (on PostgreSQL one database shared by the session, emptied before each test).
* ``pg_server_url``: the session's PostgreSQL server, started on first use and stopped at
  the end; ``BOTKIT_TEST_PG_URL`` names an existing server instead (its user must be able
  to create databases). PostgreSQL cases skip, with the reason, only when no server can
  be started here (no binaries, or root without a ``postgres`` user); a server that
  fails to start is an error.

Every test also gets the logging set-up back as it was (``_restore_logging``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Triton reads TRITON_INTERPRET once, when it is first imported, and test modules outside
# tests/kernels import it indirectly (torch, transformers, the engine) before the kernel
# tests are collected. Without CUDA the Triton kernels run in the CPU interpreter, so the
# decision is made here, before anything can import triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

try:  # tests/ is on sys.path as a rootdir-relative directory (no __init__.py) ...
    import pg_server
except ImportError:  # pragma: no cover - ... or a package, if someone adds __init__.py
    from tests import pg_server  # type: ignore[no-redef]

from botkit._logging import _HTTP_CLIENT_LOGGERS

# The loggers ``configure_logging`` sets: the CLI commands that tests run in-process
# configure logging as ``botkit`` does. Left so, a handler on a closed capture stream and
# silenced HTTP client loggers would reach later tests (a log test then sees nothing).
_CONFIGURED_LOGGERS = ("", "sqlalchemy.engine", "alembic", *_HTTP_CLIENT_LOGGERS)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and the configured loggers' levels back."""
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    levels = [logger.level for logger in loggers]
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers = handlers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """asyncpg URL of the session's PostgreSQL maintenance database."""
    try:
        server = pg_server.start_server()
    except pg_server.PgUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_server_url: str) -> Iterator[str]:
    """One PostgreSQL database at the current schema for the session; ``migrated_db_url``
    empties it before each test (TRUNCATE takes milliseconds, CREATE DATABASE up to half
    a second on a busy 2-core machine)."""
    from botkit.store import migrate

    name = f"botkit_migrated_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(pg_server_url, name)
    try:
        pg_server.run_async(migrate.upgrade(url))
        yield url
    finally:
        pg_server.drop_database(pg_server_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Which database a test runs on."""
    backend: str = request.param
    return backend


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database (no schema) on ``db_backend``."""
    with pg_server.test_database(
        db_backend, tmp_path, lambda: request.getfixturevalue("pg_server_url")
    ) as url:
        yield url


@pytest.fixture
def migrated_db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database on ``db_backend`` at the newest schema, with no rows. On PostgreSQL it is
    shared by the session's tests (emptied before each): change its schema only through
    ``db_url``, never here."""
    from botkit.store import migrate
    from botkit.store.models import Base

    if db_backend == "postgresql":
        url: str = request.getfixturevalue("pg_migrated_url")
        pg_server.empty_tables(url, [t.name for t in Base.metadata.sorted_tables])
        return url
    with pg_server.test_database(db_backend, tmp_path, lambda: "") as url:
        pg_server.run_async(migrate.upgrade(url))
        return url
