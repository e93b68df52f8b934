"""Photo albums: the updates that share a ``media_group_id``, handed to the core as one
message.

Telegram delivers an album of N photos as N ``message`` updates, the caption (if any)
on one of them, all within a fraction of a second. Submitted one by one, each would be
answered: the caption by the model and every other photo with "I can only read text",
contradicting that answer. So an album's messages are held here until no new one came
for ``quiet_s`` (or ``max_hold_s`` passed since the first, or it has Telegram's maximum
of 10 items), then submitted as one message: the caption(s) as its text, every photo
as its attachments. A caption-less album is then one message without text, which gets
one "I can only read text" answer.

Restart and duplicate safety: ``add`` returns a future done once the album is stored.
Polling does not confirm the update before then; a crash re-delivers the whole album,
which is submitted again under the same idempotency key (the lowest update id): a
duplicate, not answered twice. A redelivered update already held joins nothing new. A
webhook call is answered at once instead (Telegram sends a chat's next update only after
the previous one is answered, so waiting would end every album after one photo): a
crash while an album is held (``max_hold_s`` at most) loses it.

Memory and time are bounded: at most ``max_albums`` albums are held (the oldest is
submitted early beyond that) and none longer than ``max_hold_s``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from botkit.events import InboundMessage
from connectors.telegram.polling import RetryLater

__all__ = ["AlbumCollector", "AlbumKey"]

AlbumKey = tuple[str, str]  # (conversation key, media_group_id)
_MAX_ITEMS = 10  # Telegram's largest album


@dataclass
class _Album:
    members: dict[int, InboundMessage] = field(default_factory=dict)  # by update id
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    timer: asyncio.TimerHandle | None = None
    started: float = 0.0


class AlbumCollector:
    """Holds album messages and submits each album once, through ``submit``."""

    def __init__(
        self,
        submit: Callable[[InboundMessage], Awaitable[None]],
        *,
        quiet_s: float = 0.8,
        max_hold_s: float = 3.0,
        max_albums: int = 1000,
    ) -> None:
        self._submit = submit
        self.quiet_s = quiet_s
        self.max_hold_s = max_hold_s
        self.max_albums = max_albums
        self._albums: dict[AlbumKey, _Album] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def held(self) -> int:
        """Albums waiting to be submitted."""
        return len(self._albums)

    def add(self, album_id: str, update_id: int, message: InboundMessage) -> asyncio.Future[None]:
        """Hold ``message`` (update ``update_id``) of album ``album_id``; the future is
        done once the album is stored, or fails (``RetryLater``) when it could not be."""
        loop = asyncio.get_running_loop()
        key = (message.conversation_key, album_id)
        album = self._albums.get(key)
        if album is None:
            if len(self._albums) >= self.max_albums:
                self._flush(next(iter(self._albums)))
            album = self._albums[key] = _Album(started=loop.time())
        album.members.setdefault(update_id, message)
        if album.timer is not None:
            album.timer.cancel()
        if len(album.members) >= _MAX_ITEMS:
            self._flush(key)
        else:
            # Wait for the next photo, but never past max_hold_s after the first.
            delay = min(self.quiet_s, album.started + self.max_hold_s - loop.time())
            album.timer = loop.call_later(max(delay, 0.0), self._flush, key)
        return album.done

    async def flush_all(self) -> None:
        """Submit every held album now (on shutdown, once input has stopped) and wait
        for them."""
        while self._albums or self._flushing:
            for key in list(self._albums):
                self._flush(key)
            if self._flushing:
                await asyncio.gather(*self._flushing, return_exceptions=True)

    def _flush(self, key: AlbumKey) -> None:
        album = self._albums.pop(key, None)
        if album is None:
            return
        if album.timer is not None:
            album.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._store(album))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _store(self, album: _Album) -> None:
        try:
            await self._submit(merge(album.members))
        except Exception as exc:  # RetryLater mostly: the waiting updates get it
            if not album.done.done():
                album.done.set_exception(exc)
            return
        except asyncio.CancelledError:
            # The bot's hand-over at shutdown ran out of time (``Bot.HAND_OVER_S``): the
            # waiting updates learn it (polling hands the album again; a webhook's,
            # answered already, is logged as lost) instead of waiting for ever.
            if not album.done.done():
                album.done.set_exception(RetryLater("the bot stopped before it was stored"))
            raise
        if not album.done.done():
            album.done.set_result(None)


def merge(members: dict[int, InboundMessage]) -> InboundMessage:
    """One message for an album: the first update's ids and idempotency key (the
    lowest update id, the same on every delivery), the captions as its text, and
    every item's attachments in the order sent."""
    ordered = [members[uid] for uid in sorted(members)]
    first = ordered[0]
    captions = [m.text.strip() for m in ordered if m.text.strip()]
    captioned = next((m for m in ordered if m.text.strip()), first)
    return dataclasses.replace(
        first,
        text="\n\n".join(captions),
        # The captioned message is the one a group answer quotes.
        channel_ids={**captioned.channel_ids, "media_group_size": str(len(ordered))},
        attachments=tuple(a for m in ordered for a in m.attachments),
    )
