"""The aiohttp application factory: routes, middleware, limits."""

from __future__ import annotations

from aiohttp import web

from botkit.http_server import watch_responses
from connectors.web import api, pages
from connectors.web.security import errors_middleware, origin_middleware, set_security_headers
from connectors.web.service import SERVICE, WebService
from connectors.web.ws import websocket_handler

__all__ = ["create_app"]


def create_app(service: WebService) -> web.Application:
    """Build the web application around ``service`` (one per connector).

    ``client_max_size`` is the inbound body limit, so aiohttp itself stops reading a
    chunked upload past it (413) instead of buffering it. Starting the app (a runner's
    ``setup``) starts the service first, so no request comes before its session key.
    """
    app = web.Application(
        middlewares=[origin_middleware, errors_middleware],
        client_max_size=service.config.max_message_bytes,
    )
    app[SERVICE] = service
    app.on_startup.append(_start_service)
    app.on_response_prepare.append(set_security_headers)
    # A client that stops taking an HTTP response is cut off after send_timeout_s (its
    # bytes would stay buffered, outside every per-IP count); server_runner keeps this
    # watch. A socket is watched by its handler (ws), which bounds each of its waits.
    watch_responses(app, service.send_watch)
    app.router.add_get("/", pages.demo_page)
    app.router.add_get("/healthz", pages.healthz)
    app.router.add_get("/readyz", pages.readyz)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/api/openapi.json", pages.openapi)
    app.router.add_post("/api/session", api.post_session)
    app.router.add_post("/api/messages", api.post_message)
    app.router.add_get("/api/messages", api.get_messages)
    app.router.add_post("/api/files", api.post_file)
    app.router.add_get("/{name:widget\\.(?:js|css)}", pages.static_file)
    return app


async def _start_service(app: web.Application) -> None:
    await app[SERVICE].start()
