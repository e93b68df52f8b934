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

Bags pay for one row only: each row's bags stream the whole weight again. Products of
more rows make the model's own call (``engine.layers._cpu_gemm.linear``: oneDNN's GEMM,
~2x faster than MKL here from 2 rows up). Where that falls back to MKL (a build without
oneDNN), bags serve up to ``BAG_MAX_ROWS`` rows.

Numerics: each output is a sequential fp32 sum over its bag's rows, the P partial sums
added last; against an fp64 reference the error is no larger than ``F.linear``'s
(measured 6.3e-5 vs 8.4e-5 on the LM head; the tests hold it to the 2x rule). Every bag
is one thread's whole sum whatever the thread count, so the result does not depend on
how many threads run it: the thread count may change from step to step without changing
a logit (oneDNN's products of several rows measured thread-invariant too, but it does
not promise it). Only float32 column-major weights take bags; other products make the
model's own call.
"""

from __future__ import annotations

import functools

import torch

from engine.layers._cpu_gemm import cpu_linear_op, linear

__all__ = ["BAG_MAX_ROWS", "CpuLinear", "split_parts"]

# Most rows a product runs as bags when the model's products are MKL's (ms per
# SmolLM2-135M step, bags vs MKL: 8 rows 40.8 vs 46.4, 16 rows 74.2 vs 58.6).
BAG_MAX_ROWS = 8


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
            model's own call, ``engine.layers._cpu_gemm.linear``, bit for bit).
    """

    __slots__ = ("bag_max_rows", "bias", "in_features", "out_features", "parts", "use_bags",
                 "weight", "wt")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, max_parts: int,
                 *, bags: bool = True) -> None:
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D [out, in], got {tuple(weight.shape)}")
        self.out_features, self.in_features = weight.shape
        self.weight = weight
        self.wt = weight.t()  # [in, out]; contiguous for column-major weights
        self.bias = bias
        self.use_bags = bags and weight.dtype == torch.float32 and self.wt.is_contiguous()
        self.parts = split_parts(self.in_features, max_parts) if self.use_bags else 1
        # Bags for one row where the model's products are oneDNN's, for a few under MKL.
        self.bag_max_rows = (1 if cpu_linear_op() else BAG_MAX_ROWS) if self.use_bags else 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, in]`` contiguous -> ``[B, out]``."""
        b = x.shape[0]
        if b > self.bag_max_rows:
            return linear(x, self.weight, self.bias)
        rows, offsets = _bag_inputs(self.in_features, self.parts, b)
        # The op F.embedding_bag(rows, wt, offsets, mode="sum", per_sample_weights=x)
        # calls, without its ~1 us of Python argument checks (121 calls a token).
        y = torch.embedding_bag(self.wt, rows, offsets, False, 0, False, x.reshape(-1),
                                False, None)[0]  # [B*P, out]
        if self.parts > 1:
            y = y.view(b, self.parts, self.out_features).sum(1)
        return y if self.bias is None else y.add_(self.bias)
