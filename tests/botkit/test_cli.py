"""The botkit command: version, check-config, db, and a chat driven through a pty."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from botkit.cli import chat_settings, main
from botkit.config import load_settings
from botkit.store import migrate

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


# The CLI installs its log handler on the root logger; take it off after each test.


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        '[store]\nurl = "sqlite:///chat.db"\n'
        '[backend]\nkind = "echo"\n'
        '[connectors.console]\nuser = "alice"\n' + extra,
        encoding="utf-8",
    )
    return path


def botkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botkit", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_version(tmp_path: Path) -> None:
    result = botkit("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == "botkit 0.1.0"


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_config(tmp_path)
    assert main(["check-config", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"{good}: OK"

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[bot]\nmax_message_chars = "many"\n[connectors.console]\nprompt = 1\ncolor = "x"\n'
        '[backend.engine]\nmodel = "${MODEL_PATH}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in ENV.items() if k != "MODEL_PATH"}
    result = subprocess.run(
        [sys.executable, "-m", "botkit", "check-config", str(bad)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"{bad}: 4 problems"
    assert "  backend.engine.model: environment variable MODEL_PATH is not set" in lines
    assert "  bot.max_message_chars: expected an integer, got string" in lines
    assert "  connectors.console.prompt: expected a string, got integer" in lines
    assert any(line.startswith("  connectors.console.color: unknown key") for line in lines)

    missing = botkit("check-config", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stdout


def test_check_config_finds_models_that_are_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A typo in a model path used to pass check-config and stop `botkit run` after its
    # start-up; nothing is loaded or downloaded to tell.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # online: a hub id is not looked up
    checkpoint = tmp_path / "opus-mt-es-en"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()

    def check(engine_model: str, translators: list[str]) -> list[str]:
        config = write_config(tmp_path)
        config.write_text(
            config.read_text(encoding="utf-8").replace('kind = "echo"', 'kind = "engine"')
            + f"[backend.engine]\nmodel = {json.dumps(engine_model)}\n"
            + f'[language.translator]\nkind = "engine"\nmodel = {json.dumps(translators)}\n',
            encoding="utf-8",
        )
        code = main(["check-config", str(config)])
        lines = capsys.readouterr().out.splitlines()
        assert code == (0 if lines == [f"{config}: OK"] else 2), lines
        return lines[1:]

    assert check("someone/some-model", [str(checkpoint)]) == []  # a hub id: not looked up
    problems = check(str(tmp_path / "smolm2"), [str(checkpoint), str(empty), "a/b"])
    assert [p.split(": ", 1)[0].strip() for p in problems] == [
        "backend.engine.model", "language.translator.model[1]"
    ]  # fmt: skip
    assert f"'{tmp_path / 'smolm2'}' does not exist" in problems[0]
    assert f"{empty} is not a model directory: no config.json" in problems[1]
    (problem,) = check(str(empty), [str(checkpoint)])
    assert problem.startswith(f"  backend.engine.model: {empty} is not a model directory")
    # Offline, a hub id must be in the Hugging Face cache, or `botkit run` cannot load it.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    (problem,) = check("someone/some-model", [str(checkpoint)])
    assert problem.startswith("  backend.engine.model: model 'someone/some-model' is not")
    assert "HF_HUB_OFFLINE" in problem


def test_db_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    os.chdir(tmp_path)  # the SQLite URL is relative to the working directory
    try:
        assert main(["db", "current", "-c", config]) == 1  # read-only: creates nothing
        assert f"no database at {tmp_path / 'chat.db'}" in capsys.readouterr().err
        assert not (tmp_path / "chat.db").exists()
        assert main(["db", "upgrade", "-c", config]) == 0
        assert main(["db", "current", "-c", config]) == 0
        assert "(up to date)" in capsys.readouterr().out
        # A downgrade deletes data: it says what, and waits for --yes.
        assert main(["db", "downgrade", "0004", "-c", config]) == 1
        err = capsys.readouterr().err
        assert "0006: customer_files: the bytes" in err and "0005: feedback: " in err
        assert "``" not in err  # the migrations' docstring markup is not the operator's
        assert "0004:" not in err and "--yes" in err
        assert main(["db", "current", "-c", config]) == 0
        assert "(up to date)" in capsys.readouterr().out  # nothing was changed
        assert main(["db", "downgrade", "0099", "-c", config]) == 1
        assert f"cannot downgrade from {migrate.head()} to 0099" in capsys.readouterr().err
        assert main(["db", "downgrade", "base", "--yes", "-c", config]) == 0
        assert main(["db", "current", "-c", config]) == 0
        assert "no schema" in capsys.readouterr().out
        assert main(["db", "downgrade", "base", "-c", config]) == 0  # nothing to undo
        # A database a newer botkit migrated: this one says so, not "upgrade".
        assert main(["db", "upgrade", "-c", config]) == 0
        with sqlite3.connect(tmp_path / "chat.db") as db:
            db.execute("UPDATE botkit_schema_version SET version_num = '0099'")
        capsys.readouterr()
        assert main(["db", "current", "-c", config]) == 0
        assert "0099 (newer than this botkit" in capsys.readouterr().out
        assert main(["check-config", "-c", config]) == 0  # -c works here too
    finally:
        os.chdir(REPO)


def test_errors_become_messages_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[store.extra]\n")
    assert main(["chat", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("botkit: error: invalid configuration")
    assert "store.extra: unknown key" in err
    assert "Traceback" not in err

    no_schema = tmp_path / "strict.toml"
    no_schema.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/fresh.db"\nauto_migrate = false\n'
        '[backend]\nkind = "echo"\n[connectors.console]\n',
        encoding="utf-8",
    )
    assert main(["run", "-c", str(no_schema)]) == 3
    assert "run `botkit db upgrade -c FILE`" in capsys.readouterr().err


def test_chat_talks_in_the_terminal_whatever_the_file_says_of_the_console(
    tmp_path: Path,
) -> None:
    # A service's file may switch the console off for `run`; `chat` is asking for it.
    for console in ("", "[connectors.console]\nenabled = false\n"):
        config = tmp_path / "bot.toml"
        config.write_text(
            f'[backend]\nkind = "echo"\n[connectors.web]\n{console}', encoding="utf-8"
        )
        chat = chat_settings(load_settings(config))
        assert chat.connectors == {"console": {}}
    config.write_text('[connectors.console]\nenabled = true\nuser = "bob"\n', encoding="utf-8")
    assert chat_settings(load_settings(config)).connectors == {"console": {"user": "bob"}}


def test_chat_takes_no_port_of_the_service_and_answers_only_its_own_lines(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(
        '[backend]\nkind = "echo"\n[metrics]\nlisten = "127.0.0.1:9464"\n'
        '[plugins.handoff]\napi_listen = "127.0.0.1:8081"\napi_token = "' + "t" * 32 + '"\n'
        "[plugins.feedback]\n",
        encoding="utf-8",
    )
    chat = chat_settings(load_settings(config))
    # The agent API's port is the running service's, as the metrics' is.
    assert chat.metrics.listen == ""
    assert chat.plugins["handoff"] == {"api_token": "t" * 32}
    assert chat.plugins["feedback"] == {}
    # What an earlier session left unanswered is not answered in this one.
    assert chat.bot.resume_unanswered_seconds == 0


def spawn_chat(tmp_path: Path, command: str = "chat") -> pexpect.spawn:
    config = write_config(tmp_path)
    return pexpect.spawn(
        sys.executable,
        ["-m", "botkit", command, "-c", str(config)],
        cwd=str(tmp_path), env=ENV, encoding="utf-8", timeout=30,
    )  # fmt: skip


def test_chat_through_a_pty_is_stored(tmp_path: Path) -> None:
    child = spawn_chat(tmp_path)
    try:
        child.expect_exact("you> ")
        for line in ("hello", "where is my order 42?", "thanks, bye"):
            child.sendline(line)
            child.expect_exact(f"bot> echo: {line}\r\n")
            child.expect_exact("you> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    with sqlite3.connect(tmp_path / "chat.db") as db:
        rows = db.execute(
            "SELECT m.seq, m.direction, m.text FROM messages m JOIN conversations c "
            "ON c.id = m.conversation_id WHERE c.channel = 'console' "
            "AND c.conversation_key = 'console:alice' ORDER BY m.seq"
        ).fetchall()
    assert rows == [
        (1, "in", "hello"),
        (2, "out", "echo: hello"),
        (3, "in", "where is my order 42?"),
        (4, "out", "echo: where is my order 42?"),
        (5, "in", "thanks, bye"),
        (6, "out", "echo: thanks, bye"),
    ]


@pytest.mark.parametrize("how", ["sigint", "sigterm", "eof"])
def test_chat_and_run_stop_cleanly(tmp_path: Path, how: str) -> None:
    child = spawn_chat(tmp_path, "run" if how == "sigterm" else "chat")
    try:
        child.expect_exact("you> ")
        child.sendline("ping")
        child.expect_exact("bot> echo: ping")
        child.expect_exact("you> ")
        if how == "sigint":
            child.sendintr()
        elif how == "sigterm":
            child.kill(signal.SIGTERM)
        else:
            child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0 and child.signalstatus is None, child.before
    with sqlite3.connect(tmp_path / "chat.db") as db:
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert count == 2
