"""The RoPE kernels compile for Hopper (sm_90) here, with no GPU: Triton's own compiler
down to a cubin, so a kernel that only the interpreter accepts fails in CI, not on the
first GPU it meets. The attention kernels' do-not-specialize lists resolve to their
parameters (a typo there only fails where Triton compiles). A subprocess: the rest of
this suite runs the kernels interpreted, and Triton fixes that choice when a kernel
module is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_SCRIPT = textwrap.dedent(
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from kernels.rope import _rope_kernel
    from kernels.rope_cache import _rope_cache_kernel

    ptrs = {"pos_ptr": "*i64", "cs_ptr": "*fp32"}
    rope = {"q_ptr": "*bf16", "k_ptr": "*bf16", **ptrs, "n_q_heads": "i32",
            "n_k_heads": "i32", "max_pos": "i32"}
    fused = {"qkv_ptr": "*bf16", "q_ptr": "*bf16", "kc_ptr": "*bf16", "vc_ptr": "*bf16",
             **ptrs, "slot_ptr": "*i64", "n_q_heads": "i32", "max_pos": "i32",
             "num_slots": "i32"}
    cases = [
        (_rope_kernel, rope, {"HALF": 32, "HALF_PAD": 32, "BLOCK_H": 16}),
        (_rope_cache_kernel, fused, {"N_KV_HEADS": 2, "HALF": 32, "HALF_PAD": 32,
                                     "BLOCK_H": 16, "V_BLOCK": 128}),
        # Qwen2.5-1.5B heads; and a head of 160 (pairs padded), value row over a block.
        (_rope_cache_kernel, fused, {"N_KV_HEADS": 2, "HALF": 64, "HALF_PAD": 64,
                                     "BLOCK_H": 16, "V_BLOCK": 256}),
        (_rope_cache_kernel, fused, {"N_KV_HEADS": 8, "HALF": 80, "HALF_PAD": 128,
                                     "BLOCK_H": 16, "V_BLOCK": 1024}),
    ]
    for fn, sig, consts in cases:
        consts = {**consts, "INTERPRET": False}
        signature = {**sig, **{name: "constexpr" for name in consts}}
        src = ASTSource(fn=fn, signature=signature, constexprs=consts)
        compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": 4})
        assert compiled.asm["cubin"], fn
    print("compiled", len(cases))

    # Step-dependent sizes are not specialized on (each new divisibility pattern would
    # compile again mid-serving); a misspelt name would fail right here, at import.
    from kernels._attention_fwd import _attn_fwd_kernel
    from kernels.decode_attention import _decode_kernel, _merge_kernel
    unspecialized = {
        fn.__name__: sorted(p.name for p in fn.params if p.do_not_specialize)
        for fn in (_attn_fwd_kernel, _decode_kernel, _merge_kernel)
    }
    print("unspecialized", unspecialized)
    """
)
_UNSPECIALIZED = {
    "_attn_fwd_kernel": ["max_blocks", "num_k_rows", "num_seqs", "stride_bt", "total_q"],
    "_decode_kernel": [
        "max_blocks", "stride_bt", "stride_lb", "stride_lh", "stride_pb", "stride_ph",
        "tokens_per_split",
    ],
    "_merge_kernel": [
        "max_ctx", "num_splits", "stride_lb", "stride_lh", "stride_pb", "stride_ph",
        "tokens_per_split",
    ],
}  # fmt: skip


def test_rope_kernels_compile_for_sm90_and_attention_skips_per_step_specialization() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=root, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled 4" in done.stdout
    assert f"unspecialized {_UNSPECIALIZED}" in done.stdout
