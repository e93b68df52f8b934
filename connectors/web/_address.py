"""Which client a request comes from, as the per-IP limits count clients.

Two things make the raw address a poor key:

* **IPv6**: one subscriber (a home line, a cloud VM) is routed a whole /64 or more, and
  picks a fresh source address from it at will; counted per address, every per-IP limit
  (``connect_rate``, ``max_connections_per_ip``, ``ip_rate``, the file budgets) is then a
  limit per request. IPv6 clients are counted per /64, the smallest block one is given.
  An IPv4-mapped address (``::ffff:192.0.2.1``, a dual-stack listener) is its IPv4 one.
* **X-Forwarded-For** (only with ``trust_forwarded_for``): the client's own address is
  the last hop, the one the proxy in front added. A proxy may add it as a header line of
  its own (HAProxy's ``option forwardfor``) rather than append it to a line the client
  sent, so every line counts, in order; a hop may carry a port (``192.0.2.1:5123``,
  ``[2001:db8::1]:443``), which is not part of who the client is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["address_key", "last_forwarded_hop"]

_MAX_KEY_CHARS = 64
IPV6_PREFIX = 64


def last_forwarded_hop(lines: Iterable[str]) -> str | None:
    """The last address in the ``X-Forwarded-For`` header lines, or None."""
    hop = ",".join(lines).rsplit(",", 1)[-1].strip()
    return hop or None


def address_key(address: str) -> str:
    """The key the per-IP limits count ``address`` under: an IPv4 address, an IPv6 /64,
    or (not an IP address) the text itself, cut to 64 characters."""
    ip = _parse(address)
    if ip is None:
        return address[:_MAX_KEY_CHARS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443" or "[2001:db8::1]"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.1:5123"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
