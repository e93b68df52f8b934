"""The encoder-decoder network shared by Marian and M2M100 / NLLB-200.

Both are the fairseq transformer: sinusoidal positions, biased projections, LayerNorm,
a two-matrix FFN. They differ in where the norms sit (Marian: after each residual add;
M2M100: before each block plus a final norm), in the position table and its offset, in
the activation, and in Marian's ``final_logits_bias``; ``Seq2SeqConfig`` carries all of
that. Module and parameter names follow HF (``model.encoder.layers.0.self_attn...``) so
the loader maps checkpoint names one to one; q/k/v (self-attention) and k/v
(cross-attention) load into merged projections through ``packed_modules_mapping``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import torch
from torch import nn

from engine.layers import Linear, LMHead, ShardId, VocabEmbedding
from engine.translation.config import Seq2SeqConfig
from engine.translation.layers import (
    CrossAttention,
    LayerNorm,
    SelfAttention,
    activation_fn,
    fairseq_positions,
    marian_positions,
)
from engine.translation.state import DecodeMeta, DecoderState

__all__ = ["Seq2SeqLM"]

_KV = tuple[torch.Tensor, torch.Tensor]


class _FFNLayer(nn.Module):
    """The two-matrix FFN every layer ends with (HF names ``fc1`` / ``fc2``)."""

    def __init__(self, c: Seq2SeqConfig, ffn_dim: int) -> None:
        super().__init__()
        self.fc1 = Linear(c.d_model, ffn_dim, bias=True, dtype=c.dtype)
        self.fc2 = Linear(ffn_dim, c.d_model, bias=True, dtype=c.dtype)
        self.act = activation_fn(c.activation)
        self.final_layer_norm = LayerNorm(c.d_model, c.layer_norm_eps, dtype=c.dtype)
        self.pre_norm = c.pre_norm

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """x + FFN(x), with the layer's norm placement: [T, H] -> [T, H]."""
        out: torch.Tensor
        if self.pre_norm:
            out = x + self.fc2(self.act(self.fc1(self.final_layer_norm(x))))
        else:
            out = self.final_layer_norm(x + self.fc2(self.act(self.fc1(x))))
        return out


class EncoderLayer(_FFNLayer):
    def __init__(self, c: Seq2SeqConfig) -> None:
        super().__init__(c, c.encoder_ffn_dim)
        self.self_attn = SelfAttention(c.d_model, c.encoder_heads, dtype=c.dtype)
        self.self_attn_layer_norm = LayerNorm(c.d_model, c.layer_norm_eps, dtype=c.dtype)

    def forward(self, x: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), cu_seqlens)
        else:
            x = self.self_attn_layer_norm(x + self.self_attn(x, cu_seqlens))
        return self.ffn(x)


class DecoderLayer(_FFNLayer):
    def __init__(self, c: Seq2SeqConfig) -> None:
        super().__init__(c, c.decoder_ffn_dim)
        h, dt, eps = c.d_model, c.dtype, c.layer_norm_eps
        self.self_attn = SelfAttention(h, c.decoder_heads, dtype=dt)
        self.self_attn_layer_norm = LayerNorm(h, eps, dtype=dt)
        self.encoder_attn = CrossAttention(h, c.decoder_heads, dtype=dt)
        self.encoder_attn_layer_norm = LayerNorm(h, eps, dtype=dt)

    def forward(self, x: torch.Tensor, cache: _KV, cross: _KV, meta: DecodeMeta) -> torch.Tensor:
        cu_q, cu_k = meta.cu_seqlens_q, meta.cu_seqlens_k
        if self.pre_norm:
            x = x + self.self_attn.decode(self.self_attn_layer_norm(x), cache, meta)
            x = x + self.encoder_attn(self.encoder_attn_layer_norm(x), cross, cu_q, cu_k)
        else:
            x = self.self_attn_layer_norm(x + self.self_attn.decode(x, cache, meta))
            x = self.encoder_attn_layer_norm(x + self.encoder_attn(x, cross, cu_q, cu_k))
        return self.ffn(x)


class _Stack(nn.Module):
    """Encoder or decoder: token embedding (maybe shared), layers, optional final norm."""

    embed_tokens: VocabEmbedding

    def __init__(self, c: Seq2SeqConfig, embed: VocabEmbedding, layers: list[nn.Module]) -> None:
        super().__init__()
        self.embed_tokens = embed
        self.layers = nn.ModuleList(layers)
        self.layer_norm = (
            LayerNorm(c.d_model, c.layer_norm_eps, dtype=c.dtype) if c.pre_norm else None
        )


class _Body(nn.Module):
    """HF's ``model``: ``shared`` (when one matrix serves both sides), encoder, decoder.

    Follows transformers 5: encoder, decoder and LM head use one matrix only when the
    config both shares and ties embeddings; with ``tie_word_embeddings=false`` each side
    has its own (the checkpoint's ``model.shared.weight`` fills any that are missing).
    """

    def __init__(self, c: Seq2SeqConfig) -> None:
        super().__init__()
        if c.share_embeddings and c.tie_word_embeddings:
            # Registered first so named_parameters() reports the tied tensor under this name.
            self.shared = VocabEmbedding(c.vocab_size, c.d_model, dtype=c.dtype)
            enc_embed = dec_embed = self.shared
        else:
            enc_embed = VocabEmbedding(c.vocab_size, c.d_model, dtype=c.dtype)
            dec_embed = VocabEmbedding(c.decoder_vocab_size, c.d_model, dtype=c.dtype)
        self.encoder = _Stack(c, enc_embed, [EncoderLayer(c) for _ in range(c.encoder_layers)])
        self.decoder = _Stack(c, dec_embed, [DecoderLayer(c) for _ in range(c.decoder_layers)])


class Seq2SeqLM(nn.Module):
    """Encoder-decoder translation model on our layers and kernels.

    Usage: :meth:`encode` a packed batch of sources once, :meth:`new_state` with the
    cross-attention K/V, then :meth:`decode_step` one token per decoder row per step.
    """

    packed_modules_mapping: ClassVar[Mapping[str, tuple[str, ShardId]]] = {
        "self_attn.q_proj": ("self_attn.qkv_proj", "q"),
        "self_attn.k_proj": ("self_attn.qkv_proj", "k"),
        "self_attn.v_proj": ("self_attn.qkv_proj", "v"),
        "encoder_attn.k_proj": ("encoder_attn.kv_proj", 0),
        "encoder_attn.v_proj": ("encoder_attn.kv_proj", 1),
    }
    pos_table: torch.Tensor

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = self.config = config
        self.model = _Body(c)
        dec_embed = self.model.decoder.embed_tokens
        self.lm_head = LMHead(
            c.decoder_vocab_size,
            c.d_model,
            dtype=c.dtype,
            tie_to=dec_embed if c.tie_word_embeddings else None,
        )
        self.final_logits_bias = (
            nn.Parameter(torch.empty(1, c.decoder_vocab_size, dtype=c.dtype), requires_grad=False)
            if c.final_logits_bias
            else None
        )
        if c.positions == "marian":
            self.position_offset = 0
            table = marian_positions(c.max_position, c.d_model)
        else:  # fairseq: positions start after the padding index, whose row is zero
            self.position_offset = c.pad_token_id + 1
            table = fairseq_positions(
                c.max_position + self.position_offset, c.d_model, c.pad_token_id
            )
        device = torch.get_default_device()
        self.register_buffer("pos_table", table.to(device=device, dtype=c.dtype), persistent=False)

    # ------------------------------------------------------------------ loading
    def weight_fallbacks(self) -> dict[str, tuple[str, ...]]:
        """Parameter -> checkpoint names that fill it when its own name is absent.

        Tied matrices are stored under one to four names (``model.shared.weight``,
        ``model.{encoder,decoder}.embed_tokens.weight``, ``lm_head.weight``) depending on
        the exporter; any of them may be the one a checkpoint kept.
        """
        c = self.config
        enc, dec = "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"
        if c.share_embeddings and c.tie_word_embeddings:
            return {"model.shared.weight": (enc, dec, "lm_head.weight")}
        shared = ("model.shared.weight",) if c.share_embeddings else ()
        head = ("lm_head.weight",) if c.tie_word_embeddings else ()
        return {enc: shared, dec: shared + head}

    def is_ignored_weight(self, name: str) -> bool:
        """Position tables are recomputed, never loaded (HF does the same)."""
        return ".embed_positions." in name

    # ---------------------------------------------------------------- running
    def _embed(self, stack: _Stack, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x: torch.Tensor = stack.embed_tokens(ids) * self.config.embed_scale  # [T, H]
        return x + self.pos_table[positions + self.position_offset]

    def source_positions(self, input_ids: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        """Position of every packed source token, as HF numbers them.

        Marian counts every token from 0. fairseq / M2M100 counts only non-padding tokens
        and gives a padding token the (zero) padding row, so a literal ``<pad>`` inside a
        text shifts the positions after it exactly as in ``transformers``.
        """
        starts = cu_seqlens[:-1].long()
        lens = cu_seqlens[1:].long() - starts
        if self.config.positions == "marian":
            index = torch.arange(input_ids.shape[0], device=input_ids.device)
            return index - torch.repeat_interleave(starts, lens)
        real = (input_ids != self.config.pad_token_id).long()
        count = real.cumsum(0)
        before = torch.cat([count.new_zeros(1), count])[starts]  # real tokens before each
        return (count - torch.repeat_interleave(before, lens)) * real - 1

    def encode(self, input_ids: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        """Encode packed sources.

        Args:
            input_ids: [S] int64, all sources back to back.
            cu_seqlens: [B+1] int32 source boundaries.

        Returns:
            Encoder output [S, d_model].
        """
        enc = self.model.encoder
        x = self._embed(enc, input_ids, self.source_positions(input_ids, cu_seqlens))
        for layer in enc.layers:
            x = layer(x, cu_seqlens)
        return x if enc.layer_norm is None else enc.layer_norm(x)

    def cross_kv(self, encoder_out: torch.Tensor) -> list[_KV]:
        """Per decoder layer, the cross-attention (k, v) [S, heads, D] of the sources."""
        layers = cast(list[DecoderLayer], list(self.model.decoder.layers))
        return [layer.encoder_attn.kv(encoder_out) for layer in layers]

    def new_state(
        self,
        encoder_out: torch.Tensor,
        source_lens: torch.Tensor,
        rows_per_sentence: int,
        capacity: int,
    ) -> DecoderState:
        """Decoder state for a batch whose sources were encoded into ``encoder_out``."""
        c = self.config
        return DecoderState(
            self.cross_kv(encoder_out),
            source_lens,
            rows_per_sentence,
            num_heads=c.decoder_heads,
            head_dim=c.d_model // c.decoder_heads,
            dtype=c.dtype,
            capacity=capacity,
        )

    def decoder_inputs(self, tokens: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Embedded decoder inputs ``[rows, H]``: one token per row at the state's next
        position.

        Raises:
            ValueError: the decoder would run past ``max_position``.
        """
        self.check_decoder_length(state.length)
        return self.decoder_embed(tokens, torch.full_like(tokens, state.length))

    def check_decoder_length(self, length: int) -> None:
        """Refuse a step at decoder position ``length`` past the position table.

        Raises:
            ValueError: the decoder would run past ``max_position``.
        """
        if length >= self.config.max_position:
            raise ValueError(f"decoder longer than max_position {self.config.max_position}")

    def decoder_embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Token + position embedding of decoder inputs; device work only (no host sync).

        Args:
            tokens: [N] int64.
            positions: [N] int64 decoder position of each token (any strides).
        """
        if self.config.positions == "fairseq":  # a generated <pad> takes the zero row, as in HF
            positions = positions.masked_fill(tokens == self.config.pad_token_id, -1)
        return self._embed(self.model.decoder, tokens, positions)

    def decode_step(self, tokens: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Feed one token per decoder row; returns float32 logits [rows, vocab].

        Raises:
            ValueError: the decoder would run past ``max_position``.
        """
        x = self.decoder_inputs(tokens, state)  # [N, H]
        logits = self.decode_forward(x, state.step_meta(), state.pools, state.cross_kv)
        state.advance()
        return logits

    def decode_forward(
        self, x: torch.Tensor, meta: DecodeMeta, pools: list[_KV], cross_kv: list[_KV]
    ) -> torch.Tensor:
        """The decoder layers and LM head on embedded inputs ``x`` [N, H]: float32 logits
        [N, vocab]. Device work only, so a CUDA graph can capture it."""
        dec = self.model.decoder
        for i, layer in enumerate(dec.layers):
            x = layer(x, pools[i], cross_kv[i], meta)
        if dec.layer_norm is not None:
            x = dec.layer_norm(x)
        logits: torch.Tensor = self.lm_head(x)  # [N, V] float32
        if self.final_logits_bias is not None:
            logits = logits + self.final_logits_bias.float()
        return logits
