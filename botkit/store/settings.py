"""Typed settings of the conversation store (the ``[store]`` section of the config)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from botkit.store._pg_params import check_query, libpq_plus

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


def _render(url: URL) -> str:
    """``url`` as text, password included, that parses back to the same URL, also as
    libpq reads a query: SQLAlchemy writes a space in a query value as ``+``, which
    ``StoreSettings`` takes as a plus when the text is read again (see libpq_plus)."""
    text = url.render_as_string(hide_password=False)
    if url.get_backend_name() != "postgresql":
        return text
    base, qmark, query = text.partition("?")
    return base + qmark + query.replace("+", "%20")


def _parse(url: str | URL) -> URL:
    return url if isinstance(url, URL) else make_url(url)


def _misparsed(url: URL) -> bool:
    """True when an ``@`` landed after the user-info: a password holding a raw ``@`` was
    cut at its first ``@`` and the rest of it became the host, database or query. (A
    SQLite URL has no password; its file path may hold an ``@``.)"""
    if url.get_backend_name() == "sqlite":
        return False
    parts = [url.host or "", url.database or "", *map(str, url.query.values())]
    return any("@" in part for part in parts)


def _extra_at(text: str) -> bool:
    """True when a URL's text holds more than one ``@`` after ``://`` (SQLite aside): a
    password with a raw ``@``. Checked on the text because the parse can hide it: after
    ``@[`` SQLAlchemy takes the bracketed part as an IPv6 host and drops the rest, and
    ``@host:9X`` fails as a bad port."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.partition("+")[0].strip().lower() == "sqlite":
        return False
    return rest.count("@") > 1


def _mask_query(query: str) -> str:
    pairs = (pair.partition("=") for pair in query.split("&"))
    return "&".join(f"{k}{eq}{'***' if 'password' in k.lower() else v}" for k, eq, v in pairs)


def _mask_text(text: str) -> str:
    """Hide everything between ``://USER:`` and the last ``@`` of a URL string.

    For a URL whose password holds a raw ``@``: SQLAlchemy's parse cuts the password at
    its first ``@``, so masking the parsed password would print the rest of it.
    """
    scheme, sep, rest = text.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0:
        return "<invalid database URL>"
    user, colon, _ = rest[:at].partition(":")
    user = user if colon and "/" not in user else "***"
    tail, qmark, query = rest[at + 1 :].partition("?")
    return f"{scheme}://{user}{':***' if user != '***' else ''}@{tail}{qmark}" + (
        _mask_query(query) if qmark else ""
    )


def mask_url(url: str | URL) -> str:
    """Render a database URL with its password (and any ``password`` query value) hidden.

    Everything between ``://USER:`` and the last ``@`` counts as the password, so a URL
    whose password holds an unencoded ``@`` is masked whole too.

    Args:
        url: a SQLAlchemy URL or URL string.

    Returns:
        The URL as text, safe to log; unparsable input gives ``"<invalid database URL>"``.
    """
    if isinstance(url, str) and _extra_at(url):
        return _mask_text(url)  # before parsing: the parse may fail or hide it
    try:
        parsed = _parse(url)
    except (ArgumentError, ValueError):
        return "<invalid database URL>"
    if _misparsed(parsed):
        if isinstance(url, URL):  # its text is gone: which part is the password is unknown
            return f"{parsed.drivername}://***"
        return _mask_text(url)
    query = {k: ("***" if "password" in k.lower() else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


_RAW_AT = (
    "the URL has an '@' after the user and password: if the password contains '@', "
    "percent-encode it as %40 (and '%' as %25), or put it in [store] password instead"
)


class StoreSettings(BaseModel):
    """Where and how the conversation store keeps its data.

    Attributes:
        url: SQLAlchemy URL. ``sqlite+aiosqlite:///FILE`` (the embedded default) or
            ``postgresql+asyncpg://USER:PASSWORD@HOST/DB``; ``sqlite://`` and
            ``postgresql://`` are accepted and mapped to those names. A PostgreSQL
            URL's query takes libpq's ``sslmode``, ``connect_timeout``,
            ``application_name`` and ``options`` (translated for asyncpg) and a few of
            asyncpg's own (``botkit/store/_pg_params.py``); any other is refused. A password in the
            URL must be percent-encoded (``@`` as ``%40``, ``%`` as ``%25``): ``%XX``
            sequences are decoded, and a raw ``@`` is refused. The password is masked in
            ``repr``, ``str`` and every message the store writes. (SQLite is driven
            through the standard ``sqlite3`` module in worker threads, see
            ``botkit/store/_runner.py``; the URL keeps the usual async spelling.)
        password: the PostgreSQL password, taken verbatim (no encoding needed); it is
            put into ``url``, which must then name a user and no password.
        auto_migrate: upgrade a SQLite database to the current schema on start. PostgreSQL is
            never upgraded implicitly: run ``botkit db upgrade``.
        sqlite_busy_timeout_ms: how long SQLite waits for another process's write lock.
        echo_sql: log every SQL statement (parameters are never logged).
        pool_size: PostgreSQL connections kept open per process; under load a process
            opens up to as many again (up to ``2 * pool_size``), plus one for its
            heartbeat: size the server's ``max_connections`` for that times the
            replicas, plus CLI jobs. (SQLite uses one writer thread and three reader
            threads, each with its own connection.)
        history_cache_mb: memory for the latest messages of active conversations, which
            spares most history reads (0 turns it off: every reply reads the database).
        retention_days: delete conversations (with their messages) inactive for this
            many days, and contacts left with none, once an hour while ``botkit run``
            serves; 0 (the default) keeps everything.
        outage_spool_dir: where a channel that cannot hold a message itself (Slack,
            Telegram's webhook) has its customers' messages kept while the database is
            unavailable, to be stored and answered once it is back (see
            ``botkit/_outage_spool.py``); a relative path is relative to the working
            directory; "" turns it off (such messages are then refused, and Slack drops
            them after its last retry).
        outage_spool_max_messages: messages kept there at most; beyond, they are refused.
        start_wait_seconds: how long the bot waits at start for a database that cannot
            be used yet (a server still starting beside it, restarting, unreachable, or
            a SQLite file locked), trying again every few seconds; 0 gives up at once.
            A refusal that waiting cannot cure (a wrong password, a database that does
            not exist, an outdated schema) ends the start at once either way.
    """

    # hide_input_in_errors: a URL that fails validation may carry a password; pydantic
    # would otherwise print it in the ValidationError.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = "sqlite+aiosqlite:///botkit.db"
    password: SecretStr | None = None
    auto_migrate: bool = True
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, le=3_600_000)
    echo_sql: bool = False
    pool_size: int = Field(default=10, ge=1, le=10_000)
    history_cache_mb: int = Field(default=32, ge=0, le=1 << 20)
    retention_days: int = Field(default=0, ge=0, le=36_500)
    outage_spool_dir: str = "botkit-outage-spool"
    outage_spool_max_messages: int = Field(default=10_000, ge=1, le=10_000_000)
    start_wait_seconds: float = Field(default=60.0, ge=0, le=86_400, allow_inf_nan=False)

    @field_validator("outage_spool_dir")
    @classmethod
    def _expand_home(cls, value: str) -> str:
        return str(Path(value).expanduser()) if value.strip() else ""

    @field_validator("url")
    @classmethod
    def _normalize_url(cls, value: str) -> str:
        if _extra_at(value):
            raise ValueError(_RAW_AT)
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
        if _misparsed(parsed):
            # SQLAlchemy ends the password at its first "@"; the rest of the password
            # would be sent as the host and shown in every connection error.
            raise ValueError(_RAW_AT)
        if parsed.get_backend_name() == "postgresql":
            if "+" in value.partition("?")[2]:  # a + in the query is a + (see libpq_plus)
                value = libpq_plus(value)
                parsed = make_url(value)
            check_query(parsed.query)  # before the first connection: named, exit 2
        home = parsed.get_backend_name() == "sqlite" and (parsed.database or "").startswith("~")
        if home:  # as a shell would: every part of botkit then opens the same file
            parsed = parsed.set(database=str(Path(parsed.database or "").expanduser()))
        elif driver == parsed.drivername:
            return value  # keep the text as written (no re-rendering of the password)
        return _render(parsed.set(drivername=driver))

    @model_validator(mode="after")
    def _apply_password(self) -> Self:
        if self.password is None:
            return self
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            raise ValueError("password applies to PostgreSQL only; SQLite has none")
        if parsed.username is None:
            raise ValueError("password needs a user name in url (postgresql+asyncpg://USER@...)")
        password = self.password.get_secret_value()
        if parsed.password is not None and parsed.password != password:  # (same: re-validated)
            raise ValueError("give the password in url or in password, not in both")
        # Rendering percent-encodes the password, so parsing the URL gives it back exactly.
        url = parsed.set(password=password)
        object.__setattr__(self, "url", _render(url))  # frozen
        return self

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
