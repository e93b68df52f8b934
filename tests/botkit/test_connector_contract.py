"""The connector contract has one definition, ``botkit.connector.Connector``: the old
import path gives the same class, the core relies on the features the base class
declares (so it takes nothing else as a connector), and a reply an agent's takeover
cut short says so in ``OutboundReply.superseded``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from core_helpers import RecordingConnector

import botkit.connector
import connectors.base
from botkit.bot import Bot
from botkit.connector import Connector, ConnectorConfig
from botkit.errors import ConnectorError
from botkit.events import OutboundReply
from connectors.console import ConsoleConnector
from connectors.slack import SlackConnector
from connectors.telegram import TelegramConnector
from connectors.web import WebConnector


def test_both_import_paths_give_the_same_classes() -> None:
    assert connectors.base.Connector is botkit.connector.Connector
    assert connectors.base.ConnectorConfig is botkit.connector.ConnectorConfig
    assert connectors.base.ConfigT is botkit.connector.ConfigT
    # A connector written against the old path is one of the core's.
    assert issubclass(RecordingConnector, botkit.connector.Connector)


@pytest.mark.parametrize(
    "connector", [ConsoleConnector, SlackConnector, TelegramConnector, WebConnector]
)
def test_the_built_in_connectors_subclass_the_core_base(connector: type[Any]) -> None:
    assert issubclass(connector, botkit.connector.Connector)


class _Sink(Connector[ConnectorConfig]):
    """Only the four required methods: everything else is the base class's default."""

    name: ClassVar[str] = "sink"

    def __init__(self) -> None:
        super().__init__(ConnectorConfig(), core=None)  # type: ignore[arg-type]
        self.sent: list[OutboundReply] = []

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        self.sent.append(reply)

    async def disconnect(self) -> None:
        pass


class _Finished:
    """A ``ReplyStream`` whose reply is already complete."""

    channel = "sink"
    conversation_key = "c1"
    reply_to: dict[str, str] = {}  # noqa: RUF012  (read only)
    in_reply_to_seq = 1
    stored_reply = None

    def __init__(self, reply: OutboundReply) -> None:
        self.reply = reply
        self.superseded = reply.superseded

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        raise StopAsyncIteration

    async def final(self) -> OutboundReply:
        return self.reply


async def test_the_default_send_stream_sends_no_reply_a_takeover_cut() -> None:
    sink = _Sink()
    # The typed field alone (no ``metadata["superseded"]``) keeps it from being sent.
    cut = OutboundReply("sink", "c1", "", superseded=True)
    await sink.send_stream(_Finished(cut))
    assert sink.sent == []
    whole = OutboundReply("sink", "c1", "hello", seq=2)
    await sink.send_stream(_Finished(whole))
    assert sink.sent == [whole]


def test_the_optional_features_have_documented_defaults() -> None:
    sink = _Sink()
    assert sink.earlier_quick_replies_stay is True
    assert sink.unreadable_reply(None) is None  # type: ignore[arg-type]


class _DuckTyped:
    """The four methods, but not the base class: the core calls more than these."""

    name = "duck"

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        pass

    async def send_stream(self, stream: Any) -> None:
        pass

    async def hand_over_held(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


async def test_attaching_what_does_not_subclass_connector_is_refused(bot: Bot) -> None:
    with pytest.raises(ConnectorError, match=r"_DuckTyped .*botkit\.connector\.Connector"):
        bot.attach_connector(_DuckTyped())  # type: ignore[arg-type]
    assert "duck" not in bot.connectors
