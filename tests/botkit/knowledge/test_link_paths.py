"""Links and hard links on the way to a source: a folder on a source's path below the
working directory linked out of the folder that holds it (``kb/docs -> /etc``) is
refused, by name or by pattern, unless it keeps to its folder (a ConfigMap's nested
items); a file with other names (hard links) is refused unless allowed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from botkit.knowledge import KnowledgeConfig, Library, load_library
from botkit.knowledge import library as library_module
from botkit.knowledge.documents import Document, DocumentError, read_document
from botkit.knowledge.library import find_files

SECRET = "ROOT-PASSWORD-XYZ-42"
RULE = (
    "on a source's path, a link may lead only within the folder the path enters first "
    "below the working directory or a folder above it"
)


def _load(*sources: str, allow_hard_links: bool = False) -> Library:
    config = KnowledgeConfig(sources=sources, allow_hard_links=allow_hard_links)
    return load_library(config, "en")


def _shown(library: Library) -> str:
    return "\n".join(p.text for p in library.index.passages)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a knowledge folder and, beside it, a folder of secrets
    in the names a source might list."""
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd.md").write_text(f"# Accounts\nroot: {SECRET}\n")
    (tmp_path / "etc" / "notes.md").write_text(f"# Notes\nToken {SECRET}.\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_lone_listed_file_under_a_folder_linked_out_is_refused(site: Path) -> None:
    # Whoever may write in kb/ made kb/docs a link; sources names nothing else in kb/.
    (site / "kb" / "docs").symlink_to(site / "etc")
    for sources in (("kb/docs/passwd.md",), ("other/*.md", "kb/docs/passwd.md")):
        library = _load(*sources)
        assert SECRET not in _shown(library) and library.files == {}
        assert library.problems[-1] == (
            f"kb/docs/passwd.md: left out: it is {site}/etc/passwd.md, reached through "
            f"kb/docs, a link to {site}/etc out of {site}/kb ({RULE}, or "
            "into the folder of a pattern in sources); to use it, list "
            f"{site}/etc/passwd.md itself in sources, or a pattern in its folder"
        )
    # Doing as it says.
    assert find_files(("kb/docs/passwd.md", f"{site}/etc/passwd.md")) == (
        ["kb/docs/passwd.md"],
        [],
    )
    assert find_files(("kb/docs/passwd.md", "etc/*.md")) == (
        ["kb/docs/passwd.md", "etc/notes.md"],
        [],
    )


def test_a_link_deeper_on_the_path_or_behind_dot_dot_is_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (site / "kb" / "a").mkdir()
    (site / "kb" / "a" / "b").symlink_to(site / "etc")
    (site / "kb" / "c").symlink_to(site / "etc")
    for listed in ("kb/a/b/passwd.md", "kb/c/../etc/passwd.md"):
        files, problems = find_files((listed,))
        assert files == [] and len(problems) == 1
        assert problems[0].startswith(f"{listed}: left out: ")
        assert f"{site}/etc/passwd.md" in problems[0]
    # An absolute source beside the working directory: its tree is data/, the folder
    # it enters below the working directory's parent.
    (site / "app").mkdir()
    (site / "data" / "kb").mkdir(parents=True)
    (site / "data" / "kb" / "docs").symlink_to(site / "etc")
    monkeypatch.chdir(site / "app")
    files, problems = find_files((f"{site}/data/kb/docs/passwd.md",))
    assert files == [] and f"a link to {site}/etc out of {site}/data (" in problems[0]


def test_a_pattern_whose_folder_is_linked_out_is_refused(site: Path) -> None:
    (site / "kb" / "docs").symlink_to(site / "etc")
    library = _load("kb/*.md", "kb/docs/*.md")
    assert SECRET not in _shown(library) and list(library.files) == ["kb/faq.md"]
    # (kb/docs lies in kb/, a source's folder: the older rule words it.)
    assert library.problems[-1].startswith(
        f"kb/docs/*.md: left out: its folder is {site}/etc, reached through a link out of {site}/kb"
    )
    library = _load("kb/docs/*.md")
    assert SECRET not in _shown(library) and library.files == {}
    assert library.problems == (
        f"kb/docs/*.md: left out: its folder is {site}/etc, reached through kb/docs, a "
        f"link to {site}/etc out of {site}/kb ({RULE}); write a pattern in "
        f"{site}/etc to use it",
    )


def test_a_folder_link_to_a_hidden_name_in_its_folder_is_refused(site: Path) -> None:
    (site / "kb" / ".private").mkdir()
    (site / "kb" / ".private" / "notes.md").write_text(f"# N\n{SECRET}\n")
    (site / "kb" / "docs").symlink_to(".private")
    for sources in (("kb/docs/notes.md",), ("kb/docs/*.md",)):
        library = _load(*sources)
        assert SECRET not in _shown(library) and library.files == {}
        assert f"a link to {site}/kb/.private out of {site}/kb" in library.problems[0]


def test_links_the_operator_or_the_folder_itself_makes_are_kept(site: Path) -> None:
    # In the working directory: the operator's (kb -> a mounted volume).
    (site / "mnt" / "kb" / "docs").mkdir(parents=True)
    (site / "mnt" / "kb" / "docs" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "site").symlink_to(site / "mnt" / "kb")
    # Within the tree the path enters (kb): a release switch, a link to its own
    # folder, one to a sibling folder.
    (site / "kb" / "releases" / "42").mkdir(parents=True)
    (site / "kb" / "releases" / "42" / "faq.md").write_text("# FAQ\nOpen 8 to 6.\n")
    (site / "kb" / "current").symlink_to("releases/42")
    (site / "kb" / "here").symlink_to(".")
    (site / "kb" / "en").mkdir()
    (site / "kb" / "en" / "latest").symlink_to("../releases/42")
    # Into a pattern's folder.
    (site / "kb" / "shared").symlink_to(site / "etc")
    for sources, found in [
        (("site/docs/faq.md",), ["site/docs/faq.md"]),
        (("site/docs/*.md",), ["site/docs/faq.md"]),
        (("kb/current/faq.md",), ["kb/current/faq.md"]),
        (("kb/current/*.md",), ["kb/current/faq.md"]),
        (("kb/here/faq.md",), ["kb/here/faq.md"]),
        (("kb/en/latest/faq.md",), ["kb/en/latest/faq.md"]),
        (("kb/en/latest/*.md",), ["kb/en/latest/faq.md"]),
        (("etc/*.md", "kb/shared/notes.md"), ["etc/notes.md", "etc/passwd.md"]),
        ((f"{site}/site/docs/faq.md",), [f"{site}/site/docs/faq.md"]),
    ]:
        assert find_files(sources) == (found, []), sources


def test_a_configmaps_nested_items_load(site: Path) -> None:
    # items: [{key: faq, path: docs/faq.md}]: the kubelet links the first folder of the
    # item's path through ..data, as it links top-level files.
    stamp = site / "cm" / "..2026_11_30_01_00_00.1"
    (stamp / "docs").mkdir(parents=True)
    (stamp / "docs" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "cm" / "..data").symlink_to(stamp.name)
    (site / "cm" / "docs").symlink_to("..data/docs")
    for sources in (("cm/docs/faq.md",), ("cm/docs/*.md",)):
        library = _load(*sources)
        assert library.problems == () and _shown(library) == "Open 9 to 5.", sources


def test_a_folder_linked_out_after_the_check_is_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found through a plain folder, read after kb/docs became a link to etc/.
    (site / "kb" / "docs").mkdir()
    (site / "kb" / "docs" / "passwd.md").write_text("# Accounts\nAsk the desk.\n")
    read = library_module.read_document

    def swapped_first(path: Path, **kwargs: Any) -> Document:
        if not (site / "kb" / "docs").is_symlink():
            os.rename(site / "kb" / "docs", site / "old")
            (site / "kb" / "docs").symlink_to(site / "etc")
        return read(path, **kwargs)

    monkeypatch.setattr(library_module, "read_document", swapped_first)
    library = _load("kb/docs/passwd.md")
    assert SECRET not in _shown(library) and library.files == {}
    assert library.problems[0].startswith(
        f"kb/docs/passwd.md: left out: it is {site}/etc/passwd.md, reached through kb/docs"
    )


def _hard_link(site: Path) -> Path:
    """``kb/env.md``, a second name of a secret file beside kb/."""
    (site / "secret.md").write_text(f"TOKEN={SECRET}\n")
    os.link(site / "secret.md", site / "kb" / "env.md")
    return site / "kb" / "env.md"


@pytest.mark.parametrize("sources", [("kb/*.md",), ("kb/faq.md", "kb/env.md")])
def test_a_hard_link_is_refused_with_how_to_find_and_fix_it(
    site: Path, sources: tuple[str, ...]
) -> None:
    _hard_link(site)
    library = _load(*sources)
    assert SECRET not in _shown(library) and list(library.files) == ["kb/faq.md"]
    assert library.problems == (
        "kb/env.md: left out: it has 2 names (hard links), and its other names cannot be "
        "told from it: one may be a secret file elsewhere on this file system (`find / "
        "-xdev -samefile kb/env.md` lists them). If it belongs here, give it a name of "
        "its own (cp kb/env.md kb/env.md.copy && mv kb/env.md.copy kb/env.md); if your "
        "deployment makes hard links (rsync --link-dest, a Nix store, ostree, uv), set "
        "allow_hard_links = true",
    )
    # Doing either as it says.
    library = _load(*sources, allow_hard_links=True)
    assert library.problems == () and SECRET in _shown(library)
    shutil.copyfile("kb/env.md", "kb/env.md.copy")
    os.replace("kb/env.md.copy", "kb/env.md")
    assert os.stat("kb/env.md").st_nlink == 1
    library = _load(*sources)
    assert library.problems == () and SECRET in _shown(library)


def test_a_file_that_gains_a_name_between_look_and_open_is_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Swapped for a hard link after read_document looked at it: fstat sees the count.
    real_open = os.open

    def open_linked(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path) == "kb/faq.md" and not os.path.exists("secret.md"):
            (site / "secret.md").write_text(f"TOKEN={SECRET}\n")
            os.unlink(path)
            os.link("secret.md", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_linked)
    with pytest.raises(DocumentError, match=r"^left out: it has 2 names \(hard links\)"):
        read_document(Path("kb/faq.md"), passage_chars=800, max_bytes=10_000)


def test_hard_links_are_read_when_allowed(site: Path) -> None:
    path = _hard_link(site)
    document = read_document(path, passage_chars=800, max_bytes=10_000, allow_hard_links=True)
    assert [p.text for p in document.passages] == [f"TOKEN={SECRET}"]
