"""``botkit init [PATH]`` writes the example config shipped in the package: a wheel has no
checkout beside it, and the command looked for config.example.toml in the cwd only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def test_the_packaged_example_is_the_repository_one() -> None:
    # botkit/cli/config.example.toml is a symlink to it: a checkout or copy that turned
    # it into a file of its own (or a dangling link) would ship another text.
    from botkit.cli._init import example_config

    assert example_config() == EXAMPLE.read_text(encoding="utf-8")


def test_init_writes_botkit_toml_that_check_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botkit", "init"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tmp_path / "botkit.toml"
    assert written.read_text(encoding="utf-8") == EXAMPLE.read_text(encoding="utf-8")
    # It says what to edit next and how to check the file (`run` finds ./botkit.toml).
    assert "[bot]" in result.stdout and "[backend]" in result.stdout
    assert "botkit check-config botkit.toml" in result.stdout
    assert "botkit run\n" in result.stdout + "\n"
    assert main(["check-config", str(written)]) == 0
    assert capsys.readouterr().out.startswith(f"{written}: OK")


def test_init_to_a_path_names_it_in_the_next_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "etc" / "support.toml"
    path.parent.mkdir()
    assert main(["init", str(path)]) == 0
    assert path.is_file()
    assert f"botkit run -c {path}" in capsys.readouterr().out


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "botkit.toml"
    mine.write_text('[bot]\nname = "mine"\n', encoding="utf-8")
    assert main(["init", str(mine)]) == 1
    assert mine.read_text(encoding="utf-8") == '[bot]\nname = "mine"\n'
    assert "exists already" in capsys.readouterr().err


def test_init_into_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is a directory" in err and str(tmp_path / "botkit.toml") in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["under_a_file", "missing_dir"])
def test_init_where_no_file_can_be_made_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    if where == "under_a_file":
        (tmp_path / "plain").write_text("", encoding="utf-8")
        path = tmp_path / "plain" / "botkit.toml"
        reason = "Not a directory"
    else:
        path = tmp_path / "nowhere" / "botkit.toml"
        reason = f"no directory {tmp_path / 'nowhere'}"
    assert main(["init", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"botkit: error: cannot write {path}: ") and reason in err
    assert "Traceback" not in err


def test_init_into_an_unwritable_directory_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:  # root writes past a directory's mode; sysfs takes no new files
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here to stand for an unwritable directory")
        path = Path("/sys/botkit.toml")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        path = locked / "botkit.toml"
    assert main(["init", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"botkit: error: cannot write {path}: ")
    assert not path.exists()
