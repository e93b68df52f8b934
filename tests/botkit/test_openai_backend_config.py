"""``[backend.openai]`` settings added for real servers' quirks: what they accept."""

from __future__ import annotations

from typing import Any

import pytest

from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError


def config(**openai: Any) -> Settings:
    table = {"model": "m", **openai}
    return settings_from_mapping({"backend": {"kind": "openai", "openai": table}}, environ={})


def test_sampling_values_may_be_left_to_the_server() -> None:
    openai = config(temperature="server", top_p="server").backend.openai
    assert (openai.temperature, openai.top_p) == ("server", "server")
    assert config().backend.openai.context_tokens is None
    assert config().backend.openai.max_tokens_field == "auto"


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({"temperature": "warm"}, "backend.openai.temperature"),
        ({"temperature": 2.5}, "backend.openai.temperature"),
        ({"temperature": float("nan")}, "backend.openai.temperature"),
        ({"top_p": 0}, "backend.openai.top_p"),
        ({"max_tokens_field": "max_output_tokens"}, "backend.openai.max_tokens_field"),
        ({"context_tokens": 32}, "backend.openai.context_tokens"),
        ({"context_tokens": 512, "max_new_tokens": 512}, "backend.openai"),
    ],
)
def test_bad_values_name_their_key(table: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(**table)
    assert path in {p.path for p in caught.value.problems}


def test_check_config_names_what_openai_itself_refuses() -> None:
    from botkit.backends.preflight import model_problems

    url = "https://api.openai.com/v1"
    found = {p.path for p in model_problems(config(base_url=url, top_k=40))}
    assert found == {"backend.openai.api_key", "backend.openai.top_k"}
    assert not model_problems(config(base_url=url, api_key="sk-x"))
    assert not model_problems(config(top_k=40, repetition_penalty=1.1))  # a local server


@pytest.mark.parametrize(
    "url",
    [
        "https://eu.api.openai.com/v1",
        "https://myres.openai.azure.com/openai/v1",
        "https://myres.cognitiveservices.azure.com/openai/v1",
    ],
)
def test_check_config_knows_openais_regional_hosts_and_azure(url: str) -> None:
    # Only api.openai.com was recognised: these got no warning about top_k or the key.
    from botkit.backends.preflight import model_problems

    found = {p.path for p in model_problems(config(base_url=url, top_k=40))}
    assert found == {"backend.openai.api_key", "backend.openai.top_k"}
