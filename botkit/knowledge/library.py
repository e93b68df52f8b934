"""The knowledge base as loaded from its files: the index, and what went wrong.

Loading is synchronous and runs in a worker thread (``asyncio.to_thread``): reading and
indexing megabytes of text must not stall the event loop. A file that cannot be used
is left out and named in ``problems``; the others are still indexed.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from botkit.knowledge.config import KnowledgeConfig
from botkit.knowledge.documents import SUFFIXES, DocumentError, Passage, read_passages
from botkit.knowledge.index import PassageIndex
from botkit.knowledge.stemming import stemmer_for

__all__ = ["MAX_FILES", "Library", "find_files", "fingerprint", "load_library"]

# A pattern such as "/**" must not make the bot walk a whole disk.
MAX_FILES = 10_000

# (path, modification time in ns, size) of each file: a changed tuple means reload.
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Library:
    """A loaded knowledge base.

    Attributes:
        index: the passages, searchable.
        files: each file used and how many passages it gave.
        problems: ``"path: reason"`` for each file left out, and patterns that found
            no file.
        fingerprint: the files' state when they were read.
    """

    index: PassageIndex
    files: dict[str, int]
    problems: tuple[str, ...]
    fingerprint: Fingerprint

    def summary(self) -> str:
        """One line for the log."""
        text = f"{_count(len(self.index), 'passage')} from {_count(len(self.files), 'file')}"
        return text + (f", {_count(len(self.problems), 'problem')}" if self.problems else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def find_files(patterns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The files ``patterns`` name, in pattern order without repeats, and problems.

    A pattern with wildcards takes the supported files it matches (other kinds are
    skipped quietly, so ``docs/**/*`` may hold images); a plain path is taken as is, and
    reading it says what is wrong with it.
    """
    found: dict[str, None] = {}
    problems: list[str] = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        if not glob.has_magic(expanded):
            found[expanded] = None
            continue
        matched = 0
        for path in sorted(glob.iglob(expanded, recursive=True)):
            if Path(path).suffix.lower() in SUFFIXES and os.path.isfile(path):
                matched += 1
                found[path] = None
            if len(found) > MAX_FILES:
                problems.append(f"{pattern}: more than {MAX_FILES:,} files; the rest left out")
                return list(found)[:MAX_FILES], problems
        if not matched:
            problems.append(f"{pattern}: no .md, .markdown or .txt file matches")
    return list(found), problems


def fingerprint(paths: list[str]) -> Fingerprint:
    """The state of ``paths`` now (a missing file counts as ``-1, -1``)."""
    state = []
    for path in paths:
        try:
            info = os.stat(path)
            state.append((path, info.st_mtime_ns, info.st_size))
        except OSError:
            state.append((path, -1, -1))
    return tuple(state)


def load_library(config: KnowledgeConfig, language: str | None) -> Library:
    """Find, read and index the files of ``config.sources``, written in ``language``
    (the bot's working language: it picks the stemmer)."""
    paths, problems = find_files(config.sources)
    # Taken before reading: a file edited while it is read differs next time, so the
    # next check loads it again.
    state = fingerprint(paths)
    passages: list[Passage] = []
    files: dict[str, int] = {}
    for path in paths:
        try:
            found = read_passages(
                Path(path), passage_chars=config.passage_chars, max_bytes=config.max_file_bytes
            )
        except DocumentError as exc:
            problems.append(f"{path}: {exc}")
            continue
        files[path] = len(found)
        passages.extend(found)
    index = PassageIndex(passages, stem=stemmer_for(language))
    return Library(index, files, tuple(problems), state)
