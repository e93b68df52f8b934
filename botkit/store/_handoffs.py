"""What an agents' queue shows of each conversation besides its record: who the customer
is, what they last wrote, and which agent has it (the agent API's hand-off list, the
inbox).

Which agent has a conversation is not a column of its own: it is the name on the newest
agent's message of the current hand-off (written since the conversation became
``with_human``: with a ``seq`` above ``status_seq``, never by the hosts' clocks). The
first agent who answers has it, and one who takes it over explicitly has it from their
message on; giving it back to the bot ends the hand-off,
and with it the claim. ``append_outbound(exclusive=True)`` reads it in the transaction
that stores the message, after the conversation row is locked (its ``last_seq`` is
bumped first), so two agents answering at once cannot both have it. With
``held_since`` and ``held_seq`` it also checks, in that transaction, that the hand-off
the agent's send took over is still on: the status, ``status_seq`` and the time it
entered it still the takeover's (``HandoffEndedError`` when not). A release landing
between the takeover and the message never lets an agent's words into a conversation
the bot has again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, ScalarSelect, case, func, select
from sqlalchemy.engine import Connection

from botkit.errors import BotkitError
from botkit.events import Direction
from botkit.store._files import CustomerFileStore
from botkit.store.models import Contact, Conversation, Message
from botkit.store.records import ConversationStatus

__all__ = [
    "ConversationTakenError",
    "HandoffEndedError",
    "HandoffPreview",
    "HandoffReads",
    "agent_holding",
]

# Previews are read for one page of a queue at a time.
MAX_PREVIEWS = 500
# Messages looked back through for the customer's newest words.
LOOK_BACK = 200
# A preview is one line in a list: the start of the message is enough.
PREVIEW_CHARS = 280


def _cut(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class HandoffPreview:
    """A queued conversation at a glance.

    Attributes:
        customer_name: the display name of the person who started the conversation,
            as their channel gave it (None when it gave none).
        last_customer_text: the start (``PREVIEW_CHARS``) of their newest message with
            words in it, not a chat command (the "/human" that handed the conversation
            over, a photo alone say nothing), in the working language where it was
            translated; None when there is none among the last ``LOOK_BACK`` messages.
        last_customer_seq: the ``seq`` of their newest message of any kind (a photo, a
            command, the same words again), to tell that they wrote; None as above.
        agent: the agent who has it (see the module docstring); None when nobody has
            it yet or the bot does.
    """

    customer_name: str | None
    last_customer_text: str | None
    last_customer_seq: int | None
    agent: str | None = None


class ConversationTakenError(BotkitError):
    """Another agent has the conversation (``append_outbound(exclusive=True)``).

    Attributes:
        agent: the name of the agent who has it.
    """

    def __init__(self, conversation_id: int, agent: str) -> None:
        super().__init__(f"{agent} has conversation {conversation_id}")
        self.agent = agent


class HandoffEndedError(BotkitError):
    """The hand-off an agent's message was written in is over
    (``append_outbound(held_since=..., held_seq=...)``): the conversation went back to the bot, was
    closed, or went back and was handed over again, before the message was stored.

    Attributes:
        status: the conversation's status now.
    """

    def __init__(self, conversation_id: int, status: ConversationStatus) -> None:
        super().__init__(f"conversation {conversation_id} is no longer in that hand-off ({status})")
        self.status = status


def _holder() -> ColumnElement[str | None]:
    """The agent who has the conversation (correlated to ``Conversation``): the name on
    its newest agent's message since it became ``with_human`` (a ``seq`` above
    ``status_seq``), walking back down the (conversation_id, seq) index; None in any
    other status, or without a named agent's message (the shared token may send without
    a name)."""
    name = Message.extra["agent"].as_string()
    newest = (
        select(name)
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == Direction.OUTBOUND.value,
            # Stored since it entered its status: by seq, not by time. A message's
            # created_at is the clock of the process that stored it, the status's of
            # the one that changed it; a few seconds' skew between replicas put an
            # agent's first message before the takeover, or the previous hand-off's in.
            Message.seq > Conversation.status_seq,
            name != "",
        )
        .order_by(Message.seq.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    return case((Conversation.status == ConversationStatus.WITH_HUMAN.value, newest), else_=None)


def agent_holding(conn: Connection, conversation_id: int) -> str | None:
    """The agent who has conversation ``conversation_id`` (None: nobody, or no such
    conversation)."""
    stmt = select(_holder()).where(Conversation.id == conversation_id)
    found: str | None = conn.execute(stmt).scalar()
    return found


def _newest_inbound(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
    """The ``seq`` of a conversation's newest customer message meeting ``conditions``:
    a walk back down the (conversation_id, seq) index from its newest message, stopping
    at the first that qualifies and never going further back than ``LOOK_BACK``
    messages, so the cost does not grow with a long conversation's history."""
    return (
        select(Message.seq)
        .where(
            Message.conversation_id == Conversation.id,
            Message.seq > Conversation.last_seq - LOOK_BACK,
            Message.direction == Direction.INBOUND.value,
            *conditions,
        )
        .order_by(Message.seq.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


class HandoffReads(CustomerFileStore):
    """The store's reads for agents' queues (see the module docstring)."""

    async def handoff_previews(
        self, conversation_ids: Collection[int]
    ) -> dict[int, HandoffPreview]:
        """A preview of each conversation in ``conversation_ids`` that exists (one read,
        however many there are; at most ``MAX_PREVIEWS``).

        Raises:
            StoreError: the database failed.
            ValueError: more ids than ``MAX_PREVIEWS``.
        """
        wanted = sorted(set(conversation_ids))
        if len(wanted) > MAX_PREVIEWS:
            raise ValueError(f"at most {MAX_PREVIEWS} previews at a time")
        newest_seq = _newest_inbound(
            Message.text != "",  # a photo alone says nothing about the case
            ~Message.text.startswith("/", autoescape=True),  # nor does "/human"
        )
        newest_any = _newest_inbound()
        shown = func.substr(func.coalesce(Message.working_text, Message.text), 1, PREVIEW_CHARS + 1)
        stmt = (
            select(Conversation.id, Contact.display_name, shown, newest_any, _holder())
            .join(Contact, Contact.id == Conversation.contact_id, isouter=True)
            .join(
                Message,
                (Message.conversation_id == Conversation.id) & (Message.seq == newest_seq),
                isouter=True,
            )
            .where(Conversation.id.in_(wanted))
        )

        def work(conn: Connection) -> dict[int, HandoffPreview]:
            return {
                cid: HandoffPreview(name, None if text is None else _cut(text), seq, agent)
                for cid, name, text, seq, agent in conn.execute(stmt)
            }

        return await self._read(work) if wanted else {}

    async def conversation_agent(self, conversation_id: int) -> str | None:
        """The agent who has the conversation (see the module docstring); None when
        nobody has it yet, the bot has it, or there is no such conversation.

        Raises:
            StoreError: the database failed.
        """
        return await self._read(lambda conn: agent_holding(conn, conversation_id))
