"""Config: defaults, key paths in errors, expected types, ${VAR} interpolation, secrets."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any

import annotated_types as at
import pytest
from pydantic import BaseModel

from botkit._logging import RedactingFormatter, configure_logging
from botkit.config import (
    LoggingSettings,
    Settings,
    check_config,
    interpolate,
    load_settings,
    settings_from_mapping,
)
from botkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def problems(data: dict[str, object], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ=env or {})
    return [str(p) for p in info.value.problems]


def test_defaults() -> None:
    settings = Settings()
    assert settings.bot.max_message_chars == 4096
    assert settings.bot.working_language == "en"
    assert settings.store.url == "sqlite+aiosqlite:///botkit.db"
    assert settings.backend.kind == "auto"
    assert settings.backend.engine.model == "smollm2"
    with pytest.raises(Exception, match="frozen"):
        settings.bot.name = "x"  # type: ignore[misc]


def test_example_config_is_valid_and_matches_the_documented_defaults() -> None:
    settings = load_settings(REPO / "config.example.toml", environ={})
    assert settings.connectors["web"].get("host", "127.0.0.1") == "127.0.0.1"
    assert settings.store.url.endswith("///botkit.db")
    assert settings.backend.kind == "auto"
    assert settings.backend.engine.model == "smollm2"
    assert settings.bot == Settings().bot  # the file documents the defaults, not others
    assert settings.backend == Settings().backend


def test_unknown_keys_name_the_full_path() -> None:
    found = problems(
        {
            "bot": {"max_mesage_chars": 10, "rate_limit": {"burst": 3}},
            "botz": {},
            "backend": {"engine": {"temprature": 0.5}},
        }
    )
    assert "bot.max_mesage_chars: unknown key (did you mean 'max_message_chars'?)" in found
    assert any(p.startswith("bot.rate_limit.burst: unknown key") for p in found)
    assert any(p.startswith("botz: unknown key") for p in found)
    assert "backend.engine.temprature: unknown key (did you mean 'temperature'?)" in found


def test_wrong_types_name_path_and_expected_type() -> None:
    found = problems(
        {
            "bot": {"max_message_chars": "lots", "history_turns": [1]},
            "logging": {"json": "sometimes"},
            "backend": {"kind": "gpu", "engine": {"top_p": 2.0}},
            "store": {"url": 5},
            "connectors": {"web": "yes"},
        }
    )
    assert "bot.max_message_chars: expected an integer, got string" in found
    assert "bot.history_turns: expected an integer, got array" in found
    assert "logging.json: expected a boolean, got string" in found
    assert "backend.kind: expected one of 'echo', 'engine', 'openai' or 'auto'" in found
    assert any(
        p.startswith("backend.engine.top_p: input should be less than or equal to 1") for p in found
    )
    assert "store.url: expected a string, got integer" in found
    assert "connectors.web: expected a table, got string" in found


def test_secret_values_never_appear_in_errors() -> None:
    found = problems({"bot": {"max_message_chars": "${LIMIT}"}}, env={"LIMIT": "s3cr3t-value"})
    assert found == ["bot.max_message_chars: expected an integer, got string (from ${LIMIT})"]


def test_connector_sections_are_validated_by_the_connector() -> None:
    found = problems({"connectors": {"console": {"prompt": 3, "colour": "red"}}})
    assert "connectors.console.prompt: expected a string, got integer" in found
    assert any(p.startswith("connectors.console.colour: unknown key") for p in found)


def test_unknown_and_disabled_components() -> None:
    found = problems({"connectors": {"carrier_pigeon": {}}, "plugins": {"nope": {"a": 1}}})
    assert any(
        p.startswith("connectors.carrier_pigeon: no connector named 'carrier_pigeon' is installed")
        for p in found
    )
    assert any(p.startswith("plugins.nope: no plugin named 'nope'") for p in found)
    # Disabled sections are not loaded, so an uninstalled one is fine.
    settings = settings_from_mapping(
        {"connectors": {"carrier_pigeon": {"enabled": False, "anything": 1}}}, environ={}
    )
    assert "carrier_pigeon" in settings.connectors
    assert problems({"plugins": {"x": {"enabled": "perhaps"}}}) == [
        "plugins.x.enabled: expected a boolean, got string"
    ]
    # ("no" is a yes/no, as for every other boolean: tests/botkit/test_config_types.py.)
    assert "x" in settings_from_mapping({"plugins": {"x": {"enabled": "no"}}}, environ={}).plugins


def test_env_interpolation() -> None:
    env = {"NAME": "Ada", "EMPTY": "", "TOKEN": "tok-123456"}
    settings = settings_from_mapping(
        {
            "bot": {
                "name": "${NAME} bot",
                "system_prompt": "cost: $5, literal $${NAME}, default ${MISSING:-none}",
                "busy_reply": "${EMPTY:-fallback}",
                "fallback_reply": "${TOKEN}",
            },
            "store": {"url": "sqlite:///${NAME}.db"},
        },
        environ=env,
    )
    assert settings.bot.name == "Ada bot"
    assert settings.bot.system_prompt == "cost: $5, literal ${NAME}, default none"
    assert settings.bot.busy_reply == "fallback"
    assert settings.store.url == "sqlite+aiosqlite:///Ada.db"
    assert "tok-123456" in settings.secret_values


def test_env_interpolation_problems_name_variable_and_path() -> None:
    found = problems(
        {
            "bot": {"name": "${BOT_NAME}", "system_prompt": "${not valid}"},
            "connectors": {"web": {"origins": ["ok", "${ORIGIN}"]}},
            "store": {"url": "x${UNCLOSED"},
        }
    )
    assert "bot.name: environment variable BOT_NAME is not set" in found
    assert "bot.system_prompt: invalid environment variable reference '${not valid}'" in found
    assert "connectors.web.origins[1]: environment variable ORIGIN is not set" in found
    assert any(p.startswith("store.url: unterminated '${'") for p in found)


def test_interpolation_happens_after_parsing(tmp_path: Path) -> None:
    # A value with quotes and newlines cannot break the TOML syntax.
    path = tmp_path / "c.toml"
    path.write_text('[bot]\nname = "${NAME}"\n', encoding="utf-8")
    settings = load_settings(path, environ={"NAME": 'a "quoted"\nname'})
    assert settings.bot.name == 'a "quoted"\nname'
    assert interpolate({"k": "${A}"}, {"A": "${B}"}).value == {"k": "${B}"}  # no recursion


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[bot\nname = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_settings(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(binary)


def test_check_config_lists_everything(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[bot]\nmax_message_chars = "x"\nnope = 1\n', encoding="utf-8")
    found = [str(p) for p in check_config(path, environ={})]
    assert found == [
        "bot.max_message_chars: expected an integer, got string",
        "bot.nope: unknown key",
    ]


def test_secrets_are_redacted_from_logs() -> None:
    settings = settings_from_mapping(
        {"store": {"url": "postgresql://bot:${DB_PASSWORD}@db/bot"}},
        environ={"DB_PASSWORD": "pa55word-xyz"},
    )
    assert "pa55word-xyz" not in repr(settings)
    stream = io.StringIO()
    configure_logging(
        LoggingSettings(level="info", json=True), secrets=settings.secret_values, stream=stream
    )
    try:
        logging.getLogger("botkit.test").warning("connect to %s failed", settings.store.url)
    finally:
        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if h.get_name() != "botkit"
        ]
    line = stream.getvalue()
    assert "pa55word-xyz" not in line
    assert "bot:***@db" in line
    assert '"level": "WARNING"' in line


def test_connector_tokens_never_appear_in_settings_repr() -> None:
    settings = settings_from_mapping(
        {"connectors": {"console": {"user": "${BOT_TOKEN}"}}},
        environ={"BOT_TOKEN": "xoxb-very-secret-token"},
    )
    assert settings.connectors["console"]["user"] == "xoxb-very-secret-token"
    assert "xoxb-very-secret-token" not in repr(settings)
    assert "xoxb-very-secret-token" not in str(settings)


def test_short_values_are_not_treated_as_secrets() -> None:
    formatter = RedactingFormatter(json_lines=False, secrets={"en", "8080", "longsecret"})
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "en 8080 longsecret", None, None)
    assert formatter.format(record).endswith("en 8080 ***")


@pytest.mark.parametrize("json_lines", [False, True])
def test_secrets_with_quotes_and_backslashes_are_redacted(json_lines: bool) -> None:
    secret = 'Tr0ub4dor"&3\\x'  # JSON escapes both: redaction must come before encoding
    formatter = RedactingFormatter(json_lines=json_lines, secrets={secret})
    try:
        raise RuntimeError(f"refused {secret}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "creds %s", (secret,), exc_info)
    line = formatter.format(record)
    assert "Tr0ub4dor" not in line and "***" in line


def test_a_reference_nested_in_a_default_is_a_problem() -> None:
    found = problems({"store": {"url": "${BOTKIT_DB:-sqlite:///${HOME}/botkit.db}"}})
    assert any(p.startswith("store.url: the default of ${BOTKIT_DB}") for p in found)


def test_a_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "botkit.toml"
    path.write_bytes('\ufeff[bot]\nname = "shop"\n'.encode())
    assert load_settings(path, environ={}).bot.name == "shop"


@pytest.mark.parametrize("value", [float("inf"), 1e11])
def test_an_endless_resume_window_is_a_problem_not_a_crash(value: float) -> None:
    found = problems({"bot": {"resume_unanswered_seconds": value}})
    assert any(p.startswith("bot.resume_unanswered_seconds:") for p in found)


@pytest.mark.parametrize("value", [1e14, 1e308, float("inf")])
def test_an_endless_shutdown_grace_is_a_problem_not_a_crash(value: float) -> None:
    # It used to pass check-config and then overflow a timedelta when the bot started.
    found = problems({"bot": {"shutdown_grace_seconds": value}})
    assert any(p.startswith("bot.shutdown_grace_seconds:") for p in found), found


@pytest.mark.parametrize("connector", ["web", "slack", "telegram"])
@pytest.mark.parametrize("host", ["not a host!!", "http://0.0.0.0", "", "127.0.0.1:8080"])
def test_a_listen_host_that_cannot_be_bound_is_a_problem(connector: str, host: str) -> None:
    # It used to pass check-config and stop `botkit run` at the bind.
    found = problems({"connectors": {connector: {"host": host}}})
    assert any(p.startswith(f"connectors.{connector}.host:") for p in found), found


def test_a_disabled_tables_variables_need_not_be_set() -> None:
    # Switching a channel off keeps its token reference for when it comes back.
    off = {"enabled": False, "token": "${NOT_SET_ANYWHERE}", "mode": "bogus"}
    settings = settings_from_mapping({"connectors": {"telegram": off}}, environ={})
    assert settings.connectors["telegram"] == {"enabled": False}
    found = problems({"connectors": {"telegram": {**off, "enabled": True}}})
    assert any("NOT_SET_ANYWHERE" in p for p in found)


def test_a_short_api_token_is_reported_under_its_key_with_the_other_problems() -> None:
    handoff = {"api_listen": "127.0.0.1:8090", "api_token": "short", "commands": ["x"]}
    found = problems({"plugins": {"handoff": handoff}})
    assert any(p.startswith("plugins.handoff.commands:") for p in found), found
    assert any(p.startswith("plugins.handoff.api_token:") for p in found), found


def _config_models() -> list[type[Any]]:
    """Every settings model of botkit and its connectors and plugins."""
    import importlib
    import pkgutil

    import botkit
    import connectors

    for package in (botkit, connectors):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".testing" not in module.name and not module.name.endswith("__main__"):
                importlib.import_module(module.name)

    def below(cls: type[BaseModel]) -> list[type[BaseModel]]:
        return [c for s in cls.__subclasses__() for c in (s, *below(s))]

    ours = ("botkit.", "connectors.")
    return sorted({c for c in below(BaseModel) if c.__module__.startswith(ours)}, key=str)


def test_every_bounded_number_in_the_config_has_an_upper_bound_too() -> None:
    # A number with only a lower bound takes 1e308: seconds that overflow a timedelta
    # or asyncio's timers, sizes that overflow a C int, only once the bot runs.
    models = _config_models()
    assert len(models) > 20  # the walk found the connectors' and plugins' settings
    open_ended = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in models
        for name, field in cls.model_fields.items()
        if any(isinstance(m, at.Ge | at.Gt) for m in field.metadata)
        and not any(isinstance(m, at.Le | at.Lt) for m in field.metadata)
    ]
    assert open_ended == []


def test_an_openai_url_with_an_impossible_port_is_a_problem() -> None:
    table = {"kind": "openai", "openai": {"model": "m", "base_url": "http://h:80000/v1"}}
    found = problems({"backend": table})
    assert any(p.startswith("backend.openai.base_url: ") and "port" in p for p in found)


@pytest.mark.parametrize(
    "body",
    [
        "[bot]\ntags = " + "[" * 1200 + "1" + "]" * 1200 + "\n",  # tomllib recurses
        "[bot]\n" + ".".join(["a"] * 1500) + " = 1\n",  # parses; interpolation recursed
        "[" + ".".join(["a"] * 1500) + "]\nx = 1\n",
        "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
    ],
)
def test_deeply_nested_toml_is_a_problem_not_a_traceback(tmp_path: Path, body: str) -> None:
    """review2-operator #11: a hostile config is refused as a config problem (exit 2)."""
    path = tmp_path / "deep.toml"
    path.write_text(body, encoding="utf-8")
    found = check_config(path)
    assert [p.message for p in found] == ["the config is nested too deeply (more than 64 levels)"]
    with pytest.raises(ConfigError, match="nested too deeply"):
        settings_from_mapping({"bot": {"tags": _nest(100)}}, environ={})  # from code, too


def _nest(depth: int) -> object:
    node: object = 1
    for _ in range(depth):
        node = [node]
    return node


def test_an_ordinary_config_depth_is_fine() -> None:
    settings = settings_from_mapping({"connectors": {"console": {"user": "x"}}}, environ={})
    assert settings.connectors["console"]["user"] == "x"


@pytest.mark.parametrize("value", [0, -0.5, 1.01, "lots", float("nan"), float("inf")])
def test_gpu_memory_share_out_of_range_names_its_key(value: object) -> None:
    found = problems({"backend": {"engine": {"gpu_memory_utilization": value}}})
    assert len(found) == 1 and "backend.engine.gpu_memory_utilization" in found[0]


def test_the_gpu_settings_reach_the_engine() -> None:
    from botkit.backends.local_engine import LocalEngineBackend

    settings = settings_from_mapping(
        {"backend": {"engine": {"gpu_memory_utilization": 0.6, "cuda_graphs": False,
                                "overlap_steps": False}}},
        environ={},
    )
    backend = LocalEngineBackend(settings.backend.engine)
    assert backend.engine_config.gpu_memory_utilization == 0.6
    assert backend.engine_config.cuda_graphs is False
    assert backend.engine_config.overlap_steps is False
    default = LocalEngineBackend(Settings().backend.engine).engine_config
    assert default.cuda_graphs is True and default.overlap_steps is True


@pytest.mark.parametrize(
    ("section", "key"),
    [(("backend", "engine"), "backend.engine.cuda_graphs"),
     (("backend", "engine"), "backend.engine.overlap_steps"),
     (("language", "translator"), "language.translator.cuda_graphs")],
)  # fmt: skip
@pytest.mark.parametrize("value", ["maybe", 2, [True], {"on": True}])
def test_cuda_graph_switches_take_only_booleans(
    section: tuple[str, str], key: str, value: object
) -> None:
    outer, inner = section
    found = problems({outer: {inner: {key.rsplit(".", 1)[1]: value}}})
    assert len(found) == 1 and key in found[0]


def test_a_problem_of_a_table_its_unset_variable_causes_is_not_reported_twice() -> None:
    # The agents' validator checks every token: an unset one failed there too, at the
    # table's path, beside the variable that is the real problem.
    agents = {"Ana": "${BOTKIT_AGENT_ANA}"}
    assert problems({"plugins": {"handoff": {"agents": agents}}}) == [
        "plugins.handoff.agents.Ana: environment variable BOTKIT_AGENT_ANA is not set"
    ]
    handoff = {"replies": {"en": "${REPLY}"}, "commands": ["/human", "${COMMAND}"]}
    assert problems({"plugins": {"handoff": handoff}}) == [
        "plugins.handoff.replies.en: environment variable REPLY is not set",
        "plugins.handoff.commands[1]: environment variable COMMAND is not set",
    ]


def test_a_problem_of_a_table_that_its_unset_variable_does_not_cause_stays() -> None:
    token = "t" * 30
    agents = {"An\u202ena": token, "Ana": "${BOTKIT_AGENT_ANA}"}  # a bidi override
    found = problems({"plugins": {"handoff": {"agents": agents}}})
    unset = "plugins.handoff.agents.Ana: environment variable BOTKIT_AGENT_ANA is not set"
    assert found[0] == unset
    assert len(found) == 2 and found[1].startswith("plugins.handoff.agents: "), found
    assert "agent 1" in found[1]
    handoff = {"replies": {"de": " ", "en": "${REPLY}"}}
    assert problems({"plugins": {"handoff": handoff}}) == [
        "plugins.handoff.replies.en: environment variable REPLY is not set",
        "plugins.handoff.replies: a reply must not be empty",  # no "value error, " noise
    ]
    # A key that only starts like the unset one is not inside it.
    found = problems({"bot": {"name": "${NAME}", "name_x": 1}})
    assert found[0] == "bot.name: environment variable NAME is not set"
    assert found[1].startswith("bot.name_x: unknown key"), found


def test_only_the_sections_asked_for_are_read(tmp_path: Path) -> None:
    # `botkit db` and the other database commands: a channel's token, a section a newer
    # botkit reads, or a bad value elsewhere is not theirs to check.
    data = {
        "store": {"url": "sqlite:///${DB}.db"},
        "logging": {"level": "debug"},
        "bot": {"max_message_chars": "many"},
        "connectors": {"telegram": {"token": "${BOTKIT_TELEGRAM_TOKEN}"}},
        "newer_section": {"key": 1},
    }
    settings = settings_from_mapping(data, environ={"DB": "x"}, sections=("store", "logging"))
    assert settings.store.url == "sqlite+aiosqlite:///x.db"
    assert settings.logging.level == "DEBUG"
    assert settings.connectors == {} and settings.bot.max_message_chars == 4096
    assert settings.secret_values == {"x"}
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data, environ={}, sections=("store", "logging"))
    assert [str(p) for p in info.value.problems] == [
        "store.url: environment variable DB is not set"
    ]
    path = tmp_path / "c.toml"
    path.write_text('[store]\nextra = 1\n[connectors.telegram]\ntoken = ""\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, sections=("store",))
    assert [p.path for p in info.value.problems] == ["store.extra"]
    with pytest.raises(ValueError, match="no such settings sections"):
        settings_from_mapping({}, sections=("stores",))
