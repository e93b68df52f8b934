"""Messages human agents write to customers: stored, then sent on the conversation's channel.

A conversation handed to a human (``waiting_human``) is answered by an agent in the
agents' own tool, which reaches the bot through the hand-off plugin's agent API (or any
plugin, through ``PluginRegistry.agent_replies``): on every channel, this is how an
agent's words reach the customer and the conversation's history, with the agent's name.

Sending makes a conversation that waits for a human ``with_human``, in one
compare-and-set: a conversation the customer has just given back to the bot (``/bot``)
is refused unless the agent explicitly takes it over (``take_over``), so the bot does not
fall silent right after telling the customer it is back. The same goes for a
conversation another agent has (``exclusive``, for callers who are an agent): the first
agent who writes in a hand-off has it, so two agents never answer one customer unawares.
The message is then stored (its own transaction) only while the hand-off it took over is
still on, checked where it is written: a release landing in between (another agent's,
the customer's ``/bot``, an operator's) refuses it too, nothing stored or sent.
A reply the bot is already writing when an agent takes the conversation over ends after
the words already out (``on_take_over``; see ``botkit._delivery.LiveReplies``).

Agents write in the deployment's working language. In ``pivot`` mode a message to a
customer who writes another language is translated into theirs first (the bot's own
translator, protected spans and glossary included) and stored with both texts, like the
bot's replies; ``translate=False`` sends it as written (an agent who writes the
customer's language). A message that cannot be translated is refused before anything
changes, so the agent can retry or send it as written.

The message is stored (with the agent's name) before it is sent, and marked ``failed``
with the reason when the channel refuses it or the send is cancelled, so the
conversation's history never loses what an agent wrote nor shows it as delivered when it
was not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from botkit.agent_names import agent_name, channel_name
from botkit.errors import (
    BackendBusyError,
    BotkitError,
    StoreError,
    TranslationError,
    UnknownConversationError,
)
from botkit.events import OutboundReply
from botkit.sanitize import sanitize_text
from botkit.store import (
    ConversationRecord,
    ConversationStatus,
    ConversationStore,
    ConversationTakenError,
    HandoffEndedError,
)
from botkit.store.records import StoredMessage

__all__ = [
    "MAX_IDEMPOTENCY_KEY",
    "TRANSLATION_MARK",
    "AgentReplies",
    "AgentReplyError",
    "AgentText",
    "CustomerTextFn",
]

_log = logging.getLogger("botkit.agents")

Kind = Literal[
    "invalid",
    "not_found",
    "closed",
    "with_bot",
    "taken",
    "unavailable",
    "untranslated",
    "failed",
]

# Statuses an agent's message is accepted in (the conversation becomes ``with_human``);
# ``bot`` too only when the agent takes the conversation over explicitly.
_HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
_TAKE_OVER = (ConversationStatus.BOT, *_HUMAN)

# A caller's idempotency key, stored as the message's delivery key (the indexed
# (channel, key) of ``inbound_keys``: one lookup, no new column): scoped to the
# conversation and to the caller, and kept apart from the keys channels give their
# deliveries. The caller is a digest of a fixed length, so the parts cannot run into one
# another whatever an agent's name holds (":" too) and the key stays well under the
# store's 512 characters. Keys stored by earlier versions ("agent-api:<id>:<key>", not
# the caller's) are not looked up: they could be anyone's, and a retry is made seconds
# after its first try, so only one straddling the upgrade is sent again.
_KEY_PREFIX = "agent-api-caller"
MAX_IDEMPOTENCY_KEY = 200

# Starts the bot's translation of an agent's message written in the customer's thread:
# a globe reads as "translation" in any language, so no wording needs translating.
TRANSLATION_MARK = "\N{GLOBE WITH MERIDIANS} "


def _display_name(agent: str) -> str:
    """The name an agent's tool gave, as stored ("" for none): ``agent_name``'s rule.

    Raises:
        AgentReplyError: ``invalid``, saying why.
    """
    if not agent.strip():
        return ""
    try:
        return agent_name(agent)
    except ValueError as exc:
        raise AgentReplyError("invalid", f"the agent name is refused: {exc}") from None


class AgentReplyError(BotkitError):
    """An agent's message was refused or could not be delivered.

    ``kind`` says which: ``invalid`` (empty or too long, or a name ``agent_name``
    refuses), ``not_found`` (no such conversation), ``closed`` (the conversation is
    closed), ``with_bot`` (the bot has it, e.g. the customer sent ``/bot``, and the agent
    did not ask to take it over; or it went back to the bot between this message taking
    it over and being stored: nothing stored or sent), ``taken`` (another agent has it,
    named in ``agent``, and this one did not ask to take it over), ``unavailable`` (its
    channel does not run in this bot process), ``untranslated`` (it could not be
    translated into the customer's language; nothing was stored or changed), ``failed``
    (the channel refused it; the message is stored as ``failed``).
    """

    def __init__(self, kind: Kind, message: str, *, agent: str | None = None) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.agent = agent


@dataclass(frozen=True, slots=True)
class AgentText:
    """An agent's message as the customer gets it.

    Attributes:
        text: what is sent (in the customer's language).
        working_text: what the agent wrote, when ``text`` is its translation.
        language: the language of ``text``, when known.
    """

    text: str
    working_text: str | None = None
    language: str | None = None


# (agent's text, the conversation's language or None) -> the text for the customer.
# Raises TranslationError / BackendBusyError when the translation fails.
CustomerTextFn = Callable[[str, str | None], Awaitable[AgentText]]


async def _as_written(text: str, language: str | None) -> AgentText:
    return AgentText(text)


class _Sender(Protocol):
    async def send(self, reply: OutboundReply) -> None: ...


def _caller_tag(agent: str, exclusive: bool) -> str:
    """Who a key is scoped to: the agent's name with ``exclusive`` (the caller is that
    agent: their own token), ignoring case as agents' names are compared; else one
    caller for every name (a tool's shared token names the agents itself)."""
    who = f"agent:{_display_name(agent).casefold()}" if exclusive else "tool"
    return hashlib.sha256(who.encode()).hexdigest()[:32]


def _taken(conversation_id: int, holder: str) -> AgentReplyError:
    return AgentReplyError(
        "taken",
        f"{holder} has conversation {conversation_id}; take it over explicitly to write",
        agent=holder,
    )


def _ended(conversation_id: int, status: str) -> AgentReplyError:
    """The refusal of a message whose hand-off ended after it took the conversation over:
    nothing was stored or sent."""
    if status == ConversationStatus.CLOSED:
        return AgentReplyError(
            "closed", f"conversation {conversation_id} was closed before the message was "
            "stored; nothing was sent",
        )  # fmt: skip
    return AgentReplyError(
        "with_bot",
        f"conversation {conversation_id} went back to the bot before the message was stored "
        f"(it is {status} now); nothing was sent: take it over explicitly to write",
    )


def _check_status(conversation_id: int, status: str, take_over: bool) -> None:
    """Refuse a message to a conversation in ``status``, as the compare-and-set would."""
    if status == ConversationStatus.CLOSED:
        raise AgentReplyError("closed", f"conversation {conversation_id} is closed")
    if status not in (_TAKE_OVER if take_over else _HUMAN):
        raise AgentReplyError(
            "with_bot",
            f"the bot has conversation {conversation_id} (the customer may have sent "
            "the return command); take it over explicitly to write",
        )


class AgentReplies:
    """Sends agents' messages through the bot's running connectors.

    Args:
        store: the conversation store.
        connectors: the bot's connectors by channel name (read at each send, so
            connectors attached after construction count).
        max_chars: the longest message accepted (the bot's ``max_message_chars``).
        on_take_over: called with the conversation id once an agent has it (the bot
            ends its reply to it, if one is being written).
        customer_text: turns an agent's text into the customer's (the bot's language
            support: translation in ``pivot`` mode); default: sent as written.
    """

    def __init__(
        self,
        store: ConversationStore,
        connectors: Mapping[str, _Sender],
        max_chars: int,
        on_take_over: Callable[[int], None] = lambda conversation_id: None,
        customer_text: CustomerTextFn = _as_written,
    ) -> None:
        self._store = store
        self._connectors = connectors
        self._max_chars = max_chars
        self._on_take_over = on_take_over
        self._customer_text = customer_text
        # Translations of agents' channel messages being made (``record``).
        self._tasks: set[asyncio.Task[None]] = set()
        self._translating: set[int] = set()  # their message ids
        # Sends under one idempotency key, one at a time: [lock, users].
        self._keyed: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def send(
        self,
        conversation_id: int,
        text: str,
        *,
        agent: str = "",
        take_over: bool = False,
        translate: bool = True,
        exclusive: bool = False,
        delivery_key: str | None = None,
    ) -> StoredMessage:
        """Store ``text`` as the agent's message and deliver it to the customer.

        The first agent who writes in a hand-off has the conversation, until it goes
        back to the bot; one who takes it over (``take_over``) has it from then on
        (``ConversationStore.conversation_agent``).

        Args:
            conversation_id: the conversation (its ``id`` in the store).
            text: what the agent wrote; sanitized like customer text, never cut.
            agent: the agent's display name, kept with the message ("" for none).
            take_over: also accept a conversation the bot is answering (it becomes
                ``with_human`` and the bot stops answering it), or that another agent
                has (it becomes this agent's).
            translate: translate it into the customer's language when the bot
                translates (False: the agent wrote the customer's language).
            exclusive: refuse it (``taken``) when another agent has the conversation
                and ``take_over`` is not given: ``agent`` is who the caller is (an
                agent's own token), not a name a tool passes on.
            delivery_key: stored with the message, once per conversation (see
                ``send_once``, which callers use for this).

        Returns:
            The message as stored (status ``sent``): ``text`` as sent, ``working_text``
            what the agent wrote when it was translated.

        Raises:
            AgentReplyError: see its ``kind``s.
        """
        text = sanitize_text(text)
        agent = _display_name(agent)
        if not text.strip():
            raise AgentReplyError("invalid", "the message is empty")
        if len(text) > self._max_chars:
            raise AgentReplyError(
                "invalid",
                f"the message has {len(text)} characters; at most {self._max_chars} allowed",
            )
        try:
            conversation = await self._store.conversation_by_id(conversation_id)
        except UnknownConversationError:
            raise AgentReplyError("not_found", f"no conversation {conversation_id}") from None
        connector = self._connectors.get(conversation.channel)
        if connector is None:
            raise AgentReplyError(
                "unavailable",
                f"channel {conversation.channel!r} does not run in this bot process",
            )
        # Refused now if the status already says so: no translation for a message that
        # cannot be sent, and its error (409) is not hidden by a translator's (502).
        _check_status(conversation_id, conversation.status, take_over)
        holder = await self._store.conversation_agent(conversation_id)
        other = holder is not None and holder.casefold() != agent.casefold()
        if other and exclusive and not take_over:
            raise _taken(conversation_id, holder or "")
        # Before the takeover: a message that cannot be translated changes nothing.
        language = await self._store.customer_language(conversation)
        out = await self._for_customer(text, language, translate)
        taken = await self._store.change_conversation_status(
            conversation_id,
            ConversationStatus.WITH_HUMAN,
            only_from=_TAKE_OVER if take_over else _HUMAN,
        )
        if taken is None:  # it changed while the message was being translated
            now = await self._store.conversation_by_id(conversation_id)
            _check_status(conversation_id, now.status, take_over)
            raise AgentReplyError("with_bot", f"conversation {conversation_id} changed hands")
        self._on_take_over(conversation_id)
        try:
            stored = await self._deliver(
                conversation, connector, out, agent, exclusive=exclusive and not take_over,
                delivery_key=delivery_key,
                # A release between that takeover and this store (two transactions)
                # would otherwise put an agent's words into the bot's conversation.
                held_since=taken.status_since, held_seq=taken.status_seq,
            )  # fmt: skip
        except ConversationTakenError as exc:  # another agent's message came first
            raise _taken(conversation_id, exc.agent) from None
        except HandoffEndedError as exc:  # given back (or closed) since the takeover
            raise _ended(conversation_id, exc.status) from None
        if other and take_over:
            _log.info(
                "conversation %s taken over from %s by %s",
                conversation_id, holder, agent or "an agent",
            )  # fmt: skip
        return stored

    async def send_once(
        self,
        conversation_id: int,
        text: str,
        *,
        key: str,
        agent: str = "",
        take_over: bool = False,
        translate: bool = True,
        exclusive: bool = False,
    ) -> tuple[StoredMessage, bool]:
        """``send``, at most once per ``key`` in the conversation and caller: a caller's
        retry (after a timeout, not knowing whether the first try got through) stores and
        delivers nothing again, and gets the first message back, whatever it asks this
        time (also one stored ``failed``: the channel refused it; a new key sends it
        again). A first try that stored nothing (refused, untranslated) leaves the key
        unused.

        A key is the caller's: with ``exclusive`` the caller is ``agent`` (an agent's own
        token), without it every call is one caller's (a tool's shared token, whatever
        names it gives). Another caller's message under the same key is not theirs to
        get back: their call is a new message, checked as any (``taken`` when another
        agent has the conversation), never answered with someone else's success.

        Sends with one key are made one at a time in this process, so a retry racing the
        first try (still translating, still delivering) waits for it. The key is stored
        with the message (``append_outbound(delivery_key=...)``, as for Slack agents'
        deliveries), so a retry reaching the bot after a restart is known too.

        Args:
            key: the caller's idempotency key, 1-``MAX_IDEMPOTENCY_KEY`` printable
                characters.
            (the others): as for ``send``.

        Returns:
            The message, and whether this call stored it (False: a repeat).

        Raises:
            AgentReplyError: as ``send``; ``invalid`` for a key that is not printable or
                is too long.
        """
        if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
            raise AgentReplyError(
                "invalid",
                f"the idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            )
        stored_key = f"{_KEY_PREFIX}:{conversation_id}:{_caller_tag(agent, exclusive)}:{key}"
        async with self._one_at_a_time(stored_key):
            earlier = await self._sent_before(conversation_id, stored_key)
            if earlier is not None:
                return earlier, False
            stored = await self.send(
                conversation_id, text, agent=agent, take_over=take_over, translate=translate,
                exclusive=exclusive, delivery_key=stored_key,
            )  # fmt: skip
            return stored, True

    async def _sent_before(self, conversation_id: int, stored_key: str) -> StoredMessage | None:
        try:
            conversation = await self._store.conversation_by_id(conversation_id)
        except UnknownConversationError:
            raise AgentReplyError("not_found", f"no conversation {conversation_id}") from None
        earlier = await self._store.delivered(conversation.channel, stored_key)
        if earlier is not None and (
            earlier.conversation_id != conversation_id or earlier.agent is None
        ):  # a channel's own delivery that happens to read the same: never answered with
            raise AgentReplyError("invalid", "this idempotency key cannot be used")
        return earlier

    @asynccontextmanager
    async def _one_at_a_time(self, key: str) -> AsyncIterator[None]:
        lock, users = self._keyed.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._keyed[key]

    async def notify(self, conversation_id: int, text: AgentText | str) -> StoredMessage | None:
        """Send the customer the bot's own words (not an agent's): the confirmation that
        the bot has them again when an agent gives the conversation back.

        Args:
            conversation_id: the conversation.
            text: as the customer gets it, or (a ``str``) in the working language, for
                ``customer_text`` to translate (as written when that fails).

        Returns:
            The message as stored, or None when it could not be sent (logged): the
            conversation or its channel is gone, the channel refused it, or the database
            failed.
        """
        try:
            conversation = await self._store.conversation_by_id(conversation_id)
            connector = self._connectors.get(conversation.channel)
            if connector is None:
                _log.warning(
                    "message to conversation %s not sent: channel %r does not run here",
                    conversation_id, conversation.channel,
                )  # fmt: skip
                return None
            if isinstance(text, str):
                language = await self._store.customer_language(conversation)
                text = await self._translation_of(text, language, conversation_id)
            return await self._deliver(conversation, connector, text, None)
        except (AgentReplyError, StoreError) as exc:
            _log.warning("message to conversation %s not sent: %s", conversation_id, exc)
            return None

    async def _deliver(
        self,
        conversation: ConversationRecord,
        connector: _Sender,
        out: AgentText,
        agent: str | None,
        *,
        exclusive: bool = False,
        delivery_key: str | None = None,
        held_since: datetime | None = None,
        held_seq: int | None = None,
    ) -> StoredMessage:
        """Store ``out`` (an agent's message, or with ``agent`` None the bot's) and
        hand it to ``connector``; marked ``failed`` when that fails (``AgentReplyError``
        ``failed``) or is cancelled. ``exclusive``, ``held_since`` and ``held_seq`` are
        ``append_outbound``'s (``ConversationTakenError``, ``HandoffEndedError``: nothing
        stored or sent)."""
        conversation_id = conversation.id
        who = "agent message" if agent is not None else "message"
        # Read before storing: between storing the message and handing it to the
        # connector nothing may wait, or a cancellation there would leave it "sent".
        reply_to = await self._store.reply_target(conversation_id)
        stored = await self._store.append_outbound(
            conversation_id,
            out.text,
            working_text=out.working_text,
            language=out.language,
            agent=agent,
            exclusive=exclusive,
            delivery_key=delivery_key,
            held_since=held_since,
            held_seq=held_seq,
        )
        reply = OutboundReply(
            channel=conversation.channel,
            conversation_key=conversation.key,
            text=out.text,
            language=out.language,
            reply_to=reply_to,
            seq=stored.seq,
            metadata={} if agent is None else {"agent": agent},
            created_at=stored.created_at,
        )
        try:
            await connector.send(reply)
        except asyncio.CancelledError:
            # Not delivered (shutdown, a caller's timeout): never left looking sent.
            await asyncio.shield(
                self._store.set_message_status(stored.id, "failed", "cancelled before delivery")
            )
            raise
        except Exception as exc:  # any connector failure: recorded, then reported
            reason = f"{type(exc).__name__}: {exc}"
            await self._store.set_message_status(stored.id, "failed", reason)
            _log.warning(
                "%s %s/%s to %s %s failed: %s",
                who, conversation_id, stored.seq, conversation.channel, conversation.key, reason,
            )  # fmt: skip
            raise AgentReplyError("failed", f"{conversation.channel} refused it: {reason}") from exc
        _log.info("%s %s/%s sent on %s", who, conversation_id, stored.seq, conversation.channel)
        return stored

    async def _for_customer(self, text: str, language: str | None, translate: bool) -> AgentText:
        if not translate:
            return AgentText(text)
        try:
            out = await self._customer_text(text, language)
        except (TranslationError, BackendBusyError) as exc:
            raise AgentReplyError(
                "untranslated",
                f"the message could not be translated into {language}: {exc}; send it again "
                "later, or as written (translate: false)",
            ) from exc
        # Whatever made it (a translation model's output is outside data too), it is
        # stored and sent only once it is clean.
        return AgentText(sanitize_text(out.text), out.working_text, out.language)

    async def record(
        self,
        channel: str,
        conversation_key: str,
        text: str,
        *,
        agent: str,
        agent_id: str,
        delivery_key: str,
    ) -> StoredMessage | None:
        """Store a message an agent wrote on the channel itself (a reply in a customer's
        Slack thread), once per delivery: it already reached the customer as written.
        Writing where the customer reads takes the conversation over (a closed one
        stays closed); a delivery seen before changes nothing.

        In ``pivot`` mode, when the customer writes another language, the bot then posts
        its translation under it (``TRANSLATION_MARK`` first, so it reads as a
        translation, not as the bot speaking), in the background: the channel's delivery
        is acknowledged at once (Slack redelivers what is not acknowledged within 3 s,
        and a redelivery changes nothing). The message is then stored like one sent
        through the agent API: ``text`` in the customer's language, ``working_text`` as
        written. A translation that fails or cannot be posted is logged and leaves the
        message as written: the customer has read the original.

        Args:
            agent: the name stored with the message.
            agent_id: the agent's id on the channel: in a conversation that agent started
                themselves they are its customer, and this is not an agent's message.

        Returns:
            The stored message, or None when this is not an agent's message here: a
            conversation botkit does not know, one the agent started, or no text (the
            channel describes files in words).
        """
        conversation = await self._store.get_conversation(channel, conversation_key)
        text = sanitize_text(text)
        if conversation is None or not text.strip():
            return None
        customer = await self._store.get_contact(conversation.contact_id)
        if customer is not None and customer.external_id == agent_id:
            return None
        earlier = await self._store.delivered(channel, delivery_key)
        if earlier is not None:  # a redelivery: neither stored nor taken over again
            return earlier
        agent = channel_name(agent)
        taken = await self._store.change_conversation_status(
            conversation.id, ConversationStatus.WITH_HUMAN, only_from=_TAKE_OVER
        )
        if taken is not None:
            self._on_take_over(conversation.id)
        stored = await self._store.append_outbound(
            conversation.id, text, agent=agent, delivery_key=delivery_key
        )
        _log.info("agent message %s/%s recorded from %s", conversation.id, stored.seq, channel)
        if stored.id not in self._translating:  # not for a redelivery racing this one
            self._translating.add(stored.id)
            task = asyncio.create_task(self._translate_for_customer(conversation, stored))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: self._translating.discard(stored.id))
        return stored

    async def _translate_for_customer(
        self, conversation: ConversationRecord, stored: StoredMessage
    ) -> None:
        """Store the translation of an agent's channel message, then post it (see
        ``record``); a post that fails takes the stored translation back. Storing first
        claims it: a Slack redelivery another process is translating at the same time
        posts nothing. Never raises: the customer has the original either way."""
        try:
            language = await self._store.customer_language(conversation)
            out = await self._translation_of(stored.text, language, conversation.id)
            if out.working_text is None or out.language is None:
                return  # the customer's language, or no translation to be had
            if await self._store.add_translation(stored, out.text, language=out.language) is None:
                return  # another process has it
            if not await self._post_translation(conversation, stored, out):
                await self._store.remove_translation(stored)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database failed
            _log.warning(
                "translation of agent message %s/%s not made: %s: %s",
                conversation.id, stored.seq, type(exc).__name__, exc,
            )  # fmt: skip

    async def close(self) -> None:
        """Stop the translations still being made (the bot is stopping)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _translation_of(
        self, text: str, language: str | None, conversation_id: int
    ) -> AgentText:
        """``text`` for the customer, or as written when it cannot be translated."""
        try:
            out = await self._customer_text(text, language)
        except (TranslationError, BackendBusyError) as exc:
            _log.warning(
                "agent message in conversation %s not translated into %s: %s",
                conversation_id, language, exc,
            )  # fmt: skip
            return AgentText(text)
        if out.working_text is None or out.text == text:
            return AgentText(text)  # nothing to post: the customer read it as it is
        return AgentText(sanitize_text(out.text), out.working_text, out.language)

    async def _post_translation(
        self, conversation: ConversationRecord, stored: StoredMessage, translated: AgentText
    ) -> bool:
        """Post the translation under the agent's message; whether it went out."""
        connector = self._connectors.get(conversation.channel)
        if connector is None:  # the channel stopped since the agent's message came in
            return False
        reply = OutboundReply(
            channel=conversation.channel,
            conversation_key=conversation.key,
            text=f"{TRANSLATION_MARK}{translated.text}",
            language=translated.language,
            reply_to=await self._store.reply_target(conversation.id),
            seq=stored.seq,
            metadata={"agent": stored.agent or "", "translation": True},
            created_at=stored.created_at,
        )
        try:
            await connector.send(reply)
        except Exception as exc:  # the original is in the thread: only the copy is lost
            _log.warning(
                "translation of agent message %s/%s could not be posted on %s: %s: %s",
                conversation.id, stored.seq, conversation.channel, type(exc).__name__, exc,
            )  # fmt: skip
            return False
        return True
