"""Triton launchers of the attention and KV-cache kernels under their public op names.

``kernels/__init__.py`` resolves each op's Triton implementation as
``kernels.attention.<op>``; the launchers themselves live one per file
(``kv_cache``, ``prefill_attention``, ``decode_attention``, ``varlen_attention``) and
their PyTorch references in ``kernels.reference_attention``.
"""

from __future__ import annotations

from kernels.decode_attention import decode_attention_triton as decode_attention
from kernels.kv_cache import write_kv_cache_triton as write_kv_cache
from kernels.prefill_attention import prefill_attention_triton as prefill_attention
from kernels.varlen_attention import varlen_attention_triton as varlen_attention

__all__ = ["decode_attention", "prefill_attention", "varlen_attention", "write_kv_cache"]
