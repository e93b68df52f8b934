"""A lean forward for decode-only steps of Llama-family models on the CPU.

A CPU decode step streams every weight once, so its floor is memory bandwidth; what the
general forward adds on top is per-op Python and dispatcher work (30 layers x ~40 ops,
each kernel call re-validating its inputs and re-reading metadata tensors) and one core's
share of the bandwidth. :class:`CpuDecoder` runs the same math on the same parameters
with what a decode step needs and nothing else:

* per-step work done once, not once per layer: the rotary cos/sin row, the KV slot, the
  context's pages (plain Python ints checked once; K/V come back as cache views);
* ~20 tensor ops per layer, in place where the math allows;
* projections through :class:`engine.cpu_linear.CpuLinear`, whose float32
  matrix-vector products stream at memory bandwidth and split into ``max_parts`` bags
  the intra-op threads share.

Numerics follow the kernel references (``kernels.reference``) op for op: with
``bags=False`` the logits are bit-identical to the general forward's; the float32 bag
products differ from ``F.linear`` in the last bits (see ``engine.cpu_linear``), the
same on any number of threads. Low-precision models run their norms, rotary and
attention math in float32, as the references do. The GPU path never uses this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F

from engine.cpu_linear import CpuLinear
from engine.layers import KVCache
from engine.models.llama import LlamaDecoderLayer, LlamaForCausalLM

__all__ = ["CpuDecoder"]


# Per layer: k_cache, v_cache ([blocks, bs, Hk, D]) and their [slots, Hk, D] views.
_LayerCache = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# Per sequence of a step: KV slot, context length, block ids to gather (None: the context
# lies in consecutive blocks and is read as a view of the cache).
_Row = tuple[int, int, torch.Tensor | None]


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


class _Layer:
    __slots__ = ("down", "gate_up", "ln1", "ln2", "o", "qkv")

    def __init__(self, layer: LlamaDecoderLayer, max_parts: int, bags: bool) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        self.ln1: torch.Tensor = layer.input_layernorm.weight
        self.ln2: torch.Tensor = layer.post_attention_layernorm.weight
        self.qkv, self.o, self.gate_up, self.down = (
            CpuLinear(m.weight, m.bias, max_parts, bags=bags)
            for m in (attn.qkv_proj, attn.o_proj, mlp.gate_up_proj, mlp.down_proj)
        )


class CpuDecoder:
    """Decode-only steps of a Llama-family engine model (Llama, Qwen2, Mistral).

    Holds views of the model's parameters (build it after the weights are loaded and
    laid out; it copies nothing).

    Args:
        model: the engine model.
        max_parts: split float32 projections in up to this many bags (one per thread
            that may run them; 1: never split).
        bags: ``embedding_bag`` products for float32 weights (False: ``F.linear``'s
            calls, bit-identical to the model's forward, ~1.5x slower).
    """

    def __init__(self, model: LlamaForCausalLM, *, max_parts: int = 1,
                 bags: bool = True) -> None:
        c = model.config
        inner = model.model
        self.hidden = c.hidden_size
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_heads, c.num_kv_heads, c.head_dim
        self.intermediate = c.intermediate_size
        self.vocab_size = c.vocab_size
        self.eps = c.rms_norm_eps
        self.scale = c.head_dim**-0.5
        self.dtype = c.dtype
        self.acc = _acc(c.dtype)
        self.embed: torch.Tensor = inner.embed_tokens.weight
        self.cos_sin: torch.Tensor = inner.rotary_emb.cos_sin  # [P, D] float32
        self.layers = [_Layer(cast(LlamaDecoderLayer, layer), max_parts, bags)
                       for layer in inner.layers]
        self.norm: torch.Tensor = inner.norm.weight
        self.lm_head = CpuLinear(model.lm_head.weight, None, max_parts, bags=bags)
        self._caches: list[KVCache] | None = None
        self._flat: list[_LayerCache] = []

    @classmethod
    def for_model(cls, model: torch.nn.Module, *, max_parts: int = 1) -> CpuDecoder | None:
        """A decoder for ``model`` if it is a CPU Llama-family model, else None."""
        if not isinstance(model, LlamaForCausalLM):
            return None
        param = next(iter(model.parameters()), None)
        if param is None or param.device.type != "cpu":
            return None
        return cls(model, max_parts=max_parts)

    # ------------------------------------------------------------- per step
    def _flat_caches(self, kv_caches: list[KVCache]) -> list[_LayerCache]:
        if kv_caches is not self._caches:
            if len(kv_caches) != len(self.layers):
                raise ValueError(
                    f"got {len(kv_caches)} KV caches for {len(self.layers)} layers"
                )
            shape = (-1, self.num_kv_heads, self.head_dim)
            self._flat = [(k, v, k.view(shape), v.view(shape)) for k, v in kv_caches]
            self._caches = kv_caches
        return self._flat

    def _check(
        self,
        token_ids: Sequence[int],
        positions: Sequence[int],
        block_tables: Sequence[Sequence[int]],
        num_blocks: int,
        block_size: int,
    ) -> list[_Row]:
        """Validate one step's inputs; return one ``_Row`` per sequence."""
        b = len(token_ids)
        if b == 0 or len(positions) != b or len(block_tables) != b:
            raise ValueError(
                f"need one position and block table per token, got {b} tokens, "
                f"{len(positions)} positions, {len(block_tables)} tables"
            )
        max_pos = self.cos_sin.shape[0]
        rows: list[_Row] = []
        for tok, pos, table in zip(token_ids, positions, block_tables, strict=True):
            if not 0 <= tok < self.vocab_size:
                raise ValueError(f"token id {tok} outside the vocabulary [0, {self.vocab_size})")
            if not 0 <= pos < max_pos:
                raise ValueError(f"position {pos} outside [0, {max_pos})")
            pages = list(table[: pos // block_size + 1])
            if len(pages) <= pos // block_size:
                raise ValueError(f"block table of {len(table)} blocks cannot hold position {pos}")
            lo, hi = min(pages), max(pages)
            if lo < 0 or hi >= num_blocks:
                raise ValueError(f"block ids must lie in [0, {num_blocks}), got {lo}..{hi}")
            first = pages[0]
            consecutive = pages == list(range(first, first + len(pages)))
            slot = pages[-1] * block_size + pos % block_size
            gather = None if consecutive else torch.tensor(pages, dtype=torch.int64)
            rows.append((slot, pos + 1, gather))
        return rows

    def _rope_tables(self, positions: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """cos ``[B, 1, D]`` and signed sin ``[B, 1, 2, D/2]`` (``[-sin, sin]``)."""
        half = self.head_dim // 2
        idx = torch.tensor(positions, dtype=torch.int64)
        table = self.cos_sin.index_select(0, idx).to(self.acc)  # [B, D]
        cos, sin = table[:, :half], table[:, half:]
        cos2 = torch.cat([cos, cos], dim=-1).view(-1, 1, self.head_dim)
        sin2 = torch.stack([-sin, sin], dim=1).view(-1, 1, 2, half)
        return cos2, sin2

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dtype == self.acc:
            return F.rms_norm(x, (self.hidden,), weight, self.eps)
        return F.rms_norm(x.to(self.acc), (self.hidden,), weight.to(self.acc), self.eps).to(
            x.dtype
        )

    # ------------------------------------------------------------- forward
    @torch.inference_mode()
    def forward(
        self,
        token_ids: Sequence[int],
        positions: Sequence[int],
        block_tables: Sequence[Sequence[int]],
        kv_caches: list[KVCache],
        *,
        sample_rows: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """One decode step: token ``b`` at ``positions[b]`` of sequence ``b``.

        Each token's K/V is written at its position's slot of ``block_tables[b]`` (block
        ids into the paged caches), then it attends to positions ``0..positions[b]``.

        Args:
            token_ids: ``[B]`` input tokens.
            positions: ``[B]`` their positions.
            block_tables: per sequence, its cache block ids (at least up to the position).
            kv_caches: one ``(k_cache, v_cache)`` per layer, ``[blocks, bs, Hk, D]``.
            sample_rows: rows to return logits for (None: all).

        Returns:
            float32 logits ``[S, vocab]``.

        Raises:
            ValueError: a token id, position or block id out of range, or inconsistent
                lengths (nothing has been written to the cache then).
        """
        flat = self._flat_caches(kv_caches)
        k0 = kv_caches[0][0]
        rows = self._check(token_ids, positions, block_tables, k0.shape[0], k0.shape[1])
        b = len(rows)
        hq, hk, d = self.num_heads, self.num_kv_heads, self.head_dim
        qk_heads = hq + hk
        qk_size, group, inter = qk_heads * d, hq // hk, self.intermediate
        acc = self.acc
        low = self.dtype != acc  # bf16/fp16: rotary, attention and SwiGLU math in fp32
        cos2, sin2 = self._rope_tables(positions)
        ids = torch.tensor(token_ids, dtype=torch.int64)
        residual = self.embed.index_select(0, ids)  # [B, H], a fresh tensor
        out: torch.Tensor | None = None
        attn = torch.empty(b, hq * d, dtype=self.dtype)  # [B, Hq*D]
        for layer, (k_cache, v_cache, k_flat, v_flat) in zip(self.layers, flat, strict=True):
            if out is not None:
                residual.add_(out)
            h = self._norm(residual, layer.ln1)
            qkv = layer.qkv(h)  # [B, (Hq + 2 Hk) D]
            qk = qkv[:, :qk_size].reshape(b, qk_heads, d)  # [B, Hq+Hk, D]
            if low:
                qk = qk.to(acc)
            # Rotate-half rope, op for op as kernels.reference: [x1 c - x2 s, x2 c + x1 s].
            swapped = qk.view(b, qk_heads, 2, d // 2).flip(2).mul_(sin2)
            rotated = (qk * cos2).add_(swapped.view(b, qk_heads, d))
            if low:
                rotated = rotated.to(self.dtype)
            v_new = qkv[:, qk_size:].view(b, hk, d)
            for i, (slot, n, pages) in enumerate(rows):
                k_flat[slot].copy_(rotated[i, hq:])
                v_flat[slot].copy_(v_new[i])
                if pages is None:
                    lo = slot - n + 1
                    keys, values = k_flat[lo : lo + n], v_flat[lo : lo + n]
                else:  # whole pages gathered, as kernels.reference_attention does
                    keys = k_cache.index_select(0, pages).view(-1, hk, d)[:n]
                    values = v_cache.index_select(0, pages).view(-1, hk, d)[:n]
                self._attend(rotated[i, :hq], keys, values, attn[i], group)
            out = layer.o(attn)
            residual.add_(out)
            h = self._norm(residual, layer.ln2)
            gate_up = layer.gate_up(h)  # [B, 2I]
            if low:
                g = gate_up.to(acc)
                act = F.silu(g[:, :inter]).mul_(g[:, inter:]).to(gate_up.dtype)
            else:
                act = F.silu(gate_up[:, :inter]).mul_(gate_up[:, inter:])
            out = layer.down(act)  # [B, H]
        assert out is not None  # ModelConfig guarantees >= 1 layer
        residual.add_(out)
        if sample_rows is not None and len(sample_rows) != b:
            if not sample_rows:
                return torch.empty(0, self.vocab_size)
            residual = residual[torch.tensor(list(sample_rows), dtype=torch.int64)]
        logits = self.lm_head(self._norm(residual, self.norm))
        return logits.float()

    def _attend(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        out: torch.Tensor,
        group: int,
    ) -> None:
        """q ``[Hq, D]`` over keys/values ``[n, Hk, D]`` -> ``out`` ``[Hq*D]`` (GQA).

        Query head ``h`` reads KV head ``h // group``: the group's heads are one row block
        of a ``[Hk]``-batched product (as ``kernels.reference_attention._attend``).
        """
        hk, d = self.num_kv_heads, self.head_dim
        if out.dtype != self.acc:
            q, keys, values = q.to(self.acc), keys.to(self.acc), values.to(self.acc)
        scores = torch.bmm(q.view(hk, group, d), keys.permute(1, 2, 0)).mul_(self.scale)
        probs = torch.softmax(scores, dim=-1)  # [Hk, G, n]
        v_t = values.transpose(0, 1)  # [Hk, n, D]
        if out.dtype == self.acc:
            torch.bmm(probs, v_t, out=out.view(hk, group, d))
        else:
            out.copy_(torch.bmm(probs, v_t).view(-1))
