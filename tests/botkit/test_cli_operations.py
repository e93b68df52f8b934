"""The CLI for operators (review2-operator #8, #10): in JSON log mode the reason the bot
stopped is a JSON line too; ``db current`` never creates a SQLite file or directory.

Operator review 3: the database commands read only ``[store]`` and ``[logging]`` (no
channel's or agent's secret is needed); no ``db`` command but ``upgrade`` creates a
database; ``run`` checks what ``check-config`` checks before it opens the database."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from botkit.cli import main

# The CLI installs its log handler on the root logger; take it off after each test.


# `botkit run` needs a channel to serve.
_CONSOLE = "[connectors.console]\n"


def _config(tmp_path: Path, store: str, logging_section: str = "", rest: str = "") -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\n{store}\n[backend]\nkind = "echo"\n{logging_section}{rest}', encoding="utf-8"
    )
    return path


def test_in_json_mode_the_stop_reason_is_a_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        f'url = "sqlite:///{tmp_path}/fresh.db"\nauto_migrate = false',
        "[logging]\njson = true\n",
        _CONSOLE,
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
    config = _config(
        tmp_path, f'url = "sqlite:///{tmp_path}/fresh.db"\nauto_migrate = false', rest=_CONSOLE
    )
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


# A channel and agents whose secrets this machine does not have, and a section a newer
# botkit reads: none of it is the database commands' business.
_SERVING_ONLY = """
[connectors.telegram]
enabled = true
token = "${BOTKIT_TELEGRAM_TOKEN}"
[connectors.slack]
bot_token = "${BOTKIT_SLACK_TOKEN:-}"
[plugins.handoff]
api_listen = "127.0.0.1:8090"
agents = { Ana = "${BOTKIT_AGENT_ANA}" }
[newer_section]
key = 1
"""


@pytest.mark.parametrize(
    "command",
    [
        ["db", "current"],
        ["db", "downgrade", "0005", "--yes"],
        ["data", "export", "web", "nobody"],
        ["data", "forget", "web", "nobody"],
        ["data", "purge", "--days", "30"],
        ["handoff", "list"],
        ["handoff", "release", "web", "nobody"],
        ["feedback"],
    ],
)
def test_database_commands_need_no_channel_or_agent_secrets(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    # A migration job or a GDPR export runs where only the database's secret is.
    for name in ("BOTKIT_TELEGRAM_TOKEN", "BOTKIT_SLACK_TOKEN", "BOTKIT_AGENT_ANA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOTKIT_DB_FILE", str(tmp_path / "bot.db"))
    config = str(_config(tmp_path, 'url = "sqlite:///${BOTKIT_DB_FILE}"', rest=_SERVING_ONLY))
    assert main(["db", "upgrade", "-c", config]) == 0
    capsys.readouterr()
    code = main([*command, "-c", config])
    err = capsys.readouterr().err
    assert "invalid configuration" not in err
    # No such person or conversation: the database answered.
    assert code == (1 if "nobody" in command else 0), err
    # `run` and `check-config` still read the whole file.
    assert main(["run", "-c", config]) == 2
    err = capsys.readouterr().err
    assert "connectors.telegram.token: environment variable BOTKIT_TELEGRAM_TOKEN" in err
    assert "plugins.handoff.agents.Ana: environment variable BOTKIT_AGENT_ANA" in err
    assert "newer_section: unknown key" in err


def test_database_commands_still_check_the_sections_they_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTKIT_TELEGRAM_TOKEN", raising=False)
    config = _config(
        tmp_path, f'url = "sqlite:///{tmp_path}/bot.db"\npool_size = 0',
        '[logging]\nlevel = "loud"\n', _SERVING_ONLY,
    )  # fmt: skip
    assert main(["db", "upgrade", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "store.pool_size:" in err and "logging.level:" in err
    assert "telegram" not in err and "newer_section" not in err
    assert not (tmp_path / "bot.db").exists()


@pytest.mark.parametrize("revision", [["base"], ["0003", "--yes"], ["base", "--yes"]])
def test_db_downgrade_creates_no_file_either(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], revision: list[str]
) -> None:
    missing = tmp_path / "typo-dir" / "bot.db"
    config = _config(tmp_path, f'url = "sqlite:///{missing}"')
    assert main(["db", "downgrade", *revision, "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"no database at {missing}" in err and "nothing was created" in err
    assert not (tmp_path / "typo-dir").exists()


def test_db_upgrade_creates_a_database_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A first install: upgrade is how the database comes to be. Naming the file it
    # created shows a mistyped path at once.
    new = tmp_path / "data" / "bot.db"
    config = str(_config(tmp_path, f'url = "sqlite:///{new}"'))
    assert main(["db", "upgrade", "-c", config]) == 0
    assert f"created {new}; schema at " in capsys.readouterr().out
    assert new.is_file()
    assert main(["db", "upgrade", "-c", config]) == 0
    assert "created" not in capsys.readouterr().out


def test_run_checks_the_config_before_it_touches_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bot.db"
    no_channel = _config(tmp_path, f'url = "sqlite:///{db}"')
    assert main(["check-config", str(no_channel)]) == 2
    out = capsys.readouterr().out
    assert "  connectors: no connector is enabled, so `botkit run` cannot start" in out
    assert main(["run", "-c", str(no_channel)]) == 2
    assert "connectors: no connector is enabled" in capsys.readouterr().err
    assert not db.exists()

    # A disabled channel serves nothing either.
    off = _config(tmp_path, f'url = "sqlite:///{db}"', rest="[connectors.web]\nenabled = false\n")
    assert main(["check-config", str(off)]) == 2
    assert "connectors: no connector is enabled" in capsys.readouterr().out

    no_model = _config(
        tmp_path, f'url = "sqlite:///{db}"',
        rest=f'{_CONSOLE}[language.translator]\nkind = "engine"\nmodel = ["{tmp_path}/nope"]\n',
    )  # fmt: skip
    for command in ("run", "chat"):
        assert main([command, "-c", str(no_model)]) == 2
        err = capsys.readouterr().err
        assert "language.translator.model:" in err and "does not exist" in err, err
        assert not db.exists()


# An intent whose reply lacks the working language ("en"): setup would leave the plugin
# out and the bot would serve without it.
_SPANISH_ONLY_INTENT = (
    '[plugins.intents]\n[[plugins.intents.intent]]\nname = "hours"\naction = "reply"\n'
    'keywords = ["horario"]\nreply.es = "Abrimos a las 9."\n'
    'buttons = [{ label = { es = "Dirección" }, value = "dirección" }]\n'
)


def test_a_plugin_config_that_does_not_fit_the_settings_is_a_config_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bot.db"
    config = _config(tmp_path, f'url = "sqlite:///{db}"', rest=_CONSOLE + _SPANISH_ONLY_INTENT)
    assert main(["check-config", str(config)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{config}: 2 problems"
    assert out[1].startswith("  plugins.intents.intent[0].reply: intent 'hours' has no text in")
    assert out[2].startswith("  plugins.intents.intent[0].buttons[0].label: intent 'hours'")
    for command in ("run", "chat"):  # refused before the database is created
        assert main([command, "-c", str(config)]) == 2
        assert "plugins.intents.intent[0].reply:" in capsys.readouterr().err
        assert not db.exists()

    # The same texts fit a Spanish-speaking bot.
    spanish = config.read_text("utf-8") + '[bot]\nworking_language = "es"\n'
    config.write_text(spanish, "utf-8")
    assert main(["check-config", str(config)]) == 0


def test_a_check_config_usage_error_shows_that_commands_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./botkit.toml or ./config.example.toml here
    monkeypatch.delenv("BOTKIT_CONFIG", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main(["check-config"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: botkit check-config [-h] [-c FILE] [FILE]")
    assert "no config file: give FILE or -c FILE (or set $BOTKIT_CONFIG" in err
    with pytest.raises(SystemExit) as stopped:
        main(["check-config", "a.toml", "-c", "b.toml"])
    assert "give one config file: FILE or -c FILE" in capsys.readouterr().err


def test_check_config_without_a_file_checks_the_one_run_would_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before, it ignored $BOTKIT_CONFIG, which every other command reads.
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "deployed.toml"
    config.write_text('[backend]\nkind = "echo"\n[bot]\nhistory_turns = -1\n', encoding="utf-8")
    monkeypatch.setenv("BOTKIT_CONFIG", str(config))
    assert main(["check-config"]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"{config}: 1 problem") and "bot.history_turns" in out
    monkeypatch.delenv("BOTKIT_CONFIG")
    (tmp_path / "botkit.toml").write_text('[backend]\nkind = "echo"\n[connectors.console]\n')
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.strip() == "botkit.toml: OK"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["run"], "$BOTKIT_CONFIG, else ./botkit.toml, else ./config.example.toml"),
        (["handoff", "list"], "at most this many (default 100)"),
        (["data", "forget"], "on the web the conversation key (s:... for a visitor, u:USER_ID"),
        (["data", "purge"], "delete what has had no message for DAYS days"),
    ],
)
def test_help_says_the_defaults_and_what_ids_look_like(
    command: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert says in " ".join(capsys.readouterr().out.split())


def test_knowledge_without_the_plugin_names_the_file_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, 'url = "sqlite://"')
    for args in (["check"], ["search", "refunds?"]):
        assert main(["knowledge", *args, "-c", str(config)]) == 2
        err = capsys.readouterr().err
        assert f"botkit: error: invalid configuration in {config}:" in err
        assert "plugins.knowledge: no [plugins.knowledge] table, or it has enabled = false" in err


def test_run_on_a_port_in_use_fails_before_it_touches_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second `botkit run` on one machine found out only once its channel connected:
    # after loading the model and opening (maybe creating, migrating) the database.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "bot.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "bot.db"}"\n[backend]\nkind = "echo"\n'
            f'[connectors.web]\nhost = "127.0.0.1"\nport = {port}\n',
            encoding="utf-8",
        )
        assert main(["run", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"connectors.web.port: 127.0.0.1:{port} is in use already" in err
    assert not (tmp_path / "bot.db").exists()
