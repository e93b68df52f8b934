"""Which GPU a thread launches on.

PyTorch ops follow their tensors' device, but Triton launches on the calling thread's
*current* device (``torch.cuda.current_device()``), which is 0 in every new thread. A
model on ``cuda:1`` would have its kernels launched on GPU 0 with GPU 1 pointers. So each
thread that runs a model (the one building an engine, its worker thread) binds itself to
the model's device first.
"""

from __future__ import annotations

import torch

__all__ = ["bind_thread_to"]


def bind_thread_to(device: torch.device) -> None:
    """Make ``device`` the calling thread's current CUDA device (no-op off CUDA)."""
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
