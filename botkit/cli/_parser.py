"""The ``botkit`` command's argument parser: its commands, options and help texts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from botkit import __version__

__all__ = ["build_parser"]

# What a --limit may ask for: far more rows than anyone reads, and within SQLite's
# 64-bit integers (a bigger number failed as a "database read failed").
_MOST_ROWS = 1_000_000

_CONFIG_HELP = (
    "TOML config file (default: $BOTKIT_CONFIG, else ./botkit.toml, else "
    "./config.example.toml, else the built-in defaults)"
)
# What a contact is on each built-in channel (docs/operations.md, "Customers' data").
_CONTACT_HELP = (
    "the person's id on the channel: a Telegram user id, a Slack user id (U...), or on "
    "the web the conversation key (s:... for a visitor, u:USER_ID for a signed-in user)"
)


def _positive_int(text: str) -> int:
    """``--limit``: a whole number of 1 to a million (argparse turns the error into
    usage)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= _MOST_ROWS:
        raise argparse.ArgumentTypeError(f"must be 1 to {_MOST_ROWS}, not {value}")
    return value


def _days(text: str) -> int:
    """``--days``: 1 to 36,500 (a hundred years; more is not a date)."""
    value = _positive_int(text)
    if value > 36_500:
        raise argparse.ArgumentTypeError(f"must be at most 36500, not {value}")
    return value


def _language_tag(value: str) -> str:
    from botkit.language.tags import InvalidLanguageTag, normalize_tag

    try:
        return normalize_tag(value)
    except InvalidLanguageTag as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``botkit`` command's arguments: its commands, their options and help."""
    parser = argparse.ArgumentParser(prog="botkit", description="Self-hosted customer-service bot.")
    parser.add_argument("--version", action="version", version=f"botkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("-c", "--config", metavar="FILE", help=_CONFIG_HELP)
        return sub

    def command(name: str, text: str) -> argparse.ArgumentParser:
        # The one-line help of `botkit --help` is also what `botkit NAME --help` says.
        return commands.add_parser(name, help=text, description=text)

    init = command("init", "write the example config (every key, commented) to start from")
    init.add_argument("path", metavar="PATH", nargs="?", default="botkit.toml",
                      help="the new file (default: ./botkit.toml); never overwritten")  # fmt: skip
    with_config(command("run", "run the bot with its enabled connectors"))
    with_config(command("chat", "talk to the bot in this terminal"))
    check = command("check-config", "list every problem of a config file (exit 2 if any)")
    check.add_argument("file", metavar="FILE", nargs="?",
                       help="the config file to check (default: the one `run` reads)")  # fmt: skip
    check.add_argument("-c", "--config", metavar="FILE", help="the same, as in other commands")
    check.set_defaults(usage_error=check.error)  # shows check-config's usage, not botkit's
    db = commands.add_parser("db", help="database schema migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = ("upgrade the schema to the newest; a SQLite database file that does not "
               "exist is created (with its directories), as on a first install")  # fmt: skip
    with_config(db_commands.add_parser("upgrade", help=upgrade, description=upgrade))
    down = with_config(db_commands.add_parser("downgrade", help="downgrade to a revision"))
    down.add_argument("revision", help="target revision ('base' removes every table)")
    down.add_argument("--yes", action="store_true",
                      help="go ahead: deletes what the newer revisions keep")  # fmt: skip
    with_config(db_commands.add_parser("current", help="show the schema revision"))
    copy = ("write a consistent copy of a SQLite database to DEST (a new file, mode 0600) "
            "while the bots run; PostgreSQL: use pg_dump")  # fmt: skip
    backup = with_config(db_commands.add_parser("backup", help=copy, description=copy))
    backup.add_argument("dest", metavar="DEST", help="the backup file to create")
    handoff = commands.add_parser("handoff", help="conversations handed to humans")
    handoff_commands = handoff.add_subparsers(dest="handoff_command", required=True,
                                              metavar="ACTION")  # fmt: skip
    listing = with_config(handoff_commands.add_parser(
        "list", help="conversations waiting for or handled by a human, newest first"))  # fmt: skip
    listing.add_argument("--limit", type=_positive_int, default=100,
                         help="at most this many (default 100)")  # fmt: skip
    give_back = with_config(handoff_commands.add_parser(
        "release", help="hand a conversation back to the bot"))  # fmt: skip
    give_back.add_argument("channel", help="e.g. telegram, slack, web")
    give_back.add_argument("key", help="the conversation key, as `handoff list` shows it")
    data = commands.add_parser("data", help="customers' data: export, erase, purge")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for action, text in (
        ("export", "print everything stored about one person, as JSON"),
        ("forget", "erase one person: contact, conversations, messages"),
    ):
        person = with_config(data_commands.add_parser(action, help=text))
        person.add_argument("channel", help="e.g. telegram, slack, web")
        person.add_argument("contact", help=_CONTACT_HELP)
        if action == "export":
            person.add_argument(
                "--files", type=Path, metavar="DIR",
                help="also write the files botkit keeps for them (web uploads) into DIR",
            )  # fmt: skip
    purge = with_config(data_commands.add_parser(
        "purge", help="delete conversations inactive for DAYS days"))  # fmt: skip
    purge.add_argument("--days", type=_days, required=True, metavar="DAYS",
                       help="delete what has had no message for DAYS days")  # fmt: skip
    feedback = with_config(commands.add_parser(
        "feedback", help="customers' ratings of the bot's answers"))  # fmt: skip
    feedback.add_argument("--days", type=_days, default=30, metavar="DAYS",
                          help="the last DAYS days (default 30)")  # fmt: skip
    feedback.add_argument("--bad", type=_positive_int, default=20, metavar="N",
                          help="show the N latest answers rated bad (default 20)")  # fmt: skip
    _add_conversations(commands, with_config)
    knowledge = commands.add_parser("knowledge", help="the knowledge base's files and searches")
    knowledge_commands = knowledge.add_subparsers(dest="knowledge_command", required=True,
                                                  metavar="ACTION")  # fmt: skip
    with_config(knowledge_commands.add_parser(
        "check", help="list the files, their passages and problems"))  # fmt: skip
    ask = with_config(knowledge_commands.add_parser(
        "search", help="show the passages a question finds"))  # fmt: skip
    ask.add_argument("question")
    ask.add_argument("--language", type=_language_tag,
                     help="the question's language (default: the working language)")  # fmt: skip
    return parser


def _add_conversations(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    """``botkit conversations find|show`` (botkit/cli/_conversations.py)."""
    from botkit.cli._conversations import STATUSES, conversation_id, moment, searched_text

    group = commands.add_parser("conversations", help="find a conversation and read it")
    actions = group.add_subparsers(dest="conversations_command", required=True, metavar="ACTION")
    text = ("conversations matching every filter given, newest first (times in UTC); "
            "a time window reads the messages in it, a --text search at most the "
            "newest 200000 of them")  # fmt: skip
    find = with_config(actions.add_parser("find", help=text, description=text))
    find.add_argument("--channel", help="e.g. telegram, slack, web")
    find.add_argument("--status", action="append", metavar="STATUS", choices=STATUSES,
                      help="its status now: bot, waiting_human, with_human, closed "
                           "(repeat for several)")  # fmt: skip
    when = "an ISO time (UTC unless it has an offset) or a time ago: 30m, 2h, 1d"
    find.add_argument("--since", type=moment, metavar="TIME",
                      help=f"with a message stored at or after TIME: {when}")  # fmt: skip
    find.add_argument("--until", type=moment, metavar="TIME",
                      help="with a message stored at or before TIME")  # fmt: skip
    find.add_argument("--text", type=searched_text, metavar="TEXT",
                      help="with a message containing TEXT, ignoring case (as written, "
                           "or in the working language)")  # fmt: skip
    find.add_argument("--unanswered", action="store_true",
                      help="with a customer message no reply reached (none or failed)")  # fmt: skip
    find.add_argument("--limit", type=_positive_int, default=50,
                      help="at most this many (default 50, at most 1000)")  # fmt: skip
    find.add_argument("--json", action="store_true", help="print JSON")
    find.set_defaults(usage_error=find.error)
    show = with_config(actions.add_parser(
        "show", help="one conversation's messages in order, with each reply's status"))  # fmt: skip
    show.add_argument("id", type=conversation_id, metavar="ID",
                      help="its number: `find` shows it, logs say CHANNEL:ID")  # fmt: skip
    show.add_argument("--json", action="store_true", help="print JSON")
