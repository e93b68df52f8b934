"""Quick replies as inline keyboards, and their callback data.

A button's ``callback_data`` is limited to 64 bytes. A value that fits is sent as it is
and comes back as the text of the customer's next message. A longer one is replaced by
``#h:`` and a digest, remembered here (bounded, in memory); after a restart such a button
no longer resolves and the click is only acknowledged. Callback data is chosen by the
customer's client, so whatever comes back is treated like typed text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from botkit.events import Button

__all__ = ["ButtonCodec"]

_MAX_DATA = 64
_PREFIX = "#h:"
_MAX_LABEL = 64  # keeps a row readable; Telegram has no documented hard limit


class ButtonCodec:
    """Builds keyboards and maps callback data back to button values."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._long: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def encode(self, value: str) -> str:
        """The callback data for ``value``."""
        if len(value.encode()) <= _MAX_DATA and value and not value.startswith(_PREFIX):
            return value
        key = _PREFIX + hashlib.sha256(value.encode()).hexdigest()[:32]
        self._long[key] = value
        self._long.move_to_end(key)
        while len(self._long) > self._capacity:
            self._long.popitem(last=False)
        return key

    def decode(self, data: str) -> str | None:
        """The value behind callback ``data``; None for a forgotten long value."""
        if data.startswith(_PREFIX):
            return self._long.get(data)
        return data

    def keyboard(self, buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
        """One button per row (labels stay readable on phones); None without buttons."""
        if not buttons:
            return None
        rows = [
            [
                InlineKeyboardButton(
                    b.label[:_MAX_LABEL] or b.value[:_MAX_LABEL], callback_data=self.encode(b.value)
                )
            ]
            for b in buttons
        ]
        return InlineKeyboardMarkup(rows)
