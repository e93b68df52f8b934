"""What the knowledge tests share (a module of its own: ``conftest`` is a name every
test folder has, so importing from it finds whichever was imported first)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE"]

# A web shop's help pages.
SAMPLE = Path(__file__).parent / "kb"
