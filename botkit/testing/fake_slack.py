"""A local stand-in for Slack: the Web API methods botkit uses and a Socket Mode server.

The real ``slack_sdk`` / ``slack_bolt`` code is pointed at it with ``base_url``::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)

It records every call with a monotonic timestamp (so tests can measure pacing and
back-off from the server's side), keeps posted messages, and can be told to answer a
method with 429 + ``Retry-After``, a 5xx, a Slack error, or a dropped connection, and
to answer late (``delay``). Deleted messages leave ``messages`` and are kept in
``deleted``.
``signed_headers`` signs an Events API request the way Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["FakeMessage", "FakeSlack", "SlackCall", "signed_headers"]


def signed_headers(secret: str, body: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with a request: ``v0=HMAC-SHA256(secret, "v0:ts:body")``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One Web API request as the fake received it."""

    method: str
    args: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int  # HTTP status answered (0: connection dropped)


@dataclass
class FakeMessage:
    """A message the bot posted; ``versions`` holds every text it had, oldest first."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None
    blocks: list[Any] | None = None
    versions: list[str] = field(default_factory=list)


@dataclass
class _Fault:
    method: str
    times: int
    status: int
    error: str
    retry_after: float | None
    drop: bool
    delay: float
    answer: bool = False  # only late: then answered as usual (``slow``)


class FakeSlack:
    """The fake server. Use as ``async with FakeSlack(...) as slack``.

    Args:
        users: ``users.info`` answers by user id (``{"U1": {"locale": "fr-FR", ...}}``).
        status_supported: whether ``assistant.threads.setStatus`` succeeds (it only does
            in Slack's AI-app threads).
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-token",
        app_token: str = "xapp-fake-token",
        team_id: str = "T0FAKE",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "A0FAKE",
        users: dict[str, dict[str, Any]] | None = None,
        status_supported: bool = False,
    ) -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.app_id = app_id
        self.users = dict(users or {})
        self.status_supported = status_supported
        self.calls: list[SlackCall] = []
        self.messages: list[FakeMessage] = []
        self.deleted: list[FakeMessage] = []
        self.acks: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- test controls --------------------------------------------------------------------

    def fail(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        error: str = "ratelimited",
        retry_after: float | None = 1,
        drop: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (429 with Retry-After by
        default; ``status=500``, ``status=200`` + ``error``, or ``drop=True`` for a
        connection closed without an answer), each after ``delay`` seconds."""
        self._faults.append(_Fault(method, times, status, error, retry_after, drop, delay))

    def slow(self, method: str, delay: float, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` as usual, ``delay`` seconds late."""
        self._faults.append(_Fault(method, times, 200, "", None, False, delay, answer=True))

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str | None) -> list[FakeMessage]:
        """Messages the bot posted in a thread (``None``: top level), in order."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    async def wait_until(self, check: Callable[[], bool], limit_s: float = 30.0) -> None:
        """Wait until ``check()`` is true (re-checked after every call to the fake)."""
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(check)

    async def push(self, envelope: dict[str, Any], limit_s: float = 30.0) -> None:
        """Send a Socket Mode envelope to the connected app and wait for its ack."""
        await self.wait_until(lambda: bool(self._sockets), limit_s)
        await self._sockets[-1].send_str(json.dumps(envelope))
        env_id = envelope.get("envelope_id")
        await self.wait_until(
            lambda: any(a.get("envelope_id") == env_id for a in self.acks), limit_s
        )

    # -- server ---------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            else:
                args.update(dict(await request.post()))
        return args

    def _fault_for(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await self._args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        fault = self._fault_for(method)
        status = 0 if fault is not None and fault.drop else (fault.status if fault else 200)
        self.calls.append(SlackCall(method, args, time.monotonic(), status))
        try:
            if fault is not None:
                if fault.delay > 0:
                    await self._notify()  # the call has arrived; its answer comes late
                    await asyncio.sleep(fault.delay)
            if fault is not None and not fault.answer:
                if fault.drop:
                    if request.transport is not None:
                        request.transport.close()
                    return web.Response(status=500)
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                return web.json_response(
                    {"ok": False, "error": fault.error}, status=fault.status, headers=headers
                )
            expected = self.app_token if method == "apps.connections.open" else self.bot_token
            if token != expected:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response(self._answer(method, args))
        finally:
            await self._notify()

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "botkit",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.app_id,
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        if method == "chat.postMessage":
            return self._post(args)
        if method == "chat.update":
            return self._update(args)
        if method == "chat.delete":
            return self._delete(args)
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": args.get("user"), **user}}
        if method == "assistant.threads.setStatus":
            return {"ok": True} if self.status_supported else {"ok": False, "error": "not_allowed"}
        return {"ok": False, "error": "unknown_method"}

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, text = args.get("channel"), args.get("text")
        if not isinstance(channel, str) or not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not text and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if isinstance(text, str) and len(text) > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        n = next(self._ts)
        ts = f"{1_700_000_000 + n}.{n:06d}"
        thread = args.get("thread_ts")
        msg = FakeMessage(channel, ts, str(text or ""), str(thread) if thread else None)
        msg.blocks = args.get("blocks")
        msg.versions.append(msg.text)
        self.messages.append(msg)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": msg.text, "ts": ts}}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        for msg in self.messages:
            if msg.channel == args.get("channel") and msg.ts == args.get("ts"):
                msg.text = str(args.get("text") or "")
                if "blocks" in args:
                    msg.blocks = args["blocks"] or None
                msg.versions.append(msg.text)
                return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text}
        return {"ok": False, "error": "message_not_found"}

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        for msg in self.messages:
            if msg.channel == args.get("channel") and msg.ts == args.get("ts"):
                self.messages.remove(msg)
                self.deleted.append(msg)
                return {"ok": True, "channel": msg.channel, "ts": msg.ts}
        return {"ok": False, "error": "message_not_found"}

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {}})
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if isinstance(data, dict):
                        self.acks.append(data)
                        await self._notify()
        finally:
            self._sockets.remove(ws)
        return ws
