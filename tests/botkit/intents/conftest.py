"""Fixtures for the intents plugin's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from intents_helpers import IntentsBot, make_intents_bot

from botkit.config import Settings


@pytest.fixture
def intents_bot(make_settings: Callable[..., Settings]) -> IntentsBot:
    """``async with intents_bot(config, ...) as say``: a started bot with the plugin
    (the shop's intents by default), echo backend, SQLite."""
    return make_intents_bot(make_settings)
