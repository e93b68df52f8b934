"""Configuration of encoder-decoder translation models, parsed from HF JSON files.

``Seq2SeqConfig`` holds the shape and numerics of the network (from ``config.json``);
``GenerationDefaults`` the decoding rules the checkpoint ships (from
``generation_config.json``, falling back to the generation keys older checkpoints kept
in ``config.json``), which ``transformers.generate`` would apply too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from engine.config import parse_dtype, positive_int, token_ids
from engine.errors import ModelLoadError, UnsupportedModelError

__all__ = ["ACTIVATIONS", "GenerationDefaults", "Seq2SeqConfig"]

# HF ACT2FN names we run (F.silu, exact-erf F.gelu, tanh-approximate gelu, relu).
ACTIVATIONS = ("swish", "silu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu")
PositionStyle = Literal["marian", "fairseq"]


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Shape and numerics of a Marian / M2M100-family encoder-decoder.

    Attributes:
        architecture: HF ``architectures[0]``, the registry key.
        pre_norm: LayerNorm before each block plus a final one (M2M100/NLLB) instead of
            after each residual add (Marian).
        positions: ``"marian"`` (sin | cos halves, positions from 0) or ``"fairseq"``
            (tensor2tensor table, positions from ``pad_token_id + 1``).
        max_position: longest source and longest decoder sequence the engine runs.
        share_embeddings: one embedding matrix for encoder and decoder.
        tie_word_embeddings: the LM head reuses the decoder embedding.
        final_logits_bias: the checkpoint has a logits bias (Marian).
        dtype: weight dtype at run time.
    """

    architecture: str
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    vocab_size: int
    decoder_vocab_size: int
    max_position: int
    activation: str
    scale_embedding: bool
    pad_token_id: int
    eos_token_id: int
    decoder_start_token_id: int
    pre_norm: bool
    positions: PositionStyle
    share_embeddings: bool = True
    tie_word_embeddings: bool = True
    final_logits_bias: bool = False
    layer_norm_eps: float = 1e-5
    dtype: torch.dtype = torch.float32

    @property
    def embed_scale(self) -> float:
        """``sqrt(d_model)`` when the checkpoint scales embeddings, else 1."""
        return float(self.d_model) ** 0.5 if self.scale_embedding else 1.0

    @classmethod
    def from_hf(
        cls,
        hf: Mapping[str, Any],
        *,
        pre_norm: bool,
        positions: PositionStyle,
        final_logits_bias: bool,
    ) -> Seq2SeqConfig:
        """Parse a HF ``config.json`` dict; the architecture rules come from the caller.

        Raises:
            ModelLoadError: a required key is missing or malformed.
            UnsupportedModelError: an activation or layout the engine does not run.
        """
        archs = hf.get("architectures")
        if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
            raise ModelLoadError("config.json has no 'architectures' list")
        d_model = positive_int(hf, "d_model")
        enc_heads, dec_heads = (
            positive_int(hf, "encoder_attention_heads"),
            positive_int(hf, "decoder_attention_heads"),
        )
        for heads in (enc_heads, dec_heads):
            if d_model % heads:
                raise ModelLoadError(f"d_model {d_model} is not a multiple of {heads} heads")
        act = hf.get("activation_function", "gelu")
        if act not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"activation_function {act!r} is not supported (supported: {ACTIVATIONS})"
            )
        vocab = positive_int(hf, "vocab_size")
        share = bool(hf.get("share_encoder_decoder_embeddings", True))
        dec_vocab = vocab if share else positive_int(hf, "decoder_vocab_size", default=vocab)
        pad = _id(hf, "pad_token_id")
        eos_ids = token_ids(hf.get("eos_token_id"))
        if not eos_ids:
            raise ModelLoadError("config.json has no eos_token_id")
        start = hf.get("decoder_start_token_id")
        dtype_name = hf.get("dtype") or hf.get("torch_dtype") or "float32"
        try:
            dtype = parse_dtype(str(dtype_name))
        except ValueError as exc:
            raise ModelLoadError(f"config.json: {exc}") from None
        return cls(
            architecture=archs[0],
            d_model=d_model,
            encoder_layers=positive_int(hf, "encoder_layers"),
            decoder_layers=positive_int(hf, "decoder_layers"),
            encoder_heads=enc_heads,
            decoder_heads=dec_heads,
            encoder_ffn_dim=positive_int(hf, "encoder_ffn_dim"),
            decoder_ffn_dim=positive_int(hf, "decoder_ffn_dim"),
            vocab_size=vocab,
            decoder_vocab_size=dec_vocab,
            max_position=positive_int(hf, "max_position_embeddings", default=1024),
            activation=str(act),
            scale_embedding=bool(hf.get("scale_embedding", False)),
            pad_token_id=pad,
            eos_token_id=eos_ids[0],
            decoder_start_token_id=start if isinstance(start, int) and start >= 0 else pad,
            pre_norm=pre_norm,
            positions=positions,
            share_embeddings=share,
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
            final_logits_bias=final_logits_bias,
            dtype=dtype,
        )


@dataclass(frozen=True)
class GenerationDefaults:
    """Decoding rules of a checkpoint, with ``transformers.GenerationConfig`` semantics.

    Attributes:
        max_length: decoder length cap including the start token (None: unset).
        num_beams: the checkpoint's recommended beam size (the engine default is greedy).
        length_penalty: beam hypothesis score = sum log p / generated_len ** penalty.
        early_stopping: True, False or ``"never"`` (see ``transformers`` beam search).
        eos_token_ids: tokens that end a hypothesis.
        forced_eos_token_id: forced as the last token when the length cap is hit.
        bad_token_ids: single tokens that may never be generated (``bad_words_ids``).
        ignored: generation settings of the checkpoint the engine does not apply.
    """

    max_length: int | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | Literal["never"] = False
    eos_token_ids: tuple[int, ...] = ()
    forced_eos_token_id: int | None = None
    bad_token_ids: tuple[int, ...] = ()
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_hf(
        cls, gen: Mapping[str, Any], config: Mapping[str, Any], eos_fallback: int
    ) -> GenerationDefaults:
        """Merge ``generation_config.json`` (``gen``) over ``config.json`` (``config``).

        Settings the engine does not implement (n-gram blocking, repetition penalty,
        min_length, multi-token bad words) are listed in ``ignored`` for the loader to
        log, rather than refusing a checkpoint over a decoding nicety.

        Raises:
            ModelLoadError: a malformed value.
        """

        def get(key: str, default: Any = None) -> Any:
            # null means "unset" (transformers 5 writes some defaults as null).
            value = gen.get(key)
            if value is None:
                value = config.get(key)
            return default if value is None else value

        ignored: list[str] = []
        for key, neutral in (
            ("no_repeat_ngram_size", 0),
            ("repetition_penalty", 1.0),
            ("encoder_no_repeat_ngram_size", 0),
            ("min_length", 0),
        ):
            value = get(key, neutral)
            if value not in (None, neutral):
                ignored.append(f"{key}={value!r}")
        bad: list[int] = []
        for seq in get("bad_words_ids") or []:
            if isinstance(seq, list) and len(seq) == 1 and isinstance(seq[0], int):
                bad.append(seq[0])
            else:
                ignored.append(f"bad_words_ids entry {seq!r}")
        early = get("early_stopping", False)
        if early not in (True, False, "never"):
            raise ModelLoadError(f"early_stopping must be true, false or 'never', got {early!r}")
        max_length = get("max_length")
        forced = get("forced_eos_token_id")
        forced_ids = token_ids(forced)
        eos = token_ids(get("eos_token_id")) or (eos_fallback,)
        return cls(
            max_length=max_length if isinstance(max_length, int) and max_length > 1 else None,
            num_beams=max(1, int(get("num_beams", 1))),
            length_penalty=float(get("length_penalty", 1.0)),
            early_stopping=early,
            eos_token_ids=eos,
            forced_eos_token_id=forced_ids[0] if forced_ids else None,
            bad_token_ids=tuple(bad),
            ignored=tuple(ignored),
        )


def _id(hf: Mapping[str, Any], key: str) -> int:
    value = hf.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelLoadError(f"config.json: {key!r} must be a token id, got {value!r}")
    return value
