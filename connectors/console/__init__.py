"""Console connector: chat with the bot in a terminal (``botkit chat``)."""

from __future__ import annotations

from connectors.console.connector import ConsoleConfig, ConsoleConnector

__all__ = ["ConsoleConfig", "ConsoleConnector"]
