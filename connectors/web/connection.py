"""One visitor socket: an ordered outbound queue and the resume logic.

The writer task owns the socket's send side. It takes everything queued at once, merges
stream text (``_coalesce``) and writes the batch with one system call (``_frames``). It
keeps ``cursor``, the highest stored ``seq`` this socket has delivered, and upholds one
rule: stored messages reach the client in ``seq`` order with no gaps and no duplicates.

* On connect it first replays history after the client's ``after_seq``.
* A live message at or below ``cursor`` was already replayed: skipped.
* A live message above ``cursor + 1`` means something stored in between has not been
  seen here yet (e.g. an inbound message from another tab whose broadcast is still on its
  way): the gap is filled from history before the live message goes out.
* A fill item (``Outgoing.fill_to``: another bot process stored messages up to there)
  replays history up to it, in queue order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, web

from botkit.errors import BotkitError
from connectors.web._coalesce import coalesce
from connectors.web._frames import FrameOutput
from connectors.web._messages import message_payload
from connectors.web.hub import Outgoing
from connectors.web.service import HISTORY_PAGE, WebService

__all__ = ["Connection"]

log = logging.getLogger(__name__)

# One encoder for every frame: json.dumps with a non-default option builds a new
# JSONEncoder per call. Compact separators: ~10 % fewer bytes per frame.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Connection:
    """The send side of one visitor's socket (implements ``hub.Subscriber``)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        out: FrameOutput,
        service: WebService,
        key: str,
        after_seq: int,
    ) -> None:
        self.ws = ws
        self.out = out
        self.service = service
        self.key = key
        self.cursor = after_seq
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(service.config.send_queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # keeps the close task referenced
        self.overflowed = False

    def push(self, item: Outgoing) -> None:
        """Queue a frame; a client too slow to keep up is dropped (it resumes later)."""
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            log.info("web socket too slow, closing it (it will resume from history)")
            self._closing = asyncio.get_running_loop().create_task(
                self.out.close(WSCloseCode.TRY_AGAIN_LATER, b"too slow")
            )

    def start(self, hello_reply: dict[str, Any]) -> None:
        """Send ``hello_reply``, subscribe, replay history, then go live."""
        self.push(Outgoing(hello_reply))
        for frame in self.service.hub.subscribe(self.key, self):
            self.push(frame)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.service.connections.add(self)

    async def finish(self) -> None:
        """Send everything queued so far, then stop writing (the socket is about to be
        closed: shutdown). Returns once the writer has stopped."""
        task = self._task
        if task is None or task.done() or self.overflowed:
            return
        try:
            self._queue.put_nowait(None)  # the writer's stop marker, behind what is queued
        except asyncio.QueueFull:
            return  # a client this far behind resumes from history on its next socket
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    async def stop(self) -> None:
        """Unsubscribe and end the writer task."""
        self.service.connections.discard(self)
        self.service.hub.unsubscribe(self.key, self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _fill_to(self, upto: int | None) -> None:
        """Replay stored messages after ``cursor`` (up to ``upto`` when given)."""
        while upto is None or self.cursor < upto:
            start = self.cursor
            items = await self.service.history(self.key, self.cursor, HISTORY_PAGE)
            page: list[str] = []
            past = False
            for item in items:
                if item.seq <= self.cursor:
                    continue  # never trust a store to filter perfectly
                if upto is not None and item.seq > upto:
                    past = True
                    break
                page.append(_encode(message_payload(item)))
                self.cursor = item.seq
            if page:  # one write per page
                await self.out.send(page)
            if past or len(items) < HISTORY_PAGE or self.cursor == start:
                return

    async def _run(self) -> None:
        try:
            first = await self._queue.get()  # the hello reply goes before any history
            if first is not None:
                await self.out.send([_encode(first.payload)])
            await self._fill_to(None)
            queue = self._queue
            while True:
                batch = [await queue.get()]
                # Everything already waiting goes out together: merged where it can be
                # (see _coalesce) and written with one system call (see _frames).
                while not queue.empty():
                    batch.append(queue.get_nowait())
                if not await self._deliver(coalesce(batch)):
                    return
                del batch  # not kept alive (and scanned by the GC) while the socket idles
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-send; the reader side notices and cleans up.
            log.debug("web socket send failed: %s", exc)
        except BotkitError as exc:
            # The store failed (e.g. the database is down) while replaying history: the
            # client reconnects and resumes from its last seq once it is back.
            log.warning("web socket history replay failed: %s", exc)
            await self.out.close(WSCloseCode.TRY_AGAIN_LATER, b"unavailable")
        except Exception:
            log.exception("web socket writer failed")
            await self.out.close(WSCloseCode.INTERNAL_ERROR, b"server error")

    async def _deliver(self, items: list[Outgoing | None]) -> bool:
        """Send ``items`` in order under the resume rule; False at the stop marker."""
        texts: list[str] = []
        for item in items:
            if item is None:
                if texts:
                    await self.out.send(texts)
                return False
            if item.fill_to is not None:
                if texts:  # what was queued before the announcement goes first
                    await self.out.send(texts)
                    texts = []
                await self._fill_to(item.fill_to)
                continue
            if item.seq is not None:
                if item.seq <= self.cursor:
                    continue
                if item.seq > self.cursor + 1:
                    if texts:  # what came before the gap goes before its fill
                        await self.out.send(texts)
                        texts = []
                    await self._fill_to(item.seq - 1)
                    if item.seq <= self.cursor:
                        continue
                self.cursor = item.seq
            texts.append(_encode(item.payload))
        if texts:
            await self.out.send(texts)
        return True
