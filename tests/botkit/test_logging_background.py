"""``botkit run`` writes its log lines from a thread of their own: a stderr whose reader
has stalled (a full pipe) does not block the event loop; lines are dropped and counted
once the queue is full; the last lines are written when the CLI stops logging; and the
lines are the same as written directly (JSON and plain, tracebacks, message identity,
redaction)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from logging.handlers import QueueHandler
from pathlib import Path
from typing import Any

import pytest

from botkit import _logging
from botkit._logging import configure_logging, json_logging_active, stop_logging
from botkit.cli._config import load
from botkit.config.settings import LoggingSettings
from botkit.log_context import about_message

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-token-value"
log = logging.getLogger("botkit.test")


@pytest.fixture(autouse=True)
def _stop_writer() -> Iterator[None]:
    yield
    stop_logging()


def _some_lines() -> None:
    log.info("plain %s and %d", "args", 7)
    log.warning("a secret %s in a line", SECRET)
    with about_message("web", 2, 1):
        log.error("about a message: %r", {"k": [1, 2]})
        try:
            raise ValueError(f"boom with {SECRET}")
        except ValueError:
            log.exception("failed")
    log.info("100%% done, no args")
    log.info("a dict arg: %(x)s", {"x": "y"})


def _lines(json_lines: bool, background: bool) -> str:
    stream = io.StringIO()
    settings = LoggingSettings(level="INFO", json=json_lines)
    configure_logging(settings, secrets=[SECRET], stream=stream, background=background)
    _some_lines()
    stop_logging()
    # The timestamps differ between the two runs; nothing else may.
    text = re.sub(r"\d{4}-\d\d-\d\d[ T][\d:.,+]+", "TS", stream.getvalue())
    return text


@pytest.mark.parametrize("json_lines", [True, False])
def test_the_lines_are_the_same_as_written_directly(json_lines: bool) -> None:
    direct = _lines(json_lines, background=False)
    assert "Traceback" in direct and "ValueError: boom with ***" in direct
    assert SECRET not in direct and ("web:2#1" in direct or '"channel": "web"' in direct)
    assert _lines(json_lines, background=True) == direct
    configure_logging(LoggingSettings(json=json_lines), stream=io.StringIO(), background=True)
    assert json_logging_active() is json_lines


def test_a_stalled_stderr_does_not_block_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logging, "QUEUE_LINES", 5_000)
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    configure_logging(LoggingSettings(level="INFO"), stream=stream, background=True)
    lines = 20_000  # 1.1 MB of lines: the pipe holds 64 KB and nobody reads it yet
    seen: dict[str, Any] = {}

    async def serve() -> None:
        ticks = 0
        stop = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        for i in range(lines):
            log.info("line %05d %s", i, "x" * 40)
            if i % 100 == 0:
                await asyncio.sleep(0)
        stop.set()
        await ticker
        seen["ticks"] = ticks

    loop_thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    loop_thread.start()
    loop_thread.join(120)  # only so that a blocked loop fails the test instead of hanging
    blocked = loop_thread.is_alive()
    written: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(read_end, written), daemon=True)
    reader.start()  # the reader comes back
    assert not blocked, "the event loop blocked on a full stderr"
    assert seen["ticks"] >= lines // 100  # the loop kept turning while the lines went out
    # Once the queue has room again (a line logged into a full queue is dropped: the
    # reader has stalled, and it could not be written anyway).
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "botkit"]
    for _ in range(6000):
        if handler.lines.empty():  # type: ignore[attr-defined]
            break
        time.sleep(0.01)
    log.warning("stopped (SIGTERM); the last line")
    stop_logging()
    stream.close()
    reader.join(60)
    out = b"".join(written).decode().splitlines()
    assert out[-1].endswith("stopped (SIGTERM); the last line")
    ours = [line for line in out if " line " in line]
    notes = [line for line in out if "log lines were dropped" in line]
    dropped = sum(int(re.findall(r"(\d+) log lines were dropped", n)[0]) for n in notes)
    assert notes and len(ours) + dropped == lines  # every line written or counted
    assert "line 00000" in ours[0]


def _read_all(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536):
            into.append(chunk)


CONFIG = """\
[store]
url = "sqlite:///bot.db"
[backend]
kind = "echo"
[logging]
json = true
[connectors.web]
host = "127.0.0.1"
port = 0
site_key = "shop"
site_secret = "${SITE_SECRET}"
"""


def test_botkit_run_logs_from_a_thread_and_the_other_commands_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("SITE_SECRET", "0123456789abcdef0123456789abcdef")
    load(str(path))  # as `botkit run` does
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "botkit"]
    assert isinstance(handler, QueueHandler) and json_logging_active()
    load(str(path), quiet=True)  # `botkit chat`, check-config
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "botkit"]
    assert not isinstance(handler, QueueHandler) and json_logging_active()


def test_the_last_line_of_botkit_run_is_written_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env["SITE_SECRET"] = "0123456789abcdef0123456789abcdef"
    child = subprocess.Popen(
        [sys.executable, "-m", "botkit", "run", "-c", "bot.toml"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stderr is not None
    lines = []
    for line in child.stderr:  # until it serves
        lines.append(line)
        if "connector 'web' connected" in line:
            break
    child.send_signal(signal.SIGTERM)
    _, rest = child.communicate(timeout=60)
    lines += rest.splitlines()
    assert child.returncode == 0
    last = json.loads(lines[-1])
    assert last["message"].startswith("stopped (SIGTERM)")
