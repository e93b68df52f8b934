"""``botkit run`` and ``botkit chat``: the bot serving, and what stops it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import TYPE_CHECKING

from botkit._serving import prepare_heap_for_serving
from botkit.cli._check import start_problems
from botkit.cli._config import config_path, load, log
from botkit.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from botkit.bot import Bot
    from botkit.config import Settings

__all__ = ["chat_settings", "run_bot"]


def run_bot(args: argparse.Namespace) -> int:
    """``botkit run`` or ``botkit chat``: checks what would stop the start, then serves
    until a stop signal."""
    chat = args.command == "chat"
    settings = load(args.config, quiet=chat)
    problems = start_problems(settings, run=not chat)
    if problems:  # before the database is created or migrated
        path = config_path(args.config)
        raise ConfigError(problems, source=None if path is None else str(path))
    if not chat:
        from botkit._ports import channel_ports_in_use

        busy = channel_ports_in_use(settings)
        if busy:  # before the model loads and the database is opened
            raise ConnectorError("; ".join(busy) + "; nothing was started")
    asyncio.run(_serve(settings, chat=chat))
    return 0


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
        log.info("stopping (%s received)%s", sig.name, " now" if now else "")
        if self._starting is not None:
            self._starting.cancel()
        elif self._bot is not None:
            self._bot.stop(force=now)

    def log_stopped(self, *, during_start: bool = False) -> None:
        if self.signal_name is None:
            log.info("stopped")
            return
        log.info(
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
            log.debug("open file limit raised from %d to %d", before, after)
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
