"""Where a link on the way to a source leads, and who could have made it.

A link at ``kb/docs`` is made by whoever may write in ``kb/``. When it leads out of
``kb/`` (``kb/docs -> /etc``), that person has shown the bot a folder they could not
show it otherwise. A link in the working directory or a folder above it (``kb ->
/mnt/kb``) is the operator's: the bot's config and secrets usually lie there too, so
whoever may write there gains nothing by it. So the folder a source's path enters first below those
(``kb``) is the tree its editors write, and links deeper on the path must stay in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["LinkOut", "hidden", "inside", "link_out"]


@dataclass(frozen=True)
class LinkOut:
    """A link on a source's path that leads out of the tree the path enters.

    Attributes:
        link: the link, as the source writes it (``kb/docs``).
        target: where it leads (a real path).
        tree: the real path of the folder the source's path enters first below the
            working directory or a folder above it (``kb``).
    """

    link: str
    target: str
    tree: str


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both absolute, normalized)."""
    return os.path.commonpath([path, folder]) == folder


def hidden(relative: str) -> bool:
    """Whether a path below an allowed folder has a hidden name (``.env``, ``.git/...``).

    A name starting with ".." (not ".." itself) is not hidden here: Kubernetes writes a
    ConfigMap or Secret volume as ``faq.md -> ..data/faq.md`` and ``..data ->
    ..2026_11_29_22_00_00.123``, and refusing those left every file of such a volume out
    (no passages: the bot did not start). Nobody keeps secrets under such names; the
    files in them are the ones the volume shows.
    """
    return any(
        part.startswith(".") and not part.startswith("..") for part in relative.split(os.sep)
    )


def link_out(folder: str) -> LinkOut | None:
    """The first link on ``folder``'s path (as written, itself included) that leads out
    of the tree the path enters (the folder it enters first below the working
    directory or a folder above it), or to a hidden name in it; None when there is none.

    Links in the working directory and the folders above it are the operator's layout
    and are not looked at. Links within the tree are harmless to this rule: a
    ConfigMap volume's ``docs -> ..data/docs`` (items with a folder in their path), a
    release switch's ``current -> releases/42``, ``en/faq -> ../shared/faq``.
    """
    here = os.path.realpath(os.curdir)
    written = os.sep if os.path.isabs(folder) else ""
    tree: str | None = None
    for part in folder.split(os.sep):
        if part in ("", os.curdir):
            continue
        holder = written or os.curdir
        written = os.path.join(written, part)
        if part == os.pardir:
            continue
        holder_real = os.path.realpath(holder)
        if inside(here, holder_real):  # the operator's; the tree starts below it
            tree = None
            continue
        if tree is None:
            tree = holder_real
        if not os.path.islink(written):
            continue
        target = os.path.realpath(written)
        if target == tree or (inside(target, tree) and not hidden(os.path.relpath(target, tree))):
            continue
        return LinkOut(written, target, tree)
    return None
