"""Backend dispatch: automatic choice, force_backend, BOTKIT_KERNELS, lazy imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import DEVICE, ON_GPU, requires_gpu

import kernels
from kernels import reference as ref
from kernels.dispatch import active_override, force_backend, select_backend

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "rms_norm",
    "fused_add_rms_norm",
    "rope_cos_sin",
    "apply_rope_",
    "swiglu",
    "write_kv_cache",
    "rope_and_cache",
    "prefill_attention",
    "decode_attention",
    "varlen_attention",
}


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTKIT_KERNELS", raising=False)


def test_public_api_names_the_whole_contract() -> None:
    assert set(kernels.__all__) >= CONTRACT | {"force_backend"}
    for name in CONTRACT:
        assert callable(getattr(kernels, name)), name


def test_cpu_tensors_use_the_reference_by_default() -> None:
    assert active_override() is None
    assert select_backend("rms_norm", torch.zeros(2)) == "reference"


def test_force_backend_nests_and_restores() -> None:
    t = torch.zeros(2, device=DEVICE)  # where Triton runs: CUDA, or the CPU interpreter
    with force_backend("triton"):
        assert select_backend("swiglu", t) == "triton"
        with force_backend("reference"):
            assert select_backend("swiglu", t) == "reference"
        assert select_backend("swiglu", t) == "triton"
    assert active_override() is None


def test_force_backend_restores_after_an_exception() -> None:
    with pytest.raises(KeyError), force_backend("triton"):
        raise KeyError("boom")
    assert active_override() is None


def test_unknown_backend_names_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown kernel backend 'cuda'"):
        with force_backend("cuda"):  # type: ignore[arg-type]
            pass
    monkeypatch.setenv("BOTKIT_KERNELS", "fast")
    with pytest.raises(ValueError, match="BOTKIT_KERNELS: unknown kernel backend 'fast'"):
        kernels.rms_norm(torch.ones(1, 4), torch.ones(4), 1e-6)


def test_env_var_is_read_per_call_and_context_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    t = torch.zeros(2, device=DEVICE)
    monkeypatch.setenv("BOTKIT_KERNELS", "Triton ")
    assert select_backend("rms_norm", t) == "triton"
    with force_backend("reference"):
        assert select_backend("rms_norm", t) == "reference"
    monkeypatch.setenv("BOTKIT_KERNELS", "auto")
    assert active_override() is None


def test_env_var_routes_public_calls_to_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    import kernels.rmsnorm

    calls: list[str] = []
    real = kernels.rmsnorm.rms_norm

    def spy(*args: object) -> torch.Tensor:
        calls.append("triton")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(kernels, "_resolved", {})
    monkeypatch.setattr(kernels.rmsnorm, "rms_norm", spy)
    x, w = torch.randn(3, 16, device=DEVICE), torch.randn(16, device=DEVICE)
    monkeypatch.setenv("BOTKIT_KERNELS", "reference")
    kernels.rms_norm(x, w, 1e-6)
    assert calls == []
    monkeypatch.setenv("BOTKIT_KERNELS", "triton")
    out = kernels.rms_norm(x, w, 1e-6)
    assert calls == ["triton"]
    torch.testing.assert_close(out, ref.rms_norm(x, w, 1e-6))


def test_forcing_triton_on_cpu_without_interpreter_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with force_backend("triton"), pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        kernels.swiglu(torch.randn(2, 8))


def test_forcing_triton_without_triton_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kernels.dispatch.triton_available", lambda: False)
    with force_backend("triton"), pytest.raises(RuntimeError, match="not installed"):
        kernels.swiglu(torch.randn(2, 8))
    # Without forcing, a machine without triton just uses the reference.
    assert select_backend("swiglu", torch.zeros(1)) == "reference"


def test_submodule_imports_cannot_shadow_public_functions() -> None:
    """`kernels.swiglu` (and the attention modules) are also submodule names."""
    import importlib

    for op, impls in kernels._IMPLS.items():
        for module_name, attr in impls.values():
            assert callable(getattr(importlib.import_module(module_name), attr))
        assert callable(getattr(kernels, op)), f"kernels.{op} was shadowed by a module"
    assert kernels.swiglu(torch.ones(1, 4)).shape == (1, 2)


def test_import_kernels_loads_no_triton_and_probes_no_device() -> None:
    code = textwrap.dedent(
        """
        import sys, torch
        def boom(*a, **k):
            raise AssertionError("device probed at import time")
        torch.cuda.is_available = boom
        torch.cuda.device_count = boom
        torch.cuda.init = boom
        import kernels, kernels.dispatch, kernels.reference
        x = torch.randn(2, 8)
        kernels.rms_norm(x, torch.ones(8), 1e-6)
        kernels.swiglu(x)
        bad = [m for m in ("triton", "kernels.rmsnorm", "kernels.rope", "kernels.swiglu")
               if m in sys.modules]
        assert not bad, bad
        print("ok")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@requires_gpu
def test_cuda_tensors_pick_triton_unless_forced() -> None:
    x = torch.zeros(2, device="cuda")
    assert select_backend("rms_norm", x) == "triton"
    with force_backend("reference"):
        assert select_backend("rms_norm", x) == "reference"


@pytest.mark.skipif(ON_GPU, reason="checks the CPU fallback of a CUDA-less machine")
def test_auto_choice_never_picks_triton_on_cpu_even_if_interpreting() -> None:
    assert select_backend("rms_norm", torch.zeros(1)) == "reference"


@requires_gpu
def test_kernels_capture_in_a_cuda_graph() -> None:
    """No host sync on the hot path: norm, rope and swiglu replay correctly from a graph."""
    x = torch.randn(8, 896, device="cuda", dtype=torch.bfloat16)
    r = torch.randn_like(x)
    w = torch.randn(896, device="cuda", dtype=torch.bfloat16)
    q = torch.randn(8, 14, 64, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(8, 2, 64, device="cuda", dtype=torch.bfloat16)
    pos = torch.arange(8, device="cuda")
    table = kernels.rope_cos_sin(64, 64, 1e6, None, device="cuda")
    gu = torch.randn(8, 2 * 4864, device="cuda", dtype=torch.bfloat16)
    inputs = [t.clone() for t in (x, r, q, k)]

    def step() -> torch.Tensor:
        kernels.fused_add_rms_norm(x, r, w, 1e-6)
        kernels.apply_rope_(q, k, pos, table)
        return kernels.swiglu(gu)

    step()  # compile outside the capture
    for t, saved in zip((x, r, q, k), inputs, strict=True):
        t.copy_(saved)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    graph.replay()
    torch.cuda.synchronize()
    ex, er, eq, ek = (t.clone() for t in inputs)
    ref.fused_add_rms_norm(ex, er, w, 1e-6)
    ref.apply_rope_(eq, ek, pos, table)
    for got, want in ((x, ex), (r, er), (q, eq), (k, ek), (out, ref.swiglu(gu))):
        torch.testing.assert_close(got, want, atol=2**-6, rtol=2**-7)
