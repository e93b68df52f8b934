"""Which config file a command reads, and loading it with logging set up from it."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botkit.config import Settings

__all__ = ["DATABASE_SECTIONS", "config_path", "literal_secret_note", "load", "log"]

# One logger for the whole command, whichever module of the package logs: operators'
# filters and the tests look for "botkit.cli".
log = logging.getLogger("botkit.cli")
_DEFAULT_FILES = ("botkit.toml", "config.example.toml")
# What the commands that only open the database read of the config (the rest, such as
# a channel's token, is not validated and its ${VAR}s need not be set).
DATABASE_SECTIONS = ("store", "logging")


def config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    env = os.environ.get("BOTKIT_CONFIG")
    if env:
        return Path(env)
    return next((Path(name) for name in _DEFAULT_FILES if Path(name).is_file()), None)


def load(
    arg: str | None, *, quiet: bool = False, sections: Sequence[str] | None = None
) -> Settings:
    """The settings (only ``sections`` of the file, if given; see ``load_settings``),
    with logging configured from them."""
    from botkit._logging import configure_logging
    from botkit.config import Settings, literal_secrets_in, load_settings

    path = config_path(arg)
    settings = load_settings(path, sections=sections) if path is not None else Settings()
    logging_settings = settings.logging
    if quiet and logging_settings.level == "INFO":
        # `botkit chat` shares the terminal with the logs, and a one-shot command's
        # output is its result: show only problems, unless DEBUG was asked for.
        logging_settings = logging_settings.model_copy(update={"level": "WARNING"})
    # `botkit run` (a service: its stderr may be a pipe that stalls) writes its lines
    # from a thread, `main` writes the last ones; the other commands write directly.
    serving = not quiet and sections is None
    configure_logging(logging_settings, secrets=settings.secret_values, background=serving)
    if path is None:
        log.info("no config file found; using the built-in defaults")
    else:
        log.info("config: %s", path)
        if not quiet and sections is None:  # `botkit run`: said once, where operators look
            for key in literal_secrets_in(path):
                log.warning("config: %s", literal_secret_note(key))
    return settings


def literal_secret_note(key: str) -> str:
    return (
        f"{key} is a secret written in the config file; keep it in the environment "
        'instead (a "${VAR}" reference), so the file can be shared safely'
    )
