"""Pure parts: splitting, escaping, reading mrkdwn, and which payloads are answered."""

from __future__ import annotations

from typing import Any

import pytest
from slack_helpers import callback, message

from connectors.slack._inbound import Identity, read_action, read_event, split_key
from connectors.slack._text import escape, from_slack, split_text

ME = Identity(bot_user_id="UBOT", bot_id="BBOT", team_id="T0FAKE")


def read(event: dict[str, Any], **kw: Any) -> Any:
    options = {"answer_other_bots": False, "thread_replies": True, **kw}
    return read_event(callback(event, "Ev1"), ME, **options)


def test_split_prefers_paragraphs_then_sentences_then_spaces() -> None:
    text = "A" * 50 + ".\n\n" + "B" * 30 + ". " + "C" * 30
    assert split_text(text, 60) == ["A" * 50 + ".", "B" * 30 + ".", "C" * 30]
    assert split_text("one two three four", 9) == ["one two", "three", "four"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("short", 10) == ["short"]
    assert split_text("", 10) == [""]


def test_split_never_cuts_an_entity_and_respects_the_limit() -> None:
    text = escape("&" * 40)  # "&amp;" x 40, no spaces
    pieces = split_text(text, 12)
    assert all(len(p) <= 12 for p in pieces)
    assert all(p.startswith("&amp;") and p.endswith(";") for p in pieces)
    assert "".join(pieces) == text


@pytest.mark.parametrize("limit", [5, 17, 40])
def test_split_of_a_growing_text_keeps_earlier_pieces(limit: int) -> None:
    words = ("Hello there. This is a reply, with some words!\n\nAnd a new paragraph. " * 4).split(
        " "
    )
    full = " ".join(words)
    final = split_text(full, limit)
    for n in range(1, len(full)):
        partial = split_text(full[:n], limit)
        assert partial[:-1] == final[: len(partial) - 1], n
    assert all(len(p) <= limit for p in final)


def test_escape_and_from_slack() -> None:
    assert escape("<!here> a & b > c") == "&lt;!here&gt; a &amp; b &gt; c"
    assert from_slack(
        "<@UBOT> hi <@U2|ann> in <#C1|general> see <https://x.io|docs>", bot_user_id="UBOT"
    ) == ("hi @ann in #general see docs (https://x.io)")
    assert (
        from_slack("&lt;b&gt; &amp;amp; <!channel> <https://y.io>")
        == "<b> &amp; @channel https://y.io"
    )
    assert from_slack("<!subteam^S1|@ops> <!here|here>") == "@ops @here"
    assert from_slack("<@UBOT|botkit>only <@UBOT>", bot_user_id="UBOT") == "only"


def test_dm_is_read_with_its_thread_as_conversation() -> None:
    got = read(message("hi &amp; bye", ts="1.000001"))
    assert got.text == "hi & bye" and got.idempotency_key == "Ev1"
    assert got.conversation_key == "D1:1.000001" and not got.known_thread_only
    assert got.channel_ids == {
        "channel": "D1",
        "ts": "1.000001",
        "event_id": "Ev1",
        "thread_ts": "1.000001",
        "team": "T0FAKE",
    }
    flat = read(message("hi", ts="1.000002"), thread_replies=False)
    assert flat.conversation_key == "D1" and "thread_ts" not in flat.channel_ids
    assert split_key("D1:1.000001") == ("D1", "1.000001") and split_key("D1") == ("D1", None)


@pytest.mark.parametrize(
    "event",
    [
        message("x", user="UBOT"),
        message("x", bot_id="BBOT"),
        message("x", bot_id="BOTHER"),
        message("x", subtype="message_changed"),
        message("x", subtype="message_deleted"),
        message("x", subtype="channel_join"),
        message("x", channel="C1", channel_type="channel"),  # top level in a channel
        message("<@UBOT> x", channel="C1", channel_type="channel", thread_ts="1.1"),
        message("x", user=None),
        message("x", user=7),
        message("x", channel=None),
        message("x", channel="C1;DROP"),
        message("x", ts="1e9"),
        {"type": "reaction_added", "user": "U1"},
        "not an event",
    ],
)
def test_ignored_events(event: Any) -> None:
    assert read(event) is None


def test_envelopes_that_are_not_events_are_ignored() -> None:
    assert (
        read_event({"type": "url_verification"}, ME, answer_other_bots=True, thread_replies=True)
        is None
    )
    body = callback(message("x"), "Ev1")
    del body["event_id"]
    assert read_event(body, ME, answer_other_bots=True, thread_replies=True) is None


def test_other_bots_when_asked_and_files() -> None:
    got = read(
        message("beep", user=None, bot_id="BOTHER", subtype="bot_message"), answer_other_bots=True
    )
    assert got.author == "bot:BOTHER"
    files = [
        {"name": "a.png", "mimetype": "image/png", "size": 3, "permalink": "https://f"},
        "junk",
    ]
    got = read(message("", subtype="file_share", files=files))
    assert [(a.kind, a.name, a.size) for a in got.attachments] == [("image", "a.png", 3)]


def test_thread_reply_in_a_channel_needs_a_known_thread() -> None:
    got = read(message("more", channel="C1", channel_type="channel", thread_ts="5.000001"))
    assert got.known_thread_only and got.conversation_key == "C1:5.000001"
    mention = read(
        {"type": "app_mention", "user": "U1", "text": "<@UBOT> yo", "channel": "C1", "ts": "6.1"}
    )
    assert (
        mention.text == "yo"
        and mention.conversation_key == "C1:6.1"
        and not mention.known_thread_only
    )


@pytest.mark.parametrize(
    "change",
    [
        {"type": "view_submission"},
        {"actions": []},
        {"actions": [{"action_id": "someone_else", "value": "v", "action_ts": "1.2"}]},
        {"actions": [{"action_id": "botkit_button_0", "value": 5, "action_ts": "1.2"}]},
        {"actions": [{"action_id": "botkit_button_0", "value": "v", "action_ts": "now"}]},
        {"user": {"id": "UBOT"}},
        {"user": "U1"},
        {"channel": None, "container": {}},
        {"message": None, "container": {"channel_id": "D1"}},
    ],
)
def test_hostile_clicks_are_ignored(change: dict[str, Any]) -> None:
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "channel": {"id": "D1"},
        "message": {"ts": "1.000001", "thread_ts": "1.000000"},
        "actions": [{"action_id": "botkit_button_0", "value": "v", "action_ts": "2.000001"}],
    }
    good = read_action(body, ME)
    assert good is not None and good.text == "v" and good.conversation_key == "D1:1.000000"
    assert good.idempotency_key == "action:D1:U1:2.000001"
    assert read_action({**body, **change}, ME) is None
