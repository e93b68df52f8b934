"""Sliding-window models run with full attention inside a context capped at the window."""

from __future__ import annotations

import dataclasses

from engine.config import ModelConfig
from engine.errors import ModelLoadError

__all__ = ["cap_to_sliding_window"]


def cap_to_sliding_window(config: ModelConfig, window: object) -> ModelConfig:
    """Cap ``max_position`` at the sliding window.

    Our attention kernels have no window. While no sequence is longer than the window,
    windowed and full attention are the same computation, so capping the context keeps
    the model exact instead of silently wrong past the window.
    """
    if window is None:
        return config
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise ModelLoadError(f"config.json: sliding_window must be a positive int, got {window!r}")
    return dataclasses.replace(config, max_position=min(config.max_position, window))
