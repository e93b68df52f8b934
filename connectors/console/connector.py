"""A terminal connector: one conversation on stdin/stdout, used by ``botkit chat``.

Lines are read by a daemon thread (a blocking ``readline`` cannot be cancelled, and a
daemon thread does not keep the process alive at exit) and handed to the event loop.
Each line goes through the same ``submit`` path as any channel; the reply is printed as
it streams, then the prompt is shown again.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
import uuid
from typing import ClassVar, TextIO

from pydantic import Field

from botkit.channel import CoreHandle, ReplyStream
from botkit.errors import BotkitError, ConnectorError
from botkit.events import Contact, InboundMessage, OutboundReply
from connectors.base import Connector, ConnectorConfig

__all__ = ["ConsoleConfig", "ConsoleConnector"]

_QUIT = {"/quit", "/exit"}


class ConsoleConfig(ConnectorConfig):
    """``[connectors.console]``."""

    prompt: str = "you> "
    bot_prefix: str = "bot> "
    user: str | None = Field(default=None, description="contact id; default: OS user name")
    conversation_key: str | None = Field(
        default=None, description="default: 'console:<user>', so a chat continues next time"
    )
    reply_timeout_seconds: float = Field(default=120.0, gt=0, le=86_400)


class ConsoleConnector(Connector[ConsoleConfig]):
    """Chat with the bot in a terminal. ``/quit`` or end of input ends the chat."""

    name: ClassVar[str] = "console"
    earlier_quick_replies_stay: ClassVar[bool] = False  # typed, not clicked: bare labels read best
    Config: ClassVar[type[ConnectorConfig]] = ConsoleConfig

    def __init__(
        self,
        config: ConsoleConfig,
        core: CoreHandle,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        super().__init__(config, core)
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self.user = config.user or _os_user()
        self.conversation_key = config.conversation_key or f"console:{self.user}"
        self._session = uuid.uuid4().hex[:12]  # idempotency keys unique per run
        self._lines: asyncio.Queue[str | None] | None = None
        self._replied = asyncio.Event()
        self._closed = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._lines = lines

        def read() -> None:
            try:
                for line in iter(self._in.readline, ""):
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except (OSError, ValueError):  # stdin closed under us
                pass
            finally:
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, None)
                except RuntimeError:  # the loop is gone: nobody is waiting anyway
                    pass

        threading.Thread(target=read, name="console-stdin", daemon=True).start()

    async def listen(self) -> None:
        if self._lines is None:
            raise ConnectorError("console connector: connect() was not called")
        count = 0
        while not self._closed:
            self._write(self.config.prompt)
            line = await self._lines.get()
            if line is None:
                self._write("\n")
                return
            text = line.rstrip("\n")
            if text.strip() in _QUIT:
                return
            if not text.strip():
                continue
            count += 1
            self._replied.clear()
            try:
                await self.core.submit(self._message(text, count))
            except BotkitError as exc:
                self._write(f"[error] {exc}\n")
                continue
            try:
                await asyncio.wait_for(self._replied.wait(), self.config.reply_timeout_seconds)
            except TimeoutError:
                self._write("[no reply yet]\n")

    def _message(self, text: str, count: int) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            conversation_key=self.conversation_key,
            contact=Contact(channel=self.name, external_id=self.user, display_name=self.user),
            text=text,
            idempotency_key=f"{self._session}-{count}",
        )

    async def send(self, reply: OutboundReply) -> None:
        self._write(f"{self.config.bot_prefix}{reply.text}\n")
        self._show_buttons(reply)
        self._replied.set()

    async def send_stream(self, stream: ReplyStream) -> None:
        started = False  # the prefix waits for the first words (a takeover may leave none)
        try:
            async for delta in stream:
                if not started:
                    self._write(self.config.bot_prefix)
                    started = True
                self._write(delta)
        finally:
            if started:
                self._write("\n")
        self._show_buttons(await stream.final())
        self._replied.set()

    async def no_reply(self, message: InboundMessage) -> None:
        if message.conversation_key != self.conversation_key:
            return
        if await self.core.with_human(self.name, self.conversation_key):
            self._write("[for the human agent: their answers show here]\n")
        self._replied.set()

    def _show_buttons(self, reply: OutboundReply) -> None:
        for button in reply.buttons:
            self._write(f"  [{button.label}] -> type: {button.value}\n")

    def _write(self, text: str) -> None:
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError) as exc:  # terminal gone
            raise ConnectorError(f"console output failed: {exc}") from exc

    async def disconnect(self) -> None:
        self._closed = True
        if self._lines is not None:
            self._lines.put_nowait(None)


def _os_user() -> str:
    try:
        return getpass.getuser() or "user"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "user"
