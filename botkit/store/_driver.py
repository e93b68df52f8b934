"""Whether the PostgreSQL driver is there: asyncpg comes only with ``botkit[postgres]``.

Without it, SQLAlchemy fails where the engine is made with a bare ``ModuleNotFoundError``
traceback (``botkit db upgrade``, ``botkit run``), after ``botkit check-config`` said the
file was fine; both now say what to install instead.
"""

from __future__ import annotations

import importlib

from botkit.errors import StoreError

__all__ = ["POSTGRES_DRIVER_MISSING", "postgres_driver_problem", "require_postgres_driver"]

POSTGRES_DRIVER_MISSING = (
    "the PostgreSQL driver asyncpg is not installed: pip install 'botkit[postgres]'"
)


def postgres_driver_problem() -> str | None:
    """What keeps asyncpg from being used, or None when it imports."""
    try:
        importlib.import_module("asyncpg")
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "asyncpg":
            return POSTGRES_DRIVER_MISSING
        # Installed but broken (a module of its own missing, a build for another Python):
        # reinstalling the extra is still the way out.
        return (
            f"the PostgreSQL driver asyncpg cannot be imported ({type(exc).__name__}: "
            f"{exc}): pip install --force-reinstall 'botkit[postgres]'"
        )
    return None


def require_postgres_driver() -> None:
    """Raise ``StoreError`` when asyncpg cannot be imported.

    Raises:
        StoreError: with what to install.
    """
    problem = postgres_driver_problem()
    if problem is not None:
        raise StoreError(problem)
