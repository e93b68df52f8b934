"""Calls to the Slack Web API: a paced queue per channel, 429 waits, retries with backoff.

Every message or edit to one channel goes through that channel's lane: calls run one at
a time in arrival order (``asyncio.Lock`` wakes waiters first come, first served), at
least ``channel_send_interval_s`` apart, and a 429 holds the whole lane for its
``Retry-After`` so the messages behind it are delayed, never dropped or reordered.

``chat.update`` is also limited workspace-wide (Slack counts it per method per app per
workspace, not per channel): each call takes a token from a shared ``MethodBudget``, and
a 429 on it holds edits in every channel.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.errors import ConnectorError
from connectors.slack._ratelimit import MethodBudget
from connectors.slack.config import SlackRetry

__all__ = ["ChannelPacer", "SlackApi"]

log = logging.getLogger("connectors.slack")

# Errors Slack answers with HTTP 200 + ok=false that are worth another try.
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
_NETWORK = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
_DEFAULT_RETRY_AFTER_S = 1.0
_MAX_LANES = 10_000


@dataclass
class _Lane:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready_at: float = 0.0
    users: int = 0


class ChannelPacer:
    """One FIFO lane per channel; calls in a lane start ``interval`` seconds apart."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lanes: dict[str, _Lane] = {}

    @asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[_Lane]:
        """Hold ``channel``'s lane; the caller waits with ``wait_ready`` before each call."""
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = _Lane()
        lane.users += 1
        try:
            async with lane.lock:
                yield lane
        finally:
            lane.users -= 1
            if len(self._lanes) > _MAX_LANES:
                self._prune()

    def _prune(self) -> None:
        now = asyncio.get_running_loop().time()
        for key, lane in list(self._lanes.items()):
            if lane.users == 0 and lane.ready_at <= now:
                del self._lanes[key]

    @staticmethod
    async def wait_ready(lane: _Lane) -> None:
        delay = lane.ready_at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def done(self, lane: _Lane, hold: float | None = None) -> None:
        """Mark a call finished: the lane opens again after ``hold`` (default interval)."""
        wait = self.interval if hold is None else hold
        lane.ready_at = asyncio.get_running_loop().time() + wait


def _retry_after(exc: SlackApiError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    raw = None
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            raw = value
    try:
        value = float(raw) if raw is not None else _DEFAULT_RETRY_AFTER_S
    except (TypeError, ValueError):
        value = _DEFAULT_RETRY_AFTER_S
    if math.isnan(value):  # NaN compares false: no wait and no deadline, a tight loop
        value = _DEFAULT_RETRY_AFTER_S
    return min(max(value, 0.0), 3600.0)


def _error_code(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


class SlackApi:
    """Wraps ``AsyncWebClient`` with pacing and retries; raises ``ConnectorError``."""

    def __init__(
        self,
        client: AsyncWebClient,
        retry: SlackRetry,
        send_interval: float,
        *,
        updates_per_minute: float = 50.0,
    ) -> None:
        self.client = client
        self.retry = retry
        self.pacer = ChannelPacer(send_interval)
        # Methods limited per workspace on top of the per-channel lanes.
        self.budgets = {"chat.update": MethodBudget(updates_per_minute)}

    def held_for(self, method: str) -> float:
        """Seconds left of a workspace-wide 429 hold on ``method`` (0 when none)."""
        budget = self.budgets.get(method)
        return budget.held_for() if budget is not None else 0.0

    async def call_once(self, method: str, *, get: bool = False, **payload: Any) -> dict[str, Any]:
        """One unpaced call without retries (lookups, status lines).

        ``get`` sends the arguments as query parameters: Slack's read methods (e.g.
        ``users.info``) do not take JSON bodies.

        Raises:
            ConnectorError: any failure, with Slack's error code when there is one.
        """
        try:
            if get:
                response = await self.client.api_call(method, http_verb="GET", params=payload)
            else:
                response = await self.client.api_call(method, json=payload)
        except SlackApiError as exc:
            raise ConnectorError(f"slack {method} failed: {_error_code(exc)}") from exc
        except _NETWORK as exc:
            raise ConnectorError(f"slack {method} failed: {type(exc).__name__}: {exc}") from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    async def send(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A paced, retried call that posts or edits a message in ``payload["channel"]``.

        Raises:
            ConnectorError: a permanent error (bad channel, invalid token, message too
                long...), the retries ran out, or ``retry.give_up_after_s`` passed.
        """
        channel = str(payload.get("channel", ""))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.give_up_after_s
        failures = 0
        hold: float | None
        budget = self.budgets.get(method)
        async with self.pacer.turn(channel) as lane:
            while True:
                await self.pacer.wait_ready(lane)
                if budget is not None:
                    # Taken inside the lane, so the channel's order is kept while waiting.
                    await budget.acquire()
                try:
                    response = await self.client.api_call(method, json=payload)
                except SlackApiError as exc:
                    code = _error_code(exc)
                    status = getattr(exc.response, "status_code", 0)
                    if status == 429 or code == "ratelimited":
                        hold = _retry_after(exc)
                        if budget is not None:
                            budget.hold(hold)  # the limit is the workspace's, not the lane's
                        log.info(
                            "slack %s: rate limited in %s, waiting %.1fs", method, channel, hold
                        )
                    elif status >= 500 or code in _TRANSIENT:
                        failures += 1
                        hold = self._backoff(failures, method, code)
                        if hold is None:
                            self.pacer.done(lane)
                            raise ConnectorError(
                                f"slack {method} failed {failures}x: {code}"
                            ) from exc
                    else:
                        self.pacer.done(lane)
                        raise ConnectorError(f"slack {method} failed: {code}") from exc
                except _NETWORK as exc:
                    failures += 1
                    reason = f"{type(exc).__name__}: {exc}"
                    hold = self._backoff(failures, method, reason)
                    if hold is None:
                        self.pacer.done(lane)
                        raise ConnectorError(
                            f"slack {method} failed {failures}x: {reason}"
                        ) from exc
                else:
                    self.pacer.done(lane)
                    data = response.data
                    return data if isinstance(data, dict) else {}
                if loop.time() + hold > deadline:
                    self.pacer.done(lane, hold)
                    raise ConnectorError(
                        f"slack {method}: gave up after {self.retry.give_up_after_s:.0f}s"
                    )
                self.pacer.done(lane, hold)

    def _backoff(self, failures: int, method: str, reason: str) -> float | None:
        """Seconds to wait before the next try, or None when the attempts are used up."""
        if failures >= self.retry.max_attempts:
            return None
        base = min(self.retry.max_backoff_s, self.retry.initial_backoff_s * 2.0 ** (failures - 1))
        delay = base * (1 + 0.2 * random.random())  # jitter: retries of many replies spread
        log.warning("slack %s failed (%s); retry %d in %.2fs", method, reason, failures, delay)
        return delay
