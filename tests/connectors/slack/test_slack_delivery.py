"""Replies going out: streaming edits, pacing, 429 and network back-off, splitting,
escaping, the thinking state, buttons and their clicks (real bot, fake Slack)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from slack_helpers import (
    SECRET,
    MakeSlack,
    ScriptBackend,
    SlackHarness,
    click_payload,
    message,
    new_ts,
)
from slack_sdk.web.async_client import AsyncWebClient

from botkit.backends.protocol import GenerationRequest
from botkit.errors import ConnectorError
from botkit.events import Button, OutboundReply
from botkit.feedback import texts as feedback_texts
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler
from botkit.testing.fake_slack import FakeSlack, SlackCall, signed_headers
from connectors.slack._api import SlackApi
from connectors.slack._ratelimit import MethodBudget
from connectors.slack.config import SlackRetry


def gaps(calls: list[SlackCall]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


async def test_streamed_reply_is_edited_at_most_once_per_interval(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.06, fast=False)  # defaults: 1.5 s edits, 1 msg/s
    words = " ".join(f"word{i}" for i in range(60))  # about 3.6 s of streaming
    await slack.post_event(message(words))
    final = await slack.reply_in("D1", None, f"echo: {words}", limit_s=30)
    calls = [
        c
        for c in slack.fake.calls
        if c.method in ("chat.postMessage", "chat.update") and c.args.get("channel") == "D1"
    ]
    assert [c.method for c in calls[:1]] == ["chat.postMessage"]  # the placeholder
    assert len(calls) >= 3, "the text should have been shown while it was streaming"
    assert all(c.method == "chat.update" and c.args["ts"] == final.ts for c in calls[1:])
    assert min(gaps(calls)) >= 0.98, gaps(calls)  # channel pacing, the final edit included
    assert min(gaps(calls[:-1])) >= 1.4, gaps(calls)  # update_interval_s while streaming
    # Every version grew the text: intermediate edits were prefixes of the final text.
    versions = final.versions[1:]
    assert versions[-1] == f"echo: {words}"
    assert all(versions[-1].startswith(v) for v in versions)
    assert len(slack.fake.thread("D1", None)) == 1


async def test_429_is_waited_out_and_the_burst_is_delivered_in_order(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(channel_send_interval_s=0.3)
    slack.fake.fail("chat.postMessage", 1, retry_after=3)
    replies = [
        OutboundReply(channel="slack", conversation_key="C5:100.000001", text=f"part {i}")
        for i in range(3)
    ]
    other = OutboundReply(channel="slack", conversation_key="C6", text="elsewhere")
    burst = [asyncio.create_task(slack.connector.send(r)) for r in replies]
    # The burst's first call got the 429: C5 is held for 3 s from there.
    await slack.fake.wait_until(lambda: bool(slack.fake.calls_to("chat.postMessage")), 30)
    await asyncio.wait_for(slack.connector.send(other), 30)
    await asyncio.wait_for(asyncio.gather(*burst), 30)

    posts = [c for c in slack.fake.calls_to("chat.postMessage") if c.args["channel"] == "C5"]
    assert [c.status for c in posts] == [429, 200, 200, 200]
    # Another channel is not held: by the fake's clock, C6 went out within C5's hold
    # (held, it could not have gone before the hold ended).
    [elsewhere] = [c for c in slack.fake.calls_to("chat.postMessage") if c.args["channel"] == "C6"]
    assert elsewhere.at - posts[0].at < 3.0
    waits = gaps(posts)
    assert waits[0] >= 3.0, waits  # Retry-After: 3, measured at the server
    assert min(waits[1:]) >= 0.3, waits  # then one message per interval
    assert [m.text for m in slack.fake.thread("C5", "100.000001")] == [
        "part 0",
        "part 1",
        "part 2",
    ]


async def fake_api(fake: FakeSlack, updates_per_minute: float = 50.0) -> SlackApi:
    """``SlackApi`` on the fake, unpaced per channel, with one message in CA and CB."""
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[])
    api = SlackApi(client, SlackRetry(), 0.0, updates_per_minute=updates_per_minute)
    for channel in ("CA", "CB"):
        await api.send("chat.postMessage", {"channel": channel, "text": channel})
    return api


async def test_chat_update_429_holds_edits_in_every_channel(fake_slack: FakeSlack) -> None:
    # Slack limits chat.update per method per workspace (Tier 3), not per channel: during
    # a Retry-After window every chat.update would be refused again.
    api = await fake_api(fake_slack)
    a, b = (m.ts for m in fake_slack.messages)
    fake_slack.fail("chat.update", 1, retry_after=3)
    first = asyncio.create_task(api.send("chat.update", {"channel": "CA", "ts": a, "text": "a2"}))
    async with asyncio.timeout(30):  # CA got its 429, and the method is held
        while not api.held_for("chat.update"):  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    # chat.postMessage keeps its per-channel limit: another channel is not held.
    await asyncio.wait_for(api.send("chat.postMessage", {"channel": "CC", "text": "c"}), 30)
    await asyncio.wait_for(api.send("chat.update", {"channel": "CB", "ts": b, "text": "b2"}), 30)
    await asyncio.wait_for(first, 30)
    limited, *rest = fake_slack.calls_to("chat.update")
    assert limited.status == 429 and [c.status for c in rest] == [200, 200]
    other = next(c for c in rest if c.args["channel"] == "CB")
    assert other.at - limited.at >= 3.0, other.at - limited.at
    # By the fake's clock: held, the post could not have gone out before the hold ended.
    [post] = [c for c in fake_slack.calls_to("chat.postMessage") if c.args["channel"] == "CC"]
    assert post.at - limited.at < 3.0, post.at - limited.at


async def test_chat_update_budget_is_shared_by_all_channels(fake_slack: FakeSlack) -> None:
    api = await fake_api(fake_slack, updates_per_minute=120)  # 2/s, bursts of 20
    a, b = (m.ts for m in fake_slack.messages)
    # When each edit took its token: the budget counts from there (the calls' arrivals
    # at the fake jitter by each one's network delay, which load stretches at will).
    budget, taken = api.budgets["chat.update"], []
    acquire = budget.acquire

    async def recorded(deadline: float | None = None) -> bool:
        took = await acquire(deadline)
        if took:
            taken.append(asyncio.get_running_loop().time())
        return took

    budget.acquire = recorded  # type: ignore[method-assign]
    edits = [
        api.send("chat.update", {"channel": ch, "ts": ts, "text": f"v{i}"})
        for i in range(11)
        for ch, ts in (("CA", a), ("CB", b))
    ]
    await asyncio.wait_for(asyncio.gather(*edits), 30)
    updates = fake_slack.calls_to("chat.update")
    assert len(updates) == 22 and all(c.status == 200 for c in updates) and len(taken) == 22
    # The burst goes out at once (paced, it would take 9.5 s: the bound is half that,
    # and far above what 20 local calls take on a loaded machine); the two edits after
    # it wait for tokens at 2/s whichever their channel: 22 edits need at least 1 s.
    assert taken[19] - taken[0] < 4.75
    assert taken[21] - taken[0] >= 0.999, taken[21] - taken[0]


@pytest.mark.parametrize("per_minute", [0.0, -1.0, math.nan])
def test_a_method_budget_needs_a_positive_rate(per_minute: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        MethodBudget(per_minute)


async def test_network_errors_are_retried_with_backoff(slack: SlackHarness) -> None:
    slack.fake.fail("chat.postMessage", 1, drop=True)
    slack.fake.fail("chat.postMessage", 1, status=503, error="service_unavailable")
    await slack.connector.send(OutboundReply(channel="slack", conversation_key="C7", text="hi"))
    posts = slack.fake.calls_to("chat.postMessage")
    assert [c.status for c in posts] == [0, 503, 200]
    waits = gaps(posts)
    # initial_backoff_s = 0.05 in the test config, doubled on the second failure, each
    # less up to half (equal jitter, botkit.retry).
    assert waits[0] >= 0.025 and waits[1] >= 0.05, waits
    assert [m.text for m in slack.fake.thread("C7", None)] == ["hi"]


async def test_undeliverable_reply_is_stored_as_failed(make_slack: MakeSlack) -> None:
    slack = await make_slack(typing_indicator="off")
    slack.fake.fail("chat.postMessage", 5, status=200, error="channel_not_found")
    await slack.post_event(message("anyone?"))
    key = "D1"

    await slack.reply_failed(key)
    # A permanent error is not retried.
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


async def test_a_429_outlasting_give_up_after_s_fails_the_next_send_at_once(
    fake_slack: FakeSlack,
) -> None:
    # Review 3 #3: the send that got the 429 gave up, but the next one in that channel
    # waited out the whole Retry-After (600 s here), far past its own deadline. Each send
    # below has 10 s: ample for "at once" on a loaded machine, and half its deadline.
    client = AsyncWebClient(
        token=fake_slack.bot_token, base_url=fake_slack.base_url, retry_handlers=[]
    )
    api = SlackApi(client, SlackRetry(give_up_after_s=20.0), 0.0)
    fake_slack.fail("chat.postMessage", 1, retry_after=600)
    with pytest.raises(ConnectorError, match="gave up"):
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C9", "text": "a"}), 10)
    with pytest.raises(ConnectorError, match="gave up"):
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C9", "text": "b"}), 10)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # nothing sent into the hold
    # Another channel is not held.
    await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C10", "text": "c"}), 10)


async def test_a_reply_behind_a_long_retry_after_is_stored_as_failed_at_its_deadline(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(
        retry={"initial_backoff_s": 0.05, "max_backoff_s": 0.2, "give_up_after_s": 1.0}
    )
    # The placeholder gets the 429; the reply's own message would have waited 600 s.
    slack.fake.fail("chat.postMessage", 1, retry_after=600)
    begin = time.monotonic()
    await slack.post_event(message("are you there?"))

    async def failed() -> bool:
        history = await slack.bot.history("slack", "D1")
        return len(history) == 2 and history[1].status == "failed"

    while not await failed():
        assert time.monotonic() - begin < 30, "the reply still waits for the Retry-After"
        await asyncio.sleep(0.05)
    assert [c.status for c in slack.fake.calls_to("chat.postMessage")] == [429]
    assert slack.fake.thread("D1", None) == []


async def test_retries_run_out_and_raise(make_slack: MakeSlack) -> None:
    slack = await make_slack(retry={"max_attempts": 3, "initial_backoff_s": 0.05})
    slack.fake.fail("chat.postMessage", 10, status=500, error="internal_error")
    reply = OutboundReply(channel="slack", conversation_key="C8", text="lost?")
    with pytest.raises(ConnectorError, match="failed 3x"):
        await slack.connector.send(reply)
    assert len(slack.fake.calls_to("chat.postMessage")) == 3


async def test_long_reply_is_split_on_sentence_boundaries(make_slack: MakeSlack) -> None:
    slack = await make_slack(max_message_chars=200)
    sentences = [f"This is sentence number {i} of a long answer." for i in range(12)]
    text = " ".join(sentences[:6]) + "\n\n" + " ".join(sentences[6:])
    await slack.post_event(message(text))
    full = f"echo: {text}"

    def complete() -> bool:
        shown = [m.text for m in slack.fake.thread("D1", None)]
        return " ".join(" ".join(shown).split()) == " ".join(full.split())

    await slack.fake.wait_until(complete, 30)
    shown = [m.text for m in slack.fake.thread("D1", None)]
    assert len(shown) >= 3
    assert all(0 < len(m) <= 200 for m in shown)
    assert all(m.endswith(".") for m in shown)  # cut after sentences, never mid-word


async def test_model_output_cannot_ping_or_link(slack: SlackHarness) -> None:
    reply = OutboundReply(
        channel="slack",
        conversation_key="D1:123.000456",
        text="<!channel> hi & <https://evil.example|click> <@U2>",
    )
    await slack.connector.send(reply)
    [posted] = slack.fake.thread("D1", "123.000456")
    assert posted.text == (
        "&lt;!channel&gt; hi &amp; &lt;https://evil.example|click&gt; &lt;@U2&gt;"
    )
    assert slack.fake.calls_to("chat.postMessage")[0].args["unfurl_links"] is False


class StampingBackend(ScriptBackend):
    """Answers at once and records what Slack had been sent when generation started."""

    name = "stamp"

    def __init__(self) -> None:
        self.fake: FakeSlack | None = None
        self.posts_seen: list[int] | None = None

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        assert self.fake is not None
        self.posts_seen = [c.status for c in self.fake.calls_to("chat.postMessage")]
        yield "answer"


async def test_generation_does_not_wait_for_the_placeholder(make_slack: MakeSlack) -> None:
    backend = StampingBackend()
    slack = await make_slack(backend=backend)
    backend.fake = slack.fake
    # The channel is rate-limited: the placeholder waits out a 429 (Retry-After: 3).
    slack.fake.fail("chat.postMessage", 1, retry_after=3)
    await slack.post_event(message("hi"))
    reply = await slack.reply_in("D1", None, "answer")
    # Generation began while the placeholder was held: it had not been posted yet (an
    # order, not a time, so a slow machine cannot fail it).
    assert backend.posts_seen is not None and 200 not in backend.posts_seen
    # The answer still went into the placeholder (the edit waited for its ts).
    assert reply.versions == ["_Thinking…_", "answer"]
    assert [c.status for c in slack.fake.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.fake.thread("D1", None)) == 1


async def test_thinking_status_where_slack_allows_it(slack: SlackHarness) -> None:
    # A thread in the DM (as in Slack's AI-app threads): the status line is shown there.
    slack.fake.status_supported = True
    root = new_ts()
    await slack.post_event(message("status please", thread_ts=root))
    await slack.reply_in("D1", root, "echo: status please")
    status = slack.fake.calls_to("assistant.threads.setStatus")
    assert status and status[0].args == {
        "channel_id": "D1",
        "thread_ts": root,
        "status": "is thinking…",
    }
    post = slack.fake.calls_to("chat.postMessage")[0]
    assert status[0].at < post.at
    # No placeholder: the first version of the reply message is already reply text.
    assert "_Thinking…_" not in slack.fake.thread("D1", root)[0].versions


async def test_placeholder_where_no_status_and_status_not_retried(slack: SlackHarness) -> None:
    first, second = new_ts(), new_ts()
    await slack.post_event(message("one", thread_ts=first))
    reply = await slack.reply_in("D1", first, "echo: one")
    assert reply.versions[0] == "_Thinking…_"  # the placeholder, then edited
    await slack.post_event(message("two", thread_ts=second))
    await slack.reply_in("D1", second, "echo: two")
    # Refused once in this channel: not asked again for every reply.
    assert len(slack.fake.calls_to("assistant.threads.setStatus")) == 1
    # The writer's users.info answer is cached.
    assert len(slack.fake.calls_to("users.info")) == 1


async def test_a_status_line_slack_was_too_busy_for_is_tried_again(slack: SlackHarness) -> None:
    # A 429 (or a network error) on the status line says nothing about the next reply in
    # that channel: only a refusal (a thread without a status line) is remembered.
    slack.fake.status_supported = True
    slack.fake.fail("assistant.threads.setStatus", 1, status=429, retry_after=1)
    first, second = new_ts(), new_ts()
    await slack.post_event(message("one", thread_ts=first))
    reply = await slack.reply_in("D1", first, "echo: one")
    assert reply.versions[0] == "_Thinking…_"  # this reply fell back to the placeholder
    await slack.post_event(message("two", thread_ts=second))
    reply = await slack.reply_in("D1", second, "echo: two")
    assert "_Thinking…_" not in reply.versions
    assert [c.status for c in slack.fake.calls_to("assistant.threads.setStatus")][:2] == [429, 200]


class MenuHandler(Handler):
    """Answers "menu" with quick-reply buttons."""

    def check(self, ctx: Context) -> bool:
        return ctx.text.strip() == "menu"

    async def handle(self, ctx: Context) -> None:
        buttons = (Button("Billing", "billing"), Button("Tech <b>", "tech & more"))
        ctx.set_reply("Pick one:", buttons=buttons)


async def test_button_click_round_trip(slack: SlackHarness) -> None:
    slack.bot.pipeline.add_handler(MenuHandler())
    await slack.post_event(message("menu"))
    menu = await slack.reply_in("D1", None, "Pick one:")
    assert menu.blocks is not None
    section, actions = menu.blocks
    assert section["text"] == {"type": "mrkdwn", "text": "Pick one:", "verbatim": True}
    assert [e["value"] for e in actions["elements"]] == ["billing", "tech & more"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Billing", "Tech <b>"]

    status, _ = await slack.click(menu, 1, action_ts="1700000000.111111")
    assert status == 200
    await slack.reply_in("D1", None, "echo: tech &amp; more")
    # The same click delivered again is not answered twice.
    status, _ = await slack.click(menu, 1, action_ts="1700000000.111111")
    assert status == 200
    await asyncio.sleep(0.3)
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history] == ["menu", "Pick one:", "tech & more", "echo: tech & more"]


async def test_a_rating_button_under_an_older_answer_rates_that_answer(
    make_slack: MakeSlack,
) -> None:
    # The feedback plugin's 👍/👎 stay under every answer in Slack; each names the
    # message its answer answered, so an old answer's button rates that answer.
    slack = await make_slack(plugins={"feedback": {}})
    await slack.post_event(message("Where is my parcel?"))
    first = await slack.reply_in("D1", None, "echo: Where is my parcel?")
    await slack.post_event(message("And my invoice?"))
    await slack.reply_in("D1", None, "echo: And my invoice?")
    assert first.blocks is not None
    assert [e["text"]["text"] for e in first.blocks[1]["elements"]] == ["👍", "👎"]
    status, _ = await slack.click(first, 1)  # 👎 under the first answer
    assert status == 200
    # In English: the fake workspace's user has the fr-FR locale, but that is only a
    # seed; they wrote English, which settled the conversation's language.
    await slack.reply_in("D1", None, feedback_texts.SORRY["en"])
    report = await slack.bot.store.feedback_report(datetime(2000, 1, 1, tzinfo=UTC))
    assert [r.text for r in report.latest_bad] == ["echo: Where is my parcel?"]


async def test_button_message_keeps_its_links_within_the_section_limit(
    slack: SlackHarness,
) -> None:
    # 2,990 characters fit a section, but not with its 20 URLs linked (2 more each).
    url = "https://shop.example/item/"
    words = [f"{url}{i:03d}" for i in range(20)] + ["word"] * 600
    text = " ".join(words)[:2990]
    assert len(text) == 2990
    reply = OutboundReply(
        channel="slack", conversation_key="C9", text=text, buttons=(Button("Ok", "ok"),)
    )
    await slack.connector.send(reply)
    *before, last = slack.fake.thread("C9", None)
    assert last.blocks is not None and before and not any(m.blocks for m in before)
    shown = last.blocks[0]["text"]["text"]
    assert len(shown) <= 3000 and shown.count("<https://") == shown.count(url)
    assert " ".join(m.text for m in [*before, last]) == text


@pytest.mark.parametrize(
    ("header", "expected"),
    # "-5": 1 s, not 0: a zero wait retried at once against a server that kept refusing.
    # "inf": 1 s too, as NaN; an hour's hold on it was too much.
    [("2", 2.0), ("nan", 1.0), ("inf", 1.0), ("-5", 1.0), ("soon", 1.0), (None, 1.0)],
)
def test_retry_after_header_is_always_a_finite_wait(header: str | None, expected: float) -> None:
    # A "nan" Retry-After (a broken proxy) once made every comparison false: no wait, no
    # deadline, and the 429 loop spun against Slack forever.
    from types import SimpleNamespace

    from slack_sdk.errors import SlackApiError

    from connectors.slack._api import _retry_after

    headers = {} if header is None else {"Retry-After": header}
    exc = SlackApiError("ratelimited", SimpleNamespace(headers=headers, status_code=429))
    assert _retry_after(exc) == expected


async def test_plain_channel_mentions_cannot_ping_on_the_edit_path(make_slack: MakeSlack) -> None:
    # Audit M4: every edit-path answer is delivered by chat.update, whose "parse"
    # defaults to "client" (chat.postMessage's to "none"): both are sent "none", and the
    # words carry U+2060 after the "@" as on the native path.
    slack = await make_slack(streaming="edit")
    await slack.post_event(message("@channel @here @everyone plain"))
    expected = "echo: @\u2060channel @\u2060here @\u2060everyone plain"
    await slack.reply_in("D1", None, expected)
    sent = [c for c in slack.fake.calls if c.method in ("chat.postMessage", "chat.update")]
    assert sent and all(c.args.get("parse") == "none" for c in sent), sent


async def test_a_reply_of_angle_brackets_is_split_by_what_is_shown(slack: SlackHarness) -> None:
    # Audit L8: a 3,990-character reply of "<" became five messages.
    reply = OutboundReply(channel="slack", conversation_key="C7", text="<" * 3990)
    await slack.connector.send(reply)
    assert len(slack.fake.thread("C7", None)) == 2


async def test_giving_up_at_once_says_why_not_after_how_long(fake_slack: FakeSlack) -> None:
    # Audit M2: "gave up after 300s" was logged for a send that gave up at once.
    client = AsyncWebClient(
        token=fake_slack.bot_token, base_url=fake_slack.base_url, retry_handlers=[]
    )
    api = SlackApi(client, SlackRetry(give_up_after_s=20.0), 0.0)
    fake_slack.fail("chat.postMessage", 1, retry_after=600)
    with pytest.raises(ConnectorError, match=r"next try \(600\.0s on\)") as first:
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C9", "text": "a"}), 10)
    with pytest.raises(ConnectorError, match=r"C9 is held for 600s more") as second:
        await asyncio.wait_for(api.send("chat.postMessage", {"channel": "C9", "text": "b"}), 10)
    assert "after 20s" not in str(first.value) + str(second.value)


async def test_a_click_for_another_app_is_ignored(slack: SlackHarness) -> None:
    # Review L14: defence in depth (a signing secret shared between apps) on clicks too.
    slack.bot.pipeline.add_handler(MenuHandler())
    await slack.post_event(message("menu"))
    menu = await slack.reply_in("D1", None, "Pick one:")
    payload = click_payload(menu, 0)
    payload["api_app_id"] = "AOTHER"
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed_headers(SECRET, body)
    status, _ = await slack.post_raw(body, headers, "application/x-www-form-urlencoded")
    assert status == 200
    await asyncio.sleep(0.3)
    history = await slack.bot.history("slack", "D1")
    assert [h.text for h in history] == ["menu", "Pick one:"]
