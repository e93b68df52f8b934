"""The synchronous engine: requests in, one model step per ``step()``, deltas out.

``LLMEngine`` glues the pieces: prompt encoding, the scheduler and block pool, the model
runner, and per-request incremental detokenizers. It is single-threaded by design;
``AsyncEngine`` drives it from a dedicated thread.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.block_manager import BlockManager
from engine.config import ModelConfig
from engine.cpu_memory import available_memory_bytes
from engine.detokenizer import IncrementalDetokenizer
from engine.devices import bind_thread_to
from engine.engine_config import EngineConfig
from engine.kv_cache import allocate_kv_caches, determine_num_blocks
from engine.layers import use_skinny_kernels
from engine.prompt import Prompt, encode_prompt
from engine.request import FinishReason, Sequence
from engine.request_errors import InvalidRequestError, StepFailedError
from engine.runner import ModelRunner, SampledTokens
from engine.sampler import SAMPLING_FAILED
from engine.sampling import SamplingParams
from engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from engine.stats import EngineLoad, EngineStats
from engine.turn_tokens import template_token_ids

__all__ = ["LLMEngine", "RequestOutput"]


@dataclass(frozen=True, slots=True)
class RequestOutput:
    """What one step produced for one request.

    ``text`` is the new text since the previous output (never half a character, never a
    stop string). The last output of a request has ``finished=True`` and a
    ``finish_reason``; ``error`` is set when the request failed (busy, invalid...).
    Times are ``time.monotonic()`` seconds.
    """

    request_id: str
    text: str
    token_ids: tuple[int, ...]
    finished: bool
    finish_reason: FinishReason | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    arrival_time: float
    first_token_time: float | None
    finished_time: float | None
    error: Exception | None = None


class LLMEngine:
    """Continuous-batching generation over one loaded model.

    Args:
        model: engine model (``engine.models``), already on its device.
        tokenizer: the model's transformers tokenizer.
        model_config: the model's ``engine.config.ModelConfig``.
        config: serving knobs.
        chat_template: overrides the tokenizer's template for chat prompts.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        model_config: ModelConfig,
        config: EngineConfig | None = None,
        *,
        chat_template: str | None = None,
    ) -> None:
        self.config = config = config or EngineConfig()
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        # The languages the model's card or GGUF declares (None: it declares none);
        # ``from_pretrained`` sets them.
        self.languages: tuple[str, ...] | None = None
        param = next(iter(model.parameters()), None)
        self.device = param.device if param is not None else torch.device("cpu")
        bind_thread_to(self.device)  # profiling and capture below launch Triton kernels
        self.dtype = model_config.dtype
        max_len = min(config.max_model_len or model_config.max_position, model_config.max_position)
        max_seqs, max_tokens, chunk = config.resolved(self.device)
        if config.skinny_kernels and self.device.type == "cuda":
            use_skinny_kernels(model)  # before the graphs below capture the products
        self.runner = ModelRunner(
            model,
            vocab_size=model_config.vocab_size,
            block_size=config.block_size,
            device=self.device,
            max_num_seqs=max_seqs,
            max_model_len=max_len,
            # A step never holds more than the token budget: no graph for bigger ones.
            prefill_graph_tokens=min(config.cuda_graph_prefill_tokens, max_tokens),
        )
        peak = 0
        if (
            self.device.type == "cuda"
            and config.num_kv_blocks is None
            and config.kv_cache_bytes is None
        ):
            torch.cuda.empty_cache()  # cached-but-free blocks would read as "used"
            peak = self.runner.profile_peak_bytes(max_tokens, max_seqs)
        num_blocks = determine_num_blocks(
            model_config,
            block_size=config.block_size,
            dtype=self.dtype,
            device=self.device,
            num_blocks=config.num_kv_blocks,
            kv_cache_bytes=config.kv_cache_bytes,
            gpu_memory_utilization=config.gpu_memory_utilization,
            activation_peak_bytes=peak,
            max_useful_tokens=max_seqs * max_len * 2,
            context_tokens=max_len,
            available_bytes=available_memory_bytes() if self.device.type == "cpu" else None,
        )
        self.runner.set_kv_caches(
            allocate_kv_caches(model_config, num_blocks, config.block_size, self.dtype, self.device)
        )
        self.block_manager = BlockManager(
            num_blocks, config.block_size, enable_prefix_caching=config.enable_prefix_caching
        )
        self.scheduler = Scheduler(
            SchedulerConfig(
                max_model_len=max_len,
                max_num_seqs=max_seqs,
                max_num_batched_tokens=max_tokens,
                long_prefill_token_threshold=chunk,
                queue_timeout_s=config.queue_timeout_s,
                max_waiting=config.max_waiting,
            ),
            self.block_manager,
        )
        if config.cuda_graphs:
            self.runner.capture_cuda_graphs()
        # The chat template's special tokens end a reply too: a model writing the next
        # turn's start (ChatML <|im_start|>) without EOS would go on into a fake turn.
        self._eos = (
            frozenset(model_config.eos_token_ids)
            | _tokenizer_eos(tokenizer)
            | template_token_ids(tokenizer, chat_template)
        )
        # Per live request id: its sequence and detokenizer. The sequence is kept to tell
        # an aborted request from a new one given the same id before the abort is reported.
        self._detok: dict[str, tuple[Sequence, IncrementalDetokenizer]] = {}
        # A decode step already queued on the device, its tokens not read yet.
        self._ahead: tuple[SchedulerOutput, SampledTokens] | None = None
        # The sequences of the step being run (and of the one queued ahead): the ones a
        # failed step ends (``fail_step``).
        self._in_step: list[Sequence] = []
        # The outputs the step being run has built so far: a step that raises part-way
        # hands them out from ``fail_step`` (a request it finished, busy or aborted, gets
        # its last output there, or its stream would wait for it forever).
        self._pending: list[RequestOutput] = []
        self.model_steps_done = 0  # steps whose tokens came back from the device
        self._steps = 0
        self._computed_tokens = 0
        self._prompt_tokens_computed = 0

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        dtype: str = "auto",
        device: str = "auto",
        config: EngineConfig | None = None,
    ) -> LLMEngine:
        """Load a model with ``engine.loader.load_model`` and build an engine on it."""
        from engine.loader import load_model  # heavy: only when loading

        loaded = load_model(source, dtype=dtype, device=device)
        engine = cls(
            loaded.model,
            loaded.tokenizer,
            loaded.model_config,
            config,
            chat_template=loaded.chat_template,
        )
        engine.languages = loaded.languages
        return engine

    # --------------------------------------------------------------- requests
    @property
    def num_kv_blocks(self) -> int:
        return self.block_manager.num_blocks

    @property
    def max_model_len(self) -> int:
        """The model's context: ``config.max_model_len`` capped at its max positions."""
        return self.scheduler.config.max_model_len

    @property
    def max_sequence_tokens(self) -> int:
        """The most tokens one sequence (prompt + reply) can hold: ``max_model_len``
        capped at the whole KV pool. ``add_request`` refuses a prompt that leaves no
        room for one generated token in it."""
        return self.scheduler.max_total_tokens

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt (see ``engine.prompt.encode_prompt``)."""
        return encode_prompt(
            self.tokenizer,
            prompt,
            vocab_size=self.model_config.vocab_size,
            chat_template=self.chat_template,
        )

    def add_request(
        self,
        request_id: str,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        arrival_time: float | None = None,
    ) -> Sequence:
        """Tokenize and queue a request.

        Raises:
            InvalidRequestError: bad prompt (too long, empty, malformed messages).
            EngineBusyError: the waiting queue is full.
        """
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(
                f"params must be a SamplingParams, got {type(params).__name__}"
            )
        seq = Sequence(
            request_id=request_id,
            prompt_token_ids=self.encode(prompt),
            params=params,
            max_total_tokens=self.scheduler.max_total_tokens,
            eos_token_ids=self._eos,
        )
        if arrival_time is not None:
            seq.arrival_time = arrival_time
        # Everything that can fail is built before the sequence is queued: a queued
        # sequence without its detokenizer would fail the next step, and with it every
        # other request (the async engine treats a failed step as a dead engine).
        detok = IncrementalDetokenizer(self.tokenizer, seq.prompt_token_ids, params.stop)
        self.scheduler.add(seq)
        self._detok[request_id] = (seq, detok)
        return seq

    def abort_request(self, request_id: str) -> bool:
        """Cancel a request; its KV blocks are free before the next step runs."""
        return self.scheduler.abort(request_id) is not None

    def abort_all(self) -> None:
        """Cancel every live request and report them (when an owner stops serving):
        their KV blocks return to the pool and ``has_unfinished()`` is False after."""
        sched = self.scheduler
        for seq in [*sched.running, *sched.waiting]:
            sched.abort(seq.request_id)
        while self.has_unfinished():  # nothing is scheduled now: this only reports
            self.step()

    def has_unfinished(self) -> bool:
        return self._ahead is not None or self.scheduler.has_unfinished()

    @property
    def stats(self) -> EngineStats:
        """Cumulative counters: steps, tokens computed, prefix-cache hits, preemptions."""
        bm = self.block_manager
        return EngineStats(
            steps=self._steps,
            computed_tokens=self._computed_tokens,
            prompt_tokens_computed=self._prompt_tokens_computed,
            prefix_query_tokens=bm.prefix_query_tokens,
            prefix_hit_tokens=bm.prefix_hit_tokens,
            preemptions=self.scheduler.num_preemptions,
        )

    @property
    def load(self) -> EngineLoad:
        """Sequences running and waiting, and KV blocks free (read from any thread:
        each number is read whole, though not all at one step)."""
        sched, bm = self.scheduler, self.block_manager
        return EngineLoad(
            running=len(sched.running),
            waiting=len(sched.waiting),
            kv_blocks=bm.num_blocks,
            kv_blocks_free=bm.num_free_blocks,
        )

    def _count(self, out: SchedulerOutput) -> None:
        self._steps += 1
        for s in out.scheduled:
            self._computed_tokens += s.num_tokens
            in_prompt = min(s.start + s.num_tokens, s.seq.num_prompt_tokens) - s.start
            self._prompt_tokens_computed += max(0, in_prompt)

    # --------------------------------------------------------------- stepping
    def step(self) -> list[RequestOutput]:
        """Run one model step; return every request's new output.

        With ``EngineConfig.overlap_steps`` a decode step on the graphed path queues the
        next decode step on the device before reading its own tokens, so the host's work
        between two steps (reading tokens, detokenizing, planning, preparing inputs)
        runs while the device computes. The next call then starts from that queued step.
        """
        sched = self.scheduler
        outputs: list[RequestOutput] = []
        self._pending = outputs
        if self._ahead is not None:
            (out, pending), self._ahead = self._ahead, None
        else:
            out = sched.schedule()
            outputs += [self._output(seq, "", ()) for seq in out.finished]
            if out.is_empty:
                self._pending = []
                return outputs
            self._count(out)
            self._in_step = [s.seq for s in out.scheduled]
            pending = self.runner.launch(out)
        if self.config.overlap_steps and self.runner.can_feed(len(out.decodes)):
            planned = sched.schedule_ahead(out)
            if planned is not None:
                ahead, rows = planned
                self._count(ahead)
                self._in_step = [s.seq for s in (*out.scheduled, *ahead.scheduled)]
                self._ahead = (ahead, self.runner.launch_fed(ahead, pending, rows))
        try:
            tokens = pending.result()
            self.model_steps_done += 1
            self._fail_unsampled(out, tokens, outputs)
            self._apply(out, tokens, outputs)
        except BaseException:
            # The queued step was planned as if this one's tokens were applied; without
            # them it would drop a token. Forgotten, a normal step recomputes from here
            # (its device writes land where that step writes again; a seeded request's
            # generator has made one draw more).
            self._ahead = None
            raise
        if self._ahead is None:
            self._in_step = []
        else:
            self._in_step = [s.seq for s in self._ahead[0].scheduled]
        self._pending = []
        return outputs

    def fail_step(self, cause: BaseException) -> list[RequestOutput]:
        """After ``step()`` raised: end the requests that were in that step with a
        ``StepFailedError`` (one per request, caused by ``cause``) and leave a clean
        state for the others, which carry on.

        Returns what the failed step had built before it raised (the last output of a
        request it ended: busy, aborted, finished) and the last output of every request
        that ended without one, the failed ones included.

        Their KV blocks return to the pool (what the failed step wrote lands only in
        their blocks, none of which was registered as a cached prefix yet; unused cached
        prefixes are dropped too, to be safe). When the failure came before any model
        step was planned (the scheduler itself), every running request is ended.

        ``cause`` is kept (each error's ``__cause__``) without its traceback: the frames
        of the failed step hold its tensors (activations, logits), and the errors live
        as long as their consumers keep them; after an out-of-memory that memory is what
        the next steps need. Log ``cause`` with its traceback before calling this.
        """
        _drop_frames(cause)
        sched = self.scheduler
        self._ahead = None
        failed = self._in_step or list(sched.running)
        self._in_step = []
        outputs, self._pending = self._pending, []
        for seq in failed:
            if not seq.is_finished:
                error = StepFailedError(f"engine step failed: {cause}")
                error.__cause__ = cause
                sched.finish(seq, FinishReason.ERROR, error)
        # A sequence still in ``_detok`` once finished has had no last output: the failed
        # ones, and those the step ended before it raised (the scheduler's queue timeout
        # or ``update`` marking STOP/LENGTH before their output was built).
        for seq, _ in list(self._detok.values()):
            if seq.is_finished and not sched.reports_later(seq):
                outputs.append(self._output(seq, "", ()))
        self.block_manager.reset_prefix_cache()
        return outputs

    def _apply(self, out: SchedulerOutput, tokens: list[int], outputs: list[RequestOutput]) -> None:
        """Append a step's tokens, detokenize them, and end what stops (into
        ``outputs``, one by one: what is built stays there if a later one raises)."""
        sched = self.scheduler
        for seq in sched.update(out, tokens):
            detok = self._detok[seq.request_id][1]
            token = seq.output_token_ids[-1]
            ends_on_token = seq.finish_reason is FinishReason.STOP  # EOS / stop token id
            after = seq.params.sentence_end_after
            if after is not None and seq.num_output_tokens > after:
                detok.stop_at_sentence_end()
            text = "" if ends_on_token else detok.add_tokens([token])
            if detok.stopped:
                if seq.is_finished:  # the last allowed token completed a stop string
                    seq.finish_reason = FinishReason.STOP
                else:
                    sched.finish(seq, FinishReason.STOP)
            if seq.is_finished:
                text += detok.flush()
            outputs.append(self._output(seq, text, (token,)))

    def _fail_unsampled(
        self, out: SchedulerOutput, tokens: list[int], outputs: list[RequestOutput]
    ) -> None:
        """End the requests whose sampling failed this step (into ``outputs``); the
        others carry on."""
        for s, token in zip(out.sampling, tokens, strict=True):
            if token != SAMPLING_FAILED or s.seq.is_finished:  # ended since it was queued
                continue
            cause = s.seq.extra.pop("sampling_error", None)
            self.scheduler.finish(
                s.seq,
                FinishReason.ERROR,
                InvalidRequestError(f"sampling failed for this request: {cause}"),
            )
            outputs.append(self._output(s.seq, "", ()))

    def _output(self, seq: Sequence, text: str, tokens: tuple[int, ...]) -> RequestOutput:
        if seq.is_finished:
            live = self._detok.get(seq.request_id)
            if live is not None and live[0] is seq:
                del self._detok[seq.request_id]
        return RequestOutput(
            request_id=seq.request_id,
            text=text,
            token_ids=tokens,
            finished=seq.is_finished,
            finish_reason=seq.finish_reason,
            prompt_tokens=seq.num_prompt_tokens,
            completion_tokens=seq.num_output_tokens,
            cached_tokens=seq.num_cached_tokens,
            arrival_time=seq.arrival_time,
            first_token_time=seq.first_token_time,
            finished_time=seq.finished_time,
            error=seq.error,
        )

    def generate(
        self,
        prompts: Iterable[Prompt],
        params: SamplingParams | None = None,
    ) -> list[tuple[str, list[int]]]:
        """Run prompts to completion (offline use, tests): (text, token ids) per prompt.

        Raises:
            EngineRequestError: the first request that failed.
        """
        prompts_list = list(prompts)
        tag = time.monotonic_ns()
        ids = [f"generate-{tag}-{i}" for i in range(len(prompts_list))]
        for rid, prompt in zip(ids, prompts_list, strict=True):
            self.add_request(rid, prompt, params)
        texts = {rid: "" for rid in ids}
        tokens: dict[str, list[int]] = {rid: [] for rid in ids}
        while self.has_unfinished():
            for o in self.step():
                if o.request_id not in texts:
                    continue  # an earlier call's request, aborted when that call failed
                texts[o.request_id] += o.text
                tokens[o.request_id].extend(o.token_ids)
                if o.error is not None:
                    for rid in ids:
                        self.abort_request(rid)
                    raise o.error
        return [(texts[rid], tokens[rid]) for rid in ids]


def _drop_frames(exc: BaseException) -> None:
    """Clear the locals of the frames ``exc`` (and the exceptions chained to it) went
    through, and drop its traceback (a frame still running is left as is)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
            e.__traceback__ = None
        todo += (e.__cause__, e.__context__)


def _tokenizer_eos(tokenizer: Any) -> frozenset[int]:
    eos = getattr(tokenizer, "eos_token_id", None)
    return frozenset([eos]) if isinstance(eos, int) else frozenset()
