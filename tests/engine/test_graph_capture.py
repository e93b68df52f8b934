"""``engine.graph_capture.capture_checked`` without a GPU: torch's CUDA stream and graph
API is replaced by stand-ins that run the step on the CPU, so the test sees how a graph is
captured (own stream, thread-local mode, one capture at a time) and that a graph which
does not reproduce its step (as an empty graph captured on the wrong device) or whose
capture raises is refused, leaving the step to run eagerly. Also ``engine.devices``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from engine.graph_capture import CAPTURE_LOCK, capture_checked


class _Stream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.waits = 0

    def wait_stream(self, other: Any) -> None:
        self.waits += 1


class _Graph:
    """Replays by calling ``replay_fn`` (what the test says the graph holds)."""

    replay_fn: Callable[[], Any] = staticmethod(lambda: None)

    def replay(self) -> None:
        type(self).replay_fn()

    def pool(self) -> str:
        return "pool"


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    captures: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def graph(g: Any, pool: Any = None, stream: Any = None,
              capture_error_mode: str = "global") -> Iterator[None]:  # fmt: skip
        captures.append({"pool": pool, "stream": stream, "mode": capture_error_mode,
                         "locked": CAPTURE_LOCK.locked()})  # fmt: skip
        yield

    monkeypatch.setattr(torch.cuda, "Stream", _Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: _Stream())
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _Graph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    yield captures
    _Graph.replay_fn = staticmethod(lambda: None)


def _step(calls: list[str]) -> Callable[[], torch.Tensor]:
    """A step with a static output, like a graph's, that advances a position."""
    out = torch.zeros(4)
    position = [0]

    def step() -> torch.Tensor:
        calls.append(f"step@{position[0]}")
        position[0] += 1
        return out.copy_(torch.arange(4.0) * 2)

    def reset() -> None:
        calls.append("reset")
        position[0] = 0

    step.reset = reset  # type: ignore[attr-defined]
    return step


def test_a_graph_that_reproduces_its_step_is_kept(fake_cuda: list[dict[str, Any]]) -> None:
    calls: list[str] = []
    step = _step(calls)
    _Graph.replay_fn = staticmethod(step)  # the graph holds the step
    captured = capture_checked(step, torch.device("cuda:1"), "earlier-pool",
                               reset=step.reset)  # type: ignore[attr-defined]  # fmt: skip
    assert captured is not None
    graph, out = captured
    assert isinstance(graph, _Graph)
    assert out.tolist() == [0.0, 2.0, 4.0, 6.0]
    (capture,) = fake_cuda
    assert isinstance(capture["stream"], _Stream)  # its own stream, not the process's
    assert capture["mode"] == "thread_local" and capture["pool"] == "earlier-pool"
    assert capture["locked"] and not CAPTURE_LOCK.locked()
    # warm-up x2, each starting at the same position; capture; check replay; rewound
    assert calls == ["step@0", "reset", "step@0", "reset", "step@0", "step@1", "reset"]


def test_an_empty_graph_is_refused(
    fake_cuda: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A graph captured on the wrong device or stream is empty: replaying it leaves the
    output as it was, which the NaN sentinel shows."""
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, "engine.graph_capture"):
        assert capture_checked(_step(calls), torch.device("cuda"), None, what="decode 4") is None
    assert "decode 4 does not reproduce its step" in caplog.text


def test_a_graph_that_computes_something_else_is_refused(fake_cuda: list[dict[str, Any]]) -> None:
    calls: list[str] = []
    step = _step(calls)
    _Graph.replay_fn = staticmethod(lambda: step().add_(1.0))
    assert capture_checked(step, torch.device("cuda"), None) is None


def test_a_capture_that_raises_is_refused_and_the_lock_released(
    fake_cuda: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "graph", broken)
    with caplog.at_level(logging.WARNING, "engine.graph_capture"):
        assert capture_checked(_step([]), torch.device("cuda"), None, what="x") is None
    assert "capture of x failed" in caplog.text and "not permitted" in caplog.text
    assert not CAPTURE_LOCK.locked()


def test_threads_bind_to_an_indexed_gpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Triton launches on the thread's current device: a model on cuda:1 must make it 1."""
    from engine.devices import bind_thread_to

    bound: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", bound.append)
    for device in ("cpu", "cuda", "cuda:1"):
        bind_thread_to(torch.device(device))
    assert bound == [torch.device("cuda:1")]
