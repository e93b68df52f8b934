"""Whether a channel serves now: down while the platform rejects its credentials.

A Telegram token revoked in @BotFather, or a Slack app uninstalled, is found out at run
time by the channel's connector (a refused ``getUpdates``, an ``invalid_auth`` answer).
That one channel is then *down*: it stops producing work it cannot deliver, while the
process and its other channels keep serving (a revoked Telegram token must not take the
web widget down with it). The core reads ``ChannelHealth`` for the
``botkit_channel_up`` gauge, ``/readyz`` and to skip the model for a message that
arrives on a down channel.

The operator is told at each change: at ERROR, with what to do, when it goes down; at
INFO when it serves again. While it stays down, each refused call (a message's send, the
connector's own recheck once a minute) reports it again: those reminders are at most one
a minute, as a flood of them must not drown the log. Changes are never held back, so the
last line about a channel always says what it is now, even when it flaps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

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
        self._remind_every_s = remind_every_s
        self._clock = clock
        self._last_line = 0.0  # when the last ERROR about this episode was logged
        self._skipped = 0  # reminders not logged since then

    @property
    def reason(self) -> str | None:
        """Why the channel is down (what the operator should do), or None while up."""
        return self._reason

    @property
    def up(self) -> bool:
        return self._reason is None

    def down(self, reason: str) -> bool:
        """Report that the channel cannot serve (its credentials were rejected).

        Going down is logged at once; called again while it stays down (every refusal),
        it is a reminder: at most one line every ``remind_every_s``, counting the ones
        it skipped.

        Args:
            reason: what happened and what to do, never a credential.

        Returns:
            Whether it went down with this call (it was up).
        """
        went_down = self._reason is None
        self._reason = reason
        now = self._clock()
        if not went_down and 0 <= now - self._last_line < self._remind_every_s:
            self._skipped += 1
            return False
        skipped, self._skipped, self._last_line = self._skipped, 0, now
        suffix = f" ({skipped} more since the last warning)" if skipped and not went_down else ""
        _log.error(
            "channel %r is down, the other channels keep serving: %s%s",
            self.channel, reason, suffix,
        )  # fmt: skip
        return went_down

    def back(self) -> bool:
        """Report that the channel serves again (logged, at INFO); returns whether it
        was down."""
        if self._reason is None:
            return False
        self._reason = None
        _log.info("channel %r is up again: its credentials are accepted", self.channel)
        return True
