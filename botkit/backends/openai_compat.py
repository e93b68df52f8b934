"""An OpenAI-compatible chat-completions server as the generation backend.

For deployments whose model is served elsewhere: vLLM, SGLang, llama.cpp's server,
Ollama, TGI, LM Studio and OpenAI itself all accept ``POST {base_url}/chat/completions``
and stream the reply as server-sent events. The official ``openai`` package does the
HTTP, the event parsing and the retries (connection errors, 408/409/429/5xx, with
backoff, before a reply has started). This module maps what it reports onto the backend
protocol:

- 429 and 503 become ``BackendBusyError``, so the customer gets the busy reply;
- anything else that keeps a reply from completing becomes ``BackendError`` naming the
  server and the cause. That includes a stream that breaks off, or ends without a finish
  reason: a cut-off reply is never passed off as a whole one.

Imported only when ``[backend] kind = "openai"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import openai

from botkit.backends.protocol import GenerationRequest
from botkit.config.settings import OpenAISettings
from botkit.errors import BackendBusyError, BackendError

__all__ = ["OpenAIBackend", "create_backend"]

log = logging.getLogger("botkit.backends.openai")

# ready() asks the server at most this often (a readiness probe may poll every second).
READY_PROBE_INTERVAL_S = 5.0
READY_PROBE_TIMEOUT_S = 2.0
# An error body worth showing is a sentence; an HTML page from a proxy is cut short.
_DETAIL_CHARS = 200
_BUSY_STATUSES = (429, 503)
# Sent when no key is configured: the SDK needs one, and servers without auth ignore it.
_NO_KEY = "none"


class OpenAIBackend:
    """Streams replies from an OpenAI-compatible server.

    Args:
        settings: the ``[backend.openai]`` settings.
    """

    name = "openai"

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        self.where = _display_url(settings.base_url)
        self._client: openai.AsyncOpenAI | None = None
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._probed_at = float("-inf")
        self._healthy = False

    async def start(self) -> None:
        """Connect and check that the server serves the configured model.

        A server without ``/models`` (some proxies) is accepted with a warning.

        Raises:
            BackendError: the server is unreachable, refuses the key, or does not serve
                the model (the message lists the models it does serve).
        """
        if self._client is not None:
            return
        s = self.settings
        api_key = s.api_key.get_secret_value() if s.api_key is not None else _NO_KEY
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=s.base_url,
            max_retries=s.max_retries,
            timeout=openai.Timeout(s.timeout_seconds, connect=min(10.0, s.timeout_seconds)),
        )
        try:
            await self._check_model(client)
        except BaseException:
            await client.close()
            raise
        self._client = client
        self._probed_at, self._healthy = time.monotonic(), True
        log.info("openai: %s answers for model %s", self.where, s.model)

    async def _check_model(self, client: openai.AsyncOpenAI) -> None:
        model = self.settings.model
        try:
            page = await client.models.list()
        except (openai.NotFoundError, openai.PermissionDeniedError) as exc:
            # No /models (some proxies, or a base_url without its /v1), or a key allowed
            # to chat but not to list models: ask for one token instead.
            log.warning(
                "openai: %s does not list its models (HTTP %d); trying a one-token reply",
                self.where,
                exc.status_code,
            )
            await self._check_chat(client)
            return
        except openai.APIError as exc:
            raise _backend_error(exc, self.where, self.settings.timeout_seconds) from exc
        served = [m.id for m in page.data]
        # Ollama lists "llama3.2:latest" and serves it as "llama3.2" too.
        if served and model not in served and f"{model}:latest" not in served:
            shown = ", ".join(repr(m) for m in served[:10])
            more = f" and {len(served) - 10} more" if len(served) > 10 else ""
            raise BackendError(
                f"the model server at {self.where} does not serve model {model!r}; it "
                f"serves {shown}{more} (set [backend.openai] model)"
            )

    async def _check_chat(self, client: openai.AsyncOpenAI) -> None:
        try:
            await client.chat.completions.create(
                model=self.settings.model,
                messages=[{"role": "user", "content": "Hi"}],
                max_tokens=1,
            )
        except openai.APIError as exc:
            raise _backend_error(exc, self.where, self.settings.timeout_seconds) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ready(self) -> bool:
        """Whether the server answers (asked at most every few seconds)."""
        client = self._client
        if client is None:
            return False
        now = time.monotonic()
        if now - self._probed_at >= READY_PROBE_INTERVAL_S:
            self._probed_at = now
            try:
                quick = client.with_options(max_retries=0, timeout=READY_PROBE_TIMEOUT_S)
                await quick.models.list()
                self._healthy = True
            except openai.APIStatusError as exc:  # it answered: up, unless it is failing
                self._healthy = exc.status_code < 500
            except openai.APIError:
                self._healthy = False
        return self._healthy

    def arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat-completions arguments for ``request`` (configured defaults filled in)."""
        s = self.settings

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        args: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "max_tokens": pick(request.max_new_tokens, s.max_new_tokens),
            "temperature": pick(request.temperature, s.temperature),
            "top_p": pick(request.top_p, s.top_p),
        }
        if request.stop:
            args["stop"] = list(request.stop)
        if request.seed is not None:
            args["seed"] = request.seed
        extra = {
            "top_k": pick(request.top_k, s.top_k),
            "repetition_penalty": pick(request.repetition_penalty, s.repetition_penalty),
        }
        extra = {k: v for k, v in extra.items() if v is not None}
        if extra:
            args["extra_body"] = extra
        return args

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Stream the reply's text deltas.

        Closing the iterator closes the HTTP response, which makes the server stop
        generating (vLLM, llama.cpp and Ollama abort on disconnect).

        Raises:
            BackendBusyError: the server is overloaded (429/503), or every request slot
                stayed taken for ``queue_timeout_seconds``.
            BackendError: not started, or the reply could not be completed.
        """
        client = self._client
        if client is None:
            raise BackendError("the OpenAI-compatible backend is not started")
        timeout = self.settings.timeout_seconds
        async with self._slot():
            try:
                stream = await client.chat.completions.create(**self.arguments(request))
            except openai.APIError as exc:
                raise _backend_error(exc, self.where, timeout) from exc
            finished = False
            try:
                async for chunk in stream:
                    # The client does not validate chunks: Azure's content-filter chunks
                    # have "delta": null, gateways' usage chunks "choices": null, and a
                    # last chunk may carry only its finish_reason.
                    for choice in chunk.choices or ():
                        content = getattr(choice.delta, "content", None)
                        if content:
                            yield content
                        finished = finished or choice.finish_reason is not None
            except openai.APITimeoutError as exc:
                raise BackendError(
                    f"the model server at {self.where} sent nothing for {timeout:g} s mid-reply"
                ) from exc
            except openai.APIConnectionError as exc:
                raise BackendError(
                    f"the reply stream from {self.where} broke off ({_cause(exc)})"
                ) from exc
            except openai.APIError as exc:  # e.g. an error event mid-stream
                raise _backend_error(exc, self.where, timeout) from exc
            except Exception as exc:  # an event that is not JSON, or not a chunk
                raise BackendError(
                    f"the model server at {self.where} sent a malformed reply stream "
                    f"({type(exc).__name__}: {_shorten(str(exc))})"
                ) from exc
            finally:
                await stream.close()
            if not finished:
                raise BackendError(
                    f"the reply stream from {self.where} ended before the reply was finished"
                )

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        s = self.settings
        try:
            await asyncio.wait_for(self._slots.acquire(), s.queue_timeout_seconds)
        except TimeoutError:
            raise BackendBusyError(
                f"{s.max_concurrent_requests} replies from {self.where} are in progress "
                f"and none finished within {s.queue_timeout_seconds:g} s"
            ) from None
        try:
            yield
        finally:
            self._slots.release()


def _display_url(url: str) -> str:
    """``url`` without user info: safe for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _shorten(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _detail(exc: openai.APIStatusError) -> str:
    """The server's own explanation, if it gave one (OpenAI-style JSON or plain text)."""
    body = exc.body
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        nested = error.get("message") if isinstance(error, dict) else error
        message = body.get("message") or nested
    elif isinstance(body, str):
        message = body
    if message is None:
        with contextlib.suppress(Exception):
            message = exc.response.text
    text = _shorten(re.sub(r"<[^>]*>", " ", str(message or "")))  # a proxy's HTML page
    return f": {text}" if text else ""


def _cause(exc: openai.APIConnectionError) -> str:
    cause = exc.__cause__
    return f"{type(cause).__name__}: {_shorten(str(cause))}" if cause else exc.message


def _backend_error(exc: openai.APIError, where: str, timeout: float) -> BackendError:
    """The backend error the bot reports for what the openai client raised."""
    if isinstance(exc, openai.APIStatusError):
        status, detail = exc.status_code, _detail(exc)
        if status in _BUSY_STATUSES:
            return BackendBusyError(
                f"the model server at {where} is overloaded (HTTP {status}){detail}"
            )
        if status in (401, 403):
            return BackendError(
                f"the model server at {where} refused the API key (HTTP {status}){detail}; "
                "check [backend.openai] api_key"
            )
        if status == 404:
            return BackendError(
                f"the model server at {where} answered HTTP 404{detail}; check [backend.openai] "
                "base_url (usually ending in /v1) and model"
            )
        return BackendError(f"the model server at {where} answered HTTP {status}{detail}")
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(f"the model server at {where} did not answer within {timeout:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"cannot reach the model server at {where} ({_cause(exc)})")
    return BackendError(f"the model server at {where} failed: {_shorten(exc.message)}")


def create_backend(settings: OpenAISettings) -> OpenAIBackend:
    """Factory used by ``botkit.backends.create_backend`` (connects in ``start``)."""
    return OpenAIBackend(settings)
