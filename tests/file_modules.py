"""Import a test helper module from its file: one in a test directory that pytest has not
put on ``sys.path`` for the test at hand (tests/ itself is, as the rootdir conftest's)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["load"]

TESTS = Path(__file__).resolve().parent


@functools.cache
def load(relative: str) -> ModuleType:
    """The module in ``tests/<relative>`` (e.g. ``"engine/hf_tiny.py"``), loaded once."""
    path = TESTS / relative
    spec = importlib.util.spec_from_file_location(f"tests_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
