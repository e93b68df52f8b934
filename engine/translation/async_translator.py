"""``AsyncTranslator``: the engine on a worker thread, concurrent requests coalesced.

The event loop never runs model code. ``translate`` checks the pair (so an unsupported one
fails at once, naming it), queues the texts and awaits a future. The worker thread takes
everything queued when it becomes free (up to ``max_batch_sentences`` sentences) and runs
it as one batch, so sentences of many conversations, and of different language pairs on
a many-to-many model, share the encoder and decoder passes. Requests with different beam
sizes or length limits run as separate batches within the same round.

On the CPU the worker thread is the process's shared ``engine.cpu_worker.CpuWorker``
thread, the one that runs the chat engine's steps: a thread of its own would keep a second
OpenMP pool, which slows every parallel op of both engines. There a round lets the chat
engine step before each of its decode steps, so neither waits for the other's whole job.

The method names match ``botkit.backends.protocol.Translator`` (``name``, ``supports``,
async ``translate(texts, source, target)``), so the core adapter can wrap it thinly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.cpu_threads import in_own_thread
from engine.cpu_worker import CpuWorker, shared_cpu_worker
from engine.devices import bind_thread_to
from engine.request_errors import EngineBusyError, EngineDeadError
from engine.translation.engine import TranslationEngine
from engine.translation.graphs import GraphLimits
from engine.translation.requests import TranslationRequest, check_options, check_texts

__all__ = ["AsyncTranslator"]

log = logging.getLogger(__name__)


@dataclass
class _Job:
    texts: list[str]
    source: str
    target: str
    beam_size: int
    max_new_tokens: int | None
    future: asyncio.Future[list[str]]
    loop: asyncio.AbstractEventLoop = field(repr=False)
    answered: bool = False


class AsyncTranslator:
    """Async, batching front of a ``TranslationEngine`` (which it owns from now on).

    Args:
        engine: the engine; only the worker thread calls its translate methods.
        beam_size: default beam count (1: greedy).
        max_new_tokens: default output limit (None: the engine's per-sentence default).
        max_batch_sentences: most sentences taken into one round.
        max_queued_sentences: sentences waiting or running beyond which ``translate``
            raises ``EngineBusyError`` (a request alone is always accepted).
        cpu_worker: on the CPU, the worker whose thread runs the rounds (default: the
            process's shared one); unused on other devices.
    """

    def __init__(
        self,
        engine: TranslationEngine,
        *,
        beam_size: int = 1,
        max_new_tokens: int | None = None,
        max_batch_sentences: int = 256,
        max_queued_sentences: int = 8192,
        cpu_worker: CpuWorker | None = None,
    ) -> None:
        self.engine = engine
        self._worker: CpuWorker | None = None
        if engine.device.type == "cpu":
            self._worker = cpu_worker if cpu_worker is not None else shared_cpu_worker()
        self.beam_size = beam_size
        self.max_new_tokens = max_new_tokens
        self.max_batch_sentences = max_batch_sentences
        self.max_queued_sentences = max_queued_sentences
        self._queued = 0  # sentences accepted and not yet answered (guarded by _lock)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._thread: threading.Thread | None = None  # the worker's own (not on the CPU)
        self._started = False
        self._stopped = threading.Event()  # set when the worker has served its last round
        self._pending: list[_Job] = []  # taken off the queue for a later round
        self._held: list[_Job] = []  # every job taken off the queue and not yet answered
        self._stopping = False  # the queue's stop mark was taken
        self._closed = False
        self._dead: BaseException | None = None  # why the worker thread ended, if it did
        self._lock = threading.Lock()
        self.batches_run = 0  # rounds the worker ran (coalescing is visible in tests)

    @classmethod
    async def load(
        cls,
        source: str | Path,
        *,
        dtype: str = "auto",
        device: str = "auto",
        pair: tuple[str, str] | None = None,
        beam_size: int = 1,
        max_new_tokens: int | None = None,
        max_batch_sentences: int = 256,
        cuda_graphs: bool = True,
    ) -> AsyncTranslator:
        """Load the checkpoint in a worker thread (the event loop stays responsive).

        ``cuda_graphs``: on CUDA, decode with graphs captured for ``beam_size`` (see
        ``engine.translation.graphs``).

        Raises:
            ModelLoadError: the model cannot be loaded or its languages determined.
        """
        limits = GraphLimits(beams=(beam_size,)) if cuda_graphs else None
        # Not an executor thread: it would keep an OpenMP pool beside the engine threads'.
        engine = await in_own_thread(
            "translation-load",
            TranslationEngine.load,
            source,
            dtype=dtype,
            device=device,
            pair=pair,
            cuda_graphs=limits,
        )
        return cls(
            engine,
            beam_size=beam_size,
            max_new_tokens=max_new_tokens,
            max_batch_sentences=max_batch_sentences,
        )

    @property
    def name(self) -> str:
        """The model's name (path or hub id)."""
        return self.engine.name

    def supports(self, source: str, target: str) -> bool:
        """Whether the model translates ``source -> target`` (BCP-47 tags)."""
        return self.engine.supports(source, target)

    def check_pair(self, source: str, target: str) -> None:
        """Raise ``UnsupportedLanguagePairError`` (naming the pair and why) if unsupported.

        For startup checks of the configured languages.
        """
        self.engine.plan(source, target)

    async def translate(
        self,
        texts: Sequence[str],
        source: str,
        target: str,
        *,
        beam_size: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Translate ``texts``; batched with whatever else is pending.

        Raises:
            UnsupportedLanguagePairError: the pair is not supported (raised immediately).
            InvalidRequestError: texts are not strings.
            EngineBusyError: more than ``max_queued_sentences`` sentences are waiting.
            EngineDeadError: the translator was closed, or its worker thread died.
        """
        items = check_texts(texts)
        beams = beam_size if beam_size is not None else self.beam_size
        limit = max_new_tokens if max_new_tokens is not None else self.max_new_tokens
        check_options(beams, limit)
        plan = self.engine.plan(source, target)  # fail fast, on the caller's task
        if not items or plan.identity:
            return list(items)
        loop = asyncio.get_running_loop()
        job = _Job(items, source, target, beams, limit, loop.create_future(), loop)
        with self._lock:
            if self._closed:
                raise EngineDeadError("the translator is closed")
            if self._dead is not None:
                raise EngineDeadError(f"the translation worker stopped: {self._dead!r}")
            if self._queued and self._queued + len(items) > self.max_queued_sentences:
                raise EngineBusyError(
                    f"translation queue is full ({self._queued} sentences waiting)"
                )
            self._queued += len(items)
            self._queue.put(job)
            self._ensure_started()
        if self._worker is not None:
            self._worker.wake()
        return await job.future

    @property
    def dead_reason(self) -> str | None:
        """Why the worker stopped for good (it crashed), in words; None while it serves
        and after ``close`` (a closed translator is not dead)."""
        dead = self._dead
        if dead is None:
            return None
        return f"its worker crashed: {type(dead).__name__}: {dead}"

    async def close(self) -> None:
        """Stop the worker after the queued work; later calls raise ``EngineDeadError``."""
        with self._lock:
            self._closed = True
            started = self._started
            self._queue.put(None)
        if not started:
            return
        if self._worker is not None:
            self._worker.wake()
        await asyncio.to_thread(self._stopped.wait)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # ------------------------------------------------------------------ worker
    def _ensure_started(self) -> None:
        """Start serving (under ``_lock``), on the CPU worker or a thread of its own."""
        if self._started:
            return
        self._started = True
        if self._worker is not None:
            self.engine.between_steps = self._worker.between_steps
            self._worker.attach(self)
            return
        self._thread = threading.Thread(target=self._run, name="translator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """The worker's own thread (not on the CPU): rounds until the stop mark."""
        try:
            bind_thread_to(self.engine.device)  # Triton launches on the current device
            while (jobs := self._next_round(block=True)) is not None:
                self._serve_round(jobs)
        except BaseException as exc:  # nothing may be left awaiting a dead worker
            log.exception("translation worker died; failing its queued requests")
            self._die(exc, self._held)
        self._stopped.set()

    def cpu_turn(self) -> bool:
        """One round on the shared CPU worker's thread (``engine.cpu_worker.CpuClient``)."""
        if self._stopped.is_set():
            return False
        try:
            jobs = self._next_round(block=False)
            if jobs is not None:
                self._serve_round(jobs)
                return bool(self._pending) or not self._queue.empty()
        except BaseException as exc:  # nothing may be left awaiting a dead worker
            log.exception("translation worker died; failing its queued requests")
            self._die(exc, self._held)
        assert self._worker is not None
        self._worker.detach(self)
        self._stopped.set()
        return False

    def _die(self, exc: BaseException, held: list[_Job]) -> None:
        with self._lock:  # translate() checks _dead under the lock before queueing
            self._dead = exc
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                held.append(item)
        for job in held:
            if not job.answered:
                self._answer(job, None, EngineDeadError(f"the translation worker stopped: {exc!r}"))

    def _next_round(self, *, block: bool) -> list[_Job] | None:
        """The jobs of the next round: everything queued, up to ``max_batch_sentences``
        sentences ([] when nothing is queued and not ``block``; None: stop now)."""
        pending = self._pending
        if not pending:
            if self._stopping:
                return None
            try:
                first = self._queue.get(block=block)
            except queue.Empty:
                return []
            if first is None:
                return None
            pending.append(first)
            self._held.append(first)
        size = sum(len(j.texts) for j in pending)
        while size < self.max_batch_sentences and not self._stopping:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping = True  # after the jobs taken so far
                break
            pending.append(item)
            self._held.append(item)
            size += len(item.texts)
        jobs, self._pending = _take(pending, self.max_batch_sentences)
        return jobs

    def _serve_round(self, jobs: list[_Job]) -> None:
        if jobs:
            self._run_round(jobs)
        self._held[:] = [j for j in self._held if not j.answered]

    def _run_round(self, jobs: list[_Job]) -> None:
        self.batches_run += 1
        groups: dict[tuple[int, int | None], list[_Job]] = {}
        for job in jobs:
            if job.future.cancelled():
                self._answer(job, None, None)
            else:
                groups.setdefault((job.beam_size, job.max_new_tokens), []).append(job)
        for (beams, limit), members in groups.items():
            requests = [TranslationRequest(t, j.source, j.target) for j in members for t in j.texts]
            try:
                outs = self.engine.translate_requests(
                    requests, beam_size=beams, max_new_tokens=limit
                )
            except BaseException as exc:  # fail this group's callers, keep serving
                log.exception("translation batch failed")
                for job in members:
                    self._answer(job, None, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            start = 0
            for job in members:
                self._answer(job, outs[start : start + len(job.texts)], None)
                start += len(job.texts)

    def _answer(self, job: _Job, result: list[str] | None, exc: BaseException | None) -> None:
        """Release the job's queue share, then complete its future on its loop."""
        if job.answered:
            return
        job.answered = True
        with self._lock:
            self._queued -= len(job.texts)
        try:
            if exc is not None:
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
            elif result is not None:
                job.loop.call_soon_threadsafe(_resolve, job.future, result)
        except RuntimeError:  # the caller's loop closed (its task ended): nobody waits
            pass


def _take(jobs: list[_Job], limit: int) -> tuple[list[_Job], list[_Job]]:
    """The first jobs up to ``limit`` sentences (at least one job), and the rest."""
    size, n = 0, 0
    for job in jobs:
        if n and size + len(job.texts) > limit:
            break
        size += len(job.texts)
        n += 1
    return jobs[:n], jobs[n:]


def _resolve(future: asyncio.Future[list[str]], value: list[str]) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[list[str]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
