"""Query parameters of a PostgreSQL URL: the libpq names operators are handed, mapped to
what asyncpg takes.

SQLAlchemy passes a URL's query to ``asyncpg.connect()`` as keyword arguments, so a libpq
spelling a managed service hands out (``?sslmode=require``) ended every command with
``TypeError: connect() got an unexpected keyword argument``. The names below are the ones
botkit translates or passes on; any other is refused when the config is read
(``StoreSettings``), naming the parameter, instead of failing at the first connection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["ACCEPTED_PARAMS", "check_query", "connect_args", "libpq_plus"]

# libpq's sslmode values, which asyncpg's ``ssl`` also takes as text.
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})

# Passed on unchanged: keyword arguments of asyncpg.connect() that take text (``port``
# and ``prepared_statement_cache_size`` are made ints by SQLAlchemy's dialect;
# ``prepared_statement_cache_size=0`` is what a pgbouncer in transaction mode needs).
_PASSED = frozenset(
    {
        "user",
        "password",
        "database",
        "host",
        "port",
        "ssl",
        "passfile",
        "service",
        "servicefile",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "prepared_statement_cache_size",
    }
)
# libpq names translated into asyncpg's (see connect_args).
_TRANSLATED = frozenset({"sslmode", "connect_timeout", "application_name", "options"})

ACCEPTED_PARAMS = _PASSED | _TRANSLATED


# asyncpg's values (its ``SessionAttribute``; libpq 14+ has the same names).
_SESSION_ATTRS = frozenset(
    {"any", "primary", "standby", "prefer-standby", "read-write", "read-only"}
)
_GSSLIBS = frozenset({"gssapi", "sspi"})
# Whole numbers SQLAlchemy's dialect makes ints (a bad one failed the first connection
# with a bare ValueError): the lowest and highest value each takes.
_INTEGERS = {"port": (1, 65535), "prepared_statement_cache_size": (0, 2**31 - 1)}


def _one_of(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(
            f"database URL parameter {name}={value!r} is not one of {', '.join(sorted(allowed))}"
        )


def _check_value(name: str, value: str) -> None:
    if name in ("sslmode", "ssl"):
        _one_of(name, value, _SSL_MODES)
    elif name == "target_session_attrs":
        _one_of(name, value, _SESSION_ATTRS)
    elif name == "gsslib":
        _one_of(name, value, _GSSLIBS)
    elif name in _INTEGERS:
        low, high = _INTEGERS[name]
        if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            raise ValueError(
                f"database URL parameter {name}={value!r} must be a whole number from "
                f"{low} to {high}"
            )
    if name == "connect_timeout":
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(
                f"database URL parameter connect_timeout={value!r} must be a number of "
                "seconds above 0"
            )


def check_query(query: Mapping[str, str | tuple[str, ...]]) -> None:
    """Refuse a PostgreSQL URL query that asyncpg would not take.

    Raises:
        ValueError: naming the first parameter that is unknown, given twice (also as
            ``ssl`` and ``sslmode``), or has a value asyncpg would refuse.
    """
    for name, value in query.items():
        if name not in ACCEPTED_PARAMS:
            raise ValueError(
                f"database URL parameter {name!r} is not supported; accepted: "
                f"{', '.join(sorted(ACCEPTED_PARAMS))} (TLS: ?sslmode=require or "
                "?sslmode=verify-full, see docs/operations.md)"
            )
        if not isinstance(value, str):
            raise ValueError(f"database URL parameter {name!r} is given more than once")
        _check_value(name, value)
    if "ssl" in query and "sslmode" in query:
        # One of them would silently win over the other (sslmode did).
        raise ValueError("database URL parameters 'ssl' and 'sslmode' say the same: give one")


def connect_args(query: Mapping[str, str | tuple[str, ...]]) -> tuple[dict[str, Any], set[str]]:
    """asyncpg keyword arguments for the libpq names in ``query``.

    Returns:
        The arguments (``ssl``, ``timeout``, ``server_settings``), and the query names
        they replace (to be removed from the URL).
    """
    args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    for name, value in query.items():
        if name not in _TRANSLATED or not isinstance(value, str):
            continue
        if name == "sslmode":
            args["ssl"] = value
        elif name == "connect_timeout":
            args["timeout"] = float(value)
        else:
            # Startup parameters: the server applies ``application_name`` and parses
            # ``options`` ("-c statement_timeout=5s ...") as libpq's would be.
            server_settings[name] = value
    if server_settings:
        args["server_settings"] = server_settings
    return args, {name for name in query if name in _TRANSLATED}


def libpq_plus(url: str) -> str:
    """``url`` with each ``+`` of its query written ``%2B``: libpq reads a ``+`` in a
    URI's query as itself (only percent-encoding is decoded), SQLAlchemy's parse as a
    space (``?application_name=bot+1`` became "bot 1", ``?options=-c+x=1`` "-c x=1")."""
    base, qmark, query = url.partition("?")
    return base + qmark + query.replace("+", "%2B")
