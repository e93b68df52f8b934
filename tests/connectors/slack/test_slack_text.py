"""Pure parts: splitting, escaping, reading mrkdwn, and which payloads are answered."""

from __future__ import annotations

from typing import Any

import pytest
from slack_helpers import callback, mention, message

from botkit.events import Button
from connectors.slack._inbound import Identity, SlackInbound, read_action, read_event, split_key
from connectors.slack._text import (
    SECTION_LIMIT,
    button_blocks,
    escape,
    from_slack,
    link_urls,
    markdown_text,
    split_text,
)
from connectors.slack._writer import ReplyWriter, Target

ME = Identity(bot_user_id="UBOT", bot_id="BBOT", team_id="T0FAKE")
BANG, QUESTION = "\uff01", "\uff1f"  # full-width ! and ? (written so, for the linter)


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
        == "<b> &amp; @\u2060channel https://y.io"
    )
    assert from_slack("<!subteam^S1|@ops> <!here|here>") == "@ops @\u2060here"
    assert from_slack("<@UBOT|botkit>only <@UBOT>", bot_user_id="UBOT") == "only"


@pytest.mark.parametrize("thread_replies", [True, False])
def test_dm_top_level_messages_are_one_conversation(thread_replies: bool) -> None:
    # People write to a bot one DM after another; the second needs the first's history.
    got = read(message("hi &amp; bye", ts="1.000001"), thread_replies=thread_replies)
    assert got.text == "hi & bye" and got.idempotency_key == "D1:1.000001"  # the message
    assert got.conversation_key == "D1" and not got.known_thread_only
    ids = {"channel": "D1", "ts": "1.000001", "event_id": "Ev1", "team": "T0FAKE", "user": "U1"}
    assert got.channel_ids == ids  # user and team: the recipient of a streamed answer
    later = read(message("and more", ts="1.000002"), thread_replies=thread_replies)
    assert later.conversation_key == "D1" and "thread_ts" not in later.channel_ids
    # A message in any thread of the DM continues the DM's conversation (Review 2 #4) and
    # is answered in that thread.
    threaded = read(
        message("in a thread", ts="1.000003", thread_ts="1.000001"), thread_replies=thread_replies
    )
    assert threaded.conversation_key == "D1" and not threaded.known_thread_only
    assert threaded.channel_ids["thread_ts"] == "1.000001"
    assert split_key("D1:1.000001") == ("D1", "1.000001") and split_key("D1") == ("D1", None)


def test_clicks_in_a_dm_continue_the_dm_and_in_a_channel_their_thread() -> None:
    def click(channel: str, thread_ts: str | None) -> SlackInbound | None:
        message = {"ts": "1.000002", **({"thread_ts": thread_ts} if thread_ts else {})}
        body = {
            "type": "block_actions",
            "user": {"id": "U1"},
            "channel": {"id": channel},
            "message": message,
            "actions": [{"action_id": "botkit_button_0", "value": "v", "action_ts": "2.1"}],
        }
        return read_action(body, ME)

    in_dm_thread = click("D1", "1.000001")  # buttons of an answer in a thread of the DM
    assert in_dm_thread is not None and in_dm_thread.conversation_key == "D1"
    assert in_dm_thread.channel_ids["thread_ts"] == "1.000001"  # answered in the thread
    top = click("D1", None)
    assert top is not None and top.conversation_key == "D1" and "thread_ts" not in top.channel_ids
    in_channel = click("C1", "1.000001")
    assert in_channel is not None and in_channel.conversation_key == "C1:1.000001"


def test_channel_mentions_keep_a_thread_per_message() -> None:
    event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> yo", "channel": "C1"}
    threaded = read({**event, "ts": "7.000001"})
    assert threaded.conversation_key == "C1:7.000001"
    assert threaded.channel_ids["thread_ts"] == "7.000001"
    flat = read({**event, "ts": "7.000002"}, thread_replies=False)
    assert flat.conversation_key == "C1" and "thread_ts" not in flat.channel_ids


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
        message("<@UBOT2> x", channel="C1", channel_type="channel"),  # someone else
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


@pytest.mark.parametrize("channel_type", ["channel", "group", "mpim"])
def test_a_message_mentioning_the_bot_is_its_mention(channel_type: str) -> None:
    # The message.* twin of an app_mention is the same message (same key, same reading),
    # so whichever comes first is answered and the other is a duplicate.
    for thread in ({}, {"thread_ts": "1.1"}):
        twin = {"channel": "C1", "channel_type": channel_type, "ts": "1.2", **thread}
        got = read(message("<@UBOT|botkit> x", **twin))
        app_mention = read({**mention("x", channel="C1", ts="1.2"), **thread})
        assert got == app_mention and got.idempotency_key == "C1:1.2"
        assert not got.known_thread_only and got.text == "x"
    bare = read(message("<@UBOT>", channel="C1", channel_type="channel", ts="1.3"))
    assert bare.bare_mention and bare.text == "Hello"


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
    assert good is not None and good.text == "v" and good.conversation_key == "D1"
    assert good.idempotency_key == "action:D1:U1:2.000001"
    assert read_action({**body, **change}, ME) is None


def test_button_section_text_is_verbatim_so_mentions_are_not_parsed() -> None:
    # Block Kit mrkdwn defaults to verbatim=false, where Slack parses a plain "@channel"
    # (no angle brackets, so escaping does not help): a model repeating it would ping.
    text = escape(from_slack("<!channel> help") + " -- is this what you meant? @here")
    section, actions = button_blocks(text, [Button("Yes", "yes")])
    assert section["text"] == {"type": "mrkdwn", "text": text, "verbatim": True}
    assert actions["elements"][0]["value"] == "yes"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel> help", "@\u2060channel help"),
        ("<!here> <!everyone>", "@\u2060here @\u2060everyone"),
        ("<!here|here> <!channel|@channel>", "@\u2060here @\u2060channel"),
    ],
)
def test_special_mentions_reach_the_model_defused(raw: str, expected: str) -> None:
    got = from_slack(raw)
    assert got == expected
    # Readable, yet not the words Slack would parse if the model repeated them.
    assert not any(f"@{word}" in got for word in ("channel", "here", "everyone"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Meeting <!date^1392734382^{date_short}|Feb 18, 2014> ok?", "Meeting Feb 18, 2014 ok?"),
        ("at <!date^1392734382^{time}^https://x.io|3:00 PM>", "at 3:00 PM"),
        ("ask <!subteam^S1> or <!subteam^S2|@ops>", "ask @group or @ops"),
        ("odd <!date^1> <!subteam^|> <!^> <!>", "odd  @group @ @"),
    ],
)
def test_dates_and_user_groups_are_not_read_as_mentions(raw: str, expected: str) -> None:
    assert from_slack(raw) == expected


def test_full_width_sentence_ends_need_no_whitespace() -> None:
    sentence = "ご注文の商品は明日発送いたします。"  # 17 chars, no spaces anywhere
    pieces = split_text(sentence * 400, 3900)
    assert all(p.endswith("。") and len(p) <= 3900 for p in pieces)
    assert "".join(pieces) == sentence * 400
    # A closing quote or bracket stays with the sentence it closes.
    quoted = "あ" * 12 + f"「はい{BANG}」" + "い" * 20
    assert split_text(quoted, 20)[0] == "あ" * 12 + f"「はい{BANG}」"
    # ASCII punctuation still needs whitespace after it ("3.5" is not a sentence end).
    assert split_text("x" * 12 + "3.5" + "y" * 20, 20)[0] == "x" * 12 + "3.5" + "y" * 5


@pytest.mark.parametrize("limit", [7, 40])
def test_split_of_a_growing_cjk_text_keeps_earlier_pieces(limit: int) -> None:
    full = f"「こんにちは。」今日は何をしますか{QUESTION} 明日は雨です{BANG}" * 5
    final = split_text(full, limit)
    for n in range(1, len(full)):
        partial = split_text(full[:n], limit)
        assert partial[:-1] == final[: len(partial) - 1], n
    assert all(len(p) <= limit for p in final)


@pytest.mark.parametrize("subtype", [["x"], {"a": 1}, 5, True])
def test_a_subtype_that_is_not_a_string_is_ignored(subtype: Any) -> None:
    # A list or dict used to raise TypeError (unhashable), so Bolt answered 500 and Slack
    # delivered the event again and again.
    assert read(message("hi", subtype=subtype)) is None


@pytest.mark.parametrize(
    ("reply", "section"),
    [
        (
            "Track it here: https://shop.example/track?id=1234&x=1.",
            "Track it here: <https://shop.example/track?id=1234&amp;x=1>.",
        ),
        ("(see https://w.example/F_(b)), ok", "(see <https://w.example/F_(b)>), ok"),
        (
            "*http://a.example/x*, or `https://b.example`",
            "*<http://a.example/x>*, or `<https://b.example>`",
        ),
        ("见https://c.example/路径。谢谢", "见<https://c.example/路径>。谢谢"),
        ('a "https://d.example/q" b', 'a "<https://d.example/q>" b'),
        # What would change a Slack link stays text: a "|" (label), "<" / ">".
        ("<https://e.example|@channel>", "&lt;<https://e.example>|@\u2060channel&gt;"),
        ("https://f.example/a>b&", "<https://f.example/a>&gt;b&amp;"),
        # Not URLs of the reply: nothing becomes a link.
        ("xhttps://g.example www.h.example https:// ftp://i.example", None),
        ("@here <!channel> mailto:a@b.example https:", None),
    ],
)
def test_urls_in_the_verbatim_button_text_are_links(reply: str, section: str | None) -> None:
    # Review 2 #6: "verbatim": true (kept against @channel parsing) also stops Slack's
    # URL auto-linking, so the block text carries explicit <url> links.
    text = escape(reply)
    [block, _] = button_blocks(text, [Button("Yes", "yes")])
    assert block["text"] == {"type": "mrkdwn", "text": section or text, "verbatim": True}
    # It reads the same (the word joiner that defuses "@channel" is invisible).
    assert from_slack(block["text"]["text"]).replace("\u2060", "") == reply


def test_links_never_take_the_button_text_past_its_limit() -> None:
    url = "https://shop.example/" + "x" * 80
    text = escape(" ".join([url] * 3))
    assert link_urls(text) == " ".join([f"<{url}>"] * 3)
    assert link_urls(text, len(text) + 5) == f"<{url}> <{url}> {url}"  # later ones stay
    long = escape("y" * (SECTION_LIMIT - 50) + " " + url)  # too long: the writer splits it
    [block, _] = button_blocks(long, [Button("Yes", "yes")])
    assert block["text"]["text"] == long[:SECTION_LIMIT]  # never a link to a cut URL


@pytest.mark.parametrize(
    ("text", "defused"),
    [
        # Audit L1: reference-style links show a label instead of where they lead.
        ("[innocent][1]\n\n[1]: https://evil.example/phish", "]\u2060:"),
        ("[bank]\n\n[bank]: https://evil.example", "]\u2060:"),
        # Entities CommonMark would show as "<" / ">".
        ("&lt;!here&gt;", "&\u2060lt;!here&\u2060gt;"),
        ("&#60;!channel&#62; &#x3c;", "&\u2060#60;!channel&\u2060#62; &\u2060#x3c;"),
        # A special mention with no word boundary after it.
        ("@here你好 @here_x @channel2", "@\u2060here你好 @\u2060here_x @\u2060channel2"),
    ],
)
def test_markdown_text_defuses_what_would_hide_a_link_or_ping(text: str, defused: str) -> None:
    assert defused in markdown_text(text)
    assert markdown_text(text).replace("\u2060", "") == text  # reads the same


def test_markdown_text_leaves_no_link_with_a_hidden_target() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt().render(
        markdown_text("[innocent][1] [bank]\n\n[1]: https://evil.example/a\n[bank]: https://e.x")
    )
    assert "<a " not in html and "&lt;!here" not in markdown_it.MarkdownIt().render(
        markdown_text("&lt;!here&gt;")
    )


def test_plain_special_mentions_are_defused_on_the_edit_path_too() -> None:
    # Audit M4: chat.update parses plain "@channel" by default ("client").
    assert escape("@channel @HERE @everyone plain") == (
        "@\u2060channel @\u2060HERE @\u2060everyone plain"
    )


def test_long_replies_are_split_by_the_characters_shown() -> None:
    # Audit L8: 3,990 "<" became five messages, "&lt;" counting four toward the limit.
    writer = ReplyWriter(None, Target("C1"), 3900)  # type: ignore[arg-type]
    pieces = writer._pieces("<" * 3990, True, ())
    assert len(pieces) == 2 and "".join(pieces) == "&lt;" * 3990


def test_a_code_block_is_not_cut_when_it_fits_in_the_next_piece() -> None:
    intro = " ".join(["words"] * 250)  # 1,499 characters, no line break
    code = "```python\n" + "\n".join(f"print({i:040d})" for i in range(30)) + "\n```"
    pieces = split_text(f"{intro}\n{code}\nafter", 2000)
    assert pieces[0] == intro and pieces[1].startswith("```python")
    assert pieces[1].count("```") == 2  # the block whole in one message


def test_an_email_address_is_not_taken_for_a_special_mention() -> None:
    text = "write to help@herehq.example or ops@channel.example, @here"
    assert escape(text) == text.replace(", @here", ", @\u2060here")
    assert markdown_text(text) == text.replace(", @here", ", @\u2060here")
    assert escape("done.@here") == "done.@\u2060here"
    for before in "-+%":  # review L12: not an address, so defused
        assert escape(f"ping {before}@here") == f"ping {before}@\u2060here"
        assert markdown_text(f"{before}@channel") == f"{before}@\u2060channel"


@pytest.mark.timeout(10)
def test_a_fence_at_the_start_of_a_tiny_piece_does_not_stall_the_split() -> None:
    # With a limit below 4 the code-block rule moved the cut back to 0 and looped forever.
    assert split_text("```abc", 3) == ["```", "abc"]
    assert "".join(split_text("x\n```py\ncode\n```", 2)) == "x```pycode```"
