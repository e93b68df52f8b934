"""The checkpoint's tokenizer, its language scheme, and text <-> token ids for the engine.

Special tokens are added here from the pair's plan rather than by the tokenizer's own
``src_lang`` state: HF translation tokenizers keep the source language in mutable state,
which one engine serving many pairs at once must not rely on. Tests check that the result
equals what the tokenizer itself produces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError
from engine.translation._lang_table import FLORES, M2M100_ALIASES
from engine.translation.languages import (
    LanguageScheme,
    M2M100Scheme,
    MarianScheme,
    NllbScheme,
    PairPlan,
)
from engine.translation.registry import Family

__all__ = ["TextCodec", "build_scheme", "load_tokenizer"]

_NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_M2M_TOKEN = re.compile(r"^__([a-z]{2,3})__$")
_OPUS_NAME = re.compile(r"opus-mt-(?:tc-(?:big|base)-)?([A-Za-z_+]+)-([A-Za-z_+]+)$")
_KNOWN = set(FLORES) | {v[:3] for v in FLORES.values()} | set(M2M100_ALIASES.values())


def load_tokenizer(model_dir: Path) -> Any:
    """The checkpoint's tokenizer (``AutoTokenizer``).

    Raises:
        ModelLoadError: missing or unreadable tokenizer files.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as exc:  # OSError, ValueError, sentencepiece / tokenizers errors...
        raise ModelLoadError(
            f"{model_dir}: cannot load the tokenizer ({type(exc).__name__}: {exc}); Marian "
            "needs source.spm, target.spm and vocab.json, M2M100 vocab.json and "
            "sentencepiece.bpe.model, NLLB tokenizer.json"
        ) from None


def build_scheme(
    family: Family,
    tokenizer: Any,
    name: str,
    eos_id: int,
    pair: tuple[str, str] | None = None,
) -> LanguageScheme:
    """The language scheme of a loaded checkpoint.

    Args:
        family: the architecture family.
        tokenizer: the checkpoint's tokenizer.
        name: the model's path or hub id (OPUS-MT names carry the pair: ``opus-mt-en-de``).
        eos_id: the model's EOS id.
        pair: Marian only: (source, target) codes when the checkpoint has no metadata.

    Raises:
        ModelLoadError: the languages of the checkpoint cannot be determined.
    """
    vocab: dict[str, int] = tokenizer.get_vocab()
    if family == "marian":
        return _marian_scheme(tokenizer, vocab, name, eos_id, pair)
    nllb = {t: i for t, i in vocab.items() if _NLLB_CODE.match(t)}
    if nllb:
        return NllbScheme(nllb, eos_id, legacy=bool(getattr(tokenizer, "legacy_behaviour", False)))
    codes = getattr(tokenizer, "lang_code_to_id", None)
    if not isinstance(codes, dict) or not codes:
        codes = {m.group(1): i for t, i in vocab.items() if (m := _M2M_TOKEN.match(t))}
    if not codes:
        raise ModelLoadError(f"{name}: the tokenizer has no M2M100 or NLLB language codes")
    return M2M100Scheme({str(k): int(v) for k, v in codes.items()}, eos_id)


def _marian_scheme(
    tokenizer: Any,
    vocab: dict[str, int],
    name: str,
    eos_id: int,
    pair: tuple[str, str] | None,
) -> MarianScheme:
    tokens = {t[2:-2]: i for t, i in vocab.items() if t.startswith(">>") and t.endswith("<<")}
    src, tgt = pair or (
        getattr(tokenizer, "source_lang", None),
        getattr(tokenizer, "target_lang", None),
    )
    if not (isinstance(src, str) and src and isinstance(tgt, str) and tgt):
        match = _OPUS_NAME.search(name.rstrip("/").split("/")[-1])
        if match is None:
            raise ModelLoadError(
                f"{name}: cannot tell which languages this Marian checkpoint translates (no "
                "source_lang/target_lang in tokenizer_config.json and no opus-mt-xx-yy name); "
                "pass pair=(source, target)"
            )
        src, tgt = match.group(1), match.group(2)
    sources = frozenset(c.lower() for c in re.split(r"[+]", src))
    if not sources <= _KNOWN:  # a group such as "mul" or "ROMANCE": any source language
        sources = frozenset()
    targets = frozenset(c.lower() for c in re.split(r"[+]", tgt))
    return MarianScheme(sources, targets, tokens, eos_id)


class TextCodec:
    """Texts -> source token ids for a pair plan, generated ids -> text.

    Args:
        tokenizer: the checkpoint's tokenizer.
        max_source_tokens: longest source (special tokens included); longer inputs are
            truncated to their first tokens.
        strip_ids: ids never shown in output (start, EOS, pad, language codes).
    """

    def __init__(self, tokenizer: Any, max_source_tokens: int, strip_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.max_source_tokens = max_source_tokens
        self.strip_ids = strip_ids

    def encode(self, texts: Sequence[str], plan: PairPlan) -> list[list[int]]:
        """Token ids of each text with the plan's special tokens, truncated to fit."""
        budget = self.max_source_tokens - len(plan.prefix_ids) - len(plan.suffix_ids)
        if budget < 1:
            raise ValueError(f"max_source_tokens {self.max_source_tokens} leaves no room")
        enc = self.tokenizer(
            list(texts), add_special_tokens=False, truncation=True, max_length=budget
        )
        prefix, suffix = list(plan.prefix_ids), list(plan.suffix_ids)
        return [prefix + list(ids) + suffix for ids in enc["input_ids"]]

    def decode(self, sequences: Sequence[Sequence[int]]) -> list[str]:
        """Text of generated sequences (start / EOS / language tokens dropped)."""
        if not sequences:
            # Some transformers releases (5.17) decode an empty batch as one empty text.
            return []
        kept = [[t for t in seq if t not in self.strip_ids] for seq in sequences]
        texts = self.tokenizer.batch_decode(kept, skip_special_tokens=True)
        return [str(t).strip() for t in texts]
