"""What an agents' queue shows of each conversation besides its record: who the customer
is and what they last wrote (the agent API's hand-off list, the inbox)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, ScalarSelect, func, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store._files import CustomerFileStore
from botkit.store.models import Contact, Conversation, Message

__all__ = ["HandoffPreview", "HandoffReads"]

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
    """

    customer_name: str | None
    last_customer_text: str | None
    last_customer_seq: int | None


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
            select(Conversation.id, Contact.display_name, shown, newest_any)
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
                cid: HandoffPreview(name, None if text is None else _cut(text), seq)
                for cid, name, text, seq in conn.execute(stmt)
            }

        return await self._read(work) if wanted else {}
