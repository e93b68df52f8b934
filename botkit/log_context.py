"""Which message a log line is about: its channel, conversation id and seq.

A message's reply task binds its identity once (``bind_message``); every line logged
while it runs (botkit's, a backend's, httpx's and openai's too) then carries it, with no
logger passing it along. The value lives in a ``ContextVar``: an asyncio task copies the
context when it is created, and ``asyncio.to_thread`` copies it into the worker thread,
so a task's binding stays its own and ends with it (no reset needed there).

``MessageContextFilter`` adds it to the records of a handler; ``configure_logging``
installs it, and its formatter writes the fields ``channel``, ``conversation`` and
``seq`` in a JSON line, or a prefix like ``[web:2#1]`` in a plain one. Only the numeric
conversation id is used, never the channel's conversation key: log lines already name a
conversation that way (``web:2 seq=1``), and the id says nothing about the person.

Work that outlives the message it was started from (a connector's token recheck loop, a
cache's translate-ahead) is started with ``spawn_detached``: a plain ``create_task``
would copy the reply task's context, and every line of that work would name a message
it is not about.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TypeVar

__all__ = [
    "RECORD_ATTRIBUTE",
    "MessageContextFilter",
    "MessageIdentity",
    "about_message",
    "bind_message",
    "current_message",
    "spawn_detached",
]

_T = TypeVar("_T")

# The attribute of a ``logging.LogRecord`` that holds the identity, when there is one.
RECORD_ATTRIBUTE = "botkit_message"


@dataclasses.dataclass(frozen=True, slots=True)
class MessageIdentity:
    """A stored message, as log lines name it.

    Attributes:
        channel: the connector's name (``web``, ``slack``...).
        conversation: the conversation's numeric id in the store.
        seq: the message's number within its conversation.
    """

    channel: str
    conversation: int
    seq: int

    @property
    def tag(self) -> str:
        """The plain-text form: ``web:2#1``."""
        return f"{self.channel}:{self.conversation}#{self.seq}"


_current: ContextVar[MessageIdentity | None] = ContextVar("botkit_message", default=None)


def bind_message(channel: str, conversation: int, seq: int) -> Token[MessageIdentity | None]:
    """Make the message the one that lines logged in this context are about.

    Returns:
        A token for ``ContextVar.reset``; a task of the message's own can drop it, as
        its context ends with it.
    """
    return _current.set(MessageIdentity(channel, conversation, seq))


@contextmanager
def about_message(channel: str, conversation: int, seq: int) -> Iterator[None]:
    """``bind_message`` for the ``with`` block only (code that serves many messages)."""
    token = bind_message(channel, conversation, seq)
    try:
        yield
    finally:
        _current.reset(token)


def current_message() -> MessageIdentity | None:
    """The message bound in this context, if any."""
    return _current.get()


def spawn_detached(coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
    """A task for work that is about no message, wherever it is started from: it runs in
    an empty context, so none of the caller's bindings (a reply task's message) follow
    it. The caller keeps a reference to the task, as with ``asyncio.create_task``."""
    return asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())


class MessageContextFilter(logging.Filter):
    """Sets ``record.botkit_message`` to the bound ``MessageIdentity`` (None outside any
    message). Never drops a record.

    It belongs on a handler, not a logger: a logger's filters see only the records
    logged on that very logger, not those of its children or of other libraries.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # The caller's thread and context: a handler's filters run in logger.handle().
        setattr(record, RECORD_ATTRIBUTE, _current.get())
        return True
