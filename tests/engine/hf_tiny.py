"""Tiny random Hugging Face checkpoints for engine tests (no hub access needed).

Builds transformers models from small configs with non-trivial random weights (norm
weights and biases randomised too, so a loader that skips them fails parity), a small
byte-level BPE tokenizer trained in memory, and helpers that drive an engine model through
a real paged KV cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    MistralConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from engine import FinalRecord, TextDelta
from engine.attention_metadata import AttentionMetadata

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "Hello, how can I help you today? Your order has shipped.",
    "Bonjour, comment puis-je vous aider ? Votre commande est en route.",
    "Hallo, wie kann ich helfen? Ihre Bestellung ist unterwegs.",
    "The quick brown fox jumps over the lazy dog 0123456789.",
    "Refunds take five to seven business days to appear on your statement.",
]

_CONFIGS: dict[str, type[PretrainedConfig]] = {
    "LlamaForCausalLM": LlamaConfig,
    "Qwen2ForCausalLM": Qwen2Config,
    "MistralForCausalLM": MistralConfig,
}


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # 32 puts head_dim-16 frequencies in all three llama3 bands (kept, smoothed, scaled).
    "original_max_position_embeddings": 32,
}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-gqa-llama3-rope": ("LlamaForCausalLM", {"rope_scaling": LLAMA3_ROPE}),
    "llama-mha-bias-linear-rope": (
        "LlamaForCausalLM",
        {
            "num_key_value_heads": 4,
            "attention_bias": True,
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "rope_theta": 500.0,
        },
    ),
    "qwen2-bias-tied": ("Qwen2ForCausalLM", {"tie_word_embeddings": True}),
    "qwen2-bias-untied": ("Qwen2ForCausalLM", {"tie_word_embeddings": False}),
    "mistral-headdim32": ("MistralForCausalLM", {"head_dim": 32, "num_key_value_heads": 1}),
}


def build_pair(
    case: str,
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel, Any]:
    """(fp32 HF model, engine model with the same weights in ``dtype``), both on ``device``."""
    import dataclasses

    from engine.loader import load_weights
    from engine.models import config_from_hf, get_model_class

    arch, overrides = CASES[case]
    hf = tiny_model(tiny_config(arch, **overrides), seed=seed).to(device)
    config = dataclasses.replace(config_from_hf(hf.config.to_dict()), dtype=dtype)
    with torch.device(device):
        ours = get_model_class(arch)(config)
    load_weights(ours, hf.state_dict().items(), source=case)
    return hf, ours.eval()


def build_tokenizer(vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with ChatML specials, trained on a few sentences."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_sentencepiece_tokenizer(vocab_size: int = 200) -> PreTrainedTokenizerFast:
    """A Llama-2 style tokenizer: SentencePiece BPE ("▁" for spaces) with byte fallback
    (``<0x..>`` tokens for characters it never saw), and the decoder chain Llama-2's fast
    tokenizer uses, which strips the leading space of a decode."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    trained.train_from_iterator(_CORPUS * 4, trainer=trainer)
    model = json.loads(trained.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    for b in range(256):  # SentencePiece puts the byte pieces among the ordinary ones
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    )
    tok.normalizer = trained.normalizer
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def tiny_config(architecture: str, vocab_size: int = 320, **overrides: Any) -> PretrainedConfig:
    """A 2-layer GQA config of the given HF architecture (fp32)."""
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "architectures": [architecture],
    }
    kwargs.update(overrides)
    return _CONFIGS[architecture](**kwargs)


def tiny_model(config: PretrainedConfig, seed: int = 0) -> PreTrainedModel:
    """Random fp32 HF model; weights scaled up so logits are far from uniform."""
    torch.manual_seed(seed)
    # Eager attention: the plainest math, and it runs in fp64 on every device.
    model = AutoModelForCausalLM.from_config(
        config, dtype=torch.float32, attn_implementation="eager"
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(torch.randn_like(p))
            else:  # projections: unit-ish output scale for unit-ish inputs
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    return model.eval()


def save_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    path: Path,
    max_shard_size: str | None = None,
) -> Path:
    """save_pretrained model (safetensors) + tokenizer into ``path``."""
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, **kwargs)
    tokenizer.save_pretrained(path)
    return path


class PagedRunner:
    """Drives one sequence through an engine model with a real paged KV cache.

    The block table is deliberately shuffled so reads that ignore it fail. Everything lives
    on the model's device.
    """

    def __init__(self, model: Any, block_size: int = 4, num_blocks: int = 64) -> None:
        cfg = model.config
        shape = (num_blocks, block_size, cfg.num_kv_heads, cfg.head_dim)
        self.device = dev = next(model.parameters()).device
        self.model = model
        self.block_size = block_size
        self.kv_caches = [
            (
                torch.zeros(shape, dtype=cfg.dtype, device=dev),
                torch.zeros(shape, dtype=cfg.dtype, device=dev),
            )
            for _ in range(cfg.num_layers)
        ]
        gen = torch.Generator().manual_seed(1234)
        self.block_table = torch.randperm(num_blocks, generator=gen, device="cpu").to(torch.int32)
        self.length = 0

    def _t(self, data: Any, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.as_tensor(data, dtype=dtype, device="cpu").to(self.device)

    def _slots(self, positions: torch.Tensor) -> torch.Tensor:
        blocks = self.block_table[positions // self.block_size].long()
        return (blocks * self.block_size + positions % self.block_size).to(self.device)

    @torch.inference_mode()
    def prefill(self, tokens: list[int], all_logits: bool = False) -> torch.Tensor:
        """Feed a prompt chunk after what is cached; logits of its last token (or all)."""
        n = len(tokens)
        positions = torch.arange(self.length, self.length + n, device="cpu")
        meta = AttentionMetadata(
            slot_mapping=self._slots(positions),
            num_prefill_tokens=n,
            prefill_cu_seqlens_q=self._t([0, n], torch.int32),
            prefill_context_lens=self._t([self.length + n], torch.int32),
            prefill_block_tables=self._t(self.block_table[None, :], torch.int32),
            logits_indices=None if all_logits else self._t([n - 1]),
        )
        self.length += n
        out: torch.Tensor = self.model(
            self._t(tokens), positions.to(self.device), self.kv_caches, meta
        )
        return out

    @torch.inference_mode()
    def decode(self, token: int) -> torch.Tensor:
        """Feed one token; logits [1, V]."""
        positions = torch.tensor([self.length], device="cpu")
        meta = AttentionMetadata(
            slot_mapping=self._slots(positions),
            num_prefill_tokens=0,
            decode_context_lens=self._t([self.length + 1], torch.int32),
            decode_block_tables=self._t(self.block_table[None, :], torch.int32),
            logits_indices=self._t([0]),
        )
        self.length += 1
        out: torch.Tensor = self.model(
            self._t([token]), positions.to(self.device), self.kv_caches, meta
        )
        return out

    def greedy(self, prompt: list[int], steps: int) -> tuple[list[int], list[torch.Tensor]]:
        """Greedy tokens and per-step logits [V] for ``steps`` new tokens."""
        logits = self.prefill(prompt)[0]
        out, all_logits = [], [logits]
        for _ in range(steps):
            token = int(logits.argmax())
            out.append(token)
            if len(out) == steps:
                break
            logits = self.decode(token)[0]
            all_logits.append(logits)
        return out, all_logits


# -- GGUF ------------------------------------------------------------------------------

_GGUF_LAYER = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GGUF_GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def llama_cpp_permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp convert_hf_to_gguf.py ``LlamaModel.permute`` (rotary halves interleaved)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_name(hf_name: str) -> str:
    if hf_name in _GGUF_GLOBAL:
        return _GGUF_GLOBAL[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    module, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{_GGUF_LAYER[module]}.{kind}"


def quantize_like_gguf(name: str, w: torch.Tensor) -> tuple[Any, Any]:
    """(array for GGUFWriter, raw_dtype): 2-D weights as Q8_0, the rest F32."""
    import gguf

    arr = w.detach().float().numpy()
    if arr.ndim == 2 and arr.shape[1] % 32 == 0:
        q8 = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(arr, q8), q8
    return arr, None


def dequantized_state_dict(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """What a Q8_0 GGUF of ``model`` holds after dequantization, in HF layout.

    Q8_0 blocks run along the input dim, so quantizing before or after llama.cpp's row
    permutation gives the same numbers: this is an independent reference for the loader.
    """
    import gguf

    out = {}
    for name, w in model.state_dict().items():
        arr, raw = quantize_like_gguf(name, w)
        if raw is not None:
            arr = gguf.quants.dequantize(arr, raw)
        out[name] = torch.from_numpy(arr.copy()).reshape(w.shape)
    return out


def write_gguf(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    path: Path,
    *,
    tokenizer_meta: bool = True,
) -> Path:
    """Write ``model`` as llama.cpp would: llama or qwen2 metadata, Q8_0 matrices,
    llama's Q/K rows permuted, tokenizer vocabulary and merges as GGUF metadata."""
    import json

    import gguf

    cfg = model.config
    arch = {"llama": "llama", "qwen2": "qwen2"}[cfg.model_type]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    if tokenizer_meta:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        vocab = spec["model"]["vocab"]
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
        w.add_token_merges(merges)
        w.add_bos_token_id(tokenizer.bos_token_id)
        w.add_eos_token_id(tokenizer.eos_token_id)
        w.add_chat_template(CHAT_TEMPLATE)
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        if arch == "llama" and ".q_proj." in name:
            tensor = llama_cpp_permute(tensor, heads)
        elif arch == "llama" and ".k_proj." in name:
            tensor = llama_cpp_permute(tensor, kv_heads)
        arr, raw = quantize_like_gguf(name, tensor)
        w.add_tensor(gguf_name(name), arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_gguf_in_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny Llama written as ``tmp_path/m.gguf``, with botkit's cache (where its
    conversions go) in ``tmp_path/cache`` so a test sees only the conversions it made."""
    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(tmp_path / "cache"))
    tok = build_tokenizer()
    model = tiny_model(tiny_config("LlamaForCausalLM", vocab_size=len(tok)), seed=0)
    return write_gguf(model, tok, tmp_path / "m.gguf")


async def collect(stream: Any) -> tuple[str, FinalRecord]:
    """The text of an engine's reply stream and its final record."""
    text, final = "", None
    async for item in stream:
        if isinstance(item, TextDelta):
            text += item.text
        else:
            final = item
    assert final is not None
    return text, final
