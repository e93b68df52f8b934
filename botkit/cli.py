"""The ``botkit`` command. The only place that turns ``BotkitError`` into exit codes.

    botkit run [-c FILE]            run the bot with its enabled connectors
    botkit chat [-c FILE]           talk to the bot in this terminal
    botkit check-config [FILE]      list every problem of a config file (default: as run)
    botkit db upgrade [-c FILE]     create or upgrade the database (and its schema)
    botkit db downgrade REV [-c FILE] / botkit db current [-c FILE]
    botkit handoff list [-c FILE]   conversations waiting for or handled by a human
    botkit handoff release CHANNEL KEY [-c FILE]   give one back to the bot
    botkit data export CHANNEL CONTACT [-c FILE]   one person's data, as JSON
    botkit data forget CHANNEL CONTACT [-c FILE]   erase one person
    botkit data purge --days N [-c FILE]           delete conversations inactive N days
    botkit feedback [--days N] [--bad N] [-c FILE] customers' ratings of the bot's answers
    botkit knowledge check [-c FILE]               the knowledge base's files and problems
    botkit knowledge search QUESTION [-c FILE]     what a question finds in it
    botkit --version

Without ``-c`` the config is ``$BOTKIT_CONFIG``, else ``./botkit.toml``, else
``./config.example.toml``, else the built-in defaults. The commands that work on the
database (``db``, ``data``, ``handoff``, ``feedback``) read only its ``[store]`` and
``[logging]`` sections: they run from any machine that reaches the database, without the
channels' or agents' secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from botkit import __version__
from botkit._serving import prepare_heap_for_serving
from botkit.errors import BotkitError, ConfigError, ConfigProblem, ConnectorError, StoreError

if TYPE_CHECKING:
    from botkit.bot import Bot
    from botkit.config import Settings
    from botkit.store import StoreSettings

__all__ = ["chat_settings", "main"]

_log = logging.getLogger("botkit.cli")
_DEFAULT_FILES = ("botkit.toml", "config.example.toml")
# What the commands that only open the database read of the config (the rest, such as
# a channel's token, is not validated and its ${VAR}s need not be set).
_DATABASE_SECTIONS = ("store", "logging")


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="botkit", description="Self-hosted customer-service bot.")
    parser.add_argument("--version", action="version", version=f"botkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("-c", "--config", metavar="FILE", help=_CONFIG_HELP)
        return sub

    def command(name: str, text: str) -> argparse.ArgumentParser:
        # The one-line help of `botkit --help` is also what `botkit NAME --help` says.
        return commands.add_parser(name, help=text, description=text)

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


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    env = os.environ.get("BOTKIT_CONFIG")
    if env:
        return Path(env)
    return next((Path(name) for name in _DEFAULT_FILES if Path(name).is_file()), None)


def _load(
    arg: str | None, *, quiet: bool = False, sections: Sequence[str] | None = None
) -> Settings:
    """The settings (only ``sections`` of the file, if given; see ``load_settings``),
    with logging configured from them."""
    from botkit._logging import configure_logging
    from botkit.config import Settings, literal_secrets_in, load_settings

    path = _config_path(arg)
    settings = load_settings(path, sections=sections) if path is not None else Settings()
    logging_settings = settings.logging
    if quiet and logging_settings.level == "INFO":
        # `botkit chat` shares the terminal with the logs, and a one-shot command's
        # output is its result: show only problems, unless DEBUG was asked for.
        logging_settings = logging_settings.model_copy(update={"level": "WARNING"})
    configure_logging(logging_settings, secrets=settings.secret_values)
    if path is None:
        _log.info("no config file found; using the built-in defaults")
    else:
        _log.info("config: %s", path)
        if not quiet and sections is None:  # `botkit run`: said once, where operators look
            for key in literal_secrets_in(path):
                _log.warning("config: %s", _literal_secret_note(key))
    return settings


def _literal_secret_note(key: str) -> str:
    return (
        f"{key} is a secret written in the config file; keep it in the environment "
        'instead (a "${VAR}" reference), so the file can be shared safely'
    )


def chat_settings(settings: Settings) -> Settings:
    """The settings of ``botkit chat``: a terminal session beside the service.

    - Only the console connector. It runs even where the file has no
      ``[connectors.console]`` or switches it off for ``run``: asking for ``chat`` is
      asking for it.
    - No listening port: no metrics, no agent API (``[plugins.handoff] api_listen``).
      Each would take the service's port while the service restarts, and Prometheus or
      the agents would reach the wrong process.
    - No answering what an earlier session left unanswered: a terminal shows the
      replies of its own lines, so an old line's reply would read as the answer to the
      new one.
    """
    console = {k: v for k, v in settings.connectors.get("console", {}).items() if k != "enabled"}
    plugins = {
        name: {k: v for k, v in table.items() if k != "api_listen"} if name == "handoff" else table
        for name, table in settings.plugins.items()
    }
    return settings.model_copy(
        update={
            "connectors": {"console": console},
            "plugins": plugins,
            "metrics": settings.metrics.model_copy(update={"listen": ""}),
            "bot": settings.bot.model_copy(update={"resume_unanswered_seconds": 0.0}),
        }
    )


# Signals that stop ``run`` and ``chat``: SIGHUP too, which a terminal that closes (an
# SSH session ending) sends; left at its default, it killed the bot mid-reply.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stopping:
    """What the stop signals do, from before the bot starts to its close.

    While the bot starts (the model loads, the database is waited for), the first
    signal cancels the start: ``Bot.start`` releases what it opened, its process row
    included. Once it runs, the first signal stops it and lets replies finish for the
    shutdown grace (in ``chat`` not: a Ctrl-C there means "quit now"); a second one
    stops waiting. The last line of the log says which signal stopped it, and how long
    the stop took.
    """

    def __init__(self, *, chat: bool) -> None:
        self._chat = chat
        self._bot: Bot | None = None
        self._starting: asyncio.Task[None] | None = None
        self.signal_name: str | None = None
        self.signals = 0
        self._since = 0.0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in _STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not main thread
                pass

    def starting(self, task: asyncio.Task[None] | None) -> None:
        self._starting = task

    def running(self, bot: Bot) -> None:
        self._starting, self._bot = None, bot

    def _on_signal(self, sig: signal.Signals) -> None:
        self.signals += 1
        if self.signals == 1:
            self.signal_name, self._since = sig.name, time.monotonic()
        now = self.signals > 1 or self._chat
        _log.info("stopping (%s received)%s", sig.name, " now" if now else "")
        if self._starting is not None:
            self._starting.cancel()
        elif self._bot is not None:
            self._bot.stop(force=now)

    def log_stopped(self, *, during_start: bool = False) -> None:
        if self.signal_name is None:
            _log.info("stopped")
            return
        _log.info(
            "stopped (%s)%s; the stop took %.1f s",
            self.signal_name,
            " while starting" if during_start else "",
            time.monotonic() - self._since,
        )


async def _serve(settings: Settings, *, chat: bool) -> None:
    from botkit.bot import Bot
    from botkit.http_server import quiet_accept_errors, raise_open_file_limit

    if chat:
        settings = chat_settings(settings)
    else:  # every connection a server takes holds a file descriptor
        before, after = raise_open_file_limit()
        if after > before:
            _log.debug("open file limit raised from %d to %d", before, after)
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    stopping = _Stopping(chat=chat)
    stopping.install(loop)
    bot = Bot(settings)
    start = asyncio.create_task(bot.start(), name="bot-start")
    stopping.starting(start)
    try:
        await start
    except asyncio.CancelledError:
        if stopping.signals == 0 or not start.cancelled():
            raise  # not cancelled by a stop signal
        stopping.log_stopped(during_start=True)
        return
    try:
        stopping.running(bot)
        if stopping.signals == 0:
            await bot.warm_up()
            # Everything loaded so far (settings, models, tokenizers, libraries) lives
            # until exit: it moves out of the collector's reach, and collections get
            # rarer (see botkit/_serving.py for the measurements).
            prepare_heap_for_serving()
            await bot.run()
    finally:
        await bot.close()
    stopping.log_stopped()


def _missing_sqlite_file(store: StoreSettings) -> Path | None:
    """The absolute path of a SQLite database file that does not exist, else None."""
    from botkit.store._runner import is_memory_sqlite

    url = store.sqlalchemy_url
    if store.dialect != "sqlite" or is_memory_sqlite(url) or url.database is None:
        return None
    # A relative path is relative to the working directory, not to the config file.
    path = Path(url.database).expanduser().absolute()
    return None if path.exists() else path


def _no_database(missing: Path) -> StoreError:
    # Opening would create an empty file (and its directories) and report "no schema",
    # or downgrade that, as if the real database, elsewhere, were empty.
    return StoreError(
        f"no database at {missing} (a relative path in [store] url is relative to the "
        "working directory); nothing was created"
    )


def _run_db(args: argparse.Namespace) -> int:
    from botkit._store_at_start import waiting_for_database
    from botkit.store import migrate

    store = _load(args.config, sections=_DATABASE_SECTIONS).store
    missing = _missing_sqlite_file(store)
    if args.db_command == "upgrade":
        # Creating the database is what upgrade is for on a first install; saying so
        # shows a mistyped path at once.
        # Run beside a database that is still starting (a compose service, a job
        # before the bot), it waits as the bot does.
        asyncio.run(
            waiting_for_database(
                lambda: migrate.upgrade(store.url),
                wait_s=store.start_wait_seconds,
                where=store.safe_url,
            )
        )
        created = f"created {missing}; " if missing is not None else ""
        print(f"{store.safe_url}: {created}schema at {migrate.head()}")
        return 0
    if missing is not None:
        raise _no_database(missing)
    if args.db_command == "downgrade":
        undone = migrate.undone_by(asyncio.run(migrate.current(store.url)), args.revision)
        if undone and not args.yes:
            steps = "\n".join(f"  {revision}: {what}" for revision, what in undone)
            print(
                f"{store.safe_url}: downgrading to {args.revision} undoes\n{steps}\n"
                "and deletes the tables and columns they added, with their data. Back "
                "the database up, then run this again with --yes.",
                file=sys.stderr,
            )
            return 1
        asyncio.run(migrate.downgrade(store.url, args.revision))
        print(f"{store.safe_url}: schema at {args.revision}")
    else:
        revision = asyncio.run(migrate.current(store.url))
        if revision == migrate.head():
            state = "up to date"
        elif revision is None or migrate.is_known(revision):
            state = f"botkit db upgrade brings it to {migrate.head()}"
        else:
            state = f"newer than this botkit, which knows up to {migrate.head()}: upgrade botkit"
        print(f"{store.safe_url}: {revision or 'no schema'} ({state})")
    return 0


def _existing_store(args: argparse.Namespace) -> StoreSettings:
    """The store settings of a command that reads or changes what is stored (``data``,
    ``handoff``, ``feedback``), for a database that must exist. Such a command prints
    its result, and logs only problems: the config and store lines a service logs at
    start are noise before it (DEBUG in ``[logging]`` still shows everything)."""
    store = _load(args.config, quiet=True, sections=_DATABASE_SECTIONS).store
    missing = _missing_sqlite_file(store)
    if missing is not None:
        raise _no_database(missing)
    return store


def _run_handoff(args: argparse.Namespace) -> int:
    from botkit._handoff_cli import list_handoffs, release

    store = _existing_store(args)
    if args.handoff_command == "list":
        lines = asyncio.run(list_handoffs(store, args.limit))
        print("\n".join(lines) if lines else "no conversation is waiting for or with a human")
    else:
        print(asyncio.run(release(store, args.channel, args.key)))
    return 0


def _run_data(args: argparse.Namespace) -> int:
    from botkit._data_cli import export_contact, forget_contact, purge

    store = _existing_store(args)
    if args.data_command == "export":
        print(asyncio.run(export_contact(store, args.channel, args.contact, args.files)))
    elif args.data_command == "forget":
        print(asyncio.run(forget_contact(store, args.channel, args.contact)))
    else:
        print(asyncio.run(purge(store, args.days)))
    return 0


def _run_feedback(args: argparse.Namespace) -> int:
    from botkit._feedback_cli import report

    store = _existing_store(args)
    print(asyncio.run(report(store, args.days, args.bad)))
    return 0


def _run_knowledge(args: argparse.Namespace) -> int:
    from botkit._knowledge_cli import check, search

    settings = _load(args.config, quiet=True)
    try:
        if args.knowledge_command == "check":
            report, usable = check(settings)
        else:
            report, usable = search(settings, args.question, language=args.language)
    except ConfigError as exc:  # no [plugins.knowledge]: say in which file it was looked for
        path = _config_path(args.config)
        if exc.source is not None or path is None:
            raise
        raise ConfigError(exc.problems, source=str(path)) from None
    print(report)
    return 0 if usable else 1


_NO_CONNECTOR = (
    "no connector is enabled, so `botkit run` cannot start: add a [connectors.NAME] "
    "section (`botkit chat` needs none: it talks in the terminal)"
)


def _start_problems(settings: Settings, *, run: bool) -> list[ConfigProblem]:
    """What stops ``botkit run`` (``run``) or ``botkit chat`` from starting that the
    file's validation does not see: no channel to serve (``run`` only: ``chat`` has its
    console), a model that is not there, a plugin's config that does not fit the rest
    (``Plugin.settings_problems``). Checked before the database is opened."""
    from botkit.backends.preflight import model_problems

    problems: list[ConfigProblem] = []
    if run and not any(s.get("enabled", True) is not False for s in settings.connectors.values()):
        problems.append(ConfigProblem("connectors", _NO_CONNECTOR))
    return problems + model_problems(settings) + _plugin_problems(settings)


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
            _log.debug("plugin %r could not be checked: %r", spec.name, exc)
    return problems


def _check_config(file: str) -> int:
    from botkit.config import check_config, literal_secrets_in, load_settings

    problems = check_config(file)
    if not problems:  # the file is valid: can `botkit run` start with it?
        problems = _start_problems(load_settings(file), run=True)
    if not problems:
        print(f"{file}: OK")
        for key in literal_secrets_in(file):  # advisory: the file works as it is
            print(f"  note: {_literal_secret_note(key)}")
        return 0
    print(f"{file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
    for problem in problems:
        print(f"  {problem}")
    return ConfigError.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check-config":
            if args.file is not None and args.config is not None:
                args.usage_error("give one config file: FILE or -c FILE")
            # Without either, the file `botkit run` would read.
            path = _config_path(args.file or args.config)
            if path is None:
                args.usage_error(
                    "no config file: give FILE or -c FILE (or set $BOTKIT_CONFIG; "
                    "./botkit.toml and ./config.example.toml are not here)"
                )
            return _check_config(str(path))
        if args.command == "db":
            return _run_db(args)
        if args.command == "handoff":
            return _run_handoff(args)
        if args.command == "data":
            return _run_data(args)
        if args.command == "feedback":
            return _run_feedback(args)
        if args.command == "knowledge":
            return _run_knowledge(args)
        chat = args.command == "chat"
        settings = _load(args.config, quiet=chat)
        problems = _start_problems(settings, run=not chat)
        if problems:  # before the database is created or migrated
            path = _config_path(args.config)
            raise ConfigError(problems, source=None if path is None else str(path))
        if not chat:
            from botkit._ports import channel_ports_in_use

            busy = channel_ports_in_use(settings)
            if busy:  # before the model loads and the database is opened
                raise ConnectorError("; ".join(busy) + "; nothing was started")
        asyncio.run(_serve(settings, chat=chat))
        return 0
    except BotkitError as exc:
        from botkit._logging import json_logging_active

        if json_logging_active():
            # A log pipeline that parses JSON lines would drop a plain line, and this one
            # says why the bot stopped; the formatter also redacts secrets in it.
            _log.critical("botkit: error: %s", exc)
        else:  # plain logs, or logging not set up yet (a config error)
            print(f"botkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 130


def console() -> None:
    """The ``botkit`` command (and ``python -m botkit``): ``main``, then exit.

    Once the engine has run, Triton is loaded, and its native bindings (nanobind) print
    some twenty lines of "leaked instance" warnings while the interpreter tears itself
    down: noise that reads like a crash to an operator stopping the bot. By the time
    ``main`` returns, everything of ours is closed (the store, the engine's thread, the
    worker processes, the servers), so the process skips that teardown there, after
    flushing the logs and the standard streams.
    """
    code = main()
    if "triton" in sys.modules:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed, or a broken pipe: nothing to keep
                pass
        os._exit(code)
    sys.exit(code)
