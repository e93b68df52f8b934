"""``botkit knowledge``: what the knowledge base holds and what a question finds.

``check`` lists the files, their passages and every problem, without starting a bot;
``search`` shows the passages a question would add to the prompt, with their relevance
and the words that matched, so an operator can see why an answer was (not) grounded.
"""

from __future__ import annotations

from botkit.config import Settings, resolve_components_or_raise
from botkit.errors import ConfigError, ConfigProblem
from botkit.knowledge.config import KnowledgeConfig
from botkit.knowledge.library import Library, load_library
from botkit.knowledge.plugin import find_passages, format_passages
from botkit.language.stopwords import stopwords

__all__ = ["check", "search"]


def _config(settings: Settings, name: str) -> KnowledgeConfig:
    specs = resolve_components_or_raise("plugins", settings.plugins, only={name})
    config = specs[0].config if specs else None
    if not isinstance(config, KnowledgeConfig):
        problem = (
            "is not the knowledge plugin"
            if specs
            else f"no [plugins.{name}] table, or it has enabled = false"
        )
        raise ConfigError([ConfigProblem(f"plugins.{name}", problem)])
    return config


def _load(settings: Settings, name: str) -> tuple[KnowledgeConfig, Library]:
    config = _config(settings, name)
    return config, load_library(config, settings.bot.working_language)


def check(settings: Settings, name: str = "knowledge") -> tuple[str, bool]:
    """A report of the files and problems, and whether the base is usable as is
    (passages found and no problem)."""
    _, library = _load(settings, name)
    lines = [f"{path}: {count} passage{'' if count == 1 else 's'}"
             for path, count in library.files.items()]  # fmt: skip
    lines += [f"problem: {problem}" for problem in library.problems]
    lines.append(library.summary())
    return "\n".join(lines), bool(len(library.index)) and not library.problems


def search(settings: Settings, question: str, *, language: str | None = None,
           name: str = "knowledge") -> tuple[str, bool]:  # fmt: skip
    """The passages ``question`` finds, best first, then exactly what the model would be
    told (the instruction with the passages, or the no-match instruction), and whether
    the base could be searched at all (it has passages)."""
    config, library = _load(settings, name)
    problems = [f"problem: {problem}" for problem in library.problems]
    if not len(library.index):
        return "\n".join([*problems, "the knowledge base has no passages (the bot would "
                           "run without the plugin)"]), False  # fmt: skip
    words = stopwords(language or settings.bot.working_language)
    index = library.index
    query = index.query(question, leave_out=words)
    hits = find_passages(index, query, config)  # as the plugin finds them
    if not hits:
        found = (f"nothing reaches min_relevance {config.min_relevance}; the model is told: "
                 f"{config.no_match_instruction or '(nothing)'}")  # fmt: skip
        return "\n".join([*problems, found]), True
    lines = [
        f"[{n}] {h.relevance:.2f} {h.passage.source}:{h.passage.line} "
        f"(matched terms: {', '.join(index.matched_terms(query, h.passage))})"
        for n, h in enumerate(hits, 1)
    ]
    # Exactly what joins the system prompt, instruction and all.
    given = config.instruction.format(passages=format_passages(hits, config.max_context_chars))
    return "\n".join([*problems, *lines, "", "the model is told:", given]), True
