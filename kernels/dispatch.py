"""Backend choice for the public kernels: Triton on CUDA tensors, PyTorch reference otherwise.

Order of precedence, decided per call:

1. the innermost active ``force_backend(...)`` context (per thread / asyncio task),
2. the environment variable ``BOTKIT_KERNELS`` (``triton``, ``reference`` or ``auto``),
   read at call time so tests can set it with ``monkeypatch.setenv``,
3. automatic: ``triton`` when the first tensor argument is on a CUDA device and the
   ``triton`` package is installed, else ``reference``.

Forcing ``triton`` on CPU tensors is how the tests run the real kernels under
``TRITON_INTERPRET=1``. Importing this module imports neither triton nor probes devices.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

import torch

from kernels._triton_utils import is_interpreter, triton_available

__all__ = ["BACKENDS", "ENV_VAR", "Backend", "active_override", "force_backend", "select_backend"]

Backend = Literal["triton", "reference"]
BACKENDS: tuple[Backend, ...] = ("triton", "reference")
ENV_VAR = "BOTKIT_KERNELS"

_forced: ContextVar[Backend | None] = ContextVar("botkit_kernels_forced_backend", default=None)


def _validate(name: object, source: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(
            f"{source}: unknown kernel backend {name!r}; expected one of {', '.join(BACKENDS)}"
        )
    return name


@contextlib.contextmanager
def force_backend(name: Backend) -> Iterator[None]:
    """Force every kernel call inside the block onto one backend.

    Args:
        name: ``"triton"`` or ``"reference"``.

    Raises:
        ValueError: If ``name`` is not a known backend.

    Example:
        >>> with force_backend("reference"):
        ...     y = kernels.rms_norm(x, w, 1e-6)
    """
    backend = _validate(name, "force_backend")
    token = _forced.set(backend)
    try:
        yield
    finally:
        _forced.reset(token)


def active_override() -> Backend | None:
    """The backend forced by context or environment, or None when the choice is automatic.

    Raises:
        ValueError: If ``BOTKIT_KERNELS`` holds an unknown value.
    """
    forced = _forced.get()
    if forced is not None:
        return forced
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw in ("", "auto"):
        return None
    return _validate(raw, ENV_VAR)


def select_backend(op: str, tensor: torch.Tensor) -> Backend:
    """Pick the backend for one call of kernel ``op`` whose main input is ``tensor``.

    Raises:
        ValueError: If ``BOTKIT_KERNELS`` holds an unknown value.
        RuntimeError: If Triton is forced but cannot run here (not installed, or CPU tensors
            without ``TRITON_INTERPRET=1``).
    """
    override = active_override()
    if override == "reference":
        return "reference"
    on_cuda = isinstance(tensor, torch.Tensor) and tensor.is_cuda
    if override is None:
        return "triton" if on_cuda and triton_available() else "reference"
    # Triton was asked for explicitly: fail loudly rather than fall back silently.
    if not triton_available():
        raise RuntimeError(f"{op}: the triton backend was forced but triton is not installed")
    # A non-tensor main input goes on to the launcher, whose validation names it
    # (ValueError), as it does on the reference path.
    if isinstance(tensor, torch.Tensor) and not on_cuda and not is_interpreter():
        raise RuntimeError(
            f"{op}: the triton backend was forced for tensors on "
            f"{getattr(tensor, 'device', 'cpu')}; Triton needs CUDA tensors, or "
            "TRITON_INTERPRET=1 set before the kernel modules are imported"
        )
    return "triton"
