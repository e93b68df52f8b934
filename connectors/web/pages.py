"""Static assets (widget, OpenAPI), the demo page, and the health endpoints."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from aiohttp import web

from botkit.readiness import answer_readiness
from connectors.web.service import SERVICE

__all__ = ["STATIC_DIR", "demo_page", "healthz", "openapi", "readyz", "static_file"]

STATIC_DIR = Path(str(resources.files("connectors.web") / "static"))

_ASSETS = {
    "widget.js": "text/javascript",
    "widget.css": "text/css",
}


async def static_file(request: web.Request) -> web.StreamResponse:
    """``/widget.js`` and ``/widget.css``; loadable from any site that embeds the widget."""
    name = request.match_info["name"]
    content_type = _ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.FileResponse(
        STATIC_DIR / name,
        headers={
            "Content-Type": f"{content_type}; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI description of the HTTP and WebSocket API."""
    return web.FileResponse(
        STATIC_DIR / "openapi.json", headers={"Content-Type": "application/json"}
    )


async def demo_page(request: web.Request) -> web.Response:
    """``/``: a page with the widget on it, configured from the connector settings."""
    cfg = request.app[SERVICE].config
    if not cfg.serve_demo_page:
        raise web.HTTPNotFound()
    template = (STATIC_DIR / "demo.html").read_text(encoding="utf-8")
    values = {
        "lang": cfg.page_language,
        "title": cfg.page_title,
        "site_key": cfg.site_key,
        "theme": cfg.theme_color,
    }
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", html.escape(value, quote=True))
    return web.Response(
        text=template, content_type="text/html", headers={"Cache-Control": "no-cache"}
    )


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the core can answer customers, else 503; the body names the parts
    (``botkit.readiness``, shared with the metrics port's ``/readyz``)."""
    status, body = await answer_readiness(request.app[SERVICE].core)
    return web.json_response(body, status=status)
