"""Exception hierarchy. Library code raises these; only the CLI maps them to exit codes."""

from __future__ import annotations

__all__ = [
    "BackendBusyError",
    "BackendError",
    "BotkitError",
    "ConfigError",
    "ConfigProblem",
    "ConnectorError",
    "DatabaseUnavailableError",
    "MessageRejectedError",
    "NotAcceptingError",
    "PluginError",
    "SchemaOutdatedError",
    "StoreError",
    "TranslationError",
]

from dataclasses import dataclass


class BotkitError(Exception):
    """Base class of every error botkit raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where (dotted key path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(BotkitError):
    """The configuration is invalid. Carries every problem found, each with its key path."""

    exit_code = 2

    def __init__(self, problems: list[ConfigProblem] | str, *, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems)]
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration{where}:\n{lines}")


class StoreError(BotkitError):
    """The conversation store failed or is unreachable."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be used now (unreachable, restarting, locked, full); the same
    call may work once it is back (see ``botkit.store._outage``).

    Attributes:
        maybe_committed: the connection was lost after the transaction's work was done,
            at its commit, so it may have been stored (retrying may store it twice).
        reason: why, by its short name (one of ``botkit.store._outage.OUTAGE_REASONS``;
            "" when not known).
    """

    def __init__(self, message: str, *, maybe_committed: bool = False, reason: str = "") -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed
        self.reason = reason


class UnknownConversationError(StoreError):
    """No conversation with that id (the store answered; nothing failed)."""


class FileLimitError(StoreError):
    """A conversation already holds as many customer files as it may (nothing failed)."""


class SchemaOutdatedError(StoreError):
    """The database schema is behind the code; the message names the command to run."""

    exit_code = 3


class PluginError(BotkitError):
    """A plugin could not be found, configured or set up."""


class ConnectorError(BotkitError):
    """A channel connector could not be configured, connected or used."""


class BackendError(BotkitError):
    """The generation backend failed or could not be loaded."""


class BackendBusyError(BackendError):
    """The backend is overloaded and rejected the request; the bot answers politely."""


class TranslationError(BotkitError):
    """A translator is missing or cannot translate a language pair."""


class MessageRejectedError(BotkitError):
    """An inbound message was refused (too long, empty after sanitizing...).

    ``user_reply`` is what the customer is told; nothing is dropped silently.
    """

    def __init__(self, reason: str, user_reply: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_reply = user_reply


class NotAcceptingError(MessageRejectedError):
    """The bot takes no message at all now (it is shutting down, or not started): the
    same message may be sent again later, to this process or another one. A channel
    that can tell its client to retry says so (the web's ``shutting_down``)."""
