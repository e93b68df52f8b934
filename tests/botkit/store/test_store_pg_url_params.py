"""libpq-style parameters in a PostgreSQL URL: translated for asyncpg, or refused when the
config is read (audit-pg finding 1: ``?sslmode=require`` ended every command with
``TypeError: connect() got an unexpected keyword argument``)."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from botkit.config import check_config
from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.store import StoreSettings
from botkit.store._database import Database
from botkit.store._outage import outage_reason

_BASE = "postgresql://botkit:secret@db.example/botkit"


@pytest.mark.parametrize(
    "query",
    [
        "sslmode=require",
        "sslmode=verify-full",
        "sslmode=disable",
        "ssl=require",
        "connect_timeout=5",
        "application_name=bot-1",
        "options=-c%20statement_timeout%3D5s",
        "host=/run/postgresql&port=5433",
        "prepared_statement_cache_size=0",
        "prepared_statement_cache_size=100",
        "port=5432",
        "target_session_attrs=read-write",
        "target_session_attrs=prefer-standby",
        "gsslib=gssapi",
    ],
)
def test_libpq_and_asyncpg_parameters_are_accepted(query: str) -> None:
    assert StoreSettings(url=f"{_BASE}?{query}").dialect == "postgresql"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sslrootcert=/etc/ca.pem", "'sslrootcert'"),
        ("keepalives=1", "'keepalives'"),
        ("sslmode=required", "sslmode='required'"),
        ("connect_timeout=soon", "connect_timeout='soon'"),
        ("connect_timeout=0", "connect_timeout='0'"),
        # Hostile values that passed check-config and failed at the first connection.
        ("prepared_statement_cache_size=lots", "prepared_statement_cache_size='lots'"),
        ("prepared_statement_cache_size=-1", "prepared_statement_cache_size='-1'"),
        ("port=abc", "port='abc'"),
        ("port=0", "port='0'"),
        ("port=65536", "port='65536'"),
        ("port=%C2%B2", "port='²'"),  # a digit to str.isdigit, not to int()
        ("target_session_attrs=bogus", "target_session_attrs='bogus'"),
        ("gsslib=kerberos", "gsslib='kerberos'"),
        # Given twice, under one name or under both of TLS's names.
        ("sslmode=require&ssl=disable", "'ssl' and 'sslmode'"),
        ("ssl=disable&sslmode=require", "'ssl' and 'sslmode'"),
        ("sslmode=require&sslmode=disable", "'sslmode' is given more than once"),
        ("port=5432&port=5433", "'port' is given more than once"),
        ("application_name=a&application_name=b", "'application_name' is given more"),
    ],
)
def test_other_parameters_are_a_config_problem_naming_them(
    query: str, named: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=named):
        StoreSettings(url=f"{_BASE}?{query}")
    config = tmp_path / "botkit.toml"
    config.write_text(f'[store]\nurl = "{_BASE}?{query}"\n')
    found = check_config(config, environ={})
    assert [p.path for p in found] == ["store.url"]
    assert named in found[0].message and "secret" not in found[0].message


@pytest.mark.postgres
async def test_translated_parameters_reach_the_server(pg_migrated_url: str) -> None:
    options = quote("-c statement_timeout=4321 -c lock_timeout=1234")
    url = (
        f"{pg_migrated_url}?sslmode=disable&connect_timeout=5"
        f"&application_name=botkit-test&options={options}"
    )
    async with Database(StoreSettings(url=url)) as db:

        def settings(conn: object) -> tuple[str, str, str]:
            row = conn.execute(  # type: ignore[attr-defined]
                text(
                    "SELECT current_setting('application_name'),"
                    " current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
            ).one()
            return (row[0], row[1], row[2])

        assert await db._read(settings) == ("botkit-test", "4321ms", "1234ms")


@pytest.mark.postgres
async def test_sslmode_prefer_connects_without_tls(pg_migrated_url: str) -> None:
    # The throw-away server has no certificate: "prefer" falls back to plain TCP (and
    # the old code died with a TypeError before even trying).
    async with Database(StoreSettings(url=f"{pg_migrated_url}?sslmode=prefer")) as db:
        assert await db.ping()


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("application_name=bot+1", "bot+1"),  # libpq: a + is a +
        ("application_name=bot%2B1", "bot+1"),
        ("application_name=bot%201", "bot 1"),
    ],
)
def test_a_plus_in_the_query_is_a_plus_as_libpq_reads_it(query: str, value: str) -> None:
    settings = StoreSettings(url=f"{_BASE}?{query}")
    assert settings.sqlalchemy_url.query["application_name"] == value
    # The same once the URL is rendered again (the driver name, a separate password).
    again = StoreSettings(url=settings.url, password=None)
    assert again.sqlalchemy_url.query["application_name"] == value
    user_only = f"postgresql://botkit@db.example/botkit?{query}&options=-c%20x%3D1"
    with_password = StoreSettings(url=user_only, password="secret")
    assert with_password.sqlalchemy_url.query["application_name"] == value
    assert StoreSettings(url=with_password.url).sqlalchemy_url.query == {
        "application_name": value,
        "options": "-c x=1",
    }


@pytest.mark.postgres
async def test_a_plus_reaches_the_server_as_a_plus(pg_migrated_url: str) -> None:
    url = f"{pg_migrated_url}?application_name=bot+1"
    async with Database(StoreSettings(url=url)) as db:
        name = await db._read(
            lambda conn: conn.execute(text("SELECT current_setting('application_name')")).scalar()
        )
    assert name == "bot+1"


@pytest.mark.postgres
async def test_sslmode_require_against_a_server_without_tls_is_not_waited_for(
    pg_migrated_url: str,
) -> None:
    # The throw-away server has no TLS: asyncpg's "rejected SSL upgrade" is an OSError,
    # which was taken for an unreachable server and waited for until the start gave up.
    db = Database(StoreSettings(url=f"{pg_migrated_url}?sslmode=require"))
    with pytest.raises(StoreError, match="rejected SSL upgrade") as caught:
        await db.open()
    assert not isinstance(caught.value, DatabaseUnavailableError)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ssl.SSLError(1, "[SSL: NO_PROTOCOLS_AVAILABLE] no protocols available"), False),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), False),
        (ConnectionError('PostgreSQL server at "h:5432" rejected SSL upgrade'), False),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), False),
        (ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol"), False),
        (ssl.SSLError(1, "[SSL: NO_SHARED_CIPHER] no shared cipher"), False),
        # Review 2, finding 7: any other TLS error is waited out (a record that fails
        # its MAC, a restarting TLS proxy), not a failed reply.
        (ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed"), True),
        (ssl.SSLError(1, "[SSL: BAD_RECORD_MAC] bad record mac"), True),
        (ssl.SSLError(1, "[SSL: UNEXPECTED_RECORD] unexpected record"), True),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), True),
        (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
    ],
)
def test_tls_refusals_are_not_outages_but_a_cut_handshake_is(error: OSError, outage: bool) -> None:
    assert (outage_reason(error) is not None) is outage


def _handshake_answered_with(data: bytes) -> ssl.SSLError:
    """What OpenSSL itself raises (its ``reason`` set) when a TLS handshake is answered
    with ``data``."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    incoming.write(data)
    with pytest.raises(ssl.SSLError) as caught:
        client.do_handshake()
    return caught.value


def test_a_real_tls_misconfiguration_is_told_by_openssls_reason() -> None:
    plain = _handshake_answered_with(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
    assert plain.reason == "WRONG_VERSION_NUMBER"
    assert outage_reason(plain) is None
