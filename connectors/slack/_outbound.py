"""Replies going out to Slack: complete ones, and streamed ones shown while generated."""

from __future__ import annotations

import asyncio
import logging

from botkit.channel import ReplyStream
from botkit.errors import ConnectorError
from botkit.events import OutboundReply
from connectors.slack._api import SlackApi
from connectors.slack._inbound import split_key
from connectors.slack._writer import ReplyWriter, Target
from connectors.slack.config import SlackConfig

__all__ = ["Outbound"]

log = logging.getLogger("connectors.slack")

_MAX_NO_STATUS = 10_000


class Outbound:
    """Delivers the core's replies into the thread they answer."""

    def __init__(self, api: SlackApi, config: SlackConfig) -> None:
        self._api = api
        self._config = config
        self._no_status: set[str] = set()

    def _target(self, reply_to: dict[str, str], conversation_key: str) -> Target:
        channel, thread_ts = split_key(conversation_key)
        return Target(
            channel=reply_to.get("channel") or channel,
            thread_ts=reply_to.get("thread_ts") or thread_ts,
        )

    def _writer(self, target: Target) -> ReplyWriter:
        return ReplyWriter(self._api, target, self._config.max_message_chars)

    async def send(self, reply: OutboundReply) -> None:
        """Post a complete reply (split over several messages if long) in its thread.

        Raises:
            ConnectorError: it could not be delivered after the retries.
        """
        writer = self._writer(self._target(reply.reply_to, reply.conversation_key))
        await writer.show(reply.text, final=True, buttons=reply.buttons)

    async def send_stream(self, stream: ReplyStream) -> None:
        """Show a "thinking" state, then the text as it grows (edits at most every
        ``update_interval_s``), then the final text with its buttons.

        Edits while streaming are best effort; the final text must arrive or this raises
        ``ConnectorError`` (the core then stores the reply as failed).
        """
        target = self._target(stream.reply_to, stream.conversation_key)
        writer = self._writer(target)
        status = await self._show_thinking(target, writer)
        parts: list[str] = []
        reader = asyncio.create_task(_collect(stream, parts))
        loop = asyncio.get_running_loop()
        try:
            shown = 0
            next_edit = loop.time() + self._config.update_interval_s
            while not reader.done():
                await asyncio.wait({reader}, timeout=max(0.0, next_edit - loop.time()))
                if reader.done():
                    break
                text = "".join(parts)
                if len(text) != shown:
                    try:
                        await writer.show(text, final=False)
                    except ConnectorError as exc:
                        log.warning("slack: streaming edit failed (final text follows): %s", exc)
                    shown = len(text)
                next_edit = loop.time() + self._config.update_interval_s
            reader.result()
            final = await stream.final()
            await writer.show(final.text, final=True, buttons=final.buttons)
        except asyncio.CancelledError:
            reader.cancel()
            raise
        except Exception:
            reader.cancel()
            if status and writer.posted == 0:
                await self._clear_status(target)
            raise

    async def _show_thinking(self, target: Target, writer: ReplyWriter) -> bool:
        """Show that a reply is coming; True when it is the assistant status line."""
        mode = self._config.typing_indicator
        if mode == "off":
            return False
        if mode == "auto" and target.thread_ts and target.channel not in self._no_status:
            try:
                await self._api.call_once(
                    "assistant.threads.setStatus",
                    channel_id=target.channel,
                    thread_ts=target.thread_ts,
                    status=self._config.thinking_status,
                )
                return True
            except ConnectorError as exc:
                # Only AI-app threads have a status line; remember where it is refused.
                log.debug("slack: no thinking status in %s: %s", target.channel, exc)
                if len(self._no_status) >= _MAX_NO_STATUS:
                    self._no_status.clear()
                self._no_status.add(target.channel)
        try:
            await writer.placeholder(self._config.thinking_text)
        except ConnectorError as exc:
            log.warning("slack: placeholder not posted (the reply will still be tried): %s", exc)
        return False

    async def _clear_status(self, target: Target) -> None:
        try:
            await self._api.call_once(
                "assistant.threads.setStatus",
                channel_id=target.channel,
                thread_ts=target.thread_ts,
                status="",
            )
        except ConnectorError as exc:
            log.debug("slack: status not cleared: %s", exc)


async def _collect(stream: ReplyStream, parts: list[str]) -> None:
    async for delta in stream:
        parts.append(delta)
