"""How many intra-op threads a CPU decode step uses, chosen from measured step times.

Splitting decode's matrix-vector products over the cores (``engine.cpu_linear``) takes a
step of SmolLM2-135M from ~21 ms to ~17 ms on a quiet 2-core EPYC. When another process
keeps a core busy, each split product waits for a descheduled OpenMP worker at its
barrier instead: measured 33 ms split vs 20 ms on one thread beside a spinning process
(and ~250 ms vs ~30 ms with MKL's batched products, an earlier split). Neither choice is
right everywhere, so :class:`DecodeThreads` measures both.

It starts split, and every so often — or at once when a step takes twice the recent
median — runs ``probe_steps`` steps the other way, then keeps whichever is faster: the
probe's median or the median of the current mode's last ``window`` steps (one slow
step is a hiccup, two of three is a trend). Probes back off while they confirm the
choice, and never cost more than ``max_probe_cost`` of the step time (probing a mode
that took 8x longer waits 8x as many steps). Steps of different batch sizes are
compared as they are: a CPU decode step's time is mostly its weight streaming, about the
same for any small batch, and where the choice matters the modes differ by 1.5x or more.
With one thread available it always answers 1 and measures nothing.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

__all__ = ["DecodeThreads", "available_threads", "in_own_thread"]

T = TypeVar("T")


async def in_own_thread(name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a new thread that ends with it (the loop stays free).

    For loading a model, instead of ``asyncio.to_thread``: a thread that runs parallel
    torch ops on the CPU keeps an OpenMP worker pool for as long as it lives, and an
    executor thread outlives the load. With a second live pool beside the engine
    thread's, libgomp counts more OpenMP threads than cores and cuts every pool's
    spin-wait short, so each parallel op wakes its workers through the kernel: a
    SmolLM2-135M decode step on 2 cores took ~1.5x as long (19.5 vs 29 tokens/s
    through the bot's backend). A thread of its own takes its pool with it; it is
    joined before this returns. Cancelling the caller does not stop ``fn``.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():  # the caller was cancelled meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(cast(T, result))

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # raised in the caller
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop closed while fn ran: nobody is waiting
            pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    result = await done
    await asyncio.to_thread(thread.join)  # its OpenMP pool is gone once it has ended
    return result


def available_threads() -> int:
    """torch's intra-op thread count, capped at the cores this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores))


class DecodeThreads:
    """Chooses 1 or ``threads`` intra-op threads per decode step.

    Args:
        threads: the parallel mode's thread count (<= 1: always one thread).
        probe_every: steps before the first probe, and the shortest interval after.
        max_probe_every: the longest interval probes back off to.
        probe_steps: steps run in the other mode per probe.
        window: recent steps of the current mode compared with a probe.
        max_probe_cost: most of the step time probes may add (0.05: 5%).
    """

    def __init__(self, threads: int, *, probe_every: int = 4, max_probe_every: int = 256,
                 probe_steps: int = 2, window: int = 3, max_probe_cost: float = 0.05) -> None:
        if (probe_every < 1 or max_probe_every < probe_every or probe_steps < 1 or window < 1
                or not 0 < max_probe_cost <= 1):
            raise ValueError("need probe_every, probe_steps, window >= 1, max_probe_every >= "
                             "probe_every and 0 < max_probe_cost <= 1")
        self.threads = max(1, threads)
        self.probe_every, self.max_probe_every = probe_every, max_probe_every
        self.probe_steps, self.window, self.max_probe_cost = probe_steps, window, max_probe_cost
        self.current = self.threads  # the mode in use between probes
        self._recent: deque[float] = deque(maxlen=window)  # current mode's step times
        self._probe: list[float] = []
        self._probe_left = 0
        self._interval = self._until_probe = probe_every
        self.steps: dict[int, int] = dict.fromkeys((1, self.threads), 0)  # recorded, per mode

    @property
    def probing(self) -> bool:
        return self._probe_left > 0

    def choose(self) -> int:
        """Thread count for the next decode step."""
        if self.threads == 1:
            return 1
        return self._other() if self._probe_left else self.current

    def record(self, threads: int, seconds: float) -> None:
        """Report how long a step on ``threads`` threads (from :meth:`choose`) took."""
        if threads in self.steps:
            self.steps[threads] += 1
        if self.threads == 1:
            return
        if self._probe_left:
            if threads == self._other():
                self._probe.append(seconds)
                self._probe_left -= 1
                if not self._probe_left:
                    self._decide()
            return
        if threads != self.current:
            return
        recent = self._recent
        slow = len(recent) == recent.maxlen and seconds > 2 * statistics.median(recent)
        recent.append(seconds)
        self._until_probe -= 1
        if slow or self._until_probe <= 0:
            self._probe_left, self._probe = self.probe_steps, []

    def _other(self) -> int:
        return 1 if self.current == self.threads else self.threads

    def _decide(self) -> None:
        probe, mine = statistics.median(self._probe), statistics.median(self._recent or [math.inf])
        if probe < mine:
            self.current = self._other()
            self._recent = deque(self._probe, maxlen=self.window)
            self._interval = self.probe_every
            probe, mine = mine, probe  # from now on the old mode is the one probed
        else:
            self._interval = min(2 * self._interval, self.max_probe_every)
        # Probing costs probe_steps * (probe - mine) extra: keep it under max_probe_cost.
        excess = max(0.0, probe / mine - 1) if mine > 0 else 0.0
        cost_steps = self.probe_steps * excess / self.max_probe_cost
        self._until_probe = max(self._interval, math.ceil(min(cost_steps, 1e6)))
