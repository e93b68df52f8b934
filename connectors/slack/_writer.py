"""Showing one reply in Slack: one or more messages in a thread, kept in sync with the text.

A streamed reply is shown by posting a first message and editing it as text arrives;
when the text outgrows ``max_message_chars`` the message is cut at a paragraph or
sentence boundary and the rest continues in a new message. Cuts depend only on the text
before them (see ``split_text``), so messages already cut never change again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botkit.errors import ConnectorError
from botkit.events import Button
from connectors.slack._api import SlackApi
from connectors.slack._orphans import LostPost, post_marker
from connectors.slack._text import SECTION_LIMIT, button_blocks, escape, link_urls, split_text

__all__ = ["ReplyWriter", "Target"]

log = logging.getLogger("connectors.slack")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a reply goes: a channel and, when threaded, the thread's root ``ts``."""

    channel: str
    thread_ts: str | None = None


@dataclass(slots=True)
class _Shown:
    ts: str
    text: str
    has_blocks: bool = False
    placeholder: bool = False  # still the "thinking" text, no reply text yet
    foreign: bool = False  # shown another way (a native stream): its blocks are replaced


class ReplyWriter:
    """Posts and edits the messages that show one reply."""

    def __init__(
        self, api: SlackApi, target: Target, limit: int, deadline: float | None = None
    ) -> None:
        self._api = api
        self._target = target
        self._limit = limit
        # Loop time after which no call is started or tried again (``SlackApi.send``).
        self._deadline = deadline
        self._shown: list[_Shown] = []
        # A post that timed out (``SlackCallError.unknown_outcome``): it may be showing,
        # so nothing more is posted for this reply; every later ``show`` raises it.
        self._broken: ConnectorError | None = None
        # The placeholder's post timed out: it may be up, ts unknown (``Sweeper``).
        self.lost_placeholder: LostPost | None = None

    @property
    def posted(self) -> int:
        """How many messages this reply has posted so far."""
        return len(self._shown)

    @property
    def placeholder_ts(self) -> str | None:
        """The ``ts`` of the placeholder while it still shows only the "thinking" text."""
        first = self._shown[0] if self._shown else None
        return first.ts if first is not None and first.placeholder else None

    async def placeholder(self, text: str) -> None:
        """Post ``text`` (already mrkdwn) as the first message, to be replaced later.

        It carries a marker in its message metadata: when its post times out (it may
        have landed, ts unknown), ``lost_placeholder`` tells where to look for it.
        """
        if self._shown:
            return
        mark, metadata = post_marker()
        lost = LostPost(self._target.channel, self._target.thread_ts, mark)
        try:
            await self._post(text, None, metadata)
        except ConnectorError as exc:
            if getattr(exc, "unknown_outcome", False):
                self.lost_placeholder = lost
            raise
        self._shown[-1].placeholder = True

    def adopt(self, timestamps: Sequence[str]) -> None:
        """Take over messages that were shown another way (a native stream that failed
        on the way): the next ``show`` edits them into this reply's pieces, replacing
        what they hold, and posts what does not fit in them."""
        self._shown.extend(_Shown(ts=ts, text="", foreign=True) for ts in timestamps)

    def interrupted(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """The one Web API call that shows this reply was cut off, or None if none is due.

        ``text`` is the reply as far as it was generated. The last message gets the part
        of it that belongs there followed by " …"; a placeholder that never showed any
        text is deleted. A last message with the buttons means the reply is all there.
        """
        if not self._shown:
            return None
        last = self._shown[-1]
        if last.has_blocks:
            return None
        if last.placeholder:
            return "chat.delete", {"channel": self._target.channel, "ts": last.ts}
        pieces = self._pieces(text, False, ())
        index = len(self._shown) - 1
        body = pieces[index] if index < len(pieces) else last.text
        payload = {
            "channel": self._target.channel,
            "ts": last.ts,
            "text": f"{body.rstrip()} …",
            "parse": "none",
        }
        return "chat.update", payload

    def _pieces(self, text: str, final: bool, buttons: Sequence[Button]) -> list[str]:
        # Split what the customer reads, then escape each piece: ``max_message_chars``
        # counts characters as shown, and a reply full of "<" or "&" (HTML, shell "&&")
        # would otherwise be cut four times as often ("&lt;" is four). Slack's own hard
        # limit (40,000 characters of text, entities included) is ten times any piece's
        # escaped length at most (5 x 4,000), so it is never reached.
        pieces = [escape(piece) for piece in split_text(text, self._limit)]
        links = len(link_urls(pieces[-1])) - len(pieces[-1]) if final and buttons else 0
        if final and buttons and len(pieces[-1]) + links > SECTION_LIMIT:
            # The last piece carries the buttons in a section block (3,000 chars max),
            # where its URLs become <links> (2 more characters each): no part of it has
            # more URLs than the whole, so each fits with its links.
            pieces[-1:] = split_text(pieces[-1], SECTION_LIMIT - links)
        if not final:
            return [p for p in pieces if p.strip()]
        if not any(p.strip() for p in pieces):
            return ["…"]  # Slack refuses empty messages
        return [p for p in pieces if p.strip()]

    async def show(self, text: str, *, final: bool, buttons: Sequence[Button] = ()) -> bool:
        """Make the thread show ``text``: edit changed messages, post new ones.

        A progress version (``final=False``) is best effort: its edits are skipped when
        the workspace's ``chat.update`` budget has no token free at once, and then it
        stops there (no later message is posted after an out-of-date one). What was
        skipped is still different from what is shown, so the next version, and always
        the final one, edits it.

        Returns:
            True when the thread shows all of ``text``; False when an edit was skipped.

        Raises:
            ConnectorError: a message could not be posted or edited, or an earlier post
                timed out (it may be showing: posting the rest could show text twice).
        """
        if self._broken is not None:
            raise self._broken
        try:
            return await self._show(text, final, buttons)
        except ConnectorError as exc:
            if getattr(exc, "unknown_outcome", False):
                self._broken = exc
            raise

    async def _show(self, text: str, final: bool, buttons: Sequence[Button]) -> bool:
        pieces = self._pieces(text, final, buttons)
        for i, piece in enumerate(pieces):
            last = final and bool(buttons) and i == len(pieces) - 1
            blocks = button_blocks(piece, buttons) if last else None
            if i < len(self._shown):
                shown = self._shown[i]
                if shown.text != piece or blocks is not None or shown.has_blocks:
                    if not await self._update(shown, piece, blocks, droppable=not final):
                        return False
            else:
                await self._post(piece, blocks)
        if final and len(self._shown) > len(pieces):
            # Only when the final text is shorter than what was streamed (it never is
            # with the core's streams): blank the leftovers instead of leaving stale text.
            for shown in self._shown[len(pieces) :]:
                if shown.text != "…":
                    await self._update(shown, "…", None)
        return True

    async def _post(
        self,
        text: str,
        blocks: list[dict[str, Any]] | None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        payload: dict[str, Any] = {
            "channel": self._target.channel,
            "text": text,
            "parse": "none",  # see ``_update``
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if self._target.thread_ts:
            payload["thread_ts"] = self._target.thread_ts
        if blocks is not None:
            payload["blocks"] = blocks
        if metadata is not None:
            payload["metadata"] = metadata
        data = await self._api.send("chat.postMessage", payload, deadline=self._deadline)
        ts = data.get("ts")
        if not isinstance(ts, str):
            raise ConnectorError("slack chat.postMessage answered without a message ts")
        self._shown.append(_Shown(ts=ts, text=text, has_blocks=blocks is not None))

    async def _update(
        self,
        shown: _Shown,
        text: str,
        blocks: list[dict[str, Any]] | None,
        *,
        droppable: bool = False,
    ) -> bool:
        """Edit one message; False when a ``droppable`` edit was skipped (nothing changed)."""
        # parse "none": chat.update defaults to "client" (unlike chat.postMessage), where
        # Slack may read plain "@channel" and the like; the text is already escaped.
        payload: dict[str, Any] = {
            "channel": self._target.channel,
            "ts": shown.ts,
            "text": text,
            "parse": "none",
        }
        if blocks is not None or shown.has_blocks or shown.foreign:
            # Without "blocks" Slack keeps the old ones; an empty list removes them.
            payload["blocks"] = blocks if blocks is not None else []
        # Not the placeholder any more once the edit may have reached Slack: an edit cut
        # off by shutdown while in flight may have been made (its answer lost), and a
        # message that may show text is marked as cut off, never deleted (``interrupted``).
        was_placeholder, shown.placeholder = shown.placeholder, False
        try:
            sent = await self._api.send(
                "chat.update", payload, droppable=droppable, deadline=self._deadline
            )
        except ConnectorError:
            shown.placeholder = was_placeholder  # it failed (see ``SlackApi.send``)
            raise
        if sent is None:
            shown.placeholder = was_placeholder  # skipped: nothing was sent
            return False
        shown.text, shown.has_blocks, shown.foreign = text, blocks is not None, False
        return True
