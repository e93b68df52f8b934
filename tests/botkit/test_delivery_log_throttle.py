"""A failing reply source is logged once a minute per kind of failure, with the
exception's own text and a count of the lines skipped, not once per message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit._delivery_log import DeliveryLog
from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import BackendBusyError, BackendError
from botkit.testing.backends import ScriptBackend

BUSY = "32 replies from http://llm:8000 are in progress and none finished within 30 s"


class _Failing(ScriptBackend):
    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        raise self.error
        yield ""  # an async generator: it fails at the first delta, in the delivery


async def _answer_five(settings: Settings, backend: _Failing) -> None:
    async with Bot(settings, backend=backend) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for i in range(5):
            await bot.submit(message("hello there", f"k{i}", conversation=f"c{i}"))
        await recorder(bot).wait_for(5)
        assert await bot.drain(10)


async def test_replies_timing_out_together_log_one_busy_line_with_the_reason(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "botkit"):
        await _answer_five(make_settings(), _Failing(BackendBusyError(BUSY)))
    busy = [r for r in caplog.records if "backend busy" in r.getMessage()]
    warned = [r for r in busy if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].getMessage().endswith(f"backend busy: {BUSY}")
    assert len(busy) == 5  # the others at DEBUG


async def test_a_backend_outage_logs_one_error_line_not_one_per_message(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "botkit"):
        await _answer_five(make_settings(), _Failing(BackendError("HTTP 500 from the server")))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert (
        errors[0]
        .getMessage()
        .endswith("reply source 'backend' failed: BackendError: HTTP 500 from the server")
    )
    assert errors[0].exc_info is None  # a failure the backend reports: no traceback


def test_each_kind_is_throttled_apart_and_counts_what_it_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = DeliveryLog(clock=lambda: now[0])
    logger = logging.getLogger("botkit.pipeline")
    with caplog.at_level(logging.WARNING, "botkit.pipeline"):
        for seq in range(3):
            log.busy(logger, f"web:1 seq={seq}", BackendBusyError(BUSY))
        log.source_failed(logger, "web:2 seq=1", "backend", None, BackendError("HTTP 500"))
        log.source_failed(logger, "web:3 seq=1", "backend", ["translation"], KeyError("k"))
        now[0] = 61.0
        log.busy(logger, "web:9 seq=1", BackendBusyError(BUSY))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.WARNING, f"web:1 seq=0: backend busy: {BUSY}")
    assert lines[1] == (
        logging.ERROR,
        "web:2 seq=1: reply source 'backend' failed: BackendError: HTTP 500",
    )
    # A bug is another kind, and keeps its traceback.
    assert lines[2][1] == (
        "web:3 seq=1: reply source 'backend' (its stream wrapped by translation) "
        "failed: KeyError: 'k'"
    )
    assert caplog.records[2].exc_info is not None
    assert lines[3] == (
        logging.WARNING,
        f"web:9 seq=1: backend busy: {BUSY} (2 more since the last warning)",
    )
    assert len(lines) == 4
