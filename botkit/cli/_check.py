"""``botkit check-config`` and ``botkit knowledge``: what the bot would make of its config
and its knowledge base, without starting it. Also what stops ``run`` and ``chat`` from
starting that the config's validation does not see."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from botkit.cli._config import config_path, literal_secret_note, load, log
from botkit.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from botkit.config import Settings

__all__ = ["run_check_config", "run_knowledge", "start_problems"]

_NO_CONNECTOR = (
    "no connector is enabled, so `botkit run` cannot start: add a [connectors.NAME] "
    "section (`botkit chat` needs none: it talks in the terminal)"
)


def start_problems(settings: Settings, *, run: bool) -> list[ConfigProblem]:
    """What stops ``botkit run`` (``run``) or ``botkit chat`` from starting that the
    file's validation does not see: no channel to serve (``run`` only: ``chat`` has its
    console), a PostgreSQL store without its driver, a model that is not there, a
    plugin's config that does not fit the rest (``Plugin.settings_problems``). Checked
    before the database is opened."""
    from botkit.backends.preflight import model_problems

    problems: list[ConfigProblem] = []
    if run and not any(s.get("enabled", True) is not False for s in settings.connectors.values()):
        problems.append(ConfigProblem("connectors", _NO_CONNECTOR))
    problems += _store_problems(settings)
    return problems + model_problems(settings) + _plugin_problems(settings)


def _store_problems(settings: Settings) -> list[ConfigProblem]:
    """A PostgreSQL URL without its driver installed (the ``postgres`` extra): said here,
    not as a traceback when the database is opened."""
    from botkit.store._driver import postgres_driver_problem

    if settings.store.dialect != "postgresql":
        return []
    problem = postgres_driver_problem()
    return [] if problem is None else [ConfigProblem("store.url", problem)]


def _plugin_problems(settings: Settings) -> list[ConfigProblem]:
    from botkit.config import resolve_components

    specs, _ = resolve_components("plugins", settings.plugins)  # valid: loaded before
    problems: list[ConfigProblem] = []
    for spec in specs:
        try:
            plugin = spec.cls(spec.config, name=spec.name)
        except Exception as exc:
            # It could never set up with this config: said now, not as an ERROR line
            # once the bot runs without it.
            problems.append(
                ConfigProblem(
                    f"plugins.{spec.name}",
                    f"the plugin cannot be created: {type(exc).__name__}: {exc}",
                )
            )
            continue
        try:
            problems += plugin.settings_problems(settings)
        except Exception as exc:  # a third-party plugin's own check failed: advisory
            log.debug("plugin %r could not be checked: %r", spec.name, exc)
    return problems


def run_check_config(args: argparse.Namespace) -> int:
    """``botkit check-config [FILE] [-c FILE]``."""
    if args.file is not None and args.config is not None:
        args.usage_error("give one config file: FILE or -c FILE")
    # Without either, the file `botkit run` would read.
    path = config_path(args.file or args.config)
    if path is None:
        args.usage_error(
            "no config file: give FILE or -c FILE (or set $BOTKIT_CONFIG; "
            "./botkit.toml and ./config.example.toml are not here)"
        )
    return _check_config(str(path))


def _check_config(file: str) -> int:
    from botkit.config import check_config, literal_secrets_in, load_settings

    problems = check_config(file)
    if not problems:  # the file is valid: can `botkit run` start with it?
        problems = start_problems(load_settings(file), run=True)
    if not problems:
        print(f"{file}: OK")
        for key in literal_secrets_in(file):  # advisory: the file works as it is
            print(f"  note: {literal_secret_note(key)}")
        return 0
    print(f"{file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
    for problem in problems:
        print(f"  {problem}")
    return ConfigError.exit_code


def run_knowledge(args: argparse.Namespace) -> int:
    """``botkit knowledge check`` and ``botkit knowledge search``."""
    from botkit._knowledge_cli import check, search

    settings = load(args.config, quiet=True)
    try:
        if args.knowledge_command == "check":
            report, usable = check(settings)
        else:
            report, usable = search(settings, args.question, language=args.language)
    except ConfigError as exc:  # no [plugins.knowledge]: say in which file it was looked for
        path = config_path(args.config)
        if exc.source is not None or path is None:
            raise
        raise ConfigError(exc.problems, source=str(path)) from None
    print(report)
    return 0 if usable else 1
