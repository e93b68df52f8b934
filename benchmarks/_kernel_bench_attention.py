"""Attention and KV-cache rows for benchmarks/kernels.py (through the public kernels API).

The kernels are imported lazily inside each function, so the rest of the benchmark runs even
where an attention kernel is missing or broken (its rows then carry the error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._kernel_bench import Bench, Model

__all__ = [
    "bench_decode",
    "bench_prefill",
    "bench_rope_and_cache",
    "bench_varlen",
    "bench_write_kv_cache",
]

PAGE = 16


QKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _sdpa(backend: str | None, qkv: QKV, **kw: Any) -> Callable[[], Any]:
    """SDPA on [B, H, S, D] tensors, restricted to one backend (None: torch's choice)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = qkv
    if backend is None:
        return lambda: F.scaled_dot_product_attention(q, k, v, **kw)
    chosen = getattr(SDPBackend, backend)

    def run() -> torch.Tensor:
        with sdpa_kernel([chosen]):
            return F.scaled_dot_product_attention(q, k, v, **kw)

    return run


def _builtin_sdpa(b: Bench, qkv: QKV, **kw: Any) -> dict[str, Callable[[], Any]]:
    if not b.cuda:
        return {"builtin SDPA (cpu)": _sdpa(None, qkv, **kw)}
    return {
        "SDPA flash": _sdpa("FLASH_ATTENTION", qkv, **kw),
        "SDPA cuDNN": _sdpa("CUDNN_ATTENTION", qkv, **kw),
    }


def _attn_eager(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool
) -> torch.Tensor:
    """Textbook attention on [B, H, S, D] (scores materialised in fp32)."""
    s = (q @ k.transpose(-1, -2)).float() * scale
    if causal:
        n = s.shape[-1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=s.device).triu(1), -torch.inf)
    return s.softmax(-1).to(q.dtype) @ v


def _paged_cache(b: Bench, batch: int, ctx: int, m: Model) -> tuple[torch.Tensor, ...]:
    """Random K/V pages, a shuffled block table and equal context lengths."""
    per_seq = -(-ctx // PAGE)
    num_blocks = batch * per_seq
    k_cache = b.randn(num_blocks, PAGE, m.kv_heads, m.head_dim)
    v_cache = b.randn(num_blocks, PAGE, m.kv_heads, m.head_dim)
    tables = torch.randperm(num_blocks, device=b.device).view(batch, per_seq).to(torch.int32)
    lens = torch.full((batch,), ctx, dtype=torch.int32, device=b.device)
    return k_cache, v_cache, tables, lens


def _gather(cache: torch.Tensor, tables: torch.Tensor, ctx: int) -> torch.Tensor:
    """Paged cache -> contiguous [B, Hk, ctx, D]."""
    batch = tables.shape[0]
    dense = cache[tables.long()].reshape(batch, -1, *cache.shape[2:])[:, :ctx]
    return dense.transpose(1, 2).contiguous()


def _kv_eager(
    k: torch.Tensor, v: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, slots: torch.Tensor
) -> None:
    kc.view(-1, *kc.shape[2:]).index_copy_(0, slots, k)
    vc.view(-1, *vc.shape[2:]).index_copy_(0, slots, v)


def _kv_shape(b: Bench, m: Model, t: int) -> None:
    import kernels

    num_blocks = -(-t // PAGE) + 4
    kc = b.randn(num_blocks, PAGE, m.kv_heads, m.head_dim)
    vc = torch.empty_like(kc)
    k, v = b.randn(t, m.kv_heads, m.head_dim), b.randn(t, m.kv_heads, m.head_dim)
    slots = torch.randperm(num_blocks * PAGE, device=b.device)[:t]
    variants = {
        "ours": b.ours(lambda: kernels.write_kv_cache(k, v, kc, vc, slots)),
        "eager index_copy_": lambda: _kv_eager(k, v, kc, vc, slots),
        "compile": b.compiled("kv", _kv_eager, k, v, kc, vc, slots),
    }
    moved = 4 * k.numel() * k.element_size()
    b.run_variants(
        "write_kv_cache",
        m.name,
        f"T={t} Hk={m.kv_heads} D={m.head_dim}",
        variants,
        bytes_moved=moved,
        tokens=t,
    )


def bench_write_kv_cache(b: Bench, models: Sequence[Model]) -> None:
    """Scatter T new tokens' K/V into random cache slots."""
    for m in models:
        for t in b.tokens:
            _kv_shape(b, m, t)


def _rope_cache_unfused(
    qkv: torch.Tensor,
    pos: torch.Tensor,
    cs: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    slots: torch.Tensor,
    m: Model,
) -> torch.Tensor:
    """What a layer ran before the fusion: three copies, rotation, cache write."""
    import kernels

    heads = qkv.view(qkv.shape[0], -1, m.head_dim)
    q = heads[:, : m.heads].contiguous()
    k = heads[:, m.heads : m.heads + m.kv_heads].contiguous()
    v = heads[:, m.heads + m.kv_heads :].contiguous()
    kernels.apply_rope_(q, k, pos, cs)
    kernels.write_kv_cache(k, v, kc, vc, slots)
    return q


def _rope_cache_shape(b: Bench, m: Model, t: int) -> None:
    import kernels

    num_blocks = -(-t // PAGE) + 4
    kc = b.randn(num_blocks, PAGE, m.kv_heads, m.head_dim)
    vc = torch.empty_like(kc)
    qkv = b.randn(t, (m.heads + 2 * m.kv_heads) * m.head_dim)
    pos = torch.randint(0, 32768, (t,), device=b.device)
    cs = kernels.rope_cos_sin(m.head_dim, 32768, 1e6, None, device=b.device)
    slots = torch.randperm(num_blocks * PAGE, device=b.device)[:t]
    variants = {
        "ours": b.ours(lambda: kernels.rope_and_cache(qkv, pos, cs, kc, vc, slots, m.heads)),
        "unfused (3 copies, rope, write)": b.ours(
            lambda: _rope_cache_unfused(qkv, pos, cs, kc, vc, slots, m)
        ),
    }
    # qkv read once, q and the cache rows written.
    moved = 2 * qkv.numel() * qkv.element_size()
    b.run_variants(
        "rope_and_cache",
        m.name,
        f"T={t} Hq={m.heads} Hk={m.kv_heads} D={m.head_dim}",
        variants,
        bytes_moved=moved,
        tokens=t,
    )


def bench_rope_and_cache(b: Bench, models: Sequence[Model]) -> None:
    """RoPE + cache write from the fused projection, against the five launches it replaces."""
    for m in models:
        for t in b.tokens:
            _rope_cache_shape(b, m, t)


def _prefill_shape(b: Bench, m: Model, batch: int, seq: int) -> None:
    import kernels

    kc, vc, tables, lens = _paged_cache(b, batch, seq, m)
    q = b.randn(batch * seq, m.heads, m.head_dim)
    cu = torch.arange(batch + 1, device=b.device, dtype=torch.int32) * seq
    scale = m.head_dim**-0.5
    group = m.heads // m.kv_heads
    qb = q.view(batch, seq, m.heads, m.head_dim).transpose(1, 2).contiguous()
    kb = _gather(kc, tables, seq).repeat_interleave(group, dim=1)  # GQA expanded for SDPA
    vb = _gather(vc, tables, seq).repeat_interleave(group, dim=1)
    variants: dict[str, Callable[[], Any] | None] = {
        "ours": b.ours(
            lambda: kernels.prefill_attention(q, kc, vc, cu, lens, tables, scale, causal=True)
        ),
        **_builtin_sdpa(b, (qb, kb, vb), is_causal=True, scale=scale),
        "eager": lambda: _attn_eager(qb, kb, vb, scale, True),
        "compile": b.compiled("prefill", _attn_eager, qb, kb, vb, scale, True),
    }
    flops = 2.0 * batch * seq * seq * m.heads * m.head_dim  # 4*S^2*H*D, halved: causal
    b.run_variants(
        "prefill_attention",
        m.name,
        f"B={batch} S={seq} Hq={m.heads} Hk={m.kv_heads} D={m.head_dim}",
        variants,
        flops=flops,
        params={"B": batch, "S": seq, "D": m.head_dim},
    )


def bench_prefill(b: Bench, models: Sequence[Model]) -> None:
    """Causal prefill over a paged cache; builtins get contiguous (GQA-expanded) K/V."""
    shapes = [(1, 64)] if b.smoke else [(4, 2048), (1, 8192)]
    for m in models:
        for batch, seq in shapes:
            _prefill_shape(b, m, batch, seq)


def _decode_eager(
    q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, tables: torch.Tensor, scale: float
) -> torch.Tensor:
    """Gather pages then grouped attention for one query per sequence."""
    batch, heads, dim = q.shape
    k = kc[tables.long()].flatten(1, 2)  # [B, ctx, Hk, D]
    v = vc[tables.long()].flatten(1, 2)
    qg = q.view(batch, k.shape[2], heads // k.shape[2], dim)  # [B, Hk, G, D]
    p = (torch.einsum("bhgd,bthd->bhgt", qg, k).float() * scale).softmax(-1).to(q.dtype)
    return torch.einsum("bhgt,bthd->bhgd", p, v).reshape(batch, heads, dim)


def _decode_shape(b: Bench, m: Model, batch: int, ctx: int) -> None:
    import kernels

    kc, vc, tables, lens = _paged_cache(b, batch, ctx, m)
    q = b.randn(batch, m.heads, m.head_dim)
    scale = m.head_dim**-0.5
    kg, vg = _gather(kc, tables, ctx), _gather(vc, tables, ctx)  # [B, Hk, ctx, D]
    qb = q.unsqueeze(2)  # [B, Hq, 1, D]
    variants = {
        "ours": b.ours(lambda: kernels.decode_attention(q, kc, vc, tables, lens, scale)),
        "SDPA gathered": lambda: F.scaled_dot_product_attention(
            qb, kg, vg, scale=scale, enable_gqa=True
        ),
        "eager gather+attn": lambda: _decode_eager(q, kc, vc, tables, scale),
        "compile": b.compiled("decode", _decode_eager, q, kc, vc, tables, scale),
    }
    b.run_variants(
        "decode_attention",
        m.name,
        f"B={batch} ctx={ctx} Hq={m.heads} Hk={m.kv_heads} D={m.head_dim}",
        variants,
        bytes_moved=2 * kc.numel() * kc.element_size(),
        tokens=batch,
        notes={"SDPA gathered": "cache gathered outside the timing"},
        params={"B": batch, "ctx": ctx, "D": m.head_dim},
    )


def bench_decode(b: Bench, models: Sequence[Model]) -> None:
    """Paged decode; the builtin is SDPA over a pre-gathered contiguous cache."""
    shapes = [(2, 64)] if b.smoke else [(1, 2048), (64, 2048), (64, 8192)]
    for m in models:
        for batch, ctx in shapes:
            _decode_shape(b, m, batch, ctx)


def _varlen_shape(b: Bench, batch: int, seq: int, heads: int, dim: int) -> None:
    import kernels

    q, k, v = (b.randn(batch * seq, heads, dim) for _ in range(3))
    cu = torch.arange(batch + 1, device=b.device, dtype=torch.int32) * seq
    scale = dim**-0.5
    qb, kb, vb = (t.view(batch, seq, heads, dim).transpose(1, 2).contiguous() for t in (q, k, v))
    variants: dict[str, Callable[[], Any] | None] = {
        "ours": b.ours(lambda: kernels.varlen_attention(q, k, v, cu, cu, scale, causal=False)),
        **_builtin_sdpa(b, (qb, kb, vb), scale=scale),
        "eager": lambda: _attn_eager(qb, kb, vb, scale, False),
    }
    b.run_variants(
        "varlen_attention",
        "marian-like",
        f"B={batch} S={seq} H={heads} D={dim}",
        variants,
        flops=4.0 * batch * seq * seq * heads * dim,
    )


def bench_varlen(b: Bench) -> None:
    """Encoder self-attention over packed equal-length sequences (Marian-like heads)."""
    for batch, seq in [(2, 16)] if b.smoke else [(8, 512), (32, 256)]:
        _varlen_shape(b, batch, seq, heads=8, dim=64)
