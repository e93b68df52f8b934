"""Showing a reply in a chat: split into messages, streamed by editing the last one.

A streamed answer's first message is sent once the model has written for one edit
interval (an answer finished sooner goes out as a single message, with no edits), then
edited at most once per interval as text arrives; the chat also shows ``typing`` while
the model works. Text past 4,096 characters continues in a new message. Quick replies
are attached to the last message when the answer is complete. A reply cut off by
shutdown gets " …" appended, so it does not read as complete; the next start answers
the message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from telegram import InlineKeyboardMarkup

from botkit.channel import ReplyStream, best_effort
from botkit.errors import ConnectorError
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.sender import Sender, Target
from connectors.telegram.split import MAX_MESSAGE, split_text

__all__ = ["ReplyWriter", "stream_reply"]

log = logging.getLogger("connectors.telegram")

_MIN_INTERVAL_S = 0.05  # keeps a zero edit interval from spinning
# Shutdown waits this long at most for the edit that marks a cut-off reply.
_INTERRUPTED_EDIT_S = 2.0
INTERRUPTED_MARK = " …"


class ReplyWriter:
    """Keeps one reply's messages in a chat in step with its text."""

    def __init__(self, sender: Sender, target: Target, *, limit: int = MAX_MESSAGE) -> None:
        self.sender = sender
        self.target = target
        self.limit = limit
        self.text = ""  # what is shown
        # (message id, text shown in it). Telegram trims a message's text, and refuses
        # an edit that changes only the whitespace around it ("message is not modified"),
        # so texts are trimmed before they are sent and compared: such an edit is never
        # made, and does not use up a flood slot.
        self._messages: list[tuple[int, str]] = []

    @property
    def message_ids(self) -> list[int]:
        return [mid for mid, _ in self._messages]

    def _parts(self, text: str) -> list[str]:
        return [p.strip() for p in split_text(text, self.limit) if p.strip()]

    def changes(self, text: str) -> bool:
        """Whether showing ``text`` (without buttons) would send or edit a message."""
        shown = [s for _, s in self._messages]
        return any(i >= len(shown) or shown[i] != p for i, p in enumerate(self._parts(text)))

    async def show(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Send or edit messages so the chat shows ``text`` (and ``markup`` at its end).

        Raises:
            ConnectorError: a send or edit finally failed, or ``text`` is blank.
        """
        parts = self._parts(text)
        if not parts:
            if not self._messages:
                raise ConnectorError("telegram: the reply is empty")
            return
        for i, part in enumerate(parts):
            keyboard = markup if i == len(parts) - 1 else None
            if i < len(self._messages):
                message_id, shown = self._messages[i]
                if shown == part and keyboard is None:
                    continue
                await self.sender.edit_message(self.target.chat_id, message_id, part, keyboard)
                self._messages[i] = (message_id, part)
            else:
                message_id = await self.sender.send_message(
                    self.target, part, keyboard, quote=i == 0
                )
                self._messages.append((message_id, part))
        self.text = text

    async def mark_interrupted(self) -> bool:
        """Append ``INTERRUPTED_MARK`` to the last message shown, so a reply cut off by
        shutdown does not read as complete (the next start answers the message again).

        One call, unpaced and without retries; skipped while Telegram asked for a pause.
        Returns whether a message was edited.
        """
        if not self._messages or self.sender.flood.paused:
            return False
        message_id, shown = self._messages[-1]
        await self.sender.bot.edit_message_text(
            shown + INTERRUPTED_MARK, chat_id=self.target.chat_id, message_id=message_id
        )
        return True


async def _mark_interrupted(writer: ReplyWriter) -> None:
    """Best effort, in its own task (shielded from the cancellation that got us here),
    waited for at most ``_INTERRUPTED_EDIT_S``. Never raises."""

    async def mark() -> None:
        try:
            if await writer.mark_interrupted():
                log.info("telegram: reply in %s cut off by shutdown, marked", writer.target.chat_id)
        except Exception as exc:  # the bot is stopping; the message stays as it was
            log.info("telegram: reply cut off by shutdown not marked: %s", exc)

    await best_effort(mark(), _INTERRUPTED_EDIT_S)


async def _typing(sender: Sender, target: Target, interval: float) -> None:
    while True:
        await sender.typing(target)
        await asyncio.sleep(interval)


async def stream_reply(
    stream: ReplyStream,
    writer: ReplyWriter,
    codec: ButtonCodec,
    *,
    edit_interval: float,
    typing_interval: float,
) -> None:
    """Show ``stream`` through ``writer`` as it is generated; see the module docstring.

    Raises:
        ConnectorError: the complete answer could not be shown.
    """
    interval = max(edit_interval, _MIN_INTERVAL_S)
    latest = ""
    changed, done = asyncio.Event(), asyncio.Event()

    last = time.monotonic()  # of the last send or edit; the first message waits too

    async def flush() -> None:
        nonlocal last
        while True:
            await changed.wait()  # also set when the stream ends
            if done.is_set():
                return
            wait = interval - (time.monotonic() - last)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), wait)
                if done.is_set():
                    return
            changed.clear()
            if writer.changes(latest):  # not for whitespace only: Telegram trims it
                await writer.show(latest)
                last = time.monotonic()

    typing = asyncio.create_task(_typing(writer.sender, writer.target, typing_interval))
    flusher = asyncio.create_task(flush())
    try:
        async for delta in stream:
            latest += delta
            changed.set()
        done.set()
        changed.set()
        try:
            await flusher
        except ConnectorError as exc:  # a progress edit failed; the final show decides
            log.warning("%s", exc)
        final = await stream.final()
        if final.metadata.get("superseded"):
            # An agent took over: what was shown is marked cut off, nothing new is sent
            # (the agent's message is already below it).
            await _stop(done, typing, flusher)
            if writer.message_ids:
                await _mark_interrupted(writer)
            return
        wait = interval - (time.monotonic() - last)
        edit = writer.message_ids and (writer.changes(final.text) or final.buttons)
        if edit and wait > 0:  # the last edit keeps the pace too
            await asyncio.sleep(wait)
        await writer.show(final.text, codec.keyboard(final.buttons))
    except asyncio.CancelledError:  # shutdown past its grace period
        # The progress edits stop first, or one still in flight would overwrite the mark.
        await _stop(done, typing, flusher)
        await _mark_interrupted(writer)
        raise
    finally:
        await _stop(done, typing, flusher)


async def _stop(done: asyncio.Event, *tasks: asyncio.Task[None]) -> None:
    done.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
