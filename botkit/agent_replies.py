"""Messages human agents write to customers: stored, then sent on the conversation's channel.

A conversation handed to a human (``waiting_human``) is answered by an agent in the
agents' own tool, which reaches the bot through the hand-off plugin's agent API (or any
plugin, through ``PluginRegistry.agent_replies``). On Slack an agent can also just write
in the thread; on Telegram and the web widget this is the only way an agent's words reach
the customer.

Sending takes the conversation over: a conversation the bot answers or that waits for a
human becomes ``with_human`` first, so the bot stops answering it. The message is stored
(with the agent's name) before it is sent, and marked ``failed`` with the reason when the
channel refuses it, so the conversation's history never loses what an agent wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, Protocol

from botkit.errors import BotkitError, StoreError
from botkit.events import OutboundReply
from botkit.sanitize import sanitize_text
from botkit.store import ConversationStatus, ConversationStore
from botkit.store._checks import MAX_AGENT_NAME
from botkit.store.records import StoredMessage

__all__ = ["AgentReplies", "AgentReplyError"]

_log = logging.getLogger("botkit.agents")

Kind = Literal["invalid", "not_found", "closed", "unavailable", "failed"]

# Statuses an agent's message takes over (the conversation becomes ``with_human``).
_TAKEN_FROM = (
    ConversationStatus.BOT,
    ConversationStatus.WAITING_HUMAN,
    ConversationStatus.WITH_HUMAN,
)


class AgentReplyError(BotkitError):
    """An agent's message was refused or could not be delivered.

    ``kind`` says which: ``invalid`` (empty or too long), ``not_found`` (no such
    conversation), ``closed`` (the conversation is closed), ``unavailable`` (its channel
    does not run in this bot process), ``failed`` (the channel refused it; the message
    is stored as ``failed``).
    """

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind: Kind = kind


class _Sender(Protocol):
    async def send(self, reply: OutboundReply) -> None: ...


class AgentReplies:
    """Sends agents' messages through the bot's running connectors.

    Args:
        store: the conversation store.
        connectors: the bot's connectors by channel name (read at each send, so
            connectors attached after construction count).
        max_chars: the longest message accepted (the bot's ``max_message_chars``).
    """

    def __init__(
        self, store: ConversationStore, connectors: Mapping[str, _Sender], max_chars: int
    ) -> None:
        self._store = store
        self._connectors = connectors
        self._max_chars = max_chars

    async def send(self, conversation_id: int, text: str, *, agent: str = "") -> StoredMessage:
        """Store ``text`` as the agent's message and deliver it to the customer.

        Args:
            conversation_id: the conversation (its ``id`` in the store).
            text: what the agent wrote; sanitized like customer text, never cut.
            agent: the agent's display name, kept with the message ("" for none).

        Returns:
            The message as stored (status ``sent``).

        Raises:
            AgentReplyError: see its ``kind``s.
        """
        text = sanitize_text(text)
        agent = " ".join(sanitize_text(agent).split())
        if not text.strip():
            raise AgentReplyError("invalid", "the message is empty")
        if len(agent) > MAX_AGENT_NAME:
            raise AgentReplyError(
                "invalid", f"the agent name is longer than {MAX_AGENT_NAME} characters"
            )
        if len(text) > self._max_chars:
            raise AgentReplyError(
                "invalid",
                f"the message has {len(text)} characters; at most {self._max_chars} allowed",
            )
        try:
            conversation = await self._store.conversation_by_id(conversation_id)
        except StoreError:
            raise AgentReplyError("not_found", f"no conversation {conversation_id}") from None
        connector = self._connectors.get(conversation.channel)
        if connector is None:
            raise AgentReplyError(
                "unavailable",
                f"channel {conversation.channel!r} does not run in this bot process",
            )
        taken = await self._store.change_conversation_status(
            conversation_id, ConversationStatus.WITH_HUMAN, only_from=_TAKEN_FROM
        )
        if taken is None:  # closed (the only status left)
            raise AgentReplyError("closed", f"conversation {conversation_id} is closed")
        stored = await self._store.append_outbound(conversation_id, text, agent=agent)
        reply = OutboundReply(
            channel=conversation.channel,
            conversation_key=conversation.key,
            text=text,
            reply_to=await self._store.reply_target(conversation_id),
            seq=stored.seq,
            metadata={"agent": agent},
            created_at=stored.created_at,
        )
        try:
            await connector.send(reply)
        except Exception as exc:  # any connector failure: recorded, then reported
            reason = f"{type(exc).__name__}: {exc}"
            await self._store.set_message_status(stored.id, "failed", reason)
            _log.warning(
                "agent message %s/%s to %s %s failed: %s",
                conversation_id, stored.seq, conversation.channel, conversation.key, reason,
            )  # fmt: skip
            raise AgentReplyError("failed", f"{conversation.channel} refused it: {reason}") from exc
        _log.info(
            "agent message %s/%s sent on %s", conversation_id, stored.seq, conversation.channel
        )
        return stored
