"""The CPU decode thread policy (engine.cpu_threads): pure Python, fed fake step times."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading

import pytest
import torch

from engine.cpu_threads import DecodeThreads, available_threads, in_own_thread

QUIET = {1: 0.028, 2: 0.018}  # SmolLM2-135M step seconds on a quiet 2-core EPYC
BUSY = {1: 0.030, 2: 0.250}  # another process holding one of the two cores


def _run(policy: DecodeThreads, cost: dict[int, float], steps: int) -> list[int]:
    """Drive ``steps`` steps where a step on ``n`` threads takes ``cost[n]`` seconds."""
    chosen = []
    for _ in range(steps):
        n = policy.choose()
        chosen.append(n)
        policy.record(n, cost[n])
    return chosen


def _probe_starts(chosen: list[int], mode: int) -> list[int]:
    return [i for i, n in enumerate(chosen) if n == mode and (i == 0 or chosen[i - 1] != mode)]


def test_one_thread_available_means_one_thread_always() -> None:
    policy = DecodeThreads(1)
    assert _run(policy, {1: 0.03}, 50) == [1] * 50
    assert DecodeThreads(0).choose() == 1


def test_probes_back_off_while_the_split_stays_faster() -> None:
    # Without the cost cap the interval doubles: 4, 8, 16, 16, ...
    policy = DecodeThreads(2, probe_every=4, max_probe_every=16, max_probe_cost=1.0)
    chosen = _run(policy, QUIET, 120)
    starts = _probe_starts(chosen, 1)
    assert policy.current == 2 and starts[0] == 4
    assert [b - a for a, b in itertools.pairwise(starts)][:4] == [10, 18, 18, 18]
    assert all(chosen[s:s + 2] == [1, 1] for s in starts[:-1])  # probe_steps each


def test_probes_cost_at_most_max_probe_cost() -> None:
    policy = DecodeThreads(2)
    chosen = _run(policy, QUIET, 2000)
    spent = sum(QUIET[n] for n in chosen)
    assert policy.current == 2
    assert spent <= 1.05 * 2000 * QUIET[2]


def test_one_slow_step_is_a_hiccup_not_a_reason_to_switch() -> None:
    policy = DecodeThreads(2)
    _run(policy, QUIET, 100)
    assert _run(policy, {1: 0.028, 2: 0.05}, 1) == [2]  # the hiccup starts a probe...
    assert _run(policy, QUIET, 3) == [1, 1, 2]  # ...which keeps the split
    assert policy.current == 2


def test_switches_when_a_core_is_taken_and_back_when_it_is_free() -> None:
    policy = DecodeThreads(2)
    _run(policy, QUIET, 100)
    # Two slow split steps in three: a trend. Each slow step probes one thread at once.
    assert _run(policy, BUSY, 6) == [2, 1, 1, 2, 1, 1]
    assert policy.current == 1
    # Probing the split now costs 8x a step: it waits long enough to stay under 5%.
    chosen = _run(policy, BUSY, 1000)
    assert policy.current == 1
    assert sum(BUSY[n] for n in chosen) <= 1.05 * 1000 * BUSY[1]
    # The core is free again: the next probe finds the split faster and switches back.
    _run(policy, QUIET, 300)
    assert policy.current == 2


def test_changing_batch_sizes_do_not_confuse_it() -> None:
    """Users come and go: step times vary with the batch, the better mode still wins."""
    def drive(policy: DecodeThreads, base: dict[int, float], steps: int) -> list[int]:
        chosen = []
        for i in range(steps):
            n = policy.choose()
            chosen.append(n)
            policy.record(n, base[n] + 0.001 * (i % 5))  # batch 1..5: +1 ms per sequence
        return chosen

    policy = DecodeThreads(2)
    chosen = drive(policy, QUIET, 500)
    assert policy.current == 2 and chosen.count(1) <= 0.08 * 500
    drive(policy, BUSY, 20)
    assert policy.current == 1
    drive(policy, QUIET, 400)
    assert policy.current == 2


def test_records_of_unknown_modes_are_ignored_and_bad_settings_raise() -> None:
    policy = DecodeThreads(2)
    policy.record(7, 1.0)  # not a mode it chose: nothing to learn
    assert policy.choose() == 2
    policy.record(2, 0.0)  # a zero time must not divide by zero later
    assert _run(policy, {1: 0.0, 2: 0.0}, 20)
    for bad in ({"probe_every": 0}, {"probe_steps": 0}, {"window": 0},
                {"probe_every": 8, "max_probe_every": 4}, {"max_probe_cost": 0.0}):
        with pytest.raises(ValueError):
            DecodeThreads(2, **bad)


def test_available_threads_is_capped_by_the_cores_we_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
        assert available_threads() == 1
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
        assert available_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- in_own_thread: a model loads in a thread that ends with the load, so no second
# OpenMP pool stays beside the engine thread's.


async def test_in_own_thread_runs_in_a_thread_that_has_ended_when_it_returns() -> None:
    seen: list[threading.Thread] = []

    def load(x: int, *, y: int) -> int:
        seen.append(threading.current_thread())
        torch.ones(64, 64) @ torch.ones(64, 64)  # a torch op in that thread
        return x + y

    assert await in_own_thread("engine-load", load, 2, y=3) == 5
    (thread,) = seen
    assert thread.name == "engine-load"
    assert thread is not threading.main_thread()
    assert not thread.is_alive()  # its OpenMP pool went with it
    assert thread not in threading.enumerate()


async def test_in_own_thread_raises_what_the_function_raised() -> None:
    def broken() -> None:
        raise FileNotFoundError("no model at /nowhere")

    with pytest.raises(FileNotFoundError, match="/nowhere"):
        await in_own_thread("engine-load", broken)


async def test_in_own_thread_cancelled_caller_leaves_the_loop_clean() -> None:
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "loaded"

    task = asyncio.create_task(in_own_thread("engine-load", slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()  # the load ends later; its result has nowhere to go, and no error
    assert await asyncio.to_thread(finished.wait, 5)
    await asyncio.sleep(0.01)  # the thread's call back into the loop runs harmlessly
