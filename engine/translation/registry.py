"""Translation architectures, registered by the Hugging Face ``architectures`` name.

Each entry says how to read the checkpoint's ``config.json`` into a ``Seq2SeqConfig`` (the
network is the same ``Seq2SeqLM`` for all) and which language-code scheme its tokenizer
uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import ModelLoadError, UnsupportedModelError
from engine.translation.config import Seq2SeqConfig

__all__ = [
    "Architecture",
    "get_architecture",
    "register_architecture",
    "supported_translation_architectures",
]

Family = Literal["marian", "m2m100"]


@dataclass(frozen=True)
class Architecture:
    """How to build and talk to one HF translation architecture.

    Attributes:
        name: the HF ``architectures[0]`` name.
        family: ``"marian"`` (language pair in the checkpoint, optional ``>>xx<<`` target
            tokens) or ``"m2m100"`` (source-language token + forced target-language BOS;
            NLLB-200 is this architecture with NLLB codes).
        parse_config: ``config.json`` dict -> network config.
    """

    name: str
    family: Family
    parse_config: Callable[[Mapping[str, Any]], Seq2SeqConfig]


_REGISTRY: dict[str, Architecture] = {}


def register_architecture(arch: Architecture) -> Architecture:
    """Add (or replace) an architecture in the registry."""
    _REGISTRY[arch.name] = arch
    return arch


def supported_translation_architectures() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_architecture(hf: Mapping[str, Any]) -> Architecture:
    """The registered architecture of a parsed ``config.json``.

    Raises:
        ModelLoadError: no ``architectures`` list.
        UnsupportedModelError: not a registered translation architecture.
    """
    archs = hf.get("architectures")
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        raise ModelLoadError("config.json has no 'architectures' list")
    try:
        return _REGISTRY[archs[0]]
    except KeyError:
        raise UnsupportedModelError(
            f"architecture {archs[0]!r} is not a supported translation model; supported: "
            f"{', '.join(supported_translation_architectures())}"
        ) from None


def _marian(hf: Mapping[str, Any]) -> Seq2SeqConfig:
    # Marian: post-norm layers, no final norms, sin|cos table from position 0, logits bias.
    return Seq2SeqConfig.from_hf(hf, pre_norm=False, positions="marian", final_logits_bias=True)


def _m2m100(hf: Mapping[str, Any]) -> Seq2SeqConfig:
    # M2M100 / NLLB: pre-norm layers with final encoder/decoder norms, fairseq positions.
    config = Seq2SeqConfig.from_hf(hf, pre_norm=True, positions="fairseq", final_logits_bias=False)
    if not config.share_embeddings:
        raise UnsupportedModelError("M2M100 checkpoints always share their embeddings")
    return config


register_architecture(Architecture("MarianMTModel", "marian", _marian))
register_architecture(Architecture("M2M100ForConditionalGeneration", "m2m100", _m2m100))
