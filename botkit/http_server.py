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
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from botkit.throttled_warning import ThrottledWarning

__all__ = ["IDLE_TIMEOUT_S", "server_runner"]

IDLE_TIMEOUT_S = 30.0

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
    app: web.Application, *, shutdown_timeout: float, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> web.AppRunner:
    """An ``AppRunner`` for ``app`` with the defences above (no access log: botkit logs
    what it refuses itself)."""
    return web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=idle_timeout_s,
        auto_decompress=False,
        logger=_connections,
    )
