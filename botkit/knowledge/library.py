"""The knowledge base as loaded from its files: the index, and what went wrong.

Loading is synchronous and runs in a worker thread (``asyncio.to_thread``): reading and
indexing megabytes of text must not stall the event loop. A file that cannot be used
is left out and named in ``problems``; the others are still indexed. A file used
despite a mistake in it (an unclosed HTML comment) is named there too.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from botkit.knowledge._paths import hidden as _hidden
from botkit.knowledge._paths import inside as _inside
from botkit.knowledge._paths import link_out
from botkit.knowledge.analysis import Analyzer
from botkit.knowledge.config import KnowledgeConfig
from botkit.knowledge.documents import SUFFIXES, DocumentError, Passage, read_document
from botkit.knowledge.index import PassageIndex

__all__ = [
    "MAX_ENTRIES",
    "MAX_FILES",
    "Fingerprint",
    "Library",
    "find_files",
    "fingerprint",
    "load_library",
]

# A pattern such as "/**" must not make the bot walk a whole disk.
MAX_FILES = 10_000
MAX_ENTRIES = 200_000

# (path, modification time in ns, size, names) of each file: a changed tuple means
# reload. The count of names (hard links) is in it so that a file left out for having
# several is read again once it has one, though its contents did not change.
Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class Library:
    """A loaded knowledge base.

    Attributes:
        index: the passages, searchable.
        files: each file used and how many passages it gave.
        problems: ``"path: reason"`` for each file left out, and patterns that found
            no file; ``"path: line N: reason"`` for what is wrong in a file that is
            used all the same (an unclosed HTML comment).
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


def _matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether path ``parts`` match pattern components (``**``: any number of folders).

    As in ``glob``, a name starting with "." matches only a component that starts with
    "." too.
    """
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return _matches(rest, parts) or (
            bool(parts) and not parts[0].startswith(".") and _matches(pattern, parts[1:])
        )
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _matches(rest, parts[1:])


def _split(pattern: str) -> tuple[str, list[str]]:
    """The folder a pattern (with wildcards) starts in, and its components from there."""
    parts = pattern.split(os.sep)
    first = next(n for n, part in enumerate(parts) if glob.has_magic(part))
    return os.sep.join(parts[:first]) or ("." if first == 0 else os.sep), parts[first:]


def _walk(pattern: str, problems: list[str]) -> Iterator[str]:
    """The entries (files, and other things such as folders, FIFOs and links) that
    ``pattern`` (with wildcards) matches, in sorted order.

    Walked with ``os.walk`` without following folder links: a link back up the tree
    (``kb/latest -> .``) would otherwise repeat everything below it, or never end. The
    walk stops after ``MAX_ENTRIES`` entries.
    """
    base, rest = _split(pattern)
    # Without "**", no match lies deeper than the pattern: do not walk there.
    depth = None if "**" in rest else len(rest) - 1
    # Hidden folders (.git, .venv) can match only a component that starts with "."
    # (as in glob); without one they are not walked at all.
    hidden = any(part.startswith(".") and part not in (".", "..") for part in rest)
    seen = 0
    for folder, folders, files in os.walk(base):
        relative = os.path.relpath(folder, base)
        level = [] if relative == "." else relative.split(os.sep)
        if not hidden:
            folders[:] = [name for name in folders if not name.startswith(".")]
        folders.sort()
        # A folder (or a link to one) the pattern names is reported, not skipped.
        names = sorted([*files, *folders])
        if depth is not None and len(level) >= depth:
            folders.clear()
        seen += len(names)
        if seen > MAX_ENTRIES:
            problems.append(f"{pattern}: more than {MAX_ENTRIES:,} entries to look at; "
                            "stopped there (make the pattern narrower)")  # fmt: skip
            return
        for name in names:
            if _matches(rest, [*level, name]):
                yield os.path.normpath(os.path.join(folder, name))


@dataclass(frozen=True)
class _Bounds:
    """Where a link may lead: into the folder of a pattern (its folder before the first
    wildcard), to no hidden name below it, or to a file listed by its own name that is
    not a link itself.

    A listed file's folder is no such place: ``sources = ["faq.md", "kb/*.md"]`` would
    make every file under "." (``.env`` too) a valid target of a link in ``kb/``.
    """

    folders: tuple[str, ...]  # real paths
    listed: frozenset[str]  # real paths

    def refuses(self, real: str) -> str | None:
        """Why a link to ``real`` (a resolved path) must not be used, or None."""
        if real in self.listed:
            return None
        below = [os.path.relpath(real, f) for f in self.folders if _inside(real, f)]
        if any(not _hidden(relative) for relative in below):
            return None
        if below:
            return (f"left out: a link to {real}, a hidden file or folder (a link to a "
                    'name starting with "." is never used)')  # fmt: skip
        return (f"left out: a link to {real}, outside the sources' folders (a link may "
                "lead only into the folder of a pattern in sources)")  # fmt: skip


# Why a link on a source's way is refused (``_paths.link_out``).
_LINK_RULE = ("on a source's path, a link may lead only within the folder the path "
              "enters first below the working directory or a folder above it")  # fmt: skip


def _listed_refusal(path: str, real: str, bounds: _Bounds, areas: tuple[str, ...]) -> str | None:
    """Why a file ``sources`` names (``path``, at the real path ``real``) must not be used,
    or None.

    ``areas`` are the folders of the sources as written (absolute, links not resolved):
    each pattern's folder before its first wildcard and each listed file's folder.

    - A listed file that is a link (when found, or as opened) may lead into its own
      folder (resolved), to no hidden name below it (a ConfigMap's ``faq.md ->
      ..data/faq.md``), or where any link may (``bounds``).
    - A link among its folders may not lead out of the folder of another source that
      holds it: with ``kb/faq.md`` or ``kb/*.md`` in ``sources``, ``kb/team ->
      ../secret`` makes ``kb/team/notes.md`` a file outside ``kb/`` and it is refused.
    - Nor may a link on its path lead out of the folder the path enters first below
      the working directory (``kb/docs -> /etc`` for ``kb/docs/passwd.md``, ``sources``
      naming nothing else in ``kb/``: ``_paths.link_out``), unless the file lies where
      any link may lead (``bounds``). Links in the working directory and above are the
      operator's layout (``kb -> /mnt/kb`` alone is fine).
    """
    folder = os.path.dirname(os.path.abspath(path))
    own = os.path.realpath(folder)
    if real != os.path.join(own, os.path.basename(path)):  # the file itself is a link
        if not (_inside(real, own) and not _hidden(os.path.relpath(real, own))):
            problem = bounds.refuses(real)
            if problem is not None:
                return (f"{problem}; to use it, list {real} itself in sources, or a "
                        "pattern in its folder")  # fmt: skip
    for area in areas:
        if area != folder and _inside(folder, area) and not _inside(real, os.path.realpath(area)):
            return (f"left out: it is {real}, reached through a link out of {area}, the "
                    "folder of another source (a link in a source's folder may not lead "
                    f"out of it; list {real} itself in sources to use it)")  # fmt: skip
    out = link_out(os.path.dirname(path))
    if out is not None and bounds.refuses(real) is not None:
        return (f"left out: it is {real}, reached through {out.link}, a link to "
                f"{out.target} out of {out.tree} ({_LINK_RULE}, or into "
                f"the folder of a pattern in sources); to use it, list {real} itself in "
                "sources, or a pattern in its folder")  # fmt: skip
    return None


def _folder_linked_out(folder: str, areas: tuple[str, ...]) -> str | None:
    """Why a pattern's ``folder`` must not be walked, or None: it is (or lies in) a link
    out of the folder of another source that holds it, or its path goes through a
    link out of the folder it enters first below the working directory (``kb/docs ->
    /etc`` for ``kb/docs/*.md``: ``_paths.link_out``)."""
    written = os.path.abspath(folder)
    real = os.path.realpath(folder)
    for area in areas:
        if area != written and _inside(written, area) and not _inside(real, os.path.realpath(area)):
            return (f"left out: its folder is {real}, reached through a link out of {area}, "
                    "the folder of another source (a link in a source's folder may not "
                    f"lead out of it; write a pattern in {real} to use it)")  # fmt: skip
    out = link_out(folder)
    if out is not None:
        return (f"left out: its folder is {real}, reached through {out.link}, a link to "
                f"{out.target} out of {out.tree} ({_LINK_RULE}); write a "
                f"pattern in {real} to use it")  # fmt: skip
    return None


def _unusable(path: str, real: str, bounds: _Bounds) -> str | None:
    """Why an entry a pattern found cannot be used, or None.

    Never opens it: a FIFO would block. A link to a file outside the folders of the
    patterns (``kb/x.md -> /etc/secret``), or to a hidden one (``kb/x.md -> ../.env``),
    is left out: whoever may write in the folder must not be able to show the model
    any file the bot can read.
    """
    try:
        info = os.stat(path)  # follows links; does not open
    except OSError as exc:
        link = f" (a link to {os.readlink(path)})" if os.path.islink(path) else ""
        return f"cannot be read: {exc.strerror or exc}{link}"
    if stat.S_ISDIR(info.st_mode):
        return "cannot be read: not a regular file but a folder"
    if not stat.S_ISREG(info.st_mode):
        return "cannot be read: not a regular file"
    if not os.path.islink(path) and any(_inside(real, f) for f in bounds.folders):
        return None  # a name the pattern matched, hidden or not
    # A link, or a folder on the way swapped for one since the walk.
    return bounds.refuses(real)


@dataclass(frozen=True)
class _Found:
    """The files of ``find_files`` and what reading each must find again.

    ``checked`` holds the real path each file that was not a link had when it was
    checked: the file opened later must lie there, or be a link ``bounds`` allows.
    A file swapped for a link between the check and the read is caught so.
    """

    paths: list[str]
    problems: list[str]
    bounds: _Bounds
    checked: dict[str, str]
    # The folders of the sources as written, for the files sources names (``listed``).
    areas: tuple[str, ...] = ()
    listed: frozenset[str] = frozenset()

    def refuses(self, path: str, opened: str) -> str | None:
        """Why the file ``path`` names, opened at the real path ``opened``, must not
        be used, or None."""
        if self.checked.get(path) == opened:
            return None
        if path in self.listed:
            return _listed_refusal(path, opened, self.bounds, self.areas)
        return self.bounds.refuses(opened)


def find_files(patterns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The files ``patterns`` name, in pattern order, each once (links to one file count
    once), and problems.

    A pattern with wildcards takes the supported files it matches (other kinds are
    skipped quietly, so ``docs/**/*`` may hold images). What it matches with a supported
    name that is not a regular file (a dangling link, a FIFO, a device, a folder) is a
    problem. A plain path is taken as the operator named it, and reading it says what
    is wrong with it. A link, found or named, is a problem unless it leads into a
    pattern's folder (before its first wildcard) to no hidden name, or to a file named
    in ``patterns`` that is not a link itself.
    """
    found = _find(patterns)
    return found.paths, found.problems


def _find(patterns: tuple[str, ...]) -> _Found:
    found: dict[str, str] = {}  # real path -> the path as found
    checked: dict[str, str] = {}
    problems: list[str] = []
    expanded_patterns = [os.path.expanduser(pattern) for pattern in patterns]
    listed = [p for p in expanded_patterns if not glob.has_magic(p)]
    areas = tuple(
        os.path.abspath(_split(p)[0]) if glob.has_magic(p) else os.path.dirname(os.path.abspath(p))
        for p in expanded_patterns
    )
    # A pattern whose folder is a link out of another source's folder is left out, as a
    # listed file reached so is (_listed_refusal).
    linked_out = {
        p: problem
        for p in expanded_patterns
        if glob.has_magic(p) and (problem := _folder_linked_out(_split(p)[0], areas))
    }
    folders = tuple(
        os.path.realpath(_split(p)[0])
        for p in expanded_patterns
        if glob.has_magic(p) and p not in linked_out
    )
    # A listed file (not a link) that links may lead to: not one reached through a link
    # out of another source's folder (no bounds needed to tell: it is no link itself).
    bounds = _Bounds(
        folders,
        frozenset(
            os.path.realpath(p)
            for p in listed
            if not os.path.islink(p)
            and _listed_refusal(p, os.path.realpath(p), _Bounds(folders, frozenset()), areas)
            is None
        ),
    )

    def take(path: str, real: str) -> None:
        found.setdefault(real, path)
        if not os.path.islink(path):
            checked[path] = real

    for pattern, expanded in zip(patterns, expanded_patterns, strict=True):
        if not glob.has_magic(expanded):
            real = os.path.realpath(expanded)
            problem = _listed_refusal(expanded, real, bounds, areas)
            if problem is not None:
                problems.append(f"{expanded}: {problem}")
            else:
                take(expanded, real)
            continue
        if expanded in linked_out:
            problems.append(f"{pattern}: {linked_out[expanded]}")
            continue
        matched = 0
        for path in _walk(expanded, problems):
            if Path(path).suffix.lower() not in SUFFIXES:
                continue
            matched += 1
            real = os.path.realpath(path)
            problem = _unusable(path, real, bounds)
            if problem is not None:
                problems.append(f"{path}: {problem}")
                continue
            take(path, real)
            if len(found) > MAX_FILES:
                problems.append(f"{pattern}: more than {MAX_FILES:,} files; the rest left out")
                return _Found(list(found.values())[:MAX_FILES], problems, bounds, checked,
                              areas, frozenset(listed))  # fmt: skip
        if not matched:
            problems.append(f"{pattern}: no .md, .markdown or .txt file matches")
    return _Found(list(found.values()), problems, bounds, checked, areas, frozenset(listed))


def fingerprint(paths: list[str]) -> Fingerprint:
    """The state of ``paths`` now (a missing file counts as ``-1, -1, -1``)."""
    state = []
    for path in paths:
        try:
            info = os.stat(path)
            state.append((path, info.st_mtime_ns, info.st_size, info.st_nlink))
        except OSError:
            state.append((path, -1, -1, -1))
    return tuple(state)


def load_library(config: KnowledgeConfig, language: str | None) -> Library:
    """Find, read and index the files of ``config.sources``, written in ``language``
    (the bot's working language: it picks the stemmer)."""
    found = _find(config.sources)
    paths, problems = found.paths, found.problems
    # Taken before reading: a file edited while it is read differs next time, so the
    # next check loads it again.
    state = fingerprint(paths)
    passages: list[Passage] = []
    files: dict[str, int] = {}
    for path in paths:
        try:
            # Checked again on the file as opened: it may have been swapped for a link
            # since it was found.
            document = read_document(
                Path(path),
                passage_chars=config.passage_chars,
                max_bytes=config.max_file_bytes,
                where=functools.partial(found.refuses, path),
                allow_hard_links=config.allow_hard_links,
            )
        except DocumentError as exc:
            problems.append(f"{path}: {exc}")
            continue
        problems += (f"{path}: {problem}" for problem in document.problems)
        files[path] = len(document.passages)
        passages.extend(document.passages)
    index = PassageIndex(passages, Analyzer(language))
    return Library(index, files, tuple(problems), state)
