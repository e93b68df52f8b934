"""TLS to PostgreSQL through the libpq spelling managed services hand out (audit-pg
finding 1): ``?sslmode=require`` encrypts, ``?sslmode=verify-full`` also checks the
server's certificate against ``PGSSLROOTCERT``. The server is one of this module's own,
with a self-signed certificate for 127.0.0.1 (the session's has no TLS)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from botkit.errors import DatabaseUnavailableError, StoreError
from botkit.store import StoreSettings
from botkit.store._database import Database

try:
    import pg_server
except ImportError:  # pragma: no cover - tests/ made a package
    from tests import pg_server  # type: ignore[no-redef,unused-ignore]

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, Path]]:
    """(URL, CA file): a server that also takes TLS connections."""
    with pg_server.own_server("configures its own server") as server:
        assert server._root is not None and server._as_user is not None
        data = server._root / "data"
        subprocess.run(
            [
                *server._as_user, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(data / "server.key"), "-out", str(data / "server.crt"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        ca = server._root / "ca.crt"
        ca.write_bytes((data / "server.crt").read_bytes())
        pg_server.run_async(pg_server._admin(server.url, "ALTER SYSTEM SET ssl = on"))
        pg_server.run_async(pg_server._admin(server.url, "SELECT pg_reload_conf()"))
        yield server.url, ca


async def _encrypted(url: str) -> bool:
    async with Database(StoreSettings(url=url)) as db:
        query = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return bool(await db._read(lambda conn: conn.execute(query).scalar()))


async def test_sslmode_require_encrypts(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    assert await _encrypted(f"{url}?sslmode=require")
    assert not await _encrypted(f"{url}?sslmode=disable")


@pytest.fixture
def stranger_ca(tmp_path: Path) -> Path:
    """A certificate for 127.0.0.1 that did not sign the server's."""
    stranger = tmp_path / "other.crt"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-keyout", str(tmp_path / "other.key"),
            "-out", str(stranger),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return stranger


async def test_sslmode_verify_full_checks_the_certificate(
    tls_server: tuple[str, Path], stranger_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = tls_server
    monkeypatch.setenv("PGSSLROOTCERT", str(ca))
    assert await _encrypted(f"{url}?sslmode=verify-full")
    monkeypatch.setenv("PGSSLROOTCERT", str(stranger_ca))
    with pytest.raises(StoreError, match=r"(?i)certificate") as caught:
        await _encrypted(f"{url}?sslmode=verify-full")
    # Refused at once, not waited for as an outage (start_wait_seconds) and retried.
    assert not isinstance(caught.value, DatabaseUnavailableError)
