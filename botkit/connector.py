"""The shape every channel connector has: the one definition of the connector contract.

A connector translates one platform's events into ``InboundMessage`` for the core and the
core's replies back into platform calls. Contract:

* Every inbound message goes to ``core.submit`` with the channel's idempotency key
  (Slack ``event_id``, Telegram ``update_id``, widget client message id).
* The platform is acknowledged as soon as ``submit`` returns (the message is stored) and
  before any slow work: the reply is produced in the background and arrives through
  ``send`` / ``send_stream``.
* ``send`` and ``send_stream`` are called by the core, never by plugins directly; a
  connector that cannot deliver raises ``ConnectorError`` so the core records the reply
  as failed instead of forgetting it.

It lives in botkit, not in the ``connectors`` package, so that the core types its
connectors without importing any of them (``connectors.base`` re-exports it for
connectors written against that path).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from botkit.channel import CoreHandle, ReplyStream
from botkit.channel_health import ChannelHealth
from botkit.events import InboundMessage, OutboundReply

__all__ = ["ConfigT", "Connector", "ConnectorConfig"]


class ConnectorConfig(BaseModel):
    """Base of every connector's typed config (``[connectors.NAME]`` in the TOML).

    Unknown keys are errors; subclasses add their own fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)


class Connector(ABC, Generic[ConfigT]):
    """Base class of channel connectors.

    Subclasses set ``name`` (the channel name used in events and the TOML section) and
    ``Config`` (their ``ConnectorConfig`` subclass), and implement ``connect``,
    ``listen``, ``send`` and ``disconnect``.

    Optional features, each with a default that suits a channel without it; the core
    calls them on every connector, so a subclass overrides only what its channel does:

    * ``send_stream``: sends the whole reply once (the platform shows no progress).
    * ``earlier_quick_replies_stay``: True (older messages' buttons stay clickable).
    * ``hand_over_held``: nothing held back at shutdown.
    * ``no_reply``: nothing to do when the bot does not answer a message.
    * ``unreadable_reply``: None (the core's ``empty_reply`` answers what the bot
      cannot read).

    ``health`` says whether the channel serves now: a connector whose platform rejects
    its credentials at run time (a revoked token) reports it there with
    ``health.down(...)`` instead of failing ``listen``, and ``health.back()`` when they
    are accepted again; the core then keeps the other channels serving and does not
    generate replies the channel cannot send.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    # Whether earlier messages' quick replies stay clickable (Telegram keyboards, Slack
    # buttons), so a click may be about an older message. A channel that shows them
    # under the newest message only (the web widget) sets False.
    earlier_quick_replies_stay: ClassVar[bool] = True

    def __init__(self, config: ConfigT, core: CoreHandle) -> None:
        self.config = config
        self.core = core

    @property
    def health(self) -> ChannelHealth:
        """Whether the channel serves now (see ``botkit.channel_health``); made on first
        use, so a subclass that does not call ``__init__`` has one too."""
        health = self.__dict__.get("_channel_health")
        if not isinstance(health, ChannelHealth):
            health = self.__dict__["_channel_health"] = ChannelHealth(self.name)
        return health

    @abstractmethod
    async def connect(self) -> None:
        """Open connections / bind servers. Must fail fast with ``ConnectorError``."""

    @abstractmethod
    async def listen(self) -> None:
        """Receive platform events until ``disconnect``; hand each to ``core.submit``."""

    @abstractmethod
    async def send(self, reply: OutboundReply) -> None:
        """Deliver a complete reply. Raise ``ConnectorError`` when it finally cannot."""

    async def send_stream(self, stream: ReplyStream) -> None:
        """Deliver a reply while it is generated.

        The default waits for the whole text and sends it once; channels that can show
        progress (web widget, Slack/Telegram message edits) override this. A reply a
        human agent's takeover cut short (``OutboundReply.superseded``) is not sent:
        none of it reached the customer here, and the agent now answers.
        """
        async for _ in stream:
            pass
        final = await stream.final()
        if not final.superseded:
            await self.send(final)

    async def hand_over_held(self) -> None:
        """Stop taking input and submit what the channel still holds back (a Telegram
        photo album being gathered into one message).

        Called once at shutdown, after ``listen`` was cancelled and while the core
        still accepts messages, so what was held is stored and answered within the
        shutdown grace; ``disconnect`` follows once the replies in flight are done.
        Bounded by the core (``Bot`` waits ``HAND_OVER_S`` at most). Nothing by default.
        """

    async def no_reply(self, message: InboundMessage) -> None:
        """The bot is done with ``message`` and sends no reply to it (a human agent has
        the conversation, the sender is over the rate limit, a plugin answered nothing).
        Nothing by default; a channel that waits for each answer (the console) stops
        waiting."""

    def unreadable_reply(self, message: InboundMessage) -> tuple[str, str] | None:
        """The channel's answer to a message the bot cannot read (a photo, a location),
        as (text, language), or None to let the core's ``empty_reply`` answer. Asked for
        every message; the core gives it only when no human agent has the conversation
        at the moment the message is recorded (the message is stored either way).
        None by default; Telegram answers in the customer's Telegram language."""
        return None

    @abstractmethod
    async def disconnect(self) -> None:
        """Stop accepting input and release resources. Must be safe to call twice."""

    @classmethod
    def parse_config(cls, raw: dict[str, Any]) -> ConnectorConfig:
        """Validate a raw TOML section into this connector's config type."""
        return cls.Config.model_validate(raw)
