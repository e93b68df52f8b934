"""``botkit knowledge check|search``: the operator's view of the knowledge base."""

from __future__ import annotations

from pathlib import Path

import pytest

from botkit.cli import main


def _config(tmp_path: Path, table: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(table)
    return str(path)


def test_check_lists_files_passages_and_problems(
    tmp_path: Path, kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _config(tmp_path, f'[plugins.knowledge]\nsources = ["{kb_dir}/*"]\n')
    assert main(["knowledge", "check", "-c", good]) == 0
    out = capsys.readouterr().out
    assert f"{kb_dir}/warranty.txt: 1 passage\n" in out
    assert f"{kb_dir}/shipping.md: 4 passages\n" in out
    assert out.endswith("11 passages from 5 files\n")
    (kb_dir / "old.md").write_bytes(b"\xfe\xff\x00")
    assert main(["knowledge", "check", "-c", good]) == 1  # usable, but something is wrong
    assert f"problem: {kb_dir}/old.md: is not UTF-8" in capsys.readouterr().out
    (kb_dir / "old.md").unlink()
    # A stray "<!--" no longer hides the rest of a page without a word.
    (kb_dir / "widget.md").write_text("# Embed\nPaste <!-- here.\n\n# Canada\n5 days.\n")
    assert main(["knowledge", "check", "-c", good]) == 1
    out = capsys.readouterr().out
    assert f"{kb_dir}/widget.md: 2 passages\n" in out
    assert f"problem: {kb_dir}/widget.md: line 2: an HTML comment (<!--) is never closed" in out


def test_search_shows_why_a_passage_was_chosen(
    tmp_path: Path, kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f'[plugins.knowledge]\nsources = ["{kb_dir}/*"]\n')
    assert main(["knowledge", "search", "-c", config, "How are refunds paid?"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("[1] 0.") and "(matched terms: refund" in first
    assert "\n[1] Returns and refunds > Refunds\nWe refund the full price" in out
    # Exactly what the model gets: the instruction, the passages in it.
    told = out.split("\nthe model is told:\n", 1)[1]
    assert told.startswith("The company information below is reference material")
    assert "[1] Returns and refunds > Refunds\n" in told
    assert told.rstrip().endswith("offer to connect the customer with a colleague.")
    assert "Answer using the company information above when it covers" in told
    assert main(["knowledge", "search", "-c", config, "hola", "--language", "es"]) == 0
    assert capsys.readouterr().out.startswith("nothing reaches min_relevance 0.1")


def test_without_the_plugin_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = _config(tmp_path, "")
    assert main(["knowledge", "check", "-c", empty]) == 2
    missing = "plugins.knowledge: no [plugins.knowledge] table, or it has enabled = false"
    assert missing in capsys.readouterr().err
    off = _config(tmp_path, '[plugins.knowledge]\nenabled = false\nsources = ["x"]\n')
    assert main(["knowledge", "search", "-c", off, "q"]) == 2
    bad = _config(tmp_path, "[plugins.knowledge]\nsources = []\n")
    assert main(["knowledge", "check", "-c", bad]) == 2
    assert "plugins.knowledge.sources" in capsys.readouterr().err


def test_search_on_an_empty_base_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f'[plugins.knowledge]\nsources = ["{tmp_path}/typo/*.md"]\n')
    assert main(["knowledge", "search", "-c", config, "PayPal?"]) == 1
    out = capsys.readouterr().out
    assert f"problem: {tmp_path}/typo/*.md: no .md, .markdown or .txt file matches" in out
    assert "has no passages" in out
    with pytest.raises(SystemExit):
        main(["knowledge", "search", "-c", config, "PayPal?", "--language", "klingon!"])


def test_search_takes_any_text_the_shell_passes(
    tmp_path: Path, kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f'[plugins.knowledge]\nsources = ["{kb_dir}/*"]\n')
    # Bytes the shell could not decode arrive as lone surrogates; NUL, controls, length.
    for question in ("\udcff\udcfe PayPal", "Pay\x00Pal\x07?", "PayPal " * 2000, ""):
        assert main(["knowledge", "search", "-c", config, question]) == 0
    assert "Payment methods" in capsys.readouterr().out


def test_check_names_what_a_pattern_matches_but_cannot_use(
    tmp_path: Path, kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secret.md").write_text("# Admin\nThe admin password is hunter2.")
    (kb_dir / "link_out.md").symlink_to(tmp_path / "secret.md")
    (kb_dir / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    config = _config(tmp_path, f'[plugins.knowledge]\nsources = ["{kb_dir}/*.md"]\n')
    assert main(["knowledge", "check", "-c", config]) == 1
    out = capsys.readouterr().out
    assert f"problem: {kb_dir}/dangling.md: cannot be read: No such file" in out
    assert f"problem: {kb_dir}/link_out.md: left out: a link to {tmp_path}/secret.md" in out
    assert out.endswith("10 passages from 4 files, 2 problems\n")
