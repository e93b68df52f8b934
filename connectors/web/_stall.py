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

``watch`` checks such a transport every ``period`` seconds while it holds unsent bytes and
aborts it when a check finds no fewer than the one before: the client took nothing in a
whole period. It never waits for anything, so it cannot be stalled itself.
"""

from __future__ import annotations

import asyncio

__all__ = ["watch"]


def watch(transport: asyncio.BaseTransport | None, period: float) -> None:
    """Abort ``transport`` once its client takes nothing of what is buffered for it for
    ``period`` seconds (within about twice that); stop looking once it holds nothing."""
    if isinstance(transport, asyncio.WriteTransport):  # a closing one too: see above
        asyncio.get_running_loop().call_later(period, _check, transport, period, None)


def _check(transport: asyncio.WriteTransport, period: float, before: int | None) -> None:
    unsent = transport.get_write_buffer_size()
    if not unsent:
        return  # all handed to the kernel: the client reads (or the connection is gone)
    if before is not None and unsent >= before:
        transport.abort()
        return
    asyncio.get_running_loop().call_later(period, _check, transport, period, unsent)
