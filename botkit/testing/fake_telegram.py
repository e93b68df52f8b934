"""A local stand-in for the Telegram Bot API, for tests of the real python-telegram-bot.

Point a client's ``base_url`` at ``FakeTelegram.base_url`` and it talks to this aiohttp
server instead of api.telegram.org. It serves ``getMe``, ``getUpdates`` (long polling
with Telegram's offset semantics), ``sendMessage``, ``editMessageText``,
``sendChatAction``, ``answerCallbackQuery``, ``setWebhook``, ``deleteWebhook`` and
``getWebhookInfo``; records every call with its arrival time; enforces the rules a
client can get wrong (empty or over-long text, editing to the same content, polling
while a webhook is set); and can be told to fail calls, e.g. with 429 ``retry_after``.
Like Telegram, it trims leading and trailing whitespace from a message text before
storing or comparing it: an edit that changes only that whitespace is refused as
"message is not modified".

Updates are scripted: ``add_batches([...], [...])`` releases one batch each time the
previous one has been confirmed (``getUpdates`` with a higher offset), so a client sees
exactly those batches. ``UpdateFactory`` builds realistic update payloads.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from botkit.testing.telegram_updates import UpdateFactory, utf16_len

__all__ = ["ApiCall", "FakeTelegram", "SentMessage", "UpdateFactory"]

_JSON_PARAMS = {
    "chat_id",
    "message_id",
    "message_thread_id",
    "offset",
    "limit",
    "timeout",
    "allowed_updates",
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "max_connections",
    "drop_pending_updates",
    "cache_time",
    "show_alert",
}
_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request: method, decoded parameters, arrival (``time.monotonic()``), status."""

    method: str
    params: dict[str, Any]
    at: float
    status: int


@dataclass
class SentMessage:
    """A message the bot sent, with its text after each send or edit (``versions``);
    texts are trimmed, as Telegram stores them."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    reply_to: int | None
    thread_id: int | None
    versions: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in _JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


class FakeTelegram:
    """The fake Bot API server. Use ``async with FakeTelegram(token) as api:``."""

    def __init__(
        self, token: str, *, bot_id: int = 7_000_001, username: str = "botkit_test_bot"
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Botkit Test",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.updates = UpdateFactory(bot_id=bot_id, bot_username=username)
        self.calls: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.webhook: dict[str, Any] | None = None
        self.confirmed = 0  # highest offset a client has sent
        # Files customers "sent": file_id -> content (getFile, then /file/bot<token>/...).
        self.files: dict[str, bytes] = {}
        # A web server in front of the file host that answers with its own error page,
        # quoting the requested path (bot token included), as Apache's 404 does.
        self.file_host_down = False
        # Files whose getFile answer has no file_path (the Bot API may omit it).
        self.files_without_path: set[str] = set()
        # Groups upgraded to supergroups: old chat id -> new. Sends to the old id are
        # refused as Telegram does (400 with parameters.migrate_to_chat_id).
        self.upgraded: dict[int, int] = {}
        # Seconds a method's answer is held back (a slow Bot API): method -> delay.
        self.delays: dict[str, float] = {}
        self._pending: list[dict[str, Any]] = []
        self._batches: list[list[dict[str, Any]]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._arrived = asyncio.Event()
        self._changed = asyncio.Condition()
        self._closing = False
        self._next_id: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._dispatch)
        app.router.add_get("/bot{token}/{method}", self._dispatch)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        self._closing = True
        self._arrived.set()  # release long polls
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """For python-telegram-bot's ``base_url`` (it appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- scripting ---------------------------------------------------------------------

    def add_batches(self, *batches: Iterable[dict[str, Any]]) -> None:
        """Queue batches; each is released once everything before it is confirmed."""
        self._batches.extend(list(b) for b in batches)
        self._arrived.set()

    def push(self, *updates: dict[str, Any]) -> None:
        """Make updates available now (after any already pending)."""
        self._pending.extend(updates)
        self._arrived.set()

    def fail(
        self,
        method: str,
        *,
        status: int = 502,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error."""
        if retry_after is not None:
            status = 429
            description = description or f"Too Many Requests: retry after {retry_after}"
        self._failures.setdefault(method, []).append(
            _Failure(status, description or "Bad Gateway", retry_after, times)
        )

    @property
    def pending(self) -> int:
        """Updates not yet confirmed (released or still scripted)."""
        return len(self._pending) + sum(len(b) for b in self._batches)

    # -- inspection --------------------------------------------------------------------

    def calls_to(
        self, method: str, chat_id: int | None = None, *, ok: bool = True
    ) -> list[ApiCall]:
        """Calls of ``method`` (to ``chat_id``), only successful ones unless ``ok=False``."""
        return [
            c
            for c in self.calls
            if c.method == method
            and (chat_id is None or c.params.get("chat_id") == chat_id)
            and (not ok or c.status == 200)
        ]

    def messages(self, chat_id: int | None = None) -> list[SentMessage]:
        return [m for m in self.sent if chat_id is None or m.chat_id == chat_id]

    async def wait_until(self, check: Callable[[], bool], within: float = 30.0) -> None:
        """Wait until ``check()`` is true (re-checked after every call to the fake);
        ``TimeoutError`` after ``within`` seconds."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(check)

    # -- the API -----------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        response = await self._call(request)
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            raw = await request.json()
        else:
            raw = dict(await request.post())
        params = _decode(raw if isinstance(raw, dict) else {})
        if request.match_info["token"] != self.token:
            return self._answer(method, params, 401, {"description": "Unauthorized"})
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        failure = self._take_failure(method)
        if failure is not None:
            body: dict[str, Any] = {"description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return self._answer(method, params, failure.status, body)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._answer(method, params, 404, {"description": "Not Found"})
        status, result = await handler(params)
        if status != 200:
            body = result if isinstance(result, dict) else {"description": result}
            return self._answer(method, params, status, body)
        return self._answer(method, params, 200, {"result": result})

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        if self.file_host_down:
            return web.Response(
                status=404,
                content_type="text/html",
                text=f"<html><h1>Not Found</h1><p>The requested URL {request.path} was not "
                "found on this server.</p></html>",
            )
        file_id = request.match_info["path"].rpartition("/")[2]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _api_getFile(self, params: dict[str, Any]) -> tuple[int, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return 400, "Bad Request: invalid file_id"
        answer = {
            "file_id": file_id,
            "file_unique_id": "u-" + file_id,
            "file_size": len(self.files[file_id]),
        }
        if file_id not in self.files_without_path:
            answer["file_path"] = f"documents/{file_id}"
        return 200, answer

    def _answer(
        self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]
    ) -> web.Response:
        self.calls.append(ApiCall(method, params, time.monotonic(), status))
        payload = {"ok": status == 200, **body}
        if status != 200:
            payload["error_code"] = status
        return web.json_response(payload, status=status)

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    async def _api_getMe(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.bot_user

    async def _api_getUpdates(self, params: dict[str, Any]) -> tuple[int, Any]:
        if self.webhook is not None:
            return 409, "Conflict: can't use getUpdates method while webhook is active"
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset > 0:
            self.confirmed = max(self.confirmed, offset)
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            if not self._pending and self._batches:
                self._pending.extend(self._batches.pop(0))
            if self._pending or self._closing or time.monotonic() >= deadline:
                break
            self._arrived.clear()
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._arrived.wait()
            except TimeoutError:
                break
        return 200, self._pending[: max(1, min(limit, 100))]

    async def _api_sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        raw = str(params.get("text") or "")
        text = raw.strip()  # Telegram stores (and later compares) the trimmed text
        if not text:
            return 400, "Bad Request: message text is empty"
        if utf16_len(raw) > _MAX_TEXT:  # the untrimmed length: the stricter of the two
            return 400, "Bad Request: message is too long"
        chat_id = int(params["chat_id"])
        if (refused := self._migrated(chat_id)) is not None:
            return refused
        message_id = self._next_id.get(chat_id, 1000) + 1
        self._next_id[chat_id] = message_id
        reply = params.get("reply_parameters")
        message = SentMessage(
            chat_id,
            message_id,
            text,
            params.get("reply_markup"),
            reply.get("message_id") if isinstance(reply, dict) else None,
            params.get("message_thread_id"),
        )
        message.versions.append((time.monotonic(), text))
        self.sent.append(message)
        return 200, self._message_json(message)

    def _migrated(self, chat_id: int) -> tuple[int, Any] | None:
        """Telegram's answer to any call for a group upgraded to a supergroup (400 with
        ``parameters.migrate_to_chat_id``), or None for other chats."""
        if chat_id not in self.upgraded:
            return None
        return 400, {
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": self.upgraded[chat_id]},
        }

    async def _api_editMessageText(self, params: dict[str, Any]) -> tuple[int, Any]:
        raw = str(params.get("text") or "")
        text = raw.strip()
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        if (refused := self._migrated(chat_id)) is not None:
            return refused
        found = [m for m in self.sent if (m.chat_id, m.message_id) == (chat_id, message_id)]
        if not found:
            return 400, "Bad Request: message to edit not found"
        message = found[0]
        markup = params.get("reply_markup")
        if not text:
            return 400, "Bad Request: message text is empty"
        if utf16_len(raw) > _MAX_TEXT:
            return 400, "Bad Request: message is too long"
        if text == message.text and markup == message.reply_markup:
            return 400, "Bad Request: message is not modified"
        message.text, message.reply_markup = text, markup
        message.versions.append((time.monotonic(), text))
        return 200, self._message_json(message)

    async def _api_sendChatAction(self, params: dict[str, Any]) -> tuple[int, Any]:
        if (refused := self._migrated(int(params["chat_id"]))) is not None:
            return refused
        return 200, True

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    async def _api_setWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not params.get("url"):
            return 400, "Bad Request: bad webhook: an HTTPS URL must be provided for webhook"
        self.webhook = dict(params)
        return 200, True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        self.webhook = None
        return 200, True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> tuple[int, Any]:
        url = (self.webhook or {}).get("url", "")
        return 200, {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": message.chat_id, "type": "private"}
        if message.chat_id < 0:
            chat = {"id": message.chat_id, "type": "supergroup", "title": "Test group"}
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "text": message.text,
        }
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        return data
