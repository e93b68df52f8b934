"""Capturing one CUDA graph safely in a process that serves while others capture.

The chat engine and every translation model capture their graphs when they are built,
before the bot serves, but several may be built one after another in one process, each
with its own worker thread. So a capture here:

* holds a process-wide lock: PyTorch allows one capture at a time per process;
* uses its own stream on the model's device (``torch.cuda.graph``'s default capture
  stream is shared by the process and lives on whichever device made it first) and the
  ``thread_local`` error mode, so work other threads enqueue is not prohibited;
* checks the graph: a replay must reproduce the warm-up step's output. A graph captured
  on the wrong device or stream comes out empty (PyTorch only warns), and replaying it
  would silently return stale results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch.cuda import _POOL_HANDLE

__all__ = ["CAPTURE_LOCK", "capture_checked"]

log = logging.getLogger(__name__)

CAPTURE_LOCK = threading.Lock()


def capture_checked(
    step: Callable[[], torch.Tensor],
    device: torch.device,
    pool: _POOL_HANDLE | None,
    *,
    warmups: int = 2,
    reset: Callable[[], None] = lambda: None,
    what: str = "step",
) -> tuple[torch.cuda.CUDAGraph, torch.Tensor] | None:
    """Warm ``step`` up, capture it, replay once and compare; None (logged) on failure.

    Args:
        step: runs one step on static inputs and returns its output.
        device: the CUDA device the step runs on.
        pool: a graph memory pool to share (``graph.pool()`` of an earlier capture).
        warmups: eager runs first (Triton compiles, allocator warm).
        reset: undoes what a step changes in its own inputs (a position it advances),
            called after the warm-ups and after the check, so each run sees the same.
        what: names the step in the log.
    """
    with CAPTURE_LOCK, torch.cuda.device(device):
        stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        stream.wait_stream(torch.cuda.current_stream(device))
        try:
            with torch.cuda.stream(stream):
                warm = step()
                for _ in range(warmups - 1):
                    reset()
                    warm = step()
                expected = warm.clone()
                reset()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(
                    graph, pool=pool, stream=stream, capture_error_mode="thread_local"
                ):
                    out = step()
                out.fill_(float("nan"))  # an empty graph would leave this
                graph.replay()
                # Loose on purpose: this catches empty or wrong graphs, not last-bit
                # differences a library's kernel choice under capture may make.
                ok = torch.allclose(out, expected, rtol=5e-2, atol=5e-2, equal_nan=True)
                reset()
            torch.cuda.current_stream(device).wait_stream(stream)
        except Exception as exc:  # capture errors come from arbitrary model code
            torch.cuda.current_stream(device).wait_stream(stream)
            log.warning("CUDA graph capture of %s failed, running it eagerly: %s", what, exc)
            return None
        if not ok:
            log.warning("CUDA graph of %s does not reproduce its step; running it eagerly", what)
            return None
        return graph, out
