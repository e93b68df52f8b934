"""An OpenAI-compatible chat-completions server as the generation backend.

For deployments whose model is served elsewhere: vLLM, SGLang, llama.cpp's server,
Ollama, TGI, LM Studio and OpenAI itself all accept ``POST {base_url}/chat/completions``
and stream the reply as server-sent events. The official ``openai`` package does the
HTTP and the event parsing; the retries (connection errors, 408/409/429/5xx, before a
reply has started) are ours, so that ``timeout_seconds`` bounds the whole wait for a
reply to start, ``Retry-After`` included. This module maps what the server reports
onto the backend protocol:

- 429 and 503 become ``BackendBusyError``, so the customer gets the busy reply (not an
  exhausted quota: waiting does not help there);
- anything else that keeps a reply from completing becomes ``BackendError`` naming the
  server and the cause. That includes a stream that breaks off, or ends without a finish
  reason: a cut-off reply is never passed off as a whole one. A reply the server ends
  at ``max_new_tokens`` (finish reason "length") is delivered, with a warning in the log;
  the stream's ``finish_reason`` (``ReportsFinish``) tells the bot, which counts it in
  ``botkit_replies_cut_total``, and the LLM translator, which keeps the sentence's
  original rather than half a translation;
- a ``<think>`` block at the start of the reply (a reasoning model on a server without a
  reasoning parser) is left out (``_openai_stream``);
- a prompt the server refuses as longer than its context is sent once more without its
  oldest turns, and the context it named is used for later requests
  (``PromptLimits``, also from ``context_tokens``).

Imported only when ``[backend] kind = "openai"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import openai

from botkit.backends._openai_context import prompt_tokens, shorter_prompt
from botkit.backends._openai_errors import (
    backend_error,
    cause,
    context_overflow,
    display_url,
    shorten,
)
from botkit.backends._openai_hosts import is_openai_service
from botkit.backends._openai_retry import NoAnswerError, create_within
from botkit.backends._openai_stream import ReplyStream, ThinkFilter, report_end, whole_reply
from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config.settings import OpenAISettings
from botkit.errors import BackendBusyError, BackendError

__all__ = ["OpenAIBackend", "ReplyStream", "create_backend"]

# OpenAI models that refuse stop strings (see ``_refuses_stop``).
_NO_STOP = ("o1", "o3", "o4", "gpt-5")
log = logging.getLogger("botkit.backends.openai")

# ready() asks the server at most this often (a readiness probe may poll every second).
READY_PROBE_INTERVAL_S = 5.0
READY_PROBE_TIMEOUT_S = 2.0
# Sent when no key is configured: the SDK needs one, and servers without auth ignore it.
_NO_KEY = "none"


class OpenAIBackend:
    """Streams replies from an OpenAI-compatible server.

    Provides ``PromptLimits`` once the server's context is known: from
    ``context_tokens``, or from the first request the server refused as too long.

    Args:
        settings: the ``[backend.openai]`` settings.
    """

    name = "openai"

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        self.where = display_url(settings.base_url)
        self._client: openai.AsyncOpenAI | None = None
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._probed_at = float("-inf")
        self._healthy = False
        # /models answered 403 at the start (a key allowed to chat but not to list
        # models), so a 403 there later is no news: ready() counts it as up.
        self._models_forbidden = False
        self._learned_context: int | None = None

    async def start(self) -> None:
        """Connect, check that the server serves the configured model, and ask it for a
        one-token reply with the configured settings (so that a parameter the model
        refuses stops the start, in the server's words, instead of every reply).

        A server without ``/models`` (some proxies), or a key not allowed to list
        models, is accepted with a warning. So is a one-token reply that does not start
        within ``timeout_seconds`` or whose connection is lost: a server that loads the
        model on the first request (Ollama, LM Studio, llama-swap) sends nothing until
        the model is loaded, which may take minutes.

        Raises:
            BackendError: the server is unreachable, refuses the key, does not serve
                the model (the message lists the models it does serve), or refuses the
                request the settings make.
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
            unlisted = await self._check_model(client)
            await self._probe(client)
        except BaseException:
            await client.close()
            raise
        self._client = client
        self._models_forbidden = unlisted == 403
        self._probed_at, self._healthy = time.monotonic(), True
        log.info("openai: %s answers for model %s", self.where, s.model)

    async def _check_model(self, client: openai.AsyncOpenAI) -> int | None:
        """Check ``/models`` for the model; the HTTP status when it would not list them
        (404 or 403), ``None`` when it did."""
        model = self.settings.model
        try:
            page = await client.models.list()
        except (openai.NotFoundError, openai.PermissionDeniedError) as exc:
            # No /models (some proxies, or a base_url without its /v1), or a key allowed
            # to chat but not to list models: the one-token reply checks instead.
            log.warning(
                "openai: %s does not list its models (HTTP %d); trying a one-token reply",
                self.where,
                exc.status_code,
            )
            return exc.status_code
        except openai.APIError as exc:
            raise backend_error(exc, self.where, self.settings.timeout_seconds) from exc
        served = [m.id for m in page.data]
        # Ollama lists "llama3.2:latest" and serves it as "llama3.2" too.
        if served and model not in served and f"{model}:latest" not in served:
            shown = ", ".join(repr(m) for m in served[:10])
            more = f" and {len(served) - 10} more" if len(served) > 10 else ""
            raise BackendError(
                f"the model server at {self.where} does not serve model {model!r}; it "
                f"serves {shown}{more} (set [backend.openai] model)"
            )
        return None

    async def _probe(self, client: openai.AsyncOpenAI) -> None:
        """A one-token reply with the arguments real requests carry."""
        hello = GenerationRequest(messages=(ChatMessage("user", "Hi"),), max_new_tokens=1)
        timeout = self.settings.timeout_seconds
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            stream = await self._send(client, self.arguments(hello), deadline)
            await stream.close()
        except NoAnswerError as exc:  # /models answered: up, but perhaps still loading
            self._start_unchecked(str(exc))
        except openai.APIError as exc:
            error = backend_error(exc, self.where, timeout)
            if isinstance(error, BackendBusyError):  # up but busy: arguments unchecked
                log.warning("openai: %s; starting without the one-token check", error)
                return
            if isinstance(exc, openai.APIConnectionError) or (
                isinstance(exc, openai.APIStatusError) and exc.status_code == 504
            ):
                # A timeout, a connection the server (or llama-swap restarting its
                # upstream) dropped, a gateway that gave up waiting: no refusal.
                self._start_unchecked(str(error))
                return
            if isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422):
                raise BackendError(
                    f"{error}; the start asks for a one-token reply with [backend.openai]'s "
                    "settings (see max_tokens_field, temperature, top_p, top_k, "
                    "repetition_penalty)"
                ) from exc
            raise error from exc

    def _start_unchecked(self, what: str) -> None:
        log.warning(
            "openai: %s during the one-token check at start; a server that loads the "
            "model on the first request (Ollama, LM Studio, llama-swap) may still be "
            "loading it, so starting without the check (raise [backend.openai] "
            "timeout_seconds if the first replies time out too)",
            what,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ready(self) -> bool:
        """Whether the server answers and takes the key (asked at most every few seconds).

        A 401 is a key the server refuses (revoked, wrong): not ready. A 403 is too,
        unless ``/models`` answered 403 at the start already: a key allowed to chat but
        not to list models (an OpenAI restricted or project key), which the start
        accepted, and which would otherwise be not ready for good while replies work.
        """
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
            except openai.APIStatusError as exc:
                # It answered: up, unless it is failing or refuses the key (every reply
                # would fail). A 404 is a server without /models, as at start.
                status = exc.status_code
                refused = status == 401 or (status == 403 and not self._models_forbidden)
                self._healthy = status < 500 and not refused
            except openai.APIError:
                self._healthy = False
        return self._healthy

    # ------------------------------------------------------------------ PromptLimits
    def max_prompt_tokens(self) -> int | None:
        """The prompt tokens a request may have (``None`` while the context is unknown)."""
        context = self.settings.context_tokens or self._learned_context
        if context is None:
            return None
        return max(0, context - self.settings.max_new_tokens)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """An estimate of the prompt's tokens (the server's tokenizer is not at hand)."""
        return prompt_tokens(messages)

    def check_prompt_room(self, system_prompt: str) -> None:
        """Fail when ``context_tokens`` leaves no room for the system prompt and a word."""
        limit = self.max_prompt_tokens()
        if limit is None:
            return
        head = [ChatMessage("system", system_prompt)] if system_prompt else []
        need = prompt_tokens([*head, ChatMessage("user", "Hello")])
        if need > limit:
            s = self.settings
            raise BackendError(
                f"[backend.openai] context_tokens = {s.context_tokens} leaves {limit} prompt "
                f"tokens once max_new_tokens = {s.max_new_tokens} are set aside, and the "
                f"system prompt with a one-word message takes about {need}: raise "
                "context_tokens, lower max_new_tokens or shorten [bot] system_prompt"
            )

    # ------------------------------------------------------------------ requests
    def _max_tokens_field(self) -> str:
        field = self.settings.max_tokens_field
        if field != "auto":
            return field
        # OpenAI's o-series and GPT-5 refuse max_tokens; every OpenAI model takes
        # max_completion_tokens, which older local servers do not know.
        openai_service = is_openai_service(self.settings.base_url)
        return "max_completion_tokens" if openai_service else "max_tokens"

    def _refuses_stop(self) -> bool:
        # OpenAI's reasoning models (o1, o3, o4-mini, GPT-5) refuse the field ("Unsupported
        # parameter: 'stop'"); the bot cuts a reply at its stop strings itself
        # (botkit.pipeline.frame_guard), so it is only left out.
        model = self.settings.model.casefold()
        return is_openai_service(self.settings.base_url) and model.startswith(_NO_STOP)

    def arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat-completions arguments for ``request`` (configured defaults filled in;
        temperature or top_p set to "server" are never sent)."""
        s = self.settings

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        args: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            self._max_tokens_field(): pick(request.max_new_tokens, s.max_new_tokens),
        }
        if s.temperature != "server":
            args["temperature"] = pick(request.temperature, s.temperature)
        if s.top_p != "server":
            args["top_p"] = pick(request.top_p, s.top_p)
        if request.stop and not self._refuses_stop():
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

    def generate(self, request: GenerationRequest) -> ReplyStream:
        """Stream the reply's text deltas.

        Closing the iterator closes the HTTP response, which makes the server stop
        generating (vLLM, llama.cpp and Ollama abort on disconnect).

        Raises:
            BackendBusyError: the server is overloaded (429/503), or every request slot
                stayed taken for ``queue_timeout_seconds``.
            BackendError: not started, or the reply could not be completed.
        """
        return ReplyStream(lambda reply: self._stream(request, reply))

    async def _stream(
        self, request: GenerationRequest, reply: ReplyStream
    ) -> AsyncGenerator[str, None]:
        client = self._client
        if client is None:
            raise BackendError("the OpenAI-compatible backend is not started")
        timeout = self.settings.timeout_seconds
        async with self._slot():
            # One deadline from here to the reply's first chunk, retries included.
            deadline = asyncio.get_running_loop().time() + timeout
            stream = await self._open(client, request, deadline)
            think = ThinkFilter()
            finish: str | None = None
            sent = reasoned = False
            try:
                content_type = stream.response.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    # A server or proxy that ignores "stream": the reply comes whole.
                    whole = whole_reply(await stream.response.aread())
                    text, finish = think.feed(whole.content) + think.finish(), whole.finish_reason
                    if text:
                        sent = True
                        yield text
                else:
                    chunks = aiter(stream)
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks, None)
                    while chunk is not None:
                        # The client does not validate chunks: Azure's content-filter
                        # chunks have "delta": null, gateways' usage chunks "choices":
                        # null, and a last chunk may carry only its finish_reason.
                        for choice in chunk.choices or ():
                            delta = choice.delta
                            reasoned = reasoned or bool(
                                getattr(delta, "reasoning_content", None)
                                or getattr(delta, "reasoning", None)
                            )
                            text = think.feed(getattr(delta, "content", None) or "")
                            if text:
                                sent = True
                                yield text
                            finish = finish or choice.finish_reason
                        chunk = await anext(chunks, None)
                    text = think.finish()
                    if text:
                        sent = True
                        yield text
            except TimeoutError:
                raise BackendError(
                    f"the model server at {self.where} did not start the reply within {timeout:g} s"
                ) from None
            except openai.APITimeoutError as exc:
                raise BackendError(
                    f"the model server at {self.where} sent nothing for {timeout:g} s mid-reply"
                ) from exc
            except openai.APIConnectionError as exc:
                raise BackendError(
                    f"the reply stream from {self.where} broke off ({cause(exc)})"
                ) from exc
            except openai.APIError as exc:  # e.g. an error event mid-stream
                raise backend_error(exc, self.where, timeout) from exc
            except Exception as exc:  # an event that is not JSON, or not a chunk
                raise BackendError(
                    f"the model server at {self.where} sent a malformed reply stream "
                    f"({type(exc).__name__}: {shorten(str(exc))})"
                ) from exc
            finally:
                await stream.close()
            if finish is None:
                raise BackendError(
                    f"the reply stream from {self.where} ended before the reply was finished"
                )
            reply.finish_reason = finish
            report_end(
                self.where,
                self._reply_tokens(request),
                finish,
                sent=sent,
                reasoned=reasoned or think.had_reasoning,
                unclosed=think.in_reasoning,
            )

    async def _send(
        self, client: openai.AsyncOpenAI, args: dict[str, Any], deadline: float
    ) -> openai.AsyncStream[Any]:
        s = self.settings
        return await create_within(
            client, args, deadline=deadline, retries=s.max_retries, where=self.where,
            timeout_s=s.timeout_seconds,
        )  # fmt: skip

    async def _open(
        self, client: openai.AsyncOpenAI, request: GenerationRequest, deadline: float
    ) -> openai.AsyncStream[Any]:
        """Start the reply; a prompt refused as over the server's context is sent once
        more without its oldest turns."""
        args = self.arguments(request)
        try:
            return await self._send(client, args, deadline)
        except openai.APIError as exc:
            overflow, context = context_overflow(exc)
            if not overflow:
                raise self._error(exc) from exc
            reply_tokens = self._reply_tokens(request)
            shorter = shorter_prompt(
                request.messages, context, reply_tokens, self._error(exc), self.where
            )
            if context is not None:
                self._learned_context = context  # later prompts are fitted to it
            args["messages"] = [{"role": m.role, "content": m.content} for m in shorter]
        try:
            return await self._send(client, args, deadline)
        except openai.APIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: openai.APIError) -> BackendError:
        error = backend_error(exc, self.where, self.settings.timeout_seconds)
        if isinstance(error, BackendBusyError):  # the delivery logs only "backend busy"
            log.warning("openai: %s", error)
        return error

    def _reply_tokens(self, request: GenerationRequest) -> int:
        return request.max_new_tokens or self.settings.max_new_tokens

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


def create_backend(settings: OpenAISettings) -> OpenAIBackend:
    """Factory used by ``botkit.backends.create_backend`` (connects in ``start``)."""
    return OpenAIBackend(settings)
