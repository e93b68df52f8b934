"""StoreSettings: defaults, validation, and passwords never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from botkit.store import StoreSettings, mask_url


def test_defaults() -> None:
    s = StoreSettings()
    assert s.url == "sqlite+aiosqlite:///botkit.db"
    assert (s.auto_migrate, s.sqlite_busy_timeout_ms, s.echo_sql, s.pool_size) == (
        True,
        5000,
        False,
        10,
    )
    assert s.dialect == "sqlite"


def test_unknown_keys_and_bad_values_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra"):
        StoreSettings(uri="sqlite://")  # type: ignore[call-arg,unused-ignore]
    with pytest.raises(ValidationError):
        StoreSettings(pool_size=0)
    with pytest.raises(ValidationError):
        StoreSettings(sqlite_busy_timeout_ms=-1)
    with pytest.raises(ValidationError):
        StoreSettings().url = "x"  # type: ignore[misc,unused-ignore]  # frozen


@pytest.mark.parametrize("bad", [-1, 2**20 + 1, "lots", 1.5])
def test_history_cache_size_is_bounded(bad: object) -> None:
    """The window of recent messages takes MiB from the config: a negative, absurd or
    non-integer size is refused, 0 turns the window off."""
    assert StoreSettings().history_cache_mb == 32
    assert StoreSettings(history_cache_mb=0).history_cache_mb == 0
    with pytest.raises(ValidationError, match="history_cache_mb"):
        StoreSettings(history_cache_mb=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/bot.db", "sqlite+aiosqlite:///data/bot.db"),
        ("postgresql://bot:pw@db/botkit", "postgresql+asyncpg://bot:pw@db/botkit"),
        ("postgres://bot@db/botkit", "postgresql+asyncpg://bot@db/botkit"),
        ("postgresql+asyncpg://bot:pw@db/botkit", "postgresql+asyncpg://bot:pw@db/botkit"),
    ],
)
def test_driver_is_normalized(given: str, expected: str) -> None:
    assert StoreSettings(url=given).url == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://bot:sup3r-secret@db/botkit",
        "not a url sup3r-secret",
        "postgresql+psycopg2://u:sup3r-secret@h/d",
    ],
)
def test_rejected_url_does_not_echo_the_password(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        StoreSettings(url=url)
    assert "sup3r-secret" not in str(caught.value)
    assert "url" in str(caught.value)


def test_password_is_masked_in_repr_and_str() -> None:
    s = StoreSettings(url="postgresql+asyncpg://bot:p%40ss-w0rd@db:5432/botkit?password=q-secret")
    for shown in (repr(s), str(s), s.safe_url, mask_url(s.url)):
        assert "p%40ss-w0rd" not in shown and "p@ss-w0rd" not in shown
        assert "q-secret" not in shown
        assert "bot:***@db:5432/botkit" in shown
    assert "p%40ss-w0rd" in s.url  # the value itself is intact for connecting
    assert mask_url("::::") == "<invalid database URL>"
