"""The explicit language switch command, e.g. ``/lang es`` or ``/lang español``.

The command word is configurable (``language.switch_command``; empty turns it off). It
matches case-insensitively at the start of the message, optionally followed by
``@botname`` (Telegram appends it in groups); the rest of the message is the argument:
a language tag (``es``, ``pt-BR``) or a language name in English or in the language
itself (see ``botkit.language.codes.find_language``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SwitchRequest", "parse_switch"]

MAX_ARGUMENT_CHARS = 64


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    """A switch command: what followed the command word (stripped, possibly empty)."""

    argument: str


def parse_switch(text: str, command: str) -> SwitchRequest | None:
    """The switch request in ``text``, or None when ``text`` is not the command."""
    if not command:
        return None
    stripped = text.strip()
    if not stripped[: len(command)].casefold() == command.casefold():
        return None
    rest = stripped[len(command) :]
    mention = re.match(r"@\w+", rest)
    if mention is not None:
        rest = rest[mention.end() :]
    if rest and not rest[0].isspace():
        return None  # "/language" is not "/lang" followed by "uage"
    return SwitchRequest(rest.strip()[:MAX_ARGUMENT_CHARS])
