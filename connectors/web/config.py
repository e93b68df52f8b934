"""Typed settings of the web connector (``[connectors.web]`` in the TOML)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from botkit.config.listen import ListenHost
from botkit.config.problems import problem_at
from connectors.base import ConnectorConfig
from connectors.web._address import parse_network

__all__ = ["MIN_SECRET_CHARS", "RateLimit", "WebConfig"]

MIN_SECRET_CHARS = 16  # site_secret, user_token_secret

_SITE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def _proxy_network(entry: str) -> str:
    """An entry of ``trusted_proxies``, normalized (``10.0.0.5`` -> ``10.0.0.5/32``)."""
    return str(parse_network(entry))


# Checked one by one: each bad entry is reported, under its index.
_ProxyNetwork = Annotated[str, AfterValidator(_proxy_network)]


class RateLimit(BaseModel):
    """A token bucket: ``burst`` actions at once, refilled at ``rate`` per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


def normalize_origin(value: str) -> str:
    """Return ``scheme://host[:port]`` in lower case, or raise ``ValueError``.

    Only exact origins are accepted: a wildcard would let any page drive a visitor's
    socket (browsers do not apply CORS to WebSockets, so this list is the only guard).
    """
    if "*" in value:
        raise ValueError(f"wildcards are not allowed in origins: {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"origin must look like https://example.com[:port]: {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"origin must not have a path, query or user part: {value!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"origin has an invalid port: {value!r}") from exc
    host = parts.hostname.lower()
    if not host.isascii():
        # Browsers send an international name in its ASCII (xn--) form, so this one could
        # never match; and str.lower() maps a few non-ASCII letters to ASCII ones.
        raise ValueError(
            f"origin host must be ASCII: write an international domain name in its xn-- "
            f"(punycode) form, as browsers send it: {value!r}"
        )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class WebConfig(ConnectorConfig):
    """Settings of the web chat server and widget.

    Attributes:
        host: interface to bind. Keep the loopback default unless a reverse proxy or
            firewall is in front.
        port: TCP port (0 picks a free one).
        allowed_origins: exact origins (``https://shop.example``) whose pages may use the
            widget. ``*`` is refused. The server's own origin is added automatically when
            ``serve_demo_page`` is on.
        allow_missing_origin: accept requests without an ``Origin`` header (servers, curl,
            benchmarks). Browsers always send one on WebSocket handshakes and cross-site
            API calls, so this does not let another site's page in.
        site_key: public id of the site, given by the embedding snippet.
        site_secret: HMAC key of ``user_hash``, shared with the site's backend (from
            ``${VAR}`` in TOML, at least 16 characters; set but empty is an error, not
            "unset"). Needed for verified user ids; also keys the session tokens.
            Without it or ``user_token_secret`` they are keyed with a random key made
            once and kept in the store, shared by every process using that database.
        user_token_secret: HS256 key of the site-signed user tokens (``data-user-token``
            JWTs), from ``${VAR}``, at least 16 characters. JWT sign-in is on only when it
            is set, and it must differ from ``site_secret``: under one key, the user hash
            a site prints for a user id shaped like a JWT would be a valid JWT signature.
        require_identity: refuse anonymous visitors (401 / close 4401); needs
            ``site_secret`` or ``user_token_secret``.
        user_token_max_ttl_s: longest lifetime accepted for site-signed user tokens; the
            session token issued for one expires with it.
        session_ttl_s: lifetime of the session tokens this server issues.
        max_message_bytes: largest inbound HTTP body or WebSocket message.
        max_file_bytes: largest file a visitor may send (``POST /api/files``: a picture
            or a PDF, for the human agent of their conversation; botkit keeps it in its
            store until the conversation is deleted). 0 turns files off.
        files_per_conversation: files one conversation may hold; more are refused
            (409 ``file_limit``).
        file_rate: new files per client IP (a retry of a kept file, or an upload
            refused before its body is read, spends none).
        file_bytes_per_ip_hour: bytes of files per client IP per hour (a token bucket
            that holds one hour's worth); at least ``max_file_bytes``.
        uploads_per_ip: files one client IP may be sending at once.
        uploads_at_once: files being received at once from all clients together (each
            holds up to about three times ``max_file_bytes`` of memory until stored).
        file_read_timeout_s: time a file has to arrive once its upload started (a
            stalled upload is dropped: 408).
        file_min_bytes_per_s: the slowest average rate a file may arrive at, after its
            first 10 seconds (slower: dropped, 408 ``upload_too_slow``), so a client
            that trickles bytes cannot hold an upload place for the whole read
            timeout. The default, 4 KiB/s (32 kbit/s), is below any mobile data link
            a visitor uploads a picture over; 0 turns it off.
        connection_rate / ip_rate: message rate limits per socket and per client IP
            (``ip_rate`` also counts every file upload request).
        frame_rate: WebSocket frames of any kind (messages, pings, protocol pings and
            pongs) per socket; past it the server reads nothing more from that socket
            until the budget refills. Far above what the widget sends.
        connect_rate: new sessions and WebSocket connections per client IP.
        max_connections_per_ip: concurrent sockets and waiting long polls per client IP.
        trust_forwarded_for: take the client IP from ``X-Forwarded-For`` (over all its
            header lines; only behind a reverse proxy that sets it). The per-IP limits
            count an IPv6 client per /64.
        trusted_proxies: the reverse proxies' addresses or networks (``10.0.0.5``,
            ``10.0.0.0/8``, ``2001:db8::/32``): the header is read only on requests
            from one of them, and the client is its right-most hop that is not one of
            them. Empty, with ``trust_forwarded_for``: the last hop, from any peer (a
            warning at start: a client reaching the port directly chooses its own).
        heartbeat_s: WebSocket ping interval; a peer that misses a pong is dropped.
        send_timeout_s: a client that takes nothing of what the server sends it (an HTTP
            response, socket frames, a close) for this long is disconnected, within
            about twice that: one that stops reading would hold its buffered bytes, and
            its connection, for ever.
        idle_timeout_s: close a socket after this long without a client message.
        hello_timeout_s: time a new socket has to identify itself.
        send_queue_size: events buffered per socket; a slower reader is disconnected and
            catches up from history when it reconnects.
        serve_demo_page: serve ``demo.html`` with the widget at ``/``.
        page_language / page_title / theme_color: defaults for the demo page and widget.
    """

    host: ListenHost = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    allowed_origins: list[str] = Field(default_factory=list)
    allow_missing_origin: bool = True
    site_key: str = "botkit-demo"
    site_secret: SecretStr | None = None
    user_token_secret: SecretStr | None = None
    require_identity: bool = False
    user_token_max_ttl_s: int = Field(default=3600, ge=1, le=86_400)
    session_ttl_s: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)
    max_message_bytes: int = Field(default=16_384, ge=256, le=1_048_576)
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=0, le=20 * 1024 * 1024)
    files_per_conversation: int = Field(default=20, ge=1, le=10_000)
    file_rate: RateLimit = RateLimit(rate=0.1, burst=5)
    file_bytes_per_ip_hour: int = Field(default=100 * 1024 * 1024, ge=1, le=2**40)
    uploads_per_ip: int = Field(default=4, ge=1, le=10_000)
    uploads_at_once: int = Field(default=16, ge=1, le=10_000)
    file_read_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    file_min_bytes_per_s: int = Field(default=4096, ge=0, le=1024 * 1024 * 1024)
    connection_rate: RateLimit = RateLimit(rate=1.0, burst=10)
    frame_rate: RateLimit = RateLimit(rate=10.0, burst=50)
    ip_rate: RateLimit = RateLimit(rate=5.0, burst=60)
    connect_rate: RateLimit = RateLimit(rate=1.0, burst=30)
    max_connections_per_ip: int = Field(default=30, ge=1, le=1_000_000)
    max_tracked_ips: int = Field(default=100_000, ge=100, le=10_000_000)
    trust_forwarded_for: bool = False
    trusted_proxies: list[_ProxyNetwork] = Field(default_factory=list)
    heartbeat_s: float = Field(default=30.0, gt=0, le=3600)
    send_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    idle_timeout_s: float = Field(default=900.0, gt=0, le=86_400)
    hello_timeout_s: float = Field(default=10.0, gt=0, le=300)
    send_queue_size: int = Field(default=256, ge=8, le=100_000)
    serve_demo_page: bool = True
    page_language: str = "en"
    page_title: str = Field(default="Chat with us", min_length=1, max_length=80)
    theme_color: str = "#2563eb"

    def listeners(self) -> dict[str, tuple[str, int]]:
        """What it listens on (``botkit.config.listen``)."""
        return {"port": (self.host, self.port)}

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return sorted({normalize_origin(v) for v in value})

    @field_validator("site_key")
    @classmethod
    def _check_site_key(cls, value: str) -> str:
        if not _SITE_KEY.fullmatch(value):
            raise ValueError("site_key must be 1-64 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator("theme_color")
    @classmethod
    def _check_color(cls, value: str) -> str:
        if not _COLOR.fullmatch(value):
            raise ValueError("theme_color must be a hex colour like #2563eb")
        return value

    @field_validator("page_language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        if not _LANG.fullmatch(value):
            raise ValueError("page_language must be a BCP 47 tag like 'en' or 'pt-BR'")
        return value

    @model_validator(mode="after")
    def _check_forwarding(self) -> WebConfig:
        if self.trusted_proxies and not self.trust_forwarded_for:
            raise problem_at(
                type(self),
                ("trusted_proxies",),
                "trusted_proxies is set but trust_forwarded_for is false, so "
                "X-Forwarded-For would be ignored: set trust_forwarded_for = true as well "
                "(or remove trusted_proxies)",
            )
        return self

    @model_validator(mode="after")
    def _check_file_budget(self) -> WebConfig:
        if self.file_bytes_per_ip_hour < self.max_file_bytes:
            raise problem_at(
                type(self),
                ("file_bytes_per_ip_hour",),
                f"file_bytes_per_ip_hour ({self.file_bytes_per_ip_hour}) is smaller than "
                f"max_file_bytes ({self.max_file_bytes}): no file that size could be sent",
            )
        return self

    @field_validator("site_secret", "user_token_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field check, so it is reported under its own key, with the others at once (as
        # the hand-off api_token). "is not None", not truthiness: an empty SecretStr is
        # falsy, and "${VAR}" with VAR set but empty used to pass as if it were unset.
        if value is not None:
            got = len(value.get_secret_value())
            if got < MIN_SECRET_CHARS:
                empty = " (it is empty: is the variable it comes from set?)" if not got else ""
                raise ValueError(
                    f"{info.field_name} must be at least {MIN_SECRET_CHARS} characters{empty}"
                )
        return value

    @model_validator(mode="after")
    def _check_identity(self) -> WebConfig:
        site = None if self.site_secret is None else self.site_secret.get_secret_value()
        jwt = None if self.user_token_secret is None else self.user_token_secret.get_secret_value()
        if self.require_identity and site is None and jwt is None:
            raise problem_at(
                type(self),
                ("require_identity",),
                "require_identity needs site_secret or user_token_secret (set from ${VAR})",
            )
        if jwt is not None and jwt == site:
            # One key for both schemes lets a user hash pass as a JWT signature.
            raise problem_at(
                type(self), ("user_token_secret",), "user_token_secret must differ from site_secret"
            )
        return self
