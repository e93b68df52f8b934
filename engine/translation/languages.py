"""Language pairs: BCP-47 tags -> a model's own codes and the tokens that select them.

The core normalises language tags to BCP-47 (``es``, ``pt-BR``, ``zh-Hant``); the engine
never imports it, so it accepts such tags (and, as a convenience, the model's own codes
such as ``spa_Latn`` or ``__es__``'s ``es``) and maps them here:

* Marian (OPUS-MT): the checkpoint is a language pair; multi-target models pick the target
  with a ``>>xx<<`` token at the start of the source. Codes are ISO 639-1 or 639-3.
* M2M100: a ``__xx__`` source-language token before the source, the target-language token
  forced as the first generated token.
* NLLB-200: FLORES-200 codes (``spa_Latn``), the source code before the source (after it,
  with the EOS, for ``legacy_behaviour`` tokenizers), the target code forced first.

A tag's script (``zh-Hant``, ``sr-Latn``; ``zh-TW`` implies ``Hant``) matters for a target:
a code without a script (M2M100's and OPUS-MT's ``zh``) writes the language's usual one
(Simplified for Chinese, Cyrillic for Serbian), so a target in another script is refused
unless the model has a code for that script (NLLB's ``zho_Hant``). A source in another
script is still read with the language's code.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from engine.translation._lang_table import FLORES, M2M100_ALIASES, REGION_SCRIPTS

__all__ = [
    "LanguageScheme",
    "LanguageTag",
    "M2M100Scheme",
    "MarianScheme",
    "NllbScheme",
    "PairPlan",
]

_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")
_ZH = {"zho": "zh", "cmn": "zh"}  # so that OPUS-MT's ``zho_TW`` / ``cmn_TW`` imply Hant


@dataclass(frozen=True)
class LanguageTag:
    """The parts of a BCP-47 tag the mapping uses (case-normalised)."""

    language: str
    script: str | None = None
    region: str | None = None

    @classmethod
    def parse(cls, tag: str) -> LanguageTag | None:
        """Parse ``es``, ``pt-BR``, ``zh_Hant_TW``...; None for anything malformed."""
        if not isinstance(tag, str) or not 2 <= len(tag) <= 35:
            return None
        parts = re.split(r"[-_]", tag.strip())
        if not parts or not all(_SUBTAG.match(p) for p in parts):
            return None
        lang, script, region = parts[0].lower(), None, None
        if not lang.isalpha() or not 2 <= len(lang) <= 3:
            return None
        for part in parts[1:]:
            if len(part) == 4 and part.isalpha() and script is None and region is None:
                script = part.title()
            elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
                region = region or part.upper()
        if script is None and region is not None:
            script = REGION_SCRIPTS.get((_ZH.get(lang, lang), region))
        return cls(lang, script, region)

    @property
    def iso3(self) -> str:
        """ISO 639-3 code (via the FLORES table), or the subtag itself if unknown."""
        flores = FLORES.get(self.language)
        return flores[:3] if flores else self.language

    @property
    def written_script(self) -> str | None:
        """The script text in this language is written in: the tag's own, else the
        language's usual one (``sr`` -> ``Cyrl``); None when unknown."""
        return self.script or _USUAL_SCRIPT.get(self.language)

    def same_language(self, other: LanguageTag) -> bool:
        """Same language and script, i.e. translating would be the identity."""
        return self.iso3 == other.iso3 and (self.script or "") == (other.script or "")


# The usual script of each language, by BCP-47 subtag and by ISO 639-3 code (``zh`` and
# ``zho`` -> ``Hans``); OPUS-MT also spells Mandarin ``cmn``.
_USUAL_SCRIPT: dict[str, str] = {"cmn": "Hans"}
for _tag, _flores in FLORES.items():
    _USUAL_SCRIPT[_tag] = _USUAL_SCRIPT[_flores[:3]] = _flores[4:]


# Scripts that include another: Korean in Hangul is Korean in ``Kore`` (Hangul + Hanja).
_INCLUDES = {"Kore": "Hang"}


def _fits(wanted: str | None, written: str | None) -> bool:
    """Whether text in script ``written`` serves a reader of script ``wanted`` (True when
    either is unknown: the model's own code is the final word)."""
    if wanted is None or written is None:
        return True
    return wanted == written or _INCLUDES.get(wanted) == written


def _writes(code: str, target: LanguageTag | None) -> bool:
    """Whether a model code (``zh``, ``zho_Hant``, ``zh_TW``) writes the target's script."""
    parsed = LanguageTag.parse(code)
    return _fits(
        target.written_script if target is not None else None,
        parsed.written_script if parsed is not None else None,
    )


@dataclass(frozen=True)
class PairPlan:
    """How to run one language pair on the loaded model.

    Attributes:
        identity: source and target are the same language: texts pass through unchanged.
        prefix_ids: token ids before the source text's tokens.
        suffix_ids: token ids after them (EOS, and for legacy NLLB the source code).
        forced_bos_id: token forced as the first generated one (target language), if any.
        source_code: the model's code for the source ('*' when any source is accepted).
        target_code: the model's code for the target.
    """

    identity: bool
    prefix_ids: tuple[int, ...] = ()
    suffix_ids: tuple[int, ...] = ()
    forced_bos_id: int | None = None
    source_code: str = ""
    target_code: str = ""


class LanguageScheme(ABC):
    """A model family's language codes; ``plan`` says how to run a pair or why it can't."""

    eos_id: int

    def plan(self, source: str, target: str) -> PairPlan | str:
        """The plan for ``source`` -> ``target``, or a reason string when unsupported."""
        src, tgt = LanguageTag.parse(source), LanguageTag.parse(target)
        src_code, tgt_code = self.code(source, src, True), self.code(target, tgt, False)
        if src is not None and tgt is not None and src.same_language(tgt):
            return PairPlan(identity=True, source_code=src_code or "", target_code=src_code or "")
        if src_code is not None and src_code == tgt_code and src_code != "*":
            have = src.written_script if src else None
            want = tgt.written_script if tgt else None
            if not _fits(want, have):
                # zh-Hant -> zh-Hans on M2M100: passing the text through would hand a
                # Simplified reader Traditional text, and the model cannot convert it.
                return (
                    f"the model has one code, {src_code!r}, for {source!r} and {target!r}: "
                    f"it cannot turn {have} script into {want}"
                )
            return PairPlan(identity=True, source_code=src_code, target_code=src_code)
        if src_code is None:
            return f"source language {source!r} is not one of the model's: {self.describe(True)}"
        if tgt_code is None:
            other_scripts = self.known_codes(target, tgt, False)
            if other_scripts and tgt is not None:
                return (
                    f"target language {target!r} is written in {tgt.written_script} script, "
                    f"which the model does not write: its code for the language "
                    f"({', '.join(map(repr, other_scripts))}) writes "
                    + ", ".join(sorted({_script_name(c) for c in other_scripts}))
                )
            return f"target language {target!r} is not one of the model's: {self.describe(False)}"
        return self._plan(src_code, tgt_code)

    def code(self, raw: str, tag: LanguageTag | None, source: bool) -> str | None:
        """The model's code for a tag (or a raw model code), None if unsupported.

        A target's code must write the tag's script (see the module docstring); a source
        prefers such a code but is read with any code of its language.
        """
        known = self.known_codes(raw, tag, source)
        fitting = (c for c in known if _writes(c, tag))
        return next(fitting, known[0] if source and known else None)

    @abstractmethod
    def known_codes(self, raw: str, tag: LanguageTag | None, source: bool) -> list[str]:
        """The model's codes for a tag's language (or a raw model code) as a source (or
        target), most specific first, whatever script they write."""

    @abstractmethod
    def describe(self, source: bool) -> str:
        """The supported source (or target) languages, for error messages."""

    @abstractmethod
    def _plan(self, src_code: str, tgt_code: str) -> PairPlan: ...


def _script_name(code: str) -> str:
    parsed = LanguageTag.parse(code)
    script = parsed.written_script if parsed is not None else None
    return script or "an unknown script"


def _short(codes: list[str]) -> str:
    shown = ", ".join(sorted(codes)[:12])
    return shown + (f" ... ({len(codes)} in all)" if len(codes) > 12 else "")


class MarianScheme(LanguageScheme):
    """OPUS-MT pair models; ``target_tokens`` ({code: id of ``>>code<<``}) when multi-target.

    Args:
        sources: source codes (lower case); empty means a multilingual source ("mul",
            a language group) that accepts any language.
        targets: target codes, used when the model has no ``>>xx<<`` tokens.
    """

    def __init__(
        self,
        sources: frozenset[str],
        targets: frozenset[str],
        target_tokens: Mapping[str, int],
        eos_id: int,
    ) -> None:
        self.sources, self.targets = sources, targets
        self.target_tokens = dict(target_tokens)
        self.eos_id = eos_id

    @staticmethod
    def candidates(raw: str, tag: LanguageTag | None) -> list[str]:
        """Codes OPUS-MT might use for a tag, most specific first: ``pt_BR``, ``zho_Hant``,
        ``cmn_Hant``, ``es``, ``spa``, ``cmn``. A tag's own script (``zh-Hant``, and
        ``zh-TW`` by its region) comes before the codes without one."""
        out = [raw.strip().lower(), raw.strip().lower().replace("-", "_")]
        if tag is not None:
            iso3 = tag.iso3
            if tag.region:
                out += [f"{tag.language}_{tag.region}", f"{iso3}_{tag.region}"]
            scripted: list[str] = []
            if script := tag.written_script:
                scripted = [f"{iso3}_{script}", f"{tag.language}_{script}"]
                scripted += [f"cmn_{script}"] if tag.language == "zh" else []
            bare = [tag.language, M2M100_ALIASES.get(tag.language, tag.language), iso3]
            out += scripted + bare if tag.script else bare + scripted
            out += ["cmn"] if tag.language == "zh" else []
        return list(dict.fromkeys(out))

    def code(self, raw: str, tag: LanguageTag | None, source: bool) -> str | None:
        if source and not self.sources:
            return "*"
        return super().code(raw, tag, source)

    def known_codes(self, raw: str, tag: LanguageTag | None, source: bool) -> list[str]:
        pool: Mapping[str, object] | frozenset[str]
        pool = self.sources if source else (self.target_tokens or self.targets)
        keyed = {k.lower(): k for k in pool}
        return [keyed[c.lower()] for c in self.candidates(raw, tag) if c.lower() in keyed]

    def describe(self, source: bool) -> str:
        if source:
            return _short(list(self.sources)) if self.sources else "any"
        return _short(list(self.target_tokens or self.targets))

    def _plan(self, src_code: str, tgt_code: str) -> PairPlan:
        token = self.target_tokens.get(tgt_code)
        return PairPlan(
            identity=False,
            prefix_ids=(token,) if token is not None else (),
            suffix_ids=(self.eos_id,),
            source_code=src_code,
            target_code=tgt_code,
        )


class _ForcedTargetScheme(LanguageScheme):
    """Shared by M2M100 and NLLB: a source-code token and a forced target-code token."""

    def __init__(self, codes: Mapping[str, int], eos_id: int) -> None:
        self.codes = dict(codes)
        self.eos_id = eos_id

    def describe(self, source: bool) -> str:
        return _short(list(self.codes))


class M2M100Scheme(_ForcedTargetScheme):
    """M2M100: ``[__src__] tokens [</s>]``, ``__tgt__`` forced first."""

    def known_codes(self, raw: str, tag: LanguageTag | None, source: bool) -> list[str]:
        # M2M100's codes have no script: ``zh`` reads both Chinese scripts but writes
        # Simplified, ``sr`` writes Cyrillic, so zh-Hant or sr-Latn targets are refused.
        cands = [raw.strip()]
        if tag is not None:
            cands += [M2M100_ALIASES.get(tag.language, tag.language), tag.language]
        return [c for c in dict.fromkeys(cands) if c in self.codes]

    def _plan(self, src_code: str, tgt_code: str) -> PairPlan:
        return PairPlan(
            identity=False,
            prefix_ids=(self.codes[src_code],),
            suffix_ids=(self.eos_id,),
            forced_bos_id=self.codes[tgt_code],
            source_code=src_code,
            target_code=tgt_code,
        )


class NllbScheme(_ForcedTargetScheme):
    """NLLB-200: ``[src_Code] tokens [</s>]`` (legacy: ``tokens [</s> src_Code]``)."""

    def __init__(self, codes: Mapping[str, int], eos_id: int, legacy: bool) -> None:
        super().__init__(codes, eos_id)
        self.legacy = legacy

    def known_codes(self, raw: str, tag: LanguageTag | None, source: bool) -> list[str]:
        cands = [raw.strip()]
        if tag is not None:
            base = FLORES.get(tag.language)
            iso3 = base[:3] if base else tag.language
            if tag.script:
                cands.append(f"{iso3}_{tag.script}")
            if base:
                cands.append(base)
            cands += sorted(c for c in self.codes if c.startswith(f"{iso3}_"))[:1]
        return [c for c in dict.fromkeys(cands) if c in self.codes]

    def _plan(self, src_code: str, tgt_code: str) -> PairPlan:
        src_id = self.codes[src_code]
        prefix, suffix = ((), (self.eos_id, src_id)) if self.legacy else ((src_id,), (self.eos_id,))
        return PairPlan(
            identity=False,
            prefix_ids=prefix,
            suffix_ids=suffix,
            forced_bos_id=self.codes[tgt_code],
            source_code=src_code,
            target_code=tgt_code,
        )
