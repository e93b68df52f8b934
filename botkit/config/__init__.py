"""Configuration: one TOML file validated into a frozen, typed settings tree.

>>> settings = load_settings("botkit.toml")        # doctest: +SKIP
>>> settings.bot.max_message_chars                  # doctest: +SKIP
4000

Secrets come from the environment through ``${VAR}`` references and are typed
``SecretStr`` by the sections that hold them, so they never print.
"""

from __future__ import annotations

from pydantic import SecretStr

from botkit.config._literal_secrets import literal_secrets_in
from botkit.config.components import (
    ComponentSpec,
    resolve_components,
    resolve_components_or_raise,
)
from botkit.config.interpolate import interpolate
from botkit.config.loader import check_config, load_settings, settings_from_mapping
from botkit.config.problems import problems_from_validation
from botkit.config.settings import (
    BackendSettings,
    BotSettings,
    EchoSettings,
    EngineSettings,
    LanguageSettings,
    LoggingSettings,
    MetricsSettings,
    RateLimitSettings,
    Section,
    Settings,
)

__all__ = [
    "BackendSettings",
    "BotSettings",
    "ComponentSpec",
    "EchoSettings",
    "EngineSettings",
    "LanguageSettings",
    "LoggingSettings",
    "MetricsSettings",
    "RateLimitSettings",
    "SecretStr",
    "Section",
    "Settings",
    "check_config",
    "interpolate",
    "literal_secrets_in",
    "load_settings",
    "problems_from_validation",
    "resolve_components",
    "resolve_components_or_raise",
    "settings_from_mapping",
]
