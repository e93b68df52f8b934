"""A lean decoder step for the translation models on the CPU.

Translating a customer's message is a few sentences decoded one token at a time, so a
CPU step is a chain of matrix-vector products that stream every decoder weight and the
LM head once (~210 MB for OPUS-MT in float32), plus per-op overhead. The general step
(``Seq2SeqLM.decode_step``) loses on both counts there: ``F.linear`` on row-major
weights streams at ~16 GB/s on one core of a 2-core EPYC, and the reference attention
kernels loop over rows and sentences in Python. :class:`CpuSeq2SeqDecoder` runs the same
math on views of the same parameters with:

* products through :class:`engine.cpu_linear.CpuLinear` (one row: bandwidth-bound bag
  products split over the cores; more rows, under beam search or batching: one oneDNN
  GEMM);
* decoder self-attention for all rows at once: rows advance in lockstep, so every row
  attends to the same number of cached tokens and one gather of the step's slot table
  feeds one batched product;
* cross-attention for all sentences at once over encoder K/V padded per sentence, laid
  out once per batch (and again when finished sentences leave it).

OPUS-MT en-de shapes on a 2-core EPYC (``benchmarks/translation.py``): one sentence,
greedy, 3.5x transformers' ``generate``; 64 sentences, beam 4, 2.4x. Numerics: the same
math as ``decode_step``, with the products and attention reductions in another order
(last-bit differences); the tests hold the logits to the 2x tolerance rule against a
float64 run, through beam reorders, sentences leaving and the pool growing. The GPU
never uses this module.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F

from engine.cpu_linear import CpuLinear
from engine.translation.layers import LayerNorm
from engine.translation.model import DecoderLayer, Seq2SeqLM
from engine.translation.state import DecoderState, exclusive_cumsum

__all__ = ["CpuSeq2SeqDecoder"]


def _norm(module: LayerNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    # The module's own forward, without nn.Module's call machinery (18 norms a step).
    weight, bias, eps = module.weight, module.bias, module.eps
    return lambda x: F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


class _Layer:
    """Views of one decoder layer's parameters, ready for a decode step."""

    __slots__ = ("act", "cross_out", "cross_q", "fc1", "fc2", "norm_cross", "norm_ffn",
                 "norm_self", "qkv", "self_out")

    def __init__(self, layer: DecoderLayer, max_parts: int, bags: bool) -> None:
        def lin(m: torch.nn.Module) -> CpuLinear:
            return CpuLinear(cast(torch.Tensor, m.weight), cast(torch.Tensor | None, m.bias),
                             max_parts, bags=bags)

        sa, ca = layer.self_attn, layer.encoder_attn
        self.qkv, self.self_out = lin(sa.qkv_proj), lin(sa.out_proj)
        self.cross_q, self.cross_out = lin(ca.q_proj), lin(ca.out_proj)
        self.fc1, self.fc2 = lin(layer.fc1), lin(layer.fc2)
        self.act = layer.act
        self.norm_self = _norm(layer.self_attn_layer_norm)
        self.norm_cross = _norm(layer.encoder_attn_layer_norm)
        self.norm_ffn = _norm(layer.final_layer_norm)


class _PaddedCross:
    """One batch's encoder K/V, padded per sentence for a batched product.

    ``keys[i]`` is ``[B, heads, D, S_max]`` and ``values[i]`` ``[B, heads, S_max, D]``
    (contiguous, so the products stream them); ``mask`` is ``[B, 1, 1, S_max]`` with
    ``-inf`` past each sentence's source, or None when every source has S_max tokens.
    A sentence with an empty source (possible through the model's API, never from the
    engine) attends to nothing: its rows get zeros, as from the reference kernels.
    """

    def __init__(self, state: DecoderState) -> None:
        self.source = state.cross_kv  # the list a keep_sentences() replaces
        lens = state.source_lens
        b, s_max = int(lens.shape[0]), max(1, int(lens.max()))
        starts = exclusive_cumsum(lens)
        offsets = torch.arange(s_max, dtype=torch.int64)
        beyond = offsets[None, :] >= lens[:, None]  # [B, S_max]
        # Padding positions read the sentence's first token, then are masked out.
        index = (starts[:, None] + offsets[None, :].masked_fill(beyond, 0)).reshape(-1)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for k, v in state.cross_kv:  # each [S, heads, D]
            heads, d = k.shape[1], k.shape[2]
            kp = k.index_select(0, index).view(b, s_max, heads, d)
            vp = v.index_select(0, index).view(b, s_max, heads, d)
            self.keys.append(kp.permute(0, 2, 3, 1).contiguous())
            self.values.append(vp.permute(0, 2, 1, 3).contiguous())
        self.mask = (
            torch.zeros(b, 1, 1, s_max).masked_fill_(beyond[:, None, None, :], float("-inf"))
            if bool(beyond.any()) else None
        )
        self.has_empty = bool((lens == 0).any())


class CpuSeq2SeqDecoder:
    """Decoder steps of a CPU ``Seq2SeqLM`` (Marian, M2M100 / NLLB-200).

    Holds views of the model's parameters (build it after the weights are loaded and
    laid out column-major, ``engine.layers.use_column_major_weights``; it copies nothing).

    Args:
        model: the translation model, on the CPU.
        max_parts: split float32 products over up to this many threads (1: never).
        bags: ``embedding_bag`` products for one row of float32 weights (False: the
            model's own products).
    """

    def __init__(self, model: Seq2SeqLM, *, max_parts: int = 1, bags: bool = True) -> None:
        c = model.config
        self.model = model
        self.heads = c.decoder_heads
        self.head_dim = c.d_model // c.decoder_heads
        self.scale = self.head_dim**-0.5
        self.dtype = c.dtype
        self.acc = torch.float64 if c.dtype == torch.float64 else torch.float32
        decoder = model.model.decoder
        self.layers = [_Layer(cast(DecoderLayer, layer), max_parts, bags)
                       for layer in decoder.layers]
        self.final_norm = None if decoder.layer_norm is None else _norm(decoder.layer_norm)
        self.pre_norm = c.pre_norm
        self.lm_head = CpuLinear(model.lm_head.weight, None, max_parts, bags=bags)
        bias = model.final_logits_bias
        self.logits_bias = None if bias is None else bias.float()  # [1, V], added as HF does
        # Per live batch state (an entry dies with its state, so no batch's K/V outlive it).
        self._cross: weakref.WeakKeyDictionary[DecoderState, _PaddedCross] = (
            weakref.WeakKeyDictionary()
        )

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Feed one token per decoder row; float32 logits ``[rows, vocab]``.

        Same contract as ``Seq2SeqLM.decode_step`` (and the same state bookkeeping).

        Raises:
            ValueError: the decoder would run past ``max_position``.
        """
        x = self.model.decoder_inputs(tokens, state)  # [N, H]
        cross = self._padded_cross(state)
        meta = state.step_meta()
        ctx = state.length + 1  # cached tokens + this one, the same for every row
        gather = meta.block_tables[:, :ctx].reshape(-1)  # [N * ctx] pool slots, row-major
        for i, layer in enumerate(self.layers):
            k_pool, v_pool = state.pools[i]
            x = self._layer(x, layer, k_pool, v_pool, meta.slots, gather, ctx, cross, i)
        if self.final_norm is not None:
            x = self.final_norm(x)
        state.advance()
        logits = self.lm_head(x).float()  # [N, V]
        return logits if self.logits_bias is None else logits.add_(self.logits_bias)

    def _padded_cross(self, state: DecoderState) -> _PaddedCross:
        cross = self._cross.get(state)
        if cross is None or cross.source is not state.cross_kv:  # new batch, or compacted
            cross = self._cross[state] = _PaddedCross(state)
        return cross

    def _layer(self, x: torch.Tensor, layer: _Layer, k_pool: torch.Tensor,
               v_pool: torch.Tensor, slots: torch.Tensor, gather: torch.Tensor, ctx: int,
               cross: _PaddedCross, index: int) -> torch.Tensor:
        """One decoder layer, with the model's norm placement: x [N, H] -> [N, H]."""
        if self.pre_norm:
            x = x + self._self_attention(layer.norm_self(x), layer, k_pool, v_pool, slots,
                                         gather, ctx)
            x = x + self._cross_attention(layer.norm_cross(x), layer, cross, index)
            return x + layer.fc2(layer.act(layer.fc1(layer.norm_ffn(x))))
        x = layer.norm_self(x + self._self_attention(x, layer, k_pool, v_pool, slots, gather,
                                                     ctx))
        x = layer.norm_cross(x + self._cross_attention(x, layer, cross, index))
        return layer.norm_ffn(x + layer.fc2(layer.act(layer.fc1(x))))

    def _self_attention(self, x: torch.Tensor, layer: _Layer, k_pool: torch.Tensor,
                        v_pool: torch.Tensor, slots: torch.Tensor, gather: torch.Tensor,
                        ctx: int) -> torch.Tensor:
        n, h, d = x.shape[0], self.heads, self.head_dim
        q, k, v = layer.qkv(x).view(n, 3, h, d).unbind(1)  # each [N, heads, D]
        k_flat, v_flat = k_pool.view(-1, h, d), v_pool.view(-1, h, d)  # [slots, heads, D]
        k_flat.index_copy_(0, slots, k)
        v_flat.index_copy_(0, slots, v)
        keys = k_flat.index_select(0, gather).view(n, ctx, h, d)
        values = v_flat.index_select(0, gather).view(n, ctx, h, d)
        out = self._attend(q.reshape(n, h, 1, d), keys.permute(0, 2, 3, 1),
                           values.transpose(1, 2), None)  # [N, heads, 1, D]
        return layer.self_out(out.reshape(n, h * d))

    def _cross_attention(self, x: torch.Tensor, layer: _Layer, cross: _PaddedCross,
                         index: int) -> torch.Tensor:
        n, h, d = x.shape[0], self.heads, self.head_dim
        b = cross.keys[index].shape[0]
        q = layer.cross_q(x).view(b, n // b, h, d).transpose(1, 2)  # [B, heads, rows/B, D]
        out = self._attend(q, cross.keys[index], cross.values[index], cross.mask,
                           cross.has_empty)
        return layer.cross_out(out.transpose(1, 2).reshape(n, h * d))

    def _attend(self, q: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor | None, has_empty: bool = False) -> torch.Tensor:
        """q ``[..., M, D]`` over keys ``[..., D, S]`` and values ``[..., S, D]``."""
        if q.dtype != self.acc:  # bf16 / fp16: attention math in float32, as the references
            q, keys_t, values = q.to(self.acc), keys_t.to(self.acc), values.to(self.acc)
        scores = torch.matmul(q, keys_t).mul_(self.scale)  # [..., M, S]
        if mask is not None:
            scores.add_(mask)
        probs = torch.softmax(scores, dim=-1)
        if has_empty:  # all keys masked: softmax gave nan; nothing seen gives 0
            probs = probs.nan_to_num_(0.0)
        return torch.matmul(probs, values).to(self.dtype)
