"""Calls to the Slack Web API: a paced queue per channel, 429 waits, retries with backoff.

Every message or edit to one channel goes through that channel's lane: calls run one at
a time in arrival order (``asyncio.Lock`` wakes waiters first come, first served), at
least ``channel_send_interval_s`` apart, and a 429 holds the whole lane for its
``Retry-After`` so the messages behind it are delayed, never dropped or reordered.

``chat.update`` is also limited workspace-wide (Slack counts it per method per app per
workspace, not per channel): each call takes a token from a shared ``MethodBudget``
before it queues in its lane, and a 429 on it holds edits in every channel (but not the
lanes: messages keep going out). Progress edits of a streamed reply are skipped rather
than waited for when no token is free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.errors import ConnectorError
from botkit.retry import MAX_RETRY_AFTER_S, RandomSource, clamp_retry_after
from connectors.slack._ratelimit import MethodBudget
from connectors.slack.config import SlackRetry

__all__ = ["ChannelPacer", "SlackApi", "SlackCallError", "describe_error"]

log = logging.getLogger("connectors.slack")

# Errors Slack answers with HTTP 200 + ok=false that are worth another try.
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
_NETWORK = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# Calls that would show something twice if made twice. One that timed out may have
# reached Slack (the answer is what was lost), and Slack has no idempotency key, so it is
# not tried again (see ``_unknown_outcome``). Edits, deletes and stops are idempotent.
_NOT_IDEMPOTENT = frozenset({"chat.postMessage", "chat.startStream", "chat.appendStream"})
# chat.appendStream is Tier 4 ("100+ per minute"), counted per workspace like
# chat.update: the appends of every reply streaming at once share this budget.
_APPENDS_PER_MINUTE = 100.0
_MAX_LANES = 10_000
# What the operator can do about Slack's permanent errors: the log shows the hint after
# the code (a reply that fails with one of them is stored as failed, not tried again).
_HINTS = {
    "not_in_channel": "the bot is not a member of the channel: /invite it there",
    "channel_not_found": "no such channel, or the bot cannot see it (removed from it?)",
    "is_archived": "the channel is archived",
    "restricted_action": "a workspace setting stops the bot posting there",
    "invalid_auth": "the token is not valid",
    "not_authed": "no token was sent",
    "token_revoked": "the token was revoked (app uninstalled?): reinstall it, update the token",
    "token_expired": "the token expired (token rotation is on; botkit does not refresh tokens)",
    "account_inactive": "the bot or its workspace is deactivated (app uninstalled?)",
    "missing_scope": "add it under OAuth & Permissions (see manifest.yaml), reinstall the app",
    "not_allowed_token_type": "this method does not take this kind of token",
}


def _unknown_outcome(method: str, exc: BaseException) -> bool:
    """True when ``method`` timed out after its request may have been sent.

    A connect timeout, a refused or reset connection, or a dropped keep-alive connection
    (the common case of a closed connection: Slack did not read the request) leave
    nothing behind and are retried; a call left waiting for its answer is not, when a
    second one would post again: the customer would read the reply twice.
    """
    if method not in _NOT_IDEMPOTENT or not isinstance(exc, asyncio.TimeoutError):
        return False
    return not isinstance(exc, aiohttp.ConnectionTimeoutError)


class SlackCallError(ConnectorError):
    """A Web API call that failed: ``code`` is Slack's error code ("" when there was no
    answer), ``transient`` whether the same call may work later (429, 5xx, network),
    ``unknown_outcome`` whether Slack may have made it all the same (a timeout)."""

    def __init__(
        self, message: str, *, code: str, transient: bool, unknown_outcome: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient
        self.unknown_outcome = unknown_outcome


@dataclass
class _Tries:
    """The state of one ``send`` across its attempts."""

    deadline: float
    failures: int = 0


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
    async def wait_ready(lane: _Lane, deadline: float) -> bool:
        """Wait until the lane opens; False at once (no wait) when that is after
        ``deadline`` (loop time), e.g. a 429's ``Retry-After`` outlasting it.

        The wait for the lane's lock needs no bound of its own: the calls ahead of this
        one came earlier, so their deadlines are earlier, and each gives up at its own
        (at most one call in flight, ``request_timeout_s``, later).
        """
        if lane.ready_at > deadline:
            return False
        delay = lane.ready_at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    def done(self, lane: _Lane, hold: float | None = None) -> None:
        """Mark a call finished: the lane opens again after ``hold`` (default interval)."""
        wait = self.interval if hold is None else hold
        lane.ready_at = asyncio.get_running_loop().time() + wait


def _retry_after(exc: SlackApiError) -> float:
    """The 429's ``Retry-After`` header (seconds, or an HTTP-date) as a safe wait: a
    missing, NaN, negative or unreadable one is 1 s, a huge one an hour."""
    headers = getattr(exc.response, "headers", None) or {}
    raw = None
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            raw = value
    return clamp_retry_after(raw, MAX_RETRY_AFTER_S)


def _error_code(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


def describe_error(exc: SlackApiError) -> str:
    """Slack's error code for the log, with what to do about it: ``missing_scope``
    names the scope Slack says is needed (``needed``) and those the token has."""
    code = _error_code(exc)
    data = getattr(exc.response, "data", None)
    details = []
    if code == "missing_scope" and isinstance(data, dict):
        for field, label in (("needed", "needed"), ("provided", "the token has")):
            value = data.get(field)
            if isinstance(value, str) and value:
                details.append(f"{label}: {value[:500]}")
    hint = _HINTS.get(code)
    if hint:
        details.append(hint)
    return f"{code} ({'; '.join(details)})" if details else code


def _transient(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 0)
    code = _error_code(exc)
    return status == 429 or status >= 500 or code == "ratelimited" or code in _TRANSIENT


class SlackApi:
    """Wraps ``AsyncWebClient`` with pacing and retries; raises ``ConnectorError``."""

    def __init__(
        self,
        client: AsyncWebClient,
        retry: SlackRetry,
        send_interval: float,
        *,
        updates_per_minute: float = 50.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.client = client
        self.retry = retry
        self._waits = retry.backoff()
        self.rng: RandomSource | None = None  # the jitter's random source (tests seed one)
        # Bounds each call here, whatever session the client has: slack_sdk applies its
        # own ``timeout`` only to sessions it makes, and aiohttp's default is 300 s.
        self.timeout_s = timeout_s
        self.pacer = ChannelPacer(send_interval)
        # Methods limited per workspace on top of the per-channel lanes.
        self.budgets = {
            "chat.update": MethodBudget(updates_per_minute),
            "chat.appendStream": MethodBudget(_APPENDS_PER_MINUTE),
        }
        # Told (method, Slack's error code, the code described) whenever Slack refuses
        # a call with one of its errors (see ``_refused``): the connector watches for a
        # token rejected at run time (``_token_watch``).
        self.on_refused: Callable[[str, str, str], None] | None = None

    def _refused(self, method: str, exc: SlackApiError) -> None:
        if self.on_refused is not None:
            self.on_refused(method, _error_code(exc), describe_error(exc))

    def held_for(self, method: str) -> float:
        """Seconds left of a workspace-wide 429 hold on ``method`` (0 when none)."""
        budget = self.budgets.get(method)
        return budget.held_for() if budget is not None else 0.0

    async def take_budget(self, method: str, deadline: float) -> bool:
        """Take ``method``'s workspace token for a ``call_once``, waiting until ``deadline``
        (loop time) at most; False when none came in time (or a 429 hold lasts longer).
        Always True for a method without a workspace budget."""
        budget = self.budgets.get(method)
        return True if budget is None else await budget.acquire(deadline)

    async def call_once(self, method: str, *, get: bool = False, **payload: Any) -> dict[str, Any]:
        """One unpaced call without retries (lookups, status lines).

        ``get`` sends the arguments as query parameters: Slack's read methods (e.g.
        ``users.info``) do not take JSON bodies.

        Raises:
            SlackCallError: any failure, with Slack's error code when there is one.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                if get:
                    response = await self.client.api_call(method, http_verb="GET", params=payload)
                else:
                    response = await self.client.api_call(method, json=payload)
        except SlackApiError as exc:
            self._refused(method, exc)
            raise SlackCallError(
                f"slack {method} failed: {describe_error(exc)}",
                code=_error_code(exc),
                transient=_transient(exc),
            ) from exc
        except _NETWORK as exc:
            raise SlackCallError(
                f"slack {method} failed: {type(exc).__name__}: {exc}", code="", transient=True
            ) from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    @overload
    async def send(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        droppable: Literal[False] = False,
        deadline: float | None = None,
    ) -> dict[str, Any]: ...

    @overload
    async def send(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        droppable: bool,
        deadline: float | None = None,
    ) -> dict[str, Any] | None: ...

    async def send(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        droppable: bool = False,
        deadline: float | None = None,
    ) -> dict[str, Any] | None:
        """A paced, retried call that posts or edits a message in ``payload["channel"]``.

        A method with a workspace budget (``chat.update``) takes its token *before* the
        channel's lane, so waiting for the budget never holds up the channel's other
        calls; a 429 on it holds the budget, not the lane. ``droppable`` marks a call that
        may be skipped (a progress edit whose text a later edit carries): it is made only
        if a budget token is free at once and the method is not held; otherwise, or when
        it would have to be tried again (a 429, a 5xx), it is skipped and None is
        returned. Other calls wait for the budget, bounded by ``retry.give_up_after_s``
        like the rest of the delivery, or by ``deadline`` (loop time) when earlier. The
        deadline is checked between tries, never during one: a call in flight is not cut
        off (it may have reached Slack), only bounded by ``request_timeout_s``.

        Raises:
            ConnectorError: a permanent error (bad channel, invalid token, message too
                long...), the retries ran out, or ``retry.give_up_after_s`` passed.
        """
        channel = str(payload.get("channel", ""))
        give_up = asyncio.get_running_loop().time() + self.retry.give_up_after_s
        deadline = give_up if deadline is None else min(deadline, give_up)
        tries = _Tries(deadline)
        budget = self.budgets.get(method)
        if budget is None:
            async with self.pacer.turn(channel) as lane:
                while True:
                    result = await self._attempt(method, payload, lane, tries, None)
                    if result is not None:
                        return result
        while True:
            if droppable:
                if not budget.try_acquire():
                    return None
            elif not await budget.acquire(deadline):
                held = budget.held_for()
                why = (
                    f"Slack's rate limit holds it for {held:.0f}s more (Retry-After),"
                    f" past this reply's give_up_after_s ({self.retry.give_up_after_s:.0f}s)"
                    if held > 0
                    else f"no workspace budget within give_up_after_s"
                    f" ({self.retry.give_up_after_s:.0f}s)"
                )
                raise ConnectorError(f"slack {method}: gave up, {why}")
            async with self.pacer.turn(channel) as lane:
                result = await self._attempt(method, payload, lane, tries, budget)
            if result is not None:
                return result
            if droppable:
                return None

    async def _attempt(
        self,
        method: str,
        payload: dict[str, Any],
        lane: _Lane,
        tries: _Tries,
        budget: MethodBudget | None,
    ) -> dict[str, Any] | None:
        """One call in the lane: its answer, or None when another try is due.

        A retry with backoff holds the lane until it is due; a 429 holds the lane, or
        the budget for a method that has one (the limit is then the workspace's).
        """
        channel = str(payload.get("channel", ""))
        if not await self.pacer.wait_ready(lane, tries.deadline):
            # The lane is held (a 429, a backoff) past this send's deadline: give up now,
            # as when a 429 answers this call itself, instead of waiting past it.
            if budget is not None:
                budget.refund()
            held = lane.ready_at - asyncio.get_running_loop().time()
            raise ConnectorError(
                f"slack {method}: gave up, {channel} is held for {held:.0f}s more (a 429's"
                f" Retry-After or a backoff), past give_up_after_s"
                f" ({self.retry.give_up_after_s:.0f}s)"
            )
        if budget is not None and budget.held_for() > 0:
            # A 429 came while this call waited for its lane: wait it out outside.
            budget.refund()
            return None
        hold: float | None
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.api_call(method, json=payload)
        except SlackApiError as exc:
            code = _error_code(exc)
            status = getattr(exc.response, "status_code", 0)
            if status == 429 or code == "ratelimited":
                hold = _retry_after(exc)
                log.info("slack %s: rate limited in %s, waiting %.1fs", method, channel, hold)
                if budget is not None:
                    budget.hold(hold)  # checked against the deadline by acquire()
                    self.pacer.done(lane)
                    return None
            elif status >= 500 or code in _TRANSIENT:
                tries.failures += 1
                hold = self._backoff(tries.failures, method, code)
                if hold is None:
                    self.pacer.done(lane)
                    raise SlackCallError(
                        f"slack {method} failed {tries.failures}x: {code}",
                        code=code,
                        transient=True,
                    ) from exc
            else:
                self.pacer.done(lane)
                self._refused(method, exc)
                raise SlackCallError(
                    f"slack {method} failed: {describe_error(exc)}", code=code, transient=False
                ) from exc
        except _NETWORK as exc:
            if _unknown_outcome(method, exc):
                self.pacer.done(lane)
                raise SlackCallError(
                    f"slack {method}: no answer within request_timeout_s"
                    f" ({self.timeout_s:g}s); not tried again, as Slack may have made it"
                    " and a second call would show the reply twice",
                    code="",
                    transient=True,
                    unknown_outcome=True,
                ) from exc
            tries.failures += 1
            reason = f"{type(exc).__name__}: {exc}"
            hold = self._backoff(tries.failures, method, reason)
            if hold is None:
                self.pacer.done(lane)
                raise ConnectorError(f"slack {method} failed {tries.failures}x: {reason}") from exc
        else:
            self.pacer.done(lane)
            data = response.data
            return data if isinstance(data, dict) else {}
        self.pacer.done(lane, hold)
        if asyncio.get_running_loop().time() + hold > tries.deadline:
            raise ConnectorError(
                f"slack {method}: gave up, the next try ({hold:.1f}s on) would come after"
                f" give_up_after_s ({self.retry.give_up_after_s:.0f}s)"
            )
        return None

    def _backoff(self, failures: int, method: str, reason: str) -> float | None:
        """Seconds to wait before the next try, or None when the attempts are used up."""
        if failures >= self.retry.max_attempts:
            return None
        delay = self._waits.delay(failures, self.rng)
        log.warning("slack %s failed (%s); retry %d in %.2fs", method, reason, failures, delay)
        return delay
