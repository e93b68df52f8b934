"""Links in the knowledge base may not show the model a file outside the sources'
folders: not through a listed file's folder, not by replacing a listed file, not by a
swap between the check and the read, and never to a hidden file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from botkit.knowledge import KnowledgeConfig, Library, load_library
from botkit.knowledge import documents as documents_module
from botkit.knowledge import library as library_module
from botkit.knowledge.documents import Document
from botkit.knowledge.library import find_files

SECRET = "SECRET-ADMIN-TOKEN-42"
ENV_SECRET = "SECRET-AGENT-TOKEN-0123456789"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a knowledge folder, a top-level FAQ and secrets."""
    (tmp_path / "kb").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "prod.md").write_text(f"# Admin\nAdmin token: {SECRET}\n")
    (tmp_path / ".env").write_text(f"BOTKIT_AGENT_TOKEN={ENV_SECRET}\n")
    (tmp_path / "faq.md").write_text("# FAQ\nShipping takes 3 days.\n")
    (tmp_path / "kb" / "returns.md").write_text("# Returns\nReturns within 30 days.\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _load(*sources: str) -> Library:
    return load_library(KnowledgeConfig(sources=sources), "en")


def _shown(library: Library) -> str:
    return "\n".join(p.text for p in library.index.passages)


def test_a_listed_files_folder_lets_no_link_out(site: Path) -> None:
    # faq.md listed by name must not make everything under "." a link target.
    (site / "kb" / "env.md").symlink_to("../.env")
    (site / "kb" / "prod.md").symlink_to("../secrets/prod.md")
    library = _load("faq.md", "kb/*.md")
    assert SECRET not in _shown(library) and ENV_SECRET not in _shown(library)
    assert sorted(library.files) == ["faq.md", "kb/returns.md"]
    assert library.problems == (
        f"kb/env.md: left out: a link to {site}/.env, outside the sources' folders (a "
        "link may lead only into the folder of a pattern in sources)",
        f"kb/prod.md: left out: a link to {site}/secrets/prod.md, outside the sources' "
        "folders (a link may lead only into the folder of a pattern in sources)",
    )


def test_a_link_to_a_hidden_name_is_never_used(site: Path) -> None:
    # Even inside a pattern's folder ("**/*.md" from "."): .env, .git/config...
    (site / ".git").mkdir()
    (site / ".git" / "config.md").write_text(f"token = {ENV_SECRET}\n")
    (site / "kb" / "env.md").symlink_to("../.env")
    (site / "kb" / "git.md").symlink_to("../.git/config.md")
    library = _load("**/*.md")
    assert ENV_SECRET not in _shown(library)
    assert library.problems == tuple(
        f"kb/{name}.md: left out: a link to {site}/{target}, a hidden file or folder (a "
        'link to a name starting with "." is never used)'
        for name, target in (("env", ".env"), ("git", ".git/config.md"))
    )


def test_a_listed_file_replaced_by_a_link_is_refused(site: Path) -> None:
    (site / "kb" / "returns.md").unlink()
    (site / "kb" / "returns.md").symlink_to(site / "secrets" / "prod.md")
    for sources in (("kb/returns.md",), ("faq.md", "kb/returns.md")):
        library = _load(*sources)
        assert SECRET not in _shown(library)
        assert "kb/returns.md" not in library.files
        assert library.problems[-1] == (
            f"kb/returns.md: left out: a link to {site}/secrets/prod.md, outside the "
            "sources' folders (a link may lead only into the folder of a pattern in "
            f"sources); to use it, list {site}/secrets/prod.md itself in sources, or a "
            "pattern in its folder"
        )


def test_links_that_stay_inside_are_used(site: Path) -> None:
    (site / "kb" / "same.md").symlink_to("returns.md")  # counted once
    (site / "kb" / "faq.md").symlink_to("../faq.md")  # a listed file, not its folder
    (site / "kb" / "sub").mkdir()
    (site / "kb" / "sub" / "old.md").symlink_to("../returns.md")  # the pattern's folder
    files, problems = find_files(("faq.md", "kb/**/*.md"))
    assert problems == [] and files == ["faq.md", "kb/returns.md"]
    # A listed link into a pattern's folder.
    assert find_files(("faq.md", "kb/*.md", "kb/sub/old.md")) == (["faq.md", "kb/returns.md"], [])
    # A pattern that names hidden files takes them (they are not links).
    (site / "kb" / ".draft.md").write_text("# Draft\nSoon.\n")
    assert find_files(("kb/.*.md",)) == (["kb/.draft.md"], [])


@pytest.fixture(params=["proc", "no-proc"])
def opened_at(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With Linux's /proc/self/fd, and without it (the path resolved after the open,
    compared with the file opened)."""
    if request.param == "no-proc":
        monkeypatch.setattr(documents_module, "_FD_LINK", "/nonexistent/{}")
    return str(request.param)


@pytest.mark.parametrize("sources", [("kb/*.md",), ("kb/returns.md",), ("faq.md", "kb/*.md")])
def test_a_file_swapped_for_a_link_after_the_check_is_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch, opened_at: str, sources: tuple[str, ...]
) -> None:
    # Found and checked as a plain file, then swapped for a link before it is read.
    read = library_module.read_document

    def swapped_first(path: Path, **kwargs: Any) -> Document:
        if path == Path("kb/returns.md"):
            path.unlink()
            path.symlink_to(site / "secrets" / "prod.md")
        return read(path, **kwargs)

    monkeypatch.setattr(library_module, "read_document", swapped_first)
    library = _load(*sources)
    assert SECRET not in _shown(library)
    assert "kb/returns.md" not in library.files
    assert f"kb/returns.md: left out: a link to {site}/secrets/prod.md" in library.problems[-1]


def test_a_file_swapped_between_the_pre_check_and_the_open_is_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch, opened_at: str
) -> None:
    # The narrowest window: after read_document looked at the path, before it opens it.
    swapped: list[str] = []
    real_open = os.open

    def open_swapped(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path) == "kb/returns.md" and not swapped:
            swapped.append(path)
            os.unlink(path)
            os.symlink(site / "secrets" / "prod.md", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(documents_module.os, "open", open_swapped)
    library = _load("kb/*.md")
    assert swapped and SECRET not in _shown(library)
    assert library.problems == (
        f"kb/returns.md: left out: a link to {site}/secrets/prod.md, outside the sources' "
        "folders (a link may lead only into the folder of a pattern in sources)",
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
def test_a_file_saved_over_while_it_is_opened_is_still_read(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editor saves by writing a new file and renaming it over the old one: the file
    # open is the old one, "... (deleted)" in /proc, at the very place checked.
    real_open = os.open

    def open_then_saved(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        (site / "kb" / ".returns.md.swp").write_text("# Returns\nWithin 60 days.\n")
        os.replace(site / "kb" / ".returns.md.swp", path)
        return fd

    monkeypatch.setattr(documents_module.os, "open", open_then_saved)
    for sources in (("kb/*.md",), ("kb/returns.md",)):
        (site / "kb" / "returns.md").write_text("# Returns\nReturns within 30 days.\n")
        library = _load(*sources)
        assert library.problems == () and _shown(library) == "Returns within 30 days."
