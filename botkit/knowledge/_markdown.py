"""The one bit of Markdown files the knowledge base reads itself: YAML front matter,
which is no Markdown (the parse, ``_commonmark``, starts after it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["front_matter"]

# A front matter line "key: value": a one-word key (YAML allows more, front matter
# uses these), a colon, then a space or nothing.
_META_KEY = re.compile(r"([^\W\d][\w.:-]*?)[ \t]*:(?:[ \t]|$)")


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
