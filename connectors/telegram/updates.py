"""Deciding what an incoming Telegram update asks of the bot (pure: no I/O).

Only ``message`` and ``callback_query`` updates are requested from Telegram. A message is:

* ``/start`` or ``/help`` (also ``/start@thisbot``): answered by the connector itself;
  ``/start PAYLOAD`` (a deep link, ``t.me/bot?start=PAYLOAD``) is submitted to the core
  instead, the payload also in ``channel_ids["start_payload"]`` for plugins;
* text (or a caption) meant for the bot: submitted to the core. In a group that is
  when the bot is @mentioned or its message is replied to (``group_replies``); a
  command that names the bot (``/lang@thisbot es``) always counts, a bare one
  (``/lang es``, ``/human``) only when it is one of the bot's own
  (``group_commands``): ``/ban @spammer`` is for another bot. The bot's @mention is
  removed from the text;
* a sticker, photo, voice message, location... without text: submitted too, with its
  attachment (``Action.message``), so it is stored whoever has the conversation. The
  core decides on the status where the message becomes the agent's: the agent's to see
  while a human has the conversation, else answered with "I can only read text"
  (``unreadable``: which messages the bot cannot read);
* the service messages that say a group became a supergroup (``migrate_to_chat_id`` in
  the group, ``migrate_from_chat_id`` in the supergroup): replies to the group go to the
  supergroup from then on, and its conversation continues there (``Kind.MIGRATED``);
* anything else (service messages, other bots' commands, a channel post): ignored.

A button click (callback query) is submitted as the button's value where the bot would
read a text message: not under a channel post, not in a group when ``group_replies`` is
"off" (there it is only acknowledged, so the button's spinner stops). A click is meant for
the bot like a command is, so the other ``group_replies`` settings accept it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from telegram import CallbackQuery, Chat, Message, MessageEntity, Update, User

from botkit.events import Attachment, Contact, InboundMessage
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.config import DEFAULT_GROUP_COMMANDS, command_names
from connectors.telegram.sender import Target

__all__ = ["CHANNEL", "Action", "BotIdentity", "Kind", "classify", "unreadable"]

CHANNEL = "telegram"
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")
_MEDIA = {
    "sticker": "sticker",
    "photo": "image",
    "voice": "audio",
    "audio": "audio",
    "video": "video",
    "video_note": "video",
    "animation": "video",
    "document": "file",
    "location": "location",
    "venue": "location",
    "contact": "contact",
    "poll": "poll",
    "dice": "dice",
    "game": "game",
    "story": "story",
}
# Kinds whose message text is made here for a human agent (``_shared``), not written.
_SHARED = frozenset({"location", "contact", "poll"})
_MAX_PAYLOAD = 512  # Telegram's deep-link payloads have at most 64 characters
_DEFAULT_COMMANDS = command_names(DEFAULT_GROUP_COMMANDS)


class Kind(StrEnum):
    SUBMIT = "submit"
    START = "start"
    HELP = "help"
    ACKNOWLEDGE = "acknowledge"  # answer a callback query, nothing else
    MIGRATED = "migrated"  # group ``target`` became supergroup ``Action.moved_to``
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """The bot itself, from ``getMe``."""

    id: int
    username: str


@dataclass(frozen=True, slots=True)
class Action:
    """What to do with one update."""

    kind: Kind
    update_id: int
    message: InboundMessage | None = None
    target: Target | None = None
    language: str | None = None
    callback_id: str | None = None
    moved_to: int | None = None  # MIGRATED: the supergroup's chat id
    album: str | None = None  # the media_group_id of a photo album's message (``album``)


def classify(
    update: Update,
    me: BotIdentity,
    policy: str,
    codec: ButtonCodec,
    group_commands: frozenset[str] = _DEFAULT_COMMANDS,
) -> Action:
    """The ``Action`` for ``update`` (see the module docstring). ``group_commands``:
    the names (no "/", case-folded) of the bot's own commands, the only bare ones it
    takes in a group unless ``policy`` is "all"."""
    if update.callback_query is not None:
        return _callback(update, update.callback_query, me, policy, codec)
    msg = update.message
    if msg is not None and msg.migrate_to_chat_id is not None:
        return Action(
            Kind.MIGRATED,
            update.update_id,
            target=Target(msg.chat.id),
            moved_to=msg.migrate_to_chat_id,
        )
    if msg is not None and msg.migrate_from_chat_id is not None:
        return Action(
            Kind.MIGRATED,
            update.update_id,
            target=Target(msg.migrate_from_chat_id),
            moved_to=msg.chat.id,
        )
    if msg is None or not _takes_part(msg.chat, policy):
        return Action(Kind.IGNORE, update.update_id)
    user = msg.from_user
    if user is None or user.is_bot:
        return Action(Kind.IGNORE, update.update_id)
    private = msg.chat.type == "private"
    thread = msg.message_thread_id if msg.is_topic_message else None
    target = Target(msg.chat.id, thread, None if private else msg.message_id)
    local = _local(update, target, user)
    replied = _replied_to(msg, me)
    text = msg.text if msg.text is not None else msg.caption
    if text is None:
        if _media_kind(msg) is None:
            return local(Kind.IGNORE)
        wanted = private or policy == "all" or (policy == "mention_or_reply" and replied)
        if not wanted:
            return local(Kind.IGNORE)
        media = _inbound(update, me, msg, user, thread, _shared(msg))
        return Action(
            Kind.SUBMIT,
            update.update_id,
            media,
            target,
            user.language_code,
            album=msg.media_group_id,
        )
    command = _COMMAND.match(text) if msg.text is not None else None
    start_payload: str | None = None
    if command is not None:
        name, addressee = command.group(1), command.group(2)
        if addressee is not None and addressee.casefold() != me.username.casefold():
            return local(Kind.IGNORE)  # "/help@otherbot"
        ours = addressee is not None or private or policy == "all"
        if not ours and name.casefold() not in group_commands | {"start", "help"}:
            return local(Kind.IGNORE)  # "/ban @spammer": another bot's command
        payload = text[command.end() :].strip()
        if name.casefold() == "start" and payload and (private or addressee is not None):
            # A deep link (t.me/bot?start=order_12345): the payload is the customer's
            # context, so the message goes to the core, stored and answered there. In a
            # group only when addressed to the bot, as startgroup links arrive
            # ("/start@bot PAYLOAD"): a bare "/start words" there is only /start.
            start_payload = payload
        elif name.casefold() in ("start", "help"):
            return local(Kind.START if name.casefold() == "start" else Kind.HELP)
        text = f"/{name}{text[command.end() :]}"
    mentioned = _mentions(msg, me)
    wanted = (
        private
        or command is not None
        or policy == "all"
        or mentioned
        or (policy == "mention_or_reply" and replied)
    )
    if not wanted:
        return local(Kind.IGNORE)
    clean = _strip_mention(text, me).strip()
    if not clean and mentioned and msg.text is not None:
        return local(Kind.START)  # just "@bot": say hello
    # A caption that was only "@bot" leaves a photo without text: it gets the "I can
    # only read text" answer (and stays stored for an agent), not "@bot" as a question.
    said = clean if msg.text is None else clean or text
    inbound = _inbound(update, me, msg, user, thread, said)
    if start_payload is not None:
        ids = {**inbound.channel_ids, "start_payload": start_payload[:_MAX_PAYLOAD]}
        inbound = dataclasses.replace(inbound, channel_ids=ids)
    return Action(
        Kind.SUBMIT,
        update.update_id,
        inbound,
        target,
        user.language_code,
        album=msg.media_group_id,
    )


def unreadable(message: InboundMessage) -> bool:
    """Whether the bot cannot read ``message``: a file, sticker... without a caption, or
    a location, venue, contact or poll (its text is made for a human agent)."""
    if not message.attachments:
        return False
    return not message.text.strip() or message.attachments[0].kind in _SHARED


def _inbound(
    update: Update, me: BotIdentity, msg: Message, user: User, thread: int | None, text: str
) -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL,
        conversation_key=_key(msg.chat.id, thread),
        contact=_contact(user),
        text=text,
        idempotency_key=f"{me.id}:{update.update_id}",
        channel_ids=_ids(msg.chat.id, msg.chat.type, msg.message_id, thread),
        attachments=_attachments(msg),
    )


def _local(update: Update, target: Target, user: User) -> Callable[[Kind], Action]:
    def make(kind: Kind) -> Action:
        return Action(kind, update.update_id, target=target, language=user.language_code)

    return make


def _takes_part(chat: Chat, policy: str) -> bool:
    """Whether the bot reads anything in ``chat``: not in a channel (a post has no customer
    to answer), in a group unless ``group_replies`` is "off"."""
    return chat.type == "private" or (chat.type != "channel" and policy != "off")


def _callback(
    update: Update, query: CallbackQuery, me: BotIdentity, policy: str, codec: ButtonCodec
) -> Action:
    msg = query.message
    value = codec.decode(query.data) if query.data else None
    if msg is None or value is None or not value.strip() or not _takes_part(msg.chat, policy):
        return Action(Kind.ACKNOWLEDGE, update.update_id, callback_id=query.id)
    thread = msg.message_thread_id if isinstance(msg, Message) and msg.is_topic_message else None
    chat = msg.chat
    inbound = InboundMessage(
        channel=CHANNEL,
        conversation_key=_key(chat.id, thread),
        contact=_contact(query.from_user),
        text=value,
        idempotency_key=f"{me.id}:{update.update_id}",
        channel_ids={**_ids(chat.id, chat.type, None, thread), "callback_query_id": query.id},
    )
    return Action(
        Kind.SUBMIT,
        update.update_id,
        inbound,
        Target(chat.id, thread, None),
        query.from_user.language_code,
        query.id,
    )


def _key(chat_id: int, thread: int | None) -> str:
    return str(chat_id) if thread is None else f"{chat_id}:{thread}"


def _ids(
    chat_id: int, chat_type: str, message_id: int | None, thread: int | None
) -> dict[str, str]:
    ids = {"chat_id": str(chat_id), "chat_type": str(chat_type)}
    if message_id is not None:
        ids["message_id"] = str(message_id)
    if thread is not None:
        ids["thread_id"] = str(thread)
    return ids


def _contact(user: User) -> Contact:
    return Contact(
        channel=CHANNEL,
        external_id=str(user.id),
        display_name=user.full_name[:200] or None,
        language_hint=user.language_code,
    )


def _replied_to(msg: Message, me: BotIdentity) -> bool:
    original = msg.reply_to_message
    return (
        original is not None and original.from_user is not None and original.from_user.id == me.id
    )


def _mentions(msg: Message, me: BotIdentity) -> bool:
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = msg.parse_entities(kinds) if msg.text is not None else msg.parse_caption_entities(kinds)
    handle = f"@{me.username}".casefold()
    for entity, text in found.items():
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == me.id:
            return True
        if entity.type == MessageEntity.MENTION and text.casefold() == handle:
            return True
    return False


def _strip_mention(text: str, me: BotIdentity) -> str:
    # With the space before it, so "hey @bot, help" becomes "hey, help".
    pattern = rf"\s*(?<!\w)@{re.escape(me.username)}(?!\w)"
    return re.sub(pattern, "", text, flags=re.IGNORECASE)


def _media_kind(msg: Message) -> str | None:
    for attr, kind in _MEDIA.items():
        if getattr(msg, attr, None):
            return kind
    return None


def _shared(msg: Message) -> str:
    """What a location, venue, contact or poll says, as text for a human agent (the bot
    answers these with "I can only read text"); "" for files, which are fetched."""
    if msg.venue is not None:
        where = _map_link(msg.venue.location.latitude, msg.venue.location.longitude)
        return f"📍 {msg.venue.title}, {msg.venue.address} ({where})"
    if msg.location is not None:
        return "📍 " + _map_link(msg.location.latitude, msg.location.longitude)
    if msg.contact is not None:
        person = " ".join(n for n in (msg.contact.first_name, msg.contact.last_name) if n)
        return f"👤 {person}: {msg.contact.phone_number}"
    if msg.poll is not None:
        return "📊 " + msg.poll.question
    return ""


def _map_link(latitude: float, longitude: float) -> str:
    return (
        f"{latitude:.6f}, {longitude:.6f} https://www.openstreetmap.org/"
        f"?mlat={latitude:.6f}&mlon={longitude:.6f}#map=17/{latitude:.6f}/{longitude:.6f}"
    )


def _attachments(msg: Message) -> tuple[Attachment, ...]:
    kind = _media_kind(msg)
    if kind is None:
        return ()
    media = msg.effective_attachment
    if isinstance(media, (tuple, list)):  # photo sizes: the largest is last
        media = media[-1] if media else None
    # Photos have no MIME type of their own: Telegram stores them as JPEG.
    mime = getattr(media, "mime_type", None) or ("image/jpeg" if msg.photo else None)
    return (
        Attachment(
            kind=kind,
            name=getattr(media, "file_name", None),
            mime_type=mime,
            size=getattr(media, "file_size", None),
            ref=getattr(media, "file_id", None),  # locations, contacts, polls have none
        ),
    )
