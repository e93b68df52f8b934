"""The ``host:port`` addresses botkit's own HTTP servers listen on (the agent API, the
metrics endpoint)."""

from __future__ import annotations

import ipaddress
import re

__all__ = ["split_listen"]


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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
