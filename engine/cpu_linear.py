"""CPU matrix-vector products for decode: streamed by ``embedding_bag``, split across cores.

A batch-1 decode product ``y = x W^T`` reads every weight once, so it should run at
memory bandwidth. MKL's ``[1, K] @ [K, N]`` does not: ~25 GB/s on one core of a 2-core
EPYC (where a plain ``sum()`` reads ~40), and it will not use a second core for one row.
With column-major weights (``W^T`` contiguous, ``engine.layers.use_column_major_weights``)
the product is a weighted sum of ``W^T``'s rows, ``y = sum_k x[k] W^T[k, :]``, which is
exactly ``F.embedding_bag(arange(K), W^T, mode="sum", per_sample_weights=x)``: the
embedding kernel (fbgemm's, in torch's x86 builds) streams the rows at ~35-40 GB/s on one
core. Cutting the K rows into P bags (one per thread; embedding_bag runs bags in
parallel) and summing the P partial rows uses both cores.

Measured on SmolLM2-135M (30 layers of qkv/o/gate_up/down + the 49152-row LM head, 538 MB
of fp32 weights streamed from DRAM per token), quiet 2-core EPYC, ms per token:
MKL ``mm`` one thread 24.4; MKL ``bmm`` over two K-halves, two threads 14.2-15.0;
``embedding_bag`` one bag, one thread 16.1-17.0; two bags, two threads 10.7-11.1.

Numerics: each output is a sequential fp32 sum over its bag's rows, the P partial sums
added last; against an fp64 reference the error is no larger than ``F.linear``'s
(measured 6.3e-5 vs 8.4e-5 on the LM head; the tests hold it to the 2x rule). Every bag
is one thread's whole sum whatever the thread count, so the result does not depend on
how many threads run it: the thread count may change from step to step without changing
a logit. Only float32 weights take this path; others (and weights that are not
column-major) make the calls ``F.linear`` makes.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["CpuLinear", "split_parts"]


def split_parts(in_features: int, max_parts: int) -> int:
    """Largest part count ``<= max_parts`` that divides ``in_features`` (1: no split)."""
    for parts in range(max(1, max_parts), 1, -1):
        if in_features % parts == 0:
            return parts
    return 1


@functools.lru_cache(maxsize=64)
def _bag_inputs(in_features: int, parts: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (every row once per batch row) and bag offsets; shared, never written."""
    rows = torch.arange(in_features, dtype=torch.int64).repeat(batch)  # [B*K]
    offsets = torch.arange(0, batch * in_features, in_features // parts, dtype=torch.int64)
    return rows, offsets


class CpuLinear:
    """``y = x W^T + b`` for decode on the CPU, on a view of an existing weight.

    Args:
        weight: ``[out, in]`` parameter (shared, never copied).
        bias: ``[out]`` or None.
        max_parts: split the reduction in up to this many bags, one per thread that may
            run it (1: one bag).
        bags: use the ``embedding_bag`` product where it applies (False: always the
            calls ``F.linear`` makes, bit for bit).
    """

    __slots__ = ("bias", "in_features", "out_features", "parts", "use_bags", "wt")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, max_parts: int,
                 *, bags: bool = True) -> None:
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D [out, in], got {tuple(weight.shape)}")
        self.out_features, self.in_features = weight.shape
        self.wt = weight.t()  # [in, out]; contiguous for column-major weights
        self.bias = bias
        self.use_bags = bags and weight.dtype == torch.float32 and self.wt.is_contiguous()
        self.parts = split_parts(self.in_features, max_parts) if self.use_bags else 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, in]`` contiguous -> ``[B, out]``."""
        if not self.use_bags:  # the very calls F.linear makes
            if self.bias is None:
                return torch.mm(x, self.wt)
            return torch.addmm(self.bias, x, self.wt)
        b = x.shape[0]
        rows, offsets = _bag_inputs(self.in_features, self.parts, b)
        # The op F.embedding_bag(rows, wt, offsets, mode="sum", per_sample_weights=x)
        # calls, without its ~1 us of Python argument checks (121 calls a token).
        y = torch.embedding_bag(self.wt, rows, offsets, False, 0, False, x.reshape(-1),
                                False, None)[0]  # [B*P, out]
        if self.parts > 1:
            y = y.view(b, self.parts, self.out_features).sum(1)
        return y if self.bias is None else y.add_(self.bias)
