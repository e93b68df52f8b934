"""Finding the knowledge base's files: patterns, problems, the fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from botkit.knowledge import KnowledgeConfig, load_library
from botkit.knowledge import library as library_module
from botkit.knowledge.library import find_files, fingerprint


def test_patterns_find_supported_files_once_in_order(kb_dir: Path) -> None:
    (kb_dir / "sub").mkdir()
    (kb_dir / "sub" / "deep.md").write_text("# Deep\ntext")
    (kb_dir / "logo.png").write_bytes(b"\x89PNG")
    files, problems = find_files((f"{kb_dir}/**/*", f"{kb_dir}/shipping.md"))
    assert problems == []
    names = [Path(f).name for f in files]
    assert sorted(names) == sorted(
        ["descuentos.md", "payment.md", "returns.md", "shipping.md", "warranty.txt", "deep.md"]
    )
    assert len(names) == len(set(names))  # shipping.md named twice, found once


def test_a_pattern_that_finds_nothing_is_a_problem(tmp_path: Path) -> None:
    files, problems = find_files((f"{tmp_path}/*.md",))
    assert files == [] and problems == [f"{tmp_path}/*.md: no .md, .markdown or .txt file matches"]


def test_too_many_files_are_capped(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_module, "MAX_FILES", 2)
    files, problems = find_files((f"{kb_dir}/*",))
    assert len(files) == 2 and "more than 2 files" in problems[0]


def test_bad_files_are_left_out_and_the_rest_indexed(kb_dir: Path) -> None:
    (kb_dir / "latin1.md").write_bytes(b"# Caf\xe9\n")
    (kb_dir / "empty.md").write_text("")
    config = KnowledgeConfig(sources=(f"{kb_dir}/*", f"{kb_dir}/missing.txt"))
    library = load_library(config, "en")
    assert library.files[f"{kb_dir}/shipping.md"] == 4 and library.files[f"{kb_dir}/empty.md"] == 0
    assert sorted(library.problems) == [
        f"{kb_dir}/latin1.md: is not UTF-8: byte 0xE9 at byte offset 5 (counted from 0), line 1",
        f"{kb_dir}/missing.txt: cannot be read: No such file or directory",
    ]
    assert library.summary() == "11 passages from 6 files, 2 problems"


def test_a_folder_named_as_a_source_is_a_problem_with_a_pattern_to_use(kb_dir: Path) -> None:
    library = load_library(KnowledgeConfig(sources=(str(kb_dir), f"{kb_dir}/")), "en")
    assert not library.files  # named twice, found once
    assert library.problems == (
        f"{kb_dir}: cannot be read: not a regular file but a folder (to use the files in "
        f"it, give a pattern such as {kb_dir}/**/*.md)",
    )


def test_a_file_with_an_unclosed_comment_is_used_and_named(kb_dir: Path) -> None:
    (kb_dir / "widget.md").write_text("# Widget\n\nPaste it. <!-- TODO\n\n# Fees\nNone.\n")
    library = load_library(KnowledgeConfig(sources=(f"{kb_dir}/widget.md",)), "en")
    assert library.files == {f"{kb_dir}/widget.md": 2}
    assert [p.text for p in library.index.passages] == ["Paste it. <!-- TODO", "None."]
    assert library.problems == (
        f"{kb_dir}/widget.md: line 3: an HTML comment (<!--) is never closed with -->; "
        "the text after it is used as written (close the comment, or put <!-- in `code`)",
    )
    assert library.summary() == "2 passages from 1 file, 1 problem"


def test_the_fingerprint_changes_with_any_file(kb_dir: Path) -> None:
    files, _ = find_files((f"{kb_dir}/*",))
    before = fingerprint(files)
    assert fingerprint(files) == before
    (kb_dir / "payment.md").write_text("# Payment\nOnly cash.")
    assert fingerprint(files) != before
    # A second name (a hard link) made or removed changes it too.
    before = fingerprint(files)
    os.link(kb_dir / "payment.md", kb_dir.parent / "payment-link.md")
    assert fingerprint(files) != before
    (kb_dir.parent / "payment-link.md").unlink()
    assert fingerprint(files) == before
    (kb_dir / "payment.md").unlink()
    assert (f"{kb_dir}/payment.md", -1, -1, -1) in fingerprint(files)


def test_folder_links_are_not_followed_and_linked_files_count_once(kb_dir: Path) -> None:
    # Two links back up the tree would make a following walk endless (2^40 paths).
    (kb_dir / "loop").symlink_to(".")
    (kb_dir / "again").symlink_to(".")
    (kb_dir / "same.md").symlink_to(kb_dir / "payment.md")
    files, problems = find_files((f"{kb_dir}/**/*.md", f"{kb_dir}/../kb/payment.md"))
    assert problems == []
    assert sorted(Path(f).name for f in files) == [
        "descuentos.md", "payment.md", "returns.md", "shipping.md",
    ]  # fmt: skip
    library = load_library(KnowledgeConfig(sources=(f"{kb_dir}/**/*",)), "en")
    assert library.summary() == "11 passages from 5 files"


def test_a_huge_walk_stops_with_a_problem(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_module, "MAX_ENTRIES", 3)
    _, problems = find_files((f"{kb_dir}/**/*.md",))
    assert "more than 3 entries to look at" in problems[0]


def test_patterns_follow_glob_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.md", ".hidden.md", "sub/b.md", "sub/deeper/c.md", ".git/d.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# T\ntext")
    monkeypatch.chdir(tmp_path)

    def names(pattern: str) -> list[str]:
        return find_files((pattern,))[0]

    assert names("*.md") == ["a.md"]  # relative, hidden files left out
    assert names("**/*.md") == ["a.md", "sub/b.md", "sub/deeper/c.md"]
    assert names("sub/*.md") == ["sub/b.md"]
    assert names("s?b/**/*.md") == ["sub/b.md", "sub/deeper/c.md"]
    assert names(".git/*.md") == [".git/d.md"]
    assert names(f"{tmp_path}/sub/*/*.md") == [f"{tmp_path}/sub/deeper/c.md"]


def test_hidden_folders_are_not_walked_unless_named(
    kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A .git or .venv beside the files must not use up the walk's budget.
    for n in range(50):
        (kb_dir / ".venv" / f"d{n}").mkdir(parents=True)
    (kb_dir / ".drafts").mkdir()
    (kb_dir / ".drafts" / "secret.md").write_text("# Draft\nnot yet")
    monkeypatch.setattr(library_module, "MAX_ENTRIES", 30)
    files, problems = find_files((f"{kb_dir}/**/*.md",))
    assert problems == [] and len(files) == 4
    assert find_files((f"{kb_dir}/.drafts/*.md",))[0] == [f"{kb_dir}/.drafts/secret.md"]


def test_a_pattern_leaves_out_links_to_files_outside_the_sources_folders(
    kb_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Admin\nThe admin password is hunter2.")
    (kb_dir / "link_out.md").symlink_to(outside / "secret.md")
    library = load_library(KnowledgeConfig(sources=(f"{kb_dir}/*.md",)), "en")
    assert f"{kb_dir}/link_out.md" not in library.files
    assert all("hunter2" not in p.text for p in library.index.passages)
    assert library.problems == (
        f"{kb_dir}/link_out.md: left out: a link to {outside}/secret.md, outside the "
        "sources' folders (a link may lead only into the folder of a pattern in sources)",
    )
    # Inside another pattern's folder: the operator's choice.
    files, problems = find_files((f"{kb_dir}/*.md", f"{outside}/*.md"))
    assert problems == [] and f"{kb_dir}/link_out.md" in files
    # Listed by its own name, it is refused all the same (tests/botkit/knowledge/
    # test_link_bounds.py): an editor of kb/ can replace a listed file with a link.
    listed = load_library(KnowledgeConfig(sources=(f"{kb_dir}/link_out.md",)), "en")
    assert listed.files == {} and "outside the sources' folders" in listed.problems[0]


def test_a_pattern_reports_what_it_matches_that_is_not_a_regular_file(
    kb_dir: Path, tmp_path: Path
) -> None:
    (kb_dir / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    os.mkfifo(kb_dir / "pipe.md")  # opening it would block the loader
    (kb_dir / "zero.md").symlink_to("/dev/zero")
    (kb_dir / "dir.md").mkdir()
    (kb_dir / "notes").mkdir()  # a folder without a supported name: as before, skipped
    files, problems = find_files((f"{kb_dir}/*",))
    assert len(files) == 5
    assert problems == [
        f"{kb_dir}/dangling.md: cannot be read: No such file or directory (a link to "
        f"{tmp_path}/nowhere.md)",
        f"{kb_dir}/dir.md: cannot be read: not a regular file but a folder",
        f"{kb_dir}/pipe.md: cannot be read: not a regular file",
        f"{kb_dir}/zero.md: cannot be read: not a regular file",
    ]
    # Reported once: not also as a pattern that matches no file.
    assert find_files((f"{kb_dir}/pi*.md",)) == (
        [],
        [f"{kb_dir}/pipe.md: cannot be read: not a regular file"],
    )
