"""The Slack channel: a slack-bolt app over the HTTP Events API or Socket Mode.

Enabled with a ``[connectors.slack]`` table in the TOML; see docs/slack.md for creating
the Slack app (``connectors/slack/manifest.yaml``), the config keys and how to run it.
"""

from connectors.slack.config import SlackConfig, SlackRetry
from connectors.slack.connector import SlackConnector

__all__ = ["SlackConfig", "SlackConnector", "SlackRetry"]
