"""Run every attention / KV-cache Triton kernel once on CUDA, for compute-sanitizer.

    compute-sanitizer --tool memcheck python scripts/sanitize_attention.py

Shapes are small but cover the masked edges: empty sequences, partial pages, prefix
extension, GQA groups padded to 16 rows, split-K with empty splits, head_dim 64/128, and
RoPE + cache write with slots and positions out of range.
Exits non-zero if a result disagrees with the PyTorch reference.
"""

from __future__ import annotations

import sys

import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("sanitize_attention: needs a CUDA GPU", file=sys.stderr)
        return 2
    from kernels import rope_cos_sin
    from kernels.decode_attention import decode_attention_triton
    from kernels.kv_cache import write_kv_cache_triton
    from kernels.prefill_attention import prefill_attention_triton
    from kernels.reference_attention import (
        decode_attention_reference,
        prefill_attention_reference,
        varlen_attention_reference,
    )
    from kernels.rope_cache import rope_and_cache_triton
    from kernels.varlen_attention import varlen_attention_triton

    torch.manual_seed(0)
    dev, dt, page, bad = "cuda", torch.bfloat16, 16, 0
    for head_dim, hk, group in ((64, 2, 7), (128, 1, 3)):
        ctx = [0, 1, 17, 31, 33, 257]
        qlens = [0, 1, 17, 5, 33, 200]
        pages = [(n + page - 1) // page for n in ctx]
        nblocks = sum(pages)
        k_cache = torch.zeros(nblocks, page, hk, head_dim, dtype=dt, device=dev)
        v_cache = torch.zeros_like(k_cache)
        table = torch.full((len(ctx), max(pages)), -1, dtype=torch.int32)
        order = torch.randperm(nblocks)
        slots: list[int] = []
        used = 0
        for b, n in enumerate(pages):
            table[b, :n] = order[used : used + n].to(torch.int32)
            used += n
            slots += [int(table[b, p // page]) * page + p % page for p in range(ctx[b])]
        slots.append(-1)  # a padding token that must not be written
        table = table.to(dev)
        k = torch.randn(len(slots), hk, head_dim, device=dev).to(dt)
        v = torch.randn_like(k)
        write_kv_cache_triton(
            k, v, k_cache, v_cache, torch.tensor(slots, dtype=torch.int32, device=dev)
        )
        # The engine's path: RoPE + cache write from the fused projection, with slots and
        # positions outside the cache and the table (skipped / rotated by the identity).
        n = len(slots)
        qkv = torch.randn(n, (hk * group + 2 * hk) * head_dim, device=dev).to(dt)
        table_cs = rope_cos_sin(head_dim, 512, 1e4, None, device=dev)
        pos = torch.randint(0, 512, (n,), device=dev)
        pos[:2] = torch.tensor([-3, 10**6])
        bad_slots = torch.tensor(slots, dtype=torch.int64, device=dev)
        bad_slots[:2] = torch.tensor([nblocks * page + 5, -9])
        k_spare, v_spare = torch.zeros_like(k_cache), torch.zeros_like(v_cache)
        rope_and_cache_triton(qkv, pos, table_cs, k_spare, v_spare, bad_slots, hk * group)
        lens = torch.tensor(ctx, dtype=torch.int32, device=dev)
        cu = torch.tensor(
            [0, *torch.tensor(qlens).cumsum(0).tolist()], dtype=torch.int32, device=dev
        )
        scale = head_dim**-0.5
        q = torch.randn(int(cu[-1]), hk * group, head_dim, device=dev).to(dt)
        for causal in (True, False):
            out = prefill_attention_triton(q, k_cache, v_cache, cu, lens, table, scale, causal)
            ref = prefill_attention_reference(q, k_cache, v_cache, cu, lens, table, scale, causal)
            bad += int((out.float() - ref.float()).abs().max() > 0.05)
        qd = torch.randn(len(ctx), hk * group, head_dim, device=dev).to(dt)
        ref = decode_attention_reference(qd, k_cache, v_cache, table, lens, scale)
        for splits in (None, 1, 3, 64):
            out = decode_attention_triton(qd, k_cache, v_cache, table, lens, scale, splits)
            bad += int((out.float() - ref.float()).abs().max() > 0.05)
        kv = torch.randn(int(cu[-1]) + 7, hk, head_dim, device=dev).to(dt)
        cuk = torch.tensor([0, 3, 3, 40, 41, 60, int(cu[-1]) + 7], dtype=torch.int32, device=dev)
        for causal in (True, False):
            out = varlen_attention_triton(q, kv, kv, cu, cuk, scale, causal)
            ref = varlen_attention_reference(q, kv, kv, cu, cuk, scale, causal)
            bad += int((out.float() - ref.float()).abs().max() > 0.05)
    torch.cuda.synchronize()
    print(f"sanitize_attention: {bad} mismatching results")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
