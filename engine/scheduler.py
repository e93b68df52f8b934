"""Continuous-batching scheduler: pure Python, no tensors.

Each ``schedule()`` call decides one model step and returns a plain ``SchedulerOutput``:

1. Running sequences, oldest first, each get their next tokens (1 for a decoding
   sequence, a chunk of at most ``long_prefill_token_threshold`` for one still
   prefilling) while the step's token budget lasts. When the KV pool cannot hold a
   sequence's next tokens, the newest running sequence is preempted by recompute (its
   blocks are freed; it goes back to the head of the queue keeping its generated tokens)
   until the allocation fits — memory pressure slows requests down, never crashes.
2. If nothing was preempted, waiting requests are admitted in arrival order under the
   remaining budget and ``max_num_seqs``, reusing cached prefix blocks — including blocks
   an earlier entry of this same step computes (published as soon as it is scheduled).

``update()`` applies the runner's sampled tokens and token-level stop conditions.

``schedule_ahead()`` plans the decode step after a decode step whose tokens are not known
yet, so the engine can queue it on the GPU first (see ``LLMEngine.step``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.block_manager import BlockManager
from engine.request import FinishReason, Sequence, SequenceStatus
from engine.request_errors import EngineBusyError, InvalidRequestError

__all__ = ["ScheduledSeq", "Scheduler", "SchedulerConfig", "SchedulerOutput"]


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Limits of one step and of the queue.

    Attributes:
        max_model_len: context length (prompt + generated) the model supports.
        max_num_seqs: sequences running at once.
        max_num_batched_tokens: tokens computed in one step (prefill chunks + decodes).
        long_prefill_token_threshold: largest prefill chunk of one sequence in one step
            (``None``: the whole budget), so a long prompt cannot stall everyone's decode.
        queue_timeout_s: a request never scheduled within this many seconds is rejected
            with ``EngineBusyError`` (``None``: wait forever).
        max_waiting: more queued requests than this are rejected at once (``None``: no cap).
    """

    max_model_len: int
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 2048
    long_prefill_token_threshold: int | None = None
    queue_timeout_s: float | None = None
    max_waiting: int | None = None

    def __post_init__(self) -> None:
        if self.max_model_len < 2 or self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError(f"invalid scheduler limits: {self}")
        if self.long_prefill_token_threshold is not None and self.long_prefill_token_threshold < 1:
            raise ValueError("long_prefill_token_threshold must be >= 1")


@dataclass(frozen=True, slots=True)
class ScheduledSeq:
    """One sequence's share of a step: positions ``start .. start+num_tokens-1``."""

    seq: Sequence
    start: int
    num_tokens: int
    sample: bool  # the chunk reaches the sequence's last token: sample the next one


@dataclass(slots=True)
class SchedulerOutput:
    """What the runner computes this step. Prefills (> 1 token) come before decodes."""

    prefills: list[ScheduledSeq] = field(default_factory=list)
    decodes: list[ScheduledSeq] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)
    finished: list[Sequence] = field(default_factory=list)  # aborted / timed out / failed

    @property
    def scheduled(self) -> list[ScheduledSeq]:
        return self.prefills + self.decodes

    @property
    def sampling(self) -> list[ScheduledSeq]:
        """Entries that produce a token, in the order the runner returns them."""
        return [s for s in self.scheduled if s.sample]

    @property
    def num_batched_tokens(self) -> int:
        return sum(s.num_tokens for s in self.prefills) + len(self.decodes)

    @property
    def is_empty(self) -> bool:
        return not self.prefills and not self.decodes


class Scheduler:
    """Owns the waiting queue and the running batch.

    Args:
        config: step and queue limits.
        block_manager: the KV block pool.
        clock: monotonic seconds (injectable for queue-timeout tests).
    """

    def __init__(self, config: SchedulerConfig, block_manager: BlockManager,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.block_manager = block_manager
        self.clock = clock
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._live: dict[str, Sequence] = {}
        self._finished_outside_step: list[Sequence] = []
        self.num_preemptions = 0
        bs = block_manager.block_size
        # A sequence alone must always fit the pool, or preempting everyone else would not
        # help it and the engine would livelock: cap its total length at the pool size.
        self.max_total_tokens = min(config.max_model_len, block_manager.num_blocks * bs)

    # --------------------------------------------------------------- requests
    def add(self, seq: Sequence) -> None:
        """Queue a request.

        Raises:
            InvalidRequestError: empty prompt, duplicate id, or a prompt that leaves no room
                for one generated token in the context / KV pool.
            EngineBusyError: the queue is full.
        """
        n = seq.num_prompt_tokens
        if n == 0:
            raise InvalidRequestError("the prompt is empty")
        if seq.request_id in self._live:
            raise InvalidRequestError(f"request id {seq.request_id!r} is already in use")
        if n >= self.max_total_tokens:
            raise InvalidRequestError(
                f"the prompt has {n} tokens but the context holds at most "
                f"{self.max_total_tokens} (prompt + at least one generated token); "
                "shorten the conversation")
        cap = self.config.max_waiting
        if cap is not None and len(self.waiting) >= cap:
            raise EngineBusyError(f"{len(self.waiting)} requests already waiting")
        seq.max_total_tokens = min(seq.max_total_tokens, self.max_total_tokens)
        seq.status = SequenceStatus.WAITING
        self._live[seq.request_id] = seq
        self.waiting.append(seq)

    def get(self, request_id: str) -> Sequence | None:
        return self._live.get(request_id)

    def abort(self, request_id: str) -> Sequence | None:
        """Cancel a live request now; its blocks return to the pool immediately."""
        seq = self._live.get(request_id)
        if seq is None:
            return None
        self.finish(seq, FinishReason.ABORT)
        self._finished_outside_step.append(seq)
        return seq

    def finish(self, seq: Sequence, reason: FinishReason, error: Exception | None = None) -> None:
        """End ``seq`` (stop string, error...) and release its blocks."""
        if seq.is_finished:
            return
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        else:
            self.waiting.remove(seq)
        self.block_manager.free(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        seq.error = error
        seq.finished_time = self.clock()
        self._live.pop(seq.request_id, None)

    def reports_later(self, seq: Sequence) -> bool:
        """Whether ``seq`` ended outside a step (aborted) and the next ``schedule()``
        reports it in ``SchedulerOutput.finished``."""
        return any(s is seq for s in self._finished_outside_step)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running or self._finished_outside_step)

    # --------------------------------------------------------------- stepping
    def schedule(self) -> SchedulerOutput:
        """Plan one step (see the module docstring)."""
        out = SchedulerOutput(finished=self._finished_outside_step)
        self._finished_outside_step = []
        self._expire_waiting(out)
        budget = self.config.max_num_batched_tokens
        chunk = self.config.long_prefill_token_threshold or budget
        if len(self.running) + len(self.waiting) <= 1:
            chunk = budget  # alone, a prompt delays nobody: do not stretch its TTFT
        bm = self.block_manager
        scheduled: list[ScheduledSeq] = []
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_uncomputed_tokens, budget, chunk)
            while not bm.allocate(seq, n):
                victim = self.running[-1]
                self._preempt(victim)
                out.preempted.append(victim)
                if victim is seq:
                    break
            else:
                bm.publish(seq, seq.num_computed_tokens + n)
                scheduled.append(ScheduledSeq(seq, seq.num_computed_tokens, n,
                                              seq.num_computed_tokens + n == seq.num_tokens))
                budget -= n
                i += 1
        if not out.preempted:
            budget = self._admit(scheduled, budget, chunk)
        for s in scheduled:
            (out.prefills if s.num_tokens > 1 else out.decodes).append(s)
        return out

    def schedule_ahead(self, out: SchedulerOutput) -> tuple[SchedulerOutput, list[int]] | None:
        """Plan the decode step after ``out`` before ``out``'s tokens are known.

        Every sequence of a decode-only ``out`` decodes one more position, the one its
        coming token goes to, unless that token's count alone ends it (``max_new_tokens``
        or the context): known now, so it is left out. A token that ends a sequence
        otherwise (EOS, a stop string) is only seen later; the step's token for it is then
        dropped (``update`` skips finished sequences). A sequence that finished since
        ``out`` was planned has freed its blocks; this step, queued behind ``out``,
        still writes one slot of them, before any later step can reuse them.

        Returns:
            The step and, per entry, its row in ``out.sampling``; ``None`` where a normal
            ``schedule()`` must decide: ``out`` has prefills (a one-token prompt chunk
            that does not sample included), a waiting request could be admitted or has
            waited too long, one was aborted, a sequence's repetition penalty has no
            device state yet, or the pool is out of blocks (preemption).
        """
        if (out.prefills or not out.decodes or self._finished_outside_step
                or not all(s.sample for s in out.decodes) or self._waiting_needs_a_step()):
            return None  # fmt: skip
        ahead = SchedulerOutput()
        rows: list[int] = []
        for row, s in enumerate(out.decodes):  # all sample: decodes == sampling
            seq = s.seq
            if seq.is_finished:
                continue
            if seq.params.repetition_penalty != 1.0 and seq.seen_mask is None:
                return None
            if (seq.num_output_tokens + 1 >= seq.params.max_new_tokens
                    or seq.num_tokens + 1 >= seq.max_total_tokens):  # fmt: skip
                continue
            # The computed count is still ``s.start`` (``out`` not applied): room for
            # ``out``'s position and the one after it.
            if not self.block_manager.allocate(seq, 2):
                return None
            ahead.decodes.append(ScheduledSeq(seq, s.start + 1, 1, True))
            rows.append(row)
        return (ahead, rows) if ahead.decodes else None

    def _waiting_needs_a_step(self) -> bool:
        """Whether a normal ``schedule()`` would do something for the queue now: admit
        its head (a sequence slot is free) or reject a request that waited too long.
        Under saturation the queue waits either way, and steps can still be planned
        ahead."""
        if not self.waiting:
            return False
        if len(self.running) < self.config.max_num_seqs:
            return True
        timeout = self.config.queue_timeout_s
        if timeout is None:
            return False
        now = self.clock()
        return any(s.first_scheduled_time is None and now - s.arrival_time > timeout
                   for s in self.waiting)  # fmt: skip

    def _admit(self, scheduled: list[ScheduledSeq], budget: int, chunk: int) -> int:
        bm = self.block_manager
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            prefix = bm.lookup_prefix(seq)
            cached = len(prefix) * bm.block_size
            n = min(seq.num_tokens - cached, budget, chunk)
            if not bm.allocate(seq, n, prefix):
                break  # FCFS: later requests do not jump a head that does not fit
            self.waiting.popleft()
            if seq.first_scheduled_time is None:
                seq.first_scheduled_time = self.clock()
                seq.num_cached_tokens = cached
                bm.record_prefix_query(seq.num_tokens, cached)
            seq.num_computed_tokens = cached
            bm.publish(seq, cached + n)  # later admissions in this step may reuse them
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            scheduled.append(ScheduledSeq(seq, cached, n, cached + n == seq.num_tokens))
            budget -= n
        return budget

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.num_computed_tokens = 0
        seq.status = SequenceStatus.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def _expire_waiting(self, out: SchedulerOutput) -> None:
        timeout = self.config.queue_timeout_s
        if timeout is None or not self.waiting:
            return
        now = self.clock()
        # Preempted sequences already streamed tokens; only never-started ones expire.
        expired = [s for s in self.waiting
                   if s.first_scheduled_time is None and now - s.arrival_time > timeout]
        for seq in expired:
            waited = now - seq.arrival_time
            self.finish(seq, FinishReason.ERROR,
                        EngineBusyError(f"request waited {waited:.3g} s in the queue "
                                        f"(timeout {timeout:g} s); the engine is busy"))
            out.finished.append(seq)

    def update(self, out: SchedulerOutput, sampled_token_ids: list[int]) -> list[Sequence]:
        """Apply a finished step: advance computed counts, append sampled tokens.

        Args:
            out: the step that ran.
            sampled_token_ids: one token per ``out.sampling`` entry, same order.

        Returns:
            The sequences that received a token (some now finished with STOP/LENGTH).
        """
        sampling = out.sampling
        if len(sampled_token_ids) != len(sampling):
            raise ValueError(f"expected {len(sampling)} sampled tokens, got "
                             f"{len(sampled_token_ids)}")
        for s in out.scheduled:
            if not s.seq.is_finished:
                s.seq.num_computed_tokens = s.start + s.num_tokens
                self.block_manager.register_computed(s.seq)
        now = self.clock()
        touched: list[Sequence] = []
        for s, token in zip(sampling, sampled_token_ids, strict=True):
            seq = s.seq
            if seq.is_finished:
                continue
            seq.append_token(token)
            if seq.first_token_time is None:
                seq.first_token_time = now
            reason = seq.check_token_stop()
            if reason is not None:
                self.finish(seq, reason)
            touched.append(seq)
        return touched
