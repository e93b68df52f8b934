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
