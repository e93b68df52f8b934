"""langdetect in worker processes, so detection never holds the bot's GIL.

langdetect is pure Python (~2 ms a new text). In a thread it competes with the event
loop for the GIL, and ``benchmarks/web.py`` (1,000 sockets, 850 msg/s) runs the server
at one core. A worker process runs it on another core; the bot only pickles the text
(at most ``max_chars`` characters) and the guesses. Measured on the 2-core dev box
(537 texts of tests/data): the bot process spends 0.17 ms of CPU per new text with
the pool against 1.5 ms when it detects in a thread.

Workers are started with ``spawn``, never ``fork``: the bot has a SQLite writer thread
and others, and a forked child inherits their locks in whatever state they were. Each
worker loads the profiles once (its initializer) and runs the very function the
in-process path runs (``detect._detect_sample``), with the detector's seed, so both
paths give identical guesses.

The pool starts when the bot warms up (``Bot.warm_up``, which ``botkit run`` calls before
serving: under load its start would land in the first second of traffic), or else once
``START_AFTER`` texts needed work, in a thread (~0.4 s and ~100
MB: a Python start and the profiles), not with the bot: a quiet bot, and each of the
test suite's short-lived bots (measured: +11 s on the core tests when every bot that
detected started one), never pays for a process it hardly uses; a busy one reaches
``START_AFTER`` new texts within a second. Until the pool has answered its warm-up
detection, texts are detected in a thread as before (the same answers). If it cannot
start, a worker dies (``BrokenProcessPool``) or does not answer in ``ANSWER_TIMEOUT_S``,
one warning is logged and every later text is detected in a thread: a message never
waits on, or fails because of, the pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Executor
from typing import Any

__all__ = ["DetectPool", "detect_in_worker"]

_log = logging.getLogger("botkit.language")

WARMUP_TEXT = "Hello, I would like to know where my order is."
START_AFTER = 32  # texts detected in a thread before the workers are started
START_TIMEOUT_S = 60.0  # spawn + imports + profiles: ~0.4 s measured on the 2-core box
ANSWER_TIMEOUT_S = 10.0  # one detection takes 0.5-5 ms; this is a hung or lost worker
CLOSE_TIMEOUT_S = 5.0

Raw = tuple[tuple[str, float], ...]


def _init_worker() -> None:
    import signal

    from botkit.language.detect import _factory

    # Ctrl+C reaches the whole process group; the bot closes the pool itself, and a
    # worker dying of KeyboardInterrupt first would only log a spurious broken pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _factory()


def detect_in_worker(seed: int, sample: str) -> Raw:
    """One detection in a worker: ``(tag, probability)`` pairs, best first."""
    from botkit.language.detect import _detect_sample

    return tuple((g.language, g.probability) for g in _detect_sample(sample, seed))


class DetectPool:
    """A lazily started pool of ``processes`` detection workers.

    ``detect`` answers ``None`` whenever the caller must detect in-process instead:
    before the pool is up, after it failed, after ``close``, or when one text cannot
    go through it.
    """

    def __init__(self, processes: int, seed: int, *, start_after: int = START_AFTER) -> None:
        if processes < 1:
            raise ValueError("a detection pool needs at least one process")
        self.processes = processes
        self.seed = seed
        self.start_after = start_after
        self._asked = 0  # texts asked for while idle
        self._lock = threading.Lock()  # _executor/_state change in the starting thread
        self._executor: Executor | None = None
        self._state = "idle"  # idle -> starting -> ready -> failed; any -> closed
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """Whether texts go to the workers now."""
        return self._state == "ready"

    @property
    def failed(self) -> bool:
        """Whether the pool could not start or broke (texts are detected in-process)."""
        return self._state == "failed"

    def pids(self) -> list[int]:
        """The worker processes' ids (empty when none run)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    async def start(self) -> bool:
        """Start the workers now (in a thread) and wait until they answer.

        Returns:
            Whether the pool is ready; on failure a warning was logged.
        """
        if self._state == "idle":
            self._state = "starting"
            self._spawn(self._start())
        while self._state == "starting" and self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.ready

    async def detect(self, sample: str) -> Raw | None:
        """The guesses for ``sample`` from a worker, or None: detect it in-process."""
        if self._state == "idle":
            self._asked += 1
            if self._asked >= self.start_after:
                self._state = "starting"
                self._spawn(self._start())  # this text and those until it is up: in-process
            return None
        executor = self._executor
        if self._state != "ready" or executor is None:
            return None
        try:
            future = executor.submit(detect_in_worker, self.seed, sample)
            return await asyncio.wait_for(asyncio.wrap_future(future), ANSWER_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from concurrent.futures.process import BrokenProcessPool

            if isinstance(exc, BrokenProcessPool | TimeoutError | RuntimeError):
                # RuntimeError: submit after the pool shut down (it broke meanwhile)
                self._fail(exc, executor)
            return None  # anything else is this one text (e.g. it does not pickle)

    async def close(self) -> None:
        """Stop the workers (bounded: a worker that does not exit is killed)."""
        with self._lock:
            self._state = "closed"
            executor, self._executor = self._executor, None
        if self._tasks:  # a start in progress sees "closed" and stops what it started
            await asyncio.wait(set(self._tasks), timeout=START_TIMEOUT_S)
        if executor is not None:
            await asyncio.to_thread(_shutdown, executor)

    # -- internals ---------------------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        try:
            await asyncio.to_thread(self._start_blocking)
        except Exception as exc:
            _log.warning(
                "language: the detection worker process could not start (%s: %s); "
                "detecting in a thread instead", type(exc).__name__, exc,
            )  # fmt: skip
            with self._lock:
                if self._state == "starting":
                    self._state = "failed"

    def _start_blocking(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
        )
        try:
            executor.submit(detect_in_worker, self.seed, WARMUP_TEXT).result(START_TIMEOUT_S)
        except BaseException:
            _shutdown(executor)
            raise
        with self._lock:
            if self._state == "starting":
                self._executor, self._state = executor, "ready"
                return
        _shutdown(executor)  # closed while starting

    def _fail(self, exc: BaseException, executor: Executor) -> None:
        with self._lock:
            if self._executor is not executor:
                return  # another detection already reported it
            self._executor, self._state = None, "failed"
        reason = "did not answer" if isinstance(exc, TimeoutError) else "died"
        _log.warning(
            "language: a detection worker process %s (%s); detecting in a thread from now on",
            reason, type(exc).__name__,
        )  # fmt: skip
        self._spawn(asyncio.to_thread(_shutdown, executor))


def _shutdown(executor: Executor) -> None:
    """Shut ``executor`` down without hanging on a worker that does not exit."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(CLOSE_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join(CLOSE_TIMEOUT_S)
    executor.shutdown(wait=True)  # joins the pool's management thread
