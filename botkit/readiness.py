"""What ``/readyz`` answers, wherever it is served: one definition for the web channel's
port and the metrics port (a Slack- or Telegram-only bot has no web port).

Ready means this process can answer customers: it accepts messages, the store and the
generation backend answer, and at least one of its channels serves. A channel that is
down (its credentials rejected, see ``botkit.channel_health``) is named in the body but
does not by itself make the process unready while another channel serves: readiness
routes traffic to the process (a load balancer in front of the web widget), and taking
the widget out of rotation because Telegram refused a token is the coupling the channel
state exists to avoid. The ``botkit_channel_up`` gauge is what to alert on for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CHECK_TIMEOUT_S",
    "READY_TIMEOUT_S",
    "Readiness",
    "ReportsReadiness",
    "answer_readiness",
]

# A probe must answer: a store or backend check that hangs counts as not ready.
READY_TIMEOUT_S = 5.0
# The bound of each part's check (the store's ping, the backend's ready), shorter than
# the whole answer's: a hanging store must give a body naming it ("store": "down"), not
# the bare {"error": "timeout"} of the outer bound.
CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Readiness:
    """The parts readiness is made of.

    Attributes:
        accepting: the bot is started and not shutting down.
        store: the database answered a ping.
        backend: the generation backend says it is ready.
        channels: channel name -> whether it serves (False: down).
    """

    accepting: bool
    store: bool
    backend: bool
    channels: Mapping[str, bool] = field(default_factory=dict)

    @property
    def not_ready(self) -> list[str]:
        """The parts that keep the process from being ready (empty when ready)."""
        parts = [
            name
            for name, ok in (
                ("accepting", self.accepting),
                ("store", self.store),
                ("backend", self.backend),
            )
            if not ok
        ]
        if self.channels and not any(self.channels.values()):
            parts.append("channels")
        return parts

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def body(self) -> dict[str, Any]:
        """The JSON body: ``status`` (``ready`` / ``not_ready``, as it always was), each
        part's state, and ``not_ready`` naming what is not."""
        return {
            "status": "ready" if self.ready else "not_ready",
            "accepting": self.accepting,
            "store": "ok" if self.store else "down",
            "backend": "ok" if self.backend else "down",
            "channels": {name: "up" if ok else "down" for name, ok in self.channels.items()},
            "not_ready": self.not_ready,
        }


@runtime_checkable
class ReportsReadiness(Protocol):
    """A core that says which part is not ready (``botkit.bot.Bot``)."""

    async def readiness(self) -> Readiness: ...


class _ReadyOnly(Protocol):
    async def ready(self) -> bool: ...


async def answer_readiness(
    core: ReportsReadiness | _ReadyOnly, timeout_s: float = READY_TIMEOUT_S
) -> tuple[int, dict[str, Any]]:
    """The HTTP status (200 or 503) and JSON body of ``/readyz`` for ``core``.

    A core that only says ready or not (``CoreHandle.ready``: a test's, an embedding's)
    gets the old body, ``{"status": ...}``. Whatever the core raises, or a check that
    does not answer within ``timeout_s``, is "not ready": a probe must get an answer.
    """
    try:
        if isinstance(core, ReportsReadiness):
            readiness = await asyncio.wait_for(core.readiness(), timeout_s)
            return (200 if readiness.ready else 503), readiness.body()
        ready = await asyncio.wait_for(core.ready(), timeout_s)
    except Exception as exc:  # readiness probes must answer, whatever the core raises
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return 503, {"status": "not_ready", "error": reason}
    return (200 if ready else 503), {"status": "ready" if ready else "not_ready"}
