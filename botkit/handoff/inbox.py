"""The agents' inbox: a web page for answering hand-offs, served by the agent API.

A static page (HTML, one script, one stylesheet; no build step, no third-party code)
that signs an agent in with their token, shows the queue of conversations waiting for
or with a human, and lets the agent read one, answer it and give it back to the bot,
all through the agent API on the same origin. It polls (the queue every few seconds,
the open conversation more often), so it works the same against any replica sharing
the database.

The page and its assets hold no data and are served without a token. The token the
agent gives stays in the tab's ``sessionStorage`` (gone when the tab closes) and is
sent as a bearer header, never as a cookie, so other sites cannot make the browser use
it (no CSRF). The page's content security policy runs only its own script, talks only
to its own origin, and cannot be framed; every customer text is put in as text, never
as HTML.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from pathlib import Path

from aiohttp import web

__all__ = ["PREFIX", "add_routes", "is_public", "url"]

PREFIX = "/inbox/"
STATIC_DIR = Path(str(resources.files("botkit.handoff") / "inbox_static"))

_ASSETS = {
    "inbox.js": "text/javascript",
    "inbox.css": "text/css",
}
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def url(host: str, port: int) -> str:
    """Where an agent opens the inbox on a server listening on ``host:port``."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and literal.is_unspecified:  # 0.0.0.0 / ::: any address
        host = "127.0.0.1" if literal.version == 4 else "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PREFIX}"


async def _to_page(request: web.Request) -> web.StreamResponse:
    # Relative, so that behind a proxy serving this under a path prefix
    # (/support/inbox) it leads to /support/inbox/.
    raise web.HTTPPermanentRedirect(PREFIX.strip("/") + "/")


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC_DIR / "inbox.html",
        headers={
            **_COMMON,
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": _PAGE_CSP,
            "Cache-Control": "no-cache",
        },
    )


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = _ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.FileResponse(
        STATIC_DIR / name,
        headers={
            **_COMMON,
            "Content-Type": f"{content_type}; charset=utf-8",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
            "Cache-Control": "no-cache",
        },
    )


_HANDLERS = frozenset({_to_page, _page, _asset})


def is_public(request: web.Request) -> bool:
    """Whether the route ``request`` was matched to is the inbox page or one of its
    assets, served without a token. The route, not the path, decides: no spelling of a
    path ("/inbox/../v1/...") reaches an API route through it."""
    return request.match_info.handler in _HANDLERS


def add_routes(app: web.Application) -> None:
    """Serve the inbox at ``/inbox/`` of ``app``."""
    app.router.add_get(PREFIX.rstrip("/"), _to_page)
    app.router.add_get(PREFIX, _page)
    app.router.add_get(PREFIX + "{name}", _asset)
