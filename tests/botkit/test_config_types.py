"""Config: booleans and numbers are not taken for each other; strings still are read."""

from __future__ import annotations

import pytest

from botkit.config import settings_from_mapping
from botkit.errors import ConfigError

INT = "expected an integer, got boolean"
NUMBER = "expected a number, got boolean"
BOOL = "expected a boolean, got integer"


def problems(data: dict[str, object], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ=env or {})
    return [str(p) for p in info.value.problems]


def _table(path: str, value: object) -> dict[str, object]:
    *tables, key = path.split(".")
    tree: dict[str, object] = {key: value}
    for table in reversed(tables):
        tree = {table: tree}
    return tree


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("bot.history_turns", True, INT),
        ("bot.max_message_chars", True, INT),
        ("bot.rate_limit.messages", False, INT),
        ("store.sqlite_busy_timeout_ms", False, INT),
        ("backend.openai.top_k", True, INT),  # an optional integer
        ("bot.shutdown_grace_seconds", True, NUMBER),
        ("bot.rate_limit.enabled", 1, BOOL),
        ("store.auto_migrate", 0, BOOL),
        ("backend.engine.cuda_graphs", 1.0, "expected a boolean, got float"),
        # a connector's and a plugin's own config models
        ("connectors.web.port", True, INT),
        ("connectors.web.max_connections_per_ip", True, INT),
        ("connectors.web.serve_demo_page", 0, BOOL),
        ("connectors.web.enabled", 0, BOOL),
        ("connectors.slack.retry.max_attempts", True, INT),  # nested in a connector's
        ("plugins.handoff.keyword_max_chars", True, INT),
        ("plugins.handoff.webhook_timeout_seconds", False, NUMBER),
        ("plugins.handoff.inbox", 1, BOOL),
    ],
)
def test_a_boolean_is_not_a_number_nor_a_number_a_boolean(
    path: str, value: object, message: str
) -> None:
    # Lax validation took them as 1 / 0 / True, and check-config said nothing.
    assert f"{path}: {message}" in problems(_table(path, value))


def test_the_documented_strings_and_variables_are_still_read() -> None:
    settings = settings_from_mapping(
        {
            "bot": {
                "history_turns": "${TURNS}",
                "max_message_chars": "500",
                "shutdown_grace_seconds": 5,  # an integer for a float stays fine
                "rate_limit": {"enabled": "${LIMITS}", "window_seconds": "30"},
            },
            "store": {"auto_migrate": "true"},
            "connectors": {"web": {"port": "${PORT}", "serve_demo_page": "false"}},
        },
        environ={"TURNS": "3", "LIMITS": "false", "PORT": "8081"},
    )
    assert settings.bot.history_turns == 3
    assert settings.bot.max_message_chars == 500
    assert settings.bot.shutdown_grace_seconds == 5.0
    assert settings.bot.rate_limit.enabled is False
    assert settings.bot.rate_limit.window_seconds == 30.0
    assert settings.store.auto_migrate is True


def test_a_mistyped_value_is_reported_once_with_the_other_problems() -> None:
    found = problems({"bot": {"history_turns": True, "max_message_chars": -1}})
    assert found.count(f"bot.history_turns: {INT}") == 1
    assert any(p.startswith("bot.max_message_chars:") for p in found)
    assert not any(p.startswith("bot.history_turns:") and INT not in p for p in found)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "${SECONDS}"])
@pytest.mark.parametrize(
    "path",
    [
        "bot.shutdown_grace_seconds",
        "bot.rate_limit.window_seconds",
        "backend.engine.temperature",  # its own allow_inf_nan=False said "input should be..."
        "connectors.slack.retry.initial_backoff_s",
        "plugins.handoff.webhook_timeout_seconds",
    ],
)
def test_nan_and_infinities_must_be_finite_numbers(path: str, value: object) -> None:
    # nan said "input should be less than or equal to 3600", which it is not about.
    found = problems(_table(path, value), env={"SECONDS": "nan"})
    origin = " (from ${SECONDS})" if isinstance(value, str) else ""
    expected = f"{path}: must be a finite number{origin}"
    assert [p for p in found if p.startswith(f"{path}:")] == [expected]


@pytest.mark.parametrize(
    ("written", "env", "on"),
    [
        ("false", {}, False),
        ("true", {}, True),
        ("${FEEDBACK_ON:-false}", {}, False),  # off unless the environment says so
        ("${FEEDBACK_ON:-false}", {"FEEDBACK_ON": "yes"}, True),
        ("${FEEDBACK_ON}", {"FEEDBACK_ON": "0"}, False),
    ],
)
def test_a_component_is_switched_on_and_off_by_a_string_or_a_variable(
    written: str, env: dict[str, str], on: bool
) -> None:
    # Before: "expected a boolean, got string" for [plugins.X] and [connectors.X] alone,
    # while every other yes/no setting reads "false" and ${VAR}s.
    settings = settings_from_mapping(
        {
            "plugins": {"feedback": {"enabled": written}},
            # Disabled, a table's ${VAR}s need not be set, as with enabled = false.
            "connectors": {"telegram": {"enabled": written, "token": "${TG_TOKEN}"}},
        },
        environ={**env, **({"TG_TOKEN": "123456:" + "A" * 35} if on else {})},
    )
    assert settings.plugins["feedback"]["enabled"] is on
    assert settings.connectors["telegram"]["enabled"] is on
    # The variable's value is read as a switch, not kept as a secret to redact in logs.
    assert not settings.secret_values & {"yes", "0", "true", "false"}


@pytest.mark.parametrize(("value", "got"), [("maybe", "string"), (1, "integer")])
def test_an_enabled_that_is_no_yes_or_no_is_refused(value: object, got: str) -> None:
    found = problems({"plugins": {"feedback": {"enabled": value}}})
    assert found == [f"plugins.feedback.enabled: expected a boolean, got {got}"]
