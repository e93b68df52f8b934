"""Showing one reply with Slack's native streaming: ``chat.startStream``, then
``chat.appendStream`` as text arrives, then ``chat.stopStream`` with the buttons.

Streamed text cannot be taken back, so only text whose Markdown conversion is settled
is sent (``_settled``), and a message is cut for length before text goes into it, never
after. A streamed message holds at most ``max_message_chars`` characters of the reply,
like the messages of the edit path (Slack documents 12,000 characters per call but
refuses appends past about as much in one message, ``msg_too_long``), and Slack ends a
stream about five minutes after it started, so a message streamed for four minutes is
stopped and the reply continues in the next one.

Whatever goes wrong, the reply is not lost or shown twice: when ``chat.startStream`` fails
before anything was shown, the whole reply goes out the edit way (``ReplyWriter``); when
a later call fails, the messages already streamed are handed to the ``ReplyWriter``
(``adopt``), which edits them into the complete reply.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botkit.errors import ConnectorError
from botkit.events import Button
from botkit.textsplit import complete_clusters, next_cut
from connectors.slack._api import SlackApi
from connectors.slack._orphans import LostPost
from connectors.slack._text import SPLIT_RULES, button_blocks, markdown_text
from connectors.slack._writer import ReplyWriter, Target

__all__ = ["NOT_AVAILABLE", "NativeStream"]

log = logging.getLogger("connectors.slack")

# Slack's answers meaning native streaming is not there for this app or workspace (an
# older Slack, GovSlack, a workspace or app without the AI-app features), not a problem of
# one reply: "auto" then stops trying (``Outbound``).
NOT_AVAILABLE = frozenset(
    {
        "unknown_method",
        "method_deprecated",
        "deprecated_endpoint",
        "feature_not_enabled",
        "not_allowed",
        "not_allowed_token_type",
        "team_not_eligible",
    }
)
# Slack ends a stream about 5 minutes after it started (appends do not extend it, and
# later ones answer message_not_in_streaming_state): stop it well before that.
_MAX_STREAM_AGE_S = 240.0
# A trailing run of ASCII characters other than whitespace: the part of a growing text
# whose Markdown conversion may still change ("@her" may become "@here", "]" may be
# followed by "("), and which would split a word between two appends.
_UNSETTLED = re.compile(r"[!-~]+\Z")
# Where a streamed message is cut: the places and floors of the edit path's messages
# (``split_text``), on the text before its Markdown conversion (no entities), and a code
# block is not looked for (the part's text before its head is not at hand).
_RULES = replace(SPLIT_RULES, entities=False, code_blocks=False)


def _settled(text: str) -> str:
    """The part of ``text`` that can be streamed now (see ``_UNSETTLED``), without its
    last grapheme cluster, which the next characters may still join (a vowel sign, a
    flag's second half): no append, and so no message, ends inside a character. Trailing
    whitespace is sent (ASCII appends end after a word); only a mark after it is then
    cut off from it, as no text puts one there."""
    match = _UNSETTLED.search(text)
    text = text[: match.start()] if match else text
    return text if text[-1:].isspace() else text[: complete_clusters(text)]


@dataclass(slots=True)
class _Streamed:
    ts: str
    started: float  # loop time of chat.startStream
    chars: int = 0  # characters of the reply it holds
    open: bool = True  # not stopped yet


class NativeStream:
    """Shows one reply as natively streamed messages in a thread; the same calls as
    ``ReplyWriter`` (``placeholder``, ``show``, ``interrupted``, ``posted``).

    Args:
        api: the paced, retried Web API.
        target: the channel and thread (``chat.startStream`` needs a thread).
        limit: most characters of the reply in one message (``max_message_chars``).
        recipient: ``recipient_user_id`` / ``recipient_team_id`` (required in channels).
        on_refused: told when ``chat.startStream`` fails before anything was shown.
    """

    def __init__(
        self,
        api: SlackApi,
        target: Target,
        limit: int,
        recipient: Mapping[str, str],
        on_refused: Callable[[ConnectorError], None],
    ) -> None:
        if target.thread_ts is None:
            raise ValueError("native streaming needs a thread")
        self._api = api
        self._target = target
        self._limit = limit
        self._recipient = dict(recipient)
        self._on_refused = on_refused
        self._edit = ReplyWriter(api, target, limit)
        self._messages: list[_Streamed] = []
        self._sent = ""  # the reply text the streams hold (with whitespace dropped at cuts)
        self._edits = False  # the reply goes on by edits (``self._edit``)
        # A chat.startStream that timed out: it may be showing, so the reply goes no
        # further, by streams or by edits; every later ``show`` raises it.
        self._broken: ConnectorError | None = None

    @property
    def posted(self) -> int:
        """How many messages this reply has posted so far."""
        return self._edit.posted if self._edits else self._edit.posted + len(self._messages)

    @property
    def placeholder_ts(self) -> str | None:
        """The placeholder's ``ts`` while it shows only the "thinking" text."""
        return self._edit.placeholder_ts

    @property
    def lost_placeholder(self) -> LostPost | None:
        """Where the placeholder may be when its post timed out (``ReplyWriter``)."""
        return self._edit.lost_placeholder

    async def placeholder(self, text: str) -> None:
        """Post the placeholder: the reply is then shown by editing it (no stream)."""
        await self._edit.placeholder(text)

    async def show(self, text: str, *, final: bool, buttons: Sequence[Button] = ()) -> bool:
        """Stream what is new in ``text``; ``final`` stops the stream with the buttons.

        Returns:
            True when everything settled of ``text`` is shown; False when an append was
            skipped (no ``chat.appendStream`` token free at once): the next call sends it.

        Raises:
            ConnectorError: the reply could not be shown, by streaming or by edits, or a
                ``chat.startStream`` timed out (now or before: see ``_write``).
        """
        if self._broken is not None:
            raise self._broken
        if not self._edits and not self._messages:
            if self._edit.posted or (final and not text.strip()):
                # A placeholder is edited into the reply; an empty reply is shown as "…".
                self._edits = True
        if not self._edits and not text.startswith(self._sent):
            # Only if the final text is not what was streamed (the core's never is).
            await self._to_edits("the final text differs from the streamed one")
        if self._edits:
            return await self._edit.show(text, final=final, buttons=buttons)
        try:
            return await self._stream(text, final, buttons)
        except ConnectorError as exc:
            if self._broken is not None:
                raise
            if not self._messages:
                self._on_refused(exc)  # nothing was shown: the same reply, by edits
            else:
                await self._to_edits(str(exc))
            self._edits = True
            return await self._edit.show(text, final=final, buttons=buttons)

    async def _stream(self, text: str, final: bool, buttons: Sequence[Button]) -> bool:
        new = text[len(self._sent) :]
        chunk = new if final else _settled(new)
        current = self._open()
        if current is not None and self._age(current) > _MAX_STREAM_AGE_S:
            await self._stop(current, "", None)
            current = None
        while True:
            held = current.chars if current is not None else 0
            # What the open message holds: the end of the text sent (see ``_Streamed``).
            cut = next_cut(chunk, self._limit, _RULES, self._sent[len(self._sent) - held :])
            if cut == len(chunk):
                break
            if current is None:  # a message of its own for the head (held == 0: cut > 0)
                await self._write(None, chunk[:cut], droppable=False)
                current, cut_text = self._open(), ""
            else:
                cut_text = chunk[:cut]
            if current is not None:
                await self._stop(current, cut_text, None)  # the head goes with the stop
            rest = chunk[cut:]
            gap = len(rest) - len(rest.lstrip())
            self._sent += rest[:gap]  # whitespace at the cut is dropped, as in split_text
            chunk, current = rest[gap:], None
        if final:
            blocks = _action_blocks(buttons)
            if current is None:
                if not chunk.strip() and blocks is None:
                    return True
                await self._write(None, chunk, droppable=False)
                current, chunk = self._open(), ""
            if current is not None:
                await self._stop(current, chunk, blocks)
            return True
        if not chunk or (current is None and not chunk.strip()):
            return True  # nothing to show yet (a stream is never started with whitespace)
        return await self._write(current, chunk, droppable=True)

    def _open(self) -> _Streamed | None:
        last = self._messages[-1] if self._messages else None
        return last if last is not None and last.open else None

    def _age(self, message: _Streamed) -> float:
        return asyncio.get_running_loop().time() - message.started

    async def _write(self, current: _Streamed | None, piece: str, *, droppable: bool) -> bool:
        """Start a stream with ``piece`` or append it; False when a ``droppable`` append
        was skipped (as progress edits are, see ``SlackApi.send``)."""
        channel = self._target.channel
        if current is None:
            payload: dict[str, Any] = {
                "channel": channel,
                "thread_ts": self._target.thread_ts,
                "markdown_text": markdown_text(piece),
                **self._recipient,
            }
            try:
                data = await self._api.send("chat.startStream", payload)
            except ConnectorError as exc:
                if getattr(exc, "unknown_outcome", False):
                    # It timed out: the stream may be showing already, and the same text
                    # by a new stream or by edits would show it twice (see ``SlackApi``).
                    # An append that timed out needs no such care: the edit path
                    # replaces what the message holds.
                    self._broken = exc
                raise
            ts = data.get("ts")
            if not isinstance(ts, str) or not ts:
                raise ConnectorError("slack chat.startStream answered without a message ts")
            now = asyncio.get_running_loop().time()
            self._messages.append(_Streamed(ts=ts, started=now, chars=len(piece)))
            self._sent += piece
            return True
        # Counted as shown before it is sent: an append cut off by shutdown while in
        # flight may have been made (its answer lost), and the cut marker must not
        # repeat its text (``interrupted``). Taken back when it failed or was skipped.
        sent, chars = self._sent, current.chars
        self._sent, current.chars = sent + piece, chars + len(piece)
        payload = {"channel": channel, "ts": current.ts, "markdown_text": markdown_text(piece)}
        try:
            answer = await self._api.send("chat.appendStream", payload, droppable=droppable)
        except ConnectorError:
            self._sent, current.chars = sent, chars
            raise
        if answer is None:  # no token free at once, or appends are held by a 429
            self._sent, current.chars = sent, chars
            return False
        return True

    async def _stop(
        self, current: _Streamed, piece: str, blocks: list[dict[str, Any]] | None
    ) -> None:
        payload: dict[str, Any] = {"channel": self._target.channel, "ts": current.ts}
        if piece:
            payload["markdown_text"] = markdown_text(piece)
        if blocks is not None:
            payload["blocks"] = blocks
        await self._api.send("chat.stopStream", payload)
        current.open = False
        current.chars += len(piece)
        self._sent += piece

    async def _to_edits(self, why: str) -> None:
        """Hand the streamed messages to the edit path, which edits them into the reply."""
        log.warning(
            "slack: streaming a reply in %s failed, going on by edits: %s",
            self._target.channel,
            why,
        )
        for message in self._messages:
            if message.open:
                # Best effort: ends the streaming state before the edits, if it still is.
                try:
                    await self._api.call_once(
                        "chat.stopStream", channel=self._target.channel, ts=message.ts
                    )
                except ConnectorError as exc:
                    log.debug("slack: stream not stopped: %s", exc)
                message.open = False
        self._edit.adopt([m.ts for m in self._messages])
        self._edits = True

    def interrupted(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """The one call that marks this reply as cut off (see ``ReplyWriter.interrupted``):
        the open stream is stopped with what it lacks of ``text`` and " …"."""
        if self._edits or not self._messages:
            return self._edit.interrupted(text)
        current = self._open()
        if current is None:
            return None  # between two messages, or stopped with the buttons: nothing open
        tail = text[len(self._sent) :] if text.startswith(self._sent) else ""
        room = max(0, self._limit - current.chars)
        if len(tail) > room:  # what fits, to the last whole cluster (see ``_settled``)
            tail = tail[: complete_clusters(tail[: room + 1])]
        tail = tail.rstrip()
        mark = "…" if not tail and self._sent[-1:].isspace() else " …"
        payload = {
            "channel": self._target.channel,
            "ts": current.ts,
            "markdown_text": markdown_text(tail) + mark,
        }
        return "chat.stopStream", payload


def _action_blocks(buttons: Sequence[Button]) -> list[dict[str, Any]] | None:
    """The buttons' ``actions`` block, shown under the streamed text (``chat.stopStream``
    renders ``blocks`` at the bottom of the message); None without buttons."""
    if not buttons:
        return None
    return [block for block in button_blocks("…", buttons) if block["type"] == "actions"]
