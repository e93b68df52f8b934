"""How botkit runs its HTTP servers (the web widget's, the agent API and inbox, the Slack
and Telegram webhooks, the metrics): with the same defences, since any of them may face
the internet.

* **Idle connections close** after ``IDLE_TIMEOUT_S``: one between two requests, and one
  still sending its first request's head. aiohttp's own default is an hour, so a client
  that opened a connection and sent half a request line held it (and a file descriptor)
  that long; thousands of them exhaust the process's descriptors and every server in
  it stops accepting. (A request in progress is bounded by its handler: a long poll by
  its ``wait``, an upload by ``file_read_timeout_s``, a socket by its heartbeat.)
* **Bodies are not decompressed**: every body botkit takes is small JSON or a file sent
  as it is, and no client it serves compresses them. aiohttp would otherwise inflate a
  ``Content-Encoding: gzip`` body while reading it, before any handler could refuse it,
  and log a junk one as an unhandled exception with a traceback.
* **A malformed request is the client's doing**: aiohttp answers it (400, 413, ...) and
  would log an ERROR with a traceback each time, which anyone can trigger (a URL over
  8 KiB, a broken chunked body). Those become one warning line a minute, without the
  traceback; a failure of a handler itself is still logged in full.
* **A client that stops reading is cut off** once it has taken nothing of a response for
  ``SEND_TIMEOUT_S`` (within about twice that; ``botkit._send_watch``): one that
  advertises a zero TCP window would otherwise hold its connection, its handler and the
  whole buffered response for ever, past the idle timeout (a request is in progress).
  A slow client that reads is not affected, however long the response takes.

``botkit run`` also raises the process's soft limit on open files to its hard limit
(many systems start processes at 1,024, and every connection holds a descriptor), and
says once a minute, not per failed ``accept()``, when descriptors run out anyway.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from botkit._send_watch import SEND_WATCH, SendWatch, reset_connection, watch_responses
from botkit.throttled_warning import ThrottledWarning

__all__ = [
    "IDLE_TIMEOUT_S",
    "SEND_TIMEOUT_S",
    "SendWatch",
    "quiet_accept_errors",
    "raise_open_file_limit",
    "reset_connection",
    "server_runner",
    "watch_responses",
]

IDLE_TIMEOUT_S = 30.0
# As the web connector's default send_timeout_s: a client on a bad mobile link may take
# nothing for a few seconds, none that still reads for half a minute.
SEND_TIMEOUT_S = 30.0

_log = logging.getLogger("botkit.http")


class _ClientErrors(logging.Filter):
    """Turns aiohttp's traceback for a malformed request into a throttled warning."""

    def __init__(self) -> None:
        super().__init__()
        self._warning = ThrottledWarning(
            _log, "http: refused a malformed request (%s; answered by the server itself)"
        )

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError | RequestPayloadError):
            return True
        self._warning.warn(type(exc).__name__)
        return False


# aiohttp's per-connection logger (its ``logger`` argument): only what the servers'
# connections log goes through this filter, not aiohttp's other messages.
_connections = logging.getLogger("botkit.http.connections")
_connections.addFilter(_ClientErrors())


def server_runner(
    app: web.Application,
    *,
    shutdown_timeout: float,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
    send_timeout_s: float | None = None,
) -> web.AppRunner:
    """An ``AppRunner`` for ``app`` with the defences above (no access log: botkit logs
    what it refuses itself).

    Args:
        app: the application, not started yet.
        shutdown_timeout: how long stopping waits for requests in progress.
        idle_timeout_s: how long a connection without a request in progress stays open.
        send_timeout_s: how long a client may take nothing of a response before it is
            cut off (``SEND_TIMEOUT_S`` when None). An app that has its own send watch
            (``watch_responses``, as the web connector's) keeps it.
    """
    if SEND_WATCH not in app:
        period = SEND_TIMEOUT_S if send_timeout_s is None else send_timeout_s
        watch_responses(app, SendWatch(period))
    return web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=idle_timeout_s,
        auto_decompress=False,
        logger=_connections,
    )


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one (as far as the system lets);
    returns the soft limit (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # a container may refuse it
            _log.info("http: open file limit stays %d: %s", soft, exc)
            return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# What asyncio's default handler logs, with a traceback, each time accept() fails for
# want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM): thousands a second in a flood.
_ACCEPT_FAILED = "socket.accept() out of system resource"


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop`` log failed accepts as one warning a minute; everything else its
    exception handler gets goes to the default handler as before."""
    warning = ThrottledWarning(
        _log, "http: cannot accept new connections: %s (too many open connections?)"
    )

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_FAILED:
            warning.warn(context.get("exception"))
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
