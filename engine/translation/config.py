"""Configuration of encoder-decoder translation models, parsed from HF JSON files.

``Seq2SeqConfig`` holds the shape and numerics of the network (from ``config.json``);
``GenerationDefaults`` the decoding rules the checkpoint ships (from
``generation_config.json``, falling back to the generation keys older checkpoints kept
in ``config.json``), which ``transformers.generate`` would apply too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from engine.config import MAX_VOCAB_SIZE, parse_dtype, positive_int
from engine.errors import ModelLoadError, UnsupportedModelError

__all__ = [
    "ACTIVATIONS",
    "MAX_D_MODEL",
    "MAX_FFN_DIM",
    "MAX_LAYERS",
    "MAX_POSITIONS",
    "MAX_POSITION_TABLE",
    "GenerationDefaults",
    "Seq2SeqConfig",
]

# HF ACT2FN names we run (F.silu, exact-erf F.gelu, tanh-approximate gelu, relu).
ACTIVATIONS = ("swish", "silu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu")
PositionStyle = Literal["marian", "fairseq"]

# Sanity bounds on the sizes config.json sets, checked before anything they size is built.
# Each is 4-32x the largest published Marian / M2M100 / NLLB checkpoint (M2M100-12B:
# d_model 4096, ffn 16384, 24 + 24 layers; NLLB-200: vocabulary 256,206; all: 512 or
# 1024 positions), so only a damaged or hostile config hits them. They cannot stop a big
# network on their own (d_model 16384 x 256 layers is terabytes): the loader also checks the
# embedding and FFN shapes against the weights file's header, whose bytes are on disk.
MIN_D_MODEL = 4  # fairseq's position table divides by d_model // 2 - 1
MAX_D_MODEL = 1 << 14
MAX_LAYERS = 256
MAX_FFN_DIM = 1 << 17
MAX_POSITIONS = 1 << 16
# The position table [positions (+ fairseq's pad offset), d_model] is not in the checkpoint
# and is built eagerly in float32: at most 2**26 entries (256 MiB). NLLB's is 1026 x 1024.
MAX_POSITION_TABLE = 1 << 26
# generation_config.json: HF checkpoints recommend 4-12 beams and penalties in [0.6, 2];
# |penalty| <= 10 also keeps len ** penalty finite for any length under MAX_POSITIONS.
MAX_CONFIG_BEAMS = 1024
MAX_LENGTH_PENALTY = 10.0
MAX_GENERATION_LENGTH = 1 << 24


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
            ModelLoadError: a required key is missing or malformed, a size is past its
                bound (``MAX_D_MODEL``...), or a token id is outside the vocabulary; the
                message names ``config.json`` and the key.
            UnsupportedModelError: an activation or layout the engine does not run.
        """
        archs = hf.get("architectures")
        if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
            raise ModelLoadError("config.json has no 'architectures' list")
        d_model = positive_int(hf, "d_model", maximum=MAX_D_MODEL)
        if d_model < MIN_D_MODEL:
            raise ModelLoadError(
                f"config.json: 'd_model' must be at least {MIN_D_MODEL}, got {d_model}"
            )
        enc_heads, dec_heads = (
            positive_int(hf, "encoder_attention_heads"),
            positive_int(hf, "decoder_attention_heads"),
        )
        for key, heads in (
            ("encoder_attention_heads", enc_heads),
            ("decoder_attention_heads", dec_heads),
        ):
            if d_model % heads:
                raise ModelLoadError(
                    f"config.json: {key!r} ({heads}) does not divide 'd_model' ({d_model})"
                )
        act = hf.get("activation_function", "gelu")
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"config.json: 'activation_function' {_short(act)} is not supported "
                f"(supported: {', '.join(ACTIVATIONS)})"
            )
        vocab = positive_int(hf, "vocab_size", maximum=MAX_VOCAB_SIZE)
        share = _flag(hf, "share_encoder_decoder_embeddings", True)
        dec_vocab = (
            vocab
            if share
            else positive_int(hf, "decoder_vocab_size", default=vocab, maximum=MAX_VOCAB_SIZE)
        )
        # Token ids index the embeddings: out of range, the first translation would fail.
        pad = _id(hf, "pad_token_id", max(vocab, dec_vocab))
        eos_ids = _ids(hf.get("eos_token_id"), "config.json", "eos_token_id", dec_vocab)
        if not eos_ids:
            raise ModelLoadError("config.json has no eos_token_id")
        no_start = hf.get("decoder_start_token_id") is None
        start = pad if no_start else _id(hf, "decoder_start_token_id", dec_vocab)
        for key in ("bos_token_id", "forced_bos_token_id"):  # unused, but a sign of damage
            if hf.get(key) is not None:
                _id(hf, key, dec_vocab)
        max_position = positive_int(
            hf, "max_position_embeddings", default=1024, maximum=MAX_POSITIONS
        )
        table_rows = max_position + (pad + 1 if positions == "fairseq" else 0)
        if table_rows * d_model > MAX_POSITION_TABLE:
            raise ModelLoadError(
                f"config.json: the position table of 'max_position_embeddings' ({max_position})"
                f" x 'd_model' ({d_model}) would have {table_rows * d_model} entries, more than"
                f" the engine builds ({MAX_POSITION_TABLE})"
            )
        dtype_name = hf.get("dtype") or hf.get("torch_dtype") or "float32"
        try:
            dtype = parse_dtype(str(dtype_name))
        except ValueError as exc:
            raise ModelLoadError(f"config.json: {exc}") from None
        return cls(
            architecture=archs[0],
            d_model=d_model,
            encoder_layers=positive_int(hf, "encoder_layers", maximum=MAX_LAYERS),
            decoder_layers=positive_int(hf, "decoder_layers", maximum=MAX_LAYERS),
            encoder_heads=enc_heads,
            decoder_heads=dec_heads,
            encoder_ffn_dim=positive_int(hf, "encoder_ffn_dim", maximum=MAX_FFN_DIM),
            decoder_ffn_dim=positive_int(hf, "decoder_ffn_dim", maximum=MAX_FFN_DIM),
            vocab_size=vocab,
            decoder_vocab_size=dec_vocab,
            max_position=max_position,
            activation=act,
            scale_embedding=_flag(hf, "scale_embedding", False),
            pad_token_id=pad,
            eos_token_id=eos_ids[0],
            decoder_start_token_id=start,
            pre_norm=pre_norm,
            positions=positions,
            share_embeddings=share,
            tie_word_embeddings=_flag(hf, "tie_word_embeddings", True),
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
        cls,
        gen: Mapping[str, Any],
        config: Mapping[str, Any],
        eos_fallback: int,
        *,
        vocab_size: int | None = None,
    ) -> GenerationDefaults:
        """Merge ``generation_config.json`` (``gen``) over ``config.json`` (``config``).

        Settings the engine does not implement (n-gram blocking, repetition penalty,
        min_length, multi-token bad words) are listed in ``ignored`` for the loader to
        log, rather than refusing a checkpoint over a decoding nicety. A value that is
        malformed (wrong type, out of range, NaN) is refused instead: it means the file is
        damaged, and guessing what it meant would decode differently from ``transformers``.

        Args:
            gen: parsed ``generation_config.json`` (empty when the checkpoint has none).
            config: parsed ``config.json``, for the generation keys older files kept there.
            eos_fallback: the network config's EOS, when neither file names one.
            vocab_size: the decoder vocabulary; token ids at or above it are refused.

        Raises:
            ModelLoadError: a malformed value; the message names the file and the key.
        """
        limit = vocab_size if vocab_size is not None else MAX_VOCAB_SIZE

        def get(key: str, default: Any = None) -> tuple[Any, str]:
            # null means "unset" (transformers 5 writes some defaults as null).
            if gen.get(key) is not None:
                return gen[key], "generation_config.json"
            if config.get(key) is not None:
                return config[key], "config.json"
            return default, "generation_config.json"

        ignored: list[str] = []
        for key, neutral in (
            ("no_repeat_ngram_size", 0),
            ("repetition_penalty", 1.0),
            ("encoder_no_repeat_ngram_size", 0),
            ("min_length", 0),
        ):
            value, _ = get(key, neutral)
            if value != neutral:
                ignored.append(f"{key}={_short(value)}")
        bad, ignored_bad = _bad_words(*get("bad_words_ids"), limit)
        ignored += ignored_bad
        early, where = get("early_stopping", False)
        if early not in (True, False, "never"):
            raise ModelLoadError(
                f"{where}: 'early_stopping' must be true, false or 'never', got {_short(early)}"
            )
        max_length, where = get("max_length")
        if max_length is not None:
            max_length = _int_in(max_length, where, "max_length", 1, MAX_GENERATION_LENGTH)
        num_beams = _int_in(*get("num_beams", 1), "num_beams", 1, MAX_CONFIG_BEAMS)
        penalty, where = get("length_penalty", 1.0)
        number = float(penalty) if _is_number(penalty) else math.nan
        if not abs(number) <= MAX_LENGTH_PENALTY:  # NaN fails too
            raise ModelLoadError(
                f"{where}: 'length_penalty' must be a number in [-{MAX_LENGTH_PENALTY:g}, "
                f"{MAX_LENGTH_PENALTY:g}], got {_short(penalty)}"
            )
        forced_ids = _ids(*get("forced_eos_token_id"), "forced_eos_token_id", limit)
        eos = _ids(*get("eos_token_id"), "eos_token_id", limit) or (eos_fallback,)
        return cls(
            max_length=max_length if max_length is not None and max_length > 1 else None,
            num_beams=num_beams,
            length_penalty=number,
            early_stopping=early,
            eos_token_ids=eos,
            forced_eos_token_id=forced_ids[0] if forced_ids else None,
            bad_token_ids=bad,
            ignored=tuple(ignored),
        )


def _short(value: object) -> str:
    """``repr`` for messages, cut so a hostile value cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)  # 10**400 overflows
    except OverflowError:
        return False
    return True


def _int_in(value: object, where: str, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ModelLoadError(
            f"{where}: {key!r} must be an integer in [{lo}, {hi}], got {_short(value)}"
        )
    return value


def _flag(hf: Mapping[str, Any], key: str, default: bool) -> bool:
    """A JSON boolean (null: ``default``); ``bool("false")`` would be True."""
    value = hf.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ModelLoadError(f"config.json: {key!r} must be true or false, got {_short(value)}")
    return value


def _id(hf: Mapping[str, Any], key: str, vocab: int) -> int:
    """``hf[key]`` as a token id below ``vocab`` (``config.json``)."""
    return _int_in(hf.get(key), "config.json", key, 0, vocab - 1)


def _ids(value: object, where: str, key: str, vocab: int) -> tuple[int, ...]:
    """A token id or list of them (HF allows both), each below ``vocab``; null: ()."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(_int_in(v, where, key, 0, vocab - 1) for v in items)


def _bad_words(value: object, where: str, vocab: int) -> tuple[tuple[int, ...], list[str]]:
    """(single banned tokens, ignored multi-token entries) of HF ``bad_words_ids``.

    The shape is ``[[id, ...], ...]``; transformers refuses anything else, and so do we.
    """
    if value is None:
        return (), []
    if not isinstance(value, list):
        raise ModelLoadError(
            f"{where}: 'bad_words_ids' must be a list of token-id lists, got {_short(value)}"
        )
    bad: list[int] = []
    ignored: list[str] = []
    for seq in value:
        if not isinstance(seq, list) or not seq:
            raise ModelLoadError(
                f"{where}: each 'bad_words_ids' entry must be a non-empty list of token ids,"
                f" got {_short(seq)}"
            )
        ids = [_int_in(v, where, "bad_words_ids", 0, vocab - 1) for v in seq]
        if len(ids) == 1:
            bad.append(ids[0])
        else:
            ignored.append(f"bad_words_ids entry {_short(seq)}")
    return tuple(bad), ignored
