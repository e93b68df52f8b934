"""The lean CPU decoder (engine.cpu_decode) and its bag products (engine.cpu_linear).

Tolerance (shared REFERENCE.md): ``max|ours - fp64| <= 2 * max|F.linear's - fp64| + eps``;
with ``bags=False`` the decoder must be bit-identical to the model's own forward.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hf_tiny import CASES, PagedRunner, build_pair

from engine.cpu_decode import CpuDecoder
from engine.cpu_linear import CpuLinear, split_parts
from engine.layers import use_column_major_weights
from engine.layers._cpu_gemm import linear

PROMPT = [5, 17, 99, 3, 42, 7, 8, 9, 10]


def _prefilled(case: str, dtype: torch.dtype = torch.float32,
               consecutive: bool = False) -> tuple[Any, PagedRunner]:
    """A column-major engine model with PROMPT prefilled through its own forward."""
    _, model = build_pair(case, dtype=dtype)
    use_column_major_weights(model)
    runner = PagedRunner(model)  # shuffled block table: the decoder must gather pages
    if consecutive:
        runner.block_table = torch.arange(runner.block_table.numel(), dtype=torch.int32)
    runner.prefill(PROMPT)
    return model, runner


def _clone(caches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, ...]]:
    return [(k.clone(), v.clone()) for k, v in caches]


def _decode_steps(decoder: CpuDecoder, runner: PagedRunner, caches: Any,
                  feed: list[int] | None = None) -> list[torch.Tensor]:
    """Decode 3 tokens on ``caches`` (a copy of the runner's): greedy, or the ``feed``
    tokens (so decoders that may disagree on an argmax see the same inputs); logits [V]."""
    table = runner.block_table.tolist()
    pos, token, out = runner.length, 11, []
    for step in range(3):
        logits = decoder.forward([token], [pos], [table], caches)[0]
        out.append(logits)
        token = int(logits.argmax()) if feed is None else feed[step]
        pos += 1
    return out


# ----------------------------------------------------------------------- parity
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("consecutive", [False, True], ids=["gathered", "consecutive"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_decoder_without_bags_is_bit_identical_to_the_model_forward(
    case: str, consecutive: bool, dtype: torch.dtype
) -> None:
    model, runner = _prefilled(case, dtype, consecutive)
    decoder = CpuDecoder(model, max_parts=2, bags=False)
    caches = _clone(runner.kv_caches)
    token = 11
    for _ in range(3):
        pos = runner.length
        expected = runner.decode(token)  # the general forward, on the runner's caches
        got = decoder.forward([token], [pos], [runner.block_table.tolist()], caches)
        assert got.dtype == torch.float32 and torch.equal(got, expected)
        token = int(expected.argmax())
    for (k, v), (k_ref, v_ref) in zip(caches, runner.kv_caches, strict=True):
        assert torch.equal(k, k_ref) and torch.equal(v, v_ref)


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("case", ["llama-gqa-llama3-rope", "qwen2-bias-tied"])
def test_bag_decoder_within_tolerance_of_f_linear(case: str, parts: int) -> None:
    model, runner = _prefilled(case)
    bags = CpuDecoder(model, max_parts=parts)
    assert bags.layers[0].gate_up.use_bags and bags.lm_head.parts == parts
    plain = _decode_steps(CpuDecoder(model, bags=False), runner, _clone(runner.kv_caches))
    feed = [int(x.argmax()) for x in plain]
    got = _decode_steps(bags, runner, _clone(runner.kv_caches), feed)
    model64, runner64 = _prefilled(case, torch.float64)
    ref = _decode_steps(CpuDecoder(model64), runner64, _clone(runner64.kv_caches), feed)
    for ours, base, exact in zip(got, plain, ref, strict=True):
        assert torch.equal(ours.argmax(), base.argmax())
        err, base_err = (ours.double() - exact).abs().max(), (base.double() - exact).abs().max()
        assert err <= 2 * base_err + 1e-5, (err, base_err)


def test_bag_logits_do_not_depend_on_the_thread_count() -> None:
    model, runner = _prefilled("llama-gqa-llama3-rope")
    decoder = CpuDecoder(model, max_parts=2)
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(_decode_steps(decoder, runner, _clone(runner.kv_caches)))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_batched_decode_matches_each_sequence_alone() -> None:
    """Three sequences in one step (one of them not sampling) = each run alone."""
    model, runner = _prefilled("qwen2-bias-untied")
    decoder = CpuDecoder(model, max_parts=2)
    table = runner.block_table.tolist()
    caches = _clone(runner.kv_caches)
    # Three sequences sharing the prefilled prefix in place, each with its own last block.
    base, bs = runner.length, runner.block_size
    tables = [[*table[:base // bs], table[-1 - i]] for i in range(3)]
    for t in tables:  # copy the shared partial block into each sequence's own block
        for k, v in caches:
            k[t[-1]].copy_(k[table[base // bs]])
            v[t[-1]].copy_(v[table[base // bs]])
    tokens, positions = [11, 12, 13], [base] * 3
    alone = [decoder.forward([tok], [base], [t], _clone(caches))[0]
             for tok, t in zip(tokens, tables, strict=True)]
    none = decoder.forward(tokens, positions, tables, _clone(caches), sample_rows=[])
    assert none.shape == (0, model.config.vocab_size)
    together = decoder.forward(tokens, positions, tables, caches, sample_rows=[0, 2])
    assert together.shape == (2, model.config.vocab_size)
    torch.testing.assert_close(together[0], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together[1], alone[2], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------- hostile input
def _bad_inputs(vocab: int, max_pos: int, table: list[int], pos: int) -> list[tuple[Any, ...]]:
    return [
        ([vocab], [pos], [table], "outside the vocabulary"),
        ([-1], [pos], [table], "outside the vocabulary"),
        ([3], [-1], [table], "position"),
        ([3], [max_pos], [table], "position"),
        ([3], [pos], [table[:1]], "cannot hold position"),
        ([3], [pos], [[10**6] * len(table)], "block ids"),
        ([3], [pos], [[-1] * len(table)], "block ids"),
        ([3, 4], [pos], [table], "one position and block table per token"),
        ([], [], [], "one position and block table per token"),
    ]


def test_bad_step_inputs_raise_and_leave_the_cache_untouched() -> None:
    model, runner = _prefilled("llama-gqa-llama3-rope")
    decoder = CpuDecoder(model, max_parts=2)
    caches = _clone(runner.kv_caches)
    snapshot = _clone(caches)
    cfg = model.config
    for ids, pos, tables, match in _bad_inputs(cfg.vocab_size, cfg.max_position,
                                               runner.block_table.tolist(), runner.length):
        with pytest.raises(ValueError, match=match):
            decoder.forward(ids, pos, tables, caches)
    with pytest.raises(ValueError, match="KV caches"):
        decoder.forward([3], [runner.length], [runner.block_table.tolist()], caches[:1])
    for (k, v), (k0, v0) in zip(caches, snapshot, strict=True):
        assert torch.equal(k, k0) and torch.equal(v, v0)


def test_for_model_only_takes_cpu_llama_family_models() -> None:
    _, model = build_pair("mistral-headdim32")
    assert isinstance(CpuDecoder.for_model(model), CpuDecoder)
    assert CpuDecoder.for_model(torch.nn.Linear(4, 4)) is None


# ----------------------------------------------------------------------- CpuLinear
@pytest.mark.parametrize("parts", [1, 4])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_cpu_linear_bags_match_f_linear(batch: int, bias: bool, parts: int) -> None:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(48, 64, generator=gen).t().contiguous().t()  # column-major
    b = torch.randn(48, generator=gen) if bias else None
    x = torch.randn(batch, 64, generator=gen)
    model_call = linear(x, weight, b)  # what the model's Linear computes
    plain = CpuLinear(weight, b, max_parts=parts, bags=False)
    assert not plain.use_bags and torch.equal(plain(x), model_call)
    bags = CpuLinear(weight, b, max_parts=parts)
    assert bags.use_bags and bags.parts == parts
    assert bags.wt.data_ptr() == weight.data_ptr()  # a view, no copy
    got = bags(x)
    assert got.shape == (batch, 48) and bags(x).shape == (batch, 48)  # cached bag inputs
    if batch > bags.bag_max_rows:  # several rows: the model's own product
        assert torch.equal(got, model_call)
    exact = torch.nn.functional.linear(x.double(), weight.double(),
                                       None if b is None else b.double())
    expected = torch.nn.functional.linear(x, weight, b)
    err = (got.double() - exact).abs().max()
    assert err <= 2 * (expected.double() - exact).abs().max() + 1e-6
    torch.testing.assert_close(CpuLinear(weight, b, parts)(x[:1]), got[:1])  # other batch


@pytest.mark.parametrize("rows", [1, 2, 7, 64])
@pytest.mark.parametrize("shape", [(960, 576), (576, 1536), (512, 2048)])
def test_cpu_gemm_within_the_float32_error_bound(rows: int, shape: tuple[int, int]) -> None:
    """oneDNN's product (where this build has it) against float64, element by element.

    Bound: the classical one for a float32 dot product of length K summed in any order,
    ``|err| <= gamma_K * sum_k |x_k w_k|`` with ``gamma_K = K u / (1 - K u)``, ``u = 2^-24``
    (Higham, Accuracy and Stability, 3.1). A product of the wrong rows or columns, or one
    that drops terms, misses it by orders of magnitude; plain MKL meets it too.
    """
    gen = torch.Generator().manual_seed(rows)
    out_f, in_f = shape
    weight = torch.randn(out_f, in_f, generator=gen).t().contiguous().t()
    bias = torch.randn(out_f, generator=gen)
    x = torch.randn(rows, in_f, generator=gen)
    got = linear(x, weight, bias).double()
    exact = torch.nn.functional.linear(x.double(), weight.double(), bias.double())
    u = 2.0**-24
    gamma = (in_f + 1) * u / (1 - (in_f + 1) * u)  # K products + the bias term
    magnitude = x.double().abs() @ weight.double().abs().t() + bias.double().abs()
    assert bool(((got - exact).abs() <= gamma * magnitude).all())
    assert not torch.equal(got, exact)  # a float32 product, not a float64 one


def test_cpu_linear_uses_bags_only_where_they_apply() -> None:
    assert split_parts(576, 2) == 2 and split_parts(9, 2) == 1 and split_parts(9, 4) == 3
    assert split_parts(8, 0) == 1
    row_major = torch.randn(8, 6)  # W^T rows are not contiguous
    assert not CpuLinear(row_major, None, 2).use_bags
    col_major = row_major.t().contiguous().t()
    assert CpuLinear(col_major, None, 2).parts == 2
    assert not CpuLinear(col_major.to(torch.bfloat16), None, 2).use_bags
    odd = CpuLinear(torch.randn(8, 7).t().contiguous().t(), None, 2)
    assert odd.use_bags and odd.parts == 1  # 7 rows: one bag
    x = torch.randn(2, 6)
    torch.testing.assert_close(CpuLinear(row_major, None, 2)(x), x @ row_major.t())
    with pytest.raises(ValueError, match="2-D"):
        CpuLinear(torch.randn(8), None, 2)


def test_without_onednn_products_fall_back_to_f_linear_and_bags_serve_a_few_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A torch build without the oneDNN op: the model's products are F.linear's, bit for
    bit, and the decoders' bags take up to BAG_MAX_ROWS rows (MKL the rest)."""
    import engine.cpu_linear as cpu_linear_module
    import engine.layers._cpu_gemm as gemm

    monkeypatch.setattr(gemm, "cpu_linear_op", lambda: None)
    monkeypatch.setattr(cpu_linear_module, "cpu_linear_op", lambda: None)
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(48, 64, generator=gen).t().contiguous().t()
    bias = torch.randn(48, generator=gen)
    x = torch.randn(cpu_linear_module.BAG_MAX_ROWS + 1, 64, generator=gen)
    assert torch.equal(linear(x, weight, bias), torch.nn.functional.linear(x, weight, bias))
    bags = CpuLinear(weight, bias, 2)
    assert bags.bag_max_rows == cpu_linear_module.BAG_MAX_ROWS
    few = x[: cpu_linear_module.BAG_MAX_ROWS]
    assert not torch.equal(bags(few), torch.nn.functional.linear(few, weight, bias))  # bags
    torch.testing.assert_close(bags(few), torch.nn.functional.linear(few, weight, bias))
    assert torch.equal(bags(x), torch.nn.functional.linear(x, weight, bias))  # MKL's call
