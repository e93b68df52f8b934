"""What the model reads of a conversation after a hand-off: a human agent's words
labelled as theirs, botkit's fixed texts and chat commands left out, consecutive turns
of one role merged (the audit's conversation: /human, Ana's answer, the release)."""

from __future__ import annotations

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import ChatMessage
from botkit.config import settings_from_mapping
from botkit.events import Contact, Direction, InboundMessage, utcnow
from botkit.pipeline import Context
from botkit.pipeline.generation import build_request
from botkit.pipeline.middleware.conversation import _pick_and_fit
from botkit.store import ConversationStore
from botkit.store.records import (
    ConversationRecord,
    ConversationStatus,
    MessageStatus,
    StoredMessage,
)

ANA = "Hi, this is Ana from customer service. I checked order 4711: it arrives on Thursday."
HANDED = "I'm handing you over to a colleague. Type /bot to talk to the bot again."
RELEASED = "You're talking to the bot again."
SETTINGS = settings_from_mapping({}, environ={})


def _in(seq: int, text: str) -> StoredMessage:
    return StoredMessage(1, 1, seq, Direction.INBOUND, text, None, "en",
                         MessageStatus.ANSWERED, utcnow(), f"k{seq}", None)  # fmt: skip


def _out(
    seq: int,
    text: str,
    *,
    reply_to: int | None = None,
    agent: str | None = None,
    source: str | None = None,
) -> StoredMessage:
    return StoredMessage(1, 1, seq, Direction.OUTBOUND, text, None, "en", MessageStatus.SENT,
                         utcnow(), None, None, in_reply_to_seq=reply_to, agent=agent,
                         source=source)  # fmt: skip


# The audit's conversation (h1.json), as stored.
CONVERSATION = [
    _in(1, "Where is my parcel? My order number is 4711."),
    _out(2, "Let me check that for you.", reply_to=1, source="backend"),
    _in(3, "/human"),
    _out(4, HANDED, reply_to=3, source="handoff"),
    _in(5, "Hello? Is anyone there?"),
    _out(6, ANA, agent="Ana"),
    _in(7, "Great, thank you Ana!"),
    _out(8, RELEASED),  # AgentReplies.notify: no agent, no source, no message answered
    _in(9, "Sorry, one more question: when exactly will my order arrive?"),
    _out(10, "Sorry, something went wrong on our side.", reply_to=9, source="fallback"),
]


def _history() -> list[ChatMessage]:
    picked, _ = _pick_and_fit(
        EchoBackend(), CONVERSATION, 10_000, "system", ChatMessage("user", "q")
    )
    return picked


def test_an_agents_message_is_labelled_as_theirs() -> None:
    assert ChatMessage("assistant", f"[Ana, a human agent, wrote:] {ANA}") in _history()
    nameless = _out(6, ANA, agent="")
    picked, _ = _pick_and_fit(EchoBackend(), [nameless], 100, "", ChatMessage("user", "q"))
    assert picked == [ChatMessage("assistant", f"[A colleague, a human agent, wrote:] {ANA}")]


def test_botkits_fixed_texts_and_commands_are_left_out() -> None:
    texts = [turn.content for turn in _history()]
    assert "/human" not in texts
    assert not any(HANDED in t or RELEASED in t or "went wrong" in t for t in texts)
    # The model's own answer (and one stored before replies kept a source) stays.
    assert "Let me check that for you." in texts
    old = _out(2, "An answer from before sources were kept.", reply_to=1)
    assert _pick_and_fit(EchoBackend(), [old], 100, "", ChatMessage("user", "q"))[0] == [
        ChatMessage("assistant", old.text)
    ]


def test_consecutive_turns_of_one_role_are_merged_in_the_request() -> None:
    now = utcnow()
    text = "Who told me that before?"
    ctx = Context(
        message=InboundMessage("test", "c1", Contact("test", "u1"), text, "k11"),
        text=text,
        conversation=ConversationRecord(
            1, "test", "c1", 1, ConversationStatus.BOT, None, now, now, 11
        ),
        inbound=_in(11, text),
        settings=SETTINGS,
        store=ConversationStore(SETTINGS.store),  # never opened
        backend=EchoBackend(),
        history=_history(),
    )
    messages = build_request(ctx, SETTINGS.bot).messages
    roles = [m.role for m in messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[3].content == "Hello? Is anyone there?"  # "/human" left out before it
    assert messages[-1].content == (
        "Great, thank you Ana!\n\nSorry, one more question: when exactly will my order "
        f"arrive?\n\n{text}"
    )


def test_merge_turns_keeps_alternating_turns() -> None:
    from botkit.pipeline.generation import merge_turns  # new: the test above fails before

    turns = [ChatMessage("user", "a"), ChatMessage("assistant", "b"), ChatMessage("user", "c")]
    assert merge_turns(turns) == turns
    assert merge_turns([ChatMessage("assistant", "x"), ChatMessage("assistant", "y")]) == [
        ChatMessage("assistant", "x\n\ny")
    ]


def test_commands_are_told_from_words() -> None:
    from botkit.pipeline.turns import is_command  # new: the tests above fail before

    for text in ("/human", " /bot@ShopBot ", "/lang es", "/lang español", "\uff0fhuman"):
        assert is_command(text), text
    for text in ("/", "hello /human", "/etc/passwd is missing from my order and I need it today",
                 "1/2 kg", ""):  # fmt: skip
        assert not is_command(text), text


def test_a_message_without_text_is_no_turn() -> None:
    # A Telegram sticker is stored with no text: merged into the customer's next turn it
    # made the echo "echo: \n\nstill fine?".
    stored = [_in(1, ""), _out(2, " ", reply_to=1, source="backend"), _in(3, "still fine?")]
    picked, _ = _pick_and_fit(EchoBackend(), stored, 100, "", ChatMessage("user", "q"))
    assert picked == [ChatMessage("user", "still fine?")]
