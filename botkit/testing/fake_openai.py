"""A local stand-in for an OpenAI-compatible chat-completions server (vLLM, llama.cpp, ...).

Point the real ``openai`` client's ``base_url`` at ``FakeOpenAI.base_url`` and it talks to
this aiohttp server. It serves ``GET /v1/models`` and ``POST /v1/chat/completions``
(streamed as server-sent events or whole), checks the bearer key when given one, records
every request, and can be told to misbehave the ways real servers and the proxies in
front of them do: an error status with an OpenAI-style or an HTML body, a malformed
event, an error event mid-stream, a connection cut mid-stream, a stream that ends
without finishing, a stall. ``aborted`` counts streams whose client went away early, so
tests can prove that cancelling a reply frees the server's work.

The reply is deterministic: ``reply(messages)`` (by default ``"You said: " + the last
user message``) streamed one word per event.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeOpenAI", "Misbehaviour", "RecordedRequest"]

_WORDS = re.compile(r"\S+\s*|\s+")


def _default_reply(messages: list[dict[str, Any]]) -> str:
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"You said: {last}"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One chat-completions request: its JSON body and headers, and when it arrived."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class Misbehaviour:
    """What the next chat-completions request(s) get instead of a normal reply.

    ``kind``: ``"status"`` (answer ``status`` with ``body``, JSON or text, and
    ``retry_after`` when set), ``"malformed"`` (an event that is not JSON after
    ``after`` words), ``"error_event"`` (an OpenAI-style error event after ``after``
    words), ``"cut"`` (drop the connection after ``after`` words), ``"unfinished"``
    (end the stream cleanly after ``after`` words, with no finish reason and no
    ``[DONE]``), ``"stall"`` (send ``after`` words, then wait ``stall_seconds``),
    ``"raw"`` (send ``body``, a string, as the whole event stream: the shapes some
    servers and gateways write).
    """

    kind: str
    status: int = 500
    body: str | dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None
    after: int = 0
    stall_seconds: float = 3600.0
    times: int = 1


class FakeOpenAI:
    """The server; use as ``async with FakeOpenAI(models=["m"]) as api:``.

    Args:
        models: the ids ``/v1/models`` lists and chat completions accept.
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>``.
        reply: maps the request's messages to the reply text.
        word_delay: seconds between streamed words.
    """

    def __init__(
        self,
        models: tuple[str, ...] | list[str] = ("fake-model",),
        *,
        api_key: str | None = None,
        reply: Callable[[list[dict[str, Any]]], str] = _default_reply,
        word_delay: float = 0.0,
    ) -> None:
        self.models = list(models)
        self.api_key = api_key
        self.reply = reply
        self.word_delay = word_delay
        self.requests: list[RecordedRequest] = []
        self.model_listings = 0
        self.models_status = 200  # e.g. 404 for a server without /v1/models
        self.aborted = 0
        self.active = 0
        self._changed: asyncio.Condition | None = None
        self._misbehaviours: list[Misbehaviour] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def wait_idle(self, aborted: int, within: float = 30.0) -> None:
        """Wait until ``aborted`` streams were abandoned and none is running."""
        changed = self._condition()
        async with asyncio.timeout(within), changed:
            await changed.wait_for(lambda: self.aborted >= aborted and not self.active)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        changed = self._condition()
        async with changed:
            changed.notify_all()

    def misbehave(self, how: Misbehaviour) -> None:
        """Queue a misbehaviour for the next ``how.times`` chat-completions requests."""
        self._misbehaviours.append(how)

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop serving (later requests are refused)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ handlers
    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_api_key")

    async def _models(self, request: web.Request) -> web.Response:
        self.model_listings += 1
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        if self.models_status != 200:
            return web.Response(status=self.models_status, text="Not Found")
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(RecordedRequest(body, dict(request.headers), time.monotonic()))
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        model = body.get("model")
        if model not in self.models and f"{model}:latest" not in self.models:  # as Ollama
            missing = f"The model `{body.get('model')}` does not exist."
            return _error(404, missing, "model_not_found")
        how = self._next_misbehaviour()
        if how is not None and how.kind == "status":
            return _status(how)
        if how is not None and how.kind == "raw":
            raw = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await raw.prepare(request)
            await raw.write(str(how.body).encode())
            await raw.write_eof()
            return raw
        text = self.reply(body.get("messages", []))
        if not body.get("stream"):
            return web.json_response(_completion(body["model"], text))
        self.active += 1
        try:
            return await self._stream(request, body["model"], text, how)
        finally:
            self.active -= 1
            await self._notify()

    async def _stream(
        self, request: web.Request, model: str, text: str, how: Misbehaviour | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words = _WORDS.findall(text)
        try:
            for i, word in enumerate(words):
                if how is not None and i == how.after:
                    if await self._misbehave_mid_stream(request, response, how):
                        return response
                await response.write(_event(_chunk(model, {"content": word}, None)))
                if self.word_delay:
                    await asyncio.sleep(self.word_delay)
            if how is not None and how.after >= len(words):
                if await self._misbehave_mid_stream(request, response, how):
                    return response
            await response.write(_event(_chunk(model, {}, "stop")))
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:  # the client went away: a cancelled reply
            self.aborted += 1
            return response
        except asyncio.CancelledError:
            self.aborted += 1
            raise
        await response.write_eof()
        return response

    async def _misbehave_mid_stream(
        self, request: web.Request, response: web.StreamResponse, how: Misbehaviour
    ) -> bool:
        """Act out ``how``; True when the response is over."""
        if how.kind == "malformed":
            await response.write(b'data: {"choices": [\n\n')
        elif how.kind == "error_event":
            error = {"error": {"message": "the model crashed", "type": "server_error"}}
            await response.write(_event(error))
        elif how.kind == "cut":
            if request.transport is not None:
                request.transport.close()
            return True
        elif how.kind == "unfinished":
            await response.write_eof()
            return True
        elif how.kind == "stall":  # until the time is up or the client gives up
            deadline = time.monotonic() + how.stall_seconds
            while time.monotonic() < deadline:
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.aborted += 1
                    return True
                await asyncio.sleep(0.02)
            return False
        return False

    def _next_misbehaviour(self) -> Misbehaviour | None:
        if not self._misbehaviours:
            return None
        how = self._misbehaviours[0]
        how.times -= 1
        if how.times <= 0:
            self._misbehaviours.pop(0)
        return how


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def _error(status: int, message: str, code: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return web.json_response(body, status=status)


def _status(how: Misbehaviour) -> web.Response:
    headers = {} if how.retry_after is None else {"Retry-After": str(how.retry_after)}
    if isinstance(how.body, dict):
        return web.json_response(how.body, status=how.status, headers=headers)
    return web.Response(status=how.status, text=how.body, headers=headers)
