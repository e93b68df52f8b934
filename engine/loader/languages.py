"""The languages a model declares: its card's ``language:`` or its GGUF's ``general.languages``.

A Hugging Face model card (``README.md`` in the checkpoint) starts with YAML front
matter whose ``language:`` is a tag or a list of tags (SmolLM2: ``en``); llama.cpp's
converter copies it into the GGUF key ``general.languages``. The bot reads it to know
whether the chat model can write the customer's language at all (SmolLM2-135M asked to
answer in German wrote "Der Welt ist nach dem..."). Tags come back as written (lower
case, stripped); which of them are languages is the caller's business.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from engine.loader._gguf_header import read_gguf_strings
from engine.loader.gguf_convert import is_gguf_cache
from engine.loader.source import locate_gguf

__all__ = ["card_languages", "declared_languages", "gguf_languages"]

log = logging.getLogger(__name__)

CARD = "README.md"
# A card's front matter is a few hundred bytes; the card itself may be long.
_MAX_CARD_BYTES = 256 * 1024
_MAX_LANGUAGES = 1000


def declared_languages(source: str | Path, model_dir: Path) -> tuple[str, ...] | None:
    """The languages of the model loaded from ``source`` (resolved to ``model_dir``):
    the GGUF's metadata for a GGUF source, else the card in ``model_dir``. None when it
    declares none (or the card cannot be read: this never stops a model from loading)."""
    if is_gguf_cache(model_dir):
        gguf = locate_gguf(source)
        if gguf is not None:
            return gguf_languages(gguf)
    return card_languages(model_dir)


def gguf_languages(path: Path) -> tuple[str, ...] | None:
    """``general.languages`` of a GGUF file, or None."""
    return _tags(read_gguf_strings(path, "general.languages"))


def card_languages(model_dir: Path) -> tuple[str, ...] | None:
    """``language:`` of the model card's front matter in ``model_dir``, or None."""
    try:
        with (model_dir / CARD).open("rb") as f:
            head = f.read(_MAX_CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = head.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration:
        return None
    # PyYAML: a dependency of transformers and huggingface-hub (which parse cards so);
    # no stubs in the dev extras.
    import yaml  # type: ignore[import-untyped,unused-ignore]

    try:
        meta: Any = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        log.debug("%s: unreadable front matter: %s", model_dir / CARD, exc)
        return None
    if not isinstance(meta, dict):
        return None
    value = meta.get("language")
    if isinstance(value, str):
        return _tags((value,))
    if isinstance(value, list):
        return _tags(tuple(v for v in value if isinstance(v, str)))
    return None


def _tags(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    tags = tuple(dict.fromkeys(v.strip().lower() for v in values[:_MAX_LANGUAGES] if v.strip()))
    return tags or None
