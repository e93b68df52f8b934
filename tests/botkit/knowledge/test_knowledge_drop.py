"""A reloaded-away index is freed a passage and a term at a time, not in one call.

A worker thread holds the GIL through one C call, so ``retired.clear()`` in a thread
stalled the event loop as long as freeing on the loop did. No timed assertions: the
passages freed between two lines of the dropping code are counted (the interpreter can
hand the GIL to the loop only between such steps).
"""

from __future__ import annotations

import sys
import weakref
from itertools import pairwise
from types import FrameType
from typing import Any

import botkit.knowledge.plugin as plugin_module
from botkit.knowledge.analysis import Analyzer
from botkit.knowledge.documents import Passage
from botkit.knowledge.index import PassageIndex
from botkit.knowledge.library import Library
from botkit.knowledge.plugin import _drop


class TrackedPassage(Passage):
    """A passage that can be watched with a weak reference (no ``__slots__`` here)."""


def library(count: int) -> tuple[Library, list[TrackedPassage]]:
    passages = [
        TrackedPassage("f.md", n, f"t{n}", f"word{n} shared text {n % 7}") for n in range(count)
    ]
    index = PassageIndex(passages, Analyzer("en"))
    return Library(index, {"f.md": count}, (), ()), passages


def test_a_dropped_index_is_freed_in_small_steps() -> None:
    lib, passages = library(2000)
    freed = [0]
    for passage in passages:
        weakref.finalize(passage, lambda: freed.__setitem__(0, freed[0] + 1))
    del passages, passage
    steps: list[int] = []  # passages freed by each line of the dropping code

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != plugin_module.__file__:
            return None
        if event == "line":
            steps.append(freed[0])
        return trace

    retired = [lib]
    del lib
    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        _drop(retired)
    finally:
        sys.settrace(previous)
    assert freed[0] == 2000 and not retired
    marks = [0, *steps, freed[0]]
    largest = max(b - a for a, b in pairwise(marks))
    assert largest <= 1, largest  # one passage per step (freeing all at once: 2000)


def test_an_index_a_search_still_holds_is_left_whole() -> None:
    lib, _ = library(50)
    index = lib.index
    retired = [lib]
    del lib
    _drop(retired)
    assert not retired
    assert len(index) == 50 and index.vocabulary > 50
    assert index.search(index.query("word7"), limit=1, min_relevance=0)[0].passage.line == 7
