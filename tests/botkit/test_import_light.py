"""`import botkit` (and the core modules a connector uses) load no heavy or channel SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "triton", "transformers", "slack_sdk", "slack_bolt", "telegram", "engine"]


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    modules = json.loads(result.stdout)
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_import_botkit_is_light() -> None:
    assert loaded_after("import botkit") == []


def test_core_and_cli_are_light() -> None:
    code = (
        "import botkit, botkit.bot, botkit.cli, botkit.config, botkit.plugins, "
        "connectors.console\nfrom botkit import Bot, Settings\n"
        "from botkit.backends import create_backend\n"
        "create_backend(Settings().backend.model_copy(update={'kind': 'echo'}))"
    )
    assert loaded_after(code) == []


def test_the_core_imports_no_connector() -> None:
    # The connector contract lives in botkit (botkit.connector): the core types its
    # connectors without importing any connector package.
    code = (
        "import botkit, botkit.bot, botkit.connector, botkit.cli, botkit.config, "
        "botkit.plugins\nimport sys, json\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'connectors']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout) == []
