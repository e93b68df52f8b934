"""The web channel: an aiohttp chat server and an embeddable chat widget.

Enabled with a ``[connectors.web]`` table in the TOML; see docs/web.md for the embedding
snippet, the identity scheme and the API.
"""

from connectors.web.config import RateLimit, WebConfig
from connectors.web.connector import WebConnector
from connectors.web.identity import IdentityError, Visitor, user_hash

__all__ = ["IdentityError", "RateLimit", "Visitor", "WebConfig", "WebConnector", "user_hash"]
