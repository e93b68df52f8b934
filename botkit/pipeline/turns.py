"""What of a conversation's stored messages the model reads as its history.

The model reads every outbound message as its own turn unless told otherwise. After a
hand-off that made a human agent's words ("Hi, this is Ana from customer service. I
checked order 4711...") look like the bot's, and botkit's own fixed texts (the hand-off
confirmation, "You're talking to the bot again", the fallback reply) sit between them
as further turns it never wrote: asked "Who told me that before?", SmolLM2-135M made up
an answer. So here

- an agent's message is labelled with who wrote it (``AGENT_LABEL``, in English: the
  label is for the model, which works in the working language anyway);
- botkit's fixed texts are left out: replies whose stored ``source`` says a fixed text
  took the model's place or answered a command (``CANNED_SOURCES``), and the bot's
  notices outside any reply (the release confirmation: no agent, no source, no message
  answered);
- the customer's chat commands ("/human", "/bot", "/lang es") are left out too: they
  steer botkit, they say nothing to the model;
- a message without text (a sticker, a photo without a caption) is left out: merged
  into the next customer turn it would only add an empty paragraph.

Consecutive turns of one role are merged where the request is built
(``botkit.pipeline.generation.merge_turns``).
"""

from __future__ import annotations

import unicodedata

import regex

from botkit.backends.protocol import ChatMessage
from botkit.events import Direction
from botkit.store.records import StoredMessage

__all__ = ["AGENT_LABEL", "CANNED_SOURCES", "is_command", "model_turn"]

# Replies that are botkit's fixed texts, by their stored source: a failure's stand-in
# (busy, fallback, empty, too_long, rejected, rate_limited) or a command's confirmation
# (the hand-off plugin's, the language switch's, the feedback plugin's question).
CANNED_SOURCES = frozenset(
    {
        "busy",
        "empty",
        "fallback",
        "feedback",
        "handoff",
        "language-switch",
        "rate_limited",
        "rejected",
        "too_long",
    }
)
AGENT_LABEL = "[{who}, a human agent, wrote:]"
_NAMELESS = "A colleague"
# "/human", "/bot@ShopBot", "/lang es", "/lang español": a command word and at most a
# short argument (the language switch's is at most 64 characters); a longer message that
# starts with a slash has more to say.
_COMMAND = regex.compile(r"/[^\W\d_]\w{0,31}(?:@\w{1,64})?(?:\s+\S.{0,63})?", regex.DOTALL)


def is_command(text: str) -> bool:
    """Whether ``text`` is a chat command (typed with a full-width slash too, U+FF0F)."""
    stripped = unicodedata.normalize("NFKC", text).strip()
    return _COMMAND.fullmatch(stripped) is not None


def model_turn(message: StoredMessage) -> ChatMessage | None:
    """The turn ``message`` is in the model's history, or None when it is left out
    (see the module docstring)."""
    text = message.model_text
    if not text.strip():
        return None  # a sticker, a photo without a caption: nothing for the model to read
    if message.direction == Direction.INBOUND:
        return None if is_command(message.text) else ChatMessage("user", text)
    if message.agent is not None:
        label = AGENT_LABEL.format(who=message.agent.strip() or _NAMELESS)
        return ChatMessage("assistant", f"{label} {text}")
    if message.source in CANNED_SOURCES:
        return None
    if message.source is None and message.in_reply_to_seq is None:
        return None  # a notice of botkit's own (AgentReplies.notify), no reply to anyone
    return ChatMessage("assistant", text)
