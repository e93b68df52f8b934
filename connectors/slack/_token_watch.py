"""A bot token Slack rejects at run time (``invalid_auth``, ``token_revoked``...).

Slack keeps delivering events to an app whose token was revoked, and every reply to them
would fail: the channel is reported down (``Connector.health``: one ERROR saying what to
do, then at most one a minute; the core then stores those messages without generating
replies), while the process's other channels serve on.

Whether it can come back by itself depends on the code: ``token_revoked``,
``token_expired`` and ``account_inactive`` are final (a new token, or a reinstalled app,
is a config change and a restart), so Slack is not asked again; ``invalid_auth`` and
``not_authed`` have been answered by Slack during its own incidents, so ``auth.test`` is
asked every ``RECHECK_S`` and the channel serves again once it passes.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.channel_health import ChannelHealth
from botkit.log_context import spawn_detached

__all__ = ["FINAL", "RECHECK_S", "REJECTED", "TokenWatch"]

log = logging.getLogger("connectors.slack")

# Codes that say the token itself is refused (any method), and of those, the ones that
# never pass without a new token.
FINAL = frozenset({"token_revoked", "token_expired", "account_inactive"})
REJECTED = FINAL | {"invalid_auth", "not_authed"}
RECHECK_S = 60.0
_WHAT_TO_DO = (
    "put a valid Bot User OAuth Token (xoxb-...) in [connectors.slack] bot_token"
    " (reinstall the app first if it was uninstalled) and restart botkit"
)


class TokenWatch:
    """Reports the channel down when Slack rejects the token, and up once it passes.

    Args:
        client: the connector's client (``auth.test`` with the bot token).
        health: the connector's ``health``.
        timeout_s: the bound of one ``auth.test``.
    """

    def __init__(self, client: AsyncWebClient, health: ChannelHealth, timeout_s: float) -> None:
        self._client = client
        self._health = health
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def refused(self, method: str, code: str, described: str) -> None:
        """Slack answered ``method`` with the error ``code`` (``SlackApi.on_refused``);
        anything but a rejected token is none of this watch's business."""
        if code not in REJECTED:
            return
        self._health.down(
            f"slack: the bot token was rejected ({method}: {described}); {_WHAT_TO_DO}"
        )
        if code not in FINAL and self._task is None and not self._closed:
            self._task = spawn_detached(self._recheck(), name="slack-token")

    def open(self) -> None:
        """Watch again (a connect after a disconnect)."""
        self._closed = False

    async def close(self) -> None:
        """Stop asking Slack (disconnect). Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _recheck(self) -> None:
        try:
            while not self._health.up:
                await asyncio.sleep(RECHECK_S)
                try:
                    async with asyncio.timeout(self._timeout_s):
                        await self._client.auth_test()
                except SlackApiError as exc:
                    data = getattr(exc.response, "data", None)
                    code = str(data.get("error")) if isinstance(data, dict) else ""
                    if code in REJECTED:
                        self._health.down(self._health.reason or code)  # the reminder
                        if code in FINAL:
                            return
                    continue
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.debug("slack: token check failed: %s", exc)
                    continue
                self._health.back()
        finally:
            self._task = None
