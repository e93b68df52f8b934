"""The ``[plugins.intents]`` section: the intents, how they are recognized, what each
one does.

Every list and text is bounded, so a config cannot make the matcher's precomputed
index (built at startup, in memory) arbitrarily large.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from botkit.intents.matching import fold
from botkit.language.keywords import check_keyword
from botkit.language.tags import try_normalize
from botkit.language.words import search_terms
from botkit.plugins import PluginConfig

__all__ = [
    "MAX_EXAMPLES",
    "MAX_EXAMPLES_TOTAL",
    "MAX_EXAMPLE_CHARS_TOTAL",
    "MAX_INTENTS",
    "MAX_KEYWORDS_TOTAL",
    "ButtonConfig",
    "IntentConfig",
    "IntentsConfig",
]

MAX_INTENTS = 1000
MAX_EXAMPLES = 200  # per intent
MAX_EXAMPLES_TOTAL = 20_000
MAX_EXAMPLE_CHARS = 500
# The index holds about 70 bytes per character of examples (benchmarks/intents.py:
# 17.7 MB for 10,000 examples of 25 characters): at most ~70 MB.
MAX_EXAMPLE_CHARS_TOTAL = 1_000_000
MAX_KEYWORDS = 50  # per intent
MAX_KEYWORDS_TOTAL = 10_000  # all are one regular expression: ~0.05 ms per 1,000
MAX_KEYWORD_CHARS = 100
MAX_LANGUAGES = 100  # entries of one text table
MAX_REPLY_CHARS = 4000  # one chat message on every channel (Telegram takes 4096)
MAX_INSTRUCTION_CHARS = 4000
MAX_BUTTONS = 10
MAX_LABEL_CHARS = 75  # Slack's limit for a button label
MAX_VALUE_CHARS = 200

# A phrase with one of these has a term to match: NFKC, case folding and accent removal
# keep ASCII letters and digits, and a term is a run of letters and digits. Checked
# first, as ``search_terms`` (Unicode normalization, two regular expressions) took
# 0.3-1.0 s for 18,000 examples at startup, on the event loop.
_ASCII_TERM = re.compile(r"[A-Za-z0-9]")
# Identifier-like: it appears in logs, metrics and the hand-off reason.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

Action = Literal["reply", "handoff", "close", "instruct"]


def _texts(value: dict[str, str], what: str, max_chars: int) -> dict[str, str]:
    """A table language -> text with normalized, distinct tags and usable texts."""
    table: dict[str, str] = {}
    for key, text in value.items():
        tag = try_normalize(key)
        if tag is None:
            raise ValueError(f"{key!r} is not a language tag")
        if tag in table:
            raise ValueError(f"{key!r} and another key are the same language ({tag})")
        if not text.strip():
            raise ValueError(f"the {what} for {key!r} is empty")
        if len(text) > max_chars:
            raise ValueError(f"the {what} for {key!r} is over {max_chars} characters")
        table[tag] = text
    return table


def _problems(title: str, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
    """Raise every problem at once, each at its key path (``(index,)`` in a list, or
    ``("intent", 1, "keywords", 0)`` from the section): pydantic takes a
    ``ValidationError`` raised in a validator as its errors, each under its own path,
    so a config with three bad keywords is fixed in one go."""
    if problems:
        raise ValidationError.from_exception_data(title, [
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc,
                             input=None)
            for loc, message in problems
        ])  # fmt: skip


def _phrase_problem(phrase: str, what: str, max_chars: int) -> str | None:
    """Why ``phrase`` cannot be matched, or None (it has a letter or digit)."""
    if len(phrase) > max_chars:
        return f"{what} must be at most {max_chars} characters: {phrase[:40]!r}..."
    if not _ASCII_TERM.search(phrase) and not search_terms(phrase):
        return f"{what} {phrase!r} has no letters or digits to match"
    return None


def _keyword_problem(keyword: str) -> str | None:
    problem = _phrase_problem(keyword, "a keyword", MAX_KEYWORD_CHARS)
    if problem is None:
        try:
            check_keyword(keyword)
        except ValueError as exc:
            return str(exc)
    return problem


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ButtonConfig(_Table):
    """A quick reply shown with a fixed reply.

    Attributes:
        label: the button's text per language (the customer's, else the working
            language's).
        value: what comes back as the customer's message when it is clicked (e.g. a
            keyword of another intent).
    """

    label: dict[str, str] = Field(min_length=1, max_length=MAX_LANGUAGES)
    value: str = Field(min_length=1, max_length=MAX_VALUE_CHARS)

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: dict[str, str]) -> dict[str, str]:
        return _texts(value, "label", MAX_LABEL_CHARS)

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a button value must not be empty")
        return value


class IntentConfig(_Table):
    """One intent: how it is recognized and what the bot does then.

    Attributes:
        name: unique, identifier-like (letters, digits, ``_``, ``-``; up to 64).
        action: ``reply`` (a fixed answer), ``handoff`` (to a human), ``close`` (end
            the conversation) or ``instruct`` (guide the model's answer).
        examples: customer phrasings in any language, matched by similarity.
        keywords: phrases in any language that match outright as whole words; not a
            single character, nor with symbols matching would ignore ("C++").
        reply: the answer per language; required for ``reply``, optional for
            ``handoff`` (default: the hand-off plugin's confirmation) and ``close``
            (default: nothing is sent). Must include the working language.
        instruction: for ``instruct``: added to the system prompt for this message.
        buttons: quick replies shown with a ``reply``.
        min_similarity: this intent's threshold instead of the plugin's.
    """

    name: str
    action: Action
    examples: tuple[str, ...] = Field(default=(), max_length=MAX_EXAMPLES)
    keywords: tuple[str, ...] = Field(default=(), max_length=MAX_KEYWORDS)
    reply: dict[str, str] = Field(default_factory=dict, max_length=MAX_LANGUAGES)
    instruction: str = Field(default="", max_length=MAX_INSTRUCTION_CHARS)
    buttons: tuple[ButtonConfig, ...] = Field(default=(), max_length=MAX_BUTTONS)
    min_similarity: float | None = Field(default=None, gt=0, le=1)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "a name is a letter, then up to 63 letters, digits, '_' or '-' (e.g. "
                "'opening_hours')"
            )
        return value

    @field_validator("examples")
    @classmethod
    def _check_examples(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = [(n, _phrase_problem(e, "an example", MAX_EXAMPLE_CHARS))
                 for n, e in enumerate(value)]  # fmt: skip
        _problems("examples", [((n,), problem) for n, problem in found if problem])
        return tuple(dict.fromkeys(value))

    @field_validator("keywords")
    @classmethod
    def _check_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = [(n, _keyword_problem(keyword)) for n, keyword in enumerate(value)]
        _problems("keywords", [((n,), problem) for n, problem in found if problem])
        # Kept as written (a repeat matches the same way): a problem found later, a
        # keyword of two intents, names the keyword's place in the file.
        return value

    @field_validator("reply")
    @classmethod
    def _check_reply(cls, value: dict[str, str]) -> dict[str, str]:
        return _texts(value, "reply", MAX_REPLY_CHARS)

    @model_validator(mode="after")
    def _check_action(self) -> IntentConfig:
        name = f"intent {self.name!r}"
        if not self.examples and not self.keywords:
            raise ValueError(f"{name} needs examples or keywords (or both)")
        action = self.action
        if action == "reply" and not self.reply:
            raise ValueError(f"{name}: action 'reply' needs reply (e.g. reply.en = \"...\")")
        if action == "instruct" and not self.instruction.strip():
            raise ValueError(f"{name}: action 'instruct' needs instruction")
        if action == "instruct" and self.reply:
            raise ValueError(f"{name}: reply is not for action 'instruct' (the model answers)")
        if action != "instruct" and self.instruction:
            raise ValueError(f"{name}: instruction is only for action 'instruct'")
        if action != "reply" and self.buttons:
            raise ValueError(f"{name}: buttons are only for action 'reply'")
        return self


class IntentsConfig(PluginConfig):
    """Settings of the intents plugin.

    Attributes:
        min_similarity: how similar (0-1) a message must be to an example to match;
            higher is stricter. An intent may set its own.
        max_chars: longer messages never match (a long message is a question for the
            model, even when it mentions an intent's words).
        intent: the intents (``[[plugins.intents.intent]]`` tables), in priority order:
            an earlier one wins a tie.
    """

    min_similarity: float = Field(default=0.45, gt=0, le=1)
    max_chars: int = Field(default=200, ge=1, le=4000)
    intent: tuple[IntentConfig, ...] = Field(default=(), max_length=MAX_INTENTS)

    @model_validator(mode="after")
    def _check_intents(self) -> IntentsConfig:
        names: dict[str, int] = {}
        keywords: dict[str, int] = {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for position, intent in enumerate(self.intent):
            first = names.setdefault(intent.name.casefold(), position)
            if first != position:
                problems.append((("intent", position, "name"),
                                 f"{intent.name!r} is already the name of intent[{first}] "
                                 "(names must be unique, ignoring case)"))  # fmt: skip
            for number, keyword in enumerate(intent.keywords):
                other = keywords.setdefault(fold(keyword), position)
                if other != position:
                    problems.append((("intent", position, "keywords", number),
                                     f"{keyword!r} is also a keyword of intent "
                                     f"{self.intent[other].name!r} (a keyword must say "
                                     "which intent)"))  # fmt: skip
        _problems("IntentsConfig", problems)
        examples = sum(len(i.examples) for i in self.intent)
        if examples > MAX_EXAMPLES_TOTAL:
            raise ValueError(
                f"intent: at most {MAX_EXAMPLES_TOTAL} examples in all, not {examples}"
            )
        chars = sum(len(e) for i in self.intent for e in i.examples)
        if chars > MAX_EXAMPLE_CHARS_TOTAL:
            raise ValueError(
                f"intent: at most {MAX_EXAMPLE_CHARS_TOTAL} characters of examples in all, "
                f"not {chars}"
            )
        if len(keywords) > MAX_KEYWORDS_TOTAL:
            raise ValueError(
                f"intent: at most {MAX_KEYWORDS_TOTAL} keywords in all, not {len(keywords)}"
            )
        return self
