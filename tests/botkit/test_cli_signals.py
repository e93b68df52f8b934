"""How `botkit run` and `botkit chat` stop on a signal: while starting, while serving,
and on the signals a terminal sends (SIGHUP when it closes, Ctrl-C in a chat)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

REPO = Path(__file__).resolve().parents[2]

# A plugin whose setup takes a minute: the stand-in for a model that loads slowly. It is
# found through its own entry point, as any installed plugin is.
SLOW_PLUGIN = '''
import asyncio
from pathlib import Path

from botkit.plugins import Plugin


class SlowToStart(Plugin):
    async def setup(self, registry):
        Path("setting-up").touch()
        await asyncio.sleep(60)
'''


def _env(tmp_path: Path) -> dict[str, str]:
    dist = tmp_path / "plugins" / "slow_to_start-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-to-start\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[botkit.plugins]\nslow = slow_to_start:SlowToStart\n")
    (tmp_path / "plugins" / "slow_to_start.py").write_text(SLOW_PLUGIN)
    path = os.pathsep.join([str(tmp_path / "plugins"), str(REPO)])
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        '[store]\nurl = "sqlite:///bot.db"\n'
        '[backend]\nkind = "echo"\n'
        '[connectors.console]\nuser = "alice"\n' + extra,
        encoding="utf-8",
    )
    return path


def _spawn(tmp_path: Path, command: str, extra: str = "") -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "botkit", command, "-c", str(_config(tmp_path, extra))],
        cwd=str(tmp_path), env=_env(tmp_path), encoding="utf-8", timeout=60,
    )  # fmt: skip


def _process_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "bot.db") as db:
        return int(db.execute("SELECT count(*) FROM processes").fetchone()[0])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_starting_stops_at_once_cleanly(tmp_path: Path, sig: int) -> None:
    # Before: SIGTERM killed the process (no log line, status -15) and left its row
    # in `processes`; SIGINT ended it with 130 and the row too.
    bot = subprocess.Popen(
        [sys.executable, "-m", "botkit", "run", "-c",
         str(_config(tmp_path, "[plugins.slow]\n"))],
        cwd=tmp_path, env=_env(tmp_path), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "setting-up").exists():
            assert bot.poll() is None and time.monotonic() < deadline, bot.stderr
            time.sleep(0.05)
        assert _process_rows(tmp_path) == 1  # registered before the plugins' setup
        signalled = time.monotonic()
        bot.send_signal(sig)
        _, err = bot.communicate(timeout=30)
    finally:
        bot.kill()
    took = time.monotonic() - signalled
    assert bot.returncode == 0, err
    assert took < 20, took  # not the plugin's minute
    last = err.strip().splitlines()[-1]
    assert f"stopped ({signal.Signals(sig).name}) while starting" in last, err
    assert _process_rows(tmp_path) == 0  # its messages are not held for a stale period


def test_sighup_stops_the_bot_gracefully(tmp_path: Path) -> None:
    # A terminal that closes (an SSH session ending) sends SIGHUP; it killed the bot
    # mid-reply before.
    child = _spawn(tmp_path, "run")
    try:
        child.expect_exact("you> ")
        child.sendline("ping")
        child.expect_exact("bot> echo: ping")
        child.kill(signal.SIGHUP)
        child.expect_exact("stopped (SIGHUP); the stop took")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0 and child.signalstatus is None, child.before
    assert _process_rows(tmp_path) == 0


def test_ctrl_c_in_a_chat_stops_its_reply_at_once_and_the_next_chat_starts_afresh(
    tmp_path: Path,
) -> None:
    slow = "[backend.echo]\nword_delay_seconds = 0.2\n[bot]\nshutdown_grace_seconds = 30\n"
    child = _spawn(tmp_path, "chat", slow)
    try:
        child.expect_exact("you> ")
        child.sendline(" ".join(f"w{i}" for i in range(100)))  # a 20 s reply
        child.expect_exact("bot> echo: w0")
        interrupted = time.monotonic()
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert time.monotonic() - interrupted < 10  # not the 30 s grace, nor the reply
    # The interrupted line is not answered by the next session on its own: a reply to it
    # there would read as the answer to that session's own first line. It reaches the
    # model with that first line, as one customer turn (botkit.pipeline.turns).
    again = subprocess.run(
        [sys.executable, "-m", "botkit", "chat", "-c", str(tmp_path / "bot.toml")],
        input="hello again\n", cwd=tmp_path, env=_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    replies = [line for line in again.stdout.split("bot> ")[1:]]
    (reply,) = [r.strip().removesuffix("you>").strip() for r in replies]
    assert reply.startswith("echo: w0 w1") and reply.endswith("w99\n\nhello again")
