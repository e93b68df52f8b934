"""Async streaming API over ``LLMEngine``; model steps run off the event loop.

The event loop never runs model code: ``submit`` sends commands (add / abort) to the
engine thread through a thread-safe queue, and the thread hands each step's outputs back
with one ``call_soon_threadsafe`` per step. Closing or cancelling a consumer sends an abort,
which the thread applies before its next step, so the sequence's KV blocks are free then.

A step that raises (a transient out-of-memory, a kernel fault) ends only the requests that
were in it, with ``StepFailedError``; the others carry on from a clean state. After
``MAX_CONSECUTIVE_STEP_FAILURES`` failed steps in a row (a broken device, a CUDA context
that every launch now fails on) the engine is declared dead: ``running`` turns False and
every stream ends with ``EngineDeadError``.

On CUDA the engine thread is the engine's own. On the CPU it is the process's shared
``engine.cpu_worker.CpuWorker`` thread, which also runs the translators' work: one
OpenMP pool for all of it (a second thread's pool slows every step of both).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from engine.cpu_threads import in_own_thread
from engine.cpu_worker import CpuWorker, shared_cpu_worker
from engine.devices import bind_thread_to
from engine.engine_config import EngineConfig
from engine.llm_engine import LLMEngine, RequestOutput
from engine.prompt import Prompt
from engine.request_errors import (
    EngineDeadError,
    EngineRequestError,
    InvalidRequestError,
)
from engine.sampling import SamplingParams

__all__ = ["AsyncEngine", "Delta", "FinalRecord", "TextDelta"]

log = logging.getLogger(__name__)

# One failed step is survivable; three in a row with nothing succeeding between them
# mean the device or the engine's state is broken, and retrying would fail every request.
MAX_CONSECUTIVE_STEP_FAILURES = 3


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text of a streaming reply (whole characters, stop strings removed)."""

    text: str


@dataclass(frozen=True, slots=True)
class FinalRecord:
    """The last item of a stream.

    Attributes:
        request_id: the id given to ``submit`` (or the engine's, when none was given).
        finish_reason: ``"stop"`` (EOS / stop string), ``"length"`` or ``"abort"``.
        ttft_s: submit -> first token. latency_s: submit -> finish.
        cached_tokens: prompt tokens served from the prefix cache.
    """

    request_id: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    ttft_s: float | None
    latency_s: float


Delta = TextDelta | FinalRecord
_Item = RequestOutput | BaseException


class AsyncEngine:
    """Runs an ``LLMEngine`` in a background thread and streams results to asyncio.

    Args:
        engine: the engine to drive (owned from now on by the engine thread).
        cpu_worker: on the CPU, the worker whose thread runs the steps (default: the
            process's shared one); unused on other devices.
    """

    def __init__(self, engine: LLMEngine, *, cpu_worker: CpuWorker | None = None) -> None:
        self.engine = engine
        self._worker: CpuWorker | None = None
        if engine.device.type == "cpu":
            self._worker = cpu_worker if cpu_worker is not None else shared_cpu_worker()
        self._commands: queue.SimpleQueue[tuple[str, str, object, object, float]] = (
            queue.SimpleQueue()
        )
        self._streams: dict[str, asyncio.Queue[_Item]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None  # the engine's own (not on the CPU)
        self._started = False
        self._stopped = threading.Event()  # set when the steps have ended (closed or crashed)
        self._dead: BaseException | None = None
        self._dead_reason: str | None = None  # why, in words (``dead_reason``)
        self._ids = itertools.count()
        self.step_failures = 0  # failed steps since start (each ended its requests)
        self._failures_in_a_row = 0

    @classmethod
    async def load(
        cls,
        source: str | Path,
        *,
        dtype: str = "auto",
        device: str = "auto",
        config: EngineConfig | None = None,
    ) -> AsyncEngine:
        """Load a model in a worker thread (the loop stays responsive) and start."""
        # Not an executor thread: it would keep an OpenMP pool beside the engine thread's.
        engine = await in_own_thread(
            "engine-load",
            LLMEngine.from_pretrained,
            source,
            dtype=dtype,
            device=device,
            config=config,
        )
        self = cls(engine)
        self.start()
        return self

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the engine thread (idempotent); binds to the running event loop."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._stopped.clear()
        if self._worker is not None:
            self._worker.attach(self)
            return
        self._thread = threading.Thread(target=self._run, name="engine-step", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped.is_set() and self._dead is None

    @property
    def dead(self) -> bool:
        """Whether the steps stopped for good on failures (not by ``close``)."""
        return self._dead is not None

    @property
    def dead_reason(self) -> str | None:
        """Why the steps stopped for good (steps failing in a row, or the step loop
        crashing on something else), in words; None while they run or after ``close``."""
        return self._dead_reason if self._dead is not None else None

    async def close(self) -> None:
        """Stop the steps; live streams end with ``EngineDeadError`` and their requests
        are aborted (KV blocks back in the pool)."""
        if not self._started:
            return
        self._send(("stop", "", None, None, 0.0))
        await asyncio.to_thread(self._stopped.wait)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._started = False
        self._fail_streams(EngineDeadError("the engine was closed"))

    # ------------------------------------------------------------------ streaming
    async def submit(
        self, prompt: Prompt, params: SamplingParams | None = None, *, request_id: str | None = None
    ) -> AsyncGenerator[Delta, None]:
        """Stream a reply: ``TextDelta`` items, then one ``FinalRecord``.

        Raises:
            InvalidRequestError: the request cannot be served (prompt too long...).
            EngineBusyError: it waited longer than the queue timeout.
            EngineDeadError: the engine is not running.
        """
        if self._dead is not None:
            raise EngineDeadError(f"the engine stopped: {self._dead}")
        if not self._started or self._loop is not asyncio.get_running_loop():
            raise EngineDeadError("the engine is not started in this event loop")
        # Always unique internally: a caller reusing an id must not receive the late
        # "aborted" output of an earlier stream that had the same id.
        rid = f"{request_id or 'req'}-{next(self._ids)}"
        stream: asyncio.Queue[_Item] = asyncio.Queue()
        self._streams[rid] = stream
        self._send(("add", rid, prompt, params, time.monotonic()))
        done = False
        try:
            while True:
                item = await stream.get()
                if isinstance(item, BaseException):
                    done = True
                    raise item
                if item.text:
                    yield TextDelta(item.text)
                if item.finished:
                    done = True
                    if item.error is not None:
                        raise item.error
                    yield _final(item, request_id or rid)
                    return
        finally:
            self._streams.pop(rid, None)
            if not done and self._started:
                self._send(("abort", rid, None, None, 0.0))

    def _send(self, cmd: tuple[str, str, object, object, float]) -> None:
        self._commands.put(cmd)
        if self._worker is not None:
            self._worker.wake()

    # -------------------------------------------------------------- engine thread
    def _run(self) -> None:
        """The engine's own thread (not on the CPU): turns until stopped."""
        bind_thread_to(self.engine.device)  # Triton launches on the thread's current device
        try:
            while self._turn(block=True):
                pass
        except BaseException as exc:  # a crashed step must not leave streams hanging
            self._crash(exc)
        self._stopped.set()

    def cpu_turn(self) -> bool:
        """One turn on the shared CPU worker's thread (``engine.cpu_worker.CpuClient``)."""
        if self._stopped.is_set():
            return False
        try:
            if self._turn(block=False):
                return self.engine.has_unfinished() or not self._commands.empty()
        except BaseException as exc:
            self._crash(exc)
        assert self._worker is not None
        self._worker.detach(self)
        self._stopped.set()
        return False

    def _turn(self, *, block: bool) -> bool:
        """Apply the queued commands, then run one step; False once told to stop.

        ``block``: when there is nothing to step, wait for a command.
        """
        engine = self.engine
        block = block and not engine.has_unfinished()
        while True:
            try:
                cmd = self._commands.get(block=block)
            except queue.Empty:
                break
            block = False
            if cmd[0] == "stop":
                # Streams end with the close; their sequences must not keep KV
                # blocks (or their ids) in an engine that may be driven again.
                engine.abort_all()
                return False
            self._handle(cmd)
        if engine.has_unfinished():
            ran = engine.model_steps_done
            try:
                outputs = engine.step()
            except Exception as exc:  # BaseException (KeyboardInterrupt...) ends the engine
                outputs = self._step_failed(exc)
            else:
                # Only a model step that came back shows the device works: a step that
                # only reported aborts or expired requests proves nothing.
                if engine.model_steps_done != ran:
                    self._failures_in_a_row = 0
            self._deliver(outputs)
        return True

    def _step_failed(self, exc: Exception) -> list[RequestOutput]:
        """End the failed step's requests, or re-raise (-> ``_crash``) when steps keep
        failing."""
        self.step_failures += 1
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= MAX_CONSECUTIVE_STEP_FAILURES:
            log.error("%d engine steps failed in a row; the engine stops", self._failures_in_a_row)
            self._dead_reason = (
                f"its steps failed {self._failures_in_a_row} times in a row "
                f"(the last: {type(exc).__name__}: {exc})"
            )
            raise exc
        log.exception("engine step failed; failing its requests, serving the others", exc_info=exc)
        return self.engine.fail_step(exc)

    def _crash(self, exc: BaseException) -> None:
        log.critical("engine stopped; failing every live request", exc_info=exc)
        if self._dead_reason is None:
            self._dead_reason = f"its step loop crashed: {type(exc).__name__}: {exc}"
        self._dead = exc
        self._post(self._fail_streams, EngineDeadError(f"engine step failed: {exc}"))

    def _handle(self, cmd: tuple[str, str, object, object, float]) -> None:
        kind, rid, prompt, params, arrival = cmd
        if kind == "abort":
            self.engine.abort_request(rid)
            return
        try:
            self.engine.add_request(
                rid, cast(Prompt, prompt), cast(SamplingParams | None, params), arrival_time=arrival
            )
        except EngineRequestError as exc:
            self._post(self._put, rid, exc)
        except Exception as exc:  # e.g. the tokenizer choking on hostile input
            self._post(
                self._put, rid, InvalidRequestError(f"the request could not be prepared: {exc}")
            )

    def _post(self, fn: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    def _deliver(self, outputs: list[RequestOutput]) -> None:
        if outputs:
            self._post(self._put_many, outputs)

    def _put_many(self, outputs: list[RequestOutput]) -> None:
        for o in outputs:
            self._put(o.request_id, o)

    def _put(self, rid: str, item: _Item) -> None:
        stream = self._streams.get(rid)
        if stream is not None:
            stream.put_nowait(item)

    def _fail_streams(self, exc: BaseException) -> None:
        for stream in list(self._streams.values()):
            stream.put_nowait(exc)


def _final(o: RequestOutput, request_id: str) -> FinalRecord:
    end = o.finished_time if o.finished_time is not None else time.monotonic()
    ttft = None if o.first_token_time is None else o.first_token_time - o.arrival_time
    reason = o.finish_reason.value if o.finish_reason is not None else "stop"
    return FinalRecord(
        request_id=request_id,
        finish_reason=reason,
        prompt_tokens=o.prompt_tokens,
        completion_tokens=o.completion_tokens,
        cached_tokens=o.cached_tokens,
        ttft_s=ttft,
        latency_s=end - o.arrival_time,
    )
