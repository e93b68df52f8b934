"""One thread for the CPU work of every engine in the process (chat and translation).

A thread that runs parallel torch ops on the CPU keeps an OpenMP worker pool for as long
as it lives. The chat engine's step thread and a translator's worker thread would be two
such pools, and with more OpenMP threads than cores libgomp cuts every pool's spin-wait
short (to 100 spins; 1,000 with ``OMP_WAIT_POLICY=active``), so each parallel op of either
engine wakes its workers through the kernel, even while the other engine is idle.
Measured (``benchmarks/engine.py --only-cpu-pools``, SmolLM2-135M beside an OPUS-MT-shaped
translator, 2-core VM): a chat decodes at 32.7 tok/s alone, 22.0 beside an *idle*
translator on a thread of its own, 34.4 beside one on this shared thread (five quiet
runs: 0.67-0.81 of alone on two threads, 1.0-1.24 on one). (Environment
settings do not remove it: ``OMP_WAIT_POLICY=active`` took the idle case from ~20 to ~25
tok/s against ~32 alone; ``passive`` makes every case ~22.)

So on the CPU, ``AsyncEngine`` and ``AsyncTranslator`` are *clients* of one shared
:class:`CpuWorker`: its thread runs their turns in rotation and exists only while a
client is attached. A turn is short (the chat engine: its queued commands and one step),
except a translation round, which calls :meth:`CpuWorker.between_steps` before each of
its decode steps, so the chat engine still steps once per translation step instead of
waiting for the whole round. With both busy, one thread costs the translation: chat
18.4 / 20.8 / 22.4 tok/s beside 1.0 / 1.2 / 2.0 sentences/s, against 18.3 / 17.4 / 17.8
tok/s beside 2.7 / 2.1 / 2.6 on two threads (three runs; translation alone 4-5): two
threads overlap one engine's Python and serial work with the other's math. (Equal time
instead of one step each, the chat's turn once the round had run as long as the chat's
last step, did less of both: chat 9-11.5 tok/s.) A translator is idle for most of a
chat's time, though (a message's translation takes a fraction of a second, a reply
several seconds), so the idle case decides. End to end in ``pivot`` mode, as customers
see it (``benchmarks/engine.py --only-pivot``: message translated in, reply translated
back sentence by sentence), the shared thread finished the whole translated reply in
0.84 / 0.87 / 0.83 of the time of two threads at 1 / 4 / 8 conversations, and the
slowest customer's first sentence in 0.80 / 0.86 / 0.76 (the median first sentence came
later with 4-8 conversations: 1.42 / 1.22). Letting translation go first did worse for
the whole reply (0.99 / 1.28 / 1.31). On CUDA each engine keeps a thread of its own:
the GPU does the work there, and one engine's host work must not wait for the other's.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import torch

__all__ = ["CpuClient", "CpuWorker", "shared_cpu_worker"]

log = logging.getLogger(__name__)

THREAD_NAME = "engine-step"


class CpuClient(Protocol):
    """An engine whose CPU work a :class:`CpuWorker` runs."""

    def cpu_turn(self) -> bool:
        """Run one bounded piece of work on the worker thread; never raises.

        Returns whether more work is ready now (False: the worker may sleep until the
        next :meth:`CpuWorker.wake`). A client that is done detaches itself here.
        """
        ...


class CpuWorker:
    """Runs the turns of its attached clients on one thread, in rotation.

    The thread starts when the first client attaches and ends when the last detaches,
    taking its OpenMP pool with it.
    """

    def __init__(self, name: str = THREAD_NAME) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._clients: list[CpuClient] = []
        self._thread: threading.Thread | None = None
        self._in_turn: list[CpuClient] = []  # worker thread only: the turns under way

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread while clients are attached (None between)."""
        return self._thread

    def attach(self, client: CpuClient) -> None:
        """Add ``client`` (its turns start at once); starts the thread if needed."""
        with self._lock:
            if client not in self._clients:
                self._clients.append(client)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()

    def detach(self, client: CpuClient) -> None:
        """Remove ``client`` (from any thread; from its own turn too)."""
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        self._wake.set()

    def wake(self) -> None:
        """Tell the worker a client has new work (call after queueing it)."""
        self._wake.set()

    def between_steps(self) -> None:
        """Give every other client a turn; called on the worker thread from inside a
        long turn (a translation round, before each decode step).

        The turns run in torch's default autograd mode, as they would between rounds:
        the calling round is inside ``inference_mode``, and tensors a chat step created
        there could not be updated in place by its later steps outside it.
        """
        if threading.current_thread() is not self._thread:
            return  # a client driven directly (a test, a benchmark): nothing to share
        with torch.inference_mode(False):
            self._turns()

    # ---------------------------------------------------------------- worker thread
    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            self._wake.clear()  # before looking: a wake() from now on is not lost
            with self._lock:
                if not self._clients:
                    if self._thread is me:
                        self._thread = None  # an attach from now on starts a new thread
                    return
            if not self._turns():
                self._wake.wait()

    def _turns(self) -> bool:
        """One turn of each client not already in one; whether any has more work."""
        with self._lock:
            clients = [c for c in self._clients if c not in self._in_turn]
        more = False
        for client in clients:
            self._in_turn.append(client)
            try:
                more |= client.cpu_turn()
            except BaseException:  # a client must not take the others' thread down
                log.exception("CPU worker: a client's turn raised; detaching it")
                self.detach(client)
            finally:
                self._in_turn.remove(client)
        return more


# Process-wide on purpose, like what it guards: the cores and libgomp's count of OpenMP
# threads belong to the process, so every engine in it (even of two bots) must share the
# one thread; and the bot starts its chat backend and its translator apart, so each
# engine takes this one by default rather than being wired to it. No thread until used.
_shared = CpuWorker()


def shared_cpu_worker() -> CpuWorker:
    """The process's CPU worker: every engine on the CPU shares it (one OpenMP pool)."""
    return _shared
