"""Slack payloads -> what the core is asked to answer (pure functions, no I/O).

Which messages are answered:

* direct messages (``message`` events with ``channel_type == "im"``): everything the
  customer writes in a DM, top-level or in any thread of it, is one conversation (keyed
  by the DM's channel), answered where it was written;
* mentions of the bot anywhere it is a member (``app_mention`` events, and the
  ``message`` event of the same message); a bare mention (nothing but the bot's name, no
  files) is read as ``BARE_MENTION_TEXT`` (see there);
* replies in a thread the bot already talks in (``message`` events with ``thread_ts``),
  and, with ``thread_replies`` off, replies under one of the bot's top-level answers;
* button clicks (``block_actions`` on buttons the bot posted).

A message is keyed by its channel and ``ts`` (``message_key``), not by the event that
brought it: Slack sends a message that mentions the bot twice (``message.*`` and
``app_mention``, each with its own ``event_id``), and sends ``app_mention`` again, with a
new ``event_id``, the same ``ts`` and an ``edited`` field, each time such a message is
edited. Keyed so, the store answers each message once, whichever event comes first, and
redeliveries (``X-Slack-Retry-Num``) of any of them too.

Never answered: the bot's own messages, edits/deletes/joins and other subtypes, and
other bots unless ``answer_other_bots`` is on. Anything malformed is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botkit.events import Attachment
from connectors.slack._text import BUTTON_ACTION_PREFIX, from_slack

__all__ = [
    "BARE_MENTION_TEXT",
    "Identity",
    "SlackInbound",
    "conversation_key",
    "message_key",
    "read_action",
    "read_event",
    "split_key",
]

_ID = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,40}$")
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# Subtypes that are still a person (or bot) writing something new.
_ANSWERED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message"})
_MAX_FILES = 20
# What a bare mention of the bot ("@botkit" and nothing else) says: hello. Telegram
# answers a bare "@bot" with a greeting; here it goes to the core as a greeting, so the
# bot answers it as it answers "Hello" (a greeting intent, or the model, in the
# customer's language from the Slack locale), where the core's empty-message reply
# ("I can only read text") was wrong. Going through the core also makes the thread a
# conversation, so the customer can write the question there without mentioning the
# bot again (a connector-local greeting would leave that thread reply unread).
BARE_MENTION_TEXT = "Hello"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the bot is in Slack (from ``auth.test``)."""

    bot_user_id: str | None = None
    bot_id: str | None = None
    team_id: str | None = None
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class SlackInbound:
    """A message for the core, before the author's contact is looked up.

    ``known_thread_only``: answer only if the conversation already exists (a thread
    reply in a channel, which is not addressed to the bot by itself).
    ``bare_mention``: the bot's name and nothing else; ``text`` is ``BARE_MENTION_TEXT``.
    """

    author: str
    conversation_key: str
    text: str
    idempotency_key: str
    channel_ids: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    known_thread_only: bool = False
    bare_mention: bool = False


def conversation_key(channel: str, thread_ts: str | None) -> str:
    """``C123`` for a whole channel/DM, ``C123:1700000000.000100`` for one thread."""
    return f"{channel}:{thread_ts}" if thread_ts else channel


def message_key(channel: str, ts: str) -> str:
    """The idempotency key of one Slack message: ``C123:1700000000.000100``.

    A channel's ``ts`` values are unique (Slack's own message id within a channel), and
    channel ids are unique across workspaces, Enterprise Grid orgs and Slack Connect.
    """
    return f"{channel}:{ts}"


def split_key(key: str) -> tuple[str, str | None]:
    """Inverse of ``conversation_key``: (channel, thread_ts or None)."""
    channel, _, thread = key.partition(":")
    return channel, thread or None


def _str(data: Any, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        return None
    if pattern is not None and not pattern.match(value):
        return None
    return value


def _files(event: dict[str, Any]) -> tuple[Attachment, ...]:
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    out: list[Attachment] = []
    for f in files[:_MAX_FILES]:
        if not isinstance(f, dict):
            continue
        mime = _str(f, "mimetype")
        major = (mime or "").partition("/")[0]
        size = f.get("size")
        out.append(
            Attachment(
                kind=major if major in ("image", "audio", "video") else "file",
                name=(_str(f, "name") or "")[:255] or None,
                mime_type=mime[:255] if mime else None,
                size=size if isinstance(size, int) and size >= 0 else None,
                url=(_str(f, "permalink") or "")[:2000] or None,
            )
        )
    return tuple(out)


def _is_dm(channel: str) -> bool:
    # Clicks carry no channel_type; Slack's IDs of direct-message channels start with "D"
    # (public channels "C", private ones and old group DMs "G").
    return channel.startswith("D")


def _mentions(text: str, bot_user_id: str | None) -> bool:
    # "<@UBOT>" or "<@UBOT|name>", not "<@UBOT2>" (ids are not all of one length).
    return bool(bot_user_id) and (f"<@{bot_user_id}>" in text or f"<@{bot_user_id}|" in text)


def read_event(
    body: dict[str, Any], me: Identity, *, answer_other_bots: bool, thread_replies: bool
) -> SlackInbound | None:
    """The message an Events API payload asks the bot to answer, or None to ignore it."""
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    event_id = _str(body, "event_id", _EVENT_ID)
    if not isinstance(event, dict) or event_id is None:
        return None
    kind = event.get("type")
    subtype = event.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return None  # a list or dict is unhashable: the set lookup below would raise
    if kind not in ("message", "app_mention") or subtype not in _ANSWERED_SUBTYPES:
        return None
    user, bot_id = _str(event, "user", _ID), _str(event, "bot_id", _ID)
    if (user and user == me.bot_user_id) or (bot_id and bot_id == me.bot_id):
        return None
    if bot_id or subtype == "bot_message":
        if not answer_other_bots:
            return None
    author = user or (f"bot:{bot_id}" if bot_id else None)
    channel, ts = _str(event, "channel", _ID), _str(event, "ts", _TS)
    if author is None or channel is None or ts is None:
        return None
    raw = event.get("text")
    raw = raw if isinstance(raw, str) else ""
    thread_ts = _str(event, "thread_ts", _TS)
    direct = kind == "message" and event.get("channel_type") == "im"
    # Outside DMs a message that mentions the bot is a mention whichever of its two
    # events brings it (they share ``message_key``, so it is answered once). Group DMs
    # need this: Slack may deliver a mention there as ``message.mpim`` alone.
    mention = kind == "app_mention" or (not direct and _mentions(raw, me.bot_user_id))
    known_only = False
    if not direct and not mention:
        # In channels only replies in a thread the bot talks in are read.
        if thread_ts is None:
            return None
        known_only = True
    # A DM is one running conversation (people write to a bot one message after another,
    # and the second needs the first), threads included: "Reply in thread" on one of the
    # bot's answers is a follow-up that needs the answer. The reply still goes where the
    # customer wrote (``thread_ts`` in the ids). In channels each top-level message
    # starts a thread (``thread_replies``) so that one channel does not mix customers.
    root = thread_ts or (ts if thread_replies and not direct else None)
    # Without ``thread_replies`` the channel is one running conversation, and the bot
    # answers top-level: "Reply in thread" under one of its answers continues that
    # conversation (answered in the thread), as it would in a DM. Other threads are not
    # part of it (a mention there starts one of its own).
    follow_up = (
        not thread_replies
        and not direct
        and thread_ts is not None
        and me.bot_user_id is not None
        and _str(event, "parent_user_id", _ID) == me.bot_user_id
    )
    ids = {"channel": channel, "ts": ts, "event_id": event_id}
    if user:
        ids["user"] = user  # the recipient of a natively streamed reply (chat.startStream)
    if root:
        ids["thread_ts"] = root
    # The customer's own team: chat.startStream's ``recipient_team_id`` is "the team the
    # user receiving the streaming text belongs to", which for a Slack Connect or Grid
    # user is not the workspace the event came through (``team_id``).
    team = _str(event, "user_team", _ID) or _str(body, "team_id", _ID)
    if team:
        ids["team"] = team
    text, files = from_slack(raw, bot_user_id=me.bot_user_id), _files(event)
    bare = mention and not text and not files
    return SlackInbound(
        author=author,
        conversation_key=channel if direct or follow_up else conversation_key(channel, root),
        text=BARE_MENTION_TEXT if bare else text,
        idempotency_key=message_key(channel, ts),
        channel_ids=ids,
        attachments=files,
        known_thread_only=known_only,
        bare_mention=bare,
    )


def read_action(body: dict[str, Any], me: Identity) -> SlackInbound | None:
    """A click on one of the bot's buttons as a message, or None to ignore it.

    The message's conversation is the thread the buttons were posted in, or the whole
    DM for buttons in a DM (its threads are part of the DM's one conversation); the
    answer goes into that thread either way. The idempotency key is made of the
    clicking user and Slack's ``action_ts``, unique per click.
    """
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    action_id = _str(action, "action_id")
    value = action.get("value")
    action_ts = _str(action, "action_ts", _TS)
    if not (action_id and action_id.startswith(BUTTON_ACTION_PREFIX)) or action_ts is None:
        return None
    if not isinstance(value, str):
        return None
    user = _str(body.get("user"), "id", _ID)
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    channel = _str(body.get("channel"), "id", _ID) or _str(container, "channel_id", _ID)
    message_ts = _str(message, "ts", _TS) or _str(container, "message_ts", _TS)
    if user is None or user == me.bot_user_id or channel is None or message_ts is None:
        return None
    thread_ts = _str(message, "thread_ts", _TS) or _str(container, "thread_ts", _TS)
    ids = {"channel": channel, "ts": message_ts, "action_ts": action_ts, "user": user}
    # The clicker's own team first (see ``read_event``), then the workspace's.
    team = _str(body.get("user"), "team_id", _ID) or _str(body.get("team"), "id", _ID)
    if team:
        ids["team"] = team
    if thread_ts:
        ids["thread_ts"] = thread_ts
    return SlackInbound(
        author=user,
        conversation_key=channel if _is_dm(channel) else conversation_key(channel, thread_ts),
        text=value,
        idempotency_key=f"action:{channel}:{user}:{action_ts}",
        channel_ids=ids,
    )
