"""Linear layers, including the merged projections that load from separate HF weights.

HF checkpoints store q/k/v and gate/up as separate matrices; we run them as one matmul
each (fewer kernel launches per layer, which is what batch-1 decode is bound by). Each
parameter carries a ``weight_loader(param, loaded, shard_id)`` that copies one HF tensor
into its slice of the merged parameter (the nano-vllm scheme).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

import kernels
from engine.layers._cpu_gemm import linear

__all__ = [
    "Linear",
    "MergedLinear",
    "QKVLinear",
    "ShardId",
    "WeightLoader",
    "default_weight_loader",
    "get_weight_loader",
    "set_weight_loader",
    "use_skinny_kernels",
]

ShardId = str | int
WeightLoader = Callable[[nn.Parameter, torch.Tensor, ShardId | None], None]


def _copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    if tuple(dst.shape) != tuple(src.shape):
        raise ValueError(f"shape mismatch: expected {tuple(dst.shape)}, got {tuple(src.shape)}")
    if dst.is_floating_point() and not src.is_floating_point():
        # copy_ would cast int8/int32/bool codes to floats: a quantized or damaged
        # checkpoint would load as garbage weights without a word.
        raise ValueError(f"dtype {src.dtype} is not a floating-point type (float weights expected)")
    dst.copy_(src)  # casts dtype and moves device


def default_weight_loader(
    param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
) -> None:
    """Copy a whole checkpoint tensor into ``param`` (shapes must match)."""
    if shard_id is not None:
        raise ValueError(f"parameter is not merged but got shard {shard_id!r}")
    _copy_into(param.data, loaded)


def set_weight_loader(param: nn.Parameter, loader: WeightLoader) -> None:
    """Attach a weight loader to a parameter."""
    setattr(param, "weight_loader", loader)  # noqa: B010 - Parameter has no typed slot for it


def get_weight_loader(param: nn.Parameter) -> WeightLoader:
    """The parameter's weight loader, or :func:`default_weight_loader`."""
    loader: WeightLoader = getattr(param, "weight_loader", default_weight_loader)
    return loader


def _param(*shape: int, dtype: torch.dtype) -> nn.Parameter:
    # torch.empty: weights are always loaded afterwards, so skip initialisation cost.
    return nn.Parameter(torch.empty(*shape, dtype=dtype), requires_grad=False)


class Linear(nn.Module):
    """``y = x W^T + b`` with ``W`` [out, in]: cuBLAS on CUDA, oneDNN for float32 on the CPU
    (``engine.layers._cpu_gemm``), else ``F.linear``; with ``skinny`` set (see
    :func:`use_skinny_kernels`), steps of at most ``kernels.SKINNY_MAX_ROWS`` tokens run
    ``kernels.skinny_linear``."""

    # Off unless the engine asks (EngineConfig.skinny_kernels): a class default, so
    # modules built on the meta device or by tests need no argument.
    skinny: bool = False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _param(out_features, in_features, dtype=dtype)
        self.bias = _param(out_features, dtype=dtype) if bias else None
        for p in self._own_params():
            set_weight_loader(p, self.weight_loader)

    def _own_params(self) -> list[nn.Parameter]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        """Load a whole tensor (no shards)."""
        default_weight_loader(param, loaded, shard_id)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[T, in] -> [T, out]."""
        if self.skinny and x.shape[0] <= kernels.SKINNY_MAX_ROWS:
            return kernels.skinny_linear(x.contiguous(), self.weight, self.bias)
        return linear(x, self.weight, self.bias)


class MergedLinear(Linear):
    """Several linears sharing an input, stacked along the output dim (e.g. gate + up).

    Shard ``i`` (an int) fills rows ``sum(output_sizes[:i]) : sum(output_sizes[:i+1])``.
    """

    def __init__(
        self,
        in_features: int,
        output_sizes: Sequence[int],
        *,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.output_sizes = list(output_sizes)
        super().__init__(in_features, sum(self.output_sizes), bias=bias, dtype=dtype)

    def shard_range(self, shard_id: ShardId) -> tuple[int, int]:
        """(row offset, rows) of a shard in the merged output."""
        if not isinstance(shard_id, int) or not 0 <= shard_id < len(self.output_sizes):
            raise ValueError(f"unknown shard {shard_id!r} for {len(self.output_sizes)} shards")
        return sum(self.output_sizes[:shard_id]), self.output_sizes[shard_id]

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        """Copy one HF tensor into its rows of the merged parameter."""
        if shard_id is None:
            default_weight_loader(param, loaded)
            return
        offset, rows = self.shard_range(shard_id)
        _copy_into(param.data.narrow(0, offset, rows), loaded)


class QKVLinear(MergedLinear):
    """The q, k and v projections as one matmul; shards are ``"q"``, ``"k"``, ``"v"``."""

    _SHARDS = ("q", "k", "v")

    def __init__(
        self,
        hidden_size: int,
        head_dim: int,
        num_heads: int,
        num_kv_heads: int,
        *,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.q_size = num_heads * head_dim
        self.kv_size = num_kv_heads * head_dim
        super().__init__(
            hidden_size, [self.q_size, self.kv_size, self.kv_size], bias=bias, dtype=dtype
        )

    def shard_range(self, shard_id: ShardId) -> tuple[int, int]:
        """(row offset, rows) of ``"q"``, ``"k"`` or ``"v"``."""
        if shard_id not in self._SHARDS:
            raise ValueError(f"unknown qkv shard {shard_id!r}; expected 'q', 'k' or 'v'")
        return super().shard_range(self._SHARDS.index(str(shard_id)))


def use_skinny_kernels(model: nn.Module, enabled: bool = True) -> int:
    """Run every :class:`Linear` of ``model`` on ``kernels.skinny_linear`` for steps of at
    most ``kernels.SKINNY_MAX_ROWS`` tokens (and MLPs that check ``skinny`` on the fused
    linear+SwiGLU). Set before CUDA graphs are captured: a graph keeps the kernels it was
    captured with. Layers whose weight is not row-major (the CPU decoders' column-major
    layout, ``use_column_major_weights``) keep their product. Returns how many layers
    changed.
    """
    layers = [
        module
        for module in model.modules()
        if isinstance(module, Linear) and module.weight.is_contiguous()
    ]
    for layer in layers:
        layer.skinny = enabled
    return len(layers)
