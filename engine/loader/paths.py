"""Looking at a model path an operator typed, with every way it can fail named.

Shared by the chat loader (``engine.loader.source``) and the translation loader
(``engine.translation.checkpoint``): ``Path.is_dir()``/``exists()`` raise on errors other
than "no such file" (a directory on the way that may not be searched, a name longer than
the system allows, an embedded NUL byte, ``~nobody``), and a 5,000-character path must not
become a 5,000-character message.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from engine.errors import ModelLoadError

__all__ = ["HUB_ID", "expand_path", "path_mode", "shown_path"]

# What a Hugging Face repo id looks like ("org/name" or a bare legacy "name").
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SHOWN_CHARS = 300


def shown_path(text: str) -> str:
    """A path for a message: quoted, and cut short if it is absurdly long."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}... ({len(text)} characters)"


def expand_path(text: str, what: str) -> Path:
    """``text`` as a path with ``~`` expanded.

    Raises:
        ModelLoadError: ``~someone`` names no user, or there is no home directory.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:
        raise ModelLoadError(f"cannot access {what} path {shown_path(text)}: {exc}") from None


def path_mode(path: Path, what: str) -> int | None:
    """``st_mode`` of what ``path`` points to, or None when nothing is there (a symlink
    loop included: it points nowhere).

    Raises:
        ModelLoadError: the path cannot be looked at; the message names ``what`` and why.
    """
    try:
        return path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        reason = exc.strerror or type(exc).__name__
        shown = shown_path(str(path))
        raise ModelLoadError(f"cannot access {what} path {shown}: {reason}") from None
    except ValueError as exc:  # an embedded NUL byte
        raise ModelLoadError(f"{what} path {shown_path(str(path))} is invalid: {exc}") from None
