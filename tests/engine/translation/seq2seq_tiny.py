"""Tiny random translation checkpoints for the translation-engine tests (no hub access).

Builds real HF checkpoint directories: a sentencepiece model trained in memory on a few
customer-service lines, the tokenizer files transformers expects (Marian: source.spm /
target.spm / vocab.json; M2M100: vocab.json + sentencepiece.bpe.model; NLLB: tokenizer.json),
a random ``MarianMTModel`` / ``M2M100ForConditionalGeneration`` with non-trivial weights
(norm weights and biases randomised too, so a loader that skips them fails parity) and a
``generation_config.json`` like the published checkpoints'.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from transformers import (
    GenerationConfig,
    M2M100Config,
    M2M100ForConditionalGeneration,
    M2M100Tokenizer,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    NllbTokenizer,
    PreTrainedModel,
)

CORPUS = [
    "Hello, how can I help you today? Your order has shipped.",
    "Bonjour, comment puis-je vous aider ? Votre commande est en route.",
    "Hola, ¿cómo puedo ayudarle? Su pedido ha sido enviado.",
    "Hallo, wie kann ich helfen? Ihre Bestellung ist unterwegs.",
    "Refunds take five to seven business days to appear on your statement.",
    "Where is my parcel? I ordered it last week and paid by card.",
    "您好，我能帮您什么？您的订单已发货。",  # noqa: RUF001 - real Chinese punctuation
]
SENTENCES = [
    "Where is my order?",
    "Hello, I paid by card last week.",
    "Refunds take five days.",
    "Hallo, wie kann ich helfen?",
    "ok",
    "Your parcel is on its way to you, and the refund will appear on your statement.",
]
_SIZES: dict[str, Any] = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 128,
    "dropout": 0.0,
    "attention_dropout": 0.0,
}


def _spm_pieces(vocab_size: int = 160, model_type: str = "unigram") -> tuple[bytes, list[str]]:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        bos_id=-1,
        eos_id=1,
        unk_id=2,
        pad_id=0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    proc = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
    return buf.getvalue(), [p for p in pieces if p not in ("<pad>", "</s>", "<unk>")]


def randomize(model: PreTrainedModel, seed: int, eos_id: int, eos_boost: float) -> None:
    """Non-trivial random weights whose greedy / beam outputs vary and sometimes end.

    Random tied models collapse into copying their input token (the residual stream is
    mostly the input embedding, and the tied head scores it highest), so untied heads get
    their own larger weights, embeddings stay small, and ``eos_boost`` makes EOS win at
    varying steps: added to Marian's logits bias, multiplied into M2M100's EOS head row.
    """
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" in name:
                continue  # fixed sinusoids (recomputed at load, never saved)
            if "layer_norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif "shared" in name or "embed_tokens" in name:
                p.copy_(0.3 * torch.randn_like(p))
            elif "lm_head" in name:
                p.copy_(4.0 * torch.randn_like(p) / p.shape[-1] ** 0.5)
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias.copy_(0.1 * torch.randn_like(bias))
            bias[0, eos_id] += eos_boost
        elif not model.config.tie_word_embeddings:
            model.get_output_embeddings().weight[eos_id] *= eos_boost
    model.eval()


def build_marian(
    path: Path,
    *,
    seed: int = 0,
    activation: str = "swish",
    multi_target: bool = False,
    early_stopping: bool | str = False,
    eos_boost: float = 10.0,
    save_bin: bool = False,
    tie: bool = False,
    length_penalty: float = 1.0,
    target: str = "de",
    target_tokens: tuple[str, ...] = (),
) -> MarianMTModel:
    """An OPUS-MT-like en->de checkpoint in ``path`` (``multi_target``: en->{de,es,fr}).

    ``target`` and ``target_tokens`` (the codes of ``>>xx<<`` tokens) make other targets:
    ``target="zh"`` is opus-mt-en-zh-like.
    """
    path.mkdir(parents=True, exist_ok=True)
    model_proto, pieces = _spm_pieces()
    (path / "source.spm").write_bytes(model_proto)
    (path / "target.spm").write_bytes(model_proto)
    vocab = {"</s>": 0, "<unk>": 1}
    if multi_target:
        target, target_tokens = "ROMANCE", ("de", "es", "fra")
    for tok in [f">>{code}<<" for code in target_tokens] + pieces:
        vocab.setdefault(tok, len(vocab))
    vocab["<pad>"] = pad = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    MarianTokenizer(
        str(path / "source.spm"),
        str(path / "target.spm"),
        str(path / "vocab.json"),
        source_lang="en",
        target_lang=target,
    ).save_pretrained(path)
    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        activation_function=activation,
        scale_embedding=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        tie_word_embeddings=tie,
        architectures=["MarianMTModel"],
        **_SIZES,
    )
    model = MarianMTModel._from_config(config, attn_implementation="eager")
    randomize(model, seed, 0, eos_boost)
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]],
        bos_token_id=0,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=64,
        num_beams=4,
        pad_token_id=pad,
        early_stopping=early_stopping,
        length_penalty=length_penalty,
    )
    model.save_pretrained(path)
    if save_bin:
        (path / "model.safetensors").unlink()
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return model


def build_m2m100(
    path: Path, *, seed: int = 1, eos_boost: float = 2.0, tie: bool = False
) -> M2M100ForConditionalGeneration:
    """An M2M100-like many-to-many checkpoint (100 ``__xx__`` language tokens)."""
    path.mkdir(parents=True, exist_ok=True)
    model_proto, pieces = _spm_pieces(model_type="bpe")
    (path / "sentencepiece.bpe.model").write_bytes(model_proto)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for tok in pieces:
        vocab.setdefault(tok, len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    tok = M2M100Tokenizer(
        str(path / "vocab.json"),
        str(path / "sentencepiece.bpe.model"),
        src_lang="en",
        tgt_lang="es",
    )
    tok.save_pretrained(path)
    return _m2m_model(path, max(tok.lang_code_to_id.values()) + 1 + 8, seed, eos_boost, tie)


def build_nllb(
    path: Path, *, seed: int = 2, eos_boost: float = 2.0, tie: bool = False
) -> M2M100ForConditionalGeneration:
    """An NLLB-200-like checkpoint: M2M100 architecture, FLORES codes, tokenizer.json."""
    path.mkdir(parents=True, exist_ok=True)
    chars = sorted(set("".join(CORPUS)) - {" "})
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁": 4}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    merges = [("▁", "H"), ("o", "r"), ("e", "r")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = NllbTokenizer(vocab=vocab, merges=merges, src_lang="eng_Latn")
    tok.save_pretrained(path)
    return _m2m_model(path, len(tok) + 8, seed, eos_boost, tie)


def _m2m_model(path: Path, vocab_size: int, seed: int, eos_boost: float, tie: bool) -> Any:
    config = M2M100Config(
        vocab_size=vocab_size,
        activation_function="relu",
        scale_embedding=True,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        tie_word_embeddings=tie,
        architectures=["M2M100ForConditionalGeneration"],
        **_SIZES,
    )
    model = M2M100ForConditionalGeneration._from_config(config, attn_implementation="eager")
    randomize(model, seed, 2, eos_boost)
    model.generation_config = GenerationConfig(
        bos_token_id=0,
        decoder_start_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
        max_length=64,
        num_beams=5,
        early_stopping=True,
    )
    model.save_pretrained(path)
    return model


def hf_generated(sequences: torch.Tensor, eos_id: int, max_new_tokens: int) -> list[list[int]]:
    """HF ``generate`` output rows -> generated ids (start token dropped, cut after EOS)."""
    out = []
    for row in sequences.tolist():
        row = row[1 : 1 + max_new_tokens]
        out.append(row[: row.index(eos_id) + 1] if eos_id in row else row)
    return out


def padded_batch(
    sources: list[list[int]], pad: int, device: Any = "cpu"
) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` + ``attention_mask`` for transformers."""
    width = max(map(len, sources))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in sources], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sources], device=device)
    return {"input_ids": ids, "attention_mask": mask}


def packed_batch(
    sources: list[list[int]], device: Any = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(packed ids [S], cu_seqlens [B+1] int32, lengths [B]) for ``Seq2SeqLM.encode``."""
    lens = torch.tensor([len(s) for s in sources])
    cu = torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)]).to(torch.int32)
    ids = torch.tensor([t for s in sources for t in s])
    return ids.to(device), cu.to(device), lens.to(device)


def max_error_vs(
    ours: torch.Tensor, same_dtype: torch.Tensor, ref64: torch.Tensor
) -> tuple[float, float]:
    """(max|ours - ref|, max|transformers same dtype - ref|) for the 2x rule."""
    ref = ref64.double().cpu()
    return (
        (ours.double().cpu() - ref).abs().max().item(),
        (same_dtype.double().cpu() - ref).abs().max().item(),
    )
