"""Agents' names as stored and shown: the one rule for the names ``[plugins.handoff.agents]``
lists, the names an agents' tool gives with a message, and the names a channel gives
its agents (Slack)."""

from __future__ import annotations

from botkit.sanitize import sanitize_text
from botkit.store._checks import MAX_AGENT_NAME

__all__ = ["agent_name", "channel_name"]


def agent_name(name: str) -> str:
    """An agent's name as stored and shown: spaces collapsed, 1-100 printable
    characters. The one rule for names ``[plugins.handoff.agents]`` lists and names an
    agents' tool gives: a control or format character (an invisible one, a
    right-to-left override that turns "Ana" around) would make one agent look like
    another in the inbox and on the customer's screen.

    Raises:
        ValueError: otherwise (without the name, which may be a token put in the wrong
            place).
    """
    clean = " ".join(name.split())
    if not clean or len(clean) > MAX_AGENT_NAME:
        raise ValueError(f"the name must be 1-{MAX_AGENT_NAME} characters, not {len(clean)}")
    if not clean.isprintable():
        raise ValueError("the name must be printable text (no control or format characters)")
    return clean


def channel_name(agent: str) -> str:
    """The name a channel gives an agent (their Slack name), as stored: what it says,
    without the characters ``agent_name`` refuses (the message is already on the
    channel, so it is kept rather than refused)."""
    shown = "".join(c for c in sanitize_text(agent) if c.isprintable() or c.isspace())
    return " ".join(shown.split())[:MAX_AGENT_NAME]
