"""Replies going out to Slack: complete ones, and streamed ones shown while generated."""

from __future__ import annotations

import asyncio
import functools
import logging

from botkit.channel import ReplyStream, best_effort
from botkit.errors import ConnectorError
from botkit.events import OutboundReply
from connectors.slack._api import SlackApi, SlackCallError
from connectors.slack._inbound import split_key
from connectors.slack._orphans import Sweeper
from connectors.slack._stream import NOT_AVAILABLE, NativeStream
from connectors.slack._writer import ReplyWriter, Target
from connectors.slack.config import SlackConfig

__all__ = ["Outbound"]

log = logging.getLogger("connectors.slack")

_MAX_NO_STATUS = 10_000
# chat.startStream's answers for a conversation where streaming is not to be had.
_CHANNEL_WITHOUT_STREAMING = frozenset({"channel_type_not_supported"})
# How long a reply cut off by shutdown may take to be marked as such: shutdown waits for
# it, and one edit normally takes well under a second.
_INTERRUPTED_EDIT_S = 2.0


class Outbound:
    """Delivers the core's replies into the thread they answer."""

    def __init__(self, api: SlackApi, config: SlackConfig) -> None:
        self._api = api
        self._config = config
        self._no_status: set[str] = set()
        # Why native streaming is off for this workspace ("auto" after Slack said it is
        # not available), or None.
        self.native_off: str | None = None
        # Channels where Slack refused streaming as such (a kind of conversation without
        # it): their replies go by edits without asking again.
        self._no_stream: set[str] = set()
        # Takes down placeholders whose post timed out (they may have landed).
        self.sweeper = Sweeper(api, config.request_timeout_s)

    async def close(self) -> None:
        """Stop the background looks for lost placeholders (at disconnect)."""
        await self.sweeper.close()

    def _target(self, reply_to: dict[str, str], conversation_key: str) -> Target:
        channel, thread_ts = split_key(conversation_key)
        return Target(
            channel=reply_to.get("channel") or channel,
            thread_ts=reply_to.get("thread_ts") or thread_ts,
        )

    def _writer(self, target: Target) -> ReplyWriter:
        return ReplyWriter(self._api, target, self._config.max_message_chars)

    def _stream_writer(
        self, target: Target, reply_to: dict[str, str]
    ) -> ReplyWriter | NativeStream:
        """A native stream where Slack allows one (see ``SlackConfig.streaming``), else the
        edit path. ``chat.startStream`` needs a thread, and outside DMs the recipient."""
        if self._config.streaming == "edit" or self.native_off or target.thread_ts is None:
            return self._writer(target)
        if target.channel in self._no_stream and self._config.streaming == "auto":
            return self._writer(target)
        recipient = {}
        if reply_to.get("user"):
            recipient["recipient_user_id"] = reply_to["user"]
        if reply_to.get("team"):
            recipient["recipient_team_id"] = reply_to["team"]
        if len(recipient) < 2 and not target.channel.startswith("D"):
            return self._writer(target)  # e.g. a reply stored before the ids were kept
        limit = self._config.max_message_chars
        refused = functools.partial(self._stream_refused, target.channel)
        return NativeStream(self._api, target, limit, recipient, refused)

    def _stream_refused(self, channel: str, exc: ConnectorError) -> None:
        """``chat.startStream`` failed before anything was shown (the reply goes out by
        edits). "auto" stops trying once Slack says the feature is not there, in the
        workspace or in the channel."""
        code = getattr(exc, "code", "")
        if code in _CHANNEL_WITHOUT_STREAMING and self._config.streaming == "auto":
            if len(self._no_stream) >= _MAX_NO_STATUS:
                self._no_stream.clear()
            self._no_stream.add(channel)
        if code in NOT_AVAILABLE and self._config.streaming == "auto":
            if self.native_off is None:
                self.native_off = code
                log.warning(
                    "slack: native streaming is not available (%s); replies are shown by"
                    ' chat.update edits until the bot restarts (streaming = "edit" skips'
                    " the try)",
                    exc,
                )
            return
        level = logging.WARNING if self._config.streaming == "native" else logging.INFO
        log.log(level, "slack: native streaming refused, this reply goes by edits: %s", exc)

    async def send(self, reply: OutboundReply) -> None:
        """Post a complete reply (split over several messages if long) in its thread.

        Raises:
            ConnectorError: it could not be delivered after the retries.
        """
        writer = self._writer(self._target(reply.reply_to, reply.conversation_key))
        await writer.show(reply.text, final=True, buttons=reply.buttons)

    async def send_stream(self, stream: ReplyStream) -> None:
        """Show a "thinking" state, then the text as it grows (edits, or appends to a
        native stream, at most every ``update_interval_s``), then the final text with
        its buttons.

        Edits while streaming are best effort; the final text must arrive or this raises
        ``ConnectorError`` (the core then stores the reply as failed). Cancelled (a
        shutdown past its grace period), it marks what was posted as cut off, within
        about two seconds, and re-raises.
        """
        target = self._target(stream.reply_to, stream.conversation_key)
        writer = self._stream_writer(target, stream.reply_to)
        parts: list[str] = []
        # The reader starts first: the core generates only while the reply is consumed,
        # and the placeholder (paced, perhaps waiting out a 429) must not hold up the model.
        reader = asyncio.create_task(_collect(stream, parts))
        thinking = asyncio.create_task(self._show_thinking(target, writer))
        loop = asyncio.get_running_loop()
        final: OutboundReply | None = None
        try:
            shown = 0
            next_edit = loop.time() + self._config.update_interval_s
            while not reader.done():
                await asyncio.wait({reader}, timeout=max(0.0, next_edit - loop.time()))
                if reader.done():
                    break
                text = "".join(parts)
                if len(text) != shown:
                    # The first edit needs the placeholder's ts (later this returns at
                    # once); shielded so a shutdown leaves the placeholder to clean up.
                    await asyncio.shield(thinking)
                    try:
                        # False: an edit was skipped (no chat.update token free at once);
                        # ``shown`` stays behind, so the next tick tries again even if
                        # the text has not grown, and the final text always follows.
                        if await writer.show(text, final=False):
                            shown = len(text)
                    except ConnectorError as exc:
                        if getattr(exc, "unknown_outcome", False):
                            # A post timed out and may be showing: the writer refuses
                            # every later call, so the reply fails here.
                            raise
                        log.warning("slack: streaming edit failed (final text follows): %s", exc)
                        shown = len(text)
                next_edit = loop.time() + self._config.update_interval_s
            reader.result()
            final = await stream.final()
            if final.superseded:
                # An agent took over: mark what was posted as cut off (a placeholder
                # with nothing in it yet is cleared) instead of showing more of it.
                await self._interrupted(target, writer, thinking, "".join(parts))
                return
            await asyncio.shield(thinking)
            await writer.show(final.text, final=True, buttons=final.buttons)
        except asyncio.CancelledError:
            reader.cancel()
            await self._interrupted(target, writer, thinking, "".join(parts))
            raise
        except Exception as exc:
            reader.cancel()
            status = _finished_with(thinking) is True
            thinking.cancel()  # no use for a placeholder any more
            if status and writer.posted == 0:
                await self._clear_status(target)
            if await self._replace_placeholder(target, writer, final, exc):
                return  # the answer went out as a new message
            raise

    async def _replace_placeholder(
        self,
        target: Target,
        writer: ReplyWriter | NativeStream,
        final: OutboundReply | None,
        why: Exception,
    ) -> bool:
        """The reply failed with the "thinking" placeholder still up: never leave it there.

        The placeholder is still up only when its edit into the reply failed (``show``
        edits it before posting anything else): a workspace-wide ``chat.update`` hold
        (a 429 with a long ``Retry-After``), or edits failing. The answer, when there is
        one, is then posted as a new message (``chat.postMessage`` has no workspace-wide
        budget), and the placeholder is deleted either way. Best effort: no call is
        started or tried again past about three calls' time (``request_timeout_s``
        each), but a call in flight is never cut off (it may reach Slack: the answer
        would show while the reply is stored as failed, or only some pieces would);
        never raises.

        Returns:
            True when the answer was posted.
        """
        ts = writer.placeholder_ts
        if ts is None:
            return False
        delivered = False
        if final is not None:
            deadline = asyncio.get_running_loop().time() + 3 * self._config.request_timeout_s
            limit = self._config.max_message_chars
            try:
                await ReplyWriter(self._api, target, limit, deadline).show(
                    final.text, final=True, buttons=final.buttons
                )
                delivered = True
                log.warning(
                    "slack: the placeholder in %s could not be edited (%s); the reply was"
                    " posted as a new message instead",
                    target.channel,
                    why,
                )
            except ConnectorError as exc:
                log.warning("slack: reply in %s not posted instead either: %s", target.channel, exc)
        try:
            await self._api.call_once("chat.delete", channel=target.channel, ts=ts)
        except ConnectorError as exc:
            log.warning("slack: placeholder in %s not deleted: %s", target.channel, exc)
        return delivered

    async def _interrupted(
        self,
        target: Target,
        writer: ReplyWriter | NativeStream,
        thinking: asyncio.Task[bool],
        text: str,
    ) -> None:
        """Mark a reply cut off by shutdown, so what was posted does not read as complete.

        Best effort: one unpaced call without retries, in its own task (shielded from the
        cancellation) and waited for at most ``_INTERRUPTED_EDIT_S``; an edit takes its
        workspace ``chat.update`` token first, within the same bound. Never raises.
        """
        deadline = asyncio.get_running_loop().time() + _INTERRUPTED_EDIT_S
        mark = self._mark_interrupted(target, writer, thinking, text, deadline)
        if not await best_effort(mark, _INTERRUPTED_EDIT_S):
            log.info("slack: reply in %s cut off, not marked in time", target.channel)
            thinking.cancel()

    async def _mark_interrupted(
        self,
        target: Target,
        writer: ReplyWriter | NativeStream,
        thinking: asyncio.Task[bool],
        text: str,
        deadline: float,
    ) -> None:
        try:
            status = await thinking  # a placeholder being posted is cleaned up too
            call = writer.interrupted(text)
            if call is None:
                if status and writer.posted == 0:
                    await self._clear_status(target)
                return
            method, payload = call
            if not await self._api.take_budget(method, deadline):
                # Slack asked for a pause (429) or the workspace's edits are used up.
                log.info("slack: reply in %s cut off, no edit budget to mark it", target.channel)
                return
            await self._api.call_once(method, **payload)
            log.info("slack: reply in %s cut off by shutdown, marked (%s)", target.channel, method)
        except ConnectorError as exc:
            log.info("slack: reply cut off by shutdown not marked: %s", exc)
        except Exception:
            log.warning("slack: marking a reply cut off by shutdown failed", exc_info=True)

    async def _show_thinking(self, target: Target, writer: ReplyWriter | NativeStream) -> bool:
        """Show that a reply is coming; True when it is the assistant status line.

        The status line (``assistant.threads.setStatus``, scope ``chat:write``) exists
        only in threads: in Slack's AI-app threads, and in channel threads since Slack's
        2026-03 change. Elsewhere, or where Slack refuses it, a placeholder is posted.
        """
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
                log.debug("slack: no thinking status in %s: %s", target.channel, exc)
                # Remember a channel where Slack refuses the status line (a workspace or
                # a kind of conversation without it), not one where it was busy: a 429
                # or a network error says nothing about the next reply there.
                if not (isinstance(exc, SlackCallError) and exc.transient):
                    if len(self._no_status) >= _MAX_NO_STATUS:
                        self._no_status.clear()
                    self._no_status.add(target.channel)
        try:
            await writer.placeholder(self._config.thinking_text)
        except ConnectorError as exc:
            log.warning("slack: placeholder not posted (the reply will still be tried): %s", exc)
            if writer.lost_placeholder is not None:
                # Its post timed out: it may have landed all the same (only the answer
                # was lost), so it is looked for by its marker and deleted.
                self.sweeper.sweep(writer.lost_placeholder)
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


def _finished_with(task: asyncio.Task[bool]) -> bool | None:
    """The task's result if it finished normally, else None (without raising)."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


async def _collect(stream: ReplyStream, parts: list[str]) -> None:
    async for delta in stream:
        parts.append(delta)
