"""A PostgreSQL store without asyncpg (botkit installed without its ``postgres`` extra):
``botkit check-config`` said OK, then ``botkit db`` and ``botkit run`` ended in a bare
``ModuleNotFoundError`` traceback. Both now say what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.errors import StoreError
from botkit.store._runner import create_runner

MISSING = "the PostgreSQL driver asyncpg is not installed: pip install 'botkit[postgres]'"


@pytest.fixture
def no_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import asyncpg` fail as a module not installed does.
    monkeypatch.setitem(sys.modules, "asyncpg", None)


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\nurl = "{url}"\n[backend]\nkind = "echo"\n[connectors.console]\nuser = "a"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.usefixtures("no_asyncpg")
@pytest.mark.parametrize("url", ["postgresql+asyncpg://bot@127.0.0.1:1/botkit", "postgres://h/db"])
def test_engine_creation_names_the_extra(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        create_runner(url)
    assert str(caught.value) == MISSING


@pytest.mark.usefixtures("no_asyncpg")
def test_check_config_reports_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "postgresql+asyncpg://bot@127.0.0.1:1/botkit")
    assert main(["check-config", str(config)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{config}: 1 problem",
        f"  store.url: {MISSING}",
    ]


@pytest.mark.usefixtures("no_asyncpg")
@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"]])
def test_db_commands_say_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config = _config(tmp_path, "postgresql://bot@127.0.0.1:1/botkit")
    assert main([*command, "-c", str(config)]) == 1
    assert capsys.readouterr().err.strip().endswith(f"botkit: error: {MISSING}")


@pytest.mark.usefixtures("no_asyncpg")
def test_sqlite_needs_no_asyncpg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "sqlite:///chat.db")
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{config}: OK"


def test_installed_driver_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("asyncpg")
    config = _config(tmp_path, "postgresql://bot@127.0.0.1:1/botkit")
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{config}: OK"
