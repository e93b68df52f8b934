"""Shared state of one web connector: config, core handle, hub, identity, limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web

from botkit.channel import CoreHandle, HistoryItem
from botkit.http_server import SendWatch
from connectors.web._address import ClientKeys, parse_network
from connectors.web._throttle import RefusalWarnings
from connectors.web.config import WebConfig
from connectors.web.hub import Hub
from connectors.web.identity import IdentityService
from connectors.web.origin import OriginPolicy
from connectors.web.ratelimit import KeyedLimiter

if TYPE_CHECKING:
    from connectors.web.connection import Connection

__all__ = ["CHANNEL", "SERVICE", "OpenCounts", "WebService"]

CHANNEL = "web"
HISTORY_PAGE = 100

log = logging.getLogger(__name__)
_KEY_SOURCES = {
    "site_secret": "derived from site_secret",
    "user_token_secret": "derived from user_token_secret (no site_secret set)",
    "store": "from the store (no site_secret set)",
}


class OpenCounts(Counter[str]):
    """What each client IP has open (sockets and waiting polls; uploads). Only IPs with
    something open are kept, so it never outgrows what is open right now."""

    def release(self, ip: str) -> None:
        self[ip] -= 1
        if self[ip] <= 0:
            del self[ip]


class WebService:
    """Everything the handlers share; one per connector (no module-level state)."""

    def __init__(self, config: WebConfig, core: CoreHandle) -> None:
        self.config = config
        self.core = core
        self.hub = Hub()
        secret = config.site_secret.get_secret_value() if config.site_secret else None
        jwt_secret = (
            config.user_token_secret.get_secret_value() if config.user_token_secret else None
        )
        self.identity = IdentityService(
            site_key=config.site_key,
            site_secret=secret,
            session_ttl_s=config.session_ttl_s,
            user_token_max_ttl_s=config.user_token_max_ttl_s,
            require_identity=config.require_identity,
            user_token_secret=jwt_secret,
        )
        self.origins = OriginPolicy(
            config.allowed_origins, allow_missing=config.allow_missing_origin
        )
        cap = config.max_tracked_ips
        self.ip_messages = KeyedLimiter(config.ip_rate.rate, config.ip_rate.burst, cap)
        self.ip_connects = KeyedLimiter(config.connect_rate.rate, config.connect_rate.burst, cap)
        self.ip_files = KeyedLimiter(config.file_rate.rate, config.file_rate.burst, cap)
        hourly = config.file_bytes_per_ip_hour
        self.ip_file_bytes = KeyedLimiter(hourly / 3600, hourly, cap)
        self.open_sockets = OpenCounts()  # WebSockets and waiting long polls
        self.open_uploads = OpenCounts()
        self.refusals = RefusalWarnings(logging.getLogger("connectors.web"))
        self.sockets: set[web.WebSocketResponse] = set()
        self.connections: set[Connection] = set()  # the welcomed sockets' send sides
        self._shutting_down = False
        self.send_watch = SendWatch(config.send_timeout_s)
        self._clients = ClientKeys(
            forwarded=config.trust_forwarded_for,
            trusted=[parse_network(entry) for entry in config.trusted_proxies],
        )
        self._key_logged = False

    async def start(self) -> None:
        """Load what serving needs from the core, before the first request: the
        session-token key from the store when no secret is configured (see
        ``CoreHandle.session_key``). Says once which key signs the tokens.

        Raises:
            StoreError: the store failed.
        """
        identity = self.identity
        if identity.needs_stored_key:
            identity.use_stored_key(await self.core.session_key(CHANNEL))
        if not self._key_logged:
            self._key_logged = True
            log.info("web: session key %s", _KEY_SOURCES[identity.key_source or "store"])
            if self.config.trust_forwarded_for and not self.config.trusted_proxies:
                log.warning(
                    "web: trust_forwarded_for = true without trusted_proxies: "
                    "X-Forwarded-For is believed from any peer, so a client that reaches "
                    "this server directly names its own address to the per-IP limits; "
                    "list your reverse proxies in [connectors.web] trusted_proxies"
                )

    @property
    def shutting_down(self) -> bool:
        """The bot stopped taking messages (its shutdown grace period, then the end):
        no new socket, long poll, session or message is taken from then on."""
        return self._shutting_down

    def stop_taking(self) -> None:
        """From now on refuse new sockets, long polls, sessions and messages
        (``shutting_down``); what is open is served until the connector disconnects."""
        self._shutting_down = True

    def take_again(self) -> None:
        """Serve normally again (the connector connected anew)."""
        self._shutting_down = False

    async def flush_connections(self, within: float) -> None:
        """Let every socket send what is queued for it, for up to ``within`` seconds in
        all, and stop its writer: the sockets are about to be closed (shutdown)."""
        ending = [conn.finish() for conn in list(self.connections)]
        if ending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await asyncio.gather(*ending, return_exceptions=True)

    def client_ip(self, request: web.Request) -> str:
        """The client the per-IP limits count: its address from the socket or (behind a
        trusted proxy) from ``X-Forwarded-For``, an IPv6 one as its /64 (``_address``)."""
        clients = self._clients
        if not clients.reads_header:
            return clients.key(request.remote)
        return clients.key(request.remote, request.headers.getall("X-Forwarded-For", ()))

    async def history(self, key: str, after_seq: int, limit: int) -> list[HistoryItem]:
        """The visitor's stored messages after ``after_seq`` (ascending)."""
        return await self.core.history(CHANNEL, key, after_seq=after_seq, limit=limit)

    async def last_seq(self, key: str) -> int:
        """The highest stored ``seq`` of the visitor's conversation (0 when none)."""
        return await self.core.last_seq(CHANNEL, key)


SERVICE = web.AppKey("botkit_web_service", WebService)
