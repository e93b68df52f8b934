"""The local inference engine as a botkit generation backend.

Imported only when the configuration asks for the engine (it imports torch). The engine
raises its own errors; they are mapped here: ``EngineBusyError`` (queue timeout or full
queue) -> ``BackendBusyError`` so the bot answers politely, everything else ->
``BackendError`` carrying the engine's message.

The engine's context (the model's max positions, capped by the KV pool) bounds every
request: ``max_prompt_tokens`` tells the core how long a prompt may be so that it trims
the history to fit, and ``start`` refuses a pool too small for a one-word message plus
``max_new_tokens`` (the bot then checks its system prompt with ``check_prompt_room``).

Counting tokens renders the chat template and runs the tokenizer: 12-51 ms for a
1.9k-token prompt with SmolLM2's, ~330 ms for 44k. ``counting_executor`` (one thread)
is where the core runs that (``botkit.pipeline.context_window.off_loop``), off the
event loop; the tokenizer it uses is a private copy, never the engine thread's, and a
lock keeps any other caller from using it at the same time (a fast tokenizer is not
safe to share between threads).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botkit.backends._openai_stream import ThinkFilter
from botkit.backends.protocol import CUT_AT_LIMIT, ChatMessage, GenerationRequest
from botkit.backends.stream import GenerationStream
from botkit.config.settings import EngineSettings
from botkit.errors import BackendBusyError, BackendError
from engine import (
    AsyncEngine,
    EngineBusyError,
    EngineConfig,
    EngineError,
    FinalRecord,
    LLMEngine,
    SamplingParams,
    TextDelta,
)
from engine.cpu_threads import available_threads, in_own_thread
from engine.prompt import encode_prompt

__all__ = ["LocalEngineBackend", "create_backend"]

log = logging.getLogger("botkit.backends.engine")

# The smallest message a start must make room for (with the reply's max_new_tokens).
MINIMAL_TURN = "Hello"
# History messages are counted again for every reply of their conversation (up to
# history_turns of them); the counts are remembered by text, so they cannot go stale.
# Bounded by entries and by the characters of the texts kept (the keys): 4,096 messages
# of 40,000 characters each would otherwise hold 160 MB. A longer text is not kept.
_TOKEN_COUNTS_KEPT = 4096
_TOKEN_COUNT_CHARS_KEPT = 4_000_000


class LocalEngineBackend:
    """Streams replies from an in-process ``engine.AsyncEngine``.

    Args:
        settings: the ``[backend.engine]`` settings (model, dtype, device, sampling
            defaults, queue timeout). Fields ``max_num_seqs`` / ``kv_cache_blocks`` are
            read from it too when the settings model has them.
        max_num_seqs: sequences decoding together (``None``: the engine's device default).
        kv_cache_blocks: exact KV pool size (``None``: sized from memory).
        engine_config: full engine knobs; overrides the two above when given.
    """

    name = "engine"

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        max_num_seqs: int | None = None,
        kv_cache_blocks: int | None = None,
        engine_config: EngineConfig | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        s = self.settings
        self.engine_config = engine_config or EngineConfig(
            max_num_seqs=max_num_seqs or getattr(s, "max_num_seqs", None),
            num_kv_blocks=kv_cache_blocks or getattr(s, "kv_cache_blocks", None),
            queue_timeout_s=s.queue_timeout_seconds,
            gpu_memory_utilization=s.gpu_memory_utilization,
            cuda_graphs=s.cuda_graphs,
            overlap_steps=s.overlap_steps,
        )
        self._engine: AsyncEngine | None = None
        self._count_tokenizer: Any = None
        self._count_lock = threading.Lock()
        self._counting: ThreadPoolExecutor | None = None
        self._token_counts: OrderedDict[str, int] = OrderedDict()
        self._token_count_chars = 0  # the characters of the texts in _token_counts
        self.last_record: FinalRecord | None = None

    @property
    def engine(self) -> AsyncEngine | None:
        return self._engine

    async def start(self) -> None:
        """Load the model (in a worker thread) and start the engine thread.

        Raises:
            BackendError: the model is missing, unreadable or does not fit, or the
                configured sampling defaults are out of the engine's range.
        """
        if self._engine is not None:
            return
        s = self.settings
        # Settings validation mirrors the engine's bounds; checking the defaults here too
        # (before a model loads) keeps a drifted or hand-built settings object from
        # starting a bot whose every reply would then fail.
        try:
            SamplingParams(
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=s.top_k,
                repetition_penalty=s.repetition_penalty,
                max_new_tokens=s.max_new_tokens,
            )
        except EngineError as exc:
            raise BackendError(f"[backend.engine] has invalid sampling defaults: {exc}") from exc
        try:
            # A thread of its own, not an executor's: see engine.cpu_threads.in_own_thread.
            engine = await in_own_thread(
                "engine-load",
                LLMEngine.from_pretrained,
                s.model,
                dtype=s.dtype,
                device=s.device,
                config=self.engine_config,
            )
        except EngineError as exc:  # the loader's message names the path and the remedy
            raise BackendError(f"the local engine could not load model {s.model!r}: {exc}") from exc
        except Exception as exc:  # out of memory, a broken install, a bad config value...
            raise BackendError(
                f"the local engine could not start model {s.model!r}: {type(exc).__name__}: {exc}"
            ) from exc
        counter = copy.deepcopy(engine.tokenizer)  # the engine thread owns its own
        # Checked before the engine thread starts: a context that cannot hold the
        # smallest request would fail every message while the bot reports ready. Off the
        # event loop: it renders the checkpoint's chat template, which is untrusted code
        # (its time is bounded too, by engine.prompt.RENDER_TIMEOUT_S).
        problem = await in_own_thread("engine-check", self._room_problem, engine, counter, "")
        if problem is not None:
            raise BackendError(problem)
        self._count_tokenizer = counter
        self._token_counts.clear()
        # One thread: counts use one tokenizer, so more threads would only wait on
        # the lock (and hold threads of the loop's default executor while waiting).
        self._counting = ThreadPoolExecutor(1, thread_name_prefix="botkit-prompt-count")
        self._engine = AsyncEngine(engine)
        self._engine.start()
        _log_started(s.model, engine, self.engine_config.num_kv_blocks)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        counting, self._counting = self._counting, None
        if counting is not None:
            counting.shutdown(wait=False)  # a count in flight finishes on its own
        if engine is not None:
            await engine.close()

    @property
    def model_languages(self) -> tuple[str, ...] | None:
        """The languages the loaded model declares (its card's ``language:`` or its
        GGUF's ``general.languages``, tags as written); None before ``start`` or when it
        declares none. ``botkit.language`` reads it to decide what ``mode = "auto"``
        does for a customer language the model does not write."""
        engine = self._engine
        return engine.engine.languages if engine is not None else None

    @property
    def counting_executor(self) -> ThreadPoolExecutor | None:
        """Where token counting runs off the event loop (``None`` before ``start`` and
        after ``close``: counting is then an estimate, cheap enough for the loop)."""
        return self._counting if self._engine is not None else None

    async def ready(self) -> bool:
        return self._engine is not None and self._engine.running

    def stopped_for_good(self) -> str | None:
        """``StopsForGood``: the engine's steps stopped for good (failing in a row, or
        their loop crashing); the reason says which."""
        engine = self._engine
        if engine is None or not engine.dead:
            return None
        return f"the local engine stopped: {engine.dead_reason or 'its step loop ended'}"

    def engine_report(self) -> dict[str, float] | None:
        """The engine's counters and load for metrics (``botkit.metrics``), None before
        ``start``: ``steps``, ``computed_tokens``, ``prompt_tokens_computed``,
        ``prefix_query_tokens``, ``prefix_hit_tokens``, ``preemptions``,
        ``step_failures`` (cumulative: failed steps, each ending its requests), and
        ``running``, ``waiting``, ``kv_blocks``, ``kv_blocks_free``, ``up`` (now; 0 once
        the engine stopped on steps failing in a row)."""
        engine = self._engine
        if engine is None:
            return None
        stats, load = engine.engine.stats, engine.engine.load
        return {
            "steps": stats.steps,
            "computed_tokens": stats.computed_tokens,
            "prompt_tokens_computed": stats.prompt_tokens_computed,
            "prefix_query_tokens": stats.prefix_query_tokens,
            "prefix_hit_tokens": stats.prefix_hit_tokens,
            "preemptions": stats.preemptions,
            "step_failures": engine.step_failures,
            "running": load.running,
            "waiting": load.waiting,
            "kv_blocks": load.kv_blocks,
            "kv_blocks_free": load.kv_blocks_free,
            "up": 1 if engine.running else 0,
        }

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's tokenizer (for history budgets).

        Blocking, and it waits for the counting thread (a long prompt: ~330 ms at 44k
        tokens, up to the 2 s render timeout): async code calls it on
        ``counting_executor`` (``botkit.pipeline.context_window.off_loop``), as the
        pipeline does, not on the event loop. So does ``count_prompt_tokens``.
        """
        tokenizer = self._count_tokenizer
        if tokenizer is None:
            return max(1, len(text) // 4)
        with self._count_lock:
            counts = self._token_counts
            count = counts.get(text)
            if count is not None:
                counts.move_to_end(text)
                return count
            count = len(tokenizer.encode(text, add_special_tokens=False))
            if len(text) <= _TOKEN_COUNT_CHARS_KEPT:
                counts[text] = count
                self._token_count_chars += len(text)
                while (
                    len(counts) > _TOKEN_COUNTS_KEPT
                    or self._token_count_chars > _TOKEN_COUNT_CHARS_KEPT
                ):
                    self._token_count_chars -= len(counts.popitem(last=False)[0])
            return count

    def max_prompt_tokens(self) -> int | None:
        """Prompt tokens one request may have: the engine's context for one sequence
        (``min(KV pool, model max positions)``) less ``max_new_tokens``; ``None`` before
        ``start``."""
        engine = self._engine
        if engine is None:
            return None
        return engine.engine.max_sequence_tokens - self.settings.max_new_tokens

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens of the prompt the engine builds from ``messages`` (chat template and
        generation prompt included); the sum of ``count_tokens`` before ``start``.
        Blocking, off the event loop only (see ``count_tokens``).

        Raises:
            BackendError: the messages cannot be rendered (e.g. the template refuses a
                role order).
        """
        engine = self._engine
        if engine is None or self._count_tokenizer is None:
            return sum(self.count_tokens(m.content) for m in messages)
        with self._count_lock:
            return self._prompt_tokens(engine.engine, self._count_tokenizer, messages)

    def check_prompt_room(self, system_prompt: str) -> None:
        """Fail when ``system_prompt``, a one-word message and ``max_new_tokens`` do not
        fit in the engine's context (no-op before ``start``).

        Raises:
            BackendError: naming ``kv_cache_blocks`` (or the model's context) and the
                smallest value that would do.
        """
        engine = self._engine
        if engine is None or self._count_tokenizer is None:
            return
        with self._count_lock:
            problem = self._room_problem(engine.engine, self._count_tokenizer, system_prompt)
        if problem is not None:
            raise BackendError(problem)

    @staticmethod
    def _prompt_tokens(engine: LLMEngine, tokenizer: Any, messages: Sequence[ChatMessage]) -> int:
        try:
            ids = encode_prompt(
                tokenizer,
                list(messages),
                vocab_size=engine.model_config.vocab_size,
                chat_template=engine.chat_template,
            )
        except EngineError as exc:
            raise BackendError(str(exc)) from exc
        return len(ids)

    def _room_problem(self, engine: LLMEngine, tokenizer: Any, system_prompt: str) -> str | None:
        """Why a request with ``system_prompt`` and a one-word message can never be
        answered by ``engine``, or None when it can."""
        messages = [ChatMessage("system", system_prompt)] if system_prompt else []
        messages.append(ChatMessage("user", MINIMAL_TURN))
        prompt = self._prompt_tokens(engine, tokenizer, messages)
        reply = self.settings.max_new_tokens
        need = prompt + reply
        if need <= engine.max_sequence_tokens:
            return None
        what = (
            "the system prompt ([bot] system_prompt) with a one-word message"
            if system_prompt
            else "a one-word message"
        )
        lead = (
            f"the local engine's context is too small: {what} takes {prompt} tokens and "
            f"[backend.engine] max_new_tokens = {reply} more for the reply ({need} in all), "
            f"but one request can hold at most {engine.max_sequence_tokens}"
        )
        block = engine.config.block_size
        pool = engine.num_kv_blocks * block
        fixes = []
        if engine.max_model_len < need:  # no KV cache would help
            lead += f" (the model's context is {engine.max_model_len} tokens)"
        elif pool < need:
            blocks = -(-need // block)
            configured = self.engine_config.num_kv_blocks
            if configured is not None:
                lead += f" ([backend.engine] kv_cache_blocks = {configured} x {block} tokens)"
                fixes.append(f"raise [backend.engine] kv_cache_blocks to at least {blocks}")
            else:
                lead += f" (the KV cache sized from memory: {engine.num_kv_blocks} blocks)"
                fixes.append(
                    f"set [backend.engine] kv_cache_blocks to at least {blocks} (memory "
                    "allowing: free device memory or raise gpu_memory_utilization)"
                )
        fixes.append("lower [backend.engine] max_new_tokens")
        if system_prompt:
            fixes.append("shorten [bot] system_prompt")
        return f"{lead}: {', or '.join(fixes)}"

    def sampling_params(self, request: GenerationRequest) -> SamplingParams:
        """The request's limits, falling back to the configured defaults.

        Raises:
            BackendError: a value is out of range (the engine's message says which).
        """
        s = self.settings

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        max_new_tokens = pick(request.max_new_tokens, s.max_new_tokens)
        try:
            return SamplingParams(
                temperature=pick(request.temperature, s.temperature),
                top_p=pick(request.top_p, s.top_p),
                top_k=pick(request.top_k, s.top_k),
                repetition_penalty=pick(request.repetition_penalty, s.repetition_penalty),
                max_new_tokens=max_new_tokens,
                stop=tuple(request.stop),
                seed=request.seed,
                # Past 80% of the cap, the next sentence end ends the reply: 5 of 31 live
                # SmolLM2 replies ran into max_new_tokens = 256 and were sent cut
                # mid-sentence; this way they end on a whole one, without a higher cap.
                sentence_end_after=_soft_budget(max_new_tokens),
            )
        except EngineError as exc:
            raise BackendError(str(exc)) from exc

    def generate(self, request: GenerationRequest) -> GenerationStream:
        """Stream the reply's text deltas; the stream's ``finish_reason`` is the engine's
        once the reply has ended ("stop", or "length" when cut at ``max_new_tokens``).

        Raises (while iterating):
            BackendBusyError: the engine queue is full or the request timed out in it.
            BackendError: not started, invalid request, or the engine failed.
        """
        return GenerationStream(lambda stream: self._stream(request, stream))

    async def _stream(
        self, request: GenerationRequest, reply: GenerationStream
    ) -> AsyncGenerator[str, None]:
        engine = self._engine
        if engine is None:
            raise BackendError("the local engine is not started")
        params = self.sampling_params(request)
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        # A reasoning model (Qwen3, DeepSeek-R1 distills...) writes <think>...</think>
        # first; as with the OpenAI-compatible backend, that block never reaches the
        # customer or the history.
        think = ThinkFilter()
        sent = False
        try:
            # aclosing: when our consumer closes us, close the engine stream too, so the
            # sequence is aborted at once instead of whenever the GC finalizes it.
            async with contextlib.aclosing(engine.submit(messages, params)) as stream:
                async for item in stream:
                    if isinstance(item, TextDelta):
                        text = think.feed(item.text)
                        if text:
                            sent = True
                            yield text
                    else:
                        self.last_record = item
                        reply.finish_reason = item.finish_reason
        except EngineBusyError as exc:
            raise BackendBusyError(str(exc)) from exc
        except EngineError as exc:
            raise BackendError(str(exc)) from exc
        text = think.finish()
        if text:
            sent = True
            yield text
        if think.had_reasoning and not sent:
            log.warning(
                "engine: the reply was all reasoning (%s); none of it is sent%s",
                "a <think> block that never closed" if think.in_reasoning else "no text after it",
                "; raise [backend.engine] max_new_tokens"
                if reply.finish_reason == CUT_AT_LIMIT
                else "",
            )
        elif reply.finish_reason == CUT_AT_LIMIT:
            # As the OpenAI-compatible backend does: the operator's cue is the cap.
            log.warning(
                "engine: a reply was cut at max_new_tokens (%d tokens); raise "
                "[backend.engine] max_new_tokens for longer replies",
                params.max_new_tokens,
            )


def _soft_budget(max_new_tokens: Any) -> int | None:
    """Tokens after which a sentence end stops a reply: 80% of the cap (None for a cap
    SamplingParams will refuse anyway)."""
    if isinstance(max_new_tokens, int) and not isinstance(max_new_tokens, bool):
        return max(0, max_new_tokens * 4 // 5)
    return None


def _log_started(model: str, engine: LLMEngine, configured_blocks: int | None) -> None:
    """The start line an operator sizes the deployment from, and a warning when the KV
    cache cuts the model's context short."""
    threads = f", {available_threads()} threads" if engine.device.type == "cpu" else ""
    pool = engine.num_kv_blocks * engine.config.block_size
    log.info(
        "engine: %s loaded on %s: dtype %s, context %d tokens per conversation (model: %d), "
        "KV cache %d blocks = %d tokens, max_num_seqs %d%s",
        model,
        engine.device,
        str(engine.dtype).removeprefix("torch."),
        engine.max_sequence_tokens,
        engine.max_model_len,
        engine.num_kv_blocks,
        pool,
        engine.scheduler.config.max_num_seqs,
        threads,
    )
    if engine.max_sequence_tokens < engine.max_model_len:
        full = -(-engine.max_model_len // engine.config.block_size)
        sized = "set" if configured_blocks is not None else "sized from free memory"
        log.warning(
            "engine: the KV cache (%s) holds %d tokens, fewer than the model's context of "
            "%d: conversations are cut to %d tokens; [backend.engine] kv_cache_blocks = %d "
            "holds a full context (memory allowing)",
            sized,
            pool,
            engine.max_model_len,
            engine.max_sequence_tokens,
            full,
        )


def create_backend(settings: EngineSettings) -> LocalEngineBackend:
    """Factory used by ``botkit.backends.create_backend`` (the model loads in ``start``)."""
    return LocalEngineBackend(settings)
