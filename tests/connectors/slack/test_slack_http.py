"""The HTTP Events API through the real Bolt app: signatures, acks, dedupe, threads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from slack_helpers import (
    SECRET,
    MakeSlack,
    ScriptBackend,
    SlackHarness,
    SlowBackend,
    callback,
    mention,
    message,
    new_ts,
)

from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.channel import HistoryItem, IntakeReceipt
from botkit.errors import ConnectorError, DatabaseUnavailableError, StoreError
from botkit.events import Contact, InboundMessage
from botkit.testing.fake_slack import signed_headers


async def test_dm_is_answered_top_level_in_the_dm(slack: SlackHarness) -> None:
    status, _ = await slack.post_event(message("hello there"))
    assert status == 200
    reply = await slack.reply_in("D1", None, "echo: hello there")
    assert reply.thread_ts is None
    conv = await slack.bot.store.get_conversation("slack", "D1")
    assert conv is not None
    contact = await slack.bot.store.get_contact(conv.contact_id)
    assert contact is not None
    # users.info (with its locale) became the contact's language hint and name.
    assert contact.external_id == "U1" and contact.display_name == "ann"
    assert contact.language is not None and contact.language.startswith("fr")
    info = slack.fake.calls_to("users.info")
    assert info and info[0].args["user"] == "U1"


async def test_consecutive_dms_share_one_conversation(slack: SlackHarness) -> None:
    # People type DMs top-level, one after another: the second is read with the first.
    await slack.post_event(message("my order 1234 has not arrived"))
    await slack.reply_in("D1", None, "echo: my order 1234 has not arrived")
    await slack.post_event(message("it was due on Monday"))
    await slack.reply_in("D1", None, "echo: it was due on Monday")
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history] == [
        "my order 1234 has not arrived",
        "echo: my order 1234 has not arrived",
        "it was due on Monday",
        "echo: it was due on Monday",
    ]
    assert all(m.thread_ts is None for m in slack.fake.messages)


class Recall(ScriptBackend):
    """A real ``GenerationBackend`` that answers with the user turns it was given."""

    name = "recall"

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        yield " | ".join(m.content for m in request.messages if m.role == "user")


async def test_a_thread_in_a_dm_continues_the_dm_and_is_answered_in_the_thread(
    make_slack: MakeSlack,
) -> None:
    # Review 2 #4: "Reply in thread" on the bot's answer is a follow-up of the DM, so
    # the model must see the DM; the answer goes into the thread the customer wrote in.
    slack = await make_slack(backend=Recall())
    await slack.post_event(message("my order 1234 has not arrived"))
    answer = await slack.reply_in("D1", None, "my order 1234 has not arrived")
    assert answer.thread_ts is None
    await slack.post_event(message("it was due on Monday", thread_ts=answer.ts))
    reply = await slack.reply_in(
        "D1", answer.ts, "my order 1234 has not arrived | it was due on Monday"
    )
    assert reply.thread_ts == answer.ts
    # Back at the top level (or in any other thread of the DM): still the same conversation.
    await slack.post_event(message("any news?"))
    everything = "my order 1234 has not arrived | it was due on Monday | any news?"
    top = await slack.reply_in("D1", None, everything)
    assert top.thread_ts is None
    assert await slack.bot.store.get_conversation("slack", f"D1:{answer.ts}") is None
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history if h.direction == "in"] == everything.split(" | ")


async def test_a_dm_thread_of_an_older_version_continues_as_the_dm(slack: SlackHarness) -> None:
    # Before Review 2 #4 a thread in a DM was its own conversation, "D1:<root>". Such a
    # conversation stays in the store; what the customer writes in that thread now goes
    # to the DM's one conversation, and is still answered in the thread.
    root = new_ts()
    await slack.bot.submit(
        InboundMessage(
            channel="slack",
            conversation_key=f"D1:{root}",
            contact=Contact(channel="slack", external_id="U1"),
            text="old thread",
            idempotency_key="old-1",
            channel_ids={"channel": "D1", "ts": new_ts(), "thread_ts": root},
        )
    )
    await slack.reply_in("D1", root, "echo: old thread")  # answered under the old key
    await slack.post_event(message("new in the old thread", thread_ts=root))
    await slack.reply_in("D1", root, "echo: new in the old thread")
    assert [h.text for h in await slack.bot.history("slack", "D1")] == [
        "new in the old thread",
        "echo: new in the old thread",
    ]
    assert len(await slack.bot.history("slack", f"D1:{root}")) == 2


async def test_url_verification_is_answered(slack: SlackHarness) -> None:
    body = json.dumps({"token": "t", "challenge": "abc123", "type": "url_verification"})
    status, text = await slack.post_raw(body, signed_headers(SECRET, body))
    assert status == 200 and "abc123" in text


async def test_bad_signatures_are_refused_with_401(slack: SlackHarness) -> None:
    body = json.dumps(callback(message("hi")))
    good = signed_headers(SECRET, body)
    tampered = body.replace("hi", "yo")
    old = signed_headers(SECRET, body, timestamp=int(time.time()) - 301)
    # Far enough ahead to stay more than 5 minutes ahead however slowly the cases before
    # it run on a loaded machine (+301 s was accepted once it was posted 2 s later).
    future = signed_headers(SECRET, body, timestamp=int(time.time()) + 400)
    cases = [
        (tampered, good),  # body changed after signing
        (body, signed_headers("not-the-secret", body)),
        (body, old),  # more than 5 minutes old: a replay
        (body, future),
        (body, {}),  # unsigned
        (body, {**good, "X-Slack-Signature": "v0=" + "0" * 64}),
        (body, {**good, "X-Slack-Request-Timestamp": "yesterday"}),
    ]
    for sent, headers in cases:
        status, _ = await slack.post_raw(sent, headers)
        assert status == 401, (sent[:40], headers)
    # A body that is not UTF-8 cannot carry a valid signature either.
    async with slack.http.post(slack.url, data=b"\xff\xfe{}", headers=good) as resp:
        assert resp.status == 401
    await asyncio.sleep(0.1)
    assert slack.fake.calls_to("chat.postMessage") == []
    assert await slack.bot.store.get_conversation("slack", "D1") is None


async def test_refused_requests_are_logged_with_the_reason(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.slack")
    body = json.dumps(callback(message("private words")))

    def refusals() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "connectors.slack" and r.levelno == logging.WARNING
        ]

    # This server's clock is 10 minutes off: every genuine request is refused.
    skewed = signed_headers(SECRET, body, timestamp=int(time.time()) - 600)
    assert (await slack.post_raw(body, skewed))[0] == 401
    [skew] = refusals()
    assert "skew +600 s" in skew or "skew +601 s" in skew, skew
    # A wrong signing secret says so, not "skew".
    assert (await slack.post_raw(body, signed_headers("not-the-secret", body)))[0] == 401
    assert "signature mismatch" in refusals()[-1]
    # Rate-limited: a flood of refusals of one kind is one line a minute.
    for _ in range(5):
        assert (await slack.post_raw(body, skewed))[0] == 401
    assert len(refusals()) == 2
    # The log never holds the body, the signature or the secret.
    logged = " ".join(refusals())
    assert "private words" not in logged and SECRET not in logged
    assert skewed["X-Slack-Signature"] not in logged


async def test_hostile_bodies_never_reach_the_core(slack: SlackHarness) -> None:
    malformed = [
        ("not json", "application/json"),
        ("[]", "application/json"),
        ("null", "application/json"),
        ('{"type": "event_callback", "event_id": "Ev1", "event": "x"}', "application/json"),
        ("payload=%5B1%5D", "application/x-www-form-urlencoded"),  # payload=[1]
        ("payload=%7Bnope", "application/x-www-form-urlencoded"),
    ]
    for body, content_type in malformed:
        status, _ = await slack.post_raw(body, signed_headers(SECRET, body), content_type)
        assert status == 400, body
    # Well-formed JSON with fields of the wrong types: acknowledged, ignored.
    odd = [
        {"type": "message", "user": ["x"], "text": 5, "channel": "D1", "ts": "1.2"},
        {"type": "message", "user": "U1", "text": "hi", "channel": "D1", "ts": "yesterday"},
        {"type": "message", "user": "U1", "text": "hi", "channel": "../etc", "ts": "1.2"},
        {"type": "message", "user": "U1\u0000", "text": "hi", "channel": "D1", "ts": "1.2"},
        {
            "type": "message",
            "text": "no author",
            "channel": "D1",
            "ts": "1.2",
            "channel_type": "im",
        },
    ]
    for event in odd:
        status, _ = await slack.post_event(event)
        assert status == 200, event
    big = "x" * (2 * 1024 * 1024)
    headers = signed_headers(SECRET, big)
    async with slack.http.post(slack.url, data=io.BytesIO(big.encode()), headers=headers) as resp:
        assert resp.status == 413
    await asyncio.sleep(0.1)
    assert slack.fake.calls_to("chat.postMessage") == []
    assert await slack.bot.store.get_conversation("slack", "D1") is None


def _bodies_bolt_would_fail_on() -> list[tuple[str, str]]:
    """Signed bodies of the right syntax whose fields slack-bolt indexes into unchecked."""
    ok = callback(message("hi"))
    dm = ok["event"]
    click = {"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"}}
    as_json = [
        {**ok, "authorizations": 5},
        {**ok, "authorizations": "abc"},
        {**ok, "authorizations": [1]},
        {**ok, "authorizations": [{"team": 7}]},
        {**ok, "event": None},
        {**ok, "event": {**dm, "type": 5}},
        {**ok, "event": {**dm, "type": ["message"]}},
        {**ok, "event": {**dm, "user": 5}},
        {**ok, "event": {**dm, "channel": ["id"]}},
        {**ok, "team": 7},
        {**ok, "enterprise": ["id"]},
        {**ok, "type": ["event_callback"], "user": 1},
        {**ok, "event": {"type": "message", "message": {"user": True}}},
        {**ok, "response_urls": None},
        {**ok, "response_urls": "https://hooks.slack.com/x"},
        {**click, "actions": "x"},
        {**click, "actions": None},
        {**click, "actions": []},
        {**click, "actions": ["botkit_button_0"]},
        {**click, "actions": [{"value": "yes"}]},  # no action_id
        {**click, "actions": [{"action_id": 5}]},
        {"type": "interactive_message", "callback_id": "botkit_button_0"},  # no actions
        {"type": "dialog_submission", "callback_id": 5},
        {"type": "workflow_step_edit", "callback_id": "x"},  # no workflow_step
        {"type": "view_submission", "view": "callback_id"},
        {"type": "view_submission", "view": None},
        {"type": "view_submission", "view": {"callback_id": "x"}},  # no view.type
    ]
    deep: dict[str, object] = {"type": "message", "user": 5}
    for _ in range(40):
        deep = {"type": "message", "message": deep}
    as_json.append({**ok, "event": deep})
    bodies = [(json.dumps(b), "application/json") for b in as_json]
    form = "application/x-www-form-urlencoded"
    return [
        *bodies,
        # Bolt reads a body starting with "{" as JSON whatever its Content-Type...
        (json.dumps({**ok, "event": "x"}), form),
        (json.dumps({**ok, "authorizations": 5}), "text/plain"),
        # ...and of two "payload" fields the last one.
        (urlencode([("payload", json.dumps(click)), ("payload", "[1]")]), form),
        (urlencode([("payload", "{}"), ("payload", json.dumps({**click, "actions": 1}))]), form),
        # A form body without "payload" becomes a dict of strings.
        (urlencode({"type": "event_callback", "authorizations": "x"}), form),
        (urlencode({"type": "block_actions", "actions": "x"}), form),
    ]


async def test_signed_bodies_bolt_would_fail_on_are_refused_with_400(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # Review 3 #1: these were answered 500 with an ERROR traceback (Bolt raised).
    caplog.set_level(logging.INFO)
    bodies = _bodies_bolt_would_fail_on()
    statuses = []
    for body, content_type in bodies:
        status, _ = await slack.post_raw(body, signed_headers(SECRET, body), content_type)
        statuses.append(status)
    sent = zip(bodies, statuses, strict=True)
    wrong = [(body[:90], status) for (body, _), status in sent if status != 400]
    assert not wrong, wrong
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    refused = [r for r in caplog.records if "slack-bolt cannot read" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING  # throttled
    assert "authorizations is not a list" in refused[0].getMessage()
    # Nothing of it reached the core; a well-formed event still does, and one carrying
    # all the fields checked above, as Slack sends them, is not refused.
    await asyncio.sleep(0.1)
    assert slack.fake.calls_to("chat.postMessage") == []
    full = callback(message("all fields", ts=new_ts(), team="T0FAKE"))
    full |= {
        "authorizations": [
            {"enterprise_id": None, "team_id": "T0FAKE", "user_id": "UBOT", "is_bot": True}
        ],
        "enterprise_id": None,
        "is_ext_shared_channel": False,
        "context_team_id": "T0FAKE",
    }
    body = json.dumps(full)
    status, _ = await slack.post_raw(body, signed_headers(SECRET, body), "application/json")
    assert status == 200
    await slack.reply_in("D1", None, "echo: all fields")


async def test_same_event_delivered_four_times_is_answered_once(slack: SlackHarness) -> None:
    ts = new_ts()
    event = message("only once", ts=ts)
    results = await asyncio.gather(
        *[slack.post_event(event, event_id="EvDUP1", retry_num=i or None) for i in range(4)]
    )
    assert [s for s, _ in results] == [200] * 4
    await slack.reply_in("D1", None, "echo: only once")
    await asyncio.sleep(0.3)  # a second answer would have shown up by now
    assert len(slack.fake.thread("D1", None)) == 1
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history] == ["only once", "echo: only once"]


async def test_retry_of_an_event_never_seen_is_processed(slack: SlackHarness) -> None:
    ts = new_ts()
    # The first delivery was lost (e.g. during a restart): the retry is all we get.
    status, _ = await slack.post_event(message("lost first", ts=ts), event_id="EvR1", retry_num=1)
    assert status == 200
    await slack.reply_in("D1", None, "echo: lost first")
    # Retried again after it was processed: stored once, answered once.
    status, _ = await slack.post_event(message("lost first", ts=ts), event_id="EvR1", retry_num=2)
    assert status == 200
    await asyncio.sleep(0.3)
    assert len(slack.fake.thread("D1", None)) == 1


async def test_ack_is_immediate_while_the_backend_is_slow(make_slack: MakeSlack) -> None:
    backend = SlowBackend()
    slack = await make_slack(backend=backend)
    ts = new_ts()
    status, _ = await slack.post_event(message("are you there?", ts=ts))
    assert status == 200
    assert not backend.spoke.is_set()  # acknowledged without waiting for the reply
    # The message is stored and the (slow) reply is under way: the thinking placeholder.
    await asyncio.wait_for(backend.started.wait(), 30)
    await slack.fake.wait_until(lambda: bool(slack.fake.thread("D1", None)), 30)
    assert slack.fake.thread("D1", None)[0].text == "_Thinking…_"
    # Leaving the test closes the bot with a 0 s grace period: the reply is cancelled
    # (and the placeholder deleted, see test_slack_shutdown.py).


async def test_own_and_other_bots_edits_and_deletes_are_ignored(slack: SlackHarness) -> None:
    ignored = [
        message("from myself", user="UBOT"),
        message("from my bot id", bot_id="BBOT"),
        message("another bot", user="U9", bot_id="BOTHER"),
        message("legacy bot", subtype="bot_message", bot_id="BOTHER", user=None),
        message("edited", subtype="message_changed"),
        message("deleted", subtype="message_deleted"),
        message("joined", subtype="channel_join"),
        message("a channel message", channel="C1", channel_type="channel"),
        {"type": "reaction_added", "user": "U1", "reaction": "wave"},
    ]
    for event in ignored:
        status, _ = await slack.post_event(event)
        assert status == 200
    await asyncio.sleep(0.3)
    assert slack.fake.calls_to("chat.postMessage") == []


async def test_other_bots_are_answered_when_configured(make_slack: MakeSlack) -> None:
    slack = await make_slack(answer_other_bots=True)
    ts = new_ts()
    await slack.post_event(message("beep", user="U9", bot_id="BOTHER", ts=ts))
    await slack.reply_in("D1", None, "echo: beep")
    await slack.post_event(message("my own", user="UBOT", bot_id="BBOT"))
    await asyncio.sleep(0.3)
    assert [m.text for m in slack.fake.thread("D1", None)] == ["echo: beep"]


async def test_channel_mention_then_thread_replies(slack: SlackHarness) -> None:
    root = new_ts()
    await slack.post_event(mention("hi <@U2> &amp; welcome", ts=root))
    await slack.reply_in("C1", root, "echo: hi @U2 &amp; welcome")
    # A reply in that thread without a mention is answered (the bot is part of it)...
    await slack.post_event(
        message("and then?", channel="C1", channel_type="channel", thread_ts=root)
    )
    await slack.reply_in("C1", root, "echo: and then?")
    # ...a reply that mentions the bot comes twice (message + app_mention): answered once.
    ts = new_ts()
    text = "<@UBOT> once more"
    await slack.post_event(
        message(text, channel="C1", channel_type="channel", thread_ts=root, ts=ts)
    )
    await slack.post_event(mention("once more", ts=ts, thread_ts=root))
    await slack.reply_in("C1", root, "echo: once more")
    # A thread the bot is not part of is left alone.
    other = new_ts()
    await slack.post_event(
        message("not for you", channel="C1", channel_type="channel", thread_ts=other)
    )
    await asyncio.sleep(0.3)
    assert [m.text for m in slack.fake.thread("C1", root)] == [
        "echo: hi @U2 &amp; welcome",
        "echo: and then?",
        "echo: once more",
    ]
    assert slack.fake.thread("C1", other) == []
    history = await slack.bot.history("slack", f"C1:{root}")
    assert history[0].text == "hi @U2 & welcome"  # mrkdwn read as plain text


async def test_a_bare_mention_is_answered_as_a_greeting(slack: SlackHarness) -> None:
    # Review 3 #4: "@botkit" and nothing else was answered "I can only read text".
    root = new_ts()
    await slack.post_event(mention("", ts=root))
    await slack.reply_in("C1", root, "echo: Hello")
    # The thread is the bot's now: the question that follows needs no mention.
    question = message("where is my order?", channel="C1", channel_type="channel")
    await slack.post_event({**question, "thread_ts": root})
    await slack.reply_in("C1", root, "echo: where is my order?")
    history = await slack.bot.history("slack", f"C1:{root}")
    assert [h.text for h in history] == [
        "Hello",
        "echo: Hello",
        "where is my order?",
        "echo: where is my order?",
    ]
    other = new_ts()
    await slack.post_event({**mention("", ts=other, channel="C2"), "text": " <@UBOT|botkit> "})
    await slack.reply_in("C2", other, "echo: Hello")


class FlakyCore:
    """The real bot as ``CoreHandle``, whose store fails the first ``submit_or_keep``
    (an outage: as with the spool full or turned off)."""

    def __init__(self, bot: Bot, error: StoreError | None = None) -> None:
        self.bot = bot
        self.failures = 1
        self.error = error or StoreError("constraint violated")

    async def submit_or_keep(
        self,
        message: InboundMessage,
        *,
        existing_conversation_only: bool = False,
        agent_name: str | None = None,
    ) -> IntakeReceipt | None:
        if self.failures:
            self.failures -= 1
            raise self.error
        return await self.bot.submit_or_keep(
            message, existing_conversation_only=existing_conversation_only, agent_name=agent_name
        )

    async def history(
        self, channel: str, conversation_key: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryItem]:
        return await self.bot.history(channel, conversation_key, after_seq=after_seq, limit=limit)

    async def ready(self) -> bool:
        return await self.bot.ready()


@pytest.mark.parametrize("outage", [False, True], ids=["store-error", "outage"])
async def test_event_not_stored_is_refused_so_slack_retries(
    slack: SlackHarness, outage: bool, caplog: pytest.LogCaptureFixture
) -> None:
    error = DatabaseUnavailableError("database write failed: locked") if outage else None
    slack.connector.core = FlakyCore(slack.bot, error)
    ts = new_ts()
    status, _ = await slack.post_event(message("store hiccup", ts=ts), event_id="EvF1")
    assert status == 500  # not acknowledged: Slack delivers it again
    # An outage is the store's to report (once); another failure keeps Bolt's traceback.
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("connectors")]
    assert len(tracebacks) == (0 if outage else 1)
    status, _ = await slack.post_event(message("store hiccup", ts=ts), event_id="EvF1", retry_num=1)
    assert status == 200
    await slack.reply_in("D1", None, "echo: store hiccup")


async def test_users_info_failure_still_answers(slack: SlackHarness) -> None:
    slack.fake.fail("users.info", 1, status=500, error="internal_error")
    ts = new_ts()
    await slack.post_event(message("who am i", ts=ts))
    await slack.reply_in("D1", None, "echo: who am i")
    conv = await slack.bot.store.get_conversation("slack", "D1")
    assert conv is not None
    contact = await slack.bot.store.get_contact(conv.contact_id)
    assert contact is not None and contact.language is None and contact.display_name is None


async def test_bot_run_serves_until_stopped(make_slack: MakeSlack) -> None:
    slack = await make_slack(connect=False)
    run = asyncio.create_task(slack.bot.run())
    async with asyncio.timeout(30):  # the connector is listening
        while not slack.connector.port:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.02)
    ts = new_ts()
    assert (await slack.post_event(message("via run", ts=ts)))[0] == 200
    await slack.reply_in("D1", None, "echo: via run")
    slack.bot.stop()
    await asyncio.wait_for(run, 30)


async def test_connect_fails_fast(make_slack: MakeSlack) -> None:
    bad = await make_slack(connect=False, bot_token="xoxb-wrong")
    with pytest.raises(ConnectorError, match="invalid_auth"):
        await bad.connector.connect()
    first = await make_slack()
    taken = await make_slack(connect=False, port=first.connector.port)
    with pytest.raises(ConnectorError, match="cannot listen"):
        await taken.connector.connect()
