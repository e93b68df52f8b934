"""``[connectors.slack]`` validation: secrets from the environment, mode requirements."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from botkit.config import settings_from_mapping
from botkit.errors import ConfigError
from connectors.slack import SlackConfig

ROOT = Path(__file__).parents[3]
ENV = {"BOT": "xoxb-1-secret", "SIGN": "signing-secret-value", "APP": "xapp-1-secret"}


def load(section: dict[str, Any]) -> SlackConfig:
    settings = settings_from_mapping({"connectors": {"slack": section}}, environ=ENV)
    return SlackConfig.model_validate(settings.connectors["slack"])


def problems(section: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"connectors": {"slack": section}}, environ=ENV)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_http_config_from_environment_keeps_secrets_secret() -> None:
    config = load({"bot_token": "${BOT}", "signing_secret": "${SIGN}"})
    assert config.mode == "http" and config.path == "/slack/events"
    assert config.bot_token.get_secret_value() == "xoxb-1-secret"
    shown = repr(config) + str(config) + config.model_dump_json()
    assert "xoxb-1-secret" not in shown and "signing-secret-value" not in shown
    assert config.update_interval_s == 1.5 and config.channel_send_interval_s == 1.0
    assert config.updates_per_minute == 50.0  # Slack's Tier 3, per workspace


def test_socket_config() -> None:
    config = load({"mode": "socket", "bot_token": "${BOT}", "app_token": "${APP}"})
    assert config.app_token is not None and config.signing_secret is None


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"bot_token": "${BOT}"}, "connectors.slack.signing_secret"),  # http needs it
        ({"mode": "socket", "bot_token": "${BOT}"}, "connectors.slack.app_token"),
        ({"bot_token": "${APP}", "signing_secret": "${SIGN}"}, "connectors.slack.bot_token"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "app_token": "${BOT}"}, "app_token"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "mode": "rtm"}, "connectors.slack.mode"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "colour": 1}, "connectors.slack.colour"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "path": "no-slash"}, "path"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "max_message_chars": 9000}, "max_"),
        ({"bot_token": "${BOT}", "signing_secret": "x", "retry": {"tries": 3}}, "retry.tries"),
        ({"bot_token": "${MISSING}", "signing_secret": "x"}, "connectors.slack.bot_token"),
    ],
)
def test_invalid_sections_name_the_key(section: dict[str, Any], path: str) -> None:
    found = problems(section)
    assert any(path in p for p in found), found
    assert not any("xoxb-1-secret" in p or "xapp-1-secret" in p for p in found)


def test_disabled_section_is_not_validated() -> None:
    settings = settings_from_mapping({"connectors": {"slack": {"enabled": False}}}, environ={})
    assert settings.connectors["slack"] == {"enabled": False}


def test_manifest_subscribes_to_what_the_connector_reads() -> None:
    manifest = (Path(__file__).parents[3] / "connectors/slack/manifest.yaml").read_text()
    lines = {line.split("#")[0].strip() for line in manifest.splitlines()}
    events = ["app_mention", "message.im", "message.channels", "message.groups", "message.mpim"]
    scopes = ["app_mentions:read", "chat:write", "im:history", "channels:history", "users:read"]
    for name in events + scopes:
        assert f"- {name}" in lines, name
    assert "request_url: https://bot.example.com/slack/events" in lines  # the default path
    assert SlackConfig.model_fields["path"].default == "/slack/events"


def test_streaming_defaults_to_auto_and_names_a_wrong_value() -> None:
    base = {"bot_token": "${BOT}", "signing_secret": "${SIGN}"}
    assert load(base).streaming == "auto"
    assert load({**base, "streaming": "edit"}).streaming == "edit"
    found = problems({**base, "streaming": "fast"})
    assert any(p.startswith("connectors.slack.streaming:") for p in found), found


def _docs_block() -> dict[str, Any]:
    docs = (ROOT / "docs/slack.md").read_text()
    block = docs.split("## Configuration", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    return dict(tomllib.loads(block)["connectors"]["slack"])


def _example_block() -> dict[str, Any]:
    """config.example.toml's commented-out [connectors.slack], as a user uncomments it."""
    lines = (ROOT / "config.example.toml").read_text().splitlines()
    start = lines.index("# [connectors.slack]")
    kept = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        line = line.removeprefix("# ")
        if not line.startswith("#"):
            kept.append(line)
    return dict(tomllib.loads("\n".join(kept))["connectors"]["slack"])


@pytest.mark.parametrize("snippet", [_docs_block, _example_block])
def test_shipped_snippets_work_in_both_modes(snippet: Callable[[], dict[str, Any]]) -> None:
    # Audit L4: Socket Mode needs no signing secret, but the snippets' "${VAR}" made an
    # unset SLACK_SIGNING_SECRET an error; HTTP mode still names it when it is empty.
    section = {**snippet(), "mode": "socket", "app_token": "${SLACK_APP_TOKEN}"}
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    settings = settings_from_mapping({"connectors": {"slack": section}}, environ=env)
    assert SlackConfig.model_validate(settings.connectors["slack"]).mode == "socket"
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"connectors": {"slack": {**snippet(), "mode": "http"}}}, environ=env)
    found = [f"{p.path}: {p.message}" for p in info.value.problems]
    assert any(p.startswith("connectors.slack.signing_secret: ") for p in found), found
