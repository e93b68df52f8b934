"""Typed settings of the conversation store (the ``[store]`` section of the config)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["StoreSettings", "mask_url"]

# Plain driver names are mapped to the async drivers the store runs on, so that
# ``sqlite:///x.db`` or ``postgresql://...`` in a config file just works.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def _parse(url: str | URL) -> URL:
    return url if isinstance(url, URL) else make_url(url)


def mask_url(url: str | URL) -> str:
    """Render a database URL with its password (and any ``password`` query value) hidden.

    Args:
        url: a SQLAlchemy URL or URL string.

    Returns:
        The URL as text, safe to log; unparsable input gives ``"<invalid database URL>"``.
    """
    try:
        parsed = _parse(url)
    except (ArgumentError, ValueError):
        return "<invalid database URL>"
    query = {k: ("***" if "password" in k.lower() else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


class StoreSettings(BaseModel):
    """Where and how the conversation store keeps its data.

    Attributes:
        url: SQLAlchemy URL. ``sqlite+aiosqlite:///FILE`` (the embedded default) or
            ``postgresql+asyncpg://USER:PASSWORD@HOST/DB``; ``sqlite://`` and
            ``postgresql://`` are accepted and mapped to those names. The password is
            masked in ``repr``, ``str`` and every message the store writes. (SQLite is
            driven through the standard ``sqlite3`` module in worker threads, see
            ``botkit/store/_runner.py``; the URL keeps the usual async spelling.)
        auto_migrate: upgrade a SQLite database to the current schema on start. PostgreSQL is
            never upgraded implicitly: run ``botkit db upgrade``.
        sqlite_busy_timeout_ms: how long SQLite waits for another process's write lock.
        echo_sql: log every SQL statement (parameters are never logged).
        pool_size: PostgreSQL connections kept open per process (SQLite uses one writer
            thread and three reader threads, each with its own connection).
        history_cache_mb: memory for the latest messages of active conversations, which
            spares most history reads (0 turns it off: every reply reads the database).
    """

    # hide_input_in_errors: a URL that fails validation may carry a password; pydantic
    # would otherwise print it in the ValidationError.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = "sqlite+aiosqlite:///botkit.db"
    auto_migrate: bool = True
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    echo_sql: bool = False
    pool_size: int = Field(default=10, ge=1)
    history_cache_mb: int = Field(default=32, ge=0, le=1 << 20)

    @field_validator("url")
    @classmethod
    def _normalize_url(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL; expected sqlite+aiosqlite:///FILE or "
                "postgresql+asyncpg://USER:PASSWORD@HOST/DATABASE"
            ) from None
        driver = _DRIVERS.get(parsed.drivername)
        if driver is None:
            raise ValueError(
                f"unsupported database {parsed.drivername!r}; expected sqlite+aiosqlite "
                "or postgresql+asyncpg"
            )
        if driver == parsed.drivername:
            return value  # keep the text as written (no re-rendering of the password)
        return parsed.set(drivername=driver).render_as_string(hide_password=False)

    @property
    def sqlalchemy_url(self) -> URL:
        """The parsed URL (its ``repr`` masks the password)."""
        return make_url(self.url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return make_url(self.url).get_backend_name()

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for logs and error messages."""
        return mask_url(self.url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (self.safe_url if name == "url" else value)
