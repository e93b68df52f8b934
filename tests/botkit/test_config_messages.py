"""Config problems say where a wrong value came from, and never show a ${VAR} value."""

from __future__ import annotations

import pytest

from botkit.config import settings_from_mapping
from botkit.errors import ConfigError


def problems(data: dict[str, object], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ=env or {})
    return [str(p) for p in info.value.problems]


def test_a_value_from_a_variable_names_the_variable_not_the_value() -> None:
    # It said "expected an integer, got string": which string, from where?
    found = problems({"connectors": {"web": {"port": "${P}"}}}, env={"P": "abc"})
    assert found == ["connectors.web.port: expected an integer, got string (from ${P})"]


def test_every_problem_with_an_expanded_value_names_its_variables() -> None:
    found = problems(
        {"bot": {"history_turns": "${A}${B:-0}", "max_message_chars": "${BIG}"}},
        env={"A": "9999", "BIG": "99999999"},
    )
    assert "bot.history_turns: input should be less than or equal to 10000 (from ${A}, ${B})" in (
        found
    )
    assert any(p.endswith("(from ${BIG})") for p in found)
    assert not any("99999999" in p for p in found)


def test_a_string_written_in_the_file_is_still_not_shown() -> None:
    # A token pasted under the wrong key would be shown otherwise.
    token = "xoxb-" + "1" * 40
    assert problems({"connectors": {"web": {"port": token}}}) == [
        "connectors.web.port: expected an integer, got string"
    ]


SLACK = {"bot_token": "${BOT}"}
SECRETS = {"BOT": "xoxb-1-secret", "WEB_A": "a" * 20, "WEB_B": "b" * 20}


@pytest.mark.parametrize(
    ("connector", "section", "path"),
    [
        ("slack", SLACK, "connectors.slack.signing_secret"),
        ("slack", {**SLACK, "signing_secret": "${EMPTY}"}, "connectors.slack.signing_secret"),
        ("slack", {**SLACK, "mode": "socket"}, "connectors.slack.app_token"),
        ("telegram", {"mode": "webhook"}, "connectors.telegram.webhook.url"),
        (
            "telegram",
            {"mode": "webhook", "webhook": {"url": "https://bot.example.com/tg"}},
            "connectors.telegram.webhook.secret_token",
        ),
        ("web", {"require_identity": True}, "connectors.web.require_identity"),
        (
            "web",
            {"site_secret": "${WEB_A}", "user_token_secret": "${WEB_A}"},
            "connectors.web.user_token_secret",
        ),
        ("web", {"trusted_proxies": ["10.0.0.5"]}, "connectors.web.trusted_proxies"),
        (
            "web",
            {"max_file_bytes": 2_000_000, "file_bytes_per_ip_hour": 1_000_000},
            "connectors.web.file_bytes_per_ip_hour",
        ),
    ],
)
def test_a_key_a_mode_or_another_key_needs_is_named(
    connector: str, section: dict[str, object], path: str
) -> None:
    # They were reported on the whole table (connectors.slack: mode 'http' needs...).
    env = {**SECRETS, "EMPTY": ""}
    if connector == "telegram":
        section = {**section, "token": "${TG}"}
        env["TG"] = "123456:" + "A" * 35
    found = problems({"connectors": {connector: section}}, env=env)
    assert [p.split(":", 1)[0] for p in found] == [path], found
    assert not any(secret in p for p in found for secret in SECRETS.values())


def test_a_missing_signing_secret_is_reported_with_the_other_problems() -> None:
    found = problems({"connectors": {"slack": {**SLACK, "port": 70000}}}, env=SECRETS)
    paths = {p.split(":", 1)[0] for p in found}
    assert paths == {"connectors.slack.signing_secret", "connectors.slack.port"}


def test_a_list_too_long_says_so_in_the_file_s_words() -> None:
    # Pydantic's text named the Python type: "tuple should have at most 200 items after
    # validation, not 201"; the file has a list.
    examples = [f"example {i}" for i in range(201)]
    intent = {"name": "a", "action": "reply", "reply": {"en": "hi"}, "examples": examples}
    found = problems({"plugins": {"intents": {"intent": [intent]}}})
    assert "plugins.intents.intent[0].examples: must have at most 200 items, not 201" in found


def test_a_working_language_that_names_no_language_is_a_problem() -> None:
    # "zz" is shaped like a tag: it passed, and every customer was then "unlisted".
    assert problems({"bot": {"working_language": "zz"}}) == [
        "bot.working_language: 'zz' is not a known language"
    ]
    assert problems({"bot": {"working_language": "englsh"}})  # no tag at all, as before
