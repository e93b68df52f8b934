"""Secrets typed into the config file are pointed out (check-config, `botkit run`),
by key path and never by value; ``${VAR}`` references are not."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.cli._config import load
from botkit.config._literal_secrets import literal_secrets

FILE = """
[store]
url = "postgresql://bot:hunter2-in-the-file@db.internal/botkit"

[backend]
kind = "echo"

[backend.openai]
api_key = "${OPENAI_API_KEY:-}"

[connectors.telegram]
enabled = false
token = "123456:literal-telegram-token"
secret_token = ""

[connectors.telegram.webhook]
url = "https://bot.example.com/telegram/webhook"

[connectors.slack]
enabled = false
bot_token = "xoxb-${SLACK_TEAM}-and-more"
signing_secret = "  "

[plugins.handoff]
api_token = "${BOTKIT_AGENT_TOKEN:-}"
webhook_url = "https://hooks.example.com/services/T0/B0/literal"

[plugins.handoff.agents]
Ana = "ana-literal-inbox-token-0123456789"
"Bo Li" = "${BOTKIT_AGENT_BO}"

[[plugins.shop.accounts]]
name = "eu"
token = "eu-literal-shop-token"
api_key = "${SHOP_KEY:-a-literal-default-key}"
base_url = "https://shop:literal-pw@api.example.com/"

[engine_like]
max_new_tokens = 128
tokenizer = "some/literal"
stop_token = 7
"""


def test_only_secrets_written_out_are_named() -> None:
    assert literal_secrets(tomllib.loads(FILE)) == [
        "store.url",
        "connectors.telegram.token",
        "connectors.slack.bot_token",  # "xoxb-" and "-and-more" are in the file
        "plugins.handoff.webhook_url",
        "plugins.handoff.agents.Ana",
        "plugins.shop.accounts[0].token",
        "plugins.shop.accounts[0].api_key",
        "plugins.shop.accounts[0].base_url",
    ]


def test_the_shipped_example_has_none() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    assert literal_secrets(tomllib.loads(example.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///botkit.db",
        "postgresql://bot@db/botkit",
        "postgresql://bot:${BOTKIT_DB_PASSWORD}@db/botkit",
        "postgresql://db/botkit?password=${PW}",
        "not a url: at all @ here",
    ],
)
def test_database_urls_without_a_written_password_are_fine(url: str) -> None:
    assert literal_secrets({"store": {"url": url}}) == []


def _config(tmp_path: Path, secret: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "chat.db"}"\n[backend]\nkind = "echo"\n'
        f'[connectors.console]\n[plugins.handoff]\napi_token = "{secret}"\n',
        encoding="utf-8",
    )
    return path


def test_check_config_notes_a_literal_secret_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "a-literal-agent-api-token-0123456789"
    config = _config(tmp_path, secret)
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{config}: OK"
    assert lines[1] == f"  note: {_note('plugins.handoff.api_token')}"
    assert secret not in out

    # The same through the environment: nothing to say.
    monkeypatch.setenv("AGENT_TOKEN", secret)
    config.write_text(
        config.read_text(encoding="utf-8").replace(f'"{secret}"', '"${AGENT_TOKEN}"'),
        encoding="utf-8",
    )
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"{config}: OK"


def test_run_warns_once_at_start_and_one_shot_commands_do_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "a-literal-agent-api-token-0123456789"
    config = str(_config(tmp_path, secret))
    with caplog.at_level(logging.WARNING, logger="botkit"):
        load(config)  # as `botkit run` loads it
    notes = [r.getMessage() for r in caplog.records if "written in the config" in r.getMessage()]
    assert notes == [f"config: {_note('plugins.handoff.api_token')}"]
    assert secret not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="botkit"):
        load(config, quiet=True)  # `chat`, `data`, `handoff`: their output is the result
        load(config, sections=("store",))
    assert "written in the config" not in caplog.text


def _note(key: str) -> str:
    return (
        f"{key} is a secret written in the config file; keep it in the environment "
        'instead (a "${VAR}" reference), so the file can be shared safely'
    )
