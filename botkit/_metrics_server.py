"""The ``/metrics`` endpoint Prometheus scrapes, on ``[metrics] listen``, with the health
probes ``/healthz`` and ``/readyz``.

Its own small aiohttp server, not a route of a connector's: a bot serving only Telegram
(polling) or Slack (Socket Mode) has no HTTP server of its own, and operators keep the
metrics port off the public one. For the same reason the probes are served here too: a
Slack- or Telegram-only deployment has no web port to probe (``/readyz`` answers as the
web channel's does, ``botkit.readiness``).
"""

from __future__ import annotations

import logging

from aiohttp import web

from botkit.config.listen import split_listen
from botkit.http_server import server_runner
from botkit.metrics import CONTENT_TYPE, BotMetrics
from botkit.readiness import ReportsReadiness, answer_readiness

__all__ = ["MetricsServer"]

_log = logging.getLogger("botkit.metrics")


class MetricsServer:
    """Serves ``GET /metrics``, ``/healthz`` and ``/readyz`` for one bot.

    Args:
        metrics: what ``/metrics`` renders.
        core: what ``/readyz`` asks (the bot); without one, ``/readyz`` is not served.
    """

    def __init__(self, metrics: BotMetrics, core: ReportsReadiness | None = None) -> None:
        self._metrics = metrics
        self._core = core
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (useful with port 0)

    @classmethod
    async def serve(
        cls, listen: str, metrics: BotMetrics, core: ReportsReadiness | None = None
    ) -> MetricsServer | None:
        """Start serving on ``listen`` (``host:port``); None, with the reason logged,
        when it cannot be bound: the bot runs on without metrics rather than not at all."""
        server = cls(metrics, core)
        host, port = split_listen(listen)
        try:
            await server.start(host, port)
        except Exception as exc:  # OSError, or UnicodeError for a name DNS refuses
            _log.error("metrics cannot listen on %s, running without them: %s", listen, exc)
            return None
        return server

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024)  # GETs only: no body to accept
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", self._healthz)
        if self._core is not None:
            app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self, host: str, port: int) -> None:
        """Bind and serve. Raises ``OSError`` when the address cannot be bound."""
        runner = server_runner(self.app(), shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        _log.info("metrics at http://%s:%s/metrics", shown, self.port)

    async def stop(self) -> None:
        """Stop serving. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _scrape(self, request: web.Request) -> web.Response:
        body = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        """The process is alive and serving HTTP (as the web channel's ``/healthz``)."""
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        assert self._core is not None  # routed only with a core
        status, body = await answer_readiness(self._core)
        return web.json_response(body, status=status)
