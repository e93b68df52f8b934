"""Per-IP limits count clients, not addresses: X-Forwarded-For lines, IPv6 /64s."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict
from web_helpers import SITE_KEY, MakeWeb

from connectors.web._address import address_key, last_forwarded_hop

_ONE_SESSION = {"connect_rate": {"rate": 0.001, "burst": 1}}


async def _sessions(web: object, *forwarded: list[str]) -> list[int]:
    """POST /api/session once per entry, with those X-Forwarded-For header lines."""
    statuses = []
    for lines in forwarded:
        headers = CIMultiDict(("X-Forwarded-For", line) for line in lines)
        resp = await web.client.post(  # type: ignore[attr-defined]
            "/api/session", json={"site_key": SITE_KEY}, headers=headers
        )
        statuses.append(resp.status)
    return statuses


async def test_a_forged_forwarded_line_before_the_proxys_is_not_the_client(
    make_web: MakeWeb,
) -> None:
    # HAProxy's "option forwardfor" adds its own line after whatever the client sent:
    # the first line is the client's invention, a fresh one per request.
    web = await make_web(trust_forwarded_for=True, **_ONE_SESSION)
    statuses = await _sessions(
        web,
        ["10.0.0.1", "203.0.113.7"],
        ["10.0.0.2", "203.0.113.7"],
        ["10.0.0.3, 10.0.0.4", "203.0.113.7"],
        ["203.0.113.8"],
    )
    assert statuses == [200, 429, 429, 200]


async def test_ipv6_clients_are_counted_per_64(make_web: MakeWeb) -> None:
    web = await make_web(trust_forwarded_for=True, **_ONE_SESSION)
    statuses = await _sessions(
        web,
        ["2001:db8:1:2::a"],
        ["2001:db8:1:2:ffff:ffff:ffff:ffff"],  # the same /64, another address
        ["[2001:db8:1:2::c]:443"],  # with a port
        ["2001:db8:1:3::a"],  # the next /64: another client
        ["192.0.2.9"],
        ["::ffff:192.0.2.9"],  # the same IPv4 client through a dual-stack hop
        ["192.0.2.9:5123"],
    )
    assert statuses == [200, 429, 429, 200, 200, 429, 429]


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::/64"),
        ("2001:db8:0:0:1234:5678:9abc:def0", "2001:db8::/64"),
        ("[2001:db8:0:7::1]", "2001:db8:0:7::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
        ("x" * 100, "x" * 64),  # not an address (a proxy's "unknown", junk): bounded
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


def test_last_forwarded_hop() -> None:
    assert last_forwarded_hop(["10.0.0.1, 10.0.0.2", " 192.0.2.1 "]) == "192.0.2.1"
    assert last_forwarded_hop([]) is None
    assert last_forwarded_hop(["10.0.0.1,"]) is None
