"""What pyproject.toml declares: dependency bounds that hold, one version, the license,
typed packages, and a wheel that carries what the CLI and type checkers read from it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import botkit

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("botkit", "connectors", "engine", "kernels")


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _requirements(extra: str = "") -> dict[str, Requirement]:
    project = _pyproject()["project"]
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    found = {}
    for line in lines:
        req = Requirement(line)
        found[req.name.lower()] = req
    return found


# (extra, distribution, a version that breaks botkit, why). Each was allowed before.
_TOO_OLD = [
    ("", "aiohttp", "3.13.5", "web.RequestKey (botkit.handoff._auth) is new in 3.14"),
    ("telegram", "python-telegram-bot", "22.5", "Bot.send_message_draft is new in 22.6"),
    ("engine", "transformers", "4.55.4", "the loader and templates need 4.56"),
    ("engine", "tokenizers", "0.21.4", "DecodeStream(ids=) is new in 0.22"),
    ("engine", "huggingface-hub", "0.33.5", "transformers 4.56 needs 0.34"),
    ("engine", "jinja2", "3.1.4", "transformers 5's apply_chat_template refuses it"),
    ("openai", "openai", "3.13.0", "a cut or stalled stream escaped as a raw httpx error"),
]
_NEXT_MAJOR = [
    ("", "sqlalchemy", "3.0.0"),
    ("telegram", "python-telegram-bot", "23.0"),
    ("engine", "transformers", "6.0.0"),
    ("engine", "jinja2", "4.0.0"),
]


@pytest.mark.parametrize(("extra", "name", "version", "why"), _TOO_OLD)
def test_lower_bounds_exclude_what_breaks(extra: str, name: str, version: str, why: str) -> None:
    req = _requirements(extra).get(name)
    assert req is not None, f"{name} is not declared in [{extra or 'dependencies'}]"
    assert not req.specifier.contains(version, prereleases=True), why


@pytest.mark.parametrize(("extra", "name", "version"), _NEXT_MAJOR)
def test_a_next_major_version_is_not_taken(extra: str, name: str, version: str) -> None:
    assert not _requirements(extra)[name].specifier.contains(version, prereleases=True)


def test_numpy_is_capped_for_the_test_suite_only() -> None:
    # Triton's CPU interpreter breaks with numpy 2.4 (triton issue 9171); the engine runs
    # on it, so the engine extra does not stop an install from using it.
    assert _requirements("engine")["numpy"].specifier.contains("2.4.6")
    assert not _requirements("dev")["numpy"].specifier.contains("2.4.0")


def test_the_installed_environment_meets_every_bound() -> None:
    # `make setup` installs '.[all,dev]' into a venv like this one: a bound that this
    # environment does not meet would make pip move a package under everyone's feet.
    extras = ["", *_pyproject()["project"]["optional-dependencies"]]
    unmet = []
    for extra in extras:
        for req in _requirements(extra).values():
            if req.name == "botkit" or (req.marker and not req.marker.evaluate({"extra": ""})):
                continue
            try:
                have = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                continue  # an extra this environment does not install
            if not req.specifier.contains(Version(have).public, prereleases=True):
                unmet.append(f"{req} (installed: {have})")
    assert unmet == []


def test_the_version_is_written_once() -> None:
    project = _pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "botkit.__version__"}
    # (A built wheel's version is checked below: an editable install's metadata is only
    # as new as its last install.)


def test_the_license_is_declared_and_shipped() -> None:
    project = _pyproject()
    assert project["project"]["license"] == "Apache-2.0"  # an SPDX expression, not a table
    assert project["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in project["build-system"]["requires"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    for part in ("TERMS AND CONDITIONS FOR USE", "END OF TERMS AND CONDITIONS", "APPENDIX"):
        assert part in text
    assert len(text.splitlines()) == 202  # the text as apache.org publishes it


def test_every_package_is_marked_typed() -> None:
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (REPO / package / "py.typed").is_file(), package
        assert "py.typed" in data[package], package


@pytest.mark.slow
def test_the_wheel_carries_the_example_config_license_and_markers(tmp_path: Path) -> None:
    # The example config is a symlink in the checkout: the wheel must hold its text.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("botkit-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        example = whl.read("botkit/cli/config.example.toml").decode()
        info = f"botkit-{botkit.__version__}.dist-info"
        meta = whl.read(f"{info}/METADATA").decode()
        assert f"{info}/licenses/LICENSE" in names
    assert example == (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert f"Version: {botkit.__version__}\n" in meta
    assert "License-Expression: Apache-2.0\n" in meta
    assert {f"{p}/py.typed" for p in PACKAGES} <= names
