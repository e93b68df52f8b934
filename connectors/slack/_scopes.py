"""The bot scopes the connector uses, and the check of a bot token's scopes at start.

``manifest.yaml`` asks for exactly these scopes and events (tests/connectors/slack
checks both ways). Slack sends a token's scopes with every Web API answer, in the
``X-OAuth-Scopes`` header; ``auth.test``'s is read on connect, so a scope left out of
the app (or added to the manifest without reinstalling it) is named at start instead
of surfacing later as ``missing_scope`` on a customer's reply.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EVENT_SCOPES", "METHOD_SCOPES", "REQUIRED_SCOPES", "missing_scopes"]

# Each Web API method the connector calls with the bot token -> the bot scope it needs.
# (``apps.connections.open``, Socket Mode, takes the app-level token's connections:write.)
METHOD_SCOPES: Mapping[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    # Native streaming of replies (Slack's AI-app streaming, ``streaming`` in the config).
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    # chat:write since Slack's 2026-03 change (assistant:write is being phased out).
    "assistant.threads.setStatus": "chat:write",
    "users.info": "users:read",
    # Looking for a placeholder whose post timed out (``_orphans.py``): the
    # conversation's *:history scope (im, channels, groups, mpim), which its message
    # events need already (EVENT_SCOPES).
    "conversations.history": None,
    "conversations.replies": None,
}
# Each event subscription -> the bot scope it needs.
EVENT_SCOPES: Mapping[str, str] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
}
# What the bot cannot do without each scope.
_WITHOUT: Mapping[str, str] = {
    "chat:write": "no reply can be posted",
    "app_mentions:read": "mentions of the bot in channels are not received",
    "im:history": "direct messages are not received",
    "channels:history": "replies in the bot's threads in public channels are not received",
    "groups:history": "replies in the bot's threads in private channels are not received",
    "mpim:history": "group DMs are not received",
    "users:read": "no names or language hints (locale) of the people who write",
}
# Without these the bot answers nobody: connecting fails.
REQUIRED_SCOPES = frozenset({"chat:write"})


def missing_scopes(granted: str) -> tuple[list[str], list[str]]:
    """The scopes the connector uses that ``granted`` lacks, each with what it costs.

    Args:
        granted: the ``X-OAuth-Scopes`` header, comma-separated scope names.

    Returns:
        (required, optional) lists of ``"scope (what is lost)"``, in a stable order.
    """
    have = {scope.strip() for scope in granted.split(",")}
    missing = [scope for scope in _WITHOUT if scope not in have]
    required = [f"{s} ({_WITHOUT[s]})" for s in missing if s in REQUIRED_SCOPES]
    optional = [f"{s} ({_WITHOUT[s]})" for s in missing if s not in REQUIRED_SCOPES]
    return required, optional
