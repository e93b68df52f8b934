"""Whether the channels' ports are free, checked before ``botkit run`` starts anything.

A channel binds its port only when it connects: after the model has loaded (seconds on
a CPU, a minute on a GPU) and the database has been opened, migrated and joined. A
second ``botkit run`` started by mistake on the same machine would do all that, then
fail. Trying each address first makes it fail at once, touching nothing. It is a hint,
not a reservation: the port may still be taken in between, and then the channel's own
bind reports it, as before.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from botkit.config import Settings, resolve_components
from botkit.config.listen import listeners_of

__all__ = ["channel_ports_in_use"]


def channel_ports_in_use(settings: Settings) -> list[str]:
    """One line per enabled channel address that another program listens on already."""
    specs, _ = resolve_components("connectors", settings.connectors)  # valid: loaded before
    listeners = {
        f"connectors.{spec.name}.{key}": address
        for spec in specs
        for key, address in listeners_of(spec.config).items()
    }
    return _in_use(listeners)


def _in_use(listeners: Mapping[str, tuple[str, int]]) -> list[str]:
    busy = []
    for key, (host, port) in listeners.items():
        if port != 0 and _taken(host, port):
            busy.append(f"{key}: {host}:{port} is in use already (another bot running?)")
    return busy


def _taken(host: str, port: int) -> bool:
    """True when binding ``host:port`` fails because something listens there; any other
    failure (a name that does not resolve, a port below 1024) is left to the channel."""
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return False
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            # As the servers bind (asyncio's reuse_address): a socket of the last run
            # still in TIME_WAIT is no obstacle; a listening one is.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False
