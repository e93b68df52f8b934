"""Serving knobs of the engine (the model's own shape lives in ``engine.config``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine batches, caches and queues.

    ``None`` means "pick for the device": CUDA favours big batches, the CPU small ones
    (with 2 cores a step over 8 sequences already saturates the matmuls).

    Attributes:
        block_size: tokens per KV block.
        max_num_seqs: sequences decoding together (CUDA 64, CPU 16).
        max_num_batched_tokens: tokens per step (CUDA 2048, CPU 512).
        max_model_len: context length (default: the model's ``max_position``).
        long_prefill_token_threshold: largest prefill chunk per sequence and step
            (default: CUDA 512, CPU 256) so decodes keep flowing during long prompts.
        num_kv_blocks: exact KV pool size in blocks (wins over the byte budgets).
        kv_cache_bytes: KV pool budget in bytes.
        gpu_memory_utilization: share of GPU memory the process may fill.
        enable_prefix_caching: reuse identical prompt prefixes across requests.
        cuda_graphs: replay captured graphs for decode steps on CUDA.
        cuda_graph_prefill_tokens: with ``cuda_graphs``, prefill-only steps of up to this
            many tokens (and the step budget) replay graphs too (0: never); graphs are
            captured for 16, 32, ... tokens up to the first power of two that holds it. A
            new message on a conversation whose history is cached is such a step.
        overlap_steps: with graphed decode steps, queue the next decode step on the device
            before reading this one's tokens, so the host's work between steps overlaps
            the device's (see ``LLMEngine.step``).
        skinny_kernels: on CUDA, run the linear layers of steps of at most 8 tokens
            (batch-1..8 decode) on ``kernels.skinny_linear`` and the MLP's gate/up product
            with its SwiGLU as one kernel, instead of cuBLAS. Off until it is measured
            faster on the GPU (``benchmarks/kernels.py``, section skinny_linear;
            ``benchmarks/engine.py --skinny-kernels``).
        queue_timeout_s: reject a request not started within this many seconds.
        max_waiting: reject new requests beyond this many queued.
    """

    block_size: int = 16
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    max_model_len: int | None = None
    long_prefill_token_threshold: int | None = None
    num_kv_blocks: int | None = None
    kv_cache_bytes: int | None = None
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool = True
    cuda_graphs: bool = True
    cuda_graph_prefill_tokens: int = 256
    overlap_steps: bool = True
    skinny_kernels: bool = False
    queue_timeout_s: float | None = None
    max_waiting: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "block_size": self.block_size,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_model_len": self.max_model_len,
            "long_prefill_token_threshold": self.long_prefill_token_threshold,
            "num_kv_blocks": self.num_kv_blocks,
            "kv_cache_bytes": self.kv_cache_bytes,
            "max_waiting": self.max_waiting,
        }
        for name, value in checks.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"EngineConfig.{name} must be a positive integer, got {value!r}")
        prefill = self.cuda_graph_prefill_tokens
        if isinstance(prefill, bool) or not isinstance(prefill, int) or not 0 <= prefill <= 4096:
            raise ValueError(
                f"EngineConfig.cuda_graph_prefill_tokens must be an integer in 0..4096, "
                f"got {prefill!r}"
            )
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError("EngineConfig.gpu_memory_utilization must be in (0, 1]")
        if self.queue_timeout_s is not None and not self.queue_timeout_s > 0:
            raise ValueError("EngineConfig.queue_timeout_s must be > 0 or None")

    def resolved(self, device: torch.device) -> tuple[int, int, int]:
        """(max_num_seqs, max_num_batched_tokens, long_prefill_token_threshold)."""
        cuda = device.type == "cuda"
        # CPU 16, not 8: SmolLM2 on 2 cores with 16 chats at once, 8 left half the customers
        # waiting a whole reply for their first word (TTFT p50 7.0 s vs 1.9 s) for no more
        # output (81 vs 91 tok/s; benchmarks/engine.py --only-concurrency).
        seqs = self.max_num_seqs or (64 if cuda else 16)
        tokens = self.max_num_batched_tokens or (2048 if cuda else 512)
        chunk = self.long_prefill_token_threshold or (512 if cuda else 256)
        return seqs, tokens, min(chunk, tokens)
