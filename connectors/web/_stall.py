"""Cutting off clients that stop reading what the server sends them.

A client can advertise a zero TCP window and keep the connection open: it sends
nothing, reads nothing, and TCP keeps probing it for ever. What the server wrote then
waits in the transport's buffer, and nothing in asyncio or aiohttp gives up on it:

* an HTTP response (``GET /api/messages`` with a page of long messages: a few MB) keeps
  its handler waiting in ``drain()`` after the handler returned, outside every per-IP
  count, so one address could pin a few GB with a burst of cheap history reads;
* a socket closed by the heartbeat (or by a close frame the client sent) frees its
  per-IP place, but ``transport.close()`` waits to flush first, so the connection and
  its buffer stay, a new one per ``connect_rate`` token.

``SendWatch.watch`` checks such a transport every ``period`` seconds while it holds unsent
bytes and aborts it when a check finds no fewer than the one before: the client took
nothing in a whole period. It never waits for anything, so it cannot be stalled itself,
and it keeps one timer per connection however many responses go out on it.
"""

from __future__ import annotations

import asyncio

__all__ = ["SendWatch"]


class SendWatch:
    """Aborts the connections whose clients stop taking what is sent to them.

    Args:
        period: seconds between two looks at a connection; one whose client took nothing
            in that time is aborted (within about twice ``period`` of its last progress).
    """

    def __init__(self, period: float) -> None:
        self.period = period
        # Connection -> what it held unsent at the last look (None: none yet since the
        # latest response began, whose bytes may come on top of that).
        self._unsent: dict[asyncio.WriteTransport, int | None] = {}

    def watch(self, transport: asyncio.BaseTransport | None) -> None:
        """Look after ``transport`` until it has sent everything (a closing one too:
        ``close()`` waits for that); call it when a response on it begins."""
        if not isinstance(transport, asyncio.WriteTransport):
            return
        if transport not in self._unsent:
            asyncio.get_running_loop().call_later(self.period, self._check, transport)
        self._unsent[transport] = None

    def _check(self, transport: asyncio.WriteTransport) -> None:
        unsent, before = transport.get_write_buffer_size(), self._unsent[transport]
        if unsent and (before is None or unsent < before):  # still sending, and it moves
            self._unsent[transport] = unsent
            asyncio.get_running_loop().call_later(self.period, self._check, transport)
            return
        del self._unsent[transport]
        if unsent:  # all handed to the kernel otherwise, or the connection is gone
            transport.abort()

    def __len__(self) -> int:
        return len(self._unsent)
