"""Middleware: origin allow-list + CORS, JSON errors, and security headers."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from connectors.web._http import json_error
from connectors.web.service import SERVICE

__all__ = ["errors_middleware", "origin_middleware", "page_csp", "set_security_headers"]

log = logging.getLogger(__name__)

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$")
_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}
# Documents we serve run only our own script and stylesheet and talk only to us.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{ws}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Everything else (JSON, scripts, styles) is never a document worth rendering.
_DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"


def _guarded(path: str) -> bool:
    return path == "/ws" or path.startswith("/api/")


def page_csp(request: web.BaseRequest) -> str:
    """The CSP of an HTML page, allowing WebSockets back to the host it was served from."""
    host = request.host
    # Old browsers do not match ws: against 'self'; name it, but only a well-formed host
    # (the Host header is client-controlled and must not inject directives).
    ws = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return _PAGE_CSP.format(ws=ws)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors (404, 405, 413...) and unexpected exceptions (500) into
    JSON error bodies, which ``origin_middleware`` then gives their CORS headers."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: exc.headers[k] for k in ("Allow", "Retry-After") if k in exc.headers}
        code = _ERROR_CODES.get(exc.status, "http_error")
        return json_error(exc.status, code, exc.reason, headers)
    except Exception:
        if request.path == "/ws":
            raise  # the socket may be upgraded already: no HTTP response can follow
        log.exception("web: %s %s failed", request.method, request.path)
        return json_error(500, "internal_error", "the server failed; retry later")


@web.middleware
async def origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign origins on ``/ws`` and ``/api/*``; answer CORS for allowed ones."""
    if not _guarded(request.path):
        return await handler(request)
    svc = request.app[SERVICE]
    origin = request.headers.get("Origin")
    if not svc.origins.is_allowed(origin):
        svc.refusals.origin(origin)
        return json_error(403, "origin_not_allowed", "this origin may not use the chat API")
    if request.method == "OPTIONS" and origin is not None:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )
    response = await handler(request)
    if origin is not None and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Vary"] = "Origin"
    return response


async def set_security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: headers on every response, error or not."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        headers["Content-Security-Policy"] = page_csp(request)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    else:
        headers.setdefault("Content-Security-Policy", _DEFAULT_CSP)
