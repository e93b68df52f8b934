"""Weight memory layout for the CPU matrix-vector products of batch-1 decode."""

from __future__ import annotations

from torch import nn

from engine.layers.embedding import LMHead
from engine.layers.linear import Linear

__all__ = ["use_column_major_weights"]


def use_column_major_weights(model: nn.Module) -> int:
    """Store every projection weight (``Linear``, ``LMHead``) column-major, in place.

    A decode step on the CPU is a chain of matrix-vector products that stream each weight
    once. MKL streams an ``[out, in]`` weight whose transpose is contiguous (``x @ W^T`` as
    a plain ``N``-layout product) at ~25 GB/s on a 2-core EPYC, against ~16 GB/s for the
    row-major layout checkpoints use (SmolLM2-135M shapes, batch 1; prefill-sized
    products are no slower), and the CPU decoder's products (``engine.cpu_linear``)
    stream the contiguous rows of ``W^T`` as views. Logical shapes, parameter names and
    weight loaders are unchanged; a tied LM head re-lays the embedding it shares
    (lookups do not mind).

    Returns:
        How many tensors were re-laid (already column-major ones are skipped).
    """
    done = 0
    for module in model.modules():
        if not isinstance(module, (Linear, LMHead)):
            continue
        weight = module.weight
        if weight.dim() != 2 or not weight.is_contiguous() or weight.shape[1] == 1:
            continue
        weight.data = weight.data.t().contiguous().t()
        done += 1
    return done
