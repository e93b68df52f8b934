"""Errors of the translation engine (subclasses of the engine's own hierarchy)."""

from __future__ import annotations

from engine.errors import EngineError

__all__ = ["UnsupportedLanguagePairError"]


class UnsupportedLanguagePairError(EngineError, ValueError):
    """The loaded model cannot translate ``source`` -> ``target``.

    Attributes:
        source: the source language as the caller gave it (BCP-47).
        target: the target language as the caller gave it (BCP-47).
        model: the model's name (its path or hub id).
    """

    def __init__(self, source: str, target: str, model: str, detail: str = "") -> None:
        self.source = source
        self.target = target
        self.model = model
        message = f"translation model {model!r} cannot translate {source!r} -> {target!r}"
        super().__init__(f"{message}: {detail}" if detail else message)
