"""Cutting off clients that stop reading what a server sends them.

A client can advertise a zero TCP window and keep the connection open: it sends
nothing, reads nothing, and TCP keeps probing it for ever. What the server wrote then
waits in the transport's buffer, and nothing in asyncio or aiohttp gives up on it:

* an HTTP response keeps its handler waiting in ``drain()`` after the handler returned,
  with the whole response in memory, outside every per-IP count and after the idle
  timeout stopped applying (a request is in progress): a page of the web widget's
  history (a few MB per cheap read), a file an agent opens, many pipelined requests for
  the metrics, so one address could pin a few GB with a burst of requests;
* a file served with ``web.FileResponse`` (the widget's script, the agents' inbox) goes
  out with ``sendfile()``, past the transport's buffer: on a client that stops reading
  it waits for ever on the socket, and a few dozen pipelined requests for the 94 KB
  ``widget.js`` filled the kernel's buffer and held the connection, its task and an open
  file (two descriptors) for ever;
* a socket closed by a heartbeat (or by a close frame the client sent) frees whatever
  its handler counted, but ``transport.close()`` waits to flush first, so the
  connection and its buffer stay.

``SendWatch.watch`` looks at such a connection every ``period`` seconds while it holds
bytes its client has not acknowledged, and aborts it when a look finds that the client
took nothing in a whole period (with a TCP reset, so that the kernel lets go of what it
holds for the client too). Where the kernel tells (Linux: ``SIOCOUTQ`` and
``TCP_INFO``), "took" is bytes the client acknowledged, which sees ``sendfile()`` too;
elsewhere it is the transport's buffer going down. A look never waits for anything, so
it cannot be stalled itself, and there is one timer per connection however many
responses go out on it (one per response was 30,000 timers at 1,000 requests a second).

Before it aborts a connection whose transport buffer is empty (what is stuck is in the
kernel: a ``sendfile()``, or a response handed over whole), it cancels the connection's
task: asyncio's ``sendfile()`` would otherwise wait for ever on the aborted socket (its
writer callback is never removed, CPython 3.11), holding the task and the file; a
handler the client pipelined behind it is cancelled with it, as at shutdown.

``watch_responses`` has a ``SendWatch`` look after every HTTP response of an app, from
the moment it starts (``on_response_prepare``): ``botkit.http_server.server_runner`` does
that for every botkit server. A WebSocket is not watched that way (its 101 answer is the
start of a long exchange): its handler bounds each of its own sends, and calls ``watch``
on the transport once the socket is closed, as the web connector's does.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys

from aiohttp import web

try:  # Linux: the kernel's own count of what a TCP connection has left to send
    from fcntl import ioctl
    from termios import TIOCOUTQ  # = SIOCOUTQ: bytes sent but not acknowledged, or unsent

    _TCP_INFO: int | None = socket.TCP_INFO
except (ImportError, AttributeError):  # pragma: no cover - not Linux
    _TCP_INFO = None

__all__ = ["SEND_WATCH", "SendWatch", "reset_connection", "watch_responses"]

# struct tcp_info (linux/tcp.h): __u64 tcpi_bytes_acked at byte 120 (Linux 4.1+; an
# older kernel answers shorter, and the transport's buffer is gone by instead).
_ACKED_AT = 120
_INFO_BYTES = _ACKED_AT + 8
_LINGER_RESET = struct.pack("ii", 1, 0)  # l_onoff, l_linger = 0: close() resets


class _Look:
    """What a connection held at the last look."""

    __slots__ = ("acked", "fresh", "task", "unsent")

    def __init__(self, task: asyncio.Task[None] | None) -> None:
        self.unsent = 0  # not acknowledged (or, without the kernel's count, not sent)
        self.acked: int | None = None  # acknowledged by the client, from the kernel
        self.fresh = True  # a response began since (its bytes come on top of unsent)
        self.task = task  # the connection's task (aiohttp's request.task)


def _kernel_counts(transport: asyncio.WriteTransport) -> tuple[int, int] | None:
    """(bytes the kernel holds for the client, bytes the client acknowledged so far);
    None where the kernel does not say (not Linux, not TCP, the socket closed)."""
    sock = transport.get_extra_info("socket")
    if _TCP_INFO is None or sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO_BYTES)
        queued = ioctl(sock.fileno(), TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    if len(info) < _INFO_BYTES:
        return None
    acked = int.from_bytes(info[_ACKED_AT:_INFO_BYTES], sys.byteorder)
    return int.from_bytes(queued, sys.byteorder, signed=True), acked


def reset_connection(transport: asyncio.WriteTransport) -> None:
    """Abort ``transport`` with a TCP reset: ``abort()`` alone closes the socket, and the
    kernel then keeps what it holds for the client (up to its send buffer, 4 MB by
    default on Linux) until it gives up on the orphaned connection, minutes later."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    transport.abort()


class SendWatch:
    """Aborts the connections whose clients stop taking what is sent to them.

    Args:
        period: seconds between two looks at a connection; one whose client took nothing
            in that time is aborted (within about twice ``period`` of its last progress).
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._looks: dict[asyncio.WriteTransport, _Look] = {}

    def watch(
        self, transport: asyncio.BaseTransport | None, task: asyncio.Task[None] | None = None
    ) -> None:
        """Look after ``transport`` until its client has everything (a closing one too:
        ``close()`` waits for that); call it when a response on it begins.

        Args:
            transport: the connection.
            task: the task serving it (``request.task``), cancelled before the connection
                is aborted with nothing in the transport's buffer (see the module
                docstring).
        """
        if not isinstance(transport, asyncio.WriteTransport):
            return
        look = self._looks.get(transport)
        if look is None:
            self._looks[transport] = _Look(task)
            asyncio.get_running_loop().call_later(self.period, self._check, transport)
        else:
            look.fresh = True
            if task is not None:
                look.task = task

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """``Application.on_response_prepare`` handler: watch each HTTP response (not a
        WebSocket, see the module docstring) from its start."""
        if not isinstance(response, web.WebSocketResponse):
            self.watch(request.transport, request.task)

    def _check(self, transport: asyncio.WriteTransport) -> None:
        look = self._looks[transport]
        buffered = transport.get_write_buffer_size()
        kernel = _kernel_counts(transport)
        if kernel is None:
            # Only the transport's buffer to go by: a new response adds to it, so a look
            # right after one cannot tell progress.
            unsent, moved = buffered, look.fresh or buffered < look.unsent
        else:
            queued, acked = kernel
            unsent, moved = buffered + queued, look.acked is None or acked > look.acked
            look.acked = acked
        if unsent and moved:  # still sending, and the client takes it
            look.unsent, look.fresh = unsent, False
            asyncio.get_running_loop().call_later(self.period, self._check, transport)
            return
        del self._looks[transport]
        if not unsent:  # the client has it all (or the connection is gone)
            return
        task = look.task
        if not buffered and task is not None and not task.done():
            task.cancel()  # before the abort: see the module docstring
        reset_connection(transport)

    def __len__(self) -> int:
        return len(self._looks)


SEND_WATCH = web.AppKey("botkit_send_watch", SendWatch)


def watch_responses(app: web.Application, watch: SendWatch) -> None:
    """Have ``watch`` look after every HTTP response ``app`` sends (before it starts:
    a started app's signals are frozen). ``server_runner`` leaves an app that has one
    alone, so a server that chose its own period keeps it."""
    app[SEND_WATCH] = watch
    app.on_response_prepare.append(watch.on_response_prepare)
