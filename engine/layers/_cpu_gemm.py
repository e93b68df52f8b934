"""oneDNN's float32 ``x W^T + b`` on the CPU, where this torch build has it.

torch's CPU ``F.linear`` calls MKL's ``sgemm``, which on the 2-core AMD EPYC that botkit
is measured on does not pick its fast kernels: oneDNN's product, the op Inductor's CPU
backend emits (``torch.ops.mkldnn._linear_pointwise``, dense weights of either layout,
nothing packed or copied), is ~2x faster from 2 rows to prefill sizes (ms, MKL vs
oneDNN: 3072x576 weight, 8 rows 0.34 vs 0.11, 512 rows 9.0 vs 4.3; 49152x576 LM head,
8 rows 10.7 vs 4.4, 128 rows 44 vs 19) and on par for one row. Its error against an
fp64 product measured 0.6-3x MKL's per product (the largest at K = 2048); the engine's
parity tests hold whole models to the 2x rule against transformers.

The op is private to torch, so it is probed once, on first use, with a small product
checked against ``F.linear``; without it (or off float32 CPU tensors) ``F.linear`` runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["cpu_linear_op", "linear"]

LinearFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@functools.cache
def cpu_linear_op() -> LinearFn | None:
    """oneDNN's ``(x, weight, bias) -> x W^T + b`` if it works in this build, else None."""
    try:
        if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
            return None
        op = torch.ops.mkldnn._linear_pointwise
        x, w = torch.ones(2, 3), torch.arange(12, dtype=torch.float32).view(4, 3)
        if not torch.equal(op(x, w, None, "none", [], ""), F.linear(x, w)):
            return None
    except (AttributeError, RuntimeError, TypeError):  # missing, unbuilt, or another signature
        return None

    def run(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        out: torch.Tensor = op(x, weight, bias, "none", [], "")
        return out

    return run


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN for float32 CPU tensors."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32:
        op = cpu_linear_op()
        if op is not None:
            return op(x, weight, bias)
    return F.linear(x, weight, bias)
