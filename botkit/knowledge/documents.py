"""Reading the knowledge base's files and cutting them into passages.

A passage is what the model is shown: a few paragraphs under their headings, at most
``passage_chars`` characters, so the few passages a question retrieves fit in the
prompt together.

* Markdown (``.md``, ``.markdown``): one CommonMark parse (``_commonmark``) finds the
  headings, code blocks and HTML comments. Headings at the top level of the file (ATX
  ``#`` to ``######``, setext ``===`` and ``---``) open sections; a passage carries its
  heading path ("Shipping > Returns") as its title. A code block is never cut at a
  blank line inside it, only when it alone is too long. YAML front matter at the top
  (``front_matter``) and HTML comments outside code (``<!-- editors' notes -->``) are
  left out; the front matter's ``url:`` (the page on the help centre) goes with every
  passage of the file, for the model to cite. A comment never closed is reported, and
  the text after it kept. A file too big or too deeply nested to parse is refused when
  it has a ``<!--`` (what is a comment cannot be told), else read as plain text, with
  a problem: a miss there costs titles, never text.
* Plain text (``.txt``): paragraphs, titled with the file's name.

Files must be UTF-8 (a byte-order mark is allowed). Text is cleaned like customers'
messages (``sanitize_text``: no NUL, lone surrogates or control characters).
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from botkit.knowledge._commonmark import MarkdownLimit, parse_markdown, without_comments
from botkit.knowledge._markdown import Heading, Markdown, front_matter
from botkit.sanitize import sanitize_text

__all__ = [
    "MAX_URL",
    "SUFFIXES",
    "Document",
    "DocumentError",
    "Passage",
    "page_url",
    "read_document",
    "read_markdown",
    "split_markdown",
    "split_text",
    "without_comments",
]

SUFFIXES = frozenset({".md", ".markdown", ".txt"})
MAX_URL = 200
TITLE_SEPARATOR = " > "
# Where Linux shows the file an open descriptor refers to.
_FD_LINK = "/proc/self/fd/{}"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
# Unclosed comments named one by one; more are counted.
_UNCLOSED_SHOWN = 5

# After ". ", or right after an ideographic full stop, exclamation or question mark
# (Chinese and Japanese put no space between sentences).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])")


class DocumentError(Exception):
    """A file of the knowledge base cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable piece of the knowledge base.

    Attributes:
        source: the file it comes from, as the config's pattern found it.
        line: the line of the file where it starts (1-based), for operators.
        title: its heading path, or the file's name.
        text: the passage itself.
        url: where customers can read the whole page (the file's front matter
            ``url:``), or None.
    """

    source: str
    line: int
    title: str
    text: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """What one file gives.

    Attributes:
        passages: its passages.
        problems: what is wrong in it that did not stop it being used (an unclosed
            HTML comment), for the operator to fix.
    """

    passages: list[Passage]
    problems: tuple[str, ...] = ()


def read_document(
    path: Path,
    *,
    passage_chars: int,
    max_bytes: int,
    where: Callable[[str], str | None] | None = None,
    allow_hard_links: bool = False,
) -> Document:
    """The passages of the file at ``path``, and problems found in it.

    Args:
        path: the file.
        passage_chars: the most characters of a passage.
        max_bytes: bigger files are refused.
        where: called with the real path of the file, before it is opened and again
            with that of the file as opened (links followed); a reason it returns
            refuses the file. Checked on the open file, so that a file swapped for a
            link since it was looked at is caught.
        allow_hard_links: use a file that has other names (hard links) too; else it is
            refused (``_usable``), also when it gains them between look and open.

    Raises:
        DocumentError: not a regular file, not a supported kind, too big, unreadable,
            not UTF-8, a hard link (unless allowed), or refused by ``where``.
    """
    if path.is_dir():  # whatever its name: its fix is a pattern, not another file
        hint = os.path.join(path, "**", "*.md")
        raise DocumentError(f"cannot be read: not a regular file but a folder (to use the "
                            f"files in it, give a pattern such as {hint})")  # fmt: skip
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(f"not a supported file ({', '.join(sorted(SUFFIXES))})")
    try:
        # Looked at before opening: opening a device may do something (a tape rewinds).
        _usable(os.stat(path), path, os.path.realpath(path), where, max_bytes, allow_hard_links)
        # O_NONBLOCK: a FIFO swapped in since would block the open; fstat refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC | _O_NOCTTY)
        with os.fdopen(fd, "rb") as file:
            _usable(os.fstat(fd), path, _opened_at(fd, path), where, max_bytes,
                    allow_hard_links)  # fmt: skip
            raw = file.read(max_bytes + 1)  # it may have grown since fstat()
    except OSError as exc:
        raise DocumentError(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise DocumentError(f"over max_file_bytes ({max_bytes:,})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Offsets of "utf-8-sig" count from after a byte-order mark: from the file's
        # start here, as a hex editor (or `cmp`, less one) shows them.
        offset = exc.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)
        line = raw.count(b"\n", 0, offset) + 1
        raise DocumentError(f"is not UTF-8: byte 0x{raw[offset]:02X} at byte offset {offset} "
                            f"(counted from 0), line {line}") from None  # fmt: skip
    text = sanitize_text(text)
    source = str(path)
    if suffix == ".txt":
        return Document(list(split_text(text, source=source, title=path.stem,
                                        passage_chars=passage_chars)))  # fmt: skip
    return read_markdown(text, source=source, title=path.stem, passage_chars=passage_chars)


def _usable(
    info: os.stat_result,
    path: Path,
    real: str,
    where: Callable[[str], str | None] | None,
    max_bytes: int,
    allow_hard_links: bool,
) -> None:
    if not stat.S_ISREG(info.st_mode):
        # A FIFO (reading would block), /dev/zero (would never end)...
        raise DocumentError("cannot be read: not a regular file")
    reason = None if where is None else where(real)
    if reason is not None:
        raise DocumentError(reason)
    # A hard link is the file itself under another name: no path tells that `kb/x.md`
    # is also /srv/bot/.env. Its count of names is the only sign (0 where the system
    # gives none). Postfix's safe_open refuses such a file alike ("it must have only
    # one hard link").
    if info.st_nlink > 1 and not allow_hard_links:
        name = shlex.quote(str(path))
        raise DocumentError(
            f"left out: it has {info.st_nlink} names (hard links), and its other names "
            "cannot be told from it: one may be a secret file elsewhere on this file "
            f"system (`find / -xdev -samefile {name}` lists them). If it belongs here, "
            f"give it a name of its own (cp {name} {name}.copy && mv {name}.copy "
            f"{name}); if your deployment makes hard links (rsync --link-dest, a Nix "
            "store, ostree, uv), set allow_hard_links = true"
        )
    if info.st_size > max_bytes:
        raise DocumentError(f"{info.st_size:,} bytes, over max_file_bytes ({max_bytes:,})")


def _opened_at(fd: int, path: Path) -> str:
    """The real path of the file open as ``fd``: where the open found it, whatever was
    swapped since."""
    try:
        # Linux: the kernel's own record of what was opened.
        opened = os.readlink(_FD_LINK.format(fd))
    except OSError:
        opened = ""
    if opened.startswith(os.sep):
        return opened.removesuffix(" (deleted)")  # replaced since (an editor's save)
    # Elsewhere: the path resolved now, if the file there is the very one opened.
    real = os.path.realpath(path)
    now, then = os.stat(real), os.fstat(fd)
    if (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino):
        raise DocumentError("cannot be read: it was replaced while being opened (it is "
                            "read again when it next changes)")  # fmt: skip
    return real


def read_markdown(text: str, *, source: str, title: str, passage_chars: int) -> Document:
    """The passages of a Markdown text (module docstring), and problems found in it.

    Raises:
        DocumentError: it has a ``<!--`` and is too big or nested too deeply to parse.
    """
    try:
        markdown = parse_markdown(text)
    except MarkdownLimit as exc:
        if "<!--" in text:
            raise DocumentError(str(exc)) from None
        # No comment to hide: its text is safe to use, only its headings are unknown.
        return Document(list(_plain_markdown(text, source, title, passage_chars)),
                        (f"{exc}; it is read as plain text, without its headings",))  # fmt: skip
    unclosed = markdown.unclosed
    problems = tuple(
        f"line {line}: an HTML comment (<!--) is never closed with -->; the text after "
        "it is used as written (close the comment, or put <!-- in `code`)"
        for line in unclosed[:_UNCLOSED_SHOWN]
    )
    if len(unclosed) > _UNCLOSED_SHOWN:
        problems += (f"{len(unclosed) - _UNCLOSED_SHOWN:,} more HTML comments (<!--) are "
                     f"never closed, from line {unclosed[_UNCLOSED_SHOWN]}",)  # fmt: skip
    url = page_url(markdown.meta.get("url", ""))
    return Document(list(_sections(markdown, source, title, passage_chars, url)), problems)


def split_text(text: str, *, source: str, title: str, passage_chars: int) -> Iterator[Passage]:
    """Passages of plain text: paragraphs (blank-line separated) packed together."""
    lines = text.splitlines()
    yield from _pack(_blocks(lines, 0, frozenset()), source, title, passage_chars)


def split_markdown(text: str, *, source: str, title: str, passage_chars: int) -> Iterator[Passage]:
    """Passages of Markdown (``read_markdown`` without its problems)."""
    document = read_markdown(text, source=source, title=title, passage_chars=passage_chars)
    return iter(document.passages)


def _sections(
    markdown: Markdown, source: str, title: str, passage_chars: int, url: str | None
) -> Iterator[Passage]:
    """The passages of each section, titled with its heading path."""
    lines = markdown.lines
    # Blank lines that do not end a block: those inside code.
    joined = frozenset(
        number
        for first, end in markdown.code_blocks()
        for number in range(first, min(end, len(lines)))
        if not lines[number].strip()
    )
    path: list[Heading] = []  # the open sections
    start = markdown.body
    for heading in markdown.headings():
        if heading.first > start:  # else nothing between two headings
            section = _blocks(lines[start : heading.first], start, joined)
            yield from _titled(section, path, source, title, passage_chars, url)
        while path and path[-1].level >= heading.level:
            path.pop()
        if heading.title:  # "#" alone closes the sections below its level
            path.append(heading)
        start = heading.end
    yield from _titled(_blocks(lines[start:], start, joined), path, source, title,
                       passage_chars, url)  # fmt: skip


def _titled(
    blocks: Iterator[tuple[int, str]],
    path: list[Heading],
    source: str,
    title: str,
    passage_chars: int,
    url: str | None,
) -> Iterator[Passage]:
    section_title = TITLE_SEPARATOR.join(heading.title for heading in path) or title
    for passage in _pack(blocks, source, section_title, passage_chars):
        yield passage if url is None else replace(passage, url=url)


def _plain_markdown(text: str, source: str, title: str, passage_chars: int) -> Iterator[Passage]:
    """A Markdown text read as plain text: paragraphs, its front matter left out."""
    lines = re.sub(r"\r\n?", "\n", text).split("\n")  # the lines of the parse
    body, meta = front_matter(lines)
    url = page_url(meta.get("url", ""))
    blocks = _blocks(lines[body:], body, frozenset())
    yield from _titled(blocks, [], source, title, passage_chars, url)


def page_url(value: str) -> str | None:
    """``value`` when it is an http(s) URL a customer can open (at most ``MAX_URL``
    characters, no spaces), else None."""
    if not value or len(value) > MAX_URL or any(c.isspace() for c in value):
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def _blocks(lines: list[str], first: int, joined: Set[int]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each paragraph; a blank line whose number (counted
    from ``first``) is in ``joined`` does not end one."""
    block: list[str] = []
    start = first
    for number, line in enumerate(lines, first):
        if not line.strip() and number not in joined:
            if block:
                yield start + 1, "\n".join(block).strip("\n")
            block = []
            continue
        if not block:
            start = number
        block.append(line.rstrip())
    if block:
        yield start + 1, "\n".join(block).strip("\n")


def _pack(
    blocks: Iterator[tuple[int, str]], source: str, title: str, passage_chars: int
) -> Iterator[Passage]:
    """Consecutive blocks joined into passages of at most ``passage_chars``."""
    parts: list[str] = []
    size = 0
    line = 0
    for number, block in blocks:
        for piece in _cut(block, passage_chars):
            if parts and size + 2 + len(piece) > passage_chars:
                yield Passage(source, line, title, "\n\n".join(parts))
                parts, size = [], 0
            if not parts:
                line = number
            parts.append(piece)
            size += len(piece) + (2 if size else 0)
    if parts:
        yield Passage(source, line, title, "\n\n".join(parts))


def _cut(block: str, limit: int) -> Iterator[str]:
    """``block`` in pieces of at most ``limit`` characters: after the last sentence end
    in reach, else at the last space or line break, else (one unbroken run) hard.

    Walks with an offset: slicing off the rest at each piece would copy it again and
    again (quadratic on a megabyte paragraph).
    """
    start, end = 0, len(block)
    while end - start > limit:
        window = block[start : start + limit + 1]
        ends = [m.start() for m in _SENTENCE_END.finditer(window) if m.start() <= limit]
        cut = ends[-1] if ends else 0
        if cut <= limit // 4:  # no sentence end late enough: a word edge
            cut = max(window.rfind(" "), window.rfind("\n"))
        if cut <= limit // 4:  # nothing sensible early enough: cut hard
            cut = limit
        piece = block[start : start + cut].rstrip()
        if piece:
            yield piece
        start += cut
        while start < end and block[start].isspace():
            start += 1
    if start < end:
        yield block[start:]
