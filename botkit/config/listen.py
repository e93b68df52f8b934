"""The ``host:port`` addresses botkit's own HTTP servers listen on (the agent API, the
metrics endpoint, channels' webhooks and the widget), and whether two of them clash.

A component's config names what it listens on with a ``listeners()`` method returning
``{key: (host, port)}`` (the key relative to its section, e.g. ``"api_listen"``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from itertools import combinations
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ListenHost", "check_host", "clashes", "listeners_of", "split_listen"]


def split_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:8090"`` for IPv6) -> ``(host, port)``; port 0 takes any
    free port (tests).

    Raises:
        ValueError: not a host and a port in 1..65535.
    """
    host, sep, port = value.strip().rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if (
        not sep
        or not port.isascii()
        or not port.isdigit()
        or not 0 <= int(port) < 65536
        or not (_is_ip(host) if bracketed or ":" in host else _HOSTNAME.fullmatch(host))
    ):
        raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:8090 or [::1]:8090")
    return host, int(port)


# A DNS name or an IPv4 address: dot-separated labels of 1-63 letters, digits and inner
# hyphens (no scheme, no path, no empty label), 253 characters at most.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def check_host(host: str) -> str:
    """``host`` if a server can be told to listen on it: an IP address, a DNS name, or
    ``0.0.0.0`` / ``::`` for every interface.

    Raises:
        ValueError: anything else (a URL, a name with spaces, an empty string).
    """
    if not (_is_ip(host) or _HOSTNAME.fullmatch(host)):
        raise ValueError(
            f"{host!r} is not an IP address or a host name (e.g. 127.0.0.1, 0.0.0.0, ::1)"
        )
    return host


# A config field holding the host a server listens on.
ListenHost = Annotated[str, AfterValidator(check_host)]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def listeners_of(config: object) -> dict[str, tuple[str, int]]:
    """What ``config`` (a component's validated section) listens on; {} for none."""
    method = getattr(config, "listeners", None)
    return dict(method()) if callable(method) else {}


_ANY = frozenset({"", "0.0.0.0", "::"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _overlap(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or a in _ANY or b in _ANY or (a in _LOOPBACK and b in _LOOPBACK)


def clashes(listeners: Mapping[str, tuple[str, int]]) -> list[tuple[str, str]]:
    """Pairs of keys (full key paths) whose addresses cannot both be bound: the same
    port on the same interface, or on all interfaces. Port 0 (any free port) never
    clashes."""
    return [
        (first, second)
        for (first, (host_a, port_a)), (second, (host_b, port_b)) in combinations(
            listeners.items(), 2
        )
        if port_a == port_b != 0 and _overlap(host_a, host_b)
    ]
