"""What an agents' queue shows of each conversation besides its record: who the customer
is and what they last wrote (the agent API's hand-off list, the inbox)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from botkit.events import Direction
from botkit.store._feedback import FeedbackStore
from botkit.store.models import Contact, Conversation, Message

__all__ = ["HandoffPreview", "HandoffReads"]

# Previews are read for one page of a queue at a time.
MAX_PREVIEWS = 500


@dataclass(frozen=True, slots=True)
class HandoffPreview:
    """A queued conversation at a glance.

    Attributes:
        customer_name: the display name of the person who started the conversation,
            as their channel gave it (None when it gave none).
        last_customer_text: their newest message that is not a chat command (the
            "/human" that handed the conversation over says nothing), in the working
            language where it was translated; None when there is none.
    """

    customer_name: str | None
    last_customer_text: str | None


class HandoffReads(FeedbackStore):
    """The store's reads for agents' queues (see the module docstring)."""

    async def handoff_previews(
        self, conversation_ids: Collection[int]
    ) -> dict[int, HandoffPreview]:
        """A preview of each conversation in ``conversation_ids`` that exists (two
        reads, however many there are; at most ``MAX_PREVIEWS``).

        Raises:
            StoreError: the database failed.
            ValueError: more ids than ``MAX_PREVIEWS``.
        """
        wanted = sorted(set(conversation_ids))
        if len(wanted) > MAX_PREVIEWS:
            raise ValueError(f"at most {MAX_PREVIEWS} previews at a time")
        names = (
            select(Conversation.id, Contact.display_name)
            .join(Contact, Contact.id == Conversation.contact_id, isouter=True)
            .where(Conversation.id.in_(wanted))
        )
        newest = (
            select(Message.conversation_id, func.max(Message.seq).label("seq"))
            .where(
                Message.conversation_id.in_(wanted),
                Message.direction == Direction.INBOUND.value,
                ~Message.text.startswith("/", autoescape=True),
            )
            .group_by(Message.conversation_id)
            .subquery()
        )
        last_texts = select(Message.conversation_id, Message.text, Message.working_text).join(
            newest,
            (Message.conversation_id == newest.c.conversation_id) & (Message.seq == newest.c.seq),
        )

        def work(conn: Connection) -> dict[int, HandoffPreview]:
            texts = {cid: working or text for cid, text, working in conn.execute(last_texts)}
            return {cid: HandoffPreview(name, texts.get(cid)) for cid, name in conn.execute(names)}

        return await self._read(work) if wanted else {}
