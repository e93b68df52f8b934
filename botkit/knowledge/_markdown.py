"""The bits of Markdown syntax the knowledge base reads itself: code fences (so that
``#`` lines in them are not headings, and passages are not cut inside them) and YAML
front matter. HTML comments are found by a CommonMark parser (``_comments``).

``fence_after`` knows fences at the start of a line only (not inside quotes, nor
indented code): a miss there costs a passage boundary or title, never text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["fence_after", "front_matter"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# A front matter line "key: value": a one-word key (YAML allows more, front matter
# uses these), a colon, then a space or nothing.
_META_KEY = re.compile(r"([^\W\d][\w.:-]*?)[ \t]*:(?:[ \t]|$)")


def fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after ``line`` (its marker), given the one before it."""
    match = _FENCE.match(line)
    if match is None:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    # A fence closes with the same character, at least as long, and nothing after it.
    if marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip()[len(marker) :]:
        return None
    return fence


def front_matter(lines: Sequence[str]) -> tuple[int, dict[str, str]]:
    """The first line after a YAML front matter block (0 when there is none), and its
    top-level ``key: value`` pairs (quotes removed; nested YAML is not read).

    A file may also start with a horizontal rule (``---``), which looks the same: the
    block between the first two ``---`` lines is front matter only when it reads as
    such, every line blank, a ``# comment``, ``key: value`` (the key one word, as in
    ``url``, ``last_modified``, ``og:title``), or after a key an indented line or a
    ``- item`` (the key's nested value). Anything else (a sentence) makes it text.
    """
    if not lines or lines[0].strip() != "---":
        return 0, {}
    meta: dict[str, str] = {}
    keyed = False
    for number in range(1, min(len(lines), 200)):
        line = lines[number]
        if line.strip() in ("---", "..."):
            return number + 1, meta
        if not line.strip() or line.startswith("#"):
            continue
        if keyed and (line[0] in " \t" or line == "-" or line.startswith("- ")):
            continue  # a nested value
        key = _META_KEY.match(line)
        if key is None:
            return 0, {}  # not YAML: the file starts with a rule
        keyed = True
        meta[key.group(1).lower()] = line[key.end() :].strip().strip("'\"")
    return 0, {}
