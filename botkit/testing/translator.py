"""A deterministic stand-in for a translation model: it marks text instead of translating.

``MarkingTranslator().translate(["Hola {0}."], "es", "en")`` returns ``["en(Hola {0}.)"]``,
so a test can tell exactly which text went through which translation, in which
direction, and that placeholders survived. It records every call, can be slow (to test
streaming), can drop placeholders (to test the fallback) and can be limited to some
language pairs (to test startup checks).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from botkit.language.tags import normalize_tag, primary_subtag, same_language

__all__ = ["MarkingTranslator", "TranslatorCall"]

_PLACEHOLDER = re.compile(r"\{\s*\d+\s*\}")


@dataclass(frozen=True, slots=True)
class TranslatorCall:
    """One ``translate`` call: the texts and the pair."""

    texts: tuple[str, ...]
    source: str
    target: str


@dataclass
class MarkingTranslator:
    """Translates ``text`` from ``source`` to ``target`` as ``"<target>(<text>)"``.

    Attributes:
        pairs: supported (source, target) language pairs by language subtag, e.g.
            ``{("es", "en"), ("en", "es")}``; ``None`` supports every pair.
        delay: seconds each call takes.
        drop_placeholders: remove ``{n}`` placeholders from the output (a model that
            mangles them).
        fail_with: raise this from ``translate``.
        calls: every call so far.
    """

    pairs: Collection[tuple[str, str]] | None = None
    delay: float = 0.0
    drop_placeholders: bool = False
    fail_with: Exception | None = None
    calls: list[TranslatorCall] = field(default_factory=list)
    started: int = 0
    closed: int = 0
    name: str = "marking"

    def supports(self, source: str, target: str) -> bool:
        if same_language(source, target):
            return True
        if self.pairs is None:
            return True
        key = (primary_subtag(normalize_tag(source)), primary_subtag(normalize_tag(target)))
        return key in self.pairs

    async def start(self) -> None:
        self.started += 1

    async def close(self) -> None:
        self.closed += 1

    def mark(self, text: str, target: str) -> str:
        """What this translator makes of ``text``."""
        if self.drop_placeholders:
            text = _PLACEHOLDER.sub("", text)
        return f"{normalize_tag(target)}({text})"

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.calls.append(TranslatorCall(tuple(texts), source, target))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        return [self.mark(t, target) for t in texts]
