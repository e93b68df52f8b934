"""The database options the core and peers benchmarks share: SQLite by default, a given
PostgreSQL URL, or a throw-away PostgreSQL server (the test suite's), and where the JSON
goes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _output import write_result  # this script's folder; re-exported for the benchmarks

__all__ = ["add_store_options", "chosen_store", "write_result"]


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--out``, and ``--store-url`` / ``--throwaway-postgres`` (one of them)."""
    parser.add_argument(
        "--out", default=None, help="JSON file (default under results/), - for none"
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--store-url", help="a PostgreSQL URL to measure instead of SQLite (tables are reused)"
    )
    store.add_argument(
        "--throwaway-postgres",
        action="store_true",
        help="start a PostgreSQL server from Debian's packages on loopback (as the tests do)",
    )


@contextmanager
def chosen_store(args: argparse.Namespace, database: str, results: Path) -> Iterator[None]:
    """Fill ``args.store_url`` (None: SQLite), ``args.store_label`` and ``args.out``
    (``results``, or its ``-postgres`` sibling); a throw-away server runs meanwhile."""
    server = None
    if args.throwaway_postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import pg_server  # the test suite's throw-away server

        server = pg_server.start_server()
        args.store_url = pg_server.create_database(server.url, database)
    if args.store_url:
        args.store_label = "postgresql (on this machine, sharing its cores)"
        args.out = args.out or str(results.with_name(f"{results.stem}-postgres.json"))
    else:
        args.store_label = "sqlite (WAL, file in a temp dir)"
        args.out = args.out or str(results)
    try:
        yield
    finally:
        if server is not None:
            server.stop()
