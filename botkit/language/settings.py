"""The ``[language]`` section: detection, the pipeline mode, translation, the glossary.

The working language itself is ``bot.working_language`` (one source of truth: the
language of the system prompt, the knowledge base and the human agents).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from botkit.language.codes import known_tag

__all__ = ["DetectorSettings", "LanguageSettings", "Mode", "TranslatorSettings"]

Mode = Literal["native", "pivot", "off"]
# Checked one by one, so a problem names its item: "language.languages[0]: 'sp' is not a
# known language (did you mean 'es'?)".
KnownTag = Annotated[str, AfterValidator(known_tag)]

MAX_GLOSSARY_TERMS = 1000
MAX_TERM_CHARS = 200


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSettings(_Section):
    """How the customer's language is detected, and when a detection is trusted.

    A message switches the conversation's language only when it has at least
    ``min_letters`` letters (a CJK character counts as 3) outside URLs, numbers and code,
    its best guess has at least ``min_confidence`` and leads the runner-up by
    ``min_margin``. Otherwise the conversation keeps its language. A conversation that
    already has a language needs at least ``min_letters_to_switch`` letters (the larger
    of the two counts) to change it. ``processes`` worker processes run the detector
    off the bot's GIL (started once 32 new texts came; 0: a thread of the bot process).
    """

    kind: Literal["auto", "langdetect", "none"] = "auto"
    seed: int = 0
    min_letters: int = Field(default=12, ge=0, le=100_000)
    min_letters_to_switch: int = Field(default=20, ge=0, le=100_000)
    # langdetect averages 7 sampling trials, so its probabilities come in steps of 1/7:
    # one dissenting trial gives 6/7 = 0.857, which 0.90 rejected (10 of 511 clear
    # first messages of tests/data answered in English, 5 of them Russian). 0.80 takes
    # 6/7 and still rejects 5/7 = 0.714: 506 of 511 right, up from 500 (507 with
    # ``languages`` set: renormalization over the list, policy.py).
    min_confidence: float = Field(default=0.80, ge=0, le=1)
    min_margin: float = Field(default=0.50, ge=0, le=1)
    max_chars: int = Field(default=1000, ge=1, le=1_000_000)
    processes: int = Field(default=1, ge=0, le=64)


class TranslatorSettings(_Section):
    """Which translator the ``pivot`` mode uses.

    ``"llm"`` asks the generation backend with a translation prompt; ``"engine"`` runs
    encoder-decoder translation models (Marian, M2M100, NLLB) in the local engine:
    ``model`` is one many-to-many model or several pair models (a list).
    """

    kind: Literal["none", "llm", "engine"] = "none"
    model: tuple[str, ...] = ()
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    beam_size: int = Field(default=1, ge=1, le=16)
    # On CUDA, decode by replaying CUDA graphs (captured at startup); off: eagerly.
    cuda_graphs: bool = True

    @field_validator("model", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("model")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not m.strip() for m in value):
            raise ValueError("model names must not be empty")
        return value


class LanguageSettings(_Section):
    """The ``[language]`` section (see ``config.example.toml`` for every key)."""

    mode: Literal["auto", "native", "pivot", "off"] = "auto"
    languages: tuple[KnownTag, ...] = ()
    glossary: tuple[str, ...] = ()
    switch_command: str = Field(default="/lang", max_length=32)
    switch_reply: str = "Okay, from now on I will answer in {language}."
    switch_unknown_reply: str = (
        "Sorry, I cannot answer in that language. Write {command} and a language, "
        "for example: {command} es"
    )
    native_instruction: str = (
        "The customer writes in {language}. Always answer in {language}, even though "
        "these instructions are in another language."
    )
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    translator: TranslatorSettings = Field(default_factory=TranslatorSettings)

    @field_validator("languages")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("glossary")
    @classmethod
    def _terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_GLOSSARY_TERMS:
            raise ValueError(f"at most {MAX_GLOSSARY_TERMS} glossary terms")
        for term in value:
            if not term.strip() or len(term) > MAX_TERM_CHARS:
                raise ValueError(f"glossary terms must have 1 to {MAX_TERM_CHARS} characters")
        return tuple(dict.fromkeys(t.strip() for t in value))

    @field_validator("switch_command")
    @classmethod
    def _command(cls, value: str) -> str:
        if value and (value != value.strip() or any(c.isspace() for c in value)):
            raise ValueError("the switch command must be one word, e.g. '/lang' ('' disables it)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LanguageSettings:
        kind = self.translator.kind
        if self.mode == "pivot" and kind == "none":
            raise ValueError(
                "mode 'pivot' needs a translator: set language.translator.kind to 'llm' or 'engine'"
            )
        if kind == "engine" and not self.translator.model:
            raise ValueError("translator 'engine' needs language.translator.model")
        return self

    @property
    def effective_mode(self) -> Mode:
        """``mode`` with ``"auto"`` resolved: pivot with a translator, else native."""
        if self.mode != "auto":
            return self.mode
        return "pivot" if self.translator.kind != "none" else "native"
