"""A time limit on rendering a chat template.

Chat templates come with the checkpoint, so they are untrusted code. Jinja's sandbox caps
each ``range`` (100,000 items in transformers) but not the total work: two nested loops
render for hours, on whichever thread asked (the event loop, at start and for every
message's token count). A thread cannot be stopped from outside, so the rendering thread
traces itself: only frames of compiled templates (``co_filename == "<template>"``) get a
line tracer, which checks the clock and raises once the deadline has passed. Ordinary
templates execute a few hundred template lines, so the cost is microseconds.

The deadline bounds time only: memory is bounded by the sandbox the template renders in
(``engine._template_sandbox``). ``sys.settrace`` holds one tracer per thread, so while a
template renders, a debugger's or coverage's tracer on that thread is replaced (lines run
then are not traced or covered); it is put back afterwards.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

__all__ = ["RenderTimeout", "with_deadline"]

_T = TypeVar("_T")
_TEMPLATE_FILE = "<template>"  # what Jinja names code compiled from a string


class RenderTimeout(Exception):
    """The template did not finish rendering in time."""


def with_deadline(render: Callable[[], _T], seconds: float) -> _T:
    """``render()``, stopped with ``RenderTimeout`` once it has run ``seconds`` inside
    template code.

    The tracer of the calling thread (a debugger, coverage) is put back afterwards.
    """
    deadline = time.monotonic() + seconds

    def in_template(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderTimeout(f"the chat template did not render within {seconds:g} s")
        return in_template

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == _TEMPLATE_FILE:
            return in_template(frame, event, arg)
        return None  # no line events elsewhere: the tokenizer runs at full speed

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        return render()
    finally:
        sys.settrace(previous)
