"""The garbage-collector setup `botkit run` applies before serving."""

from __future__ import annotations

import gc

from botkit._serving import (
    SERVING_GC_THRESHOLDS,
    prepare_heap_for_serving,
    restore_default_heap,
)


def test_prepare_freezes_the_heap_and_raises_thresholds() -> None:
    before = gc.get_threshold()
    try:
        prepare_heap_for_serving()
        assert gc.get_threshold() == SERVING_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what was alive is out of the collector's reach
        assert SERVING_GC_THRESHOLDS[0] > before[0]
    finally:
        restore_default_heap(before)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_botkit_run_prepares_the_heap() -> None:
    """The CLI's serve path calls it (a refactor must not drop it silently)."""
    import inspect

    from botkit.cli import _serve

    assert "prepare_heap_for_serving()" in inspect.getsource(_serve)
