"""``WebConnector``: the web chat channel (aiohttp server + embeddable widget)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from aiohttp import WSCloseCode, web

from botkit.channel import CoreHandle, ReplyStream
from botkit.connector import Connector, ConnectorConfig
from botkit.errors import ConnectorError
from botkit.events import ANSWERED_LANGUAGE, OutboundReply
from botkit.http_server import server_runner
from connectors.web._messages import message_payload, reply_item, update_payload
from connectors.web.app import create_app
from connectors.web.config import WebConfig
from connectors.web.hub import Outgoing
from connectors.web.service import CHANNEL, WebService

__all__ = ["WebConnector"]

log = logging.getLogger(__name__)

# At shutdown, how long the sockets get to send what is queued for them (a cut reply's
# stored message, a reply that finished at the end of the grace) before they close.
FLUSH_S = 2.0


@dataclass(frozen=True, slots=True)
class _Cut:
    """A reply whose stream the shutdown cut (its task was cancelled)."""

    key: str
    stream_id: str
    stream: ReplyStream


def _reply_payload(reply: OutboundReply, stream_id: str | None = None) -> Outgoing:
    """The live ``message`` frame of a reply: the same frame its replay will be."""
    payload = message_payload(reply_item(reply), stream_id)
    if reply.seq is None:
        payload["seq"] = None  # not stored (a notice): outside the seq order, never resumed
    return Outgoing(payload, seq=reply.seq)


class WebConnector(Connector[WebConfig]):
    """Serves the chat widget, its WebSocket, the HTTP API and the demo page.

    Replies reach every open socket of the visitor's conversation; a visitor with none
    open reads them from history when they reconnect (the core has stored them). What
    another bot process sharing the database stores for a socket held here (an agent's
    message sent through that process's API) is pushed after the core's next look at
    the database (``watched``/``advanced``, see ``botkit.channel.WatchedConversations``).
    """

    name: ClassVar[str] = CHANNEL
    earlier_quick_replies_stay: ClassVar[bool] = False  # only the newest message's
    Config: ClassVar[type[ConnectorConfig]] = WebConfig

    def __init__(self, config: WebConfig, core: CoreHandle) -> None:
        super().__init__(config, core)
        self.service = WebService(config, core)
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self.port: int | None = None
        # Stream ids only pair a reply's stream frames within one conversation; a random
        # per-process prefix and a counter keep them unique without a uuid4 (an
        # os.urandom call) per reply.
        prefix = secrets.token_hex(4)
        self._stream_ids = (f"{prefix}{n:08x}" for n in itertools.count())
        self._cut: list[_Cut] = []  # streams the shutdown cut, ended by disconnect()

    def make_app(self) -> web.Application:
        """A fresh aiohttp application bound to this connector (tests serve it directly)."""
        return create_app(self.service)

    async def connect(self) -> None:
        """Bind the HTTP server; ``ConnectorError`` if the address is unavailable."""
        if self._runner is not None:
            return
        runner = server_runner(self.make_app(), shutdown_timeout=2.0)
        try:
            await runner.setup()  # loads the session key (WebService.start)
        except BaseException:
            await runner.cleanup()
            raise
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConnectorError(
                f"web: cannot listen on {self.config.host}:{self.config.port}: {exc}"
            ) from exc
        self._runner = runner
        self._stopped.clear()
        self.service.take_again()
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.config.port
        if self.config.serve_demo_page:
            # The demo page is served from here, so its origin must be allowed.
            for host in {self.config.host, "127.0.0.1", "localhost"}:
                if host not in ("0.0.0.0", "::"):
                    self.service.origins.add(f"http://{host}:{self.port}")
        log.info("web: serving on http://%s:%s/", self.config.host, self.port)

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.config.host}:{self.port}"

    async def listen(self) -> None:
        """Serve until ``disconnect`` (aiohttp handles requests in its own tasks).

        ``Bot.run`` cancels the listeners when the bot stops taking messages, at the
        start of its shutdown grace period: from then on new sockets, long polls,
        sessions and messages are refused (503 / error ``shutting_down``), so that
        clients go elsewhere (another replica) while the replies in flight finish here.
        """
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            self.service.stop_taking()
            raise

    async def send(self, reply: OutboundReply) -> None:
        """Push a complete reply (agent message, notice) to the visitor's open sockets."""
        self.service.hub.publish(reply.conversation_key, _reply_payload(reply))
        self._update_answered(reply)

    async def send_stream(self, stream: ReplyStream) -> None:
        """Forward deltas as they come, then the stored reply with its ``seq``."""
        hub, key = self.service.hub, stream.conversation_key
        stream_id = next(self._stream_ids)
        hub.stream_start(key, stream_id, stream.in_reply_to_seq)
        cut = False
        try:
            async for delta in stream:
                if delta:
                    hub.stream_delta(key, stream_id, delta)
            final = await stream.final()
            if final.seq is not None or not final.superseded:
                # (A reply an agent's takeover cut before its first words: nothing to show.)
                hub.publish(key, _reply_payload(final, stream_id))
        except asyncio.CancelledError:
            # The shutdown grace ran out: the core now stores what was generated, as
            # failed. The stream stays open until disconnect(), which sends that stored
            # message first, as at the end of any stream (see _end_cut_streams).
            cut = True
            self._cut.append(_Cut(key, stream_id, stream))
            raise
        finally:
            if not cut:
                hub.stream_end(key, stream_id)
        self._update_answered(final)

    def _update_answered(self, reply: OutboundReply) -> None:
        """Tell the sockets what the bot learned about the message ``reply`` answers.

        The visitor's message went out when it was stored, before its language was
        detected; the core records that language with the reply and hands it over on
        the reply (``ANSWERED_LANGUAGE``), so the live copy ends up with what a replay
        shows without a read of the store per reply. After the reply, never before it:
        a socket still catching up sends the message (from history, already complete)
        before either.

        The key is there whenever the reply's write recorded the message as answered;
        its value is None when the bot could not tell the message's language (the reply
        went out in a fallback one, and the message is stored with none): the update
        still goes, with ``language: null``, as the status moved on all the same.
        """
        seq, key = reply.in_reply_to_seq, reply.conversation_key
        if reply.seq is None or seq is None or ANSWERED_LANGUAGE not in reply.metadata:
            return
        if self.service.hub.subscribers(key):
            language = reply.metadata[ANSWERED_LANGUAGE]
            stored = language if isinstance(language, str) and language else None
            payload = update_payload(seq, stored, "answered")  # as the store has it
            self.service.hub.publish(key, Outgoing(payload))

    def open_connections(self) -> int:
        """Widget sockets open to this process (``botkit.metrics.OpenConnections``)."""
        return len(self.service.sockets)

    def watched(self) -> tuple[str, ...]:
        """Conversations with a socket or long poll open here (``WatchedConversations``)."""
        return self.service.hub.watched()

    def advanced(self, last_seqs: Mapping[str, int]) -> None:
        """Push open sockets what another bot process stored for them (from history)."""
        hub = self.service.hub
        for key, last_seq in last_seqs.items():
            hub.advance(key, last_seq)

    def _end_cut_streams(self) -> None:
        """End the streams the shutdown cut, each after the message the core stored for
        it (status ``failed``, the text generated so far), as a ``message`` frame with
        the stream's ``stream_id``: the client turns the streamed text into it, as at the
        end of any stream, and a replay later shows the same. By now the core has
        stored it (``Bot`` disconnects after the cut replies' tasks ended); a reply the
        core could not store (the database was away) just ends its stream, and the
        next replay shows what is stored."""
        cut, self._cut = self._cut, []
        hub = self.service.hub
        for c in cut:
            stored = c.stream.stored_reply
            if stored is not None and stored.seq is not None:
                hub.publish(c.key, _reply_payload(stored, c.stream_id))
            hub.stream_end(c.key, c.stream_id)

    async def disconnect(self) -> None:
        """Close every socket (1001) and stop the server. Safe to call twice.

        Each socket first sends what is queued for it (within ``FLUSH_S``): the stored
        copies of the replies the shutdown cut, and of those that finished just before.
        """
        self._stopped.set()
        self.service.stop_taking()
        self._end_cut_streams()
        await self.service.flush_connections(FLUSH_S)
        runner, self._runner = self._runner, None
        closing = [
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            for ws in list(self.service.sockets)
        ]
        await asyncio.gather(*closing, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
