"""Link layouts the knowledge base must accept (a Kubernetes ConfigMap volume, a listed
link into its own folder) and the one it must not (a listed file reached through a
folder swapped for a link out of another source's folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from botkit.knowledge import KnowledgeConfig, Library, load_library
from botkit.knowledge import library as library_module
from botkit.knowledge.documents import Document
from botkit.knowledge.library import find_files

SECRET = "SECRET-ADMIN-TOKEN-42"
STAMP = "..2026_11_29_22_00_00.123456789"


def _load(*sources: str) -> Library:
    return load_library(KnowledgeConfig(sources=sources), "en")


def _shown(library: Library) -> str:
    return "\n".join(p.text for p in library.index.passages)


def _configmap(folder: Path, stamp: str = STAMP, text: str = "Open 9 to 5.") -> None:
    """What the kubelet's atomic writer makes: the files in a timestamped folder,
    ``..data`` a link to it, and each file a link through ``..data``."""
    (folder / stamp).mkdir(parents=True)
    (folder / stamp / "faq.md").write_text(f"# FAQ\n{text}\n")
    if not (folder / "..data").is_symlink():
        (folder / "faq.md").symlink_to("..data/faq.md")
    tmp = folder / "..data_tmp"
    tmp.symlink_to(stamp)
    os.replace(tmp, folder / "..data")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "notes.md").write_text(f"# Notes\nAdmin token: {SECRET}\n")
    (tmp_path / ".env").write_text(f"TOKEN={SECRET}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("sources", [("kb/*.md",), ("kb/**/*.md",), ("kb/faq.md",)])
def test_a_configmap_volume_loads(site: Path, sources: tuple[str, ...]) -> None:
    _configmap(site / "kb")
    library = _load(*sources)
    assert library.problems == ()
    assert list(library.files) == ["kb/faq.md"] and _shown(library) == "Open 9 to 5."


@pytest.mark.parametrize("sources", [("kb/*.md",), ("kb/faq.md",)])
def test_a_configmap_updated_between_find_and_read_still_loads(
    site: Path, monkeypatch: pytest.MonkeyPatch, sources: tuple[str, ...]
) -> None:
    # The kubelet points ..data at a new timestamped folder while the bot reloads.
    _configmap(site / "kb")
    read = library_module.read_document

    def updated_first(path: Path, **kwargs: Any) -> Document:
        _configmap(site / "kb", "..2026_11_29_23_00_00.1", "Open 8 to 6.")
        return read(path, **kwargs)

    monkeypatch.setattr(library_module, "read_document", updated_first)
    library = _load(*sources)
    assert library.problems == () and _shown(library) == "Open 8 to 6."


def test_a_listed_link_into_its_own_folder_is_used_not_to_a_hidden_name(site: Path) -> None:
    (site / "kb" / "v2").mkdir(parents=True)
    (site / "kb" / "v2" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "kb" / "faq.md").symlink_to("v2/faq.md")
    (site / "kb" / ".hidden.md").write_text(f"# H\n{SECRET}\n")
    (site / "kb" / "env.md").symlink_to(".hidden.md")
    assert find_files(("kb/faq.md",)) == (["kb/faq.md"], [])
    files, problems = find_files(("kb/env.md",))
    assert files == [] and problems[0].startswith(
        f"kb/env.md: left out: a link to {site}/kb/.hidden.md, outside"
    )


def test_a_listed_link_elsewhere_names_how_to_allow_it(site: Path) -> None:
    (site / "kb").mkdir()
    (site / "kb" / "notes.md").symlink_to(site / "secret" / "notes.md")
    library = _load("kb/notes.md")
    assert SECRET not in _shown(library)
    assert library.problems == (
        f"kb/notes.md: left out: a link to {site}/secret/notes.md, outside the sources' "
        "folders (a link may lead only into the folder of a pattern in sources); to use "
        f"it, list {site}/secret/notes.md itself in sources, or a pattern in its folder",
    )
    # Doing as it says.
    library = _load("kb/notes.md", f"{site}/secret/notes.md")
    assert library.problems == () and SECRET in _shown(library)


@pytest.mark.parametrize("first", ["kb/faq.md", "kb/*.md"])
def test_a_listed_file_through_a_folder_linked_out_of_a_source_folder_is_refused(
    site: Path, first: str
) -> None:
    (site / "kb").mkdir()
    (site / "kb" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "kb" / "team").symlink_to(site / "secret")  # an editor of kb/ did this
    (site / "kb" / "x.md").symlink_to("team/notes.md")  # ... and this
    library = _load(first, "kb/team/notes.md")
    assert SECRET not in _shown(library)
    assert "kb/team/notes.md" not in library.files
    assert (
        f"kb/team/notes.md: left out: it is {site}/secret/notes.md, reached through a "
        f"link out of {site}/kb, the folder of another source (a link in a source's "
        f"folder may not lead out of it; list {site}/secret/notes.md itself in sources "
        "to use it)"
    ) in library.problems


def test_the_operators_own_folder_links_are_kept(site: Path) -> None:
    # kb -> a mounted volume: above every source's folder, the operator's layout.
    (site / "mnt").mkdir()
    (site / "mnt" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "kb").symlink_to(site / "mnt")
    for sources in (("kb/faq.md",), ("kb/*.md",), ("kb/*.md", "kb/faq.md")):
        assert find_files(sources) == (["kb/faq.md"], [])


def test_a_pattern_through_a_folder_linked_out_of_a_source_folder_is_refused(
    site: Path,
) -> None:
    (site / "kb").mkdir()
    (site / "kb" / "faq.md").write_text("# FAQ\nOpen 9 to 5.\n")
    (site / "kb" / "team").symlink_to(site / "secret")
    (site / "kb" / "x.md").symlink_to("team/notes.md")  # not a pattern's folder now
    library = _load("kb/*.md", "kb/team/*.md")
    assert SECRET not in _shown(library) and list(library.files) == ["kb/faq.md"]
    assert library.problems[-1] == (
        f"kb/team/*.md: left out: its folder is {site}/secret, reached through a link out "
        f"of {site}/kb, the folder of another source (a link in a source's folder may not "
        f"lead out of it; write a pattern in {site}/secret to use it)"
    )
