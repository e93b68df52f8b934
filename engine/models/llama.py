"""Llama (and SmolLM2): the decoder the other Llama-family models reuse.

Pre-norm decoder layers; q/k/v and gate/up run as merged matmuls; the residual add is
fused into the next RMSNorm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

import kernels
from engine.attention_metadata import AttentionMetadata
from engine.config import ModelConfig
from engine.layers import (
    KVCache,
    Linear,
    LMHead,
    MergedLinear,
    PagedAttention,
    QKVLinear,
    RMSNorm,
    RotaryEmbedding,
    ShardId,
    SiluAndMul,
    VocabEmbedding,
)
from engine.models.base import CausalLM
from engine.models.registry import register_model

__all__ = ["LlamaForCausalLM", "LlamaModel"]


class LlamaAttention(nn.Module):
    def __init__(self, config: ModelConfig, rotary: RotaryEmbedding) -> None:
        super().__init__()
        c = config
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_heads, c.num_kv_heads, c.head_dim
        self.qkv_proj = QKVLinear(
            c.hidden_size, c.head_dim, c.num_heads, c.num_kv_heads,
            bias=c.attention_bias, dtype=c.dtype,
        )  # fmt: skip
        self.o_proj = Linear(
            c.num_heads * c.head_dim, c.hidden_size, bias=c.o_proj_bias, dtype=c.dtype
        )
        self.rotary = rotary  # shared by all layers: one cos/sin table per model
        self.attn = PagedAttention(c.num_heads, c.num_kv_heads, c.head_dim, c.head_dim**-0.5)

    def forward(
        self,
        positions: torch.Tensor,
        hidden: torch.Tensor,
        kv_cache: KVCache | None,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        t = hidden.shape[0]
        qkv = self.qkv_proj(hidden)  # [T, (Hq + 2 Hk) D]
        q_size, kv_size = self.qkv_proj.q_size, self.qkv_proj.kv_size
        if kv_cache is not None:
            # One launch rotates q and k and writes k/v into the cache straight from the
            # projection; attention reads them back from there.
            q = kernels.rope_and_cache(
                qkv, positions, self.rotary.cos_sin, kv_cache[0], kv_cache[1],
                meta.slot_mapping, self.num_heads,
            )  # fmt: skip
            attn = self.attn.attend_cached(q, kv_cache, meta)  # [T, Hq, D]
        else:  # no cache yet (the memory-profiling pass): attention on the packed k/v
            q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
            # Kernels take contiguous token-major tensors; the split views are strided.
            q = q.reshape(t, self.num_heads, self.head_dim).contiguous()  # [T, Hq, D]
            k = k.reshape(t, self.num_kv_heads, self.head_dim).contiguous()  # [T, Hk, D]
            v = v.reshape(t, self.num_kv_heads, self.head_dim).contiguous()  # [T, Hk, D]
            self.rotary(positions, q, k)
            attn = self.attn(q, k, v, None, meta)
        out: torch.Tensor = self.o_proj(attn.reshape(t, q_size))  # [T, H]
        return out


class LlamaMLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        h, i = config.hidden_size, config.intermediate_size
        self.gate_up_proj = MergedLinear(h, [i, i], dtype=config.dtype)
        self.act = SiluAndMul()
        self.down_proj = Linear(i, h, dtype=config.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up_proj.skinny and x.shape[0] <= kernels.SKINNY_MAX_ROWS:
            # The SwiGLU in the gate/up product's epilogue: one kernel, no [T, 2I] tensor.
            act = kernels.skinny_linear_swiglu(x.contiguous(), self.gate_up_proj.weight)
            return self.down_proj(act)  # type: ignore[no-any-return]
        out: torch.Tensor = self.down_proj(self.act(self.gate_up_proj(x)))  # [T, H]
        return out


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, rotary: RotaryEmbedding) -> None:
        super().__init__()
        h, eps, dt = config.hidden_size, config.rms_norm_eps, config.dtype
        self.input_layernorm = RMSNorm(h, eps, dtype=dt)
        self.self_attn = LlamaAttention(config, rotary)
        self.post_attention_layernorm = RMSNorm(h, eps, dtype=dt)
        self.mlp = LlamaMLP(config)

    def forward(
        self,
        positions: torch.Tensor,
        hidden: torch.Tensor,
        residual: torch.Tensor | None,
        kv_cache: KVCache | None,
        meta: AttentionMetadata,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual = hidden
            hidden = self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden, kv_cache, meta)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        return self.mlp(hidden), residual


class LlamaModel(nn.Module):
    """Embedding, decoder layers and the final norm (HF ``model.*`` names)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.embed_tokens = VocabEmbedding(c.vocab_size, c.hidden_size, dtype=c.dtype)
        self.rotary_emb = RotaryEmbedding(c.head_dim, c.max_position, c.rope_theta, c.rope_scaling)
        self.layers = nn.ModuleList(
            [LlamaDecoderLayer(c, self.rotary_emb) for _ in range(c.num_layers)]
        )
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps, dtype=c.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_caches: list[KVCache],
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        """Final hidden states [S, H] of the rows ``meta.logits_indices`` (all if None)."""
        if kv_caches and len(kv_caches) != len(self.layers):
            raise ValueError(f"got {len(kv_caches)} KV caches for {len(self.layers)} layers")
        hidden = self.embed_tokens(input_ids)  # [T, H]
        residual: torch.Tensor | None = None
        for i, layer in enumerate(self.layers):
            hidden, residual = layer(
                positions, hidden, residual, kv_caches[i] if kv_caches else None, meta
            )
        assert residual is not None  # every config has >= 1 layer (ModelConfig checks it)
        if meta.logits_indices is not None:
            # Only sampled rows need the final norm and the (large) LM head matmul.
            hidden, residual = hidden[meta.logits_indices], residual[meta.logits_indices]
        normed: torch.Tensor = self.norm(hidden, residual)[0]  # [S, H]
        return normed


@register_model("LlamaForCausalLM")
class LlamaForCausalLM(CausalLM):
    """Llama 1/2/3 (incl. llama3 rope scaling) and SmolLM/SmolLM2."""

    packed_modules_mapping: ClassVar[Mapping[str, tuple[str, ShardId]]] = {
        "q_proj": ("qkv_proj", "q"),
        "k_proj": ("qkv_proj", "k"),
        "v_proj": ("qkv_proj", "v"),
        "gate_proj": ("gate_up_proj", 0),
        "up_proj": ("gate_up_proj", 1),
    }

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.model = LlamaModel(config)
        tie = self.model.embed_tokens if config.tie_word_embeddings else None
        self.lm_head = LMHead(config.vocab_size, config.hidden_size, dtype=config.dtype, tie_to=tie)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_caches: list[KVCache],
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        """See :meth:`CausalLM.forward`; returns float32 logits [S, vocab]."""
        logits: torch.Tensor = self.lm_head(self.model(input_ids, positions, kv_caches, meta))
        return logits
