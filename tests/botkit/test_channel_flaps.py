"""A channel's changes are always logged; only the reminders while it stays down are
throttled (``botkit.channel_health``): the last line about a channel says its state."""

from __future__ import annotations

import logging

import pytest

from botkit.channel_health import ChannelHealth


def test_each_change_is_logged_even_within_the_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    health = ChannelHealth("telegram", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="botkit.channels")
    for at, down in ((0.0, True), (61.0, False), (62.0, True), (63.0, False)):
        now[0] = at
        health.down("token rejected") if down else health.back()
    levels = [r.levelname for r in caplog.records]
    assert levels == ["ERROR", "INFO", "ERROR", "INFO"]
    assert "is up again" in caplog.records[-1].getMessage() and health.up


def test_reminders_are_throttled_from_the_last_line(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    health = ChannelHealth("slack", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="botkit.channels")
    assert health.down("invalid_auth")
    for at in (10.0, 30.0, 59.0):  # reminders within the minute: counted, not logged
        now[0] = at
        assert not health.down("invalid_auth")
    now[0] = 60.0
    health.down("invalid_auth")
    now[0] = 100.0  # 40 s after that reminder: not yet
    health.down("invalid_auth")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and errors[1].endswith("(3 more since the last warning)")
