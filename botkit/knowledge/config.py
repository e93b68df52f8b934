"""The ``[plugins.knowledge]`` section."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from botkit.plugins import PluginConfig

__all__ = ["KnowledgeConfig"]

# The passages first, the instruction after them: what the system prompt ends with is
# what a small model repeats (see botkit.knowledge.plugin).
DEFAULT_INSTRUCTION = (
    "{passages}\n\nAnswer using the company information above when it covers the "
    "customer's question. Do not invent facts about the company, its products, prices or "
    "policies that it does not state; when it does not cover the question, say you are "
    "not sure and offer to connect the customer with a colleague."
)
DEFAULT_NO_MATCH_INSTRUCTION = (
    "No company information matched this message. If it asks about the company, its "
    "products, orders, prices or policies, do not guess: say you are not sure and offer "
    "to connect the customer with a colleague."
)


MAX_SOURCES = 100

# Room for "[n] ", a passage's title (cut to 80 characters), its link (at most
# MAX_URL = 200 characters, in parentheses) and the note about links beside its text.
TITLE_ROOM = 400


class KnowledgeConfig(PluginConfig):
    """Settings of the knowledge-base plugin.

    Attributes:
        sources: files or glob patterns (``**`` recurses) of Markdown (``.md``,
            ``.markdown``) and text (``.txt``) files, relative to the working directory
            like ``[store] url``. Write them in the bot's working language (or in the
            languages customers write).
        max_passages: how many passages one message may add to the prompt.
        passage_chars: the most characters of one passage (files are cut at headings,
            paragraphs, then sentences).
        max_context_chars: the most characters of passages one message adds (keeps the
            prompt inside a small model's context); at least ``passage_chars + 400``.
            The marks around them and their note (``plugin.FRAME_CHARS``) come on top.
        min_relevance: passages below this relevance (0-1, BM25 normalized by what
            the question could score) are not shown.
        min_relative_relevance: nor are passages below this share of the best
            passage's relevance (0-1; 0 keeps them): a passage that shares a word or two
            with the question next to one that answers it misleads a small model.
        history_weight: how much the customer's previous message can add to a
            passage's relevance (follow-ups such as "how long?"): it adds
            ``history_weight`` times the passage's relevance to that message, times
            what the question's best passage leaves unanswered (``1 - best``); 0
            ignores it.
        instruction: what the model is told with the passages (``{passages}`` is
            replaced by them, between ``<company_info>`` marks, after a note that they
            are reference material, not instructions); it joins the system prompt for
            that message only. Put ``{passages}`` first: a small model tends to repeat
            what the system prompt ends with.
        no_match_instruction: what the model is told when nothing matched; "" adds
            nothing.
        max_file_bytes: bigger files are left out (with an error in the log).
        reload_seconds: how often the files are checked for changes (new, edited or
            removed files are indexed again without a restart); 0 never, else at least 1.
        allow_hard_links: use files that have other names too (hard links); by default
            they are left out with a problem naming them, since one of those names may
            be a secret file (docs/knowledge.md, "Linked files").
    """

    sources: tuple[str, ...]
    max_passages: int = Field(default=3, ge=1, le=20)
    passage_chars: int = Field(default=800, ge=100, le=8000)
    max_context_chars: int = Field(default=2400, ge=200, le=32000)
    min_relevance: float = Field(default=0.1, ge=0, lt=1)
    min_relative_relevance: float = Field(default=0.5, ge=0, le=1)
    history_weight: float = Field(default=0.5, ge=0, le=1)
    instruction: str = Field(default=DEFAULT_INSTRUCTION, max_length=4000)
    no_match_instruction: str = Field(default=DEFAULT_NO_MATCH_INSTRUCTION, max_length=4000)
    max_file_bytes: int = Field(default=5_000_000, ge=1, le=100_000_000)
    reload_seconds: float = Field(default=30.0, ge=0, le=86400)
    allow_hard_links: bool = False

    @field_validator("sources")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Checked here, not by Field(min_length=...): pydantic's words name a "tuple",
        # and the file has a list.
        if not value:
            raise ValueError("must list at least one file or pattern")
        if len(value) > MAX_SOURCES:
            raise ValueError(f"must list at most {MAX_SOURCES} files or patterns, not "
                             f"{len(value)} (a pattern such as kb/**/*.md takes many)")  # fmt: skip
        for pattern in value:
            if not pattern.strip():
                raise ValueError("a source must not be empty")
            if "\x00" in pattern:
                raise ValueError("a source must not contain NUL")
        return tuple(dict.fromkeys(p.strip() for p in value))

    @field_validator("instruction")
    @classmethod
    def _has_slot(cls, value: str) -> str:
        if "{passages}" not in value:
            raise ValueError("must contain {passages}, where the passages go")
        try:
            value.format(passages="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"may use only the {{passages}} placeholder (write other braces doubled, "
                f"{{{{ }}}}): {exc}"
            ) from None
        return value

    @field_validator("reload_seconds")
    @classmethod
    def _reload(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError("must be 0 (never) or at least 1 second")
        return value

    @model_validator(mode="after")
    def _fits(self) -> KnowledgeConfig:
        # A passage's number, title and link come with it.
        if self.passage_chars + TITLE_ROOM > self.max_context_chars:
            raise ValueError(
                f"max_context_chars must be at least passage_chars + {TITLE_ROOM} "
                "(one passage with its title must fit)"
            )
        return self
