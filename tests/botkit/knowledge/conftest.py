"""The knowledge tests' sample knowledge base: a web shop's help pages (kb/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from knowledge_helpers import SAMPLE


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A copy of the sample knowledge base that a test may change."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "kb"))
