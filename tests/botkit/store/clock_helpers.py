"""A host clock set wrong, for the tests of what clocks decide (heartbeats, retention)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from unittest import mock


@contextmanager
def host_clock(offset: timedelta) -> Iterator[None]:
    """This host's wall clock ``offset`` off, as botkit reads it (``botkit.events.utcnow``,
    which every module calls); the database server's clock is left alone."""
    real = datetime

    class Shifted(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return real.now(tz) + offset

    with mock.patch("botkit.events.datetime", Shifted):
        yield
