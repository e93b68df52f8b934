"""StoreSettings: defaults, validation, and passwords never shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from botkit.config import check_config, load_settings
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


@pytest.mark.parametrize("given", ["sqlite+aiosqlite:///~/bots/x.db", "sqlite:///~/bots/x.db"])
def test_a_home_relative_sqlite_path_is_expanded_once_for_every_user_of_it(given: str) -> None:
    # check-config, `db` commands and the bot used to disagree on "~" (the bot opened a
    # literal "~" directory relative to the working directory).
    url = StoreSettings(url=given).sqlalchemy_url
    assert url.database == str(Path.home() / "bots" / "x.db")
    assert url.drivername == "sqlite+aiosqlite"


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


# A generated password with raw "@" (and a "/" after it, which moves the rest into the
# database name instead of the host).
_AT_PASSWORDS = ["3xkcd-head@horse-battery", "pw-head@ss/word-tail", "abc-head@b?c=d@tail-secret"]


@pytest.mark.parametrize("password", _AT_PASSWORDS)
def test_password_with_raw_at_is_refused_without_echoing_it(password: str, tmp_path: Path) -> None:
    """SQLAlchemy cuts the password at its first '@' and sends the rest as the host: the
    URL is refused, and the problem says how to encode without showing URL or password."""
    url = f"postgresql+asyncpg://botkit:{password}@localhost/botkit"
    with pytest.raises(ValidationError) as caught:
        StoreSettings(url=url)
    shown = str(caught.value)
    assert "%40" in shown and "percent-encode" in shown
    tail = password.split("@", 1)[1]
    assert tail not in shown and "localhost" not in shown

    # The same through the documented ${VAR} route and `check-config`.
    config = tmp_path / "botkit.toml"
    config.write_text(
        '[store]\nurl = "postgresql+asyncpg://botkit:${BOTKIT_DB_PASSWORD}@localhost/botkit"\n'
    )
    found = check_config(config, environ={"BOTKIT_DB_PASSWORD": password})
    assert [p.path for p in found] == ["store.url"]
    assert "%40" in found[0].message
    assert tail not in found[0].message and password.split("@")[0] not in found[0].message


# Review 3 finding 5: these still parse. After "@[" SQLAlchemy takes the bracketed part
# as an IPv6 host and drops the rest; "@db:9X" fails as a port, not as a password.
_PARSING_AT_PASSWORDS = ["Vq7@[k2Zp]9rT", "Secr3t@db:9X", "tail@[::1]-secret"]


@pytest.mark.parametrize("password", _PARSING_AT_PASSWORDS)
def test_a_raw_at_password_that_still_parses_is_refused_without_echoing_it(
    password: str, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://botkit:{password}@localhost/botkit"
    with pytest.raises(ValidationError) as caught:
        StoreSettings(url=url)
    shown = str(caught.value)
    assert "%40" in shown and "percent-encode" in shown
    for piece in re.split(r"[@\[\]:]", password):
        assert len(piece) < 3 or piece not in shown, piece
    config = tmp_path / "botkit.toml"
    config.write_text(
        '[store]\nurl = "postgresql+asyncpg://botkit:${BOTKIT_DB_PASSWORD}@localhost/botkit"\n'
    )
    found = check_config(config, environ={"BOTKIT_DB_PASSWORD": password})
    assert [p.path for p in found] == ["store.url"]
    assert "%40" in found[0].message and password.split("@")[1] not in found[0].message
    assert mask_url(url) == "postgresql+asyncpg://botkit:***@localhost/botkit"


@pytest.mark.parametrize("password", _AT_PASSWORDS)
def test_mask_url_hides_everything_up_to_the_last_at(password: str) -> None:
    url = f"postgresql+asyncpg://botkit:{password}@localhost/botkit?password=q-secret"
    for shown in (mask_url(url), mask_url(make_url(url))):
        for piece in [*password.split("@"), "q-secret"]:
            assert piece not in shown, (piece, shown)
    assert mask_url(url) == "postgresql+asyncpg://botkit:***@localhost/botkit?password=***"


def test_percent_encoded_at_is_accepted_and_decoded() -> None:
    s = StoreSettings(url="postgresql+asyncpg://botkit:p%40ss@localhost/botkit")
    assert make_url(s.url).password == "p@ss"
    assert make_url(s.url).host == "localhost"


def test_an_at_in_a_sqlite_path_is_not_a_password() -> None:
    s = StoreSettings(url="sqlite:///srv/@bots/bot.db")
    assert make_url(s.url).database == "srv/@bots/bot.db"
    assert s.safe_url == "sqlite+aiosqlite:///srv/%40bots/bot.db"


@pytest.mark.parametrize("password", ["p@ss:w/o?r#d%41y", "x%41y", "50%off", "s3cret/Pa55"])
def test_password_key_is_used_verbatim(password: str) -> None:
    """``[store] password`` needs no encoding: the server gets exactly the value."""
    s = StoreSettings(url="postgresql://botkit@db.internal:5433/botkit", password=password)
    parsed = make_url(s.url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "botkit",
        password,
        "db.internal",
        5433,
        "botkit",
    )
    assert s.safe_url == "postgresql+asyncpg://botkit:***@db.internal:5433/botkit"
    for shown in (repr(s), str(s), s.safe_url):
        assert password not in shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///bot.db", "PostgreSQL only"),
        ("postgresql://db/botkit", "user name"),
        ("postgresql://botkit:other@db/botkit", "not in both"),
    ],
)
def test_password_key_conflicts_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        StoreSettings(url=url, password="hunter2-secret")
    assert "hunter2-secret" not in str(caught.value)


def test_password_key_from_the_environment_via_check_config(tmp_path: Path) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text(
        '[store]\nurl = "postgresql://botkit@localhost/botkit"\n'
        'password = "${BOTKIT_DB_PASSWORD}"\n'
    )
    env = {"BOTKIT_DB_PASSWORD": "3xkcd@horse%41battery"}
    assert check_config(config, environ=env) == []
    store = load_settings(config, environ=env).store
    assert make_url(store.url).password == "3xkcd@horse%41battery"
