"""A local OpenAI-compatible server with the quirks of the real ones, for the backend tests.

``botkit.testing.fake_openai.FakeOpenAI`` is the well-behaved server; this one acts out
what running against vLLM, llama.cpp's server, Ollama, TGI and OpenAI showed: a
``<think>`` block in ``content``, a reply cut at the token limit, a body sent whole
although a stream was asked for, a context that refuses long prompts (counted the way a
tokenizer does: a CJK character is a token), OpenAI's reasoning models refusing
``max_tokens`` and a temperature, a stall before the headers. The real ``openai``
client talks to it over loopback, as the backend does in production.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Answer", "QuirkyOpenAI", "events", "sse_chunk"]

LLAMA_CPP_OVERFLOW = "the request exceeds the available context size, try increasing it"


def sse_chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> str:
    """One ``chat.completion.chunk`` as JSON."""
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [choice],
        }
    )


def events(*contents: str, finish: str = "stop", reasoning: tuple[str, ...] = ()) -> str:
    """A whole event stream: ``reasoning`` deltas (as vLLM's reasoning parser sends
    them), then ``contents`` one per event, then the finish reason and ``[DONE]``."""
    chunks = [sse_chunk({"role": "assistant", "content": None})]
    chunks += [sse_chunk({"reasoning_content": r, "content": None}) for r in reasoning]
    chunks += [sse_chunk({"content": c}) for c in contents]
    chunks.append(sse_chunk({}, finish))
    return "".join(f"data: {c}\n\n" for c in chunks) + "data: [DONE]\n\n"


@dataclass
class Answer:
    """What the next chat request gets instead of the default streamed reply.

    ``kind``: ``"events"`` (``body``, a str, as the event stream, written in pieces of
    ``piece`` bytes), ``"json"`` (``body`` as a whole JSON reply, whatever ``stream``
    said), ``"status"`` (``status`` with ``body`` as JSON and ``headers``), ``"stall"``
    (no headers for ``stall_seconds``), ``"slow_start"`` (headers after ``delay``
    seconds, then nothing for ``stall_seconds``), ``"drop"`` (the connection closed
    without an answer).
    """

    kind: str
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    piece: int = 7
    stall_seconds: float = 3600.0
    delay: float = 0.0


class QuirkyOpenAI:
    """Use as ``async with QuirkyOpenAI() as api:``; ``api.base_url`` ends in ``/v1``.

    Args:
        models: the ids ``/v1/models`` lists and chat requests may name.
        context_tokens: refuse (as llama.cpp does) a request whose prompt and
            ``max_tokens`` pass this many tokens; ``None``: no limit.
        reasoning_model: refuse ``max_tokens`` and any temperature but 1 (OpenAI's o1,
            o3, GPT-5), with OpenAI's words.
    """

    def __init__(
        self,
        models: tuple[str, ...] = ("qwen3:8b",),
        *,
        context_tokens: int | None = None,
        reasoning_model: bool = False,
    ) -> None:
        self.models = list(models)
        self.context_tokens = context_tokens
        self.reasoning_model = reasoning_model
        self.reply = "Your order ships tomorrow."
        self.answers: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.models_status = 200
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> QuirkyOpenAI:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        if self.models_status == 403:  # OpenAI, to a restricted key without "models: read"
            error = {
                "message": "You have insufficient permissions for this operation. "
                "Missing scopes: api.model.read.",
                "type": "invalid_request_error",
                "code": None,
            }
            return web.json_response({"error": error}, status=403)
        if self.models_status != 200:
            body = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
            return web.json_response(body, status=self.models_status)
        data = [{"id": m, "object": "model"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({**body, "at": time.monotonic()})
        refused = self._refusal(body)
        if refused is not None:
            return refused
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            words = [w + " " for w in self.reply.split(" ")]
            words[-1] = words[-1].rstrip()
            answer = Answer("events", events(*words))
        if answer.kind == "status":
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        if answer.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if answer.kind == "stall":
            await asyncio.sleep(answer.stall_seconds)
        if answer.kind == "json":
            return web.json_response(answer.body)
        if answer.kind == "slow_start":
            await asyncio.sleep(answer.delay)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if answer.kind == "slow_start":
            await asyncio.sleep(answer.stall_seconds)
        data = str(answer.body).encode()
        for i in range(0, len(data), answer.piece):  # split mid-character, mid-tag
            await response.write(data[i : i + answer.piece])
        await response.write_eof()
        return response

    def _refusal(self, body: dict[str, Any]) -> web.Response | None:
        if self.reasoning_model and "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return _openai_error(message, "max_tokens", "unsupported_parameter")
        if self.reasoning_model and body.get("temperature", 1) != 1:
            message = (
                f"Unsupported value: 'temperature' does not support {body['temperature']} "
                "with this model. Only the default (1) value is supported."
            )
            return _openai_error(message, "temperature", "unsupported_value")
        if self.context_tokens is not None:
            used = sum(_tokens(m["content"]) + 4 for m in body["messages"])
            wanted = body.get("max_tokens") or body.get("max_completion_tokens") or 0
            if used + wanted > self.context_tokens:
                error = {
                    "code": 400,
                    "message": LLAMA_CPP_OVERFLOW,
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": used,
                    "n_ctx": self.context_tokens,
                }
                return web.json_response({"error": error}, status=400)
        return None


def _tokens(text: str) -> int:
    """Tokens as a BPE tokenizer makes them, near enough: a CJK character is one, four
    ASCII characters are one."""
    return int(sum(1 if ord(ch) >= 0x2E80 else 0.25 for ch in text)) + 1


def _openai_error(message: str, param: str, code: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return web.json_response({"error": error}, status=400)
