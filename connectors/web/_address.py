"""Which client a request comes from, as the per-IP limits count clients.

Two things make the raw address a poor key:

* **IPv6**: one subscriber (a home line, a cloud VM) is routed a whole /64 or more, and
  picks a fresh source address from it at will; counted per address, every per-IP limit
  (``connect_rate``, ``max_connections_per_ip``, ``ip_rate``, the file budgets) is then a
  limit per request. IPv6 clients are counted per /64, the smallest block one is given.
  An IPv4-mapped address (``::ffff:192.0.2.1``, a dual-stack listener) is its IPv4 one.
* **A reverse proxy** in front: every request comes from its address, and the client's
  is in ``X-Forwarded-For`` (only read with ``trust_forwarded_for``). Each proxy appends
  the address it was connected from, so the header reads left to right from what the
  client wrote (anything at all) to what the nearest proxy wrote. A proxy may add a
  header line of its own (HAProxy's ``option forwardfor``) rather than append to the
  line the client sent, so every line counts, in order; a hop may carry a port
  (``192.0.2.1:5123``, ``[2001:db8::1]:443``), which is not part of who the client is.

With ``trusted_proxies`` (``ClientKeys``), the header is read only on a request whose
peer is one of them, and the client is the right-most hop that is not one of them: the
address the outermost of our proxies was connected from, which no client can choose
(what a client wrote is further left). A hop that is not an address (a proxy's
``unknown``, junk) ends the walk there: the client is counted as the proxy of ours that
wrote it. A header of nothing but our proxies (a health check) names its left-most one.
Without ``trusted_proxies`` the last hop is taken from any peer, as before that setting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

__all__ = ["ClientKeys", "address_key", "last_forwarded_hop", "parse_network"]

_MAX_KEY_CHARS = 64
IPV6_PREFIX = 64
_PREFIX_MASK = ((1 << IPV6_PREFIX) - 1) << (128 - IPV6_PREFIX)
# Hops walked right to left at most: a chain of more proxies of ours than this is not
# one anybody runs, and the walk of a hostile header (128 lines of 8 KiB) stays short.
MAX_HOPS = 32
_CACHE_SIZE = 4096  # parsed peers and hops (a proxy's few addresses, clients' many)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def last_forwarded_hop(lines: Iterable[str]) -> str | None:
    """The last address in the ``X-Forwarded-For`` header lines, or None."""
    hop = ",".join(lines).rsplit(",", 1)[-1].strip()
    return hop or None


def address_key(address: str) -> str:
    """The key the per-IP limits count ``address`` under: an IPv4 address, an IPv6 /64,
    or (not an IP address) the text itself, cut to 64 characters."""
    ip = _parse(address)
    return address[:_MAX_KEY_CHARS] if ip is None else _key(ip)


def parse_network(text: str) -> Network:
    """An entry of ``trusted_proxies``: an address or a network (CIDR), IPv4 or IPv6.

    Raises:
        ValueError: saying what is wrong with ``text``.
    """
    try:
        network = ipaddress.ip_network(text.strip())
    except ValueError as exc:
        if "has host bits set" in str(exc):
            masked = ipaddress.ip_network(text.strip(), strict=False)
            raise ValueError(f"{text!r} has host bits set (the network is {masked})") from None
        raise ValueError(
            f"{text!r} is not an IP address or network (like 10.0.0.5, 10.0.0.0/8, "
            "2001:db8::/32; no brackets, ports or host names)"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        raise ValueError(
            f"{text!r} is IPv4-mapped: write it as IPv4 (a dual-stack listener's "
            "::ffff:a.b.c.d peers are matched as IPv4)"
        )
    return network


class _Seen(NamedTuple):
    """An address as a request names it (peer or hop), looked at once."""

    ip: Address | None  # None: not an address
    trusted: bool  # one of trusted_proxies
    key: str  # what the per-IP limits count it under (address_key)


class ClientKeys:
    """The key the per-IP limits count a request's client under (see the module
    docstring).

    Args:
        forwarded: read ``X-Forwarded-For`` (``trust_forwarded_for``).
        trusted: the proxies (``trusted_proxies``); none, with ``forwarded``: the last
            hop of any peer's header.
    """

    def __init__(self, *, forwarded: bool, trusted: Sequence[Network] = ()) -> None:
        self.reads_header = forwarded
        self._any_peer = forwarded and not trusted
        self._v4 = [(int(n.network_address), int(n.netmask)) for n in trusted if n.version == 4]
        self._v6 = [(int(n.network_address), int(n.netmask)) for n in trusted if n.version == 6]
        # The same few peers (a proxy's, a returning client's) come again and again, and
        # parsing one costs 2-7 us; bounded, as hops are whatever clients write.
        self._seen: dict[str, _Seen] = {}

    def key(self, peer: str | None, lines: Sequence[str] = ()) -> str:
        """The key of the client of a request from ``peer`` (``request.remote``) with
        these ``X-Forwarded-For`` header lines (read only with ``reads_header``)."""
        if not self.reads_header:
            return self._look(peer or "unknown").key
        if self._any_peer:
            return self._look(last_forwarded_hop(lines) or peer or "unknown").key
        nearest = self._look(peer or "unknown")
        if not nearest.trusted:
            return nearest.key
        for count, hop in enumerate(_hops_from_the_right(lines)):
            if count == MAX_HOPS:
                break
            seen = self._look(hop)
            if seen.ip is None:
                break  # not an address: the proxy of ours that wrote it stands for it
            if not seen.trusted:
                return seen.key
            nearest = seen
        return nearest.key

    def _look(self, text: str) -> _Seen:
        seen = self._seen.get(text)
        if seen is None:
            ip = _parse(text)
            if ip is None:
                seen = _Seen(None, False, text[:_MAX_KEY_CHARS])
            else:
                seen = _Seen(ip, self._trusts(ip), _key(ip))
            if len(text) <= _MAX_KEY_CHARS:  # never a client's 8 KiB of junk
                if len(self._seen) >= _CACHE_SIZE:
                    self._seen.clear()
                self._seen[text] = seen
        return seen

    def _trusts(self, ip: Address) -> bool:
        value = int(ip)
        networks = self._v4 if ip.version == 4 else self._v6
        return any(value & mask == network for network, mask in networks)


def _hops_from_the_right(lines: Sequence[str]) -> Iterator[str]:
    for line in reversed(lines):
        for hop in reversed(line.split(",")):
            yield hop.strip()


def _key(ip: Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        # The /64's text as IPv6Network writes it, at a sixth of its cost (~2 us, not 12).
        return f"{ipaddress.IPv6Address(int(ip) & _PREFIX_MASK)}/{IPV6_PREFIX}"
    return str(ip)


def _parse(text: str) -> Address | None:
    """The address in ``text`` (a port or brackets around it left out), an IPv4-mapped
    IPv6 one as IPv4; None when it is not one."""
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443" or "[2001:db8::1]"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.1:5123"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
