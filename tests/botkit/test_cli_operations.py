"""The CLI for operators (review2-operator #8, #10): in JSON log mode the reason the bot
stopped is a JSON line too; ``db current`` never creates a SQLite file or directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botkit.cli import main

# The CLI installs its log handler on the root logger; take it off after each test.
pytestmark = pytest.mark.usefixtures("restore_root_logging")


def _config(tmp_path: Path, store: str, logging_section: str = "") -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\n{store}\n[backend]\nkind = "echo"\n{logging_section}', encoding="utf-8"
    )
    return path


def test_in_json_mode_the_stop_reason_is_a_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        f'url = "sqlite:///{tmp_path}/fresh.db"\nauto_migrate = false',
        "[logging]\njson = true\n",
    )
    assert main(["run", "-c", str(config)]) == 3
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    entries = [json.loads(line) for line in lines]  # every line parses
    last = entries[-1]
    assert last["level"] == "CRITICAL" and last["logger"] == "botkit.cli"
    assert "run `botkit db upgrade -c FILE`" in last["message"]
    assert captured.out == ""


def test_in_text_mode_the_stop_reason_stays_a_plain_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f'url = "sqlite:///{tmp_path}/fresh.db"\nauto_migrate = false')
    assert main(["run", "-c", str(config)]) == 3
    assert capsys.readouterr().err.splitlines()[-1].startswith("botkit: error: the database")


def test_db_current_creates_no_file_and_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo-dir" / "nested" / "bot.db"
    config = _config(tmp_path, f'url = "sqlite:///{missing}"')
    assert main(["db", "current", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"no database at {missing}" in err and "nothing was created" in err
    assert not (tmp_path / "typo-dir").exists()


def test_db_current_reads_an_existing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f'url = "sqlite:///{tmp_path}/bot.db"')
    (tmp_path / "bot.db").write_bytes(b"")  # an empty file is an empty SQLite database
    assert main(["db", "current", "-c", str(config)]) == 0
    assert "no schema" in capsys.readouterr().out


def test_db_current_in_memory_is_not_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, 'url = "sqlite://"')
    assert main(["db", "current", "-c", str(config)]) == 0
    assert "no schema" in capsys.readouterr().out
