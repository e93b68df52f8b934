"""Standard JSON only, for every body a botkit server reads.

Python's ``json.loads`` takes ``NaN``, ``Infinity`` and ``-Infinity`` by default; RFC 8259
has no such values and a client sending them is broken, so they are refused like any
other text that is not JSON. The web channel and the agent API both read with it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_json"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` of standard JSON only.

    Raises:
        ValueError: not JSON, or ``NaN`` / ``Infinity`` / ``-Infinity`` in it.
        RecursionError: nested too deeply.
    """
    return json.loads(text, parse_constant=_no_constant)
