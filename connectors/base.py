"""The connector base class, re-exported from ``botkit.connector`` where it is defined.

Kept so that connectors importing ``connectors.base`` keep working; new code imports
``botkit.connector``. These are the same classes, not copies: a connector subclassing
either is a ``botkit.connector.Connector``.
"""

from __future__ import annotations

from botkit.connector import ConfigT, Connector, ConnectorConfig

__all__ = ["ConfigT", "Connector", "ConnectorConfig"]
