"""Whether a channel serves now: down while the platform rejects its credentials.

A Telegram token revoked in @BotFather, or a Slack app uninstalled, is found out at run
time by the channel's connector (a refused ``getUpdates``, an ``invalid_auth`` answer).
That one channel is then *down*: it stops producing work it cannot deliver, while the
process and its other channels keep serving (a revoked Telegram token must not take the
web widget down with it). The core reads ``ChannelHealth`` for the
``botkit_channel_up`` gauge, ``/readyz`` and to skip the model for a message that
arrives on a down channel.

The operator is told once, at ERROR, with what to do; then at most once a minute while
the channel stays down (each refused call reports it again, and a flood of them must not
drown the log); at INFO when it serves again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botkit.throttled_warning import ThrottledWarning

__all__ = ["REMIND_EVERY_S", "ChannelHealth"]

_log = logging.getLogger("botkit.channels")

# How often an ERROR repeats while a channel stays down.
REMIND_EVERY_S = 60.0


class ChannelHealth:
    """One channel's state: up, or down with a reason (see the module docstring).

    Args:
        channel: the channel name (in the log lines).
        remind_every_s: shortest time between two ERROR lines while it stays down.
        clock: seconds (any epoch), for the reminders' spacing.
    """

    def __init__(
        self,
        channel: str,
        *,
        remind_every_s: float = REMIND_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self._reason: str | None = None
        # One throttle for the channel's whole life, not one per episode: a channel that
        # flaps (a proxy refusing some calls only) must not log an ERROR per message.
        self._down_log = ThrottledWarning(
            _log,
            f"channel {channel!r} is down, the other channels keep serving: %s",
            interval_s=remind_every_s,
            clock=clock,
            level=logging.ERROR,
        )
        self._up_log = ThrottledWarning(
            _log,
            f"channel {channel!r} is up again: its credentials are accepted",
            interval_s=remind_every_s,
            clock=clock,
            level=logging.INFO,
        )

    @property
    def reason(self) -> str | None:
        """Why the channel is down (what the operator should do), or None while up."""
        return self._reason

    @property
    def up(self) -> bool:
        return self._reason is None

    def down(self, reason: str) -> bool:
        """Report that the channel cannot serve (its credentials were rejected).

        Called again for every refusal while it stays down: at most one line every
        ``remind_every_s`` (the first at once, unless the channel was down less than
        that long ago: a flapping channel is not an ERROR per message).

        Args:
            reason: what happened and what to do, never a credential.

        Returns:
            Whether it went down with this call (it was up).
        """
        went_down = self._reason is None
        self._reason = reason
        self._down_log.warn(reason)
        return went_down

    def back(self) -> bool:
        """Report that the channel serves again; returns whether it was down."""
        if self._reason is None:
            return False
        self._reason = None
        self._up_log.warn()
        return True
