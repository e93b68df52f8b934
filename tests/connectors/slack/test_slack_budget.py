"""The workspace-wide ``chat.update`` budget (Review 2 #5): progress edits are skipped, not
queued, when it has no token at once; final edits wait for it, bounded by
``give_up_after_s``; waiting for it never holds a channel's lane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from slack_helpers import MakeSlack, ScriptBackend, mention, message
from slack_sdk.web.async_client import AsyncWebClient

from botkit.backends.protocol import GenerationRequest
from botkit.errors import ConnectorError
from botkit.testing.fake_slack import FakeSlack
from connectors.slack._api import SlackApi
from connectors.slack._ratelimit import MethodBudget
from connectors.slack.config import SlackRetry


async def api_on(fake: FakeSlack, **retry: float) -> tuple[SlackApi, str, str]:
    """``SlackApi`` on the fake, unpaced per channel, with one message in CA and CB."""
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[])
    api = SlackApi(client, SlackRetry(**retry), 0.0, updates_per_minute=600)
    for channel in ("CA", "CB"):
        await api.send("chat.postMessage", {"channel": channel, "text": channel})
    a, b = (m.ts for m in fake.messages)
    return api, a, b


HOLD_S = 5.0  # a chat.update 429's Retry-After: far longer than a placeholder takes


async def test_a_chat_update_429_does_not_hold_messages_in_other_channels(
    make_slack: MakeSlack,
) -> None:
    slack = await make_slack(word_delay=0.1)
    fake = slack.fake
    fake.fail("chat.update", 1, retry_after=HOLD_S)
    await slack.post_event(mention("first question", channel="C1"))
    await fake.wait_until(lambda: any(c.status == 429 for c in fake.calls_to("chat.update")), 30)
    # A reply streams in C2 while chat.update is held workspace-wide...
    e1 = mention("second question", channel="C2")
    await slack.post_event(e1)
    await fake.wait_until(lambda: bool(fake.thread("C2", e1["ts"])), 30)
    await asyncio.sleep(0.5)  # its words are generated; its progress edits come due
    # ...and another customer asks in C2: their placeholder needs only chat.postMessage.
    e2 = mention("third question", channel="C2")
    await slack.post_event(e2)
    await fake.wait_until(lambda: bool(fake.thread("C2", e2["ts"])), 30)
    # A lane held by the 429 would have posted it after the hold: by the fake's clock,
    # before the hold ended (not "within so many seconds of now", which load stretches).
    limited = next(c for c in fake.calls_to("chat.update") if c.status == 429)
    placeholder = next(
        c
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("thread_ts") == e2["ts"] and c.status == 200
    )
    assert placeholder.at - limited.at < HOLD_S - 0.5, "the 429 held the lane"
    # The final edits waited for the hold: every reply ends complete.
    for channel, event in (("C2", e1), ("C2", e2)):
        await slack.reply_in(channel, event["ts"], f"echo: {event['text'][8:]}", limit_s=30)
    [first] = [m for m in fake.messages if m.channel == "C1"]
    await fake.wait_until(lambda: first.text == "echo: first question", 30)
    later = [c for c in fake.calls_to("chat.update") if c.at > limited.at]
    assert later and min(c.at for c in later) - limited.at >= HOLD_S - 0.1  # none in the hold


async def test_progress_edits_are_skipped_during_a_hold(fake_slack: FakeSlack) -> None:
    api, a, b = await api_on(fake_slack)
    # A 60 s hold: bounds of 30 s tell "skipped" from "waited" on any machine.
    fake_slack.fail("chat.update", 1, retry_after=60)
    edit_a = {"channel": "CA", "ts": a, "text": "a2"}
    # The 429 answers a progress edit: skipped at once, and the method is held.
    assert await asyncio.wait_for(api.send("chat.update", edit_a, droppable=True), 30) is None
    assert api.held_for("chat.update") > 30
    edit_b = {"channel": "CB", "ts": b, "text": "b2"}
    assert await asyncio.wait_for(api.send("chat.update", edit_b, droppable=True), 30) is None
    assert len(fake_slack.calls_to("chat.update")) == 1  # the skipped one was never sent
    assert [m.text for m in fake_slack.messages] == ["CA", "CB"]


async def test_a_final_edit_waits_for_the_budget_at_most_give_up_after_s(
    fake_slack: FakeSlack,
) -> None:
    api, a, b = await api_on(fake_slack, give_up_after_s=1.0)
    fake_slack.fail("chat.update", 1, retry_after=60)
    with pytest.raises(ConnectorError, match="gave up"):
        await api.send("chat.update", {"channel": "CA", "ts": a, "text": "a2"})
    # Another channel's final edit: the hold outlasts its deadline, so it fails now
    # instead of waiting 60 s (before Review 2 #5 the budget wait had no bound at all):
    # the 30 s bound is half the hold (a loaded machine takes seconds, never 60).
    with pytest.raises(ConnectorError, match="gave up"):
        await asyncio.wait_for(
            api.send("chat.update", {"channel": "CB", "ts": b, "text": "b2"}), 30
        )
    assert len(fake_slack.calls_to("chat.update")) == 1
    # Meanwhile messages go out in both channels: the lanes are not held.
    await asyncio.wait_for(api.send("chat.postMessage", {"channel": "CA", "text": "x"}), 30)


async def test_a_final_edit_waits_out_a_short_hold(fake_slack: FakeSlack) -> None:
    api, a, _ = await api_on(fake_slack)
    fake_slack.fail("chat.update", 1, retry_after=0.5)
    await api.send("chat.update", {"channel": "CA", "ts": a, "text": "a2"})
    limited, done = fake_slack.calls_to("chat.update")
    assert limited.status == 429 and done.status == 200
    assert done.at - limited.at >= 0.45
    assert [m.text for m in fake_slack.messages] == ["a2", "CB"]


class Stalling(ScriptBackend):
    """A real backend: a few words, a long pause (until ``go_on``), then the rest."""

    name = "stalling"

    def __init__(self) -> None:
        self.said = asyncio.Event()
        self.go_on = asyncio.Event()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        yield "first words"
        self.said.set()
        await self.go_on.wait()
        yield " and the rest"


async def test_a_skipped_progress_edit_is_made_up_for(
    make_slack: MakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each phase waits for the step before it (never for a time that load stretches):
    # the first words come during a hold, a progress edit comes due and is skipped, the
    # hold ends, and the edit is made while the model still pauses.
    backend = Stalling()
    slack = await make_slack(backend=backend)
    budget = slack.connector.api.budgets["chat.update"]
    skipped = asyncio.Event()
    try_acquire = budget.try_acquire

    def spied() -> bool:
        took = try_acquire()
        if not took and backend.said.is_set():
            skipped.set()
        return took

    monkeypatch.setattr(budget, "try_acquire", spied)
    budget.hold(60.0)  # a 429 somewhere else in the workspace
    await slack.post_event(message("hello"))
    await asyncio.wait_for(backend.said.wait(), 30)
    await asyncio.wait_for(skipped.wait(), 30)  # a progress edit came due in the hold
    assert slack.fake.calls_to("chat.update") == []  # skipped: not sent...
    budget._held_until = 0.0  # the hold is over
    hold_ended = time.monotonic()
    # ...nor queued: one edit, made on a later tick although no new text had come (the
    # model is still pausing).
    await slack.fake.wait_until(lambda: bool(slack.fake.calls_to("chat.update")), 30)
    assert not backend.go_on.is_set()
    [progress] = slack.fake.calls_to("chat.update")
    assert progress.args["text"] == "first words" and progress.at >= hold_ended
    backend.go_on.set()
    reply = await slack.reply_in("D1", None, "first words and the rest", limit_s=30)
    # The final edit shows everything; nothing else was shown.
    assert reply.versions == ["_Thinking…_", "first words", "first words and the rest"]


def at_once(call: Coroutine[Any, Any, bool]) -> bool:
    """What ``call`` returns, asserting that it returned without ever waiting (its first
    step ran to the end): a structural "at once", which no load can make flaky."""
    try:
        call.send(None)
    except StopIteration as done:
        return bool(done.value)
    call.close()
    raise AssertionError("it waited")


async def test_method_budget_try_acquire_never_waits_or_jumps_the_queue() -> None:
    budget = MethodBudget(60.0)  # 1/s, bursts of 10
    assert all(budget.try_acquire() for _ in range(10))
    assert not budget.try_acquire()  # empty: no waiting
    loop = asyncio.get_running_loop()
    assert not at_once(budget.acquire(loop.time() + 0.5))  # the next token is 1 s away
    waiter = asyncio.create_task(budget.acquire(loop.time() + 2))
    await asyncio.sleep(0)
    budget.refund()  # a token is free again, but a final edit is already waiting for it
    assert not budget.try_acquire()
    assert await waiter
    budget.refund()
    budget.hold(3.0)
    assert not budget.try_acquire()  # held by a 429
    # The hold outlasts the deadline: known at once, not found out after waiting.
    assert not at_once(budget.acquire(loop.time() + 1))


async def test_method_budget_waiters_get_tokens_in_arrival_order_at_its_rate() -> None:
    # The waiting path of acquire without a hold: final edits that find the bucket empty
    # wait for the next tokens, first come first served whichever channel they are for.
    budget = MethodBudget(615.0)  # 10.25/s, bursts of 102.5: the half token is kept
    assert sum(budget.try_acquire() for _ in range(110)) == 102
    loop = asyncio.get_running_loop()
    started = loop.time()
    got: list[tuple[int, float]] = []

    async def final_edit(i: int) -> None:
        assert await budget.acquire(loop.time() + 30)
        got.append((i, loop.time() - started))

    await asyncio.wait_for(asyncio.gather(*(final_edit(i) for i in range(4))), 30)
    assert [i for i, _ in got] == [0, 1, 2, 3]
    # Lower bounds only (load can only stretch waits): the half token left, then one
    # token per 1/10.25 s, less a little for the clock's resolution.
    needed = [(0.5 + n) / 10.25 - 0.005 for n in range(4)]
    assert all(at >= need for (_, at), need in zip(got, needed, strict=True)), got
    assert not budget.try_acquire()  # every token taken, none made up
