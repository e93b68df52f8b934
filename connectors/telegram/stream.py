"""Showing a reply in a chat: split into messages, streamed by drafts or by edits.

A streamed answer's first update is made once the model has written for one edit
interval (an answer finished sooner goes out as a single message, with no draft or
edit), then at most once per interval as text arrives. In a private chat (``streaming
= "auto"``) the updates are drafts (``draft.DraftWriter``) and the answer is sent as
messages when complete; elsewhere the first message is sent and then edited
(``ReplyWriter``). The chat shows ``typing`` while the model works and no draft is on
screen. Text past 4,096 characters continues in a new message. Quick replies are
attached to the last message when the answer is complete. A reply cut off by shutdown
gets " …" appended, so it does not read as complete; the next start answers the
message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from telegram import InlineKeyboardMarkup

from botkit.channel import ReplyStream, best_effort
from botkit.errors import ConnectorError
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.sender import Sender, Target
from connectors.telegram.split import MAX_MESSAGE, split_text

__all__ = ["INTERRUPTED_MARK", "ReplyWriter", "StreamWriter", "stream_reply"]

log = logging.getLogger("connectors.telegram")

_MIN_INTERVAL_S = 0.05  # keeps a zero edit interval from spinning
# Shutdown waits this long at most for the edit that marks a cut-off reply.
_INTERRUPTED_EDIT_S = 2.0
INTERRUPTED_MARK = " …"


class StreamWriter(Protocol):
    """How ``stream_reply`` shows a reply: ``ReplyWriter`` (edits) or ``DraftWriter``."""

    sender: Sender
    target: Target

    @property
    def message_ids(self) -> list[int]:
        """Ids of the messages sent for the reply so far, in order."""
        ...

    @property
    def shows_progress(self) -> bool:
        """Whether the chat already shows the reply growing (no ``typing`` needed)."""
        ...

    async def progress(self, text: str) -> bool:
        """Show ``text``, the reply so far; returns whether Telegram was called."""
        ...

    def finish_edits(self, text: str, buttons: bool) -> bool:
        """Whether ``finish`` would edit a message on screen (it then keeps the pace)."""
        ...

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None) -> None:
        """Leave the complete reply in the chat as messages, ``markup`` on the last."""
        ...

    async def mark_interrupted(self, *, takeover: bool) -> bool:
        """Mark the reply as cut off (see ``ReplyWriter.mark_interrupted``)."""
        ...


class ReplyWriter:
    """Keeps one reply's messages in a chat in step with its text (the edit path)."""

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

    @property
    def shows_progress(self) -> bool:
        return False  # an edited message does not show that more is coming: typing does

    def parts(self, text: str) -> list[str]:
        """``text`` as the messages that show it (split, trimmed, none blank)."""
        return [p.strip() for p in split_text(text, self.limit) if p.strip()]

    def changes(self, text: str) -> bool:
        """Whether showing ``text`` (without buttons) would send or edit a message."""
        return self.parts_change(self.parts(text))

    def parts_change(self, parts: list[str]) -> bool:
        shown = [s for _, s in self._messages]
        return any(i >= len(shown) or shown[i] != p for i, p in enumerate(parts))

    async def progress(self, text: str) -> bool:
        if not self.changes(text):  # not for whitespace only: Telegram trims it
            return False
        await self.show(text)
        return True

    def finish_edits(self, text: str, buttons: bool) -> bool:
        return bool(self._messages) and (self.changes(text) or buttons)

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None) -> None:
        await self.show(text, markup)

    async def show(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Send or edit messages so the chat shows ``text`` (and ``markup`` at its end).

        Raises:
            ConnectorError: a send or edit finally failed, or ``text`` is blank.
        """
        parts = self.parts(text)
        if not parts:
            if not self._messages:
                raise ConnectorError("telegram: the reply is empty")
            return
        await self.show_parts(parts, markup)
        self.text = text

    async def show_parts(
        self, parts: list[str], markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """Send or edit messages so the first ones show ``parts`` (from ``parts()``)."""
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

    def record(self, message_id: int, shown: str) -> None:
        """Count a message sent for the reply outside ``show`` (``DraftWriter``'s mark)."""
        self._messages.append((message_id, shown))

    async def mark_interrupted(self, *, takeover: bool = False) -> bool:
        """Append ``INTERRUPTED_MARK`` to the last message shown, so a reply cut off by
        shutdown or an agent's takeover does not read as complete (after a shutdown the
        next start answers the message again).

        One call, unpaced and without retries; skipped while Telegram asked for a pause.
        Returns whether a message was edited.
        """
        if not self._messages or self.sender.flood.paused:
            return False
        message_id, shown = self._messages[-1]
        await self.sender.edit_once(self.target.chat_id, message_id, shown + INTERRUPTED_MARK)
        return True


async def _mark_interrupted(writer: StreamWriter, *, takeover: bool = False) -> None:
    """Best effort, in its own task (shielded from the cancellation that got us here),
    waited for at most ``_INTERRUPTED_EDIT_S``. Never raises."""

    why = "an agent's takeover" if takeover else "shutdown"

    async def mark() -> None:
        try:
            if await writer.mark_interrupted(takeover=takeover):
                log.info("telegram: reply in %s cut off by %s, marked", writer.target.chat_id, why)
        except Exception as exc:  # best effort: the message stays as it was
            log.info("telegram: reply cut off by %s not marked: %s", why, exc)

    await best_effort(mark(), _INTERRUPTED_EDIT_S)


async def _typing(writer: StreamWriter, interval: float) -> None:
    while True:
        if not writer.shows_progress:  # a draft on screen already shows the reply coming
            await writer.sender.typing(writer.target)
        await asyncio.sleep(interval)


async def stream_reply(
    stream: ReplyStream,
    writer: StreamWriter,
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
            if await writer.progress(latest):
                last = time.monotonic()

    typing = asyncio.create_task(_typing(writer, typing_interval))
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
        if final.superseded:
            # An agent took over: what was shown is marked cut off, nothing new is sent
            # (the agent's message is already below it).
            await _stop(done, typing, flusher)
            if writer.message_ids:
                await _mark_interrupted(writer, takeover=True)
            return
        wait = interval - (time.monotonic() - last)
        if writer.finish_edits(final.text, bool(final.buttons)) and wait > 0:
            await asyncio.sleep(wait)  # the last edit keeps the pace too
        await writer.finish(final.text, codec.keyboard(final.buttons))
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
