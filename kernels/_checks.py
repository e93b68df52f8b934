"""Input validation shared by the Triton launchers and the PyTorch references.

Every public kernel validates its inputs the same way on both backends, so a mis-shaped call
fails with the same ``ValueError`` on a CPU box as on the GPU. Checks are host-side only
(shapes, dtypes, strides, devices): nothing here reads tensor values, because that would
synchronise the GPU and break CUDA-graph capture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "FLOAT_DTYPES",
    "INDEX_DTYPES",
    "REFERENCE_FLOAT_DTYPES",
    "check_eps",
    "check_same_device",
    "check_tensor",
    "validate_fused_add_rms_norm",
    "validate_rms_norm",
    "validate_rope",
    "validate_skinny_linear",
    "validate_swiglu",
]

SKINNY_MAX_ROWS = 8  # rows taken by kernels.skinny_linear (batch-1..8 decode)

# What the Triton kernels load and store; math inside is always fp32.
FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
# The references also take fp64 so tests can build an exact-ish ground truth.
REFERENCE_FLOAT_DTYPES: tuple[torch.dtype, ...] = (*FLOAT_DTYPES, torch.float64)
INDEX_DTYPES: tuple[torch.dtype, ...] = (torch.int32, torch.int64)


def check_tensor(
    op: str,
    name: str,
    t: object,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    contiguous: bool = True,
) -> torch.Tensor:
    """Validate one tensor argument and return it (typed as a Tensor).

    Args:
        op: Public kernel name, used as the message prefix.
        name: Argument name.
        t: The value to check.
        ndim: Exact number of dimensions required, if any.
        min_ndim: Minimum number of dimensions, if any.
        dtypes: Allowed dtypes, if restricted.
        contiguous: Require a contiguous (row-major, dense) tensor.

    Raises:
        ValueError: If any requirement does not hold.
    """
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if min_ndim is not None and t.dim() < min_ndim:
        raise ValueError(
            f"{op}: {name} must have at least {min_ndim} dims, got shape {tuple(t.shape)}"
        )
    if dtypes is not None and t.dtype not in dtypes:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise ValueError(f"{op}: {name} has dtype {t.dtype}, expected one of: {allowed}")
    if contiguous and not t.is_contiguous():
        raise ValueError(
            f"{op}: {name} must be contiguous (shape {tuple(t.shape)}, strides {t.stride()}); "
            "call .contiguous() first"
        )
    return t


def check_same_device(op: str, **tensors: torch.Tensor) -> None:
    """Raise ValueError unless all tensors live on one device."""
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{n}={d}" for n, d in devices.items())
        raise ValueError(f"{op}: all tensors must be on one device, got {listing}")


def check_eps(op: str, eps: object) -> float:
    """Validate an epsilon: a finite, non-negative real number."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ValueError(f"{op}: eps must be a float, got {type(eps).__name__}")
    value = float(eps)
    if not (value >= 0.0 and value != float("inf")):
        raise ValueError(f"{op}: eps must be finite and >= 0, got {eps!r}")
    return value


def validate_rms_norm(
    op: str, x: object, weight: object, eps: object, dtypes: Sequence[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Checks for ``rms_norm``: x ``[..., H]``, weight ``[H]``, same device; returns them."""
    x = check_tensor(op, "x", x, min_ndim=1, dtypes=dtypes)
    weight = check_tensor(op, "weight", weight, ndim=1, dtypes=dtypes)
    hidden = x.shape[-1]
    if hidden == 0:
        raise ValueError(f"{op}: hidden size (last dim of x) must be > 0")
    if weight.shape[0] != hidden:
        raise ValueError(
            f"{op}: weight has {weight.shape[0]} elements but x's hidden size is {hidden}"
        )
    check_same_device(op, x=x, weight=weight)
    return x, weight, check_eps(op, eps)


def validate_fused_add_rms_norm(
    op: str,
    x: object,
    residual: object,
    weight: object,
    eps: object,
    dtypes: Sequence[torch.dtype],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Checks for ``fused_add_rms_norm``: x and residual alike, distinct memory; returns them."""
    x, weight, eps_f = validate_rms_norm(op, x, weight, eps, dtypes)
    residual = check_tensor(op, "residual", residual, dtypes=dtypes)
    if residual.shape != x.shape:
        raise ValueError(
            f"{op}: residual shape {tuple(residual.shape)} != x shape {tuple(x.shape)}"
        )
    if residual.dtype != x.dtype:
        raise ValueError(f"{op}: residual dtype {residual.dtype} != x dtype {x.dtype}")
    check_same_device(op, x=x, residual=residual, weight=weight)
    if x.numel() and x.data_ptr() == residual.data_ptr():
        raise ValueError(f"{op}: x and residual must not share memory (both are written)")
    return x, residual, weight, eps_f


def validate_rope(
    op: str,
    q: object,
    k: object,
    positions: object,
    cos_sin: object,
    dtypes: Sequence[torch.dtype],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checks for ``apply_rope_``: q ``[T,Hq,D]``, k ``[T,Hk,D]``, positions ``[T]``,
    cos_sin ``[P, D]``, D even, one device, q and k distinct; returns them."""
    q = check_tensor(op, "q", q, ndim=3, dtypes=dtypes)
    k = check_tensor(op, "k", k, ndim=3, dtypes=dtypes)
    positions = check_tensor(op, "positions", positions, ndim=1, dtypes=INDEX_DTYPES)
    cos_sin = check_tensor(op, "cos_sin", cos_sin, ndim=2, dtypes=dtypes)
    tokens, _, head_dim = q.shape
    if k.shape[0] != tokens or positions.shape[0] != tokens:
        raise ValueError(
            f"{op}: token counts differ: q {tokens}, k {k.shape[0]}, positions {positions.shape[0]}"
        )
    if k.shape[2] != head_dim:
        raise ValueError(f"{op}: head_dim differs: q {head_dim}, k {k.shape[2]}")
    if head_dim == 0 or head_dim % 2:
        raise ValueError(f"{op}: head_dim must be even and > 0, got {head_dim}")
    if q.shape[1] == 0 or k.shape[1] == 0:
        raise ValueError(f"{op}: q and k need at least one head, got {q.shape[1]}, {k.shape[1]}")
    if q.dtype != k.dtype:
        raise ValueError(f"{op}: q dtype {q.dtype} != k dtype {k.dtype}")
    if cos_sin.shape[1] != head_dim or cos_sin.shape[0] == 0:
        raise ValueError(
            f"{op}: cos_sin must be [max_positions, {head_dim}], got {tuple(cos_sin.shape)}"
        )
    check_same_device(op, q=q, k=k, positions=positions, cos_sin=cos_sin)
    if q.numel() and q.data_ptr() == k.data_ptr():
        raise ValueError(f"{op}: q and k must not share memory (both are rotated in place)")
    return q, k, positions, cos_sin


def validate_swiglu(op: str, gate_up: object, dtypes: Sequence[torch.dtype]) -> torch.Tensor:
    """Checks for ``swiglu``: gate_up ``[..., 2*I]`` with I > 0; returns it."""
    gate_up = check_tensor(op, "gate_up", gate_up, min_ndim=1, dtypes=dtypes)
    width = gate_up.shape[-1]
    if width == 0 or width % 2:
        raise ValueError(f"{op}: last dim of gate_up must be 2*I with I > 0, got {width}")
    return gate_up


def validate_skinny_linear(
    op: str,
    x: object,
    weight: object,
    bias: object,
    dtypes: Sequence[torch.dtype],
    *,
    paired: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Checks for ``skinny_linear`` (``paired``: ``skinny_linear_swiglu``, whose weight is
    ``[2I, K]``): x ``[M, K]`` with ``M <= SKINNY_MAX_ROWS`` and ``K > 0``, weight
    ``[N, K]`` and bias ``[N]`` or None, all in x's dtype and on x's device."""
    x = check_tensor(op, "x", x, ndim=2, dtypes=dtypes)
    weight = check_tensor(op, "weight", weight, ndim=2, dtypes=(x.dtype,))
    if x.shape[0] > SKINNY_MAX_ROWS:
        raise ValueError(f"{op}: x has {x.shape[0]} rows, at most {SKINNY_MAX_ROWS} are taken")
    if x.shape[1] == 0 or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: x is {tuple(x.shape)} and weight {tuple(weight.shape)}: "
            "both need the same K > 0"
        )
    if paired and weight.shape[0] % 2:
        raise ValueError(f"{op}: weight must be [gate; up] with 2*I rows, got {weight.shape[0]}")
    if bias is not None:
        bias = check_tensor(op, "bias", bias, ndim=1, dtypes=(x.dtype,))
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias must be [{weight.shape[0]}], got {tuple(bias.shape)}")
        check_same_device(op, x=x, weight=weight, bias=bias)
    else:
        check_same_device(op, x=x, weight=weight)
    return x, weight, bias
