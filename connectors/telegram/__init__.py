"""The Telegram channel: a bot in private chats and groups, over polling or a webhook.

Enabled with a ``[connectors.telegram]`` table in the TOML (``pip install
'botkit[telegram]'``); see docs/telegram.md for creating the bot and the settings.
"""

from connectors.telegram.config import FloodLimits, RetryPolicy, TelegramConfig, WebhookConfig
from connectors.telegram.connector import TelegramConnector

__all__ = ["FloodLimits", "RetryPolicy", "TelegramConfig", "TelegramConnector", "WebhookConfig"]
