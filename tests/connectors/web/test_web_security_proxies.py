"""trusted_proxies: X-Forwarded-For is read only from our proxies, and the client is the
right-most hop that is not one of them, whatever a client writes into the header."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import pytest
from multidict import CIMultiDict
from web_helpers import SITE_KEY, MakeWeb, web_settings

from botkit.errors import ConfigError
from connectors.web._address import MAX_HOPS, ClientKeys, parse_network

# Ours: a load balancer's network, an IPv6 one, and one proxy by its address.
_OURS_NETWORKS = [parse_network(n) for n in ("10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.10")]
_OURS = ClientKeys(forwarded=True, trusted=_OURS_NETWORKS)
_LB = "10.0.0.1"  # the peer of every request that came through our proxies
_CLIENT = "198.51.100.7"


@pytest.mark.parametrize(
    ("peer", "lines", "client"),
    [
        # From a peer that is not ours, the header is the client's own invention.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [f"{_CLIENT}, {_LB}"], "203.0.113.9"),
        ("2001:db8:1:2::9", ["198.51.100.1"], "2001:db8:1:2::/64"),
        # Through our proxy: the hop it added.
        (_LB, [_CLIENT], _CLIENT),
        (_LB, [], _LB),  # no header: the proxy itself (a health check)
        ("192.0.2.10", [_CLIENT], _CLIENT),
        ("::ffff:10.0.0.1", [_CLIENT], _CLIENT),  # a dual-stack listener's IPv4 peer
        # Spoofed chains: whatever the client wrote is left of what our proxy added,
        # even addresses of our own proxies.
        (_LB, [f"1.1.1.1, {_CLIENT}"], _CLIENT),
        (_LB, [f"10.0.0.7, {_CLIENT}"], _CLIENT),
        (_LB, [f"{_CLIENT}, 10.0.0.7, 203.0.113.50"], "203.0.113.50"),
        (_LB, [f"127.0.0.1, ::1, {_CLIENT}"], _CLIENT),
        # Two proxies of ours: the outer one's peer.
        (_LB, [f"{_CLIENT}, 10.0.0.2"], _CLIENT),
        (_LB, [f"6.6.6.6, {_CLIENT}, 10.0.0.2"], _CLIENT),
        (_LB, [f"6.6.6.6, {_CLIENT}, 2001:db8:ffff::5"], _CLIENT),
        (_LB, ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # only ours: the left-most
        # Garbage: left of the client it is ignored; where the client should be, the
        # proxy of ours that wrote it stands for it (never the text itself).
        (_LB, [f"garbage, {_CLIENT}"], _CLIENT),
        (_LB, [f"<script>, , ,{_CLIENT}"], _CLIENT),
        (_LB, [f"{_CLIENT}, unknown"], _LB),
        (_LB, [f"{_CLIENT}, unknown, 10.0.0.2"], "10.0.0.2"),
        (_LB, [f"{_CLIENT},"], _LB),  # an empty last hop
        (_LB, [""], _LB),
        (_LB, [" , ,"], _LB),
        (_LB, ["x" * 8000], _LB),
        (_LB, ["\uff11\uff19\uff18.51.100.7"], _LB),  # fullwidth digits are not an address
        (_LB, ["198.51.100.07"], _LB),  # nor a leading zero (octal to some parsers)
        (_LB, ["198.51.100.7.5"], _LB),
        (_LB, ["0x7f.1"], _LB),
        # Ports and brackets are not part of who the client is.
        (_LB, [f"{_CLIENT}:5123"], _CLIENT),
        (_LB, [f"6.6.6.6, {_CLIENT}:5123, 10.0.0.2:80"], _CLIENT),
        (_LB, ["[2001:db8:1:2::5]:443"], "2001:db8:1:2::/64"),
        (_LB, ["[2001:db8:1:2::5]"], "2001:db8:1:2::/64"),
        (_LB, ["2001:db8:1:2::5"], "2001:db8:1:2::/64"),
        (_LB, ["[2001:db8:ffff::9]:443, 10.0.0.2"], "2001:db8:ffff::/64"),  # all ours
        (_LB, ["[2001:db8:1:2::5"], "2001:db8:1:2::/64"),  # no closing bracket
        (_LB, ["fe80::1%eth0"], "fe80::/64"),
        (_LB, ["::ffff:198.51.100.7"], _CLIENT),
        ("2001:db8:ffff::1", ["2001:db8:1:2::5"], "2001:db8:1:2::/64"),
        ("2001:db8:ffff::1", ["198.51.100.7"], _CLIENT),
        # Many header lines (HAProxy adds one of its own): one list, in order.
        (_LB, ["6.6.6.6", "7.7.7.7", _CLIENT], _CLIENT),
        (_LB, [_CLIENT, "10.0.0.3", "10.0.0.2, 192.0.2.10"], _CLIENT),
        (_LB, ["6.6.6.6", _CLIENT, ""], _LB),
        (_LB, [f"6.6.6.6, {_CLIENT}"] + ["10.0.0.9"] * 10, _CLIENT),
        # Tabs and spaces around a hop.
        (_LB, [f"\t{_CLIENT} "], _CLIENT),
        # The peer not an address at all (a UNIX socket): counted as it is.
        (None, [_CLIENT], "unknown"),
    ],
)
def test_the_client_is_the_right_most_hop_not_ours(
    peer: str | None, lines: list[str], client: str
) -> None:
    assert _OURS.key(peer, lines) == client


def test_a_chain_of_more_proxies_than_anyone_runs_stops_at_ours() -> None:
    # MAX_HOPS of ours and more: the walk stops at one of them, never at the client's
    # 6.6.6.6 (which only a chain of our own proxies could have brought this far).
    ours = [f"10.0.{n // 250}.{n % 250 + 1}" for n in range(MAX_HOPS + 5)]
    client = _OURS.key(_LB, [", ".join(["6.6.6.6", *ours])])
    assert ipaddress.ip_address(client) in ipaddress.ip_network("10.0.0.0/8")


class _Lines(Sequence[str]):
    """Header lines that count which of them are read."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self.read: set[int] = set()

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            self.read.update(range(len(self._lines))[index])
            return self._lines[index]
        self.read.add(index % len(self._lines))
        return self._lines[index]


def test_a_hostile_header_is_walked_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiohttp takes 128 header lines of 8 KiB at most: all of them, of our own hops and
    # junk, cost the walk about as much as a short one. Not timed (a loaded machine makes
    # any bound flaky): what the walk costs is what it looks at, the hops it parses and
    # the header lines it reads, and neither may grow with the header.
    keys = ClientKeys(forwarded=True, trusted=_OURS_NETWORKS)
    looked: list[str] = []
    look = keys._look

    def counted(text: str) -> Any:
        looked.append(text)
        return look(text)

    monkeypatch.setattr(keys, "_look", counted)
    ours = _Lines([", ".join(["10.0.0.9"] * 900)] * 128)
    assert keys.key(_LB, ours) == "10.0.0.9"
    assert len(looked) <= MAX_HOPS + 1  # the peer, then MAX_HOPS hops at most
    assert ours.read == {127}  # the last line alone holds more hops than are walked
    looked.clear()
    junk = _Lines(["z" * 8000] * 128)
    assert keys.key(_LB, junk) == _LB
    assert looked == [_LB, "z" * 8000]  # the first hop that is not an address ends it
    assert junk.read == {127}


def test_without_trust_forwarded_for_the_header_is_not_read() -> None:
    peers = ClientKeys(forwarded=False)
    assert peers.key(_LB, [_CLIENT]) == _LB
    assert peers.key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert peers.key(None) == "unknown"


def test_what_clients_write_is_remembered_within_bounds() -> None:
    # Parsed peers and hops are kept to skip parsing them again: never more than a few
    # thousand, and never a long one.
    keys = ClientKeys(forwarded=True, trusted=[parse_network("10.0.0.0/8")])
    for n in range(20_000):
        assert keys.key(_LB, [f"junk{n}, 198.51.{n // 256 % 256}.{n % 256}"]) == (
            f"198.51.{n // 256 % 256}.{n % 256}"
        )
        keys.key(_LB, ["y" * 100 + str(n)])
    assert 0 < len(keys._seen) <= 4096
    assert all(len(text) <= 64 for text in keys._seen)


def test_without_trusted_proxies_the_last_hop_is_taken_from_any_peer() -> None:
    # trust_forwarded_for alone, as before trusted_proxies (with a warning at start).
    anyone = ClientKeys(forwarded=True)
    assert anyone.key("203.0.113.9", [f"6.6.6.6, {_CLIENT}"]) == _CLIENT
    assert anyone.key("203.0.113.9", ["6.6.6.6", "[2001:db8::1]:443"]) == "2001:db8::/64"
    assert anyone.key("203.0.113.9", [f"{_CLIENT},"]) == "203.0.113.9"
    assert anyone.key("203.0.113.9", []) == "203.0.113.9"


def _web_config(tmp_path: Path, **web: Any) -> None:
    web_settings(tmp_path / "web.db", web)


@pytest.mark.parametrize(
    ("entries", "errors"),
    [
        (["10.0.0.1/8"], ["trusted_proxies[0]", "host bits set (the network is 10.0.0.0/8)"]),
        (["proxy.example"], ["trusted_proxies[0]", "not an IP address or network"]),
        (["10.0.0.5", "[2001:db8::1]"], ["trusted_proxies[1]", "no brackets"]),
        (["10.0.0.5:8080"], ["trusted_proxies[0]", "not an IP address"]),
        (["10.0.0.0/33"], ["trusted_proxies[0]", "not an IP address"]),
        ([""], ["trusted_proxies[0]", "not an IP address"]),
        (["::ffff:10.0.0.0/104"], ["trusted_proxies[0]", "write it as IPv4"]),
        # Every bad entry at once, each under its own index.
        (["x", "10.0.0.0/8", "y"], ["trusted_proxies[0]", "trusted_proxies[2]"]),
    ],
)
def test_bad_entries_are_refused_at_load_naming_the_key(
    tmp_path: Path, entries: list[str], errors: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        _web_config(tmp_path, trust_forwarded_for=True, trusted_proxies=entries)
    message = str(refused.value)
    assert all(error in message for error in errors), message
    assert "connectors.web.trusted_proxies[" in message


def test_trusted_proxies_without_trust_forwarded_for_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trust_forwarded_for = true as well"):
        _web_config(tmp_path, trusted_proxies=["10.0.0.0/8"])


async def _sessions(make_web: MakeWeb, web: dict[str, Any], *forwarded: list[str]) -> list[int]:
    """POST /api/session once per entry (from 127.0.0.1), with those X-Forwarded-For
    lines, against a server that allows one session per client."""
    harness = await make_web(connect_rate={"rate": 0.001, "burst": 1}, **web)
    statuses = []
    for lines in forwarded:
        headers = CIMultiDict(("X-Forwarded-For", line) for line in lines)
        resp = await harness.client.post(
            "/api/session", json={"site_key": SITE_KEY}, headers=headers
        )
        statuses.append(resp.status)
    return statuses


async def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(
    make_web: MakeWeb, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.web")
    ours = {"trust_forwarded_for": True, "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}
    statuses = await _sessions(
        make_web,
        ours,
        [_CLIENT],
        [f"6.6.6.6, {_CLIENT}"],  # a new address of its invention: the same client
        [f"{_CLIENT}", "10.0.0.2"],  # through two proxies of ours
        ["203.0.113.50, 10.0.0.2"],  # another client
        [],  # the proxy itself
    )
    assert statuses == [200, 429, 429, 200, 200]
    assert not [r for r in caplog.records if "without trusted_proxies" in r.getMessage()]


async def test_a_peer_that_is_not_a_trusted_proxy_is_counted_by_its_own_address(
    make_web: MakeWeb,
) -> None:
    # 127.0.0.1 is not ours here: whatever it writes, it is one client.
    ours = {"trust_forwarded_for": True, "trusted_proxies": ["10.0.0.0/8"]}
    statuses = await _sessions(make_web, ours, [_CLIENT], ["203.0.113.50"], [])
    assert statuses == [200, 429, 429]


async def test_trust_forwarded_for_alone_keeps_working_with_a_warning(
    make_web: MakeWeb, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.web")
    statuses = await _sessions(
        make_web, {"trust_forwarded_for": True}, [_CLIENT], ["203.0.113.50"], [_CLIENT]
    )
    assert statuses == [200, 200, 429]
    (warning,) = [
        r.getMessage() for r in caplog.records if "without trusted_proxies" in r.getMessage()
    ]
    assert "from any peer" in warning
