"""The ``botkit`` command. The only place that turns ``BotkitError`` into exit codes.

    botkit init [PATH]              write the example config to PATH (./botkit.toml)
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
    botkit conversations find [--since T] [--text S] [--unanswered] ... [-c FILE]
    botkit conversations show ID [-c FILE]         one conversation's messages, in order
    botkit knowledge check [-c FILE]               the knowledge base's files and problems
    botkit knowledge search QUESTION [-c FILE]     what a question finds in it
    botkit --version

Without ``-c`` the config is ``$BOTKIT_CONFIG``, else ``./botkit.toml``, else
``./config.example.toml``, else the built-in defaults. The commands that work on the
database (``db``, ``data``, ``handoff``, ``feedback``, ``conversations``) read only its
``[store]`` and ``[logging]`` sections: they run from any machine that reaches the
database, without the channels' or agents' secrets.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from botkit.cli._check import run_check_config, run_knowledge
from botkit.cli._config import log
from botkit.cli._conversations import run_conversations
from botkit.cli._db import run_data, run_db, run_feedback, run_handoff
from botkit.cli._init import run_init
from botkit.cli._parser import build_parser
from botkit.cli._serve import chat_settings, run_bot
from botkit.errors import BotkitError

__all__ = ["chat_settings", "console", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    finally:
        from botkit._logging import stop_logging

        stop_logging()  # `botkit run` logs from a thread: its last lines are written now


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "init":
            return run_init(args)
        if args.command == "check-config":
            return run_check_config(args)
        if args.command == "db":
            return run_db(args)
        if args.command == "handoff":
            return run_handoff(args)
        if args.command == "data":
            return run_data(args)
        if args.command == "feedback":
            return run_feedback(args)
        if args.command == "conversations":
            return run_conversations(args)
        if args.command == "knowledge":
            return run_knowledge(args)
        return run_bot(args)
    except BotkitError as exc:
        from botkit._logging import json_logging_active

        if json_logging_active():
            # A log pipeline that parses JSON lines would drop a plain line, and this one
            # says why the bot stopped; the formatter also redacts secrets in it.
            log.critical("botkit: error: %s", exc)
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
