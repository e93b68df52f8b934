"""Replies going out: streaming edits, pacing, 429 and network back-off, splitting,
escaping, the thinking state, buttons and their clicks (real bot, fake Slack)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from slack_helpers import MakeSlack, SlackHarness, message, new_ts

from botkit.errors import ConnectorError
from botkit.events import Button, OutboundReply
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler
from botkit.testing.fake_slack import SlackCall


def gaps(calls: list[SlackCall]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


async def test_streamed_reply_is_edited_at_most_once_per_second(make_slack: MakeSlack) -> None:
    slack = await make_slack(word_delay=0.06, fast=False)  # defaults: 1 s edits, 1 msg/s
    ts = new_ts()
    words = " ".join(f"word{i}" for i in range(40))  # about 2.5 s of streaming
    await slack.post_event(message(words, ts=ts))
    final = await slack.reply_in("D1", ts, f"echo: {words}", limit_s=10)
    calls = [
        c
        for c in slack.fake.calls
        if c.method in ("chat.postMessage", "chat.update") and c.args.get("channel") == "D1"
    ]
    assert [c.method for c in calls[:1]] == ["chat.postMessage"]  # the placeholder
    assert len(calls) >= 3, "the text should have been shown while it was streaming"
    assert all(c.method == "chat.update" and c.args["ts"] == final.ts for c in calls[1:])
    assert min(gaps(calls)) >= 0.98, gaps(calls)
    # Every version grew the text: intermediate edits were prefixes of the final text.
    versions = final.versions[1:]
    assert versions[-1] == f"echo: {words}"
    assert all(versions[-1].startswith(v) for v in versions)
    assert len(slack.fake.thread("D1", ts)) == 1


async def test_429_is_waited_out_and_the_burst_is_delivered_in_order(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(channel_send_interval_s=0.3)
    slack.fake.fail("chat.postMessage", 1, retry_after=1)
    replies = [
        OutboundReply(channel="slack", conversation_key="C5:100.000001", text=f"part {i}")
        for i in range(3)
    ]
    other = OutboundReply(channel="slack", conversation_key="C6", text="elsewhere")
    burst = [asyncio.create_task(slack.connector.send(r)) for r in replies]
    await asyncio.sleep(0.05)  # the burst's first call is in flight and gets the 429
    await asyncio.wait_for(slack.connector.send(other), 0.9)  # another channel is not held
    await asyncio.wait_for(asyncio.gather(*burst), 5)

    posts = [c for c in slack.fake.calls_to("chat.postMessage") if c.args["channel"] == "C5"]
    assert [c.status for c in posts] == [429, 200, 200, 200]
    waits = gaps(posts)
    assert waits[0] >= 1.0, waits  # Retry-After: 1, measured at the server
    assert min(waits[1:]) >= 0.3, waits  # then one message per interval
    assert [m.text for m in slack.fake.thread("C5", "100.000001")] == [
        "part 0",
        "part 1",
        "part 2",
    ]


async def test_network_errors_are_retried_with_backoff(slack: SlackHarness) -> None:
    slack.fake.fail("chat.postMessage", 1, drop=True)
    slack.fake.fail("chat.postMessage", 1, status=503, error="service_unavailable")
    await slack.connector.send(OutboundReply(channel="slack", conversation_key="C7", text="hi"))
    posts = slack.fake.calls_to("chat.postMessage")
    assert [c.status for c in posts] == [0, 503, 200]
    waits = gaps(posts)
    # initial_backoff_s = 0.05 in the test config, doubled on the second failure.
    assert waits[0] >= 0.05 and waits[1] >= 0.1, waits
    assert [m.text for m in slack.fake.thread("C7", None)] == ["hi"]


async def test_undeliverable_reply_is_stored_as_failed(make_slack: MakeSlack) -> None:
    slack = await make_slack(typing_indicator="off")
    slack.fake.fail("chat.postMessage", 5, status=200, error="channel_not_found")
    ts = new_ts()
    await slack.post_event(message("anyone?", ts=ts))
    key = f"D1:{ts}"

    async def failed() -> bool:
        history = await slack.bot.history("slack", key)
        return len(history) == 2 and history[1].status == "failed"

    for _ in range(50):
        if await failed():
            break
        await asyncio.sleep(0.05)
    assert await failed()
    # A permanent error is not retried.
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


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
    ts = new_ts()
    await slack.post_event(message(text, ts=ts))
    full = f"echo: {text}"

    def complete() -> bool:
        shown = [m.text for m in slack.fake.thread("D1", ts)]
        return " ".join(" ".join(shown).split()) == " ".join(full.split())

    await slack.fake.wait_until(complete, 5)
    shown = [m.text for m in slack.fake.thread("D1", ts)]
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


async def test_thinking_status_where_slack_allows_it(slack: SlackHarness) -> None:
    slack.fake.status_supported = True
    ts = new_ts()
    await slack.post_event(message("status please", ts=ts))
    await slack.reply_in("D1", ts, "echo: status please")
    status = slack.fake.calls_to("assistant.threads.setStatus")
    assert status and status[0].args == {
        "channel_id": "D1",
        "thread_ts": ts,
        "status": "is thinking…",
    }
    post = slack.fake.calls_to("chat.postMessage")[0]
    assert status[0].at < post.at
    # No placeholder: the first version of the reply message is already reply text.
    assert "_Thinking…_" not in slack.fake.thread("D1", ts)[0].versions


async def test_placeholder_where_no_status_and_status_not_retried(slack: SlackHarness) -> None:
    first, second = new_ts(), new_ts()
    await slack.post_event(message("one", ts=first))
    reply = await slack.reply_in("D1", first, "echo: one")
    assert reply.versions[0] == "_Thinking…_"  # the placeholder, then edited
    await slack.post_event(message("two", ts=second))
    await slack.reply_in("D1", second, "echo: two")
    # Refused once in this channel: not asked again for every reply.
    assert len(slack.fake.calls_to("assistant.threads.setStatus")) == 1
    # The writer's users.info answer is cached.
    assert len(slack.fake.calls_to("users.info")) == 1


class MenuHandler(Handler):
    """Answers "menu" with quick-reply buttons."""

    def check(self, ctx: Context) -> bool:
        return ctx.text.strip() == "menu"

    async def handle(self, ctx: Context) -> None:
        buttons = (Button("Billing", "billing"), Button("Tech <b>", "tech & more"))
        ctx.set_reply("Pick one:", buttons=buttons)


async def test_button_click_round_trip(slack: SlackHarness) -> None:
    slack.bot.pipeline.add_handler(MenuHandler())
    ts = new_ts()
    await slack.post_event(message("menu", ts=ts))
    menu = await slack.reply_in("D1", ts, "Pick one:")
    assert menu.blocks is not None
    section, actions = menu.blocks
    assert section["text"]["text"] == "Pick one:"
    assert [e["value"] for e in actions["elements"]] == ["billing", "tech & more"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Billing", "Tech <b>"]

    status, _ = await slack.click(menu, 1, action_ts="1700000000.111111")
    assert status == 200
    await slack.reply_in("D1", ts, "echo: tech &amp; more")
    # The same click delivered again is not answered twice.
    status, _ = await slack.click(menu, 1, action_ts="1700000000.111111")
    assert status == 200
    await asyncio.sleep(0.3)
    history = await slack.bot.history("slack", f"D1:{ts}")
    assert [h.text for h in history] == ["menu", "Pick one:", "tech & more", "echo: tech & more"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("nan", 1.0), ("inf", 3600.0), ("-5", 0.0), ("soon", 1.0), (None, 1.0)],
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
